"""Neuroimaging files in and out of ReNA.

* Fit directly from NIfTI images (paths or nibabel images, 3-D or 4-D),
  with a mask or a mask computed from the images: :func:`fit_images`.
  Images are read one at a time, a few volumes at a time, straight into a
  float32 (or float64) array; no 4-D copy of the data is ever made.
* Turn ``labels_`` into a label image (0 = background, clusters 1..K):
  :func:`labels_to_img` (NIfTI, or nilearn ``SurfaceImage``),
  :func:`labels_to_gifti`.
* Images to ``(n_scans, K)`` cluster means and back: :func:`transform_images`,
  :func:`inverse_transform_img`; from label files alone (no estimator):
  :func:`load_parcellation` and :class:`Parcellation`.
* Safe writes: :func:`save_img`, :func:`save_array` write to a temporary
  name in the destination folder and rename it, so a reader never sees a
  partial file, and never overwrite an existing file unless ``force``.

Surfaces come as nilearn ``SurfaceImage`` objects in Python; the command
line reads GIfTI mesh and data files with :func:`load_mesh` and
:func:`surface_layout`. nilearn is imported only when a ``SurfaceImage`` is
involved; nibabel is a core dependency.
"""

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._colors import cluster_colors
from ._progress import fit_progress, progress_bar
from .agglomeration import cluster_means
from .estimator import ReNA
from .graphs import surface_graph
from .masks import _is_nilearn_object

__all__ = [
    "InputError",
    "Parcellation",
    "SurfaceLayout",
    "VolumeLayout",
    "compute_mask",
    "fit_images",
    "fit_layout",
    "images_to_array",
    "inverse_transform_img",
    "labels_to_gifti",
    "labels_to_img",
    "load_array",
    "load_image",
    "load_mesh",
    "load_parcellation",
    "load_3d_volume",
    "mask_layout",
    "read_images",
    "array_format",
    "check_image_name",
    "check_output",
    "save_array",
    "save_img",
    "write_atomically",
    "surface_layout",
    "transform_images",
]

# Volumes are read in blocks of at most this many bytes of float64, so a
# 4-D image never sits in memory whole, and reading stays sequential.
BLOCK_BYTES = 64 * 2**20
# World coordinates of two grids closer than this (mm) are the same grid.
AFFINE_TOLERANCE = 1e-4
ARRAY_SUFFIXES = (".npy", ".csv", ".tsv")
_MESH_INTENTS = ("NIFTI_INTENT_POINTSET", "NIFTI_INTENT_TRIANGLE")


class InputError(ValueError):
    """A file or value given by the user cannot be used; the message names
    it and says why. The command line prints it as one line."""


# --------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------
def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _nibabel():
    import nibabel

    return nibabel


def load_image(img, what="image"):
    """A nibabel image for a path, or ``img`` itself if already loaded.

    Data are not read (nibabel images are lazy). Compressed NIfTI files are
    opened with ``keep_file_open=True`` so that reading them volume block
    after volume block decompresses each byte once.

    Parameters
    ----------
    img : str, pathlib.Path or nibabel image
    what : str
        How error messages name ``img``.

    Returns
    -------
    nibabel image (a volume image or a ``GiftiImage``)

    Raises
    ------
    FileNotFoundError
        No such file.
    InputError
        A folder, or a file nibabel cannot read.
    TypeError
        Neither a path nor a nibabel image.
    """
    nibabel = _nibabel()
    if isinstance(img, nibabel.filebasedimages.FileBasedImage):
        return img
    if not isinstance(img, (str, os.PathLike)):
        raise TypeError(f"{what} must be a path or a nibabel image, got a {type(img).__name__}")
    path = Path(img)
    if not path.exists():
        raise FileNotFoundError(f"{what}: no such file: '{path}'")
    if path.is_dir():
        raise InputError(f"{what}: '{path}' is a folder, not an image file")
    try:
        loaded = nibabel.load(path)
        if nibabel.is_proxy(getattr(loaded, "dataobj", None)):
            loaded = type(loaded).from_filename(path, keep_file_open=True)
    except Exception as exc:  # nibabel raises many types for unreadable files
        raise InputError(f"{what}: '{path}' is not a NIfTI or GIfTI image "
                         f"({_first_line(exc)})") from exc
    return loaded


def _is_gifti(img):
    return isinstance(img, _nibabel().gifti.GiftiImage)


