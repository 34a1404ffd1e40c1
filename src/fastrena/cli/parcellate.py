"""``fastrena parcellate``: images -> label image(s), and optionally the
reduced data and a picture."""

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

from .._rules import LINKAGES
from ..errors import InputError
from .common import (FORCE_HINT, GIFTI, NIFTI, add_common, add_dask_options, check_dask_options,
                     cluster_range, count, elapsed, feature_words, features, group_scans,
                     lazy_images, non_negative_int, one_line, positive_int, progress_on,
                     refine_iter_value, refuse_gifti, scheduler, threshold_value)

#: Where a mask given among the images belongs (reading.warn_of_masks_among_scans).
MASK_HINT = "give it with --mask, not among the images"


def add_parser(commands):
    """Add the ``parcellate`` subcommand to ``commands`` (argparse subparsers)."""
    p = commands.add_parser(
        "parcellate", help="cluster the voxels (or vertices) of images into K parcels",
        description="Fit ReNA on NIfTI images (3-D or 4-D, one grid), on GIfTI data "
                    "files with their mesh, or on CIFTI-2 dense files (grayordinates, with "
                    "the meshes of their cortical surfaces), and write the label image (0 = "
                    "background, clusters 1..K).",
        epilog="Examples:\n"
               "  fastrena parcellate run1.nii.gz run2.nii.gz --mask mask.nii.gz -k 1000 "
               "-o labels.nii.gz --plot labels.png\n"
               "  fastrena parcellate lh.func.gii rh.func.gii --mesh lh.pial.gii "
               "--mesh rh.pial.gii -k 500 -o lh.label.gii -o rh.label.gii\n"
               "  fastrena parcellate run1.dtseries.nii run2.dtseries.nii --mesh lh.surf.gii "
               "--mesh rh.surf.gii -k 1000 -o parc.dlabel.nii",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", metavar="IMG",
                   help="NIfTI images; or, with --mesh, GIfTI data files, one per mesh for "
                        "each scan group, in the order of --mesh (lh rh lh rh ...); or "
                        "CIFTI-2 dense files (.dtseries.nii, .dscalar.nii) on one set of "
                        "grayordinates")
    p.add_argument("--mask", action="append", metavar="MASK",
                   help="NIfTI mask on the images' grid (default: computed from the images, "
                        "as nilearn's background mask); with --mesh, one GIfTI mask per mesh, "
                        "--mask repeated (default: every vertex)")
    p.add_argument("--mesh", action="append", metavar="MESH",
                   help="GIfTI mesh file of surface data; repeat for each part "
                        "(--mesh lh.pial.gii --mesh rh.pial.gii); for CIFTI files, one per "
                        "cortical surface structure of the file, in its order (a mesh that "
                        "names its hemisphere is matched by it)")
    p.add_argument("-k", "--n-clusters", type=positive_int, required=True, metavar="K",
                   action="append",
                   help="number of clusters (ReNA's n_clusters); repeat for several nested "
                        "scales from one fit (-k 100 -k 400 -k 1600), the outputs then "
                        "named with {k} (-o labels_res-{k}_dseg.nii.gz)")
    p.add_argument("-o", "--output", action="append", required=True, metavar="OUT",
                   help="label image to write (.nii or .nii.gz); with --mesh, one GIfTI "
                        "label file (.label.gii) per mesh, -o repeated; for CIFTI files, one "
                        "dense label file (.dlabel.nii)")
    p.add_argument("--n-iter", type=positive_int, default=10, metavar="N",
                   help="maximum number of agglomeration levels of the default linkage "
                        "(default: 10); not used with --linkage ward, which runs its merges "
                        "to the end and takes the cut")
    p.add_argument("--threshold", type=threshold_value, default=1e-7, metavar="T",
                   help="relative tolerance for ties between nearest neighbours, in [0, 1) "
                        "(default: 1e-7)")
    p.add_argument("--linkage", choices=LINKAGES, default="nilearn",
                   help="nilearn: nilearn's ReNA, same labels (default); ward: every merge "
                        "made at Ward's cost (on the true cluster means) at that moment, "
                        "the merges run to the end and the K clusters taken from the cut; "
                        "error close to Ward clustering's; --n-iter does not apply to it")
    p.add_argument("--max-refine-iter", type=refine_iter_value, default="auto", metavar="N",
                   help="sweeps of boundary refinement after the merges, each moving single "
                        "features to a neighbouring cluster when that lowers the "
                        "within-cluster sum of squares (K and connected clusters kept; "
                        "with --linkage ward, from the tree's cut at a fifth more clusters "
                        "merged back before the last sweep); 0 turns it off; auto "
                        "(default): 2 with --linkage ward, 0 with the default linkage "
                        "(nilearn's labels)")
    p.add_argument("--scaling", action="store_true",
                   help="with --reduced: cluster means times sqrt(cluster size)")
    p.add_argument("--memory", metavar="DIR",
                   help="cache fits in this folder (joblib), reused by identical runs")
    p.add_argument("--memory-level", type=non_negative_int, default=1, metavar="N",
                   help="0 disables the cache even with --memory (default: 1)")
    p.add_argument("--connectivity", metavar="GRAPH.npz",
                   help="a scipy.sparse adjacency (save_npz) over the in-mask voxels or "
                        "vertices, replacing the grid or mesh graph")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="print one line per agglomeration level (ReNA's verbose); with "
                        "--linkage ward, one per round, then the cut")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="precision the images are read in (default: float32)")
    p.add_argument("--reduced", metavar="OUT",
                   help="also write the images' cluster means (n_scans x K) to .npy, "
                        ".csv or .tsv")
    p.add_argument("--plot", metavar="PNG", help="also draw the parcellation to this picture")
    p.add_argument("--bg-img", metavar="ANAT",
                   help="with --plot: anatomical NIfTI image to draw the clusters over "
                        "(for CIFTI-2 files, the volume structures' clusters; default: "
                        "nilearn's MNI152 template)")
    add_dask_options(p, "fit")
    add_common(p)
    p.set_defaults(run=run)


