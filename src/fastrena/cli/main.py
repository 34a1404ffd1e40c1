"""The ``fastrena`` command line: parcellate, reduce, expand, report, demo, warm.

Every subcommand checks its inputs and outputs before any heavy work,
writes files atomically (never over an existing file without ``--force``),
and reports a bad input as one line on stderr with a non-zero exit code,
never a traceback. Progress bars are drawn on stderr when stderr is a
terminal (whatever stdout is), off with ``--quiet``. One module per
subcommand (``add_parser`` and ``run``), the shared parts in
:mod:`fastrena.cli.common`.
"""

import argparse
import sys
import warnings
from contextlib import contextmanager

from .. import __version__
from .._interrupt import ignore_sigint, interrupt_behind, interrupts_kept, restore_sigint
from ..errors import MissingDependencyError
from . import demo, expand, parcellate, reduce, report, warm
from .common import Session, one_line

__all__ = ["build_parser", "main"]

# Errors that are the user's (bad input, files, memory, a missing extra),
# reported as one line; any other exception is a bug in fastrena and keeps
# its traceback.
USER_ERRORS = (ValueError, OSError, MemoryError, MissingDependencyError)
SUBCOMMANDS = ("parcellate", "reduce", "expand", "report", "demo", "warm")


def build_parser():
    """The ``fastrena`` argument parser, with one subparser per subcommand."""
    parser = argparse.ArgumentParser(
        prog="fastrena",
        description="Fast ReNA clustering of brain images: NIfTI/GIfTI in, "
                    "parcellations, reduced data and pictures out.",
        epilog="Start with 'fastrena demo'; 'fastrena SUBCOMMAND --help' for each subcommand.")
    parser.add_argument("--version", action="version", version=f"fastrena {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")
    for command in (parcellate, reduce, expand, report, demo, warm):
        command.add_parser(commands)
    return parser


@contextmanager
def _warnings_to_stderr(command):
    """Show warnings as one ``fastrena CMD: warning: ...`` line each."""
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"fastrena {command}: warning: {one_line(message)}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("always", UserWarning)
        warnings.showwarning = show
        yield


def main(argv=None):
    """Run the ``fastrena`` command line; return the exit code.

    0 on success, 1 for a bad input (one line on stderr), 2 for a bad
    command line (argparse's usage message, on stderr; no argument at all
    prints the whole help there), 130 if interrupted.

    Once the outcome is decided (every output in place, or the outputs of
    a failed run removed), Ctrl-C is ignored: it can no longer undo the
    work done nor leave a removal half-done. Called without ``argv`` (as
    the console script and ``python -m fastrena.cli`` call it, the
    arguments taken from ``sys.argv``) this lasts until the process has
    exited, through Python's teardown; called with ``argv``, from Python,
    SIGINT's handler is put back before returning.
    """
    program = argv is None
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if not argv:
            # A first try: the subcommands and where to start, rather than
            # "the following arguments are required: SUBCOMMAND".
            build_parser().print_help(sys.stderr)
            return 2
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help, --version, usage errors
        return exit_.code if isinstance(exit_.code, int) else 0
    except KeyboardInterrupt:  # building the parser takes a few tens of ms
        previous = ignore_sigint(pending="drop")
        command = f" {argv[0]}" if argv and argv[0] in SUBCOMMANDS else ""
        print(f"fastrena{command}: interrupted", file=sys.stderr)
        return _ended(130, previous, program)
    session = Session(args.quiet)
    try:
        # No Ctrl-C is lost, even where Python drops it: see fastrena._interrupt.
        with _warnings_to_stderr(args.command), interrupts_kept():
            args.run(args, session)
        # The commit: from here the run has succeeded, its outputs stay and
        # the exit code is 0. A SIGINT that came before is raised here
        # (handled as any interrupt of the run), never after.
        previous = ignore_sigint(pending="raise")
    except BaseException as exc:
        previous = ignore_sigint(pending="drop")  # the clean-up runs to its end
        kept = session.remove_new_files()
        # A Ctrl-C, or what came of one: a KeyboardInterrupt raised while a
        # module was being imported (the subcommands import numba,
        # scikit-learn and scipy when they start) can come out as the
        # ``ImportError: initialization failed`` of a C extension, caused by
        # it; one landing in a lock's wait, as a ``RuntimeError``.
        if interrupt_behind(exc) is not None:
            print(f"fastrena {args.command}: interrupted", file=sys.stderr)
            return _ended(130, previous, program)
        if not isinstance(exc, USER_ERRORS + _dask_errors()):
            # A bug in fastrena: its traceback follows, but no half-done output.
            restore_sigint(previous)
            raise
        message = one_line(exc) if not isinstance(exc, MemoryError) else "out of memory"
        print(f"fastrena {args.command}: error: {message}{kept}", file=sys.stderr)
        return _ended(1, previous, program)
    try:
        session.report()
    finally:
        _ended(0, previous, program)
    return 0


def _ended(code, previous, program):
    """``code``, SIGINT's handler put back unless ``program`` (the process
    exits next: it stays ignored, see :func:`main`)."""
    if not program:
        restore_sigint(previous)
    return code


def _dask_errors():
    """Dask's errors that are about the cluster, not fastrena: workers that
    kept dying on a task (out of memory, killed)."""
    if "distributed" not in sys.modules:
        return ()
    from distributed import KilledWorker

    return (KilledWorker,)
