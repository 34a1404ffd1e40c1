"""Progress bars (tqdm) for long work, and nothing at all when they are off.

tqdm is imported only when a bar is shown, so that ``import fastrena`` and
silent runs never pay for it.
"""

from contextlib import contextmanager

from .estimator import LEVEL_CALLBACK


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
    from tqdm import tqdm

    # leave=False: finished bars vanish, the summary lines printed after
    # them stay readable.
    return tqdm(total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True)


@contextmanager
def fit_progress(enabled, n_features, n_clusters):
    """Show the levels of the ReNA fits run inside the ``with`` block.

    The bar counts merges: a fit from ``n_features`` features down to
    ``n_clusters`` clusters is ``n_features - n_clusters`` merges, and each
    level moves it by the number of clusters it removed.
    """
    if not enabled:
        yield
        return
    bar = progress_bar(True, max(n_features - n_clusters, 0), "fit", "merge")

    def on_level(level, n_before, n_after):
        bar.update(n_before - n_after)
        bar.set_postfix_str(f"level {level}, {n_after} clusters")

    token = LEVEL_CALLBACK.set(on_level)
    try:
        yield
    finally:
        LEVEL_CALLBACK.reset(token)
        bar.close()