def run(args, session):
    """Check everything small, then read, fit and write."""
    bg_img, connectivity = _check_inputs(args, session)
    progress = progress_on(args)
    with scheduler(args):
        layout, images, X, read_s = _read(args, session, progress)
        _check_connectivity(connectivity, args.connectivity, layout)
        written = _fit_and_write(args, session, layout, X, read_s, connectivity, progress)
    for parcellation, scale in written:
        if scale.plot:
            _plot_parcellation(parcellation, scale, bg_img)
            session.wrote(str(scale.plot))


def _scales(args):
    """One namespace per -k, smallest first: ``n_clusters`` that K, and
    the outputs named for it ({k} replaced by K). Several scales need {k}
    in every output name."""
    ks = sorted(set(args.n_clusters))
    if len(ks) > 1:
        for option, values in (("-o/--output", args.output), ("--reduced", [args.reduced]),
                               ("--plot", [args.plot])):
            for value in values:
                if value is not None and "{k}" not in str(value):
                    raise InputError(f"{option} '{value}': with several -k, name each output "
                                     "with {k}, replaced by each K "
                                     "(e.g. labels_res-{k}_dseg.nii.gz)")

    def named(value, k):
        return None if value is None else str(value).replace("{k}", str(k))

    return [argparse.Namespace(**{**vars(args), "n_clusters": k,
                                  "output": [named(o, k) for o in args.output],
                                  "reduced": named(args.reduced, k),
                                  "plot": named(args.plot, k)})
            for k in ks]


def _all_outputs(args):
    """Every output of every scale: label files, --reduced, --plot."""
    return [path for scale in _scales(args)
            for path in (*scale.output, scale.reduced, scale.plot)]


