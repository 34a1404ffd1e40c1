"""CIFTI-2 grayordinates at HCP's size (issue 16, point 7): 91,282
grayordinates x 1,200 samples, fit and reduce time and peak memory.

    python benchmarks/cifti_scale.py            # ~2 min, ~2.5 GB of RAM, 0.9 GB in /tmp
    python benchmarks/cifti_scale.py --samples 300

fsaverage6-sized surfaces are not available offline: fsaverage5's pial
meshes (nilearn, 10,242 vertices per hemisphere) are subdivided once (each
triangle into four, midpoints of the sides as new vertices: 40,962 vertices,
fsaverage6's count). Each hemisphere keeps the 29,706 vertices farthest
from the midline (the medial wall is left out, as in HCP's files: 59,412
cortical grayordinates in all, HCP's count), and 31,870 voxels of nilearn's
MNI152 2 mm brain mask nearest to its centre stand for the subcortical
structures (left and right halves). X is smoothed white noise (float32,
seed 0). The dense file and the meshes are written to a temporary folder;
then, in a fresh process each: ``fastrena parcellate`` (read + fit + write
the .dlabel.nii, K = 1000), ``fastrena reduce`` to a .ptseries.nii, with
their wall time and peak RSS (the child's ``VmHWM``), and the fit
alone in Python. Writes ``results/cifti_scale.json``.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from case import save_result, warn_if_busy  # noqa: E402
N_CORTEX_PER_HEMISPHERE = 29_706
N_SUBCORTICAL = 31_870


def subdivide(coordinates, faces):
    """Each triangle into four; new vertices at the sides' midpoints."""
    sides = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]),
                    axis=1)
    unique, inverse = np.unique(sides, axis=0, return_inverse=True)
    middle = coordinates.shape[0] + inverse.reshape(3, -1).T  # (n_faces, 3): ab, bc, ca
    new_coordinates = np.concatenate([coordinates, coordinates[unique].mean(axis=1)])
    a, b, c = faces.T
    ab, bc, ca = middle.T
    new_faces = np.concatenate([np.column_stack(t) for t in
                                ((a, ab, ca), (ab, b, bc), (ca, bc, c), (ab, bc, ca))])
    return new_coordinates, new_faces


def make_case(folder, n_samples):
    import nibabel as nib
    from nibabel import cifti2
    from nilearn.datasets import load_fsaverage, load_mni152_brain_mask
    from scipy.ndimage import gaussian_filter1d

    pial = load_fsaverage("fsaverage5")["pial"]
    models, meshes = [], []
    for side, name in (("left", "CortexLeft"), ("right", "CortexRight")):
        part = pial.parts[side]
        coordinates, faces = subdivide(np.asarray(part.coordinates, dtype=np.float64),
                                       np.asarray(part.faces, dtype=np.int64))
        path = folder / f"{side}.surf.gii"
        gifti = nib.gifti.GiftiImage()
        gifti.add_gifti_data_array(nib.gifti.GiftiDataArray(
            coordinates.astype(np.float32), intent="NIFTI_INTENT_POINTSET"))
        gifti.add_gifti_data_array(nib.gifti.GiftiDataArray(
            faces.astype(np.int32), intent="NIFTI_INTENT_TRIANGLE"))
        gifti.to_filename(str(path))
        meshes.append(str(path))
        keep = np.sort(np.argsort(-np.abs(coordinates[:, 0]), kind="stable")[
            :N_CORTEX_PER_HEMISPHERE])
        models.append(cifti2.BrainModelAxis.from_surface(keep, coordinates.shape[0], name))
    brain = load_mni152_brain_mask(resolution=2)
    inside = np.asarray(brain.dataobj) != 0
    ijk = np.argwhere(inside)
    centre = ijk.mean(axis=0)
    nearest = ijk[np.argsort(((ijk - centre) ** 2).sum(axis=1), kind="stable")[:N_SUBCORTICAL]]
    for half, name in ((nearest[:, 0] < centre[0], "thalamus_left"),
                       (nearest[:, 0] >= centre[0], "thalamus_right")):
        mask = np.zeros(inside.shape, dtype=bool)
        mask[tuple(nearest[half].T)] = True
        models.append(cifti2.BrainModelAxis.from_mask(mask, name, brain.affine))
    axis = models[0]
    for other in models[1:]:
        axis = axis + other
    rng = np.random.default_rng(0)
    X = gaussian_filter1d(rng.standard_normal((n_samples, len(axis))), 3, axis=1)
    X = X.astype(np.float32)
    series = cifti2.SeriesAxis(start=0, step=0.72, size=n_samples)
    path = folder / "run.dtseries.nii"
    cifti2.Cifti2Image(X, header=(series, axis)).to_filename(str(path))
    return path, meshes, len(axis)