def _path_of(img):
    if isinstance(img, (str, os.PathLike)):
        return os.fspath(img)
    # nibabel does not keep the name of the GIfTI files it loads.
    return img.get_filename() if hasattr(img, "get_filename") else None


def _describe(img, what):
    """How messages name an image: ``what 'its/path'``, or ``what`` alone
    for an image that exists only in memory."""
    path = _path_of(img)
    return f"{what} '{path}'" if path else what


def load_volume(img, what="image"):
    """A nibabel volume image (not GIfTI) for a path or an image."""
    loaded = load_image(img, what)
    if _is_gifti(loaded):
        raise InputError(f"{_describe(img, what)} is a GIfTI surface file where a NIfTI "
                         "volume is expected")
    if not hasattr(loaded, "affine") or not hasattr(loaded, "dataobj"):
        raise InputError(f"{_describe(img, what)} is not a volume image")
    return loaded


def load_3d_volume(img, what="image"):
    """A 3-D volume image (or 4-D with one volume) with its data read into
    memory now, so that a damaged file fails here, with its name."""
    loaded, data = _volume_3d_data(img, what)
    return type(loaded)(data, loaded.affine, loaded.header)


def _volume_3d_data(img, what):
    """A volume image that must be 3-D (or 4-D with one volume), and its
    data as a 3-D array, read now: (loaded image, data)."""
    loaded = load_volume(img, what)
    shape = tuple(loaded.shape)
    if len(shape) != 3 and shape[3:] != (1,):
        raise InputError(f"{_describe(loaded, what)} must be a 3-D image, got shape {shape}")
    return loaded, _read_data(loaded, what).reshape(shape[:3])


def _intent_names(gifti):
    codes = _nibabel().nifti1.intent_codes
    return [codes.niistring[d.intent] for d in gifti.darrays]


def load_surface_data(img, what="image"):
    """The data of a GIfTI file (not a mesh), shape (n_vertices, n_scans).

    Each data array of the file is one scan (a 2-D array is several).
    """
    gifti = load_image(img, what)
    name = _describe(img, what)
    if not _is_gifti(gifti):
        raise InputError(f"{name} is a {type(gifti).__name__}, not GIfTI surface data")
    if any(intent in _MESH_INTENTS for intent in _intent_names(gifti)):
        raise InputError(f"{name} is a GIfTI mesh, not data on a mesh")
    columns = [np.asarray(d.data) for d in gifti.darrays]
    if not columns:
        raise InputError(f"{name} holds no data array")
    columns = [c[:, None] if c.ndim == 1 else c for c in columns]
    lengths = sorted({c.shape[0] for c in columns})
    if len(lengths) > 1 or any(c.ndim != 2 for c in columns):
        raise InputError(f"{name} has data arrays of shapes "
                         f"{[c.shape for c in columns]}; expected one value per vertex")
    return np.concatenate(columns, axis=1)


def load_mesh(path):
    """Vertex coordinates (n, 3) and triangles (m, 3) of a GIfTI mesh file.

    Raises
    ------
    InputError
        The file is not a GIfTI mesh, or its triangles name vertices it
        does not have.
    """
    gifti = load_image(path, "mesh")
    name = _describe(path, "mesh")
    intents = _intent_names(gifti) if _is_gifti(gifti) else []
    if not all(intent in intents for intent in _MESH_INTENTS):
        raise InputError(f"{name} is not a GIfTI mesh (it needs a "
                         "NIFTI_INTENT_POINTSET and a NIFTI_INTENT_TRIANGLE array)")
    coords = np.asarray(gifti.darrays[intents.index(_MESH_INTENTS[0])].data, dtype=np.float64)
    faces = np.asarray(gifti.darrays[intents.index(_MESH_INTENTS[1])].data, dtype=np.int64)
    if faces.size and (faces.min() < 0 or faces.max() >= coords.shape[0]):
        raise InputError(f"{name}: triangles refer to vertex {faces.max()} but the "
                         f"mesh has {coords.shape[0]} vertices")
    return coords, faces


# --------------------------------------------------------------------------
# where features live: a 3-D mask, or masked mesh parts
# --------------------------------------------------------------------------
def _check_same_grid(img, what, layout):
    what = _describe(img, what)
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
    raise InputError(f"{_describe(img, what)} must be a 3-D or 4-D image, got shape {shape}")


