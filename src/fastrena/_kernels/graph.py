"""The next level's graph: edges between the new nodes, deduplicated and
sorted, in linear time whatever the degrees.
"""

import numpy as np
from numba import njit

from .compiling import unsigned


@njit(cache=True)
def reduce_edges(u, v, labels, n_new):
    """Edges between the new nodes: ``(labels[u], labels[v])`` without self
    loops or duplicates, sorted by ``(lo, hi)``.

    Linear in the edges and the new nodes whatever the degrees: a stable
    counting sort by ``hi``, then a stable counting sort of that by ``lo``
    (a two-digit radix sort). The second pass walks the edges in increasing
    ``hi``, so each ``lo`` bucket fills in increasing ``hi`` and a duplicate
    is always the last value written to its bucket: it is dropped there.
    """
    # np.zeros, min, max and slice copies compile functions of their own
    # (see .compiling), but written out this kernel measured 2-4 % slower.
    n_edges = u.shape[0]
    start_hi = np.zeros(n_new + 1, dtype=np.int64)
    # Indices read from arrays through compiling.unsigned.
    for e in range(n_edges):
        a = labels[unsigned(u[e])]
        b = labels[unsigned(v[e])]
        if a != b:
            start_hi[unsigned(max(a, b) + 1)] += 1
    for i in range(n_new):
        start_hi[i + 1] += start_hi[i]
    n_between = start_hi[n_new]
    # The lo end of every edge between two new nodes, grouped by hi.
    los = np.empty(n_between, dtype=np.int64)
    fill = start_hi[:-1].copy()
    start_lo = np.zeros(n_new + 1, dtype=np.int64)
    for e in range(n_edges):
        a = labels[unsigned(u[e])]
        b = labels[unsigned(v[e])]
        if a != b:
            lo = min(a, b)
            hi = unsigned(max(a, b))
            los[unsigned(fill[hi])] = lo
            fill[hi] += 1
            start_lo[unsigned(lo + 1)] += 1
    for i in range(n_new):
        start_lo[i + 1] += start_lo[i]
    # Grouped by lo, each group in increasing hi, duplicates left out.
    his = np.empty(n_between, dtype=np.int64)
    fill = start_lo[:-1].copy()
    n_out = 0
    for hi in range(n_new):
        for k in range(start_hi[hi], start_hi[hi + 1]):
            lo = unsigned(los[unsigned(k)])
            f = fill[lo]
            if f == start_lo[lo] or his[unsigned(f - 1)] != hi:
                his[unsigned(f)] = hi
                fill[lo] = f + 1
                n_out += 1
    new_u = np.empty(n_out, dtype=np.int64)
    new_v = np.empty(n_out, dtype=np.int64)
    k = 0
    for lo in range(n_new):
        for i in range(start_lo[lo], fill[lo]):
            new_u[unsigned(k)] = lo
            new_v[unsigned(k)] = his[unsigned(i)]
            k += 1
    return new_u, new_v
