"""The next level's graph: edges between the new nodes, deduplicated and
sorted, in linear time whatever the degrees (:func:`reduce_edges`); and a
graph's neighbour lists (:func:`neighbour_lists`).
"""

import numpy as np
from numba import njit

from .._interrupt import call_deferring_sigint
from .compiling import unsigned
from .threads import run_tasks


#: From this many edges :func:`reduce_edges` reduces the two halves of the
#: edges on two threads and merges their results (below, one thread:
#: handing a half to a thread costs about 50 us).
PARALLEL_EDGES = 1 << 16


@njit(cache=True, nogil=True)
def _reduced_range(u, v, labels, n_new, e0, e1, new_u, new_v):
    """:func:`reduce_edges` of the edges ``e0 <= e < e1`` alone, into
    ``new_u[e0:]`` and ``new_v[e0:]`` (never more than ``e1 - e0``);
    returns how many.

    Linear in the edges and the new nodes whatever the degrees: a stable
    counting sort by ``hi``, then a stable counting sort of that by ``lo``
    (a two-digit radix sort). The second pass walks the edges in increasing
    ``hi``, so each ``lo`` bucket fills in increasing ``hi`` and a duplicate
    is always the last value written to its bucket: it is dropped there.
    """
    # np.zeros, min, max and slice copies compile functions of their own
    # (see .compiling), but written out this kernel measured 2-4 % slower.
    start_hi = np.zeros(n_new + 1, dtype=np.int64)
    # Indices read from arrays through compiling.unsigned.
    for e in range(e0, e1):
        a = labels[unsigned(u[unsigned(e)])]
        b = labels[unsigned(v[unsigned(e)])]
        if a != b:
            start_hi[unsigned(max(a, b) + 1)] += 1
    for i in range(n_new):
        start_hi[i + 1] += start_hi[i]
    n_between = start_hi[n_new]
    # The lo end of every edge between two new nodes, grouped by hi.
    los = np.empty(n_between, dtype=np.int64)
    fill = start_hi[:-1].copy()
    start_lo = np.zeros(n_new + 1, dtype=np.int64)
    for e in range(e0, e1):
        a = labels[unsigned(u[unsigned(e)])]
        b = labels[unsigned(v[unsigned(e)])]
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
    k = e0
    for lo in range(n_new):
        for i in range(start_lo[lo], fill[lo]):
            new_u[unsigned(k)] = lo
            new_v[unsigned(k)] = his[unsigned(i)]
            k += 1
    return n_out


@njit(cache=True, nogil=True)
def _reduced_halves(u, v, labels, n_new, bounds, new_u, new_v, counts, t0, t1):
    """Tasks t0..t1 of :func:`reduce_edges`: task t the edges ``bounds[t]``
    to ``bounds[t + 1]`` (:func:`_reduced_range`; their count in
    ``counts[t]``)."""
    for t in range(t0, t1):
        counts[t] = _reduced_range(u, v, labels, n_new, bounds[t], bounds[t + 1], new_u, new_v)


@njit(cache=True)
def _union_sorted(first_u, first_v, second_u, second_v):
    """The union of two lists of pairs, each sorted by ``(u, v)`` without
    duplicates: sorted, without duplicates (a merge, linear)."""
    n_first = first_u.shape[0]
    n_second = second_u.shape[0]
    out_u = np.empty(n_first + n_second, dtype=np.int64)
    out_v = np.empty(n_first + n_second, dtype=np.int64)
    i = 0
    j = 0
    k = 0
    while i < n_first or j < n_second:
        if j == n_second:
            take_first, take_second = True, False
        elif i == n_first:
            take_first, take_second = False, True
        else:
            a = first_u[i]
            b = second_u[j]
            if a == b:
                a = first_v[i]
                b = second_v[j]
            take_first = a <= b
            take_second = b <= a
        if take_first:
            out_u[k] = first_u[i]
            out_v[k] = first_v[i]
            i += 1
        else:
            out_u[k] = second_u[j]
            out_v[k] = second_v[j]
        # A pair in both lists is written once.
        if take_second:
            j += 1
        k += 1
    return out_u[:k], out_v[:k]


