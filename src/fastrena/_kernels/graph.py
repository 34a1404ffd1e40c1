"""The next level's graph: edges between the new nodes, deduplicated and
sorted, in linear time whatever the degrees.
"""

import numpy as np
from numba import njit


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
    new_u, new_v, _, _ = _reduced(u, v, labels, n_new, np.zeros(0), False)
    return new_u, new_v


@njit(cache=True)
def reduce_edges_carrying(u, v, w, labels, n_new):
    """:func:`reduce_edges`, and the weights of the new edges that join two
    nodes left alone by ``labels``: their ends' signals are unchanged, so
    their weight is the old edge's (``w``). Returns the new edges, their
    weights (0 where not carried) and the indices of the new edges whose
    weight must be computed."""
    return _reduced(u, v, labels, n_new, w, True)


@njit(cache=True)
def _reduced(u, v, labels, n_new, w, carry):
    """:func:`reduce_edges` (and, if ``carry``, what
    :func:`reduce_edges_carrying` adds): each new edge remembers the first
    old edge sorted into it, its only one when both its ends are single old
    nodes."""
    n_edges = u.shape[0]
    start_hi = np.zeros(n_new + 1, dtype=np.int64)
    for e in range(n_edges):
        a = labels[u[e]]
        b = labels[v[e]]
        if a != b:
            start_hi[max(a, b) + 1] += 1
    for i in range(n_new):
        start_hi[i + 1] += start_hi[i]
    n_between = start_hi[n_new]
    n_kept = n_between if carry else 0
    # The lo end of every edge between two new nodes, grouped by hi (and
    # the old edge, to carry its weight).
    los = np.empty(n_between, dtype=np.int64)
    source = np.empty(n_kept, dtype=np.int64)
    fill = start_hi[:-1].copy()
    start_lo = np.zeros(n_new + 1, dtype=np.int64)
    for e in range(n_edges):
        a = labels[u[e]]
        b = labels[v[e]]
        if a != b:
            lo = min(a, b)
            hi = max(a, b)
            f = fill[hi]
            los[f] = lo
            if carry:
                source[f] = e
            fill[hi] = f + 1
            start_lo[lo + 1] += 1
    for i in range(n_new):
        start_lo[i + 1] += start_lo[i]
    # Grouped by lo, each group in increasing hi, duplicates left out.
    his = np.empty(n_between, dtype=np.int64)
    his_source = np.empty(n_kept, dtype=np.int64)
    fill = start_lo[:-1].copy()
    n_out = 0
    for hi in range(n_new):
        for k in range(start_hi[hi], start_hi[hi + 1]):
            lo = los[k]
            f = fill[lo]
            if f == start_lo[lo] or his[f - 1] != hi:
                his[f] = hi
                if carry:
                    his_source[f] = source[k]
                fill[lo] = f + 1
                n_out += 1
    new_u = np.empty(n_out, dtype=np.int64)
    new_v = np.empty(n_out, dtype=np.int64)
    new_w = np.zeros(n_out if carry else 0, dtype=np.float64)
    todo = np.empty(n_out if carry else 0, dtype=np.int64)
    # Old nodes per new node: a weight is carried between two lone ones.
    n_members = np.zeros(n_new if carry else 0, dtype=np.int64)
    if carry:
        for a in range(labels.shape[0]):
            n_members[labels[a]] += 1
    n_todo = 0
    k = 0
    for lo in range(n_new):
        for i in range(start_lo[lo], fill[lo]):
            hi = his[i]
            new_u[k] = lo
            new_v[k] = hi
            if carry:
                if n_members[lo] == 1 and n_members[hi] == 1:
                    new_w[k] = w[his_source[i]]
                else:
                    todo[n_todo] = k
                    n_todo += 1
            k += 1
    return new_u, new_v, new_w, todo[:n_todo].copy()
