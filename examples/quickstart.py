"""fastrena quick start: ReNA on nilearn's bundled MNI152 2 mm brain mask.

Synthetic smooth signals (white noise smoothed with a Gaussian of sigma = 2
voxels, one per sample) stand in for fMRI scans; everything is offline.

    python examples/quickstart.py [--samples 100] [--clusters 5000] [--out fastrena_demo]
"""

import argparse
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from nilearn.datasets import load_mni152_brain_mask
from scipy.ndimage import gaussian_filter

from fastrena import ReNA


def smooth_signals(mask, n_samples, seed=0, sigma=2.0):
    """(n_samples, n_voxels) float32: smoothed white noise inside ``mask``."""
    rng = np.random.default_rng(seed)
    X = np.empty((n_samples, int(mask.sum())), dtype=np.float32)
    for s in range(n_samples):
        X[s] = gaussian_filter(rng.standard_normal(mask.shape), sigma)[mask]
    return X


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--clusters", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=Path("fastrena_demo"))
    args = parser.parse_args()

    mask_img = load_mni152_brain_mask(resolution=2)
    mask = np.asarray(mask_img.dataobj) != 0
    X = smooth_signals(mask, args.samples)
    print(f"data: {X.shape[0]} samples x {X.shape[1]} voxels "
          f"(MNI152 2 mm mask, {X.nbytes / 1e6:.0f} MB float32)")

    ReNA(mask_img, n_clusters=10).fit(X[:2])  # compile the numba kernels once
    start = time.perf_counter()
    rena = ReNA(mask_img, n_clusters=args.clusters, verbose=1).fit(X)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    X_red = rena.transform(X)
    transform_s = time.perf_counter() - start
    error = np.linalg.norm(X - rena.inverse_transform(X_red)) / np.linalg.norm(X)
    print(f"fit: {rena.n_clusters_} clusters in {fit_s:.2f} s; "
          f"transform to {X_red.shape} in {transform_s:.3f} s")
    print(f"cluster sizes: median {np.median(rena.sizes_):.0f}, largest {rena.sizes_.max()}; "
          f"relative compression error {error:.3f}")

    args.out.mkdir(parents=True, exist_ok=True)
    label_grid = np.zeros(mask.shape, dtype=np.int32)
    label_grid[mask] = rena.labels_ + 1  # 0 stays background
    path = args.out / "labels.nii.gz"
    nib.save(nib.Nifti1Image(label_grid, mask_img.affine), path)
    print(f"wrote {path} (0 = background, clusters 1..{rena.n_clusters_})")


if __name__ == "__main__":
    main()
