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
:func:`surface_layout`. CIFTI-2 grayordinates: :func:`grayordinate_layout`
(a dense file and the meshes of its surfaces) is a layout that
:func:`images_to_array`, :func:`fit_images` and ``ReNA(mask_img=layout)``
take; :func:`labels_to_img` then writes a dense label file and
:func:`labels_to_parcels_img` a parcellated series. nilearn is imported
only when a ``SurfaceImage`` is involved; nibabel is a core dependency.

This module gathers the public names of the modules that implement them
(see docs/design.md): :mod:`fastrena.errors` (:class:`InputError`),
:mod:`fastrena.images` (loading), :mod:`fastrena.layouts` (feature spaces,
reading images into arrays, masks), :mod:`fastrena.grayordinates`
(CIFTI-2), :mod:`fastrena.parcellations` (fits
from images, label images and files), :mod:`fastrena.files` (safe writes,
arrays in files).
"""

from .errors import InputError
from .files import (array_format, check_image_name, check_output, load_array, save_array,
                    save_img, write_atomically)
from .grayordinates import GrayordinateLayout, grayordinate_layout, load_cifti
from .images import load_3d_volume, load_image, load_mesh, load_surface_data, load_volume
from .layouts import SurfaceLayout, VolumeLayout, mask_layout, surface_layout
from .reading import compute_mask, images_to_array, read_images, resolve_layout
from .parcellations import (Parcellation, fit_images, fit_layout, inverse_transform_img,
                            labels_to_gifti, labels_to_img, labels_to_parcels_img,
                            load_parcellation, transform_images)

__all__ = [
    "GrayordinateLayout",
    "InputError",
    "Parcellation",
    "SurfaceLayout",
    "VolumeLayout",
    "array_format",
    "check_image_name",
    "check_output",
    "compute_mask",
    "fit_images",
    "fit_layout",
    "grayordinate_layout",
    "images_to_array",
    "inverse_transform_img",
    "labels_to_gifti",
    "labels_to_img",
    "labels_to_parcels_img",
    "load_3d_volume",
    "load_array",
    "load_cifti",
    "load_image",
    "load_mesh",
    "load_parcellation",
    "load_surface_data",
    "load_volume",
    "mask_layout",
    "read_images",
    "resolve_layout",
    "save_array",
    "save_img",
    "surface_layout",
    "transform_images",
    "write_atomically",
]
