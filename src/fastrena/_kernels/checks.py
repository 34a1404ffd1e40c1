"""Scans of the data: largest magnitude per row, finiteness."""

import numpy as np
from numba import njit

from .compiling import unsigned
from .threads import run_tasks


@njit(cache=True, nogil=True)
def _row_max_abs_tasks(X, out, t0, t1):
    for r in range(t0, t1):
        m = 0.0
        for i in range(X.shape[1]):
            a = abs(np.float64(X[r, i]))
            if a > m:
                m = a
        out[r] = m


def row_max_abs(X):
    """Largest absolute value of each row of a 2-D array (any layout)."""
    out = np.zeros(X.shape[0], dtype=np.float64)
    run_tasks(_row_max_abs_tasks, X.shape[0], (X, out), X.size)
    return out


#: Elements scanned by one task of :func:`all_finite`.
_FINITE_CHUNK = 1 << 16


@njit(cache=True, nogil=True)
def _all_finite_tasks(flat, bad, t0, t1):
    """Chunks t0..t1 of :func:`all_finite`: ``bad[c]`` says whether chunk c
    holds a value that is NaN or infinite (``x - x`` is NaN for those
    alone). Counted without a branch and indexed through
    :func:`.compiling.unsigned` (the chunk starts elsewhere than 0): a
    loop LLVM vectorises, where a test per value that stopped at the
    first bad one did not."""
    n = flat.shape[0]
    for c in range(t0, t1):
        i1 = (c + 1) * _FINITE_CHUNK
        n_bad = 0
        for i in range(c * _FINITE_CHUNK, i1 if i1 < n else n):
            x = flat[unsigned(i)]
            n_bad += (x - x) != 0
        bad[c] = n_bad != 0


def all_finite(flat):
    """True when no element of the 1-D array is NaN or infinite."""
    n_chunks = (flat.shape[0] + _FINITE_CHUNK - 1) // _FINITE_CHUNK
    bad = np.zeros(n_chunks, dtype=np.bool_)
    run_tasks(_all_finite_tasks, n_chunks, (flat, bad), flat.shape[0])
    return not bad.any()
