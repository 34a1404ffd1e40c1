"""``fastrena demo``: the main job on data that ships with nilearn.

* Volume: nilearn's bundled MNI152 2 mm brain mask (235,375 voxels) with
  synthetic smooth signals (white noise smoothed with a Gaussian of
  sigma = 2 voxels, one field per scan), parcellated into K clusters.
* Surface: the real fsaverage5 maps nilearn bundles (sulcal depth,
  curvature, cortical thickness; 10,242 vertices per hemisphere),
  parcellated along the mesh.

Everything is offline. Outputs go to one folder, each written atomically;
existing files there are refused up front unless ``force``.
"""

import importlib
import time

import numpy as np

# What the demo writes, checked before any work starts.
VOLUME_LABELS = "labels.nii.gz"
VOLUME_PICTURE = "parcellation.png"
SIZES_PICTURE = "cluster_sizes.png"
CURVE_PICTURE = "compression_error.png"
SURFACE_LABELS = ("fsaverage5_labels_left.label.gii", "fsaverage5_labels_right.label.gii")
SURFACE_PICTURE = "surface_parcellation.png"
# Each label file's lookup table (fastrena.files.lookup_table_path).
VOLUME_TABLE = "labels.tsv"
SURFACE_TABLES = ("fsaverage5_labels_left.tsv", "fsaverage5_labels_right.tsv")
OUTPUTS = (VOLUME_LABELS, VOLUME_TABLE, VOLUME_PICTURE, SIZES_PICTURE, CURVE_PICTURE,
           *SURFACE_LABELS, *SURFACE_TABLES, SURFACE_PICTURE)

# Cluster counts of the compression-error curve (each one a fit).
CURVE_N_CLUSTERS = (500, 1000, 2000, 5000, 10000, 20000, 50000)


