"""Fitting from images, and parcellations as label files.

:func:`fit_images` fits ReNA on images through a layout; a fitted
estimator's labels become label images (:func:`labels_to_img`,
:func:`labels_to_gifti`); :class:`Parcellation` reduces and expands
images with label files alone (:func:`load_parcellation`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.exceptions import NotFittedError

from ._colors import cluster_colors, hex_colors
from ._progress import fit_progress
from .arrays import cluster_means
from .errors import InputError
from .estimator import ReNA
from .images import (describe, is_gifti, load_image, load_surface_part, named_structure,
                     nibabel_module, volume_3d_data)
from .grayordinates import GrayordinateLayout, label_map
from .layouts import SurfaceLayout, VolumeLayout, layout_of_estimator
from .reading import (as_list, float_dtype, read_images, read_rows_into, resolve_layout,
                      scan_counts, scan_names)

if TYPE_CHECKING:  # annotations only: not imported at run time
    from nibabel.cifti2 import Cifti2Image, ParcelsAxis
    from nibabel.gifti import GiftiImage
    from numpy.typing import ArrayLike, DTypeLike

    from .layouts import Layout

__all__ = [
    "Parcellation",
    "fit_images",
    "fit_layout",
    "inverse_transform_img",
    "labels_to_gifti",
    "labels_to_img",
    "labels_to_parcels_img",
    "load_parcellation",
    "transform_images",
]


# --------------------------------------------------------------------------
# fitting and the fitted estimator
# --------------------------------------------------------------------------
def fit_layout(X: ArrayLike, layout: Layout, n_clusters: int = 2, *, progress: bool = False,
               **params: Any) -> ReNA:
    """Fit ReNA on ``X`` whose columns are ``layout``'s features.

    ``progress`` shows a progress bar over the levels; ``params`` are
    ReNA's other parameters (a ``connectivity`` replaces the layout's graph).
    """
    if params.get("connectivity") is not None:
        graph = {"connectivity": params.pop("connectivity")}
    else:
        params.pop("connectivity", None)
        graph = {"mask_img": layout}   # the layout itself: its graph, no round trip
    rena = ReNA(n_clusters=n_clusters, **graph, **params)
    with fit_progress(progress, X.shape[1], min(n_clusters, X.shape[1])):
        rena.fit(X)
    return rena


def fit_images(imgs: Any, mask_img: Any = None, n_clusters: int = 2, *,
               dtype: DTypeLike = np.float32, verbose: int = 0, **params: Any) -> ReNA:
    """Fit ReNA directly on NIfTI images (or nilearn ``SurfaceImage`` objects).

    Parameters
    ----------
    imgs : path, nibabel image or SurfaceImage, or a list of them
        3-D images are one scan, 4-D images one scan per volume. All on
        the mask's grid (same shape and affine).
    mask_img : path, nibabel image or SurfaceImage, optional
        Without it, a mask is computed from the images
        (:func:`compute_mask`); for surfaces every vertex is in.
    n_clusters : int, default=2
    dtype : float32 or float64, default=float32
        Of the data matrix the images are read into.
    verbose : int, default=0
        1 or more shows progress bars (reading the images, the levels of
        the fit) on stderr.
    **params
        Other ReNA parameters: ``scaling``, ``n_iter``, ``threshold``,
        ``memory``, ``memory_level``, ``linkage``.

    Returns
    -------
    ReNA
        Fitted; ``mask_img_`` is the mask used (a ``Nifti1Image`` for
        volumes), so :func:`labels_to_img` and :func:`transform_images`
        work on it.
    """
    layout = resolve_layout(imgs, mask_img, verbose)
    X = read_images(layout, imgs, dtype, verbose)
    return fit_layout(X, layout, n_clusters, progress=verbose > 0, **params)


@dataclass(frozen=True, eq=False)
class Parcellation:
    """Clusters of the features of a layout, as label files store them.

    Parameters
    ----------
    layout : VolumeLayout or SurfaceLayout
    labels : ndarray of int64, shape (n_features,)
        Cluster index of each feature, 0..K-1.
    values : ndarray of int64, shape (K,)
        The label value of each cluster in files (1..K for fastrena's).
    names : tuple of str, optional
        The name of each cluster in a label file's table (a ``.dlabel.nii``
        read back); default ``label_v``.
    """

    layout: object
    labels: np.ndarray
    values: np.ndarray
    names: tuple = None

    @property
    def parcel_names(self) -> list[str]:
        """Each cluster's name: the label table's, else ``label_v``."""
        if self.names is not None:
            return list(self.names)
        return [f"label_{int(v)}" for v in self.values]

    @classmethod
    def from_labels(cls, layout: Layout, labels: ArrayLike) -> Parcellation:
        """Clusters 0..K-1 of a fit, stored as values 1..K (0 = background)."""
        labels = np.asarray(labels, dtype=np.int64)
        return cls(layout, labels, np.arange(1, int(labels.max()) + 2, dtype=np.int64))

    @property
    def n_clusters(self) -> int:
        return int(self.values.shape[0])

    @property
    def sizes(self) -> np.ndarray:
        """Features per cluster."""
        return np.bincount(self.labels, minlength=self.n_clusters)

    def divisors(self, scaling: bool) -> np.ndarray:
        """What cluster sums are divided by: sizes (means), or their square
        roots with ``scaling`` (ReNA's ``scaling=True``)."""
        sizes = self.sizes.astype(np.float64)
        return np.sqrt(sizes) if scaling else sizes

    def reduce(self, imgs: Any, *, scaling: bool = False, dtype: DTypeLike = np.float32,
               verbose: int = 0) -> np.ndarray:
        """Cluster means of images, shape (n_scans, K), images read one at a time."""
        dtype = float_dtype(dtype)
        imgs = as_list(imgs)
        divisors = self.divisors(scaling)
        out = np.empty((sum(scan_counts(self.layout, imgs, scan_names(imgs))), self.n_clusters),
                       dtype=dtype)

        def means(rows):
            return cluster_means(np.ascontiguousarray(rows, dtype=dtype), self.labels, divisors)

        return read_rows_into(self.layout, imgs, out, means, verbose, "transforming")

    def expand(self, X_red: ArrayLike, *, scaling: bool = False,
               what: str = "the array") -> np.ndarray:
        """Each feature takes its cluster's value: (K,) -> (n_features,),
        (n, K) -> (n, n_features). ``what`` names X_red in errors."""
        X_red = np.asarray(X_red)
        if X_red.ndim not in (1, 2) or X_red.shape[-1] != self.n_clusters:
            raise InputError(f"{what} has shape {X_red.shape} but the labels have "
                             f"{self.n_clusters} clusters; it needs {self.n_clusters} columns")
        if scaling:
            X_red = (X_red / np.sqrt(self.sizes)).astype(X_red.dtype, copy=False)
        return X_red[..., self.labels]

    def label_values(self) -> np.ndarray:
        """The label value of each feature, int32 (what label files hold)."""
        return self.values[self.labels].astype(np.int32)

    def label_img(self) -> Any:
        """A NIfTI label image (volumes), a ``SurfaceImage`` (surfaces with
        a ``SurfaceImage`` mask) or a CIFTI-2 dense label file
        (grayordinates): 0 = background, the cluster's value inside."""
        if isinstance(self.layout, GrayordinateLayout):
            return self.layout.to_dlabel(self.label_values(), self.values)
        img = self.layout.to_img(self.label_values())
        if isinstance(self.layout, VolumeLayout):
            img.header.set_intent("label")
        return img

    def label_gifti(self) -> list[GiftiImage]:
        """One GIfTI label image per part (intent NIFTI_INTENT_LABEL, with
        a label table whose colours are those of the plots)."""
        gifti = nibabel_module().gifti
        colors = cluster_colors(self.n_clusters)
        images = []
        for part in self.layout.split(self.label_values()):
            table = gifti.GiftiLabelTable()
            table.labels.append(_gifti_label(gifti, 0, "background", (1.0, 1.0, 1.0, 0.0)))
            for value in np.unique(part[part != 0]):
                rgb = colors[int(np.searchsorted(self.values, value))]
                table.labels.append(_gifti_label(gifti, int(value), f"cluster {value}",
                                                 (*rgb, 1.0)))
            array = gifti.GiftiDataArray(part, intent="NIFTI_INTENT_LABEL",
                                         datatype="NIFTI_TYPE_INT32")
            images.append(gifti.GiftiImage(labeltable=table, darrays=[array]))
        return images


    def lookup_table(self, clusters: Sequence[int] | None = None) -> str:
        """The lookup table of the clusters (all, or the indices
        ``clusters``), as BIDS ``dseg.tsv`` text: columns ``index`` (the
        label value), ``name`` (``label_v``, as the label files and the
        reduced arrays' columns), ``color`` (``#rrggbb``, the pictures'
        colour) and ``size`` (features)."""
        clusters = range(self.n_clusters) if clusters is None else clusters
        colors = hex_colors(self.n_clusters)
        sizes = self.sizes
        lines = ["index\tname\tcolor\tsize"]
        for c in clusters:
            value = int(self.values[c])
            lines.append(f"{value}\tlabel_{value}\t{colors[c]}\t{int(sizes[c])}")
        return "\n".join(lines) + "\n"

    def part_clusters(self) -> list[np.ndarray]:
        """For a surface layout, the clusters (indices) of each part."""
        parts = self.layout.split(self.labels + 1)
        return [np.unique(part[part != 0]) - 1 for part in parts]

    def parcels_img(self, X_red: ArrayLike, row_axis: Any = None,
                    scalar: bool = False) -> Cifti2Image:
        """Cluster means ``X_red`` (n, K) as a parcellated CIFTI-2 file
        (grayordinates only): a series (``.ptseries.nii``, rows as
        ``row_axis`` when it is a series of that length), or maps with
        ``scalar`` (``.pscalar.nii``). Parcels are named as the clusters
        (:attr:`parcel_names`), as ``wb_command -cifti-parcellate`` does."""
        if not isinstance(self.layout, GrayordinateLayout):
            raise InputError("parcellated CIFTI-2 files are made from grayordinates; this "
                             "parcellation is not on CIFTI-2 grayordinates")
        X_red = np.asarray(X_red)
        if X_red.ndim not in (1, 2) or X_red.shape[-1] != self.n_clusters:
            raise InputError(f"X_red has shape {X_red.shape} but the parcellation has "
                             f"{self.n_clusters} clusters; it needs {self.n_clusters} columns")
        return self.layout.to_parcels(X_red, self.labels, self.parcel_names, row_axis, scalar)

    def parcels_axis(self) -> ParcelsAxis:
        """The ``ParcelsAxis`` of the clusters (grayordinates only)."""
        return self.layout.parcels_axis(self.labels, self.parcel_names)


def _gifti_label(gifti, key, name, rgba):
    label = gifti.GiftiLabel(key=key, red=rgba[0], green=rgba[1], blue=rgba[2], alpha=rgba[3])
    label.label = name
    return label


def _parcellation_of(rena):
    if not hasattr(rena, "labels_"):
        # scikit-learn's error, which code that checks for it catches.
        raise NotFittedError(f"this {type(rena).__name__} is not fitted; fit it first")
    return Parcellation.from_labels(layout_of_estimator(rena), rena.labels_)


def labels_to_img(rena: ReNA) -> Any:
    """The label image of a fitted ReNA: 0 = background, clusters 1..K.

    Returns
    -------
    nibabel.Nifti1Image (int32) for a volume mask, nilearn SurfaceImage for
    a surface mask.
    """
    return _parcellation_of(rena).label_img()


def labels_to_gifti(rena: ReNA) -> list[GiftiImage]:
    """The labels of a ReNA fitted on a surface, as one GIfTI label image per
    mesh part (0 = outside the mask, clusters 1..K)."""
    parcellation = _parcellation_of(rena)
    if isinstance(parcellation.layout, GrayordinateLayout):
        raise InputError("this ReNA was fitted on CIFTI-2 grayordinates; use labels_to_img "
                         "(a dense label file, .dlabel.nii)")
    if not isinstance(parcellation.layout, SurfaceLayout):
        raise InputError("this ReNA was fitted on a volume mask; use labels_to_img")
    return parcellation.label_gifti()


def labels_to_parcels_img(rena: ReNA, X_red: ArrayLike, row_axis: Any = None) -> Cifti2Image:
    """Cluster means ``X_red`` of a ReNA fitted on CIFTI-2 grayordinates as
    a parcellated series (``.ptseries.nii``), what ``wb_command
    -cifti-parcellate`` writes: parcels ``label_1..label_K``."""
    return _parcellation_of(rena).parcels_img(X_red, row_axis)


def transform_images(rena: ReNA, imgs: Any, *, dtype: DTypeLike = np.float32,
                     verbose: int = 0) -> np.ndarray:
    """Cluster means of images, shape (``n_scans, n_clusters_``), reading one
    image at a time; equal to ``rena.transform(images_to_array(...))``."""
    return _parcellation_of(rena).reduce(imgs, scaling=rena.scaling, dtype=dtype,
                                         verbose=verbose)


def inverse_transform_img(rena: ReNA, X_red: ArrayLike) -> Any:
    """``rena.inverse_transform(X_red)`` as an image: 3-D for a 1-D
    ``X_red``, 4-D (one volume per row) for a 2-D one; a ``SurfaceImage``
    for a surface mask."""
    layout = layout_of_estimator(rena)
    return layout.to_img(rena.inverse_transform(X_red))


# --------------------------------------------------------------------------
# label files
# --------------------------------------------------------------------------
def _integer_labels(data, what):
    data = np.asarray(data)
    if not np.isfinite(data).all() or (data != np.round(data)).any() or (data < 0).any():
        raise InputError(f"{what} is not a label image: its values must be integers "
                         ">= 0 (0 = background)")
    return data.astype(np.int64)


def load_parcellation(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> Parcellation:
    """The clusters stored in label files: one NIfTI label image, one
    CIFTI-2 dense label file (``.dlabel.nii``), or one GIfTI label file per
    mesh part.

    Label values need not be 1..K: clusters are the distinct nonzero
    values, in increasing order (columns of :meth:`Parcellation.reduce`).
    """
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    images = [load_image(p, "labels") for p in paths]
    names = [describe(img, "labels") for img in images]
    if all(is_gifti(img) for img in images):
        parts, structures = [], []
        for path, img, name in zip(paths, images, names):
            data, found = load_surface_part(img, "labels")
            if data.shape[1] != 1:
                raise InputError(f"{name} has {data.shape[1]} data arrays; "
                                 "a label file has one")
            parts.append(_integer_labels(data[:, 0], name))
            # The hemisphere a label file names checks the data files reduced with it.
            # (nibabel keeps no GIfTI file's name: the path names it.)
            structures.append(named_structure(found, describe(path, "labels")))
        layout = SurfaceLayout(tuple(p != 0 for p in parts), structures=tuple(structures))
        values_per_feature = np.concatenate([p[p != 0] for p in parts])
    elif len(images) == 1 and isinstance(images[0], nibabel_module().cifti2.Cifti2Image):
        brain_models, data, table = label_map(images[0], "labels")
        data = _integer_labels(data, names[0])
        layout = GrayordinateLayout(brain_models, {}, names[0], selected=data != 0)
        values_per_feature = data[data != 0]
        if values_per_feature.size:
            values, labels = np.unique(values_per_feature, return_inverse=True)
            cluster_names = tuple(str(table[v][0]) if v in table else f"label_{v}"
                                  for v in values.tolist())
            return Parcellation(layout, labels.ravel().astype(np.int64), values, cluster_names)
    elif len(images) == 1:
        img, data = volume_3d_data(images[0], "labels")
        data = _integer_labels(data, names[0])
        layout = VolumeLayout(data != 0, np.asarray(img.affine, dtype=np.float64),
                              "the label image")
        values_per_feature = data[data != 0]
    else:
        raise InputError(f"labels: give one NIfTI label image or one GIfTI label file per "
                         f"mesh part, got {len(paths)} files: {', '.join(names)}")
    if values_per_feature.size == 0:
        raise InputError(f"{', '.join(names)}: no nonzero label (every value is 0)")
    values, labels = np.unique(values_per_feature, return_inverse=True)
    return Parcellation(layout, labels.ravel().astype(np.int64), values)
