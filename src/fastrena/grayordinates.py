"""Grayordinates: CIFTI-2 dense files as a layout.

A CIFTI-2 dense file (``.dtseries.nii``, ``.dscalar.nii``) holds one value
per grayordinate and row: its ``BrainModelAxis`` (nibabel's ``cifti2``
axes) lists them structure by structure, the present vertices of each
cortical surface (the medial wall is absent) and the voxels of each
subcortical structure. A :class:`GrayordinateLayout` is the feature space
of such a file: one feature per grayordinate, in the file's order. Its
graph joins a surface structure's vertices by the triangle sides of the
mesh the user gives for it (a CIFTI file carries no geometry), and a
volume structure's voxels by 6-connectivity among themselves; no edge
joins two structures, so no cluster spans two.

Labels go back out as a dense label file (``.dlabel.nii``: a ``LabelAxis``
with one map, the brain models unchanged), cluster means as a parcellated
file (``.ptseries.nii``: a ``ParcelsAxis`` built from the brain models,
what ``wb_command -cifti-parcellate`` writes) and values per grayordinate
as a dense file again.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._colors import cluster_colors
from .errors import InputError
from .graphs import listed_parts_graph
from .images import (describe, gifti_structure, is_nilearn_object, load_image, load_mesh,
                     nibabel_module, read_data, reading_data)
from ._layout import BLOCK_BYTES, Layout

if TYPE_CHECKING:  # annotations only: not imported at run time
    from nibabel import Nifti1Image
    from nibabel.cifti2 import Axis, BrainModelAxis, Cifti2Image, ParcelsAxis
    from numpy.typing import ArrayLike, NDArray

    from .graphs import FeatureGraph

__all__ = ["GrayordinateLayout", "dense_brain_models", "grayordinate_layout", "label_map",
           "load_cifti", "same_parcels"]


def load_cifti(img: str | os.PathLike | Cifti2Image, what: str) -> Cifti2Image:
    """A ``Cifti2Image`` from a path or an image; anything else is an
    :class:`InputError` naming it."""
    nib = nibabel_module()
    loaded = load_image(img, what)
    if not isinstance(loaded, nib.cifti2.Cifti2Image):
        raise InputError(f"{describe(img, what)} is not a CIFTI-2 file")
    return loaded


def dense_brain_models(img, what):
    """The ``BrainModelAxis`` of a dense CIFTI-2 file (its grayordinates),
    checking that its rows are series or scalar maps."""
    nib = nibabel_module()
    cifti = nib.cifti2
    rows, columns = (img.header.get_axis(i) for i in range(2))
    name = describe(img, what)
    if isinstance(columns, cifti.ParcelsAxis):
        raise InputError(f"{name} is a parcellated CIFTI-2 file (its columns are parcels, "
                         "not grayordinates); give a dense file (.dtseries.nii or "
                         ".dscalar.nii)")
    if not isinstance(columns, cifti.BrainModelAxis) or isinstance(rows, (
            cifti.BrainModelAxis, cifti.ParcelsAxis)):
        raise InputError(f"{name} is not a dense series or scalar CIFTI-2 file (its axes "
                         f"are {type(rows).__name__} x {type(columns).__name__}; a "
                         "connectivity file?); give a .dtseries.nii or .dscalar.nii file")
    return columns


def label_map(img, what):
    """(brain models, label values per grayordinate, label table {key:
    (name, rgba)}) of a dense label file (``.dlabel.nii``) with one map."""
    cifti = nibabel_module().cifti2
    rows, columns = (img.header.get_axis(i) for i in range(2))
    name = describe(img, what)
    if not (isinstance(rows, cifti.LabelAxis) and isinstance(columns, cifti.BrainModelAxis)):
        raise InputError(f"{name} is a CIFTI-2 file but not a dense label file (a "
                         ".dlabel.nii: label maps over grayordinates); its axes are "
                         f"{type(rows).__name__} x {type(columns).__name__}")
    if len(rows) != 1:
        raise InputError(f"{name} has {len(rows)} label maps; give a file with one")
    return columns, read_data(img, what)[0], dict(rows.label[0])


def _structures(brain_models):
    """(name, slice, brain models, is a surface) per structure, file order."""
    return [(name, part, models, bool(models.surface_mask.all()))
            for name, part, models in brain_models.iter_structures()]


def _gifti_structure(path):
    """The CIFTI structure a GIfTI mesh says it is (its
    AnatomicalStructurePrimary), or None."""
    try:
        gifti = nibabel_module().load(str(path))
    except Exception:  # load_mesh reports it
        return None
    if not hasattr(gifti, "darrays"):  # not GIfTI: load_mesh reports it
        return None
    found = gifti_structure(gifti)
    return None if found is None else found[0]


def _mesh_parts(meshes):
    """[(label, (coordinates, faces), n_vertices, structure or None)] of the
    user's meshes:
    GIfTI paths, (coordinates, faces) pairs, or a nilearn PolyMesh."""
    if is_nilearn_object(meshes) and hasattr(meshes, "parts"):
        names = {"left": "CIFTI_STRUCTURE_CORTEX_LEFT", "right": "CIFTI_STRUCTURE_CORTEX_RIGHT"}
        return [(f"the PolyMesh's '{key}' part",
                 (np.asarray(mesh.coordinates), np.asarray(mesh.faces)),
                 np.asarray(mesh.coordinates).shape[0], names.get(key))
                for key, mesh in meshes.parts.items()]
    parts = []
    for i, mesh in enumerate(meshes):
        if isinstance(mesh, (str, Path)):
            coordinates, faces = load_mesh(mesh)
            parts.append((describe(mesh, "mesh"), (coordinates, faces), coordinates.shape[0],
                          _gifti_structure(mesh)))
        else:
            coordinates, faces = mesh
            parts.append((f"mesh {i + 1}", (np.asarray(coordinates), np.asarray(faces)),
                          np.asarray(coordinates).shape[0], None))
    return parts


@dataclass(frozen=True, eq=False, repr=False)
class GrayordinateLayout(Layout):
    """Features are the grayordinates of a CIFTI-2 brain model axis, in
    the file's order (``selected``: only those, as a label file's labelled
    grayordinates).

    Parameters
    ----------
    brain_models : nibabel.cifti2.BrainModelAxis
    meshes : dict
        (coordinates (n, 3), triangles (m, 3)) of the mesh of each surface
        structure (empty for a layout read from a label file).
    source : str
        What the grayordinates came from, for error messages.
    selected : ndarray of bool, optional
        The grayordinates that are features (default: all).
    """

    brain_models: BrainModelAxis
    meshes: dict[str, tuple[NDArray[np.float64], NDArray[np.int64]]]
    source: str = "the CIFTI file"
    selected: NDArray[np.bool_] | None = None

    @property
    def n_features(self) -> int:
        return len(self.brain_models) if self.selected is None else int(self.selected.sum())

    def __repr__(self):
        surfaces = sum(s for *_, s in _structures(self.brain_models))
        return (f"GrayordinateLayout({self.n_features} grayordinates, {surfaces} surface "
                f"and {len(_structures(self.brain_models)) - surfaces} volume structures)")

    @property
    def graph(self) -> FeatureGraph:
        """Triangle sides among each surface's listed vertices, 6-connectivity
        among each volume structure's voxels; none between structures."""
        if self.selected is not None:
            raise InputError(f"{self.source} keeps no graph of its grayordinates")
        parts = []
        for name, _, models, surface in _structures(self.brain_models):
            if surface:
                parts.append(("surface", self.meshes[name][1], models.vertex,
                              models.nvertices[name]))
            else:
                parts.append(("volume", models.voxel, models.volume_shape))
        return listed_parts_graph(parts)

    @property
    def mask_img_(self) -> BrainModelAxis:
        """The fitted ``mask_img_``: the brain models (no NIfTI mask here)."""
        return self.brain_models

    def require_images(self) -> None:
        """Nothing to check: this layout reads and writes CIFTI-2 files."""

    def _dense(self, img, what):
        img = load_cifti(img, what)
        models = dense_brain_models(img, what)
        if models != self.brain_models:
            raise InputError(f"{describe(img, what)} has other grayordinates than "
                             f"{self.source} ({len(models)} against "
                             f"{len(self.brain_models)}, or other structures, vertices or "
                             "voxels); all files must share one brain model axis")
        return img

    def n_scans(self, img: str | os.PathLike | Cifti2Image, what: str) -> int:
        """Check ``img`` (a dense file on these grayordinates); return its rows."""
        return int(self._dense(img, what).shape[0])

    def read(self, img: str | os.PathLike | Cifti2Image, what: str, start: int = 0,
             stop: int | None = None) -> Iterator[NDArray[Any]]:
        """The values of ``img``'s grayordinates, rows ``start`` to ``stop``
        (default: all), as blocks (n_rows, n_features) of at most
        ``BLOCK_BYTES``: a long series is never in memory twice.

        CIFTI-2 stores each grayordinate's series contiguously (Fortran
        order): rows are taken from a memory map of the whole file, where
        nibabel's row slices would read it all again for each block."""
        img = self._dense(img, what)
        stop = img.shape[0] if stop is None else min(stop, img.shape[0])
        step = max(1, BLOCK_BYTES // (8 * img.shape[1]))
        data = _unscaled(img, what)
        for first in range(start, stop, step):
            rows = _rows(data, first, min(first + step, stop), img, what)
            if self.selected is not None:
                rows = rows[:, self.selected]
            if not np.isfinite(rows).all():
                bad = first + int(np.flatnonzero(~np.isfinite(rows).all(axis=1))[0])
                raise InputError(f"{describe(img, what)} has NaN or infinite values (row "
                                 f"{bad})")
            yield rows

    def to_img(self, rows: ArrayLike) -> Cifti2Image:
        """A dense CIFTI-2 series of ``rows`` (see :meth:`to_dense`)."""
        return self.to_dense(rows)

    def surface_parts(self, values: ArrayLike) -> tuple[
            list[tuple[NDArray[np.float64], NDArray[np.int64]]], list[NDArray[Any]],
            list[str | None]]:
        """For pictures: the meshes of the surface structures, per mesh
        ``values`` (one per feature) on all its vertices (0 where the file
        has no grayordinate), and each structure's side ("left", "right" or
        None)."""
        full = self.spread(values)[0]
        meshes, parts, sides = [], [], []
        for name, part, models, surface in _structures(self.brain_models):
            if surface:
                on_mesh = np.zeros(models.nvertices[name], dtype=full.dtype)
                on_mesh[models.vertex] = full[part]
                meshes.append(self.meshes[name])
                parts.append(on_mesh)
                sides.append("left" if name.endswith("_LEFT") else
                             "right" if name.endswith("_RIGHT") else None)
        return meshes, parts, sides

    def volume_img(self, values: ArrayLike) -> Nifti1Image | None:
        """For pictures: ``values`` (one per feature) of the volume
        structures as a NIfTI image on their grid (0 elsewhere); None when
        there is no volume structure."""
        full = self.spread(values)[0]
        volume = self.brain_models.volume_mask
        if not volume.any():
            return None
        # int32 (as label files hold labels); nibabel refuses int64 images.
        dtype = np.int32 if np.issubdtype(full.dtype, np.integer) else np.float32
        grid = np.zeros(self.brain_models.volume_shape, dtype=dtype)
        grid[tuple(self.brain_models.voxel[volume].T)] = full[volume]
        return nibabel_module().Nifti1Image(grid, self.brain_models.affine)

    def volume_structures(self) -> list[str]:
        """For pictures: the names of the volume structures, in file order."""
        return [name for name, *_, surface in _structures(self.brain_models) if not surface]

    def spread(self, rows: ArrayLike) -> NDArray[Any]:
        """``rows`` (n_features,) or (n, n_features) on every grayordinate of
        the axis, 0 where not selected: (n, n_grayordinates)."""
        rows = np.atleast_2d(np.asarray(rows))
        if self.selected is None:
            return rows
        out = np.zeros(rows.shape[:-1] + (len(self.brain_models),), dtype=rows.dtype)
        out[:, self.selected] = rows
        return out

    def to_dense(self, rows: ArrayLike, row_axis: Axis | None = None,
                 scalar: bool = False) -> Cifti2Image:
        """A dense CIFTI-2 image of ``rows`` (one row per map), float32 or
        float64 as given: a series (``.dtseries.nii``: ``row_axis`` if it is
        a series of that length, else one step per row from 0), or maps
        with ``scalar`` (``.dscalar.nii``: ``row_axis`` if it is maps of that
        length, else ``map 1``...)."""
        data = self.spread(_float_rows(rows))
        return _cifti_image(data, _row_axis(row_axis, data.shape[0], scalar),
                            self.brain_models, "ConnDenseScalar" if scalar else "ConnDenseSeries")

    def to_dlabel(self, label_values: ArrayLike,
                  values: Sequence[int] | NDArray[np.integer[Any]]) -> Cifti2Image:
        """A dense label file: one map, key v of cluster v named ``label_v``
        in the pictures' colour, 0 = unlabelled (``???``)."""
        cifti = nibabel_module().cifti2
        colors = cluster_colors(len(values))
        table = {0: ("???", (0.0, 0.0, 0.0, 0.0))}
        for value, rgb in zip(values, colors):
            table[int(value)] = (f"label_{int(value)}", (*map(float, rgb), 1.0))
        axis = cifti.LabelAxis(["ReNA"], [table])
        data = self.spread(np.asarray(label_values, dtype=np.int32))
        return _cifti_image(data.astype(np.int32), axis, self.brain_models, "ConnDenseLabel")

    def parcels_axis(self, labels: NDArray[np.integer[Any]],
                     names: Sequence[str]) -> ParcelsAxis:
        """The ``ParcelsAxis`` of clusters ``labels`` (0..K-1 per feature),
        parcel c named ``names[c]``, its grayordinates in file order."""
        cifti = nibabel_module().cifti2
        models = self.brain_models if self.selected is None else self.brain_models[
            np.flatnonzero(self.selected)]
        order = np.argsort(labels, kind="stable")
        bounds = np.searchsorted(labels[order], np.arange(len(names) + 1))
        return cifti.ParcelsAxis.from_brain_models(
            [(str(name), models[order[bounds[c]:bounds[c + 1]]])
             for c, name in enumerate(names)])

    def to_parcels(self, X_red: ArrayLike, labels: NDArray[np.integer[Any]],
                   names: Sequence[str], row_axis: Axis | None = None,
                   scalar: bool = False) -> Cifti2Image:
        """A parcellated CIFTI-2 image of cluster means ``X_red`` (n, K):
        the clusters' ``ParcelsAxis`` (:meth:`parcels_axis`), the rows a
        series (``.ptseries.nii``) or maps with ``scalar``
        (``.pscalar.nii``), as :meth:`to_dense` words them."""
        X_red = np.atleast_2d(_float_rows(X_red))
        return _cifti_image(X_red, _row_axis(row_axis, X_red.shape[0], scalar),
                            self.parcels_axis(labels, names),
                            "ConnParcelScalr" if scalar else "ConnParcelSries")


def same_parcels(axis, expected):
    """Whether two ``ParcelsAxis`` hold the same grayordinates in each
    parcel, in order (names aside: Workbench names them by the label
    table)."""
    if len(axis) != len(expected):
        return False
    for i in range(len(axis)):
        (_, voxels, vertices), (_, voxels_e, vertices_e) = axis[i], expected[i]
        if {tuple(v) for v in np.asarray(voxels).reshape(-1, 3)} != {
                tuple(v) for v in np.asarray(voxels_e).reshape(-1, 3)}:
            return False
        if {k: set(np.asarray(v).tolist()) for k, v in vertices.items() if len(v)} != {
                k: set(np.asarray(v).tolist()) for k, v in vertices_e.items() if len(v)}:
            return False
    return True


def _float_rows(rows):
    """``rows`` as float64 if they are, else float32 (what CIFTI files hold)."""
    rows = np.asarray(rows)
    return rows if rows.dtype in (np.float32, np.float64) else rows.astype(np.float32)


def _row_axis(given, n_rows, scalar):
    """``given`` if it is the right kind (maps with ``scalar``, else a
    series) and length; else a default one: steps of 1 from 0, or maps
    named ``map 1``..."""
    cifti = nibabel_module().cifti2
    kind = cifti.ScalarAxis if scalar else cifti.SeriesAxis
    if isinstance(given, kind) and len(given) == n_rows:
        return given
    if scalar:
        return cifti.ScalarAxis([f"map {i + 1}" for i in range(n_rows)])
    return cifti.SeriesAxis(start=0, step=1, size=n_rows)


def _cifti_image(data, rows, columns, intent):
    """A ``Cifti2Image`` with the NIfTI intent code of its kind (CIFTI-2
    requires it: dense series, label, parcellated series...)."""
    img = nibabel_module().cifti2.Cifti2Image(data, header=(rows, columns))
    img.nifti_header.set_intent(intent)
    return img


def _unscaled(img, what):
    """The data of a CIFTI-2 image without reading it: a memory map of an
    uncompressed file (nibabel's ``get_unscaled``; CIFTI-2 data are never
    scaled), else the array."""
    if not hasattr(img.dataobj, "get_unscaled"):
        return read_data(img, what)
    with reading_data(img, what):
        return img.dataobj.get_unscaled()


def _rows(data, first, stop, img, what):
    """Rows ``first`` to ``stop`` of ``data`` copied into memory (a file
    truncated after its header was read fails here)."""
    with reading_data(img, what):
        return np.array(data[first:stop])


def _matched(parts, structures, name):
    """The meshes in the order of ``structures``: a mesh that names its
    structure goes to it, the others fill the rest in order."""
    named = {}
    for part in parts:
        if part[3] is None:
            continue
        if part[3] not in structures:
            raise InputError(f"{part[0]} is a mesh of {part[3]} but {name} has no such "
                             f"surface structure (it has {', '.join(structures)})")
        if part[3] in named:
            raise InputError(f"{named[part[3]][0]} and {part[0]} are both meshes of "
                             f"{part[3]}; give one mesh per structure")
        named[part[3]] = part
    unnamed = iter(part for part in parts if part[3] is None)
    return [named[s] if s in named else next(unnamed) for s in structures]


def grayordinate_layout(cifti: str | os.PathLike | Cifti2Image, meshes: Any = None,
                        what: str = "CIFTI file") -> GrayordinateLayout:
    """The :class:`GrayordinateLayout` of a dense CIFTI-2 file (path or
    image), with ``meshes`` for its cortical surfaces: GIfTI mesh paths or
    (coordinates, faces) pairs in the order of the file's surface
    structures (a GIfTI mesh that names its structure is matched by it), or
    a nilearn ``PolyMesh`` (its ``left`` and ``right`` parts)."""
    img = load_cifti(cifti, what)
    name = describe(cifti, what)
    brain_models = dense_brain_models(img, what)
    surfaces = [(s, models) for s, _, models, surface in _structures(brain_models) if surface]
    structures = [s for s, _ in surfaces]
    parts = [] if meshes is None else _mesh_parts(meshes)
    if surfaces and not parts:
        raise InputError(
            f"{name} has surface structures ({', '.join(structures)}) but a CIFTI file "
            "carries no surface geometry: give one GIfTI mesh per structure, in this "
            "order (--mesh lh.surf.gii --mesh rh.surf.gii; meshes=[...] in Python)")
    if len(parts) != len(surfaces):
        raise InputError(f"{len(parts)} mesh(es) for the {len(surfaces)} surface "
                         f"structure(s) of {name} ({', '.join(structures) or 'none'}); give "
                         "one mesh per structure, in this order")
    parts = _matched(parts, structures, name)
    meshes_of = {}
    for (structure, models), (label, part_mesh, n_vertices, _) in zip(surfaces, parts):
        needed = models.nvertices[structure]
        if n_vertices != needed:
            raise InputError(f"{label} has {n_vertices} vertices but {name} has "
                             f"{structure} on a mesh of {needed} (vertex indices up to "
                             f"{int(models.vertex.max())}); give the mesh the file was "
                             "made on")
        meshes_of[structure] = (np.asarray(part_mesh[0], dtype=np.float64),
                                np.asarray(part_mesh[1], dtype=np.int64))
    return GrayordinateLayout(brain_models, meshes_of, name)
