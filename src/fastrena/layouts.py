"""Layouts: which features, on which graph, in which images.

A layout is fastrena's model of a feature space. :class:`VolumeLayout`
holds the in-mask voxels of a 3-D grid, :class:`SurfaceLayout` the masked
vertices of mesh parts (hemispheres). Built once from what the user gives
(:func:`mask_layout`, :func:`resolve_layout`, :func:`surface_layout`), it
gives the graph (``estimator_params``), reads images into ``(n_scans,
n_features)`` arrays (:func:`read_images`) and writes labels and values
back as images. See docs/design.md.
"""

import os
from dataclasses import dataclass

import numpy as np

from ._progress import progress_bar
from .errors import InputError
from .graphs import surface_graph
from .images import (describe, is_gifti, load_mesh, load_surface_data, load_volume,
                     nibabel_module, path_of, read_data, volume_3d_data)
from .masks import is_nilearn_object

__all__ = [
    "SurfaceLayout",
    "VolumeLayout",
    "as_list",
    "compute_mask",
    "images_to_array",
    "layout_of_estimator",
    "mask_layout",
    "read_images",
    "resolve_layout",
    "scan_counts",
    "scan_names",
    "surface_layout",
]

# Volumes are read in blocks of at most this many bytes of float64, so a
# 4-D image never sits in memory whole, and reading stays sequential.
BLOCK_BYTES = 64 * 2**20
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


def _volume_count(img, what):
    """Number of volumes of a 3-D (1) or 4-D image; other shapes are errors."""
    shape = tuple(img.shape)
    if len(shape) == 4:
        return shape[3]
    if len(shape) == 3:
        return 1
    raise InputError(f"{describe(img, what)} must be a 3-D or 4-D image, got shape {shape}")