def _check_inputs(args, session):
    """Every option, name and small input, before the long work; returns
    the --bg-img image (read now: a damaged one fails before the fit) and
    the --connectivity matrix."""
    from ..files import array_format, check_image_name
    from ..images import load_3d_volume

    if _is_cifti(args):
        return _check_cifti_inputs(args, session)
    surface = args.mesh is not None
    if not surface:
        # Before the outputs: GIfTI data without --mesh would be told to
        # write NIfTI labels.
        refuse_gifti(args.images, "give its mesh files with --mesh")
    n_parts = len(args.mesh) if surface else 1
    if len(args.output) != n_parts:
        raise InputError(f"-o/--output: {len(args.output)} files for {n_parts} meshes; "
                         "give one label file per mesh" if surface else
                         f"-o/--output: give one label image, got {len(args.output)} files")
    if args.bg_img and not args.plot:
        raise InputError("--bg-img is only used with --plot")
    if args.scaling and not args.reduced:
        raise InputError("--scaling is only used with --reduced")
    if not surface and args.mask is not None and len(args.mask) != 1:
        raise InputError(f"--mask: give one NIfTI mask, got {len(args.mask)} files")
    check_dask_options(args)
    for output in args.output:
        check_image_name(output, GIFTI if surface else NIFTI)
    if args.reduced:
        array_format(args.reduced)
    if args.plot:
        _check_picture_name(args.plot)
    bg_img = load_3d_volume(args.bg_img, "--bg-img") if args.bg_img else None
    inputs = {"image": args.images, "mask": args.mask or [], "mesh": args.mesh or [],
              "--connectivity": [args.connectivity], "--bg-img": [args.bg_img]}
    session.check_outputs(_all_outputs(args), inputs, args.force)
    _check_tables(args, session, inputs)
    return bg_img, _load_connectivity(args.connectivity)


def _tables(scale):
    """The lookup table written beside each label output of a scale."""
    from ..files import lookup_table_path

    return [lookup_table_path(output) for output in scale.output]


def _check_tables(args, session, inputs):
    """The lookup tables' names are free: no other output, no input."""
    others = {Path(o).resolve(): o for o in _all_outputs(args) if o is not None}
    tables = []
    for scale in _scales(args):
        for table, output in zip(_tables(scale), scale.output):
            if table.resolve() in others:
                raise InputError(f"'{others[table.resolve()]}' is the name of the lookup "
                                 f"table written beside '{output}' ({table}); choose another "
                                 "name")
            tables.append(table)
    session.check_outputs(tables, inputs, args.force)


def _is_cifti(args):
    """Whether the images are CIFTI-2 files (then all must be dense ones)."""
    from ..images import DENSE_CIFTI_SUFFIXES, is_cifti_name

    cifti = [image for image in args.images if is_cifti_name(image)]
    if cifti and len(cifti) != len(args.images):
        other = next(image for image in args.images if not is_cifti_name(image))
        raise InputError(f"image '{other}' is not a CIFTI-2 file: give only CIFTI-2 dense "
                         "files, or no CIFTI-2 file")
    for image in cifti:
        if not str(image).lower().endswith(DENSE_CIFTI_SUFFIXES):
            raise InputError(f"image '{image}' is not a dense CIFTI-2 data file; give "
                             f"{' or '.join(DENSE_CIFTI_SUFFIXES)} files")
    return bool(cifti)


def _check_cifti_inputs(args, session):
    """_check_inputs for CIFTI-2 images: one .dlabel.nii output; no mask."""
    from ..files import array_format, check_image_name
    from ..images import load_3d_volume

    if len(args.output) != 1:
        raise InputError(f"-o/--output: give one CIFTI-2 label file (.dlabel.nii), got "
                         f"{len(args.output)} files")
    check_image_name(args.output[0], (".dlabel.nii",))
    if args.mask:
        raise InputError("--mask is not used with CIFTI-2 images: CIFTI-2 files list their "
                         "own grayordinates")
    if args.bg_img and not args.plot:
        raise InputError("--bg-img is only used with --plot")
    if args.scaling and not args.reduced:
        raise InputError("--scaling is only used with --reduced")
    check_dask_options(args)
    if args.reduced:
        array_format(args.reduced)
    if args.plot:
        _check_picture_name(args.plot)
    # Under the volume structures' slices (default: the MNI152 template).
    bg_img = load_3d_volume(args.bg_img, "--bg-img") if args.bg_img else None
    inputs = {"image": args.images, "mesh": args.mesh or [],
              "--connectivity": [args.connectivity], "--bg-img": [args.bg_img]}
    session.check_outputs(_all_outputs(args), inputs, args.force)
    _check_tables(args, session, inputs)
    return bg_img, _load_connectivity(args.connectivity)


