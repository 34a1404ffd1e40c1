"""Loading images: NIfTI volumes, GIfTI data and meshes, nilearn objects.

Each loader takes a path or an image already loaded and names it in its
errors (``what``: "mask_img", "image 3", a path). Nothing here knows which
features are wanted: that is a layout's job (:mod:`fastrena.layouts`).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import InputError, first_line, warn_user

if TYPE_CHECKING:  # annotations only: not imported at run time
    from nibabel.filebasedimages import FileBasedImage
    from nibabel.gifti import GiftiImage
    from nibabel.spatialimages import SpatialImage

__all__ = ["CIFTI_SUFFIXES", "DENSE_CIFTI_SUFFIXES", "HEMISPHERES", "PARCELLATED_CIFTI_SUFFIXES",
           "check_structure", "gifti_structure", "in_mask", "is_cifti", "is_cifti_name",
           "is_nilearn_object", "is_volume_name", "load_3d_volume", "load_image", "load_mesh",
           "load_mesh_part", "load_surface_data", "load_surface_files", "load_surface_part",
           "load_volume", "named_structure"]

#: Dense CIFTI-2 data files (one value per grayordinate and row).
DENSE_CIFTI_SUFFIXES = (".dtseries.nii", ".dscalar.nii")
#: Parcellated CIFTI-2 files of cluster means: a series, or maps.
PARCELLATED_CIFTI_SUFFIXES = (".ptseries.nii", ".pscalar.nii")
#: Every CIFTI-2 file name fastrena recognises (reads or writes).
CIFTI_SUFFIXES = DENSE_CIFTI_SUFFIXES + PARCELLATED_CIFTI_SUFFIXES + (
    ".dlabel.nii", ".dconn.nii", ".pconn.nii")


def is_cifti_name(path):
    """Whether ``path`` is named as a CIFTI-2 file (``.dtseries.nii``...)."""
    return isinstance(path, (str, os.PathLike)) and str(path).lower().endswith(CIFTI_SUFFIXES)


def is_volume_name(path):
    """Whether ``path`` is named as a NIfTI volume (``.nii``, ``.nii.gz``),
    not as a CIFTI-2 file (whose names end in ``.nii`` too)."""
    return (isinstance(path, (str, os.PathLike))
            and str(path).lower().endswith((".nii", ".nii.gz")) and not is_cifti_name(path))


def is_cifti(img):
    """Whether ``img`` is a CIFTI-2 file name or a loaded CIFTI-2 image
    (without importing nibabel's cifti2 module)."""
    return is_cifti_name(img) or type(img).__name__ == "Cifti2Image"

_MESH_INTENTS = ("NIFTI_INTENT_POINTSET", "NIFTI_INTENT_TRIANGLE")


def nibabel_module():
    import nibabel

    return nibabel


def load_image(img: str | os.PathLike | FileBasedImage, what: str = "image") -> FileBasedImage:
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
    nibabel = nibabel_module()
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
                         f"({first_line(exc)})") from exc
    return loaded


def is_nilearn_object(obj):
    """Whether ``obj`` comes from nilearn (looked at without importing it)."""
    return type(obj).__module__.split(".")[0] == "nilearn"


def is_gifti(img):
    return isinstance(img, nibabel_module().gifti.GiftiImage)


def path_of(img):
    if isinstance(img, (str, os.PathLike)):
        return os.fspath(img)
    # nibabel does not keep the name of the GIfTI files it loads.
    return img.get_filename() if hasattr(img, "get_filename") else None


def in_mask(values, what):
    """Which of a mask's ``values`` are in it: nonzero and finite. NaN or
    infinity (a map saved with NaN outside the brain) is outside, with a
    warning naming the mask ``what``, as nilearn's maskers read it; read
    as nonzero, every background voxel was in (the whole grid
    parcellated, silently). A mask whose nonzero values differ (a
    probability map, an atlas given as a mask) is read the same way, with
    a warning: nilearn's maskers refuse a mask of more than two values,
    and a grey-matter map so given takes in every voxel it touches, where
    its user likely meant a threshold."""
    values = np.asarray(values)
    inside = values != 0
    if values.dtype.kind in "fc":
        finite = np.isfinite(values)
        if not finite.all():
            n_bad = int(values.size - np.count_nonzero(finite))
            warn_user(f"{what} holds {n_bad} NaN or infinite values: read as outside the "
                      f"mask, as nilearn's maskers read them")
            inside &= finite
    if values.dtype.kind != "b":
        kept = values[inside]
        if kept.size and (kept != kept[0]).any():
            low, high = kept.min(), kept.max()
            warn_user(f"{what} is not binary: its nonzero values range from {low:g} to "
                      f"{high:g} ({np.unique(kept).size} distinct values); every nonzero "
                      f"value is read as in the mask (nilearn's maskers refuse a mask of more "
                      f"than two values). To keep only part of it, threshold it first, for "
                      f"example nilearn.image.binarize_img(mask, threshold=0.5)")
    return inside


