"""The ``fastrena`` command line: parcellate, reduce, expand, demo.

Every subcommand checks its inputs and outputs before any heavy work,
writes files atomically (never over an existing file without ``--force``),
and reports a bad input as one line on stderr with a non-zero exit code,
never a traceback. Progress bars are drawn on stderr when stderr is a
terminal (whatever stdout is), off with ``--quiet``.
"""

import argparse
import sys
import time
import warnings
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np

from . import __version__
from ._interrupt import interrupts_kept
from .errors import InputError

# Errors that mean "bad input or environment", reported as one line; any
# other exception is a bug in fastrena and keeps its traceback.
_USER_ERRORS = (ValueError, TypeError, OSError, ImportError, MemoryError)
_FORCE_HINT = "--force"
_SUBCOMMANDS = ("parcellate", "reduce", "expand", "demo")
_NIFTI = (".nii", ".nii.gz")
_GIFTI = (".gii",)


class _Session:
    """What a subcommand gets from :func:`main`: ``say`` prints a summary
    line (unless ``--quiet``); ``wrote`` one about an output, held back
    until the run succeeds (a failed run removes its outputs);
    ``check_outputs`` vets the files it will write and remembers which are
    new, so that a failed run removes them and leaves no file of a
    half-done job behind."""

    def __init__(self, quiet):
        self.quiet = quiet
        self.new_files = []
        self.new_folders = []
        self.written = []

    def say(self, message):
        if not self.quiet:
            print(message, flush=True)

    def wrote(self, message):
        self.written.append(f"wrote {message}")

    def report_written(self):
        for message in self.written:
            self.say(message)

    def check_outputs(self, outputs, inputs, force):
        """All outputs writable, distinct, and none of them an input."""
        from .files import check_output

        outputs = [Path(o) for o in outputs if o is not None]
        resolved = [o.resolve() for o in outputs]
        if len(set(resolved)) != len(resolved):
            raise InputError(f"the same output file is given twice: "
                             f"{', '.join(str(o) for o in outputs)}")
        input_paths = {Path(i).resolve() for i in inputs if i is not None}
        for output, full in zip(outputs, resolved):
            if full in input_paths:
                raise InputError(f"output '{output}' is also an input; inputs are never "
                                 "overwritten, choose another name")
            check_output(output, force, _FORCE_HINT)
        self.new_files += [o for o in outputs if not o.exists()]

    def remove_new_files(self):
        """Remove the outputs this run created; return a note on those that
        could not be removed (a folder turned read-only...), else ''."""
        kept = []
        for path in self.new_files:
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                kept.append(f"'{path}' ({exc.strerror or _one_line(exc)})")
        for folder in self.new_folders:  # deepest first; only if left empty
            try:
                folder.rmdir()
            except OSError:
                pass
        return f"; could not remove {', '.join(kept)}, written before the error" if kept else ""


