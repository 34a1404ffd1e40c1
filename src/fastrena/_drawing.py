"""What fastrena's pictures (:mod:`fastrena._pictures`) are drawn with:
figures on matplotlib's Agg canvas (never through pyplot: that choice is
:mod:`fastrena.plotting`'s, which passes a figure down), images and their
slices in world coordinates, meshes projected along the x axis, and rows
of panels that fill a figure's width.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._colors import cluster_colors
from .errors import MissingDependencyError
from .files import write_atomically
from .images import load_volume

if TYPE_CHECKING:  # annotations only: not imported at run time
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

#: The dark background of slices drawn without an anatomy.
BACKGROUND = "#101014"


def matplotlib_canvas() -> tuple[type[Figure], type[FigureCanvasAgg]]:
    """matplotlib's Figure and Agg canvas, or a clear ImportError."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingDependencyError("fastrena.plotting needs matplotlib: "
                          "pip install fastrena[neuro]") from exc
    return Figure, FigureCanvasAgg


def new_figure(figsize, dpi, figure=None, facecolor="white"):
    """A figure to draw on: ``figure`` (one pyplot made, from
    :mod:`fastrena.plotting`) given this size, dpi and face colour, else a
    new one on the Agg canvas, outside pyplot."""
    Figure, FigureCanvasAgg = matplotlib_canvas()
    if figure is not None:
        figure.set_dpi(dpi)
        figure.set_size_inches(figsize)
        figure.set_facecolor(facecolor)
        return figure
    figure = Figure(figsize=figsize, dpi=dpi, facecolor=facecolor)
    FigureCanvasAgg(figure)
    return figure


def finish(figure, output_file, force):
    if output_file is not None:
        # savefig picks the format from the name; the temporary file keeps it.
        write_atomically(output_file,
                         lambda tmp: figure.savefig(tmp, facecolor=figure.get_facecolor()),
                         force)
    return figure


def label_colors(values):
    """RGB per distinct nonzero label value (sorted), as in GIfTI label tables."""
    return cluster_colors(values.shape[0])


def canonical(img, what):
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


def sample_nearest(data, affine, points):
    """``data`` at world ``points`` (..., 3) by nearest voxel; 0 outside."""
    index = np.rint(_world_to_voxel(affine, points)).astype(np.int64)
    inside = np.all((index >= 0) & (index < np.array(data.shape)), axis=-1)
    out = np.zeros(points.shape[:-1], dtype=data.dtype)
    out[inside] = data[tuple(index[inside].T)]
    return out


def slice_points(affine, shape, axis, position):
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


def _face_normals(coords, faces):
    normals = np.cross(coords[faces[:, 1]] - coords[faces[:, 0]],
                       coords[faces[:, 2]] - coords[faces[:, 0]])
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return normals / np.where(length > 0, length, 1.0)


def draw_mesh(ax, coords, faces, face_rgb, camera):
    """The mesh seen from far along the x axis, from +x (``camera`` 1) or
    -x (-1), in orthographic projection on the 2-D axes ``ax``: y (to the
    viewer's right when seen from +x) and z (up) in mm, at equal scale,
    the axes' limits the mesh's extent, so the brain fills them."""
    from matplotlib.collections import PolyCollection

    # Light from the camera: faces turned towards the viewer are bright,
    # grazing ones dark, so the folds of the cortex stay visible.
    shade = np.abs(_face_normals(coords, faces)[:, 0])
    rgb = face_rgb * (0.35 + 0.65 * shade)[:, None]
    flat = np.column_stack([camera * coords[:, 1], coords[:, 2]])
    # Painter's algorithm: far faces first, the near ones drawn over them.
    order = np.argsort((camera * coords[:, 0])[faces].mean(axis=1), kind="stable")
    # No antialiasing: it would draw light seams between adjacent triangles.
    ax.add_collection(PolyCollection(flat[faces[order]], facecolors=rgb[order],
                                     edgecolors="none", linewidths=0, antialiased=False))
    (left, bottom), (right, top) = _padded_extent(flat)
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, top)
    ax.set_aspect("equal")
    ax.set_axis_off()


def _padded_extent(points):
    """Lower and upper corners of 2-D ``points``; a flat side is given a
    small nonzero size (axes need one)."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    pad = np.maximum((hi - lo).max() * 0.01, 1e-6) * ((hi - lo) <= 0)
    return lo - pad, hi + pad


def surface_aspect(coords):
    """Width over height of a mesh's lateral view (y extent over z extent)."""
    (left, bottom), (right, top) = _padded_extent(coords[:, 1:])
    return (right - left) / (top - bottom)


#: Heights in inches of the figure's title band, of the band for a row's
#: panel titles (and of one more line above them, for a row that has a
#: title of its own), and the horizontal gap between panels.
SUPTITLE_IN, TITLE_IN, ROW_TITLE_IN, GAP_IN = 0.5, 0.3, 0.25, 0.08


def panel_rows(width, rows, height=None):
    """Place rows of panels: ``rows`` holds, per row, the width-over-height
    ratio of each panel and whether the row has a title. Each row is as
    wide as the figure (``width`` inches), its panels side by side at one
    height, under a band for their titles (and the row's); a band on top
    for the figure's title. Returns the figure's height (``height`` if
    given: the rows then shrink, centred, when they do not fit) and, per
    row, the panels' rectangles as fractions of the figure (for
    ``Figure.add_axes``)."""
    heights = [(width - GAP_IN * (len(aspects) + 1)) / sum(aspects) for aspects, _ in rows]
    bands = [TITLE_IN + ROW_TITLE_IN * titled for _, titled in rows]
    scale = 1.0
    if height is None:
        height = SUPTITLE_IN + sum(bands) + sum(heights)
    else:
        room = height - SUPTITLE_IN - sum(bands)
        scale = min(1.0, max(room, 1e-3) / sum(heights))
    rectangles, top = [], height - SUPTITLE_IN
    for (aspects, _), band, row_height in zip(rows, bands, heights):
        row_height *= scale
        top -= band + row_height
        widths = [a * row_height for a in aspects]
        x = (width - sum(widths) - GAP_IN * (len(widths) - 1)) / 2
        row = []
        for w in widths:
            row.append((x / width, top / height, w / width, row_height / height))
            x += w + GAP_IN
        rectangles.append(row)
    return height, rectangles