def reduce_edges(u, v, labels, n_new):
    """Edges between the new nodes: ``(labels[u], labels[v])`` without self
    loops or duplicates, sorted by ``(lo, hi)`` (int64).

    Linear in the edges and the new nodes whatever the degrees (see
    :func:`_reduced_range`). From :data:`PARALLEL_EDGES` edges, the two
    halves of the edges are reduced on two threads and their sorted lists
    merged: the result is a set, sorted, the same whatever the threads.
    The exchange's clusters' graph on the T1 map at 2 mm (0.69 M edges,
    14,123 clusters): 3.7 against 6.4 ms on one thread; on the motor map
    (0.12 M edges) 0.80 against 1.11 ms; a first level of pairs at 2 mm,
    3.1-3.3 against 3.6 ms. (The runs' edges are indexed through
    ``unsigned``: a loop from ``e0`` read them 1.3x slower.)
    """
    n_edges = u.shape[0]
    n_new = np.int64(n_new)
    new_u = np.empty(n_edges, dtype=np.int64)
    new_v = np.empty(n_edges, dtype=np.int64)
    if n_edges < PARALLEL_EDGES:
        n_out = call_deferring_sigint(
            _reduced_range, (u, v, labels, n_new, np.int64(0), np.int64(n_edges), new_u, new_v),
            {})
        return new_u[:n_out], new_v[:n_out]
    half = n_edges // 2
    bounds = np.array([0, half, n_edges], dtype=np.int64)
    counts = np.zeros(2, dtype=np.int64)
    run_tasks(_reduced_halves, 2, (u, v, labels, n_new, bounds, new_u, new_v, counts),
              4 * n_edges)
    return call_deferring_sigint(
        _union_sorted, (new_u[:counts[0]], new_v[:counts[0]], new_u[half:half + counts[1]],
                        new_v[half:half + counts[1]]), {})


@njit(cache=True)
def _neighbour_lists_into(u, v, indptr, indices):
    """The graph of edges ``(u, v)`` as CSR, both directions, each node's
    neighbours in edge order, into ``indptr`` (n_nodes + 1, zeros) and
    ``indices`` (2 n_edges); returns the largest degree. A counting sort,
    linear whatever the degrees."""
    n_nodes = indptr.shape[0] - 1
    for e in range(u.shape[0]):
        indptr[u[e] + 1] += 1
        indptr[v[e] + 1] += 1
    largest = 0
    for i in range(n_nodes):
        largest = max(largest, indptr[i + 1])
        indptr[i + 1] += indptr[i]
    fill = np.empty(n_nodes, dtype=np.int64)
    for i in range(n_nodes):
        fill[i] = indptr[i]
    for e in range(u.shape[0]):
        indices[fill[u[e]]] = v[e]
        fill[u[e]] += 1
        indices[fill[v[e]]] = u[e]
        fill[v[e]] += 1
    return largest


def neighbour_lists(n_nodes, u, v):
    """The graph of ``n_nodes`` nodes and edges ``(u, v)`` (each once) as
    neighbour lists: ``(indptr, indices, max_degree)``, node i's
    neighbours ``indices[indptr[i]:indptr[i + 1]]`` in the order of the
    edges, ``indptr`` int64 and ``indices`` int32 when the nodes' numbers
    fit (half the memory, and the loads that a refinement's sweeps and
    connectivity tests wait on most: T1 at 2 mm, K = N/50, 3 sweeps 0.94x
    their time), else int64."""
    small = np.int32 if n_nodes < 2 ** 31 else np.int64
    indptr = np.zeros(n_nodes + 1, dtype=np.int64)
    indices = np.empty(2 * u.shape[0], dtype=small)
    largest = call_deferring_sigint(_neighbour_lists_into, (u, v, indptr, indices), {})
    return indptr, indices, int(largest)