def smooth_signals(mask, n_samples, seed=0, sigma=2.0):
    """(n_samples, n_voxels) float32: white noise smoothed over the grid,
    taken inside ``mask``; a stand-in for fMRI scans."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    X = np.empty((n_samples, int(mask.sum())), dtype=np.float32)
    for s in range(n_samples):
        X[s] = gaussian_filter(rng.standard_normal(mask.shape), sigma)[mask]
    return X


def surface_maps():
    """fsaverage5's pial and inflated meshes, and its sulcal depth, curvature
    and thickness maps as a (3, 20484) array (left then right hemisphere),
    each map standardised so that none dominates the distances."""
    from nilearn.datasets import load_fsaverage, load_fsaverage_data

    meshes = load_fsaverage("fsaverage5")
    rows = []
    for kind in ("sulcal", "curvature", "thickness"):
        img = load_fsaverage_data(mesh_type="pial", data_type=kind)
        row = np.concatenate([np.asarray(img.data.parts[h], dtype=np.float64).ravel()
                              for h in ("left", "right")])
        rows.append((row - row.mean()) / row.std())
    # float32, as the volume's data: the kernels compiled for it serve again.
    return meshes, np.array(rows, dtype=np.float32)


def _mesh_parts(polymesh):
    return [(np.asarray(polymesh.parts[h].coordinates), np.asarray(polymesh.parts[h].faces))
            for h in ("left", "right")]


def _seconds(start):
    return time.perf_counter() - start


def prepare(out):
    """Check that the demo can run and create the folder ``out``; return
    the paths it will write (for the caller to vet before :func:`run_demo`)."""
    from . import plotting
    from .errors import InputError, MissingDependencyError

    try:
        # The demo's data come with nilearn.
        importlib.import_module("nilearn.datasets")
    except ImportError as exc:
        raise MissingDependencyError(
            "fastrena demo needs nilearn: pip install fastrena[neuro]") from exc
    plotting.matplotlib_canvas()  # fail now, not after the fits, if matplotlib is missing
    if out.exists() and not out.is_dir():
        raise InputError(f"--out '{out}' is a file, not a folder")
    out.mkdir(parents=True, exist_ok=True)
    return [out / name for name in OUTPUTS]


def run_demo(out, *, samples=100, n_clusters=5000, surface_clusters=1000, force=False,
             progress=False, say=print, report=None):
    """Run the demo, writing to the folder ``out`` made by :func:`prepare`.

    Parameters
    ----------
    out : pathlib.Path
    samples : int
        Synthetic scans of the volume part.
    n_clusters, surface_clusters : int
        Clusters of the volume and of the surface parcellations.
    force : bool
        Overwrite files a previous demo left in ``out``.
    progress : bool
        Progress bars on stderr.
    say : callable
        Prints one summary line.
    report : callable, optional
        Takes the closing lines (what was written, the total time); default
        ``say``. The command line holds them until every output is
        committed.
    """
    from . import plotting
    from .files import save_img, save_text
    from .layouts import SurfaceLayout, mask_layout
    from .parcellations import Parcellation, fit_layout

    total = time.perf_counter()

    from nilearn.datasets import load_mni152_brain_mask, load_mni152_template

    start = time.perf_counter()
    mask_img = load_mni152_brain_mask(resolution=2)
    layout = mask_layout(mask_img)
    X = smooth_signals(layout.mask, samples)
    say(f"volume: {X.shape[0]} synthetic smooth scans x {X.shape[1]} voxels of the MNI152 "
        f"2 mm brain mask ({X.nbytes / 1e6:.0f} MB float32), made in {_seconds(start):.1f} s")

    start = time.perf_counter()
    # numba compiles (or loads from its cache) the kernels of fit and transform here
    fit_layout(X[:2, :], layout, 10).transform(X[:2, :])
    say(f"  numba kernels ready in {_seconds(start):.1f} s")
    start = time.perf_counter()
    rena = fit_layout(X, layout, n_clusters, progress=progress)
    fit_s = _seconds(start)
    start = time.perf_counter()
    X_red = rena.transform(X)
    transform_s = _seconds(start)
    error = plotting.relative_error(X, rena.inverse_transform(X_red))
    say(f"  fit: {rena.n_clusters_} clusters in {fit_s:.2f} s; transform to "
        f"{X_red.shape} in {transform_s:.3f} s")
    say(f"  cluster sizes: median {np.median(rena.sizes_):.0f}, largest {rena.sizes_.max()} "
        f"voxels; relative compression error {error:.3f}")
    parcellation = Parcellation.from_labels(layout, rena.labels_)
    save_img(parcellation.label_img(), out / VOLUME_LABELS, force=force)
    save_text(parcellation.lookup_table(), out / VOLUME_TABLE, force=force)

    start = time.perf_counter()
    ks = [k for k in CURVE_N_CLUSTERS if k < X.shape[1]]
    errors = plotting.compression_errors(X, ks, mask_img=layout)
    say(f"  compression error for K = {ks[0]}..{ks[-1]}: {errors[0]:.3f}..{errors[-1]:.3f} "
        f"({len(ks)} fits in {_seconds(start):.1f} s)")

    start = time.perf_counter()
    meshes, maps = surface_maps()
    pial = _mesh_parts(meshes["pial"])
    surface = SurfaceLayout(tuple(np.ones(coords.shape[0], dtype=bool) for coords, _ in pial),
                            tuple(pial))
    surface_rena = fit_layout(maps, surface, surface_clusters, progress=progress)
    say(f"surface: fsaverage5 sulcal depth, curvature and thickness on {maps.shape[1]} "
        f"vertices: {surface_rena.n_clusters_} clusters in {_seconds(start):.2f} s "
        "(loading included)")
    surface_parcellation = Parcellation.from_labels(surface, surface_rena.labels_)
    for image, name in zip(surface_parcellation.label_gifti(), SURFACE_LABELS):
        save_img(image, out / name, force=force)
    for clusters, name in zip(surface_parcellation.part_clusters(), SURFACE_TABLES):
        save_text(surface_parcellation.lookup_table(clusters), out / name, force=force)

    start = time.perf_counter()
    plotting.plot_parcellation(parcellation.label_img(), load_mni152_template(resolution=2),
                               title=f"ReNA, {rena.n_clusters_} clusters, MNI152 2 mm",
                               output_file=out / VOLUME_PICTURE, force=force)
    plotting.plot_cluster_sizes(rena.sizes_, output_file=out / SIZES_PICTURE, force=force)
    plotting.plot_compression_curve(ks, errors, output_file=out / CURVE_PICTURE, force=force)
    plotting.plot_surface_parcellation(
        _mesh_parts(meshes["inflated"]), surface.split(surface_parcellation.label_values()),
        title=f"ReNA on fsaverage5 (inflated), {surface_rena.n_clusters_} clusters",
        output_file=out / SURFACE_PICTURE, force=force)
    say(f"pictures drawn in {_seconds(start):.1f} s")
    report = say if report is None else report
    report(f"wrote {len(OUTPUTS)} files to {out}/: {', '.join(OUTPUTS)}")
    report(f"done in {_seconds(total):.1f} s. Next, on your own data:\n"
        "  fastrena parcellate bold.nii.gz --mask mask.nii.gz -k 1000 -o labels.nii.gz "
        "--plot labels.png")
