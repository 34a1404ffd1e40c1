"""The pictures of :mod:`fastrena.plotting`, drawn from labels and numbers
alone (no fit): the estimator's report (:mod:`fastrena.report`) draws them
too, and sits below the estimator, where :mod:`fastrena.plotting`, whose
:func:`~fastrena.plotting.compression_errors` fits ReNA, cannot be. What
they are drawn with (figures, slices, projected meshes, rows of panels) is
:mod:`fastrena._drawing`'s.

matplotlib is imported when a function here is called, not when fastrena
(or this module) is imported. Nothing here uses pyplot: each function
draws on a new figure on matplotlib's Agg canvas, or on the ``figure`` it
is given (its size, dpi and face colour set here), and returns it; given
``output_file``, it also writes it (atomically; see
:func:`fastrena.io.save_img`). :mod:`fastrena.plotting`'s functions, the
public ones, give a figure made through pyplot when there is no
``output_file`` (so ``plt.show()`` shows it); the report, which only
writes, never makes one. The docstrings say what the public functions do.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._drawing import (BACKGROUND, SUPTITLE_IN, TITLE_IN, canonical, draw_mesh, finish,
                       label_colors, matplotlib_canvas, new_figure, panel_rows, sample_nearest,
                       slice_points, surface_aspect)
from .errors import MissingDependencyError

if TYPE_CHECKING:  # annotations only: not imported at run time
    from matplotlib.figure import Figure
    from numpy.typing import ArrayLike

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

_UNLABELLED = (0.55, 0.55, 0.55)


# --------------------------------------------------------------------------
# volumes
# --------------------------------------------------------------------------
def _center_of_mass(labels, affine):
    """Where the slices cut by default: the labelled voxel nearest to the
    labels' centre of mass (the centre itself may fall between labelled
    regions, as between two hemispheres' structures)."""
    ijk = np.argwhere(labels != 0)
    nearest = ijk[np.argmin(((ijk - ijk.mean(axis=0)) ** 2).sum(axis=1))]
    return affine[:3, :3] @ nearest + affine[:3, 3]


def _content_box(data, affine):
    """World bounding box (lower, upper corners, mm) of the nonzero voxels
    of ``data`` on a canonical (axis-aligned) grid, voxels whole."""
    lo, hi = np.empty(3), np.empty(3)
    for axis in range(3):
        others = tuple(a for a in range(3) if a != axis)
        filled = np.flatnonzero(np.any(data != 0, axis=others))
        ends = np.array([filled[0] - 0.5, filled[-1] + 0.5])
        world = affine[axis, axis] * ends + affine[axis, 3]
        lo[axis], hi[axis] = world.min(), world.max()
    return lo, hi


def _cropped(points, extent, axis, box):
    """The part of a slice (``points``, ``extent`` from
    :func:`slice_points` on a canonical grid) inside the world ``box``."""
    rest = [a for a in range(3) if a != axis]
    along = [points[:, 0, rest[0]], points[0, :, rest[1]]]
    keep = [(x >= box[0][a]) & (x <= box[1][a]) for x, a in zip(along, rest)]
    if not (keep[0].any() and keep[1].any()):
        return points, extent
    points = points[keep[0]][:, keep[1]]
    half = [(extent[1] - extent[0]) / keep[0].size / 2, (extent[3] - extent[2]) / keep[1].size / 2]
    return points, (points[0, 0, rest[0]] - half[0], points[-1, 0, rest[0]] + half[0],
                    points[0, 0, rest[1]] - half[1], points[0, -1, rest[1]] + half[1])


