"""What the subcommands share: the session (summary lines, outputs removed
on failure), argument types and options, and the words of the summaries."""

import argparse
import time
from contextlib import nullcontext
from pathlib import Path

from .._rules import Count, Fraction
from ..errors import InputError

FORCE_HINT = "--force"
NIFTI = (".nii", ".nii.gz")
GIFTI = (".gii",)


class Session:
    """What a subcommand gets from :func:`main`: ``say`` prints a summary
    line (unless ``--quiet``); ``hold`` one printed only once the run has
    succeeded and its outputs are committed (a failed run removes them),
    ``wrote`` such a line about an output;
    ``check_outputs`` vets the files it will write and remembers which are
    new, so that a failed run removes them and leaves no file of a
    half-done job behind."""

    def __init__(self, quiet):
        self.quiet = quiet
        self.new_files = []
        self.new_folders = []
        self.held = []

    def say(self, message):
        if not self.quiet:
            print(message, flush=True)

    def hold(self, message):
        self.held.append(message)

    def wrote(self, message):
        self.hold(f"wrote {message}")

    def report(self):
        """Print the lines held back (the run has succeeded)."""
        for message in self.held:
            self.say(message)

    def check_outputs(self, outputs, inputs, force):
        """Every input there (``inputs``: the loaders' name for each kind
        of input, such as ``"image"``, and its files), then all outputs
        writable, distinct, and none of them an input: a missing input is
        named before an output left by an earlier run."""
        from ..files import check_output

        named = [(what, i) for what, paths in inputs.items() for i in paths if i is not None]
        for what, path in named:
            if not Path(path).exists():
                raise FileNotFoundError(f"{what}: no such file: '{path}'")
        outputs = [Path(o) for o in outputs if o is not None]
        resolved = [o.resolve() for o in outputs]
        if len(set(resolved)) != len(resolved):
            raise InputError(f"the same output file is given twice: "
                             f"{', '.join(str(o) for o in outputs)}")
        input_paths = {Path(i).resolve() for _, i in named}
        for output, full in zip(outputs, resolved):
            if full in input_paths:
                raise InputError(f"output '{output}' is also an input; inputs are never "
                                 "overwritten, choose another name")
            check_output(output, force, FORCE_HINT)
        self.new_files += [o for o in outputs if not o.exists()]

    def remove_new_files(self):
        """Remove the outputs this run created; return a note on those that
        could not be removed (a folder turned read-only...), else ''."""
        kept = []
        for path in self.new_files:
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                kept.append(f"'{path}' ({exc.strerror or one_line(exc)})")
        for folder in self.new_folders:  # deepest first; only if left empty
            try:
                folder.rmdir()
            except OSError:
                pass
        return f"; could not remove {', '.join(kept)}, written before the error" if kept else ""


def parse_as(constraint, convert):
    """An argparse type: ``convert(text)`` (int, float, str) if the value
    satisfies ``constraint``; the error says it in the same words."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not constraint.accepts(value):
            raise argparse.ArgumentTypeError(f"must be {constraint}, got '{text}'")
        return value

    return parse


positive_int = parse_as(Count(1), int)
non_negative_int = parse_as(Count(0), int)
threshold_value = parse_as(Fraction(), float)


def refine_iter_value(text):
    """An argparse type: ``"auto"``, or an integer >= 0 (ReNA's
    ``max_refine_iter``), in the words of the estimator's constraint."""
    if text == "auto":
        return text
    try:
        return non_negative_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be {Count(0)} or 'auto', got '{text}'") from None


# --------------------------------------------------------------------------
# the parser
# --------------------------------------------------------------------------
def add_common(parser):
    parser.add_argument("--force", action="store_true",
                        help="overwrite existing output files")
    add_quiet(parser)


def add_quiet(parser):
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress bars and no summary (errors still go to stderr)")


def add_dask_options(parser, what):
    parser.add_argument("--dask", action="store_true",
                        help=f"read the images lazily with Dask and {what} chunk by chunk: "
                             "memory bounded by the chunk size, not the data size (needs "
                             "the dask extra)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="with --dask: the address of a running dask.distributed "
                             "scheduler to join (tcp://host:8786; workers must see the "
                             "files), or a local scheduler: threads (default), processes, "
                             "synchronous")
    parser.add_argument("--volumes-per-chunk", type=positive_int, metavar="N",
                        help="with --dask: chunks of N volumes within 4-D images (default: "
                             "one chunk per image)")


def add_labels_options(parser, labels_help):
    parser.add_argument("--labels", action="append", required=True, metavar="LABELS",
                        help=labels_help)
    parser.add_argument("--scaling", action="store_true",
                        help="cluster means multiplied by sqrt(cluster size) "
                             "(ReNA's scaling=True); use the same in reduce and expand")


def progress_on(args):
    """Bars are drawn on stderr: on when it is a terminal, so that
    ``2>err.txt`` gets no bar frames and ``>out.txt`` keeps the bars."""
    from .._progress import stderr_is_terminal

    return not args.quiet and stderr_is_terminal()


def one_line(message):
    return " ".join(str(message).split()) or type(message).__name__


def check_dask_options(args):
    if not args.dask:
        for option, value in (("--scheduler", args.scheduler),
                              ("--volumes-per-chunk", args.volumes_per_chunk)):
            if value is not None:
                raise InputError(f"{option} is only used with --dask")


def lazy_images(args, layout, images):
    """The images as a lazy Dask array (``--dask``)."""
    from ..dask import read_images_lazily

    return read_images_lazily(layout, images, dtype=args.dtype,
                              volumes_per_chunk=args.volumes_per_chunk)


def scheduler(args):
    """Where the Dask work of a subcommand runs (a no-op without ``--dask``)."""
    if not args.dask:
        return nullcontext()
    from ..dask import use_scheduler

    return use_scheduler(args.scheduler)


def group_scans(files, n_parts):
    """Surface data files as one tuple per scan group (one file per part)."""
    from ..images import is_volume_name

    for name in files:
        if is_volume_name(name):
            # (Counted as GIfTI files below, it was called one.)
            raise InputError(f"image '{name}' is a NIfTI file, but the labels or meshes are "
                             f"surfaces ({n_parts} parts): give one GIfTI data file per mesh "
                             "for each scan group")
    if len(files) % n_parts:
        raise InputError(f"{len(files)} GIfTI data files for {n_parts} meshes: give one file "
                         f"per mesh for each scan group, in the order of the meshes")
    return [tuple(files[i:i + n_parts]) for i in range(0, len(files), n_parts)]


def refuse_gifti(images, hint):
    for image in images:
        if str(image).lower().endswith(".gii"):
            raise InputError(f"image '{image}' is a GIfTI surface file: {hint}")


def elapsed(start):
    return f"{time.perf_counter() - start:.2f} s"


def count(n, noun, plural=None):
    """``"1 scan"``, ``"2 scans"``; ``plural`` when it is not noun + s."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def feature_words(layout):
    """What the features of ``layout`` are, singular and plural."""
    from ..layouts import SurfaceLayout, VolumeLayout

    if isinstance(layout, VolumeLayout):
        return "voxel", "voxels"
    if isinstance(layout, SurfaceLayout):
        return "vertex", "vertices"
    return "grayordinate", "grayordinates"


def features(layout):
    """The features of ``layout`` in words: ``"210 voxels"``, ``"1 vertex"``."""
    return count(layout.n_features, *feature_words(layout))


def cluster_range(n_clusters):
    return "cluster 1" if n_clusters == 1 else f"clusters 1..{n_clusters}"
