"""Progress bars (tqdm) for long work, and nothing at all when they are off.

tqdm is imported only when a bar is shown, so that ``import fastrena`` and
silent runs never pay for it.
"""

import sys
from contextlib import contextmanager
from contextvars import ContextVar

# Called as on_level(level, n_before, n_after) after each level of a fit in
# this context; fit_progress sets it to draw a progress bar. A context
# variable, not a parameter, so that ReNA's parameters stay nilearn's and
# fit's warnings still point at the caller's line.
LEVEL_CALLBACK = ContextVar("fastrena_level_callback", default=None)
# Called as on_step(level, step, n_before, n_after) when a step of a level
# starts (see fastrena.agglomeration.agglomerate), for the same bars.
STEP_CALLBACK = ContextVar("fastrena_step_callback", default=None)

#: The bars' layout: tqdm's, with the rate as a whole number ("1234 merge/s",
#: "3 s/scan") instead of tqdm's "1234.56merge/s".
_BAR_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {whole_rate}{postfix}]"
_COUNT_FORMAT = "{desc}: {n_fmt} {unit} [{elapsed}, {whole_rate}{postfix}]"


def stderr_is_terminal():
    """Whether stderr, where the bars are drawn, is a terminal: bars are
    for a person watching, not for a file or a pipe."""
    isatty = getattr(sys.stderr, "isatty", None)
    try:
        return bool(isatty is not None and isatty())
    except ValueError:  # a closed stream
        return False


def whole_rate(n, initial, elapsed, rate, unit):
    """A bar's speed as a whole number: ``"1234 merge/s"``, or below one
    step a second ``"3 s/scan"``; ``"? merge/s"`` before any step.

    ``rate`` is tqdm's smoothed rate (None before it has one); without it,
    the mean rate since the start."""
    if rate is None and elapsed:
        rate = (n - initial) / elapsed
    if not rate:
        return f"? {unit}/s"
    if rate < 1:
        return f"{1 / rate:.0f} s/{unit}"
    return f"{rate:.0f} {unit}/s"


_BAR_CLASS = None


def _bar_class():
    """tqdm with :func:`whole_rate` as ``{whole_rate}`` in its format
    (made on first use: tqdm is imported only when a bar is shown)."""
    global _BAR_CLASS
    if _BAR_CLASS is None:
        from tqdm import tqdm

        class Bar(tqdm):
            @property
            def format_dict(self):
                values = super().format_dict
                values["whole_rate"] = whole_rate(values["n"], values.get("initial") or 0,
                                                  values["elapsed"], values.get("rate"),
                                                  values["unit"])
                return values

        _BAR_CLASS = Bar
    return _BAR_CLASS


class _NoBar:
    """Stands in for a tqdm bar that is switched off."""

    def update(self, n=1):
        pass

    def set_postfix_str(self, text):
        pass

    def close(self):
        pass


def progress_bar(enabled, total, desc, unit):
    """A tqdm bar writing to stderr when ``enabled``, else a bar that does nothing.

    The command line enables bars when :func:`stderr_is_terminal`; the
    Python functions when asked (``verbose=1``), wherever stderr goes.

    Parameters
    ----------
    enabled : bool
    total : int or None
        Number of steps (None: unknown, tqdm shows a count and a rate).
    desc : str
        Label at the start of the bar.
    unit : str
        What one step is ("scan", "merge").

    Returns
    -------
    object with ``update``, ``set_postfix_str`` and ``close`` methods
    """
    if not enabled:
        return _NoBar()
    # leave=False: finished bars vanish, the summary lines printed after
    # them stay readable.
    return _bar_class()(total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True,
                        file=sys.stderr,
                        bar_format=_COUNT_FORMAT if total is None else _BAR_FORMAT)


@contextmanager
def fit_progress(enabled, n_features, n_clusters):
    """Show the levels of the ReNA fits run inside the ``with`` block.

    The bar counts merges: a fit from ``n_features`` features down to
    ``n_clusters`` clusters is ``n_features - n_clusters`` merges. Each
    level moves it by the number of clusters it removed as soon as its
    merge is decided, before the graph and the signals are reduced; the
    step under way shows after the count ("level 1: edge weights"). The
    first level, most of the merges and of the time, is thus seen to move.
    The bar is redrawn a few times per level, never inside a kernel.
    """
    if not enabled:
        yield
        return
    # With the bar, the line saying that numba compiles (imported here: the
    # kernels, a layer below, load numba).
    from ._kernels.caching import compile_notice

    bar = progress_bar(True, max(n_features - n_clusters, 0), "fit", "merge")
    counted = [False]  # whether the merges of the level under way are on the bar

    def count(n_before, n_after):
        if n_after is not None and not counted[0]:
            counted[0] = True
            # Never past the total: a fit may merge beyond n_clusters and
            # cut back (linkage="ward"), or run several fits.
            bar.update(max(0, min(n_before - n_after, bar.total - bar.n)))

    def on_step(level, step, n_before, n_after):
        if n_after is None:  # the level's merge is not decided yet
            counted[0] = False
        count(n_before, n_after)
        bar.set_postfix_str(f"level {level}: {step}")

    def on_level(level, n_before, n_after):
        count(n_before, n_after)
        counted[0] = False
        bar.set_postfix_str(f"level {level}, {n_after} clusters")

    tokens = LEVEL_CALLBACK.set(on_level), STEP_CALLBACK.set(on_step)
    try:
        with compile_notice(True):
            yield
    finally:
        LEVEL_CALLBACK.reset(tokens[0])
        STEP_CALLBACK.reset(tokens[1])
        bar.close()

