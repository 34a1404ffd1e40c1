"""``fastrena warm``: compile the kernels into numba's disk cache."""

import warnings

from .common import add_quiet


def add_parser(commands):
    """Add the ``warm`` subcommand to ``commands`` (argparse subparsers)."""
    p = commands.add_parser(
        "warm", help="compile the kernels once, for every later process",
        description="Compile fastrena's numba kernels (float32 and float64, both linkages, "
                    "transform) into numba's disk cache, so that no later fit, on this "
                    "machine or in this container image, pays the compilation (a few "
                    "seconds). The cache is the first writable of NUMBA_CACHE_DIR (if set), "
                    "__pycache__ beside fastrena's source and numba's per-user cache folder; "
                    "kernels already in any of them, even read-only, are loaded, not "
                    "compiled again. Prints which; fails if nothing could be cached.")
    add_quiet(p)
    p.set_defaults(run=run)


def run(args, session):
    from ..warmup import CacheWarning, cache_activity, compile_kernels

    before = cache_activity()
    with warnings.catch_warnings():
        # Here not being able to cache is the error below, not a warning.
        warnings.simplefilter("ignore", CacheWarning)
        seconds = compile_kernels()
    after = cache_activity()
    compiled = after["compiled"] - before["compiled"]
    saved = after["saved"] - before["saved"]
    if saved < compiled:
        raise OSError(f"fastrena's kernels were compiled but cannot be cached: "
                      f"{after['not_saved']}; set NUMBA_CACHE_DIR to a writable folder")
    if compiled:
        session.say(f"fastrena's kernels are compiled and cached in "
                    f"{', '.join(after['saved_to'])} ({seconds:.1f} s)")
    else:
        # Nothing compiled: loaded from a cache (maybe a read-only one), or
        # already loaded in this process.
        where = ", ".join(after["loaded_from"])
        session.say(f"fastrena's kernels were already compiled"
                    f"{f', in the cache in {where}' if where else ''} ({seconds:.1f} s)")
