"""Reading images into ``(n_scans, n_features)`` arrays through a layout,
and the masks computed from images when none is given.

Images are read one at a time, a few volumes at a time, straight into the
output array (no 4-D copy), headers checked before any data is read.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from ._progress import progress_bar
from .errors import InputError, warn_user
from .images import describe, is_nilearn_object, load_volume, nibabel_module, path_of
from .layouts import VolumeLayout, mask_layout, surface_layout_of, volume_blocks, volume_count

if TYPE_CHECKING:  # annotations only: not imported at run time
    from nibabel import Nifti1Image
    from numpy.typing import DTypeLike

    from .layouts import Layout

__all__ = ["as_list", "compute_mask", "float_dtype", "images_to_array", "read_images",
           "read_rows_into", "resolve_layout", "scan_counts", "scan_names",
           "warn_of_masks_among_scans"]


#: Where a mask read as scans belongs, in Python (the command line says --mask).
MASK_HINT = "give it as mask_img, not among the images"


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


def read_rows_into(layout, imgs, out, transform, verbose, desc, watch=None):
    """Fill ``out`` row by row with ``transform(rows)`` of each image's
    blocks; ``watch(i, rows)``, if given, sees the blocks of image i as read."""
    names = scan_names(imgs)
    bar = progress_bar(verbose > 0, out.shape[0], desc, "scan")
    row = 0
    try:
        for i, (img, name) in enumerate(zip(imgs, names)):
            for rows in layout.read(img, name):
                if watch is not None:
                    watch(i, rows)
                out[row:row + rows.shape[0]] = transform(rows)
                row += rows.shape[0]
                bar.update(rows.shape[0])
    finally:
        bar.close()
    return out


def read_images(layout: Layout, imgs: Any, dtype: DTypeLike = np.float32, verbose: int = 0,
                *, mask_hint: str = MASK_HINT) -> np.ndarray:
    """The features of ``layout`` in images, one row per scan (see
    :func:`images_to_array`, which takes a mask instead of a layout).

    An image that looks like a mask given as one more scan warns (see
    :func:`warn_of_masks_among_scans`; ``mask_hint`` says where a mask
    goes). Its values are checked as they are read, not read again.
    """
    imgs = as_list(imgs)
    names = scan_names(imgs)
    n_scans = sum(scan_counts(layout, imgs, names))
    out = np.empty((n_scans, layout.n_features), dtype=float_dtype(dtype))
    binary = [True] * len(imgs)

    def watch(i, rows):
        # A scan's first volume has other values than 0 and 1: one volume
        # settles it, and the rest of its blocks are not looked at.
        if binary[i]:
            binary[i] = _zeros_and_ones(rows[:1]) and _zeros_and_ones(rows[1:])

    checked = isinstance(layout, VolumeLayout) and len(imgs) > 1
    read_rows_into(layout, imgs, out, lambda rows: rows, verbose, "reading images",
                   watch if checked else None)
    if checked:
        warn_of_masks_among_scans(layout, imgs, binary, mask_hint=mask_hint)
    return out


def _zeros_and_ones(values):
    return bool(np.all((values == 0) | (values == 1)))


def warn_of_masks_among_scans(layout, imgs, binary=None, *, mask_hint=MASK_HINT):
    """Warn of each image that may be a mask read as scans (a mask given
    with the images, ``--mask`` forgotten): every in-mask value 0 or 1
    where another image has other values (``binary``: one flag per image,
    when the values were read), or, from the headers alone, a data type
    that no other image has and one volume where every other image has
    several (a mask, or an anatomical image, among runs). One of the last
    two alone is ordinary (a 3-D run beside 4-D ones; runs saved by
    different tools), so it does not warn by itself. Only volume layouts
    are checked.
    """
    imgs = as_list(imgs)
    if not isinstance(layout, VolumeLayout) or len(imgs) < 2:
        return
    names = scan_names(imgs)
    headers = [load_volume(img, name) for img, name in zip(imgs, names)]
    dtypes = [np.dtype(img.get_data_dtype()) for img in headers]
    counts = [volume_count(img, name) for img, name in zip(headers, names)]
    total = sum(counts)
    for i, img in enumerate(imgs):
        others = [j for j in range(len(imgs)) if j != i]
        other_dtypes = sorted({dtypes[j].name for j in others})
        looks_binary = (binary is not None and binary[i]
                        and not all(binary[j] for j in others))
        odd_type = dtypes[i].name not in other_dtypes
        single = counts[i] == 1 and all(counts[j] > 1 for j in others)
        reasons = [reason for reason, found in (
            ("every value it has inside the mask is 0 or 1, where the other images have "
             "other values", looks_binary),
            (f"its data type {dtypes[i].name} is not theirs ({', '.join(other_dtypes)})",
             odd_type),
            ("it has one volume where every other image has several", single)) if found]
        if looks_binary or (odd_type and single):
            warn_user(f"{describe(img, names[i])} may be a mask rather than scans: "
                      f"{'; '.join(reasons)}. It is read as {counts[i]} of the {total} "
                      f"scans; if it is a mask, {mask_hint}")


def images_to_array(imgs: Any, mask_img: Any, *, dtype: DTypeLike = np.float32,
                    verbose: int = 0) -> np.ndarray:
    """The in-mask values of images, one row per scan.

    Parameters
    ----------
    imgs : path, nibabel image, SurfaceImage, or a list of them
        3-D images give one row, 4-D images one row per volume.
    mask_img : path or nibabel image of a 3-D mask, a SurfaceImage mask, or a
        nilearn masker (its mask), as ``ReNA(mask_img=...)`` takes
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


