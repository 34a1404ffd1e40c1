"""Turn what users pass as ``mask_img`` / ``connectivity`` into a graph.

nilearn is an optional dependency: its types are only looked at when the
object passed comes from nilearn, so importing fastrena never imports it.
"""

import sys
from pathlib import Path

import numpy as np

from .graphs import adjacency_graph, chain_graph, lattice_graph, surface_graph

ACCEPTED_MASKS = (
    "None, a path (str or pathlib.Path) to a NIfTI image, a nibabel "
    "Nifti1Image/Nifti2Image, a 2-D or 3-D boolean (or 0/1) numpy array, a "
    "nilearn SurfaceImage, or a fitted nilearn NiftiMasker or SurfaceMasker"
)


def is_nilearn_object(obj):
    return type(obj).__module__.split(".")[0] == "nilearn"


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


def _fitted_masker_mask(masker):
    mask = getattr(masker, "mask_img_", None)
    if mask is None:
        raise ValueError(
            f"mask_img is a {type(masker).__name__} that has not been fitted; "
            "fit it first (its mask_img_ is used)"
        )
    return mask


def _volume_mask_array(img):
    """Boolean in-mask array of a nibabel image (3-D, or 4-D with one volume)."""
    data = np.asanyarray(img.dataobj)
    if data.ndim == 4:
        if data.shape[3] != 1:
            raise ValueError(
                f"mask_img is 4-D with {data.shape[3]} volumes, shape {data.shape}; "
                "a mask must have exactly one volume"
            )
        data = data[..., 0]
    if data.ndim not in (2, 3):
        raise ValueError(f"mask_img must be a 2-D or 3-D image, got shape {data.shape}")
    return data != 0


def _load_nifti(path):
    import nibabel

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"mask_img: no such file: '{path}'")
    try:
        img = nibabel.load(str(path))
    except Exception as exc:  # nibabel raises several types for bad files
        raise ValueError(f"mask_img: '{path}' is not a readable NIfTI image ({exc})") from exc
    if not hasattr(img, "dataobj") or not hasattr(img, "affine"):
        raise ValueError(f"mask_img: '{path}' is not a volume image")
    return img


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


def _surface_parts(surface_img):
    """(faces, mask) per mesh part of a nilearn SurfaceImage mask."""
    parts = []
    for name, mesh in surface_img.mesh.parts.items():
        data = np.asarray(surface_img.data.parts[name])
        if data.ndim == 2:
            if data.shape[1] != 1:
                raise ValueError(
                    f"mask_img is a SurfaceImage with {data.shape[1]} samples in part "
                    f"'{name}'; a mask must have exactly one"
                )
            data = data[:, 0]
        parts.append((np.asarray(mesh.faces), data != 0, data.shape[0]))
    return parts


def resolve_mask(mask_img):
    """Return ``(graph, mask_img_)`` for a user's ``mask_img``.

    ``mask_img_`` is what the estimator keeps as its fitted attribute: the
    loaded nibabel image, the boolean array or the SurfaceImage (``None``
    when no mask was given, in which case ``graph`` is ``None`` too and the
    caller decides the default).
    """
    if mask_img is None:
        return None, None
    kind = _nilearn_kind(mask_img)
    if kind in ("surface_masker", "nifti_masker"):
        mask_img = _fitted_masker_mask(mask_img)
        kind = _nilearn_kind(mask_img)
    if kind == "surface_image":
        graph = surface_graph(_surface_parts(mask_img))
        if graph.n_nodes == 0:
            raise ValueError("mask_img has no in-mask vertex")
        return graph, mask_img
    if isinstance(mask_img, (str, Path)):
        mask_img = _load_nifti(mask_img)
        mask = _volume_mask_array(mask_img)
    elif _is_nibabel_image(mask_img):
        mask = _volume_mask_array(mask_img)
    elif isinstance(mask_img, np.ndarray):
        mask = _array_mask(mask_img)
        mask_img = mask
    else:
        raise TypeError(f"mask_img must be {ACCEPTED_MASKS}; got a {type(mask_img).__name__}")
    if not mask.any():
        raise ValueError(f"mask_img has no in-mask voxel (shape {mask.shape}, all zero)")
    return lattice_graph(mask), mask_img


def _is_nibabel_image(obj):
    if "nibabel" not in sys.modules:
        return False
    from nibabel.spatialimages import SpatialImage

    return isinstance(obj, SpatialImage)


def resolve_graph(mask_img, connectivity, n_features):
    """The feature graph for ``n_features`` columns, and ``mask_img_``.

    Raises the errors of the interface: both inputs given, sizes that do not
    match the number of features.
    """
    if mask_img is not None and connectivity is not None:
        raise ValueError(
            "mask_img and connectivity are mutually exclusive; got both "
            f"(mask_img a {type(mask_img).__name__}, connectivity a "
            f"{type(connectivity).__name__})"
        )
    if connectivity is not None:
        shape = getattr(connectivity, "shape", None)
        if shape is None:
            connectivity = np.asarray(connectivity)
            shape = connectivity.shape
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(f"connectivity must be a square matrix, got shape {tuple(shape)}")
        if shape[0] != n_features:
            raise ValueError(
                f"connectivity has shape {tuple(shape)} but X has {n_features} features; "
                f"expected ({n_features}, {n_features})"
            )
        return adjacency_graph(connectivity), None
    graph, mask_img_ = resolve_mask(mask_img)
    if graph is None:
        return chain_graph(n_features), None
    if graph.n_nodes != n_features:
        raise ValueError(
            f"mask_img has {graph.n_nodes} in-mask voxels/vertices but X has "
            f"{n_features} features; they must be equal"
        )
    return graph, mask_img_
