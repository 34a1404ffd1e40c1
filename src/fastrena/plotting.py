"""Pictures of a parcellation: orthogonal slices, surface views, cluster
sizes, and the compression error as a function of the number of clusters
(:func:`relative_error`: ``||X - R|| / ||X - X's row means||``).

matplotlib is imported when a function here is called, not when fastrena
(or this module) is imported. Every function returns the ``Figure``. As in
nilearn: without ``output_file`` the figure is made through pyplot, so a
script's ``plt.show()`` (or a notebook) shows it, and pyplot keeps it until
``plt.close``; given ``output_file`` it is drawn on matplotlib's Agg canvas
outside pyplot and written (atomically; see :func:`fastrena.io.save_img`),
so writing pictures needs no display, leaves no figure open in pyplot
(nilearn closes it) and works whatever pyplot's backend is (the command
line always gives ``output_file``).

The drawing lives in :mod:`fastrena._pictures` (below the estimator, for
its report, and never through pyplot); the functions here choose the
figure, pyplot's or not, and pass it down. :func:`compression_errors`,
which fits ReNA, lives here.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ParamSpec

import numpy as np

from . import _pictures
from ._pictures import ERROR_DEFINITION, matplotlib_canvas, relative_error

if TYPE_CHECKING:  # annotations only: not imported at run time
    from matplotlib.figure import Figure
    from numpy.typing import ArrayLike

__all__ = [
    "ERROR_DEFINITION",
    "compression_errors",
    "matplotlib_canvas",
    "plot_cluster_sizes",
    "plot_compression_curve",
    "plot_grayordinate_parcellation",
    "plot_parcellation",
    "plot_surface_parcellation",
    "relative_error",
]


#: The parameters of a picture of :mod:`fastrena._pictures`.
_Params = ParamSpec("_Params")


def _shown_through_pyplot(draw: Callable[_Params, Figure]) -> Callable[_Params, Figure]:
    """The public picture of ``draw`` (one of :mod:`fastrena._pictures`):
    without ``output_file``, drawn on a figure made through pyplot (closed
    again if the drawing fails); with it, drawn outside pyplot."""
    signature = inspect.signature(draw)

    @functools.wraps(draw)
    def plot(*args, output_file=None, **kwargs):
        if "figure" in kwargs:
            raise TypeError(f"{draw.__name__}() got an unexpected keyword argument 'figure'")
        if output_file is not None:
            return draw(*args, output_file=output_file, **kwargs)
        matplotlib_canvas()   # matplotlib missing: the clear error, before pyplot's
        from matplotlib import pyplot

        figure = pyplot.figure()
        try:
            return draw(*args, figure=figure, **kwargs)
        except BaseException:
            pyplot.close(figure)
            raise

    plot.__module__ = __name__
    del plot.__wrapped__
    plot.__signature__ = signature.replace(
        parameters=[p for p in signature.parameters.values() if p.name != "figure"])
    return plot


plot_parcellation = _shown_through_pyplot(_pictures.plot_parcellation)
plot_surface_parcellation = _shown_through_pyplot(_pictures.plot_surface_parcellation)
plot_grayordinate_parcellation = _shown_through_pyplot(_pictures.plot_grayordinate_parcellation)
plot_cluster_sizes = _shown_through_pyplot(_pictures.plot_cluster_sizes)
plot_compression_curve = _shown_through_pyplot(_pictures.plot_compression_curve)


def compression_errors(X: ArrayLike, n_clusters: Iterable[int], **params: Any) -> np.ndarray:
    """Relative compression error of ReNA for each number of clusters.

    ``||X - R|| / ||X - X's row means||`` (see :func:`relative_error`), R =
    ``inverse_transform(transform(X))``: the share of the signal's
    variation over the features lost when every feature is replaced by its
    cluster's mean.

    Parameters
    ----------
    X : ndarray, shape (n_samples, n_features)
    n_clusters : sequence of int
    **params
        Other ReNA parameters (``mask_img``, ``connectivity``, ``n_iter``...).

    Returns
    -------
    ndarray of float64, one error per value of ``n_clusters``
    """
    # Imported here: importing this module loads neither scikit-learn nor numba.
    from .estimator import ReNA

    errors = []
    for k in n_clusters:
        rena = ReNA(n_clusters=int(k), **params).fit(X)
        errors.append(relative_error(X, rena.inverse_transform(rena.transform(X))))
    return np.array(errors, dtype=np.float64)
