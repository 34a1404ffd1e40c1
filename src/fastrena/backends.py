"""The backend of a call: in memory (:mod:`fastrena.arrays`) or chunked
(:mod:`fastrena._chunked`, for Dask arrays), chosen once per call.

Both backends have the same verbs with the same signatures and give the
same values bit for bit: ``check_data``, ``check_finite``, ``prepare``,
``signal_store``, ``edge_weights``, ``edge_weights_and_first_sample``,
``max_abs``, ``scale_by_power_of_two``, ``reduce_signals``, ``means_of``,
``expand_clusters``, ``worker_pool``. Code above this module asks
:func:`backend_of` once and calls the verbs, never ``is_dask_array``
itself.
"""

from . import arrays
from ._validation import is_dask_array

__all__ = ["backend_of"]


def backend_of(X):
    """:mod:`fastrena._chunked` for a Dask array, else :mod:`fastrena.arrays`.

    The chunked backend imports Dask, an optional dependency: only when a
    Dask array is given (then Dask is installed).
    """
    if is_dask_array(X):
        from . import _chunked

        return _chunked
    return arrays