def _draw_slices(figure, labels, label_data, values, bg_img=None, cut_coords=None):
    """Three orthogonal slices of canonical ``labels`` (data ``label_data``)
    side by side across ``figure``, each cropped to the labels and the
    anatomy (the rest of the grid is empty) so they fill their panels;
    clusters coloured by their rank in ``values``."""
    rank = np.zeros(label_data.shape, dtype=np.int64)
    inside = label_data != 0
    rank[inside] = np.searchsorted(values, label_data[inside]) + 1
    colors = np.vstack([np.zeros(3), label_colors(values)])
    display = labels if bg_img is None else canonical(bg_img, "bg_img")
    anatomy = None if bg_img is None else np.asarray(display.dataobj, dtype=np.float64)
    if cut_coords is None:
        cut_coords = _center_of_mass(label_data, labels.affine)
    lo, hi = _content_box(label_data, labels.affine)
    if anatomy is not None and np.any(anatomy):
        # The head, not the faint background a resampled template keeps
        # around it (nilearn's MNI152 at 2 mm: 46 % of its grid nonzero).
        magnitude = np.abs(anatomy)
        shown = _content_box(magnitude > 0.05 * magnitude.max(), display.affine)
        lo, hi = np.minimum(lo, shown[0]), np.maximum(hi, shown[1])
    # A rim of two voxels, so that nothing touches the panels' edges.
    rim = 2 * np.abs(np.diag(display.affine)[:3])
    lo, hi = lo - rim, hi + rim
    slices = []
    for axis in range(3):
        points, extent = slice_points(display.affine, display.shape, axis, cut_coords[axis])
        slices.append(_cropped(points, extent, axis, (lo, hi)))
    width, height = figure.get_size_inches()
    _, (rectangles,) = panel_rows(
        width, [([(e[1] - e[0]) / (e[3] - e[2]) for _, e in slices], False)], height)
    for axis, (name, rectangle, (points, extent)) in enumerate(
            zip(("sagittal", "coronal", "axial"), rectangles, slices)):
        ax = figure.add_axes(rectangle)
        cut = sample_nearest(rank, labels.affine, points)
        if anatomy is not None:
            background = sample_nearest(anatomy, display.affine, points)
            ax.imshow(background.T, origin="lower", extent=extent, cmap="gray",
                      interpolation="nearest")
        rgba = np.zeros(cut.shape + (4,))
        rgba[..., :3] = colors[cut]
        # Over an anatomy, let it show through the clusters.
        rgba[..., 3] = np.where(cut > 0, 1.0 if anatomy is None else 0.6, 0.0)
        ax.imshow(np.swapaxes(rgba, 0, 1), origin="lower", extent=extent,
                  interpolation="nearest")
        ax.set_title(f"{name}, {'xyz'[axis]} = {cut_coords[axis]:.0f} mm",
                     color="white", fontsize=10)
        ax.set_facecolor(BACKGROUND)
        ax.set_axis_off()


