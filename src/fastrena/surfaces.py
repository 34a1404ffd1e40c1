"""Surface layouts: features on the masked vertices of mesh parts.

A :class:`SurfaceLayout` holds the in-mask vertices of each mesh part
(hemisphere), part after part, in vertex order, with the parts' triangles
for the graph. It is built from GIfTI files (:func:`surface_layout`) or a
nilearn ``SurfaceImage`` mask (:func:`surface_layout_of`), reads GIfTI data
files and ``SurfaceImage`` objects, and writes values back as either.
:mod:`fastrena.layouts` gathers it with the other layouts.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ._layout import Layout
from .errors import InputError
from .graphs import surface_graph
from .images import (HEMISPHERES, check_structure, describe, in_mask, is_gifti,
                     is_nilearn_object, is_volume_name, load_surface_files, load_surface_part,
                     named_structure, nibabel_module, path_of)

if TYPE_CHECKING:  # annotations only: not imported at run time
    from nibabel.gifti import GiftiImage
    from nilearn.surface import SurfaceImage
    from numpy.typing import ArrayLike, NDArray

    from .graphs import FeatureGraph

__all__ = ["SurfaceLayout", "surface_layout", "surface_layout_of"]


@dataclass(frozen=True, eq=False, repr=False)
class SurfaceLayout(Layout):
    """Features are the in-mask vertices of mesh parts (hemispheres), part
    after part, in vertex order.

    Parameters
    ----------
    masks : tuple of ndarray of bool, one (n_vertices,) per part
    meshes : tuple of (coordinates, faces), one per part, or None
    surface_mask : nilearn SurfaceImage or None
        The mask as a ``SurfaceImage``, when it came as one: images made
        from this layout are then ``SurfaceImage`` objects on its mesh.
    faces : tuple of ndarray, optional
        The triangles of each part, when ``meshes`` are not given.
    structures : tuple, optional
        Per part, the hemisphere its mesh, mask or label file names, or
        None (see :func:`fastrena.images.named_structure`): GIfTI data
        files that name another are refused.
    """

    masks: tuple[NDArray[np.bool_], ...]
    meshes: tuple[tuple[NDArray[np.floating[Any]], NDArray[np.integer[Any]]], ...] | None = None
    surface_mask: SurfaceImage | None = None
    faces: tuple[NDArray[np.integer[Any]], ...] | None = None
    structures: tuple[tuple[str, str, str] | None, ...] | None = None

    @property
    def n_features(self) -> int:
        return int(sum(np.count_nonzero(m) for m in self.masks))

    def __repr__(self):
        return (f"SurfaceLayout({self.n_features} vertices of "
                f"{len(self.masks)} part{'s' if len(self.masks) != 1 else ''})")

    @property
    def parts(self) -> list[tuple[NDArray[np.integer[Any]], NDArray[np.bool_], int]]:
        """(faces, mask, n_vertices) per part, as ``surface_graph`` takes them."""
        faces = self.faces if self.faces is not None else [f for _, f in self.meshes]
        return [(f, m, m.shape[0]) for f, m in zip(faces, self.masks)]

    def _part_data(self, img, what):
        """(n_vertices, n_scans) per part of a SurfaceImage or a sequence of
        GIfTI data files (one per part)."""
        if is_nilearn_object(img) and hasattr(img, "data"):
            parts = [np.asarray(p) for p in img.data.parts.values()]
            parts = [p[:, None] if p.ndim == 1 else p for p in parts]
            names = [f"{what} part '{k}'" for k in img.data.parts]
            what_all = what
        else:
            # (A nibabel volume is one file too: list() of it raised
            # nibabel's "Cannot slice image objects".)
            one = isinstance(img, (str, os.PathLike)) or is_gifti(img) or hasattr(img, "affine")
            files = [img] if one else list(img)
            for f in files:
                if _is_volume(f):
                    # (Counted as GIfTI files below, it was called one.)
                    raise InputError(f"{describe(f, what)} is a NIfTI volume, but the mask is "
                                     f"a surface of {len(self.masks)} part(s): give one GIfTI "
                                     "data file per part")
            if len(files) != len(self.masks):
                raise InputError(f"{what} has {len(files)} GIfTI file(s) but the surface "
                                 f"has {len(self.masks)} part(s); give one file per part")
            loaded = [load_surface_part(f, what) for f in files]
            parts = [data for data, _ in loaded]
            names = [describe(f, what) if path_of(f) else f"{what} part {i + 1}"
                     for i, f in enumerate(files)]
            for p, ((_, structure), name) in enumerate(zip(loaded, names)):
                check_structure(self.structures, p, structure, name,
                                "give each scan group's files")
            what_all = " and ".join(names)
        if len(parts) != len(self.masks):
            raise InputError(f"{what} has {len(parts)} part(s) but the surface has "
                             f"{len(self.masks)}")
        for data, mask, name in zip(parts, self.masks, names):
            if data.shape[0] != mask.shape[0]:
                raise InputError(f"{name} has {data.shape[0]} vertices but the mesh "
                                 f"has {mask.shape[0]}")
        if len({p.shape[1] for p in parts}) > 1:
            raise InputError(f"{what_all}: parts have different numbers of scans "
                             f"({[p.shape[1] for p in parts]})")
        return parts

    def n_scans(self, img: SurfaceImage | str | os.PathLike | GiftiImage
                | Sequence[str | os.PathLike | GiftiImage], what: str) -> int:
        """Check ``img`` (a ``SurfaceImage``, or GIfTI data files, paths or
        images, one per part) against the layout; return its number of scans.

        GIfTI files have no header to read alone: this reads their data,
        which is small (one value per vertex and scan), and ``read`` reads
        it again rather than holding every file in memory meanwhile.
        """
        return self._part_data(img, what)[0].shape[1]

    def read(self, img: SurfaceImage | str | os.PathLike | GiftiImage
             | Sequence[str | os.PathLike | GiftiImage], what: str, start: int = 0,
             stop: int | None = None) -> Iterator[NDArray[Any]]:
        """The in-mask values of ``img``: one block (n_scans, n_features), of
        scans ``start`` to ``stop`` (default: all)."""
        parts = self._part_data(img, what)
        rows = np.concatenate([p[m] for p, m in zip(parts, self.masks)], axis=0).T[start:stop]
        if not np.isfinite(rows).all():
            raise InputError(f"{what} has NaN or infinite values inside the mask")
        yield rows

    @property
    def graph(self) -> FeatureGraph:
        """The triangle sides of each part among its in-mask vertices."""
        return surface_graph(self.parts)

    @property
    def mask_img_(self) -> SurfaceImage | None:
        """The fitted ``mask_img_``: the ``SurfaceImage`` mask, if it came as one."""
        return self.surface_mask

    def require_images(self) -> None:
        """Nothing to check: a surface layout reads and writes surface data."""

    def split(self, rows: ArrayLike) -> list[NDArray[Any]]:
        """Per part, ``rows`` (n_features,) or (n, n_features) spread over the
        vertices: arrays (n_vertices,) or (n_vertices, n), 0 outside the
        mask, in the dtype of ``rows``."""
        rows = np.asarray(rows)
        parts, start = [], 0
        for mask in self.masks:
            stop = start + int(np.count_nonzero(mask))
            part = np.zeros((mask.shape[0],) + rows.shape[:-1], dtype=rows.dtype)
            part[mask] = rows[..., start:stop].T
            parts.append(part)
            start = stop
        return parts

    def to_img(self, rows: ArrayLike) -> SurfaceImage:
        """A nilearn ``SurfaceImage`` on the mask's mesh (needs ``surface_mask``)."""
        if self.surface_mask is None:
            raise InputError("this surface has no nilearn SurfaceImage mask; "
                             "write GIfTI files instead")
        from nilearn.surface import SurfaceImage

        names = list(self.surface_mask.data.parts)
        return SurfaceImage(mesh=self.surface_mask.mesh,
                            data=dict(zip(names, self.split(rows))))

    def to_gifti(self, rows: ArrayLike) -> list[GiftiImage]:
        """One ``GiftiImage`` per part, one float32 data array per row (GIfTI
        has no float64)."""
        rows = np.atleast_2d(np.asarray(rows, dtype=np.float32))
        gifti = nibabel_module().gifti
        images = []
        for part in self.split(rows):
            arrays = [gifti.GiftiDataArray(np.ascontiguousarray(column),
                                           datatype="NIFTI_TYPE_FLOAT32")
                      for column in part.T]
            images.append(gifti.GiftiImage(darrays=arrays))
        return images