def _read_data(img, what, key=None):
    """``img.dataobj`` (``img.dataobj[key]`` with a ``key``) read into an
    array; a truncated or corrupt file raises :class:`InputError` naming it."""
    try:
        return np.asarray(img.dataobj if key is None else img.dataobj[key])
    except MemoryError:
        raise
    except Exception as exc:  # truncated or corrupt data: zlib, EOF, OS errors...
        raise InputError(f"{_describe(img, what)}: its data cannot be read "
                         f"({_first_line(exc)})") from exc


def _volume_blocks(img, n_volumes, what, start=0, stop=None):
    """The data of a loaded volume image as 4-D blocks of a few volumes:
    volumes ``start`` to ``stop`` (default: all)."""
    stop = n_volumes if stop is None else stop
    step = max(1, BLOCK_BYTES // (8 * int(np.prod(img.shape[:3]))))
    for first in range(start, stop, step):
        if img.ndim == 3:
            yield _read_data(img, what)[..., None]
        else:
            yield _read_data(img, what, (..., slice(first, min(first + step, stop))))


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
                raise InputError(f"{_describe(img, what)} has NaN or infinite values "
                                 f"inside the mask (volume {bad})")
            first += rows.shape[0]
            yield rows

    def estimator_params(self):
        """The ReNA parameters that give this layout's graph."""
        return {"mask_img": _nibabel().Nifti1Image(self.mask.astype(np.uint8), self.affine)}

    def to_img(self, rows):
        """A NIfTI image with ``rows`` in the mask and 0 elsewhere.

        ``rows`` of shape (n_features,) gives a 3-D image, (n, n_features)
        a 4-D image of n volumes; the dtype is kept.
        """
        rows = np.asarray(rows)
        grid = np.zeros(self.mask.shape + rows.shape[:-1][::-1], dtype=rows.dtype)
        grid[self.mask] = rows.T
        return _nibabel().Nifti1Image(grid, self.affine)


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
        if _is_nilearn_object(img) and hasattr(img, "data"):
            parts = [np.asarray(p) for p in img.data.parts.values()]
            parts = [p[:, None] if p.ndim == 1 else p for p in parts]
            names = [f"{what} part '{k}'" for k in img.data.parts]
            what_all = what
        else:
            files = [img] if isinstance(img, (str, os.PathLike)) or _is_gifti(img) else list(img)
            if len(files) != len(self.masks):
                raise InputError(f"{what} has {len(files)} GIfTI file(s) but the surface "
                                 f"has {len(self.masks)} part(s); give one file per part")
            parts = [load_surface_data(f, what) for f in files]
            names = [_describe(f, what) if _path_of(f) else f"{what} part {i + 1}"
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
        gifti = _nibabel().gifti
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
                raise InputError(f"{_describe(path, 'mask')} has shape {data.shape}; expected "
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
    if _is_nilearn_object(mask_img) and hasattr(mask_img, "mesh"):
        return _surface_layout_of(mask_img)
    img, data = _volume_3d_data(mask_img, what)
    mask = data != 0
    if not mask.any():
        raise InputError(f"{_describe(img, what)} has no in-mask voxel (shape {mask.shape}, "
                         "all zero)")
    return VolumeLayout(mask, np.asarray(img.affine, dtype=np.float64))


def _layout_of_estimator(rena):
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
def _as_list(imgs):
    """``imgs`` as a non-empty list (a single image or path becomes one item)."""
    if isinstance(imgs, (str, os.PathLike)) or not hasattr(imgs, "__iter__") \
            or _is_nilearn_object(imgs):
        return [imgs]
    imgs = list(imgs)
    if not imgs:
        raise InputError("imgs is empty: give at least one image")
    return imgs


def _names(imgs):
    """How messages name each image: by its path when it has one (added by
    :func:`_describe`), else by its position in the list."""
    return ["image" if all(_path_of(part) for part in
                           (img if isinstance(img, (tuple, list)) else [img]))
            else f"image {i}" for i, img in enumerate(imgs)]


def _scan_counts(layout, imgs, names):
    # Headers only: every shape and affine is checked before any data is read.
    return [layout.n_scans(img, name) for img, name in zip(imgs, names)]


def _read_into(layout, imgs, out, transform, verbose, desc):
    """Fill ``out`` row by row with ``transform(rows)`` of each image's blocks."""
    names = _names(imgs)
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
    imgs = _as_list(imgs)
    n_scans = sum(_scan_counts(layout, imgs, _names(imgs)))
    out = np.empty((n_scans, layout.n_features), dtype=_float_dtype(dtype))
    return _read_into(layout, imgs, out, lambda rows: rows, verbose, "reading images")


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


def _float_dtype(dtype):
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
    imgs = _as_list(imgs)
    names = _names(imgs)
    first = load_volume(imgs[0], names[0])
    _volume_count(first, names[0])
    grid = VolumeLayout(np.ones(first.shape[:3], dtype=bool),
                        np.asarray(first.affine, dtype=np.float64), "the first image")
    counts = _scan_counts(grid, imgs, names)
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
    return _nibabel().Nifti1Image(mask.astype(np.uint8), grid.affine)


def resolve_layout(imgs, mask_img=None, verbose=0):
    """The layout for ``imgs``: ``mask_img``'s, or a mask computed from
    the images (volumes) or all vertices of their mesh (``SurfaceImage``)."""
    if mask_img is not None:
        return mask_layout(mask_img)
    first = _as_list(imgs)[0]
    if _is_nilearn_object(first) and hasattr(first, "mesh"):
        return _surface_layout_of(_all_vertices_mask(first))
    return mask_layout(compute_mask(imgs, verbose=verbose))


def _all_vertices_mask(surface_img):
    """A SurfaceImage mask with every vertex of ``surface_img``'s mesh in,
    as nilearn's SurfaceMasker uses when given none."""
    from nilearn.surface import SurfaceImage

    data = {name: np.ones(mesh.n_vertices, dtype=bool)
            for name, mesh in surface_img.mesh.parts.items()}
    return SurfaceImage(mesh=surface_img.mesh, data=data)


# --------------------------------------------------------------------------
# fitting and the fitted estimator
# --------------------------------------------------------------------------
def fit_layout(X, layout, n_clusters=2, *, progress=False, **params):
    """Fit ReNA on ``X`` whose columns are ``layout``'s features.

    ``progress`` shows a progress bar over the levels; ``params`` are
    ReNA's other parameters (a ``connectivity`` replaces the layout's graph).
    """
    if params.get("connectivity") is not None:
        graph = {"connectivity": params.pop("connectivity")}
    else:
        params.pop("connectivity", None)
        graph = layout.estimator_params()
    rena = ReNA(n_clusters=n_clusters, **graph, **params)
    with fit_progress(progress, X.shape[1], min(n_clusters, X.shape[1])):
        rena.fit(X)
    return rena


def fit_images(imgs, mask_img=None, n_clusters=2, *, dtype=np.float32, verbose=0, **params):
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
    """

    layout: object
    labels: np.ndarray
    values: np.ndarray

    @classmethod
    def from_labels(cls, layout, labels):
        """Clusters 0..K-1 of a fit, stored as values 1..K (0 = background)."""
        labels = np.asarray(labels, dtype=np.int64)
        return cls(layout, labels, np.arange(1, int(labels.max()) + 2, dtype=np.int64))

    @property
    def n_clusters(self):
        return int(self.values.shape[0])

    @property
    def sizes(self):
        """Features per cluster."""
        return np.bincount(self.labels, minlength=self.n_clusters)

    def divisors(self, scaling):
        """What cluster sums are divided by: sizes (means), or their square
        roots with ``scaling`` (ReNA's ``scaling=True``)."""
        sizes = self.sizes.astype(np.float64)
        return np.sqrt(sizes) if scaling else sizes

    def reduce(self, imgs, *, scaling=False, dtype=np.float32, verbose=0):
        """Cluster means of images, shape (n_scans, K), images read one at a time."""
        dtype = _float_dtype(dtype)
        imgs = _as_list(imgs)
        divisors = self.divisors(scaling)
        out = np.empty((sum(_scan_counts(self.layout, imgs, _names(imgs))), self.n_clusters),
                       dtype=dtype)

        def means(rows):
            return cluster_means(np.ascontiguousarray(rows, dtype=dtype), self.labels, divisors)

        return _read_into(self.layout, imgs, out, means, verbose, "transforming")

    def expand(self, X_red, *, scaling=False):
        """Each feature takes its cluster's value: (K,) -> (n_features,),
        (n, K) -> (n, n_features)."""
        X_red = np.asarray(X_red)
        if X_red.ndim not in (1, 2) or X_red.shape[-1] != self.n_clusters:
            raise InputError(f"the array has shape {X_red.shape} but the labels have "
                             f"{self.n_clusters} clusters; it needs {self.n_clusters} columns")
        if scaling:
            X_red = (X_red / np.sqrt(self.sizes)).astype(X_red.dtype, copy=False)
        return X_red[..., self.labels]

    def label_values(self):
        """The label value of each feature, int32 (what label files hold)."""
        return self.values[self.labels].astype(np.int32)

    def label_img(self):
        """A NIfTI label image (volumes) or a ``SurfaceImage`` (surfaces with
        a ``SurfaceImage`` mask): 0 = background, the cluster's value inside."""
        img = self.layout.to_img(self.label_values())
        if isinstance(self.layout, VolumeLayout):
            img.header.set_intent("label")
        return img

    def label_gifti(self):
        """One GIfTI label image per part (intent NIFTI_INTENT_LABEL, with
        a label table whose colours are those of the plots)."""
        gifti = _nibabel().gifti
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


def _gifti_label(gifti, key, name, rgba):
    label = gifti.GiftiLabel(key=key, red=rgba[0], green=rgba[1], blue=rgba[2], alpha=rgba[3])
    label.label = name
    return label


def _parcellation_of(rena):
    if not hasattr(rena, "labels_"):
        raise InputError(f"this {type(rena).__name__} is not fitted; fit it first")
    return Parcellation.from_labels(_layout_of_estimator(rena), rena.labels_)


def labels_to_img(rena):
    """The label image of a fitted ReNA: 0 = background, clusters 1..K.

    Returns
    -------
    nibabel.Nifti1Image (int32) for a volume mask, nilearn SurfaceImage for
    a surface mask.
    """
    return _parcellation_of(rena).label_img()


def labels_to_gifti(rena):
    """The labels of a ReNA fitted on a surface, as one GIfTI label image per
    mesh part (0 = outside the mask, clusters 1..K)."""
    parcellation = _parcellation_of(rena)
    if not isinstance(parcellation.layout, SurfaceLayout):
        raise InputError("this ReNA was fitted on a volume mask; use labels_to_img")
    return parcellation.label_gifti()


def transform_images(rena, imgs, *, dtype=np.float32, verbose=0):
    """Cluster means of images, shape (n_scans, n_clusters_), reading one
    image at a time; equal to ``rena.transform(images_to_array(...))``."""
    return _parcellation_of(rena).reduce(imgs, scaling=rena.scaling, dtype=dtype,
                                         verbose=verbose)


def inverse_transform_img(rena, X_red):
    """``rena.inverse_transform(X_red)`` as an image: 3-D for a 1-D
    ``X_red``, 4-D (one volume per row) for a 2-D one; a ``SurfaceImage``
    for a surface mask."""
    layout = _layout_of_estimator(rena)
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


def load_parcellation(paths):
    """The clusters stored in label files: one NIfTI label image, or one
    GIfTI label file per mesh part.

    Label values need not be 1..K: clusters are the distinct nonzero
    values, in increasing order (columns of :meth:`Parcellation.reduce`).
    """
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    images = [load_image(p, "labels") for p in paths]
    names = [_describe(img, "labels") for img in images]
    if all(_is_gifti(img) for img in images):
        parts = []
        for img, name in zip(images, names):
            data = load_surface_data(img, "labels")
            if data.shape[1] != 1:
                raise InputError(f"{name} has {data.shape[1]} data arrays; "
                                 "a label file has one")
            parts.append(_integer_labels(data[:, 0], name))
        layout = SurfaceLayout(tuple(p != 0 for p in parts))
        values_per_feature = np.concatenate([p[p != 0] for p in parts])
    elif len(images) == 1:
        img, data = _volume_3d_data(images[0], "labels")
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


# --------------------------------------------------------------------------
# safe writes
# --------------------------------------------------------------------------
def check_output(path, force=False, hint="force=True"):
    """Raise unless ``path`` can be written now.

    It must not exist (unless ``force``), and its folder must exist and
    accept a new file (tried for real: permissions alone do not tell, for
    instance for root on a read-only file system).

    Raises
    ------
    FileExistsError, InputError
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"output '{path}' is a folder; give a file name")
    if path.exists() and not force:
        raise FileExistsError(f"output '{path}' already exists; {hint} overwrites it")
    folder = path.parent
    if not folder.is_dir():
        raise InputError(f"output folder '{folder}' does not exist")
    probe = folder / f".fastrena-probe-{secrets.token_hex(6)}"
    try:
        os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except OSError as exc:
        raise InputError(f"output folder '{folder}' is not writable ({exc.strerror})") from exc
    os.unlink(probe)


def _temporary_name(path):
    # Same folder (the rename stays on one file system) and same ending as
    # the target (nibabel picks the format from it); hidden.
    return path.parent / f".{secrets.token_hex(6)}.tmp-{path.name}"


def write_atomically(path, write, force=False, hint="force=True"):
    """Call ``write(temporary_path)``, then move the result to ``path``.

    Readers never see a partial file; on any error (or interruption) the
    temporary file is removed and ``path`` is left as it was. Without
    ``force`` an existing ``path`` is never replaced, even one created by
    someone else meanwhile (the final step is a hard link, which fails if
    the name is taken).
    """
    path = Path(path)
    check_output(path, force, hint)
    temporary = _temporary_name(path)
    try:
        os.close(os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        write(temporary)
        if force:
            os.replace(temporary, path)
        else:
            _move_without_overwriting(temporary, path, hint)
    except OSError as exc:
        if exc.errno is None:  # already says what went wrong (an existing output)
            raise
        raise _cannot_write(path, exc) from exc
    finally:
        if temporary.exists():
            temporary.unlink()
    return path


def _cannot_write(path, exc):
    """``exc`` (no space left, read-only file system...) as an error of the
    same type and errno naming the output rather than its temporary file."""
    message = f"cannot write output '{path}' ({exc.strerror or _first_line(exc)})"
    try:
        error = type(exc)(message)
    except Exception:  # an OSError subclass with another signature
        error = OSError(message)
    error.errno = exc.errno
    return error


def _move_without_overwriting(source, target, hint):
    try:
        os.link(source, target)
    except FileExistsError:
        raise FileExistsError(f"output '{target}' already exists; {hint} overwrites it") from None
    except OSError:
        # File systems without hard links: check, then rename.
        if target.exists():
            raise FileExistsError(
                f"output '{target}' already exists; {hint} overwrites it") from None
        os.replace(source, target)
        return
    os.unlink(source)


def check_image_name(path, suffixes):
    """Raise unless the file name ``path`` ends with one of ``suffixes``
    (nibabel picks the format from it)."""
    if not str(path).lower().endswith(tuple(suffixes)):
        raise InputError(f"output '{path}' must end with {' or '.join(suffixes)}")


def save_img(img, path, *, force=False, hint="force=True"):
    """Write a NIfTI (.nii, .nii.gz) or GIfTI (.gii) image atomically, never
    over an existing file unless ``force``."""
    check_image_name(path, (".gii",) if _is_gifti(img) else (".nii", ".nii.gz"))
    return write_atomically(path, lambda tmp: _nibabel().save(img, tmp), force, hint)


def array_format(path):
    """The suffix of an array file name (.npy, .csv or .tsv); any other
    raises :class:`InputError`."""
    suffix = Path(path).suffix.lower()
    if suffix not in ARRAY_SUFFIXES:
        raise InputError(f"array '{path}': unknown format '{suffix}'; use "
                         f"{', '.join(ARRAY_SUFFIXES)}")
    return suffix


def save_array(array, path, *, force=False, columns=None, hint="force=True"):
    """Write an array to .npy, .csv or .tsv atomically.

    Text files get a header line of ``columns`` (if given) and every
    value with enough digits to read back exactly.
    """
    suffix = array_format(path)
    array = np.asarray(array)
    if suffix == ".npy":
        def write(tmp):
            np.save(tmp, array)
    else:
        digits = 9 if array.dtype == np.float32 else 17

        def write(tmp):
            np.savetxt(tmp, np.atleast_2d(array), fmt=f"%.{digits}g",
                       delimiter="," if suffix == ".csv" else "\t",
                       header="" if columns is None else
                       ("," if suffix == ".csv" else "\t").join(columns),
                       comments="")
    return write_atomically(path, write, force, hint)


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_array(path):
    """Read a .npy, .csv or .tsv array (a text file's first line is a
    header when it is not all numbers). Text files give 2-D arrays."""
    suffix = array_format(path)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"array: no such file: '{path}'")
    try:
        if suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        else:
            delimiter = "," if suffix == ".csv" else "\t"
            with open(path) as f:
                first = f.readline().strip().split(delimiter)
            header = not all(_is_number(field) for field in first)
            array = np.loadtxt(path, delimiter=delimiter, skiprows=int(header), ndmin=2,
                               dtype=np.float64)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"array '{path}' cannot be read as {suffix} "
                         f"({_first_line(exc)})") from exc
    if array.ndim not in (1, 2) or not np.issubdtype(array.dtype, np.number) \
            or np.iscomplexobj(array):
        raise InputError(f"array '{path}' must be a 1-D or 2-D array of real numbers, "
                         f"got shape {array.shape} and dtype {array.dtype}")
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    return array