def plot_parcellation(labels_img: Any, bg_img: Any = None, *,
                      cut_coords: Sequence[float] | None = None, title: str | None = None,
                      output_file: str | os.PathLike | None = None, force: bool = False,
                      figsize: tuple[float, float] = (12, 4.4), dpi: float = 100,
                      figure: Figure | None = None) -> Figure:
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
        Where to write the picture (PNG, SVG, PDF... by name), drawn
        outside pyplot; without it the figure is made through pyplot, for
        ``plt.show()`` or a notebook (see the module's docstring).
    force : bool, default=False
        Overwrite an existing ``output_file``.
    figsize, dpi
        Size of the picture in inches and dots per inch.

    Returns
    -------
    matplotlib.figure.Figure
    """
    labels = canonical(labels_img, "labels_img")
    label_data = np.asarray(labels.dataobj).astype(np.int64)
    values = np.unique(label_data[label_data != 0])
    if values.size == 0:
        raise ValueError("labels_img has no nonzero label")
    figure = new_figure(figsize, dpi, figure, facecolor=BACKGROUND)
    _draw_slices(figure, labels, label_data, values, bg_img, cut_coords)
    figure.suptitle(title or f"{values.size} clusters", color="white",
                    y=1 - SUPTITLE_IN / 2 / figsize[1], va="center")
    return finish(figure, output_file, force)


# --------------------------------------------------------------------------
# surfaces
# --------------------------------------------------------------------------
def _surface_views(meshes, sides):
    """(mesh index, side, view, camera) of each panel: lateral then
    medial for each part. ``sides`` ("left"/"right" per part) when known,
    else from the side of x = 0 the mesh lies on."""
    views = []
    for p, (coords, _) in enumerate(meshes):
        left = coords[:, 0].mean() < 0 if sides is None else sides[p] == "left"
        side = "left" if left else "right"
        # A left hemisphere's lateral face looks to -x: seen from there.
        outward = -1 if left else 1
        views += [(p, side, "lateral", outward), (p, side, "medial", -outward)]
    return views


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


def _draw_surfaces(figure, rectangles, views, meshes, labels, values):
    """The ``views`` (see :func:`_surface_views`) of the meshes in the
    ``rectangles`` of ``figure``; clusters coloured by their rank in
    ``values``, vertices labelled 0 grey."""
    colors = np.vstack([_UNLABELLED, label_colors(values)])
    face_rgb = []
    for (coords, faces), part in zip(meshes, labels):
        rank = np.zeros(part.shape, dtype=np.int64)
        rank[part != 0] = np.searchsorted(values, part[part != 0]) + 1
        # A face takes the colour of its first vertex.
        face_rgb.append(colors[rank[faces[:, 0]]])
    for rectangle, (p, side, view, camera) in zip(rectangles, views):
        ax = figure.add_axes(rectangle)
        draw_mesh(ax, *meshes[p], face_rgb[p], camera)
        ax.set_title(f"{side} {view}", fontsize=10)


def plot_surface_parcellation(meshes: Sequence[tuple[ArrayLike, ArrayLike]],
                              labels: Sequence[ArrayLike], *, title: str | None = None,
                              output_file: str | os.PathLike | None = None,
                              force: bool = False, figsize: tuple[float, float] | None = None,
                              dpi: float = 100, figure: Figure | None = None) -> Figure:
    """Lateral and medial views of each mesh part, one colour per cluster.

    Each view is an orthographic projection along the x axis, drawn at
    equal scale in mm and filling its panel; the panels fill the
    figure's width.

    Parameters
    ----------
    meshes : sequence of (coordinates (n, 3), faces (m, 3)), one per part
    labels : sequence of int arrays (n,), one per part
        0 = not in the mask (drawn grey).
    title : str, optional
    output_file : str or path, optional
        Where to write the picture; without it the figure is made through
        pyplot (``plt.show()`` shows it; see the module's docstring).
    force : bool, default=False
    figsize : (width, height) in inches, optional
        Default: 16 inches wide, as high as the views need. The views keep
        their proportions: in a given size they shrink to fit.
    dpi : int, default=100

    Returns
    -------
    matplotlib.figure.Figure
    """
    meshes, labels = _checked_surfaces(meshes, labels)
    values = np.unique(np.concatenate([part[part != 0] for part in labels]))
    views = _surface_views(meshes, None)
    width, height = figsize if figsize is not None else (16.0, None)
    height, (rectangles,) = panel_rows(
        width, [([surface_aspect(meshes[p][0]) for p, *_ in views], False)], height)
    figure = new_figure((width, height), dpi, figure)
    _draw_surfaces(figure, rectangles, views, meshes, labels, values)
    figure.suptitle(title or f"{values.size} clusters",
                    y=1 - SUPTITLE_IN / 2 / height, va="center")
    return finish(figure, output_file, force)


def plot_grayordinate_parcellation(meshes: Sequence[tuple[ArrayLike, ArrayLike]],
                                   surface_labels: Sequence[ArrayLike],
                                   volume_labels_img: Any = None, *,
                                   sides: Sequence[str] | None = None,
                                   volume_structures: Sequence[str] | None = None,
                                   bg_img: Any = "MNI152", title: str | None = None,
                                   output_file: str | os.PathLike | None = None,
                                   force: bool = False,
                                   figsize: tuple[float, float] | None = None,
                                   dpi: float = 100, figure: Figure | None = None) -> Figure:
    """A parcellation of grayordinates in one picture: lateral and medial
    views of each surface (top row) and axial slices through the volume
    structures' clusters over an anatomical image (bottom row, if any),
    each cluster in the same colour wherever it appears.

    Parameters
    ----------
    meshes, surface_labels : see :func:`plot_surface_parcellation`
    volume_labels_img : nibabel image, optional
        3-D label image of the volume structures (0 = outside them), in
        world coordinates (mm): a CIFTI-2 file's voxels on its affine.
    sides : sequence of "left" / "right", optional
        The hemisphere of each mesh (default: the side of x = 0 it lies on,
        wrong for inflated-sphere or flat meshes).
    volume_structures : sequence of str, optional
        The names of the volume structures (CIFTI-2's
        ``CIFTI_STRUCTURE_THALAMUS_LEFT``...), listed in the row's title.
    bg_img : "MNI152", path, nibabel image or None, default="MNI152"
        Anatomy under the volume structures' slices: "MNI152" is nilearn's
        bundled MNI152 template (1 mm; the space of HCP's and fMRIPrep's
        grayordinates), None a black background.
    title, output_file, force, dpi : see :func:`plot_parcellation`
    figsize : (width, height) in inches, optional
        Default: 16 inches wide, as high as the rows need.

    Returns
    -------
    matplotlib.figure.Figure
    """
    meshes, surface_labels = _checked_surfaces(meshes, surface_labels)
    parts = [part[part != 0] for part in surface_labels]
    volume = None
    if volume_labels_img is not None:
        volume = canonical(volume_labels_img, "volume_labels_img")
        volume_data = np.asarray(volume.dataobj).astype(np.int64)
        parts.append(volume_data[volume_data != 0])
    values = np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)
    if values.size == 0:
        raise ValueError("the parcellation has no nonzero label")
    rows = []
    if meshes:
        views = _surface_views(meshes, sides)
        rows.append(([surface_aspect(meshes[p][0]) for p, *_ in views], False))
    if volume is not None and np.any(volume_data):
        anatomy = _anatomy(bg_img)
        display = anatomy if anatomy is not None else volume
        cuts = _axial_cuts(volume_data, volume.affine)
        box = _crop_box(volume_data, volume.affine, display)
        rows.append(([(box[1] - box[0]) / (box[3] - box[2])] * len(cuts), True))
    width, height = figsize if figsize is not None else (16.0, None)
    height, rectangles = panel_rows(width, rows, height)
    figure = new_figure((width, height), dpi, figure)
    figure.suptitle(title or f"{values.size} clusters",
                    y=1 - SUPTITLE_IN / 2 / height, va="center")
    if meshes:
        _draw_surfaces(figure, rectangles[0], views, meshes, surface_labels, values)
    if len(rows) > int(bool(meshes)):
        row = rectangles[-1]
        for rectangle, z in zip(row, cuts):
            _draw_axial(figure.add_axes(rectangle), volume, volume_data, values, anatomy,
                        display, z, box)
        # The row's title, in its band above the slices' titles.
        figure.text(0.5, row[0][1] + row[0][3] + (TITLE_IN + 0.05) / height,
                    _subcortical_title(volume_structures, bg_img, anatomy), ha="center",
                    va="bottom", color="black", fontsize=10)
    return finish(figure, output_file, force)


#: Axial slices in the volume structures' row, and the anatomy shown
#: around the structures (mm).
_AXIAL_SLICES = 6
_MARGIN_MM = 20.0


def _anatomy(bg_img):
    """The canonical anatomical image under the slices, or None."""
    if bg_img is None:
        return None
    if isinstance(bg_img, str) and bg_img == "MNI152":
        try:
            from nilearn.datasets import load_mni152_template
        except ImportError as exc:
            raise MissingDependencyError("bg_img='MNI152' needs nilearn: pip install "
                                         "fastrena[neuro], or give bg_img") from exc
        # Bundled with nilearn at 1 mm (no download; resolution=2 resamples it).
        bg_img = load_mni152_template(resolution=1)
    return canonical(bg_img, "bg_img")


def _world(ijk, affine):
    return ijk @ affine[:3, :3].T + affine[:3, 3]


def _axial_cuts(data, affine):
    """z (mm) of up to :data:`_AXIAL_SLICES` axial slices through labelled
    voxels: the labelled voxels' z at evenly spaced quantiles, so that the
    slices go where most of the structures are; each a voxel centre."""
    z = _world(np.argwhere(data != 0), affine)[:, 2]
    levels = np.unique(z)
    quantiles = np.quantile(z, (np.arange(_AXIAL_SLICES) + 0.5) / _AXIAL_SLICES)
    nearest = np.abs(levels[None, :] - quantiles[:, None]).argmin(axis=1)
    return levels[np.unique(nearest)]


def _crop_box(data, affine, display):
    """(x min, x max, y min, y max) in mm shown by the slices: the labelled
    voxels' extent and a margin of anatomy, within the display image's."""
    xyz = _world(np.argwhere(data != 0), affine)
    corners = _world(np.array([[0, 0, 0], np.array(display.shape) - 1]), display.affine)
    lo = np.maximum(xyz[:, :2].min(axis=0) - _MARGIN_MM, corners.min(axis=0)[:2])
    hi = np.minimum(xyz[:, :2].max(axis=0) + _MARGIN_MM, corners.max(axis=0)[:2])
    return lo[0], hi[0], lo[1], hi[1]


def _draw_axial(ax, volume, volume_data, values, anatomy, display, z, box):
    """The axial slice at ``z`` mm of the labels (canonical ``volume``)
    over ``anatomy`` (or black), on the display image's grid, cropped to
    ``box``; neurological orientation (left on the left)."""
    rank = np.zeros(volume_data.shape, dtype=np.int64)
    inside = volume_data != 0
    rank[inside] = np.searchsorted(values, volume_data[inside]) + 1
    colors = np.vstack([np.zeros(3), label_colors(values)])
    points, _ = slice_points(display.affine, display.shape, 2, z)
    keep_x = (points[:, 0, 0] >= box[0]) & (points[:, 0, 0] <= box[1])
    keep_y = (points[0, :, 1] >= box[2]) & (points[0, :, 1] <= box[3])
    points = points[keep_x][:, keep_y]
    half = np.abs(np.diag(display.affine)[:2]) / 2
    extent = (points[0, 0, 0] - half[0], points[-1, 0, 0] + half[0],
              points[0, 0, 1] - half[1], points[0, -1, 1] + half[1])
    if anatomy is not None:
        background = sample_nearest(np.asarray(anatomy.dataobj, dtype=np.float64),
                                     anatomy.affine, points)
        ax.imshow(background.T, origin="lower", extent=extent, cmap="gray",
                  interpolation="nearest")
    cut = sample_nearest(rank, volume.affine, points)
    rgba = np.zeros(cut.shape + (4,))
    rgba[..., :3] = colors[cut]
    rgba[..., 3] = cut > 0
    ax.imshow(np.swapaxes(rgba, 0, 1), origin="lower", extent=extent, interpolation="nearest")
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_facecolor("black")
    ax.set_xticks([])
    ax.set_yticks([])
    # On the figure's white background, whatever matplotlib's style (white
    # titles vanished there).
    ax.set_title(f"z = {z:.0f}", color="black", fontsize=10)
    for x, side in ((0.03, "L"), (0.97, "R")):
        ax.text(x, 0.03, side, transform=ax.transAxes, color="white", fontsize=8,
                ha="left" if side == "L" else "right", va="bottom",
                bbox={"facecolor": "black", "edgecolor": "none", "pad": 1.5})


def _subcortical_title(structures, bg_img, anatomy):
    """What the slices show: the volume structures by name, the anatomy."""
    under = ("" if anatomy is None else " over the MNI152 template"
             if isinstance(bg_img, str) and bg_img == "MNI152" else " over bg_img")
    text = f"volume structures, axial slices{under} (z in mm)"
    if not structures:
        return text
    sides, alone = {}, []
    for name in structures:
        words = name.upper().removeprefix("CIFTI_STRUCTURE_")
        for side in ("_LEFT", "_RIGHT"):
            if words.endswith(side):
                sides.setdefault(words[:-len(side)].replace("_", " ").lower(), set()).add(side)
                break
        else:
            alone.append(words.replace("_", " ").lower())
    both = [base for base, seen in sides.items() if len(seen) == 2]
    one = [f"{base} ({'left' if '_LEFT' in seen else 'right'})"
           for base, seen in sides.items() if len(seen) == 1]
    groups = [f"left and right {', '.join(both)}"] if both else []
    return f"{text}: {'; '.join(groups + one + alone)}"


# --------------------------------------------------------------------------
# numbers
# --------------------------------------------------------------------------
def plot_cluster_sizes(sizes: ArrayLike, *, unit: str = "voxels", title: str | None = None,
                       output_file: str | os.PathLike | None = None, force: bool = False,
                       figsize: tuple[float, float] = (6.4, 4.2), dpi: float = 100,
                       figure: Figure | None = None) -> Figure:
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
    figure = new_figure(figsize, dpi, figure)
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
    return finish(figure, output_file, force)


#: What the error is, on the curve's axis and in the docstrings.
ERROR_DEFINITION = "||X - R|| / ||X - X's row means||"


def relative_error(X: ArrayLike, approximation: ArrayLike) -> float:
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


def plot_compression_curve(n_clusters: ArrayLike, errors: ArrayLike, *,
                           title: str | None = None, output_file: str | os.PathLike | None = None,
                           force: bool = False, figsize: tuple[float, float] = (6.4, 4.2),
                           dpi: float = 100, figure: Figure | None = None) -> Figure:
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
    figure = new_figure(figsize, dpi, figure)
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
    return finish(figure, output_file, force)
