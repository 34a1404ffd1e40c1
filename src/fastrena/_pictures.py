"""The pictures of :mod:`fastrena.plotting`, drawn from labels and numbers
alone (no fit): the estimator's report (:mod:`fastrena.report`) draws them
too, and sits below the estimator, where :mod:`fastrena.plotting`, whose
:func:`~fastrena.plotting.compression_errors` fits ReNA, cannot be.

matplotlib is imported when a function here is called, not when fastrena
(or this module) is imported. Figures are drawn on matplotlib's Agg canvas
without pyplot, so nothing here needs a display or touches pyplot's state.
Every function returns the ``Figure`` and, given ``output_file``, also
writes it (atomically; see :func:`fastrena.io.save_img`).
"""

import numpy as np

from ._colors import cluster_colors
from .errors import MissingDependencyError
from .files import write_atomically
from .images import load_volume

__all__ = [
    "ERROR_DEFINITION",
    "matplotlib_canvas",
    "plot_cluster_sizes",
    "plot_compression_curve",
    "plot_grayordinate_parcellation",
    "plot_parcellation",
    "plot_surface_parcellation",
    "relative_error",
]

_BACKGROUND = "#101014"
_UNLABELLED = (0.55, 0.55, 0.55)


def matplotlib_canvas():
    """matplotlib's Figure and Agg canvas, or a clear ImportError."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingDependencyError("fastrena.plotting needs matplotlib: "
                          "pip install fastrena[neuro]") from exc
    return Figure, FigureCanvasAgg


def _new_figure(figsize, dpi, facecolor="white"):
    Figure, FigureCanvasAgg = matplotlib_canvas()
    figure = Figure(figsize=figsize, dpi=dpi, facecolor=facecolor)
    FigureCanvasAgg(figure)
    return figure


def _finish(figure, output_file, force):
    if output_file is not None:
        # savefig picks the format from the name; the temporary file keeps it.
        write_atomically(output_file,
                         lambda tmp: figure.savefig(tmp, facecolor=figure.get_facecolor()),
                         force)
    return figure


def _label_colors(values):
    """RGB per distinct nonzero label value (sorted), as in GIfTI label tables."""
    return cluster_colors(values.shape[0])


# --------------------------------------------------------------------------
# volumes
# --------------------------------------------------------------------------
def _canonical(img, what):
    """``img`` loaded, 3-D, reoriented to RAS+ (x to the right, y to the
    front, z up) so slices display the same way whatever the file's axes."""
    import nibabel

    img = load_volume(img, what)
    if len(img.shape) == 4 and img.shape[3] == 1:
        img = img.slicer[..., 0]
    if len(img.shape) != 3:
        raise ValueError(f"{what} must be a 3-D image, got shape {tuple(img.shape)}")
    return nibabel.as_closest_canonical(img)


def _world_to_voxel(affine, points):
    return points @ np.linalg.inv(affine)[:3, :3].T + np.linalg.inv(affine)[:3, 3]


def _sample_nearest(data, affine, points):
    """``data`` at world ``points`` (..., 3) by nearest voxel; 0 outside."""
    index = np.rint(_world_to_voxel(affine, points)).astype(np.int64)
    inside = np.all((index >= 0) & (index < np.array(data.shape)), axis=-1)
    out = np.zeros(points.shape[:-1], dtype=data.dtype)
    out[inside] = data[tuple(index[inside].T)]
    return out


def _slice_points(affine, shape, axis, position):
    """World coordinates of the voxel centres of the display grid's slice
    through world coordinate ``position`` along ``axis`` (0 = x, 1 = y,
    2 = z), and the slice's extent in mm for imshow."""
    voxel = _world_to_voxel(affine, np.array([position] * 3, dtype=np.float64))
    index = int(np.clip(np.rint(voxel[axis]), 0, shape[axis] - 1))
    grids = [np.arange(n, dtype=np.float64) for n in shape]
    grids[axis] = np.array([float(index)])
    ijk = np.stack(np.meshgrid(*grids, indexing="ij"), axis=-1)
    points = (ijk @ affine[:3, :3].T + affine[:3, 3]).squeeze(axis=axis)
    rest = [a for a in range(3) if a != axis]
    half = np.abs(np.diag(affine)[rest]) / 2
    lo = points[0, 0, rest] - half
    hi = points[-1, -1, rest] + half
    return points, (lo[0], hi[0], lo[1], hi[1])