def describe(img, what):
    """How messages name an image: ``what 'its/path'``, or ``what`` alone
    for an image that exists only in memory."""
    path = path_of(img)
    return f"{what} '{path}'" if path else what


def load_volume(img: str | os.PathLike | SpatialImage, what: str = "image") -> SpatialImage:
    """A nibabel volume image (not GIfTI) for a path or an image."""
    loaded = load_image(img, what)
    if is_gifti(loaded):
        raise InputError(f"{describe(img, what)} is a GIfTI surface file where a NIfTI "
                         "volume is expected")
    if not hasattr(loaded, "affine") or not hasattr(loaded, "dataobj"):
        raise InputError(f"{describe(img, what)} is not a volume image")
    return loaded


def load_3d_volume(img: str | os.PathLike | SpatialImage, what: str = "image") -> SpatialImage:
    """A 3-D volume image (or 4-D with one volume) with its data read into
    memory now, so that a damaged file fails here, with its name."""
    loaded, data = volume_3d_data(img, what)
    return type(loaded)(data, loaded.affine, loaded.header)


def volume_3d_data(img, what):
    """A volume image that must be 3-D (or 4-D with one volume), and its
    data as a 3-D array, read now: (loaded image, data)."""
    loaded = load_volume(img, what)
    shape = tuple(loaded.shape)
    if len(shape) != 3 and shape[3:] != (1,):
        raise InputError(f"{describe(loaded, what)} must be a 3-D image, got shape {shape}")
    return loaded, read_data(loaded, what).reshape(shape[:3])


def _intent_names(gifti):
    codes = nibabel_module().nifti1.intent_codes
    return [codes.niistring[d.intent] for d in gifti.darrays]


def gifti_structure(gifti):
    """The structure a loaded GIfTI image says it is on, in its
    ``AnatomicalStructurePrimary`` metadata (the file's, else its first
    data array's that has one): (CIFTI-2 structure name, the value as the
    file writes it), e.g. ``("CIFTI_STRUCTURE_CORTEX_LEFT", "CortexLeft")``;
    None if it names none, or none that nibabel knows."""
    nibabel = nibabel_module()
    for meta in [gifti.meta] + [array.meta for array in gifti.darrays]:
        value = dict(meta or {}).get("AnatomicalStructurePrimary")
        if value:
            try:
                return nibabel.cifti2.BrainModelAxis.to_cifti_brain_structure_name(value), value
            except ValueError:
                return None
    return None


#: nilearn's names of the hemispheres (``PolyMesh`` parts), as
#: :func:`gifti_structure` gives them.
HEMISPHERES = {"left": ("CIFTI_STRUCTURE_CORTEX_LEFT", "CortexLeft"),
               "right": ("CIFTI_STRUCTURE_CORTEX_RIGHT", "CortexRight")}


def named_structure(found, name):
    """A part's entry of ``SurfaceLayout.structures``: what a GIfTI file
    names (:func:`gifti_structure`: CIFTI-2 structure name, the name as
    written) and what named it (``name``), or None if it names nothing."""
    return None if found is None else (*found, name)


def check_structure(structures, part, found, name, fix):
    """Refuse a GIfTI file (``name``) given for ``part`` that names another
    hemisphere than the part's (``structures``: one :func:`named_structure`
    per part, or None); ``fix`` begins the advice ("give the masks")."""
    expected = None if structures is None else structures[part]
    if expected is None or found is None or found[0] == expected[0]:
        return
    order = ", ".join(s[1] if s is not None else "(not named)" for s in structures)
    raise InputError(f"{name} is on {found[1]} but {expected[2]}, part {part + 1} of "
                     f"{len(structures)}, is on {expected[1]}; {fix} in this order: {order}")