def _read(args, session, progress):
    """The layout (from --mesh, --mask, or a mask computed from the
    images), the images grouped as the layout reads them, the data (a lazy
    Dask array with --dask) and how it was read, in words."""
    from ..layouts import mask_layout, surface_layout
    from ..reading import compute_mask, read_images, warn_of_masks_among_scans

    start = time.perf_counter()
    if _is_cifti(args):
        from ..grayordinates import grayordinate_layout

        layout = grayordinate_layout(args.images[0], args.mesh, "image")
        images = args.images
    elif args.mesh is not None:
        layout = surface_layout(args.mesh, args.mask)
        images = group_scans(args.images, len(args.mesh))
    else:
        mask = args.mask[0] if args.mask else compute_mask(args.images, verbose=progress)
        layout = mask_layout(mask, "mask")
        images = args.images
        if args.mask is None:
            session.say(f"mask: {features(layout)} computed from the images")
    if args.dask:
        # Headers only: the values are read by the fit, chunk by chunk.
        warn_of_masks_among_scans(layout, images, mask_hint=MASK_HINT)
        return layout, images, lazy_images(args, layout, images), "lazily, by the fit"
    X = read_images(layout, images, args.dtype, progress, mask_hint=MASK_HINT)
    return layout, images, X, f"in {elapsed(start)}"


def _fit_and_write(args, session, layout, X, read_s, connectivity, progress):
    """Fit (once, with its merge tree for several -k), write each scale's
    label image(s), lookup tables and --reduced; return (parcellation,
    scale) pairs."""
    from ..parcellations import fit_layout

    scales = _scales(args)
    for scale in scales:
        if scale.n_clusters > layout.n_features:
            warnings.warn(f"-k/--n-clusters {scale.n_clusters} is larger than the number of "
                          f"{feature_words(layout)[1]} ({layout.n_features}); making "
                          f"{count(layout.n_features, 'cluster')}", UserWarning)
    multi = len(scales) > 1
    start = time.perf_counter()
    rena = fit_layout(X, layout, min(scales[-1].n_clusters, layout.n_features),
                      progress=progress, scaling=args.scaling, n_iter=args.n_iter,
                      threshold=args.threshold, linkage=args.linkage, memory=args.memory,
                      memory_level=args.memory_level, verbose=args.verbose,
                      connectivity=connectivity, compute_full_tree=multi,
                      max_refine_iter=args.max_refine_iter)
    if multi:
        found = ", ".join(str(rena.tree_.fit_labels(s.n_clusters, args.n_iter)[1])
                          for s in scales)
        session.say(f"{found} clusters (nested scales, one fit) of {features(layout)} from "
                    f"{count(X.shape[0], 'scan')} (read {read_s}, fit in {elapsed(start)})")
    else:
        session.say(f"{count(rena.n_clusters_, 'cluster')} of {features(layout)} from "
                    f"{count(X.shape[0], 'scan')} (read {read_s}, fit in {elapsed(start)})")
    return [(_write_scale(args, session, layout, X, rena, scale, multi), scale)
            for scale in scales]