def _center_of_mass(labels, affine):
    """Where the slices cut by default: the labelled voxel nearest to the
    labels' centre of mass (the centre itself may fall between labelled
    regions, as between two hemispheres' structures)."""
    ijk = np.argwhere(labels != 0)
    nearest = ijk[np.argmin(((ijk - ijk.mean(axis=0)) ** 2).sum(axis=1))]
    return affine[:3, :3] @ nearest + affine[:3, 3]


def _draw_slices(figure, grid, labels, label_data, values, bg_img=None, cut_coords=None,
                 title_color="white"):
    """Three orthogonal slices of canonical ``labels`` (data ``label_data``)
    in row ``grid[1]`` of ``grid[0]`` rows of ``figure``; clusters coloured
    by their rank in ``values``."""
    rank = np.zeros(label_data.shape, dtype=np.int64)
    inside = label_data != 0
    rank[inside] = np.searchsorted(values, label_data[inside]) + 1
    colors = np.vstack([np.zeros(3), _label_colors(values)])
    display = labels if bg_img is None else _canonical(bg_img, "bg_img")
    anatomy = None if bg_img is None else np.asarray(display.dataobj, dtype=np.float64)
    if cut_coords is None:
        cut_coords = _center_of_mass(label_data, labels.affine)
    n_rows, row = grid
    for axis, name in enumerate(("sagittal", "coronal", "axial")):
        ax = figure.add_subplot(n_rows, 3, 3 * row + axis + 1)
        points, extent = _slice_points(display.affine, display.shape, axis, cut_coords[axis])
        cut = _sample_nearest(rank, labels.affine, points)
        if anatomy is not None:
            background = _sample_nearest(anatomy, display.affine, points)
            ax.imshow(background.T, origin="lower", extent=extent, cmap="gray",
                      interpolation="nearest")
        rgba = np.zeros(cut.shape + (4,))
        rgba[..., :3] = colors[cut]
        # Over an anatomy, let it show through the clusters.
        rgba[..., 3] = np.where(cut > 0, 1.0 if anatomy is None else 0.6, 0.0)
        ax.imshow(np.swapaxes(rgba, 0, 1), origin="lower", extent=extent,
                  interpolation="nearest")
        ax.set_title(f"{name}, {'xyz'[axis]} = {cut_coords[axis]:.0f} mm",
                     color=title_color, fontsize=10)
        ax.set_facecolor(_BACKGROUND)
        ax.set_axis_off()


def plot_parcellation(labels_img, bg_img=None, *, cut_coords=None, title=None,
                      output_file=None, force=False, figsize=(12, 4.4), dpi=100):
    """Three orthogonal slices of a label image, one colour per cluster.

    Parameters
    ----------
    labels_img : path or nibabel image
        3-D, 0 = background.
    bg_img : path or nibabel image, optional
        Anatomical image drawn in grey under the clusters (any grid: the
        labels are sampled at its voxels). Without it, the clusters are
        drawn on a dark background over the in-label region.
    cut_coords : (x, y, z) in mm, optional
        Where the slices cut; default the centre of mass of the labels.
    title : str, optional
    output_file : str or path, optional
        Where to write the picture (PNG, SVG, PDF... by name).
    force : bool, default=False
        Overwrite an existing ``output_file``.
    figsize, dpi
        Size of the picture in inches and dots per inch.

    Returns
    -------
    matplotlib.figure.Figure
    """
    labels = _canonical(labels_img, "labels_img")
    label_data = np.asarray(labels.dataobj).astype(np.int64)
    values = np.unique(label_data[label_data != 0])
    if values.size == 0:
        raise ValueError("labels_img has no nonzero label")
    figure = _new_figure(figsize, dpi, facecolor=_BACKGROUND)
    _draw_slices(figure, (1, 0), labels, label_data, values, bg_img, cut_coords)
    figure.suptitle(title or f"{values.size} clusters", color="white")
    figure.tight_layout()
    return _finish(figure, output_file, force)