def load_surface_data(img: str | os.PathLike | GiftiImage, what: str = "image") -> np.ndarray:
    """The data of a GIfTI file (not a mesh), shape (n_vertices, n_scans).

    Each data array of the file is one scan (a 2-D array is several).
    """
    return load_surface_part(img, what)[0]


def load_surface_part(img, what="image"):
    """:func:`load_surface_data`, and the structure the file names
    (:func:`gifti_structure`, or None)."""
    gifti = load_image(img, what)
    name = describe(img, what)
    if not is_gifti(gifti):
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
    return np.concatenate(columns, axis=1), gifti_structure(gifti)


def load_mesh(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Vertex coordinates (n, 3) and triangles (m, 3) of a GIfTI mesh file.

    Raises
    ------
    InputError
        The file is not a GIfTI mesh, or its triangles name vertices it
        does not have.
    """
    coords, faces, _ = load_mesh_part(path)
    return coords, faces


def load_mesh_part(path):
    """:func:`load_mesh`'s coordinates and triangles, and the structure
    the file names (:func:`gifti_structure`, or None)."""
    gifti = load_image(path, "mesh")
    name = describe(path, "mesh")
    intents = _intent_names(gifti) if is_gifti(gifti) else []
    if not all(intent in intents for intent in _MESH_INTENTS):
        raise InputError(f"{name} is not a GIfTI mesh (it needs a "
                         "NIFTI_INTENT_POINTSET and a NIFTI_INTENT_TRIANGLE array)")
    coords = np.asarray(gifti.darrays[intents.index(_MESH_INTENTS[0])].data, dtype=np.float64)
    faces = np.asarray(gifti.darrays[intents.index(_MESH_INTENTS[1])].data, dtype=np.int64)
    if faces.size and (faces.min() < 0 or faces.max() >= coords.shape[0]):
        raise InputError(f"{name}: triangles refer to vertex {faces.max()} but the "
                         f"mesh has {coords.shape[0]} vertices")
    return coords, faces, gifti_structure(gifti)


def load_surface_files(mesh_paths, mask_paths=None):
    """Meshes (coordinates, triangles), in-mask vertices (every vertex
    without masks) and hemispheres of GIfTI mesh files and GIfTI masks,
    one of each per part: the hemisphere a part's mesh names, else its
    mask's (:func:`named_structure`, or None). A mask that names another
    hemisphere than its mesh is refused."""
    loaded = [load_mesh_part(path) for path in mesh_paths]
    meshes = tuple((coords, faces) for coords, faces, _ in loaded)
    structures = [named_structure(found, describe(path, "mesh"))
                  for path, (_, _, found) in zip(mesh_paths, loaded)]
    if mask_paths is None:
        masks = tuple(np.ones(coords.shape[0], dtype=bool) for coords, _ in meshes)
    else:
        if len(mask_paths) != len(meshes):
            raise InputError(f"{len(mask_paths)} mask file(s) for {len(meshes)} mesh(es); "
                             "give one mask per mesh")
        masks = []
        for p, (path, (coords, _)) in enumerate(zip(mask_paths, meshes)):
            data, found = load_surface_part(path, "mask")
            check_structure(structures, p, found, describe(path, "mask"), "give the masks")
            if data.shape != (coords.shape[0], 1):
                raise InputError(f"{describe(path, 'mask')} has shape {data.shape}; expected "
                                 f"one value for each of the mesh's {coords.shape[0]} vertices")
            masks.append(in_mask(data[:, 0], describe(path, "mask")))
            # A mesh that names nothing takes its mask's word.
            structures[p] = structures[p] or named_structure(found, describe(path, "mask"))
        masks = tuple(masks)
    if not any(m.any() for m in masks):
        raise InputError("the surface masks have no in-mask vertex")
    return meshes, masks, tuple(structures)


@contextmanager
def reading_data(img, what):
    """Within: a failure to read ``img``'s data (a truncated or corrupt
    file: zlib, EOF, OS errors...) raises :class:`InputError` naming it;
    MemoryError and InputError pass as they are."""
    try:
        yield
    except (MemoryError, InputError):
        raise
    except Exception as exc:
        raise InputError(f"{describe(img, what)}: its data cannot be read "
                         f"({first_line(exc)})") from exc


def read_data(img, what, key=None):
    """``img.dataobj`` (``img.dataobj[key]`` with a ``key``) read into an
    array; a truncated or corrupt file raises :class:`InputError` naming it."""
    with reading_data(img, what):
        return np.asarray(img.dataobj if key is None else img.dataobj[key])
