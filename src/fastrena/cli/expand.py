"""``fastrena expand``: cluster values and a label image -> images."""

import argparse

import numpy as np

from ..errors import InputError
from .common import FORCE_HINT, GIFTI, NIFTI, add_common, add_labels_options, count

def add_parser(commands):
    """Add the ``expand`` subcommand to ``commands`` (argparse subparsers)."""
    p = commands.add_parser(
        "expand", help="an (n_scans, K) array -> images (each voxel its cluster's value)",
        description="Give every voxel (vertex) of each cluster the cluster's value: a 1-D "
                    "array gives a 3-D image, a 2-D array a 4-D image (one volume per row).",
        epilog="Example:\n  fastrena expand reduced.csv --labels labels.nii.gz -o expanded.nii.gz",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("array", metavar="ARRAY", help=".npy, .csv or .tsv with K columns; with "
                   "CIFTI-2 labels, also a parcellated series (.ptseries.nii)")
    add_labels_options(p, "label image the array was reduced with; for surfaces, one "
                           "GIfTI label file per mesh part, --labels repeated")
    p.add_argument("-o", "--output", action="append", required=True, metavar="OUT",
                   help="image to write (.nii or .nii.gz); with GIfTI labels, one .gii "
                        "file per label file, -o repeated; with CIFTI-2 labels, a dense "
                        "series (.dtseries.nii) or, for one row, maps (.dscalar.nii)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="precision of the images written, whatever the array's format "
                        "(default: float32)")
    add_common(p)
    p.set_defaults(run=run)


def run(args, session):
    from ..files import check_image_name, save_img
    from ..grayordinates import GrayordinateLayout
    from ..images import DENSE_CIFTI_SUFFIXES
    from ..layouts import SurfaceLayout
    from ..parcellations import load_parcellation

    parcellation = load_parcellation(args.labels)
    surface = isinstance(parcellation.layout, SurfaceLayout)
    cifti = isinstance(parcellation.layout, GrayordinateLayout)
    if len(args.output) != len(args.labels):
        raise InputError(f"-o/--output: {len(args.output)} files for {len(args.labels)} "
                         "label files; give one per label file" if surface else
                         f"-o/--output: give one image, got {len(args.output)} files")
    for output in args.output:
        check_image_name(output, GIFTI if surface else DENSE_CIFTI_SUFFIXES if cifti else NIFTI)
    session.check_outputs(args.output, {"array": [args.array], "labels": args.labels},
                          args.force)
    # Text files hold no dtype: the same precision whatever the format.
    array, row_axis = _load_rows(args.array, cifti, parcellation)
    array = _as_dtype(array, args.dtype, args.array)
    rows = parcellation.expand(array, scaling=args.scaling, what=f"array '{args.array}'")
    layout = parcellation.layout
    if cifti:
        scalar = str(args.output[0]).lower().endswith(".dscalar.nii")
        images = [layout.to_dense(rows, row_axis, scalar=scalar)]
    else:
        images = layout.to_gifti(rows) if surface else [layout.to_img(rows)]
    for image, path in zip(images, args.output):
        save_img(image, path, force=args.force, hint=FORCE_HINT)
    scans = count(1 if array.ndim == 1 else array.shape[0], "scan")
    session.wrote(f"{', '.join(args.output)} ({scans}, "
                  f"{count(parcellation.n_clusters, 'cluster')})")


def _load_rows(path, cifti, parcellation):
    """The array to expand and, from a parcellated CIFTI-2 file, its rows'
    axis (kept in the dense output); its parcels must hold the labels'
    clusters, in order (whatever their names)."""
    from ..files import load_array
    from ..images import PARCELLATED_CIFTI_SUFFIXES

    if not str(path).lower().endswith(PARCELLATED_CIFTI_SUFFIXES):
        return load_array(path), None
    if not cifti:
        raise InputError(f"array '{path}' is a parcellated CIFTI-2 file: expand it with "
                         "CIFTI-2 labels (.dlabel.nii)")
    from ..grayordinates import load_cifti, same_parcels
    from ..images import read_data

    img = load_cifti(path, "array")
    parcels = img.header.get_axis(1)
    if not same_parcels(parcels, parcellation.parcels_axis()):
        raise InputError(f"array '{path}' has {len(parcels)} parcels that are not the "
                         f"labels' {parcellation.n_clusters} clusters (other grayordinates "
                         "in some parcel, or another order); give the file reduced with "
                         "these labels")
    return read_data(img, f"array '{path}'").astype(np.float64), img.header.get_axis(0)


def _as_dtype(array, dtype, path):
    """``array`` in ``dtype``; an error, not an overflow to infinity (and
    NumPy's warning), for finite values beyond float32's range."""
    dtype = np.dtype(dtype)
    if dtype == np.float32 and array.dtype != np.float32:
        magnitudes = np.abs(array[np.isfinite(array)])
        largest = float(magnitudes.max(initial=0.0))
        if largest > float(np.finfo(np.float32).max):  # compared as float64
            raise InputError(f"array '{path}' holds values up to {largest:.4g}, beyond "
                             "float32's range; give --dtype float64")
    return array.astype(dtype, copy=False)