# --------------------------------------------------------------------------
# surfaces
# --------------------------------------------------------------------------
def _face_normals(coords, faces):
    normals = np.cross(coords[faces[:, 1]] - coords[faces[:, 0]],
                       coords[faces[:, 2]] - coords[faces[:, 0]])
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return normals / np.where(length > 0, length, 1.0)


def _view_direction(elevation, azimuth):
    """Unit vector from the mesh towards matplotlib's camera."""
    e, a = np.radians(elevation), np.radians(azimuth)
    return np.array([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)])


def _draw_mesh(ax, coords, faces, face_rgb, azimuth):
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    # Light from the camera: faces turned towards the viewer are bright,
    # grazing ones dark, so the folds of the cortex stay visible.
    shade = np.abs(_face_normals(coords, faces) @ _view_direction(0.0, azimuth))
    rgb = face_rgb * (0.35 + 0.65 * shade)[:, None]
    # No antialiasing: it would draw light seams between adjacent triangles.
    ax.add_collection3d(Poly3DCollection(coords[faces], facecolors=rgb, edgecolors="none",
                                         linewidths=0, antialiased=False))
    lo, hi = coords.min(axis=0), coords.max(axis=0)
    # A flat mesh still needs a nonzero extent along every axis.
    pad = np.maximum((hi - lo).max() * 0.01, 1e-6) * ((hi - lo) <= 0)
    lo, hi = lo - pad, hi + pad
    for setter, a, b in zip((ax.set_xlim, ax.set_ylim, ax.set_zlim), lo, hi):
        setter(a, b)
    # Axes as long as the mesh is wide in mm (no distortion); the zoom
    # fills the panel, which matplotlib leaves mostly empty by default.
    ax.set_box_aspect(hi - lo, zoom=1.2)
    ax.set_proj_type("ortho")
    ax.view_init(elev=0, azim=azimuth)
    ax.set_axis_off()


def _checked_surfaces(meshes, labels):
    """Meshes and their label arrays as arrays, one label per vertex."""
    meshes = [(np.asarray(c, dtype=np.float64), np.asarray(f, dtype=np.int64))
              for c, f in meshes]
    labels = [np.asarray(part).astype(np.int64).ravel() for part in labels]
    if len(meshes) != len(labels):
        raise ValueError(f"{len(meshes)} meshes but {len(labels)} label arrays; "
                         "give one label array per mesh")
    for (coords, _), part in zip(meshes, labels):
        if part.shape[0] != coords.shape[0]:
            raise ValueError(f"a label array has {part.shape[0]} values but its mesh has "
                             f"{coords.shape[0]} vertices")
    return meshes, labels


def _draw_surfaces(figure, grid, meshes, labels, values, sides=None):
    """Lateral and medial views of each mesh part in row ``grid[1]`` of
    ``grid[0]`` rows of ``figure``; clusters coloured by their rank in
    ``values``. ``sides`` ("left"/"right" per part) when known, else from
    the side of x = 0 the mesh lies on."""
    colors = np.vstack([_UNLABELLED, _label_colors(values)])
    n_rows, row = grid
    n_views = 2 * len(meshes)
    for p, ((coords, faces), part) in enumerate(zip(meshes, labels)):
        rank = np.zeros(part.shape, dtype=np.int64)
        rank[part != 0] = np.searchsorted(values, part[part != 0]) + 1
        # A face takes the colour of its first vertex.
        face_rgb = colors[rank[faces[:, 0]]]
        left = coords[:, 0].mean() < 0 if sides is None else sides[p] == "left"
        for v, (view, azimuth) in enumerate(
                (("lateral", 180.0), ("medial", 0.0)) if left
                else (("lateral", 0.0), ("medial", 180.0))):
            ax = figure.add_subplot(n_rows, n_views, n_views * row + 2 * p + v + 1,
                                    projection="3d")
            _draw_mesh(ax, coords, faces, face_rgb, azimuth)
            ax.set_title(f"{'left' if left else 'right'} {view}", fontsize=10)


