"""Pictures of a parcellation: orthogonal slices, surface views, cluster
sizes, and the compression error as a function of the number of clusters
(:func:`relative_error`: ``||X - R|| / ||X - X's row means||``).

matplotlib is imported when a function here is called, not when fastrena
(or this module) is imported. Figures are drawn on matplotlib's Agg canvas
without pyplot, so nothing here needs a display or touches pyplot's state.
Every function returns the ``Figure`` and, given ``output_file``, also
writes it (atomically; see :func:`fastrena.io.save_img`).

The drawing lives in :mod:`fastrena._pictures` (below the estimator, for
its report); :func:`compression_errors`, which fits ReNA, lives here.
"""

import numpy as np

from ._pictures import (ERROR_DEFINITION, matplotlib_canvas, plot_cluster_sizes,
                        plot_compression_curve, plot_grayordinate_parcellation,
                        plot_parcellation, plot_surface_parcellation, relative_error)
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


def compression_errors(X, n_clusters, **params):
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
