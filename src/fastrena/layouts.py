"""Layouts: which features, on which graph, in which images.

A layout is fastrena's one model of a feature space, built once from
whatever the user gives (:func:`feature_space` for the estimator's
``mask_img`` / ``connectivity``; :func:`mask_layout`,
:func:`surface_layout` for files). It gives the graph (``graph``), the
estimator's fitted ``mask_img_`` (as nilearn users expect it), reads
images into ``(n_scans, n_features)`` (``read``; :mod:`fastrena.reading`
for many images) and writes labels and values back as images
(``to_img``, ``to_gifti``).

* :class:`VolumeLayout`: the in-mask voxels of a 3-D grid, C order.
* :class:`SurfaceLayout`: the masked vertices of mesh parts (hemispheres),
  part after part (:mod:`fastrena.surfaces`, re-exported here).
* :class:`GraphLayout`: features on a graph and nothing else (a
  ``connectivity`` matrix, a 2-D array mask, a 1-D chain): no images.

* Grayordinates (CIFTI-2) are :class:`fastrena.grayordinates.GrayordinateLayout`:
  surface and volume structures of one file, no edge between them.

Every layout is a :class:`Layout`. See docs/design.md.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from ._layout import BLOCK_BYTES, Layout
from ._validation import transposed_hint
from .errors import InputError, warn_user
from .grayordinates import grayordinate_layout
from .graphs import cached_adjacency_graph, cached_lattice_graph, chain_graph
from .images import (describe, in_mask, is_cifti, is_nilearn_object, load_volume,
                     nibabel_module, read_data, volume_3d_data)
from .surfaces import SurfaceLayout, surface_layout, surface_layout_of

if TYPE_CHECKING:  # annotations only: not imported at run time
    from nibabel import Nifti1Image
    from nibabel.spatialimages import SpatialImage
    from numpy.typing import ArrayLike, NDArray

    from .graphs import FeatureGraph

__all__ = [
    "ACCEPTED_MASKS",
    "GraphLayout",
    "Layout",
    "SurfaceLayout",
    "VolumeLayout",
    "feature_space",
    "layout_of_estimator",
    "mask_img_layout",
    "mask_layout",
    "surface_layout",
]

# World coordinates of two grids closer than this (mm) are the same grid.
AFFINE_TOLERANCE = 1e-4


# --------------------------------------------------------------------------
# where features live: a 3-D mask, or masked mesh parts
# --------------------------------------------------------------------------
def _check_same_grid(img, what, layout):
    what = describe(img, what)
    shape = layout.mask.shape
    if tuple(img.shape[:3]) != tuple(shape):
        raise InputError(f"{what} has shape {tuple(img.shape[:3])} but {layout.source} has "
                         f"shape {tuple(shape)}; they must be on the same grid")
    difference = float(np.max(np.abs(np.asarray(img.affine) - layout.affine)))
    if difference > AFFINE_TOLERANCE:
        raise InputError(f"{what} has an affine that differs from {layout.source}'s "
                         f"(by up to {difference:.4g} mm); they must be on the same grid")


def volume_count(img, what):
    """Number of volumes of a 3-D (1) or 4-D image; other shapes are errors."""
    shape = tuple(img.shape)
    if len(shape) == 4:
        return shape[3]
    if len(shape) == 3:
        return 1
    raise InputError(f"{describe(img, what)} must be a 3-D or 4-D image, got shape {shape}")


def volume_blocks(img, n_volumes, what, start=0, stop=None):
    """The data of a loaded volume image as 4-D blocks of a few volumes:
    volumes ``start`` to ``stop`` (default: all)."""
    stop = n_volumes if stop is None else stop
    step = max(1, BLOCK_BYTES // (8 * int(np.prod(img.shape[:3]))))
    for first in range(start, stop, step):
        if img.ndim == 3:
            yield read_data(img, what)[..., None]
        else:
            yield read_data(img, what, (..., slice(first, min(first + step, stop))))


@dataclass(frozen=True, eq=False, repr=False)
class VolumeLayout(Layout):
    """Features are the in-mask voxels of a 3-D grid, in C order.

    Parameters
    ----------
    mask : ndarray of bool, 3-D
    affine : ndarray of float64, shape (4, 4)
    source : str, default="the mask"
        What the grid came from, for error messages.
    image : nibabel image or ndarray of bool, optional
        What the mask came from, kept as the estimator's ``mask_img_``.
    """

    mask: NDArray[np.bool_]
    affine: NDArray[np.float64]
    source: str = "the mask"
    image: SpatialImage | NDArray[np.bool_] | None = None

    @property
    def n_features(self) -> int:
        return int(np.count_nonzero(self.mask))

    def __repr__(self):
        shape = "x".join(map(str, self.mask.shape))
        return f"VolumeLayout({self.n_features} voxels of a {shape} grid)"

    @property
    def graph(self) -> FeatureGraph:
        """The 6-connected lattice of the in-mask voxels (built once per
        mask content in a process: see :class:`fastrena.graphs.GraphCache`)."""
        return cached_lattice_graph(self.mask)

    @property
    def mask_img_(self) -> SpatialImage | NDArray[np.bool_]:
        """The fitted ``mask_img_``: the image (or array) the mask came
        from, else a uint8 ``Nifti1Image`` of the mask."""
        if self.image is not None:
            return self.image
        return nibabel_module().Nifti1Image(self.mask.astype(np.uint8), self.affine)

    def require_images(self) -> None:
        """Nothing to check: a volume layout reads and writes NIfTI images."""

    def n_scans(self, img: str | os.PathLike | SpatialImage, what: str) -> int:
        """Check that ``img`` is a 3-D/4-D image on the mask's grid (reading
        its header only); return its number of volumes."""
        img = load_volume(img, what)
        n = volume_count(img, what)
        _check_same_grid(img, what, self)
        return n

    def read(self, img: str | os.PathLike | SpatialImage, what: str, start: int = 0,
             stop: int | None = None) -> Iterator[NDArray[Any]]:
        """The in-mask values of ``img``, as blocks of shape (n_volumes, n_features):
        volumes ``start`` to ``stop`` (default: all).

        Raises :class:`InputError` on NaN or infinite values in the mask;
        warns of a volume that is 0 at every in-mask voxel (a dropped or
        empty scan, which would read as a scan of a flat brain).
        """
        img = load_volume(img, what)
        n = self.n_scans(img, what)
        first = start
        for block in volume_blocks(img, n, what, start, stop):
            rows = block[self.mask].T
            if not np.isfinite(rows).all():
                volume = int(np.flatnonzero(~np.isfinite(rows).all(axis=1))[0])
                n_bad = int(np.count_nonzero(~np.isfinite(rows[volume])))
                raise InputError(f"{describe(img, what)} has NaN or infinite values "
                                 f"inside the mask (volume {first + volume}, at {n_bad} "
                                 f"voxel{'s' if n_bad > 1 else ''}): give a mask that "
                                 "leaves them out, or none (a mask computed from the "
                                 "images leaves out every voxel that is not finite)")
            empty = np.flatnonzero(~rows.any(axis=1))
            if empty.shape[0] and rows.shape[1]:
                many = empty.shape[0] > 1
                shown = ", ".join(str(first + int(v)) for v in empty[:5])
                warn_user(f"{describe(img, what)}: volume{'s' * many} {shown}"
                          f"{', ...' * (empty.shape[0] > 5)} {'are' if many else 'is'} 0 at "
                          "every in-mask voxel (a dropped or empty scan?): read as "
                          + ("scans of zeros; leave them out if they are not scans" if many
                             else "a scan of zeros; leave it out if it is not a scan"))
            first += rows.shape[0]
            yield rows

    def to_img(self, rows: ArrayLike) -> Nifti1Image:
        """A NIfTI image with ``rows`` in the mask and 0 elsewhere.

        ``rows`` of shape (n_features,) gives a 3-D image, (n, n_features)
        a 4-D image of n volumes; the dtype is kept.
        """
        rows = np.asarray(rows)
        grid = np.zeros(self.mask.shape + rows.shape[:-1][::-1], dtype=rows.dtype)
        grid[self.mask] = rows.T
        return nibabel_module().Nifti1Image(grid, self.affine)


def mask_layout(mask_img: Any, what: str = "mask_img") -> Layout:
    """The layout of a ``mask_img``: a NIfTI path or image (3-D, nonzero =
    in), a nilearn SurfaceImage, a nilearn masker (its mask, as the
    estimator reads it), or a layout (returned as is). ``what`` names it in
    error messages."""
    if isinstance(mask_img, Layout):
        return mask_img
    if _nilearn_kind(mask_img) in ("surface_masker", "nifti_masker"):
        # What ReNA(mask_img=masker) was given takes the images too.
        mask_img = _fitted_masker_mask(mask_img, what, estimator=False)
    if is_cifti(mask_img):
        return _cifti_layout(mask_img)
    if is_nilearn_object(mask_img) and hasattr(mask_img, "mesh"):
        return surface_layout_of(mask_img)
    img, data = volume_3d_data(mask_img, what)
    mask = in_mask(data, describe(img, what))
    if not mask.any():
        raise InputError(f"{describe(img, what)} has no in-mask voxel (shape {mask.shape}, "
                         "all zero)")
    return VolumeLayout(mask, np.asarray(img.affine, dtype=np.float64))


@dataclass(frozen=True, eq=False, repr=False)
class GraphLayout(Layout):
    """Features on a graph and nothing else: a ``connectivity`` matrix, a
    2-D array mask or a 1-D chain. It has no image grid: reading or
    writing images raises :class:`InputError` saying why (``why``).

    Parameters
    ----------
    graph : FeatureGraph
    mask_img_ : nibabel image, ndarray of bool or None
        The estimator's fitted ``mask_img_`` (a 2-D mask, or None).
    why : str
        Why there are no images, for the error.
    """

    graph: FeatureGraph
    mask_img_: SpatialImage | NDArray[np.bool_] | None = None
    why: str = ("this ReNA was fitted without mask_img (on a connectivity graph or a "
                "1-D chain): it has no image grid to write to")

    def __repr__(self):
        return f"GraphLayout({self.graph.n_nodes} nodes, {self.graph.u.shape[0]} edges)"

    @property
    def n_features(self) -> int:
        return self.graph.n_nodes

    def require_images(self) -> NoReturn:
        """Raise :class:`InputError` saying why there are no images (``why``)."""
        raise InputError(self.why)


def layout_of_estimator(rena):
    """The layout of a fitted ReNA, checked to read and write images."""
    layout = rena.layout_
    layout.require_images()
    return layout


# --------------------------------------------------------------------------
# the estimator's mask_img and connectivity
# --------------------------------------------------------------------------
ACCEPTED_MASKS = (
    "None, a path (str or pathlib.Path) to a NIfTI image, a nibabel "
    "Nifti1Image/Nifti2Image, a 2-D or 3-D boolean (or 0/1) numpy array, a "
    "nilearn SurfaceImage, a fitted nilearn NiftiMasker or SurfaceMasker, a dense "
    "CIFTI-2 file (path or image) or a fastrena layout (such as "
    "fastrena.io.grayordinate_layout's)"
)


def _nilearn_kind(obj):
    """'surface_image', 'surface_masker', 'nifti_masker' or None."""
    if not is_nilearn_object(obj) or "nilearn" not in sys.modules:
        return None
    from nilearn.surface import SurfaceImage

    if isinstance(obj, SurfaceImage):
        return "surface_image"
    from nilearn.maskers import SurfaceMasker

    if isinstance(obj, SurfaceMasker):
        return "surface_masker"
    if hasattr(obj, "mask_img") and hasattr(obj, "fit") and hasattr(obj, "transform"):
        return "nifti_masker"
    return None


def _fitted_masker_mask(masker, what="mask_img", estimator=True):
    """The mask of a nilearn masker: its ``mask_img_``; for an unfitted
    masker that carries its own ``mask_img`` (scikit-learn's ``clone``,
    which GridSearchCV and hidimstat call, gives one), that of a fitted
    copy (the user's masker is left as it is). ``what`` names it in the
    error; ``estimator``: given to ReNA (the error then says what clone
    does to a masker fitted on data)."""
    mask = getattr(masker, "mask_img_", None)
    if mask is not None:
        return mask
    if getattr(masker, "mask_img", None) is not None:
        from sklearn.base import clone

        return clone(masker).fit().mask_img_
    from sklearn.exceptions import NotFittedError

    message = (f"{what} is a {type(masker).__name__} that has not been fitted and has no "
               "mask_img of its own; fit it first (its mask_img_ is used), or give it a "
               "mask_img")
    if estimator:
        message += (". A masker fitted on data (its mask computed from the images) is "
                    "unfitted again in a copy made by scikit-learn's clone (as "
                    "cross_val_score, GridSearchCV and hidimstat make): pass its mask, "
                    "mask_img=masker.mask_img_, to ReNA instead")
    raise NotFittedError(message)


def _volume_mask_array(img):
    """Boolean in-mask array of a nibabel image (2-D, 3-D, or 4-D with one volume)."""
    data = np.asanyarray(img.dataobj)
    if data.ndim == 4:
        if data.shape[3] != 1:
            raise ValueError(f"mask_img is 4-D with {data.shape[3]} volumes, shape "
                             f"{data.shape}; a mask must have exactly one volume")
        data = data[..., 0]
    if data.ndim not in (2, 3):
        raise ValueError(f"mask_img must be a 2-D or 3-D image, got shape {data.shape}")
    return in_mask(data, describe(img, "mask_img"))


def _load_nifti(path):
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"mask_img: no such file: '{path}'")
    try:
        img = nibabel_module().load(str(path))
    except Exception as exc:  # nibabel raises several types for bad files
        raise ValueError(f"mask_img: '{path}' is not a readable NIfTI image ({exc})") from exc
    if not hasattr(img, "dataobj") or not hasattr(img, "affine"):
        raise ValueError(f"mask_img: '{path}' is not a volume image")
    return img


def _cifti_layout(cifti):
    """The layout of a dense CIFTI-2 file (path or image) given as
    ``mask_img``: its grayordinates, which need no mesh only without
    surface structures."""
    try:
        return grayordinate_layout(cifti, None, "mask_img")
    except InputError as exc:
        if "carries no surface geometry" not in str(exc):
            raise
        raise InputError(f"{exc}; for ReNA, give mask_img=fastrena.io.grayordinate_layout("
                         "path, meshes)") from None


def _array_mask(arr):
    arr = np.asarray(arr)
    if arr.ndim not in (2, 3):
        raise ValueError(
            f"mask_img as an array must be 2-D (image) or 3-D (volume), got shape {arr.shape}"
        )
    if arr.dtype != bool:
        if not np.issubdtype(arr.dtype, np.number) or not np.isin(arr, (0, 1)).all():
            raise ValueError(
                "mask_img as an array must be boolean or contain only 0 and 1; "
                f"got dtype {arr.dtype}" + (
                    f" with values {np.unique(arr)[:5].tolist()}..."
                    if np.issubdtype(arr.dtype, np.number) else ""
                )
            )
    return arr != 0


def _is_nibabel_image(obj):
    if "nibabel" not in sys.modules:
        return False
    from nibabel.spatialimages import SpatialImage

    return isinstance(obj, SpatialImage)


def _grid_layout(mask, affine, image):
    """A 3-D mask: a :class:`VolumeLayout`; a 2-D one: graph only."""
    if not mask.any():
        raise ValueError(f"mask_img has no in-mask voxel (shape {mask.shape}, all zero)")
    if mask.ndim == 3:
        return VolumeLayout(mask, affine, "mask_img", image)
    return GraphLayout(cached_lattice_graph(mask), image,
                       f"this ReNA was fitted on a {mask.ndim}-D mask; images need a 3-D mask")


def mask_img_layout(mask_img):
    """The layout of the estimator's ``mask_img`` (not None; see
    :data:`ACCEPTED_MASKS`, or a layout, returned as is)."""
    if isinstance(mask_img, Layout):
        return mask_img
    kind = _nilearn_kind(mask_img)
    if kind in ("surface_masker", "nifti_masker"):
        mask_img = _fitted_masker_mask(mask_img)
        kind = _nilearn_kind(mask_img)
    if kind == "surface_image":
        layout = surface_layout_of(mask_img)
        if layout.n_features == 0:
            raise ValueError("mask_img has no in-mask vertex")
        return layout
    if is_cifti(mask_img):
        return _cifti_layout(mask_img)
    if isinstance(mask_img, (str, Path)):
        mask_img = _load_nifti(mask_img)
    if _is_nibabel_image(mask_img):
        affine = np.asarray(mask_img.affine, dtype=np.float64)
        return _grid_layout(_volume_mask_array(mask_img), affine, mask_img)
    if isinstance(mask_img, np.ndarray):
        mask = _array_mask(mask_img)
        # A bare array has no affine: voxel coordinates.
        return _grid_layout(mask, np.eye(4), mask)
    # nilearn's words for this error (code and tests match them), then ours.
    raise TypeError(f"The mask image should be a Niimg-like object, a SurfaceImage object "
                    f"or a SurfaceMasker. Instead a {type(mask_img).__name__} object was "
                    f"provided: mask_img must be {ACCEPTED_MASKS}")


def feature_space(mask_img, connectivity, n_features, n_samples=None, data=None):
    """The layout of ``n_features`` columns given the estimator's
    ``mask_img`` (see :data:`ACCEPTED_MASKS`, or a layout) and
    ``connectivity`` (a square matrix whose nonzero pattern is the graph,
    or a callable that makes one from ``data.T``, X's features as rows, as
    scikit-learn's ``FeatureAgglomeration`` calls it: for example
    ``functools.partial(kneighbors_graph, n_neighbors=6)``): a 1-D chain
    when both are None.

    Raises the errors of the interface: both given, sizes that do not
    match the number of features (with a hint when they match X's
    ``n_samples`` rows instead), a mask of the wrong type or empty.
    """
    if mask_img is not None and connectivity is not None:
        raise ValueError(
            "mask_img and connectivity are mutually exclusive; got both "
            f"(mask_img a {type(mask_img).__name__}, connectivity a "
            f"{type(connectivity).__name__})"
        )
    name = "connectivity"
    if callable(connectivity):
        if data is None:
            raise ValueError("connectivity is a callable, which makes the graph from X: give "
                             "X too")
        name = f"connectivity(X.T) ({getattr(connectivity, '__name__', 'the callable')})"
        connectivity = connectivity(data.T)
        if connectivity is None:
            raise ValueError(f"{name} returned None; it must return the (n_features, "
                             "n_features) adjacency of X's features")
    if connectivity is not None:
        shape = getattr(connectivity, "shape", None)
        if shape is None:
            connectivity = np.asarray(connectivity)
            shape = connectivity.shape
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(f"{name} must be a square matrix, got shape {tuple(shape)}")
        if shape[0] != n_features:
            raise ValueError(f"{name} has shape {tuple(shape)} but X has {n_features} "
                             f"features; expected ({n_features}, {n_features})"
                             f"{transposed_hint(shape[0], n_samples)}")
        # Built once per matrix content (bootstraps, folds and clones
        # of one estimator fit on one graph: see fastrena.graphs.GraphCache).
        return GraphLayout(cached_adjacency_graph(connectivity))
    if mask_img is None:
        return GraphLayout(chain_graph(n_features))
    layout = mask_img_layout(mask_img)
    if layout.n_features != n_features:
        raise ValueError(f"mask_img has {layout.n_features} in-mask voxels/vertices but X has "
                         f"{n_features} features; they must be equal"
                         f"{transposed_hint(layout.n_features, n_samples)}")
    return layout