def plot_surface_parcellation(meshes, labels, *, title=None, output_file=None, force=False,
                              figsize=None, dpi=100):
    """Lateral and medial views of each mesh part, one colour per cluster.

    Parameters
    ----------
    meshes : sequence of (coordinates (n, 3), faces (m, 3)), one per part
    labels : sequence of int arrays (n,), one per part
        0 = not in the mask (drawn grey).
    title : str, optional
    output_file : str or path, optional
    force : bool, default=False
    figsize : (width, height) in inches, optional
        Default: 4 x 3.4 inches per view, two views per part.
    dpi : int, default=100

    Returns
    -------
    matplotlib.figure.Figure
    """
    meshes, labels = _checked_surfaces(meshes, labels)
    values = np.unique(np.concatenate([part[part != 0] for part in labels]))
    figure = _new_figure(figsize or (4.0 * 2 * len(meshes), 3.2), dpi)
    _draw_surfaces(figure, (1, 0), meshes, labels, values)
    figure.suptitle(title or f"{values.size} clusters")
    figure.subplots_adjust(left=0, right=1, bottom=0, top=0.8, wspace=0)
    return _finish(figure, output_file, force)


def plot_grayordinate_parcellation(meshes, surface_labels, volume_labels_img=None, *,
                                   sides=None, title=None, output_file=None, force=False,
                                   dpi=100):
    """A parcellation of grayordinates in one picture: lateral and medial
    views of each surface (top row) and three slices of the volume
    structures' clusters (bottom row, if any), each cluster in the same
    colour wherever it appears.

    Parameters
    ----------
    meshes, surface_labels : see :func:`plot_surface_parcellation`
    volume_labels_img : nibabel image, optional
        3-D label image of the volume structures (0 = outside them).
    sides : sequence of "left" / "right", optional
        The hemisphere of each mesh (default: the side of x = 0 it lies on,
        wrong for inflated-sphere or flat meshes).
    title, output_file, force, dpi : see :func:`plot_parcellation`

    Returns
    -------
    matplotlib.figure.Figure
    """
    meshes, surface_labels = _checked_surfaces(meshes, surface_labels)
    parts = [part[part != 0] for part in surface_labels]
    volume = None
    if volume_labels_img is not None:
        volume = _canonical(volume_labels_img, "volume_labels_img")
        volume_data = np.asarray(volume.dataobj).astype(np.int64)
        parts.append(volume_data[volume_data != 0])
    values = np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)
    if values.size == 0:
        raise ValueError("the parcellation has no nonzero label")
    n_rows = int(bool(meshes)) + int(volume is not None)
    figure = _new_figure((max(4.0 * 2 * len(meshes), 12.0), 3.6 * n_rows), dpi)
    if meshes:
        _draw_surfaces(figure, (n_rows, 0), meshes, surface_labels, values, sides)
    if volume is not None:
        # On this figure's white background (white titles vanished there).
        _draw_slices(figure, (n_rows, n_rows - 1), volume, volume_data, values,
                     title_color="black")
    figure.suptitle(title or f"{values.size} clusters")
    return _finish(figure, output_file, force)