# --------------------------------------------------------------------------
# argument types
# --------------------------------------------------------------------------
def _int_at_least(minimum):
    """An argparse type: an integer >= ``minimum``."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got '{text}'")
        return value

    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _threshold(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), got '{text}'") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), got '{text}'")
    return value


# --------------------------------------------------------------------------
# the parser
# --------------------------------------------------------------------------
def _add_common(parser):
    parser.add_argument("--force", action="store_true",
                        help="overwrite existing output files")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress bars and no summary (errors still go to stderr)")


def _add_dask_options(parser, what):
    parser.add_argument("--dask", action="store_true",
                        help=f"read the images lazily with Dask and {what} chunk by chunk: "
                             "memory bounded by the chunk size, not the data size (needs "
                             "the dask extra)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="with --dask: the address of a running dask.distributed "
                             "scheduler to join (tcp://host:8786; workers must see the "
                             "files), or a local scheduler: threads (default), processes, "
                             "synchronous")
    parser.add_argument("--volumes-per-chunk", type=_positive_int, metavar="N",
                        help="with --dask: chunks of N volumes within 4-D images (default: "
                             "one chunk per image)")


def _add_labels_options(parser, labels_help):
    parser.add_argument("--labels", action="append", required=True, metavar="LABELS",
                        help=labels_help)
    parser.add_argument("--scaling", action="store_true",
                        help="cluster means multiplied by sqrt(cluster size) "
                             "(ReNA's scaling=True); use the same in reduce and expand")


def build_parser():
    """The ``fastrena`` argument parser, with one subparser per subcommand."""
    parser = argparse.ArgumentParser(
        prog="fastrena",
        description="Fast ReNA clustering of brain images: NIfTI/GIfTI in, "
                    "parcellations, reduced data and pictures out.",
        epilog="Start with 'fastrena demo'; 'fastrena SUBCOMMAND --help' for each subcommand.")
    parser.add_argument("--version", action="version", version=f"fastrena {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")

    p = commands.add_parser(
        "parcellate", help="cluster the voxels (or vertices) of images into K parcels",
        description="Fit ReNA on NIfTI images (3-D or 4-D, one grid) or on GIfTI data "
                    "files with their mesh, and write the label image (0 = background, "
                    "clusters 1..K).",
        epilog="Examples:\n"
               "  fastrena parcellate run1.nii.gz run2.nii.gz --mask mask.nii.gz -k 1000 "
               "-o labels.nii.gz --plot labels.png\n"
               "  fastrena parcellate lh.func.gii rh.func.gii --mesh lh.pial.gii "
               "--mesh rh.pial.gii -k 500 -o lh.label.gii -o rh.label.gii",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", metavar="IMG",
                   help="NIfTI images; or, with --mesh, GIfTI data files, one per mesh for "
                        "each scan group, in the order of --mesh (lh rh lh rh ...)")
    p.add_argument("--mask", action="append", metavar="MASK",
                   help="NIfTI mask on the images' grid (default: computed from the images, "
                        "as nilearn's background mask); with --mesh, one GIfTI mask per mesh, "
                        "--mask repeated (default: every vertex)")
    p.add_argument("--mesh", action="append", metavar="MESH",
                   help="GIfTI mesh file of surface data; repeat for each part "
                        "(--mesh lh.pial.gii --mesh rh.pial.gii)")
    p.add_argument("-k", "--n-clusters", type=_positive_int, required=True, metavar="K",
                   help="number of clusters (ReNA's n_clusters)")
    p.add_argument("-o", "--output", action="append", required=True, metavar="OUT",
                   help="label image to write (.nii or .nii.gz); with --mesh, one GIfTI "
                        "label file (.label.gii) per mesh, -o repeated")
    p.add_argument("--n-iter", type=_positive_int, default=10, metavar="N",
                   help="maximum number of agglomeration levels (default: 10)")
    p.add_argument("--threshold", type=_threshold, default=1e-7, metavar="T",
                   help="relative tolerance for ties between nearest neighbours, in [0, 1) "
                        "(default: 1e-7)")
    p.add_argument("--linkage", choices=("nilearn", "ward"), default="nilearn",
                   help="nilearn: nilearn's ReNA, same labels (default); ward: Ward's merge "
                        "cost on true cluster means, balanced clusters, error close to "
                        "Ward clustering's (use --n-iter 20 or more below K = 5%% of "
                        "the voxels)")
    p.add_argument("--scaling", action="store_true",
                   help="with --reduced: cluster means times sqrt(cluster size)")
    p.add_argument("--memory", metavar="DIR",
                   help="cache fits in this folder (joblib), reused by identical runs")
    p.add_argument("--memory-level", type=_non_negative_int, default=1, metavar="N",
                   help="0 disables the cache even with --memory (default: 1)")
    p.add_argument("--connectivity", metavar="GRAPH.npz",
                   help="a scipy.sparse adjacency (save_npz) over the in-mask voxels or "
                        "vertices, replacing the grid or mesh graph")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="print one line per agglomeration level (ReNA's verbose)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="precision the images are read in (default: float32)")
    p.add_argument("--reduced", metavar="OUT",
                   help="also write the images' cluster means (n_scans x K) to .npy, "
                        ".csv or .tsv")
    p.add_argument("--plot", metavar="PNG", help="also draw the parcellation to this picture")
    p.add_argument("--bg-img", metavar="ANAT",
                   help="with --plot: anatomical NIfTI image to draw the clusters over")
    _add_dask_options(p, "fit")
    _add_common(p)
    p.set_defaults(run=_parcellate)

    p = commands.add_parser(
        "reduce", help="images -> cluster means, an (n_scans, K) array",
        description="Average the images over each cluster of a label image: one row per "
                    "scan, one column per cluster (label values in increasing order).",
        epilog="Example:\n  fastrena reduce run1.nii.gz run2.nii.gz --labels labels.nii.gz "
               "-o reduced.csv",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", metavar="IMG",
                   help="NIfTI images on the labels' grid; or GIfTI data files, one per "
                        "label file for each scan group")
    _add_labels_options(p, "label image written by 'fastrena parcellate' (or any atlas: "
                           "nonzero integer values); for surfaces, one GIfTI label file "
                           "per mesh part, --labels repeated")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="array to write: .npy, .csv or .tsv")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="precision of the result (default: float32)")
    _add_dask_options(p, "reduce them")
    _add_common(p)
    p.set_defaults(run=_reduce)

    p = commands.add_parser(
        "expand", help="an (n_scans, K) array -> images (each voxel its cluster's value)",
        description="Give every voxel (vertex) of each cluster the cluster's value: a 1-D "
                    "array gives a 3-D image, a 2-D array a 4-D image (one volume per row).",
        epilog="Example:\n  fastrena expand reduced.csv --labels labels.nii.gz -o expanded.nii.gz",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("array", metavar="ARRAY", help=".npy, .csv or .tsv with K columns")
    _add_labels_options(p, "label image the array was reduced with; for surfaces, one "
                           "GIfTI label file per mesh part, --labels repeated")
    p.add_argument("-o", "--output", action="append", required=True, metavar="OUT",
                   help="image to write (.nii or .nii.gz); with GIfTI labels, one .gii "
                        "file per label file, -o repeated")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="precision of the images written, whatever the array's format "
                        "(default: float32)")
    _add_common(p)
    p.set_defaults(run=_expand)

    p = commands.add_parser(
        "demo", help="run ReNA on bundled data and write labels and pictures",
        description="ReNA on nilearn's bundled MNI152 2 mm brain mask with synthetic smooth "
                    "signals, and on the real fsaverage5 surface maps (sulcal depth, "
                    "curvature, thickness); prints what it does and how long it takes, and "
                    "writes the label images and pictures to a folder. Needs the 'neuro' "
                    "extra (pip install fastrena[neuro]).")
    p.add_argument("--out", default="fastrena_demo", metavar="DIR",
                   help="folder to write to, created if needed (default: fastrena_demo)")
    p.add_argument("--samples", type=_positive_int, default=100, metavar="S",
                   help="number of synthetic scans (default: 100)")
    p.add_argument("-k", "--n-clusters", type=_positive_int, default=5000, metavar="K",
                   help="clusters of the volume parcellation (default: 5000)")
    p.add_argument("--surface-clusters", type=_positive_int, default=1000, metavar="K",
                   help="clusters of the surface parcellation (default: 1000)")
    _add_common(p)
    p.set_defaults(run=_demo)
    return parser


# --------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------
def _progress_on(args):
    """Bars are drawn on stderr: on when it is a terminal, so that
    ``2>err.txt`` gets no bar frames and ``>out.txt`` keeps the bars."""
    from ._progress import stderr_is_terminal

    return not args.quiet and stderr_is_terminal()


@contextmanager
def _warnings_to_stderr(command):
    """Show warnings as one ``fastrena CMD: warning: ...`` line each."""
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"fastrena {command}: warning: {_one_line(message)}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("always", UserWarning)
        warnings.showwarning = show
        yield


def _one_line(message):
    return " ".join(str(message).split()) or type(message).__name__


def main(argv=None):
    """Run the ``fastrena`` command line; return the exit code.

    0 on success, 1 for a bad input (one line on stderr), 2 for a bad
    command line (argparse's usage message), 130 if interrupted.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help, --version, usage errors
        return exit_.code if isinstance(exit_.code, int) else 0
    except KeyboardInterrupt:  # building the parser takes a few tens of ms
        command = f" {argv[0]}" if argv and argv[0] in _SUBCOMMANDS else ""
        print(f"fastrena{command}: interrupted", file=sys.stderr)
        return 130
    session = _Session(args.quiet)
    try:
        # No Ctrl-C is lost, even where Python drops it: see fastrena._interrupt.
        with _warnings_to_stderr(args.command), interrupts_kept():
            args.run(args, session)
    except _USER_ERRORS + _dask_errors() as exc:
        kept = session.remove_new_files()
        message = _one_line(exc) if not isinstance(exc, MemoryError) else "out of memory"
        print(f"fastrena {args.command}: error: {message}{kept}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        session.remove_new_files()
        print(f"fastrena {args.command}: interrupted", file=sys.stderr)
        return 130
    except BaseException:
        # A bug in fastrena: its traceback follows, but no half-done output.
        session.remove_new_files()
        raise
    session.report_written()
    return 0


def _dask_errors():
    """Dask's errors that are about the cluster, not fastrena: workers that
    kept dying on a task (out of memory, killed)."""
    if "distributed" not in sys.modules:
        return ()
    from distributed import KilledWorker

    return (KilledWorker,)


def _check_dask_options(args):
    if not args.dask:
        for option, value in (("--scheduler", args.scheduler),
                              ("--volumes-per-chunk", args.volumes_per_chunk)):
            if value is not None:
                raise InputError(f"{option} is only used with --dask")


def _lazy_images(args, layout, images):
    """The images as a lazy Dask array (``--dask``)."""
    from .dask import read_images_lazily

    return read_images_lazily(layout, images, dtype=args.dtype,
                              volumes_per_chunk=args.volumes_per_chunk)


def _scheduler(args):
    """Where the Dask work of a subcommand runs (a no-op without ``--dask``)."""
    if not args.dask:
        return nullcontext()
    from .dask import use_scheduler

    return use_scheduler(args.scheduler)


def _group(files, n_parts):
    """Surface data files as one tuple per scan group (one file per part)."""
    if len(files) % n_parts:
        raise InputError(f"{len(files)} GIfTI data files for {n_parts} meshes: give one file "
                         f"per mesh for each scan group, in the order of the meshes")
    return [tuple(files[i:i + n_parts]) for i in range(0, len(files), n_parts)]


def _refuse_gifti(images, hint):
    for image in images:
        if str(image).lower().endswith(".gii"):
            raise InputError(f"image '{image}' is a GIfTI surface file: {hint}")


def _elapsed(start):
    return f"{time.perf_counter() - start:.2f} s"


def _count(n, noun, plural=None):
    """``"1 scan"``, ``"2 scans"``; ``plural`` when it is not noun + s."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def _feature_words(layout):
    """What the features of ``layout`` are, singular and plural."""
    from .layouts import VolumeLayout

    return ("voxel", "voxels") if isinstance(layout, VolumeLayout) else ("vertex", "vertices")


def _features(layout):
    """The features of ``layout`` in words: ``"210 voxels"``, ``"1 vertex"``."""
    return _count(layout.n_features, *_feature_words(layout))


def _cluster_range(n_clusters):
    return "cluster 1" if n_clusters == 1 else f"clusters 1..{n_clusters}"


def _parcellate(args, session):
    from .files import array_format, check_image_name, save_array, save_img
    from .images import load_3d_volume
    from .layouts import compute_mask, mask_layout, read_images, surface_layout
    from .parcellations import Parcellation, fit_layout

    surface = args.mesh is not None
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
    _check_dask_options(args)
    # Every name and every small input is checked before the long work.
    for output in args.output:
        check_image_name(output, _GIFTI if surface else _NIFTI)
    if args.reduced:
        array_format(args.reduced)
    if args.plot:
        _check_picture_name(args.plot)
    # Read now: a damaged --bg-img fails before the fit, not after it.
    bg_img = load_3d_volume(args.bg_img, "--bg-img") if args.bg_img else None
    inputs = [*args.images, *(args.mask or []), *(args.mesh or []), args.connectivity,
              args.bg_img]
    session.check_outputs([*args.output, args.reduced, args.plot], inputs, args.force)
    connectivity = _load_connectivity(args.connectivity)
    progress = _progress_on(args)
    with _scheduler(args):
        start = time.perf_counter()
        if surface:
            layout = surface_layout(args.mesh, args.mask)
            images = _group(args.images, n_parts)
        else:
            _refuse_gifti(args.images, "give its mesh files with --mesh")
            mask = args.mask[0] if args.mask else compute_mask(args.images, verbose=progress)
            layout = mask_layout(mask, "mask")
            images = args.images
            if args.mask is None:
                session.say(f"mask: {_features(layout)} computed from the images")
        if args.dask:
            X = _lazy_images(args, layout, images)
            read_s = "lazily, by the fit"
        else:
            X = read_images(layout, images, args.dtype, progress)
            read_s = f"in {_elapsed(start)}"
        _check_connectivity(connectivity, args.connectivity, layout)
        n_clusters = args.n_clusters
        if n_clusters > layout.n_features:
            warnings.warn(f"-k/--n-clusters {n_clusters} is larger than the number of "
                          f"{_feature_words(layout)[1]} ({layout.n_features}); making "
                          f"{_count(layout.n_features, 'cluster')}", UserWarning)
            n_clusters = layout.n_features
        start = time.perf_counter()
        rena = fit_layout(X, layout, n_clusters, progress=progress,
                          scaling=args.scaling, n_iter=args.n_iter, threshold=args.threshold,
                          linkage=args.linkage,
                          memory=args.memory, memory_level=args.memory_level,
                          verbose=args.verbose, connectivity=connectivity)
        session.say(f"{_count(rena.n_clusters_, 'cluster')} of {_features(layout)} from "
                    f"{_count(X.shape[0], 'scan')} (read {read_s}, fit in {_elapsed(start)})")
        parcellation = Parcellation.from_labels(layout, rena.labels_)
        images_out = parcellation.label_gifti() if surface else [parcellation.label_img()]
        for image, path in zip(images_out, args.output):
            save_img(image, path, force=args.force, hint=_FORCE_HINT)
        session.wrote(f"{', '.join(args.output)} (0 = background, "
                      f"{_cluster_range(rena.n_clusters_)})")
        if args.reduced:
            X_red = np.asarray(rena.transform(X))  # computes a lazy (Dask) result
            save_array(X_red, args.reduced, force=args.force,
                       columns=[f"label_{v}" for v in parcellation.values], hint=_FORCE_HINT)
            session.wrote(f"{args.reduced} ({X.shape[0]} x {rena.n_clusters_} cluster "
                          "means)")
    if args.plot:
        _plot_parcellation(parcellation, args, bg_img)
        session.wrote(str(args.plot))


def _check_connectivity(connectivity, path, layout):
    """A --connectivity graph has one row and one column per feature."""
    if connectivity is None:
        return
    n = layout.n_features
    if connectivity.ndim != 2 or connectivity.shape != (n, n):
        raise InputError(f"--connectivity '{path}' has shape {tuple(connectivity.shape)} "
                         f"but there are {_features(layout)} to cluster; it must be "
                         f"({n}, {n})")


def _check_picture_name(path):
    from .plotting import matplotlib_canvas

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
                         f"({_one_line(exc)})") from exc


def _plot_parcellation(parcellation, args, bg_img=None):
    from . import plotting
    from .layouts import VolumeLayout

    if isinstance(parcellation.layout, VolumeLayout):
        plotting.plot_parcellation(parcellation.label_img(), bg_img,
                                   output_file=args.plot, force=args.force)
    else:
        plotting.plot_surface_parcellation(
            parcellation.layout.meshes, parcellation.layout.split(parcellation.label_values()),
            output_file=args.plot, force=args.force)


def _reduce(args, session):
    from .files import array_format, save_array
    from .layouts import SurfaceLayout
    from .parcellations import load_parcellation

    array_format(args.output)
    _check_dask_options(args)
    session.check_outputs([args.output], [*args.images, *args.labels], args.force)
    parcellation = load_parcellation(args.labels)
    images = args.images
    if isinstance(parcellation.layout, SurfaceLayout):
        images = _group(images, len(args.labels))
    else:
        _refuse_gifti(images, "reduce it with GIfTI label files (--labels)")
    start = time.perf_counter()
    with _scheduler(args):
        if args.dask:
            from .dask import reduce_images_lazily

            X_red = reduce_images_lazily(parcellation, images, scaling=args.scaling,
                                         dtype=args.dtype,
                                         volumes_per_chunk=args.volumes_per_chunk).compute()
        else:
            X_red = parcellation.reduce(images, scaling=args.scaling, dtype=args.dtype,
                                        verbose=_progress_on(args))
    save_array(X_red, args.output, force=args.force, hint=_FORCE_HINT,
               columns=[f"label_{v}" for v in parcellation.values])
    session.wrote(f"{args.output}: {_count(X_red.shape[0], 'scan')} x "
                  f"{_count(X_red.shape[1], 'cluster')} ({_elapsed(start)})")


def _expand(args, session):
    from .files import check_image_name, load_array, save_img
    from .layouts import SurfaceLayout
    from .parcellations import load_parcellation

    parcellation = load_parcellation(args.labels)
    surface = isinstance(parcellation.layout, SurfaceLayout)
    if len(args.output) != len(args.labels):
        raise InputError(f"-o/--output: {len(args.output)} files for {len(args.labels)} "
                         "label files; give one per label file" if surface else
                         f"-o/--output: give one image, got {len(args.output)} files")
    for output in args.output:
        check_image_name(output, _GIFTI if surface else _NIFTI)
    session.check_outputs(args.output, [args.array, *args.labels], args.force)
    # Text files hold no dtype: the same precision whatever the format.
    array = _as_dtype(load_array(args.array), args.dtype, args.array)
    rows = parcellation.expand(array, scaling=args.scaling)
    layout = parcellation.layout
    images = layout.to_gifti(rows) if surface else [layout.to_img(rows)]
    for image, path in zip(images, args.output):
        save_img(image, path, force=args.force, hint=_FORCE_HINT)
    scans = _count(1 if array.ndim == 1 else array.shape[0], "scan")
    session.wrote(f"{', '.join(args.output)} ({scans}, "
                  f"{_count(parcellation.n_clusters, 'cluster')})")


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


def _demo(args, session):
    from ._demo import prepare, run_demo

    # The folders prepare() makes go too if the demo fails or is interrupted.
    missing = Path(args.out)
    while not missing.exists() and missing != missing.parent:
        session.new_folders.append(missing)
        missing = missing.parent
    session.check_outputs(prepare(Path(args.out)), [], args.force)
    run_demo(Path(args.out), samples=args.samples, n_clusters=args.n_clusters,
             surface_clusters=args.surface_clusters, force=args.force,
             progress=_progress_on(args), say=session.say)


if __name__ == "__main__":  # python -m fastrena.cli
    sys.exit(main())