def _volume_blocks(img, n_volumes, what, start=0, stop=None):
    """The data of a loaded volume image as 4-D blocks of a few volumes:
    volumes ``start`` to ``stop`` (default: all)."""
    stop = n_volumes if stop is None else stop
    step = max(1, BLOCK_BYTES // (8 * int(np.prod(img.shape[:3]))))
    for first in range(start, stop, step):
        if img.ndim == 3:
            yield read_data(img, what)[..., None]
        else:
            yield read_data(img, what, (..., slice(first, min(first + step, stop))))


@dataclass(frozen=True, eq=False)
class VolumeLayout:
    """Features are the in-mask voxels of a 3-D grid, in C order.

    Parameters
    ----------
    mask : ndarray of bool, 3-D
    affine : ndarray, shape (4, 4)
    source : str, default="the mask"
        What the grid came from, for error messages.
    """

    mask: np.ndarray
    affine: np.ndarray
    source: str = "the mask"

    @property
    def n_features(self):
        return int(np.count_nonzero(self.mask))

    def n_scans(self, img, what):
        """Check that ``img`` is a 3-D/4-D image on the mask's grid (reading
        its header only); return its number of volumes."""
        img = load_volume(img, what)
        n = _volume_count(img, what)
        _check_same_grid(img, what, self)
        return n

    def read(self, img, what, start=0, stop=None):
        """The in-mask values of ``img``, as blocks of shape (n_volumes, n_features):
        volumes ``start`` to ``stop`` (default: all).

        Raises :class:`InputError` on NaN or infinite values in the mask.
        """
        img = load_volume(img, what)
        n = self.n_scans(img, what)
        first = start
        for block in _volume_blocks(img, n, what, start, stop):
            rows = block[self.mask].T
            if not np.isfinite(rows).all():
                bad = first + int(np.flatnonzero(~np.isfinite(rows).all(axis=1))[0])
                raise InputError(f"{describe(img, what)} has NaN or infinite values "
                                 f"inside the mask (volume {bad})")
            first += rows.shape[0]
            yield rows

    def estimator_params(self):
        """The ReNA parameters that give this layout's graph."""
        return {"mask_img": nibabel_module().Nifti1Image(self.mask.astype(np.uint8), self.affine)}

    def to_img(self, rows):
        """A NIfTI image with ``rows`` in the mask and 0 elsewhere.

        ``rows`` of shape (n_features,) gives a 3-D image, (n, n_features)
        a 4-D image of n volumes; the dtype is kept.
        """
        rows = np.asarray(rows)
        grid = np.zeros(self.mask.shape + rows.shape[:-1][::-1], dtype=rows.dtype)
        grid[self.mask] = rows.T
        return nibabel_module().Nifti1Image(grid, self.affine)


@dataclass(frozen=True, eq=False)
class SurfaceLayout:
    """Features are the in-mask vertices of mesh parts (hemispheres), part
    after part, in vertex order.

    Parameters
    ----------
    masks : tuple of ndarray of bool, one (n_vertices,) per part
    meshes : tuple of (coordinates, faces), one per part, or None
    surface_mask : nilearn SurfaceImage or None
        The mask as a ``SurfaceImage``, when it came as one: images made
        from this layout are then ``SurfaceImage`` objects on its mesh.
    """

    masks: tuple
    meshes: tuple = None
    surface_mask: object = None

    @property
    def n_features(self):
        return int(sum(np.count_nonzero(m) for m in self.masks))

    def _part_data(self, img, what):
        """(n_vertices, n_scans) per part of a SurfaceImage or a sequence of
        GIfTI data files (one per part)."""
        if is_nilearn_object(img) and hasattr(img, "data"):
            parts = [np.asarray(p) for p in img.data.parts.values()]
            parts = [p[:, None] if p.ndim == 1 else p for p in parts]
            names = [f"{what} part '{k}'" for k in img.data.parts]
            what_all = what
        else:
            files = [img] if isinstance(img, (str, os.PathLike)) or is_gifti(img) else list(img)
            if len(files) != len(self.masks):
                raise InputError(f"{what} has {len(files)} GIfTI file(s) but the surface "
                                 f"has {len(self.masks)} part(s); give one file per part")
            parts = [load_surface_data(f, what) for f in files]
            names = [describe(f, what) if path_of(f) else f"{what} part {i + 1}"
                     for i, f in enumerate(files)]
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

    def n_scans(self, img, what):
        """Check ``img`` against the layout; return its number of scans.

        GIfTI files have no header to read alone: this reads their data,
        which is small (one value per vertex and scan), and ``read`` reads
        it again rather than holding every file in memory meanwhile.
        """
        return self._part_data(img, what)[0].shape[1]

    def read(self, img, what, start=0, stop=None):
        """The in-mask values of ``img``: one block (n_scans, n_features), of
        scans ``start`` to ``stop`` (default: all)."""
        parts = self._part_data(img, what)
        rows = np.concatenate([p[m] for p, m in zip(parts, self.masks)], axis=0).T[start:stop]
        if not np.isfinite(rows).all():
            raise InputError(f"{what} has NaN or infinite values inside the mask")
        yield rows

    def estimator_params(self):
        """The ReNA parameters that give this layout's graph."""
        if self.surface_mask is not None:
            return {"mask_img": self.surface_mask}
        parts = [(faces, mask) for (_, faces), mask in zip(self.meshes, self.masks)]
        return {"connectivity": surface_graph(parts).to_adjacency()}

    def split(self, rows):
        """Per part, ``rows`` (n_features,) or (n, n_features) spread over the
        vertices: arrays (n_vertices,) or (n_vertices, n), 0 outside the
        mask."""
        rows = np.asarray(rows)
        parts, start = [], 0
        for mask in self.masks:
            stop = start + int(np.count_nonzero(mask))
            part = np.zeros((mask.shape[0],) + rows.shape[:-1], dtype=rows.dtype)
            part[mask] = rows[..., start:stop].T
            parts.append(part)
            start = stop
        return parts

    def to_img(self, rows):
        """A nilearn ``SurfaceImage`` on the mask's mesh (needs ``surface_mask``)."""
        if self.surface_mask is None:
            raise InputError("this surface has no nilearn SurfaceImage mask; "
                             "write GIfTI files instead")
        from nilearn.surface import SurfaceImage

        names = list(self.surface_mask.data.parts)
        return SurfaceImage(mesh=self.surface_mask.mesh,
                            data=dict(zip(names, self.split(rows))))

    def to_gifti(self, rows):
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


def surface_layout(mesh_paths, mask_paths=None):
    """A :class:`SurfaceLayout` from GIfTI meshes (one per part) and,
    optionally, GIfTI masks (one per part; nonzero = in)."""
    meshes = tuple(load_mesh(path) for path in mesh_paths)
    if mask_paths is None:
        masks = tuple(np.ones(coords.shape[0], dtype=bool) for coords, _ in meshes)
    else:
        if len(mask_paths) != len(meshes):
            raise InputError(f"{len(mask_paths)} mask file(s) for {len(meshes)} mesh(es); "
                             "give one mask per mesh")
        masks = []
        for path, (coords, _) in zip(mask_paths, meshes):
            data = load_surface_data(path, "mask")
            if data.shape != (coords.shape[0], 1):
                raise InputError(f"{describe(path, 'mask')} has shape {data.shape}; expected "
                                 f"one value for each of the mesh's {coords.shape[0]} vertices")
            masks.append(data[:, 0] != 0)
        masks = tuple(masks)
    if not any(m.any() for m in masks):
        raise InputError("the surface masks have no in-mask vertex")
    return SurfaceLayout(masks, meshes)


def _surface_layout_of(surface_img):
    """A :class:`SurfaceLayout` for a nilearn SurfaceImage mask."""
    masks, meshes = [], []
    for name, mesh in surface_img.mesh.parts.items():
        values = np.asarray(surface_img.data.parts[name])
        masks.append((values[:, 0] if values.ndim == 2 else values) != 0)
        meshes.append((np.asarray(mesh.coordinates), np.asarray(mesh.faces)))
    return SurfaceLayout(tuple(masks), tuple(meshes), surface_img)


def mask_layout(mask_img, what="mask_img"):
    """The layout of a ``mask_img``: a NIfTI path or image (3-D, nonzero =
    in), or a nilearn SurfaceImage. ``what`` names it in error messages."""
    if is_nilearn_object(mask_img) and hasattr(mask_img, "mesh"):
        return _surface_layout_of(mask_img)
    img, data = volume_3d_data(mask_img, what)
    mask = data != 0
    if not mask.any():
        raise InputError(f"{describe(img, what)} has no in-mask voxel (shape {mask.shape}, "
                         "all zero)")
    return VolumeLayout(mask, np.asarray(img.affine, dtype=np.float64))


def layout_of_estimator(rena):
    """The layout of a fitted ReNA's ``mask_img_``."""
    mask_img = getattr(rena, "mask_img_", None)
    if mask_img is None:
        raise InputError("this ReNA was fitted without mask_img (on a connectivity "
                         "graph or a 1-D chain): it has no image grid to write to")
    if isinstance(mask_img, np.ndarray):
        if mask_img.ndim != 3:
            raise InputError(f"this ReNA was fitted on a {mask_img.ndim}-D array mask; "
                             "images need a 3-D mask")
        # A bare array has no affine: voxel coordinates.
        return VolumeLayout(mask_img, np.eye(4))
    return mask_layout(mask_img)


# --------------------------------------------------------------------------
# images -> arrays
# --------------------------------------------------------------------------
def as_list(imgs):
    """``imgs`` as a non-empty list (a single image or path becomes one item)."""
    if isinstance(imgs, (str, os.PathLike)) or not hasattr(imgs, "__iter__") \
            or is_nilearn_object(imgs):
        return [imgs]
    imgs = list(imgs)
    if not imgs:
        raise InputError("imgs is empty: give at least one image")
    return imgs


def scan_names(imgs):
    """How messages name each image: by its path when it has one (added by
    :func:`_describe`), else by its position in the list."""
    return ["image" if all(path_of(part) for part in
                           (img if isinstance(img, (tuple, list)) else [img]))
            else f"image {i}" for i, img in enumerate(imgs)]


def scan_counts(layout, imgs, names):
    # Headers only: every shape and affine is checked before any data is read.
    return [layout.n_scans(img, name) for img, name in zip(imgs, names)]


def read_rows_into(layout, imgs, out, transform, verbose, desc):
    """Fill ``out`` row by row with ``transform(rows)`` of each image's blocks."""
    names = scan_names(imgs)
    bar = progress_bar(verbose > 0, out.shape[0], desc, "scan")
    row = 0
    try:
        for img, name in zip(imgs, names):
            for rows in layout.read(img, name):
                out[row:row + rows.shape[0]] = transform(rows)
                row += rows.shape[0]
                bar.update(rows.shape[0])
    finally:
        bar.close()
    return out


def read_images(layout, imgs, dtype=np.float32, verbose=0):
    """The features of ``layout`` in images, one row per scan (see
    :func:`images_to_array`, which takes a mask instead of a layout)."""
    imgs = as_list(imgs)
    n_scans = sum(scan_counts(layout, imgs, scan_names(imgs)))
    out = np.empty((n_scans, layout.n_features), dtype=float_dtype(dtype))
    return read_rows_into(layout, imgs, out, lambda rows: rows, verbose, "reading images")


def images_to_array(imgs, mask_img, *, dtype=np.float32, verbose=0):
    """The in-mask values of images, one row per scan.

    Parameters
    ----------
    imgs : path, nibabel image, SurfaceImage, or a list of them
        3-D images give one row, 4-D images one row per volume.
    mask_img : path or nibabel image of a 3-D mask, or a SurfaceImage mask
    dtype : float32 or float64, default=float32
    verbose : int, default=0
        1 or more shows a progress bar.

    Returns
    -------
    ndarray, shape (n_scans, n_features)
        Columns are the in-mask voxels in C order (as nilearn's maskers).
    """
    return read_images(mask_layout(mask_img), imgs, dtype, verbose)


def float_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise InputError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def _border_background(volume):
    """The background value of a volume: median of its 2-voxel-thick outer
    shell, NaN if the shell holds NaN (as for nilearn's background masks)."""
    inner = tuple(slice(2, max(n - 2, 2)) for n in volume.shape)
    shell = np.ones(volume.shape, dtype=bool)
    shell[inner] = False
    values = volume[shell]
    if values.size == 0 or np.isnan(values).any():
        return np.nan
    return float(np.median(values))


def compute_mask(imgs, *, verbose=0):
    """A brain mask computed from the images themselves.

    The background value is the median of the outer 2-voxel shell of the
    first volume (NaN if that shell holds NaN). A voxel is in the mask if
    it differs from the background in at least one volume and is finite in
    every volume. Images are read one at a time.

    Parameters
    ----------
    imgs : path or nibabel image, or a list of them (3-D or 4-D, one grid)
    verbose : int, default=0

    Returns
    -------
    nibabel.Nifti1Image
        uint8, 1 in the mask, on the grid of the images.
    """
    imgs = as_list(imgs)
    names = scan_names(imgs)
    first = load_volume(imgs[0], names[0])
    _volume_count(first, names[0])
    grid = VolumeLayout(np.ones(first.shape[:3], dtype=bool),
                        np.asarray(first.affine, dtype=np.float64), "the first image")
    counts = scan_counts(grid, imgs, names)
    differs = np.zeros(grid.mask.shape, dtype=bool)
    finite = np.ones(grid.mask.shape, dtype=bool)
    background = None
    bar = progress_bar(verbose > 0, sum(counts), "computing mask", "scan")
    try:
        for img, name, n in zip(imgs, names, counts):
            for block in _volume_blocks(load_volume(img, name), n, name):
                if background is None:
                    background = _border_background(block[..., 0])
                finite &= np.isfinite(block).all(axis=-1)
                differs |= (block != background).any(axis=-1)
                bar.update(block.shape[-1])
    finally:
        bar.close()
    mask = differs & finite
    if not mask.any():
        raise InputError(f"no voxel of the images differs from their background value "
                         f"({background:g}) while being finite; give a mask")
    return nibabel_module().Nifti1Image(mask.astype(np.uint8), grid.affine)


def resolve_layout(imgs, mask_img=None, verbose=0):
    """The layout for ``imgs``: ``mask_img``'s, or a mask computed from
    the images (volumes) or all vertices of their mesh (``SurfaceImage``)."""
    if mask_img is not None:
        return mask_layout(mask_img)
    first = as_list(imgs)[0]
    if is_nilearn_object(first) and hasattr(first, "mesh"):
        return _surface_layout_of(_all_vertices_mask(first))
    return mask_layout(compute_mask(imgs, verbose=verbose))


def _all_vertices_mask(surface_img):
    """A SurfaceImage mask with every vertex of ``surface_img``'s mesh in,
    as nilearn's SurfaceMasker uses when given none."""
    from nilearn.surface import SurfaceImage

    data = {name: np.ones(mesh.n_vertices, dtype=bool)
            for name, mesh in surface_img.mesh.parts.items()}
    return SurfaceImage(mesh=surface_img.mesh, data=data)