# --------------------------------------------------------------------------
# numbers
# --------------------------------------------------------------------------
def plot_cluster_sizes(sizes, *, unit="voxels", title=None, output_file=None, force=False,
                       figsize=(6.4, 4.2), dpi=100):
    """Histogram of cluster sizes (logarithmic bins), with the median marked.

    Parameters
    ----------
    sizes : array-like of int
        Features per cluster (``ReNA.sizes_``).
    unit : str, default="voxels"
        What a feature is, for the axis label.

    Returns
    -------
    matplotlib.figure.Figure
    """
    sizes = np.asarray(sizes)
    if sizes.ndim != 1 or sizes.size == 0 or (sizes < 1).any():
        raise ValueError(f"sizes must be a non-empty 1-D array of positive counts, "
                         f"got shape {sizes.shape}")
    figure = _new_figure(figsize, dpi)
    ax = figure.add_subplot()
    edges = np.unique(np.round(np.geomspace(sizes.min(), sizes.max() + 1, 40)))
    ax.hist(sizes, bins=edges, color="#3b6fb6", edgecolor="white", linewidth=0.5)
    median = float(np.median(sizes))
    ax.axvline(median, color="#d1495b", linewidth=1.5, label=f"median {median:g}")
    ax.set_xscale("log")
    # A few sizes as plain numbers: within a decade or two, matplotlib's
    # minor log labels (3x10^0, 4x10^0...) ran into each other.
    from matplotlib.ticker import MaxNLocator, NullFormatter

    ticks = np.unique(np.round(np.geomspace(sizes.min(), sizes.max(), 6)))
    ax.set_xticks(ticks, labels=[f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))   # counts of clusters
    ax.set_xlabel(f"cluster size ({unit})")
    ax.set_ylabel("number of clusters")
    ax.legend(frameon=False)
    ax.set_title(title or f"{sizes.size} clusters, largest {sizes.max()} {unit}")
    figure.tight_layout()
    return _finish(figure, output_file, force)


#: What the error is, on the curve's axis and in the docstrings.
ERROR_DEFINITION = "||X - R|| / ||X - X's row means||"


def relative_error(X, approximation):
    """``||X - R|| / ||X - X's row means||`` (Frobenius norms), R the
    ``approximation`` (each feature's cluster mean), as the benchmarks
    report it.

    Centred on each sample's mean over the features: a baseline shared by
    every feature (a BOLD scan's mean intensity, often in the thousands) is
    kept whole by any clustering, and divided into ``||X||`` it would leave
    every K near 0. 0 for the best K (one cluster per feature), 1 for one
    cluster over a connected graph (the row means themselves).

    Accumulated one sample at a time in float64: float32 data keep their
    precision and no (n_samples, n_features) float64 copy is made.
    """
    lost = spread = 0.0
    for x, r in zip(X, approximation):
        d = np.subtract(x, r, dtype=np.float64)
        lost += float(d @ d)
        c = np.subtract(x, np.mean(x, dtype=np.float64), dtype=np.float64)
        spread += float(c @ c)
    # Every row constant over the features: each cluster mean is that
    # constant, nothing but rounding is lost (and 0 / 0 would warn).
    return float(np.sqrt(lost / spread)) if spread > 0 else 0.0


def plot_compression_curve(n_clusters, errors, *, title=None, output_file=None, force=False,
                           figsize=(6.4, 4.2), dpi=100):
    """Relative compression error against the number of clusters (log scale),
    the axis named with its definition, ``||X - R|| / ||X - X's row means||``.

    Parameters
    ----------
    n_clusters : sequence of int
    errors : sequence of float
        For example from :func:`compression_errors` (values in [0, 1]).

    Returns
    -------
    matplotlib.figure.Figure
    """
    n_clusters = np.asarray(n_clusters, dtype=np.float64)
    errors = np.asarray(errors, dtype=np.float64)
    if n_clusters.shape != errors.shape or n_clusters.ndim != 1 or n_clusters.size == 0:
        raise ValueError(f"n_clusters and errors must be 1-D of one length, got shapes "
                         f"{n_clusters.shape} and {errors.shape}")
    figure = _new_figure(figsize, dpi)
    ax = figure.add_subplot()
    ax.plot(n_clusters, errors, marker="o", color="#3b6fb6")
    for k, e in zip(n_clusters, errors):
        ax.annotate(f"{e:.2f}", (k, e), textcoords="offset points", xytext=(0, 7),
                    ha="center", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("number of clusters K")
    ax.set_ylabel(f"relative error {ERROR_DEFINITION}", fontsize=9)
    ax.set_ylim(0, max(1.0, float(errors.max()) * 1.1))
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(title or "ReNA: signal lost to cluster means")
    figure.tight_layout()
    return _finish(figure, output_file, force)