def surface_layout(mesh_paths: Sequence[str | os.PathLike],
                   mask_paths: Sequence[str | os.PathLike] | None = None) -> SurfaceLayout:
    """A :class:`SurfaceLayout` from GIfTI meshes (one per part) and,
    optionally, GIfTI masks (one per part; nonzero = in); the hemispheres
    they name check the data files (see :func:`fastrena.images.load_surface_files`)."""
    meshes, masks, structures = load_surface_files(mesh_paths, mask_paths)
    return SurfaceLayout(masks, meshes, structures=structures)


def _is_volume(img):
    """Whether ``img``, given where surface data is asked for, is a NIfTI
    volume: a file so named, or a nibabel image with an affine."""
    path = path_of(img)
    return is_volume_name(path) if path else hasattr(img, "affine") and not is_gifti(img)


def surface_layout_of(surface_img: SurfaceImage, what: str = "mask_img") -> SurfaceLayout:
    """A :class:`SurfaceLayout` for a nilearn SurfaceImage mask (one sample
    per part; nonzero = in)."""
    masks, meshes = [], []
    for name, mesh in surface_img.mesh.parts.items():
        values = np.asarray(surface_img.data.parts[name])
        if values.ndim == 2:
            if values.shape[1] != 1:
                raise ValueError(
                    f"{what} is a SurfaceImage with {values.shape[1]} samples in part "
                    f"'{name}'; a mask must have exactly one")
            values = values[:, 0]
        masks.append(in_mask(values, f"{what}'s part '{name}'"))
        meshes.append((np.asarray(mesh.coordinates), np.asarray(mesh.faces)))
    # nilearn names the hemispheres "left" and "right": GIfTI data files
    # read with this mask are checked against them.
    structures = tuple(named_structure(HEMISPHERES.get(name), f"{what}'s part '{name}'")
                       for name in surface_img.mesh.parts)
    return SurfaceLayout(tuple(masks), tuple(meshes), surface_img, structures=structures)