def _write_scale(args, session, layout, X, rena, scale, multi):
    """One scale's label image(s), lookup tables and --reduced."""
    from ..files import save_array, save_img, save_text
    from ..parcellations import Parcellation

    k = scale.n_clusters if multi else None
    labels = rena.labels_
    refined = False
    if multi:
        # As a fit to k would give them: --n-iter levels at most, then the
        # refinement of the fit (labels_ is the largest scale's, refined).
        labels, found = rena.tree_.fit_labels(k, args.n_iter)
        if found > k:
            # A "ward" fit runs its merges to the end: only the components limit it.
            why = ("the graph's connected components do not" if args.linkage == "ward" else
                   f"the graph's connected components, or --n-iter {args.n_iter} levels, "
                   "do not")
            warnings.warn(f"-k {k}: {found} clusters ({why} allow fewer)", UserWarning)
        if found == rena.n_clusters_:
            labels = rena.labels_
        elif rena.n_refine_iter_ > 0:
            from ..refine import refine_iter_for, refined_fit_labels

            ward_cut = rena.tree_.labels_at if args.linkage == "ward" else None
            labels = refined_fit_labels(X, rena.layout_.graph, labels, found,
                                        refine_iter_for(args.max_refine_iter, args.linkage),
                                        ward_cut)[0]
            refined = True
    parcellation = Parcellation.from_labels(layout, labels)
    surface = args.mesh is not None and not _is_cifti(args)
    images_out = parcellation.label_gifti() if surface else [parcellation.label_img()]
    for image, path in zip(images_out, scale.output):
        save_img(image, path, force=args.force, hint=FORCE_HINT)
    session.wrote(f"{', '.join(scale.output)} (0 = background, "
                  f"{cluster_range(parcellation.n_clusters)})")
    clusters = parcellation.part_clusters() if surface else [None]
    for part, path in zip(clusters, _tables(scale)):
        save_text(parcellation.lookup_table(part), path, force=args.force, hint=FORCE_HINT)
    session.wrote(f"{', '.join(map(str, _tables(scale)))} (lookup table: index, name, color, "
                  "size)")
    if scale.reduced:
        # np.asarray computes a lazy (Dask) result.
        if refined:
            # The refined scale is not the tree's: its means from its labels.
            from ..backends import backend_of

            sizes = np.bincount(parcellation.labels).astype(np.float64)
            X_red = np.asarray(backend_of(X).means_of(
                X, parcellation.labels, np.sqrt(sizes) if args.scaling else sizes))
        else:
            X_red = np.asarray(rena.transform(X, n_clusters=parcellation.n_clusters)
                               if multi else rena.transform(X))
        save_array(X_red, scale.reduced, force=args.force,
                   columns=[f"label_{v}" for v in parcellation.values], hint=FORCE_HINT)
        session.wrote(f"{scale.reduced} ({X.shape[0]} x {parcellation.n_clusters} cluster "
                      "means)")
    return parcellation


def _check_connectivity(connectivity, path, layout):
    """A --connectivity graph has one row and one column per feature."""
    if connectivity is None:
        return
    n = layout.n_features
    if connectivity.ndim != 2 or connectivity.shape != (n, n):
        raise InputError(f"--connectivity '{path}' has shape {tuple(connectivity.shape)} "
                         f"but there are {features(layout)} to cluster; it must be "
                         f"({n}, {n})")


def _check_picture_name(path):
    from ..plotting import matplotlib_canvas

    _, canvas = matplotlib_canvas()
    suffix = Path(path).suffix.lower().lstrip(".")
    formats = canvas.get_supported_filetypes()
    if suffix not in formats:
        raise InputError(f"--plot '{path}': unknown picture format '{suffix}'; use one of "
                         f"{', '.join(sorted(formats))}")


def _load_connectivity(path):
    if path is None:
        return None
    from scipy import sparse

    if not Path(path).is_file():
        raise FileNotFoundError(f"--connectivity: no such file: '{path}'")
    try:
        return sparse.load_npz(path)
    except (ValueError, OSError, KeyError) as exc:
        raise InputError(f"--connectivity '{path}' is not a scipy.sparse .npz file "
                         f"({one_line(exc)})") from exc


def _plot_parcellation(parcellation, args, bg_img=None):
    from .. import plotting
    from ..grayordinates import GrayordinateLayout
    from ..layouts import VolumeLayout

    layout = parcellation.layout
    if isinstance(layout, GrayordinateLayout):
        values = parcellation.label_values()
        meshes, parts, sides = layout.surface_parts(values)
        known = sides if None not in sides else None
        plotting.plot_grayordinate_parcellation(
            meshes, parts, layout.volume_img(values), sides=known,
            volume_structures=layout.volume_structures(),
            bg_img="MNI152" if bg_img is None else bg_img, output_file=args.plot,
            force=args.force)
    elif isinstance(parcellation.layout, VolumeLayout):
        plotting.plot_parcellation(parcellation.label_img(), bg_img,
                                   output_file=args.plot, force=args.force)
    else:
        plotting.plot_surface_parcellation(
            parcellation.layout.meshes, parcellation.layout.split(parcellation.label_values()),
            output_file=args.plot, force=args.force)