def compute_mask(imgs: Any, *, verbose: int = 0) -> Nifti1Image:
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
    volume_count(first, names[0])
    grid = VolumeLayout(np.ones(first.shape[:3], dtype=bool),
                        np.asarray(first.affine, dtype=np.float64), "the first image")
    counts = scan_counts(grid, imgs, names)
    differs = np.zeros(grid.mask.shape, dtype=bool)
    finite = np.ones(grid.mask.shape, dtype=bool)
    background = None
    bar = progress_bar(verbose > 0, sum(counts), "computing mask", "scan")
    try:
        for img, name, n in zip(imgs, names, counts):
            for block in volume_blocks(load_volume(img, name), n, name):
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
    # (With a NaN background, NaN is outside by convention: nothing to say.)
    dropped = 0 if np.isnan(background) else int(np.count_nonzero(differs & ~finite))
    if dropped:
        warn_user(f"{dropped} voxel{'s' if dropped > 1 else ''} of the images "
                  f"{'hold' if dropped > 1 else 'holds'} NaN or infinite values in some "
                  "volume: left out of the computed mask")
    return nibabel_module().Nifti1Image(mask.astype(np.uint8), grid.affine)


def resolve_layout(imgs: Any, mask_img: Any = None, verbose: int = 0) -> Layout:
    """The layout for ``imgs``: ``mask_img``'s, or a mask computed from
    the images (volumes) or all vertices of their mesh (``SurfaceImage``)."""
    if mask_img is not None:
        return mask_layout(mask_img)
    first = as_list(imgs)[0]
    if is_nilearn_object(first) and hasattr(first, "mesh"):
        return surface_layout_of(_all_vertices_mask(first))
    return mask_layout(compute_mask(imgs, verbose=verbose))


def _all_vertices_mask(surface_img):
    """A SurfaceImage mask with every vertex of ``surface_img``'s mesh in,
    as nilearn's SurfaceMasker uses when given none."""
    from nilearn.surface import SurfaceImage

    data = {name: np.ones(mesh.n_vertices, dtype=bool)
            for name, mesh in surface_img.mesh.parts.items()}
    return SurfaceImage(mesh=surface_img.mesh, data=data)
