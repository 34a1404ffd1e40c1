"""Parameter and data validation shared by the functions and the estimator."""

import numbers

import numpy as np
from sklearn.utils import check_array

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


def check_data(X, estimator=None):
    """sklearn's standard validation of a (n_samples, n_features) float matrix.

    float32 stays float32 (no copy); anything else real becomes float64.
    """
    return check_array(X, dtype=FLOAT_DTYPES, ensure_min_samples=1,
                       ensure_min_features=1, estimator=estimator)
