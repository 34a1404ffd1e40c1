"""``fastrena reduce``: images and a label image -> cluster means."""

import argparse
import time

from ..errors import InputError
from ..images import PARCELLATED_CIFTI_SUFFIXES, is_cifti_name
from .common import (FORCE_HINT, add_common, add_dask_options, add_labels_options,
                     check_dask_options, count, elapsed, group_scans, progress_on, refuse_gifti,
                     scheduler)

def add_parser(commands):
    """Add the ``reduce`` subcommand to ``commands`` (argparse subparsers)."""
    p = commands.add_parser(
        "reduce", help="images -> cluster means, an (n_scans, K) array",
        description="Average the images over each cluster of a label image: one row per "
                    "scan, one column per cluster (label values in increasing order).",
        epilog="Example:\n  fastrena reduce run1.nii.gz run2.nii.gz --labels labels.nii.gz "
               "-o reduced.csv",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", metavar="IMG",
                   help="NIfTI images on the labels' grid; or GIfTI data files, one per "
                        "label file for each scan group; or CIFTI-2 dense files on the "
                        "grayordinates of a .dlabel.nii")
    add_labels_options(p, "label image written by 'fastrena parcellate' (or any atlas: "
                           "nonzero integer values); for surfaces, one GIfTI label file "
                           "per mesh part, --labels repeated")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="array to write: .npy, .csv or .tsv; with a CIFTI-2 label file, "
                        "also a parcellated CIFTI-2 series (.ptseries.nii, as wb_command "
                        "-cifti-parcellate writes) or maps (.pscalar.nii)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="precision of the result (default: float32)")
    add_dask_options(p, "reduce them")
    add_common(p)
    p.set_defaults(run=run)


def run(args, session):
    from ..files import array_format, save_array, save_img
    from ..grayordinates import GrayordinateLayout
    from ..layouts import SurfaceLayout
    from ..parcellations import load_parcellation

    parcels = str(args.output).lower().endswith(PARCELLATED_CIFTI_SUFFIXES)
    if not parcels:
        try:
            array_format(args.output)
        except InputError as exc:
            also = " or ".join(PARCELLATED_CIFTI_SUFFIXES)
            raise InputError(f"{exc}; with CIFTI-2 labels also {also}") from None
    check_dask_options(args)
    session.check_outputs([args.output], {"image": args.images, "labels": args.labels},
                          args.force)
    parcellation = load_parcellation(args.labels)
    cifti = isinstance(parcellation.layout, GrayordinateLayout)
    if parcels and not cifti:
        raise InputError(f"output '{args.output}': a parcellated CIFTI-2 file needs CIFTI-2 "
                         "labels (.dlabel.nii); write .npy, .csv or .tsv")
    images = args.images
    if not cifti:
        for image in images:
            if is_cifti_name(image):
                raise InputError(f"image '{image}' is a CIFTI-2 file: reduce it with CIFTI-2 "
                                 "labels (--labels parc.dlabel.nii)")
    if isinstance(parcellation.layout, SurfaceLayout):
        images = group_scans(images, len(args.labels))
    else:
        refuse_gifti(images, "reduce it with GIfTI label files (--labels)")
    start = time.perf_counter()
    with scheduler(args):
        if args.dask:
            from ..dask import reduce_images_lazily

            X_red = reduce_images_lazily(parcellation, images, scaling=args.scaling,
                                         dtype=args.dtype,
                                         volumes_per_chunk=args.volumes_per_chunk).compute()
        else:
            X_red = parcellation.reduce(images, scaling=args.scaling, dtype=args.dtype,
                                        verbose=progress_on(args))
    if parcels:
        scalar = str(args.output).lower().endswith(".pscalar.nii")
        save_img(parcellation.parcels_img(X_red, _row_axis(images), scalar=scalar),
                 args.output, force=args.force, hint=FORCE_HINT)
    else:
        save_array(X_red, args.output, force=args.force, hint=FORCE_HINT,
                   columns=[f"label_{v}" for v in parcellation.values])
    session.wrote(f"{args.output}: {count(X_red.shape[0], 'scan')} x "
                  f"{count(X_red.shape[1], 'cluster')} ({elapsed(start)})")


def _row_axis(images):
    """The rows' axis of the CIFTI-2 inputs, kept in the parcellated
    output: a single input's; several series of one step and unit, joined
    end to end; else None (a default axis)."""
    from ..grayordinates import load_cifti

    axes = [load_cifti(image, "image").header.get_axis(0) for image in images]
    if len(axes) == 1:
        return axes[0]
    steps = {(getattr(a, "step", None), getattr(a, "unit", None)) for a in axes}
    if len(steps) != 1 or None in next(iter(steps)):
        return None
    first = axes[0]
    return type(first)(start=first.start, step=first.step,
                       size=sum(len(a) for a in axes), unit=first.unit)
