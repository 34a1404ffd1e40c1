"""``fastrena warm``: compile the kernels into numba's disk cache."""

from .common import add_quiet


def add_parser(commands):
    """Add the ``warm`` subcommand to ``commands`` (argparse subparsers)."""
    p = commands.add_parser(
        "warm", help="compile the kernels once, for every later process",
        description="Compile fastrena's numba kernels (float32 and float64, both linkages, "
                    "transform) into numba's disk cache, so that no later fit, on this "
                    "machine or in this container image, pays the compilation (a few "
                    "seconds). The cache is NUMBA_CACHE_DIR if set, else __pycache__ beside "
                    "fastrena's source if writable, else numba's per-user cache folder; "
                    "prints which.")
    add_quiet(p)
    p.set_defaults(run=run)


def run(args, session):
    from ..warmup import cache_dir, compile_kernels

    seconds = compile_kernels()
    folder = cache_dir()
    where = f" in {folder}" if folder else ""
    session.say(f"fastrena's kernels are compiled and cached{where} ({seconds:.1f} s)")
