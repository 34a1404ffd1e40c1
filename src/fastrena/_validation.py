"""Parameter and data validation shared by the functions and the estimator."""

import numbers
import sys

import numpy as np
from sklearn.utils import check_array
from sklearn.utils.validation import validate_data

from . import _kernels

FLOAT_DTYPES = (np.float64, np.float32)


def check_positive_int(value, name, minimum=1):
    """Return ``int(value)``; reject bools, floats and values < minimum."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r} "
                        f"of type {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_threshold(value):
    """Return ``float(value)`` for a real number in [0, 1)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"threshold must be a real number in [0, 1), got {value!r} "
                        f"of type {type(value).__name__}")
    if not 0 <= value < 1:
        raise ValueError(f"threshold must be in [0, 1), got {value!r}")
    return float(value)


#: Ways to measure the distance between neighbouring clusters (see
#: :func:`fastrena.agglomeration.agglomerate`).
LINKAGES = ("nilearn", "ward")


def check_linkage(value):
    """Return ``value`` if it is one of :data:`LINKAGES`."""
    if not isinstance(value, str) or value not in LINKAGES:
        raise ValueError(f"linkage must be one of {', '.join(map(repr, LINKAGES))}, "
                         f"got {value!r}")
    return value


def is_dask_array(X):
    """Whether X is a ``dask.array.Array`` (without importing Dask)."""
    module = sys.modules.get("dask.array")
    return module is not None and isinstance(X, module.Array)


def is_finite(X):
    """Whether the array X holds no NaN and no infinity (parallel scan)."""
    if X.flags.c_contiguous or X.flags.f_contiguous:
        return bool(_kernels.all_finite(X.ravel(order="K")))
    return all(_kernels.all_finite(np.ascontiguousarray(row)) for row in X)


def check_finite(X, input_name="X", estimator=None):
    """Raise scikit-learn's standard error if X holds NaN or infinity.

    scikit-learn's own check is a single-threaded pass over X, as long as
    a whole ReNA level on two threads; this one scans contiguous arrays in
    parallel and only calls scikit-learn's to word the error. A Dask array
    is scanned chunk by chunk.
    """
    if is_dask_array(X):
        from ._chunked import chunked_check_finite

        chunked_check_finite(X, estimator)
        return
    if is_finite(X):
        return
    # scikit-learn sums X first: +inf and -inf (or finite values that
    # overflow) would warn before its error is raised.
    with np.errstate(over="ignore", invalid="ignore"):
        check_array(X, dtype=None, ensure_all_finite=True, ensure_min_samples=0,
                    ensure_min_features=0, input_name=input_name, estimator=estimator)


def check_data(X, estimator=None, reset=None, check_values=True):
    """sklearn's standard validation of a (n_samples, n_features) float matrix.

    float32 stays float32 (no copy); anything else real becomes float64.
    With ``reset`` (True or False) and an ``estimator``, goes through
    ``validate_data`` so that ``n_features_in_``/``feature_names_in_`` are
    set or checked. ``check_values=False`` leaves the NaN/infinity scan to
    the caller (who may prove X finite more cheaply, see
    ``fastrena.agglomeration.cluster_means_checked``).

    A Dask array is validated without being read (see
    ``fastrena._chunked.check_chunked_data``) and stays a Dask array.
    """
    if is_dask_array(X):
        from ._chunked import check_chunked_data

        X = check_chunked_data(X, estimator, reset)
        if check_values:
            check_finite(X, estimator=estimator)
        return X
    kwargs = dict(dtype=list(FLOAT_DTYPES), ensure_min_samples=1,
                  ensure_min_features=1, ensure_all_finite=False)
    if reset is None:
        X = check_array(X, estimator=estimator, **kwargs)
    else:
        X = validate_data(estimator, X, reset=reset, **kwargs)
    if check_values:
        check_finite(X, estimator=estimator)
    return X