# Runs in a fresh process: prints wall time and peak RSS of one command.
# The peak is the process's VmHWM: ru_maxrss would keep the parent's peak
# across fork and exec on Linux.
CHILD = r"""
import json, sys, time
start = time.perf_counter()
from fastrena.cli import main
code = main(sys.argv[1:])
peak = next(int(line.split()[1]) for line in open("/proc/self/status")
            if line.startswith("VmHWM:"))
print(json.dumps({"code": code, "seconds": time.perf_counter() - start,
                  "peak_rss_MB": peak * 1024 / 1e6}))
"""

FIT = r"""
import json, sys, time
from fastrena import ReNA
from fastrena.io import grayordinate_layout, images_to_array
layout = grayordinate_layout(sys.argv[1], sys.argv[2:4])
start = time.perf_counter()
X = images_to_array(sys.argv[1], layout)
read = time.perf_counter() - start
ReNA(layout, n_clusters=1000).fit(X[:20])  # numba's first calls
times = []
for _ in range(3):
    start = time.perf_counter()
    ReNA(layout, n_clusters=1000).fit(X)
    times.append(time.perf_counter() - start)
print(json.dumps({"read_seconds": read, "fit_seconds": sorted(times)[1], "fit_runs": times}))
"""


def run_child(code, args):
    done = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1200, help="rows (default: 1200)")
    parser.add_argument("--out", default=str(HERE / "results"),
                        help="folder for cifti_scale.json (default: benchmarks/results)")
    args = parser.parse_args(argv)
    load_before = warn_if_busy()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path, meshes, n = make_case(folder, args.samples)
        size_mb = path.stat().st_size / 1e6
        print(f"{n} grayordinates x {args.samples} samples ({size_mb:.0f} MB file)", flush=True)
        labels = folder / "parc.dlabel.nii"
        parcellate = run_child(CHILD, ["parcellate", path, "--mesh", meshes[0], "--mesh",
                                       meshes[1], "-k", 1000, "-o", labels, "-q"])
        reduce = run_child(CHILD, ["reduce", path, "--labels", labels, "-o",
                                   folder / "run.ptseries.nii", "-q"])
        fit = run_child(FIT, [path, *meshes])
    x_mb = n * args.samples * 4 / 1e6
    rows = [
        ("grayordinates x samples", f"{n} x {args.samples} (X = {x_mb:.0f} MB float32)"),
        ("fastrena parcellate (read, fit K=1000, write .dlabel.nii)",
         f"{parcellate['seconds']:.1f} s, peak RSS {parcellate['peak_rss_MB']:.0f} MB"),
        ("fastrena reduce (to .ptseries.nii)",
         f"{reduce['seconds']:.1f} s, peak RSS {reduce['peak_rss_MB']:.0f} MB"),
        ("read into X (Python)", f"{fit['read_seconds']:.2f} s"),
        ("fit alone, K=1000 (Python, median of 3)", f"{fit['fit_seconds']:.2f} s"),
    ]
    print("| figure | measured |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    save_result(args.out, "cifti_scale.json", start, load_before,
                n_grayordinates=n, n_samples=args.samples, parcellate=parcellate,
                reduce=reduce, python=fit)


if __name__ == "__main__":
    main()
