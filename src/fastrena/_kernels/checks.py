"""Scans of the data: largest magnitude per row, finiteness."""

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def row_max_abs(X):
    """Largest absolute value of each row of a 2-D array (any layout)."""
    out = np.zeros(X.shape[0], dtype=np.float64)
    for r in prange(X.shape[0]):
        m = 0.0
        for i in range(X.shape[1]):
            a = abs(np.float64(X[r, i]))
            if a > m:
                m = a
        out[r] = m
    return out


@njit(cache=True, parallel=True)
def all_finite(flat):
    """True when no element of the 1-D array is NaN or infinite."""
    n = flat.shape[0]
    chunk = 1 << 16
    n_chunks = (n + chunk - 1) // chunk
    bad = np.zeros(n_chunks, dtype=np.bool_)
    for c in prange(n_chunks):
        for i in range(c * chunk, min((c + 1) * chunk, n)):
            if not np.isfinite(flat[i]):
                bad[c] = True
                break
    return not bad.any()
