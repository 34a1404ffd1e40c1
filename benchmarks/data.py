"""Benchmark data (offline): nilearn's bundled MNI152 masks, smooth signals.

Data sets are generated once per benchmark run (``case.py prepare``) and
saved as ``.npy`` files in a cache folder; every case then reads them with
:func:`load_signals`. Reading straight into a fresh array keeps the peak RSS
of a case equal to "X plus what the estimator allocates", which is what the
memory figure is about, and saves regenerating the same fields in every case.
"""

from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter


def mni_mask(resolution):
    """(mask_img, boolean mask array) of nilearn's bundled MNI152 brain mask."""
    from nilearn.datasets import load_mni152_brain_mask

    img = load_mni152_brain_mask(resolution=resolution)
    return img, np.asarray(img.dataobj) != 0


def smooth_signals(mask, n_samples, dtype=np.float64, sigma=2.0, seed=0):
    """(n_samples, n_voxels): white noise smoothed over the mask's grid.

    Filled one sample at a time into a preallocated array, so generating X
    never needs more than X plus a few grid-sized temporaries.
    """
    rng = np.random.default_rng(seed)
    X = np.empty((n_samples, int(mask.sum())), dtype=dtype)
    for s in range(n_samples):
        X[s] = gaussian_filter(rng.standard_normal(mask.shape), sigma)[mask]
    return X


def mixed_smooth_blocks(mask, n_samples, n_fields=400, noise=0.1,
                        dtype=np.float32, seed=0, block=200):
    """Yield ``(first_row, rows)``: :func:`mixed_smooth_signals` ``block`` rows
    at a time, so that a data set larger than memory can be written to disk
    piece by piece. The rows depend on ``block`` (the random stream is drawn
    block by block)."""
    rng = np.random.default_rng(seed + 1)
    fields = smooth_signals(mask, n_fields, dtype=dtype, seed=seed)
    scale = noise * float(fields.std())
    for start in range(0, n_samples, block):
        n_rows = min(block, n_samples - start)
        weights = rng.standard_normal((n_rows, n_fields)).astype(dtype)
        rows = np.matmul(weights / np.sqrt(n_fields, dtype=dtype), fields)
        rows += scale * rng.standard_normal(rows.shape, dtype=np.float32)
        yield start, rows


def mixed_smooth_signals(mask, n_samples, n_fields=400, noise=0.1,
                         dtype=np.float32, seed=0, block=200):
    """(n_samples, n_voxels): random combinations of ``n_fields`` smooth fields.

    Smoothing 4800 full grids takes minutes; instead each sample is a
    Gaussian random combination of ``n_fields`` fields from
    :func:`smooth_signals` (so it is itself a smooth, stationary field of the
    same variance) plus white noise at ``noise`` times that standard deviation,
    which makes every sample distinct and X full rank. Built block by block.
    """
    X = np.empty((n_samples, int(mask.sum())), dtype=dtype)
    for start, rows in mixed_smooth_blocks(mask, n_samples, n_fields, noise, dtype, seed, block):
        X[start:start + rows.shape[0]] = rows
    return X


GENERATORS = {"smooth": smooth_signals, "mixed": mixed_smooth_signals}


def dataset_path(cache, resolution, n_samples, dtype, kind="smooth"):
    """Where ``case.py prepare`` saves one data set."""
    name = f"mni{resolution}mm_{kind}_S{n_samples}_{np.dtype(dtype).name}.npy"  # S may be "*"
    return Path(cache) / name


def make_dataset(cache, resolution, n_samples, dtype, kind="smooth"):
    """Generate one data set and save it in ``cache`` (returns its path)."""
    path = dataset_path(cache, resolution, n_samples, dtype, kind)
    if not path.exists():
        _, mask = mni_mask(resolution)
        X = GENERATORS[kind](mask, n_samples, dtype=np.dtype(dtype))
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, X)
        tmp.rename(path)
    return path


def _read_rows(path, n_samples):
    """The first ``n_samples`` rows of a saved 2-D array, read into a fresh
    array (no memory map: mapped pages would count twice in the RSS)."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = read_header(f)
        if fortran or shape[0] < n_samples:
            raise ValueError(f"{path} cannot give {n_samples} C-order rows")
        return np.fromfile(f, dtype=dtype, count=n_samples * shape[1]).reshape(n_samples, shape[1])


def load_signals(cache, resolution, n_samples, dtype=np.float64, kind="smooth"):
    """(mask_img, mask, X): X is the first ``n_samples`` rows of the smallest
    cached data set that has enough, or freshly generated without a cache.

    Samples come from one seeded stream, so the first S rows of a larger
    "smooth" set are exactly the S-sample set.
    """
    mask_img, mask = mni_mask(resolution)
    if cache is not None:
        pattern = dataset_path(cache, resolution, "*", dtype, kind).name
        sizes = {int(p.name.split("_S")[1].split("_")[0]): p for p in Path(cache).glob(pattern)}
        enough = [size for size in sizes if size >= n_samples]
        if enough:
            return mask_img, mask, _read_rows(sizes[min(enough)], n_samples)
    return mask_img, mask, GENERATORS[kind](mask, n_samples, dtype=np.dtype(dtype))
