"""A ``"ward"`` round's new graph: the edges between the new nodes, each
once and sorted, and the weights carried over the edges whose ends did
not change (:func:`reduced_edges_carrying`, :func:`carry_weights`): the
only weights a round must compute are those of the new edges
(``todo``). :func:`fastrena._kernels.ward.ward_round_end` runs the same
reduction beside the round's signal merge.
"""

import numpy as np
from numba import njit

from .._interrupt import call_deferring_sigint
from .compiling import filled, unsigned


@njit(cache=True)
def carry_weights(u, v, w, step, n_new, new_u, new_v):
    """The weights of the new edges that join two nodes left alone by
    ``step``: their ends' signals are unchanged, so their weight is the old
    edge's. Returns the new weights (0 where not carried) and the indices
    of the new edges whose weight must be computed.

    ``u``, ``v`` are sorted by ``(u, v)`` (as :func:`reduce_edges` returns
    them); the old edge of a carried weight is found by a binary search in
    its row, so the cost is O(edges x log(degree)) whatever the degrees.
    """
    n_old = step.shape[0]
    count = filled(np.empty(n_new, dtype=np.int64), np.int64(0))
    member = np.empty(n_new, dtype=np.int64)
    for a in range(n_old):
        c = step[a]
        count[c] += 1
        member[c] = a
    row_start = filled(np.empty(n_old + 1, dtype=np.int64), np.int64(0))
    for e in range(u.shape[0]):
        row_start[u[e] + 1] += 1
    for a in range(n_old):
        row_start[a + 1] += row_start[a]
    out = filled(np.empty(new_u.shape[0], dtype=np.float64), 0.0)
    todo = np.empty(new_u.shape[0], dtype=np.int64)
    n_todo = 0
    for e in range(new_u.shape[0]):
        a = new_u[e]
        b = new_v[e]
        if count[a] == 1 and count[b] == 1:
            lo = member[a] if member[a] < member[b] else member[b]
            hi = member[b] if member[a] < member[b] else member[a]
            first = row_start[lo]
            last = row_start[lo + 1]
            while first < last:
                mid = (first + last) // 2
                if v[mid] < hi:
                    first = mid + 1
                else:
                    last = mid
            out[e] = w[first]
        else:
            todo[n_todo] = e
            n_todo += 1
    return out, todo[:n_todo].copy()


@njit(cache=True, nogil=True)
def reduced_edges_into(u, v, w, step, n_new, count, new_u, new_v, new_w, todo, scratch):
    """:func:`fastrena._kernels.reduce_edges` of ``(u, v)`` by ``step``, and
    the weights carried over (see :func:`carry_weights`): the same edges in
    the same order and the same indices of the edges to compute, in the
    same two-digit radix sort, which carries each edge's index along
    instead of a binary search per edge after it. ``count[c]`` is the
    number of old nodes in new node c: a new edge between two nodes of one
    member each comes from exactly one old edge, whose weight it keeps. The
    weights to compute are left as some old edge's (not 0).

    Written into the first entries of ``new_u``, ``new_v``, ``new_w`` and
    ``todo`` (each at least as long as ``u``: there are never more new
    edges than old); returns how many edges and how many to compute.
    ``scratch``: int64 (4, at least as many as ``u``), the sort's working
    rows (see :func:`sort_scratch`: its contents do not matter).

    Written without branches where the data decide (which edges are
    duplicates, which are carried): mispredicted branches, not memory,
    took most of the time of these passes."""
    n_edges = u.shape[0]
    start_hi = filled(np.empty(n_new + 1, dtype=np.int64), np.int64(0))
    # Indices read from arrays go through compiling.unsigned: 0.78-0.82x
    # this kernel's time on the first rounds at 2 mm.
    for e in range(n_edges):
        a = step[unsigned(u[e])]
        b = step[unsigned(v[e])]
        start_hi[unsigned((a if a > b else b) + 1)] += a != b
    for i in range(n_new):
        start_hi[i + 1] += start_hi[i]
    n_between = start_hi[n_new]
    los = scratch[0, :n_between]
    src_by_hi = scratch[1, :n_between]
    fill = np.empty(n_new, dtype=np.int64)
    for i in range(n_new):
        fill[i] = start_hi[i]
    start_lo = filled(np.empty(n_new + 1, dtype=np.int64), np.int64(0))
    for e in range(n_edges):
        a = step[unsigned(u[e])]
        b = step[unsigned(v[e])]
        # Most edges join two new nodes: a predictable branch.
        if a != b:
            lo = a if a < b else b
            hi = unsigned(b if a < b else a)
            f = unsigned(fill[hi])
            los[f] = lo
            src_by_hi[f] = e
            fill[hi] = f + unsigned(1)
            start_lo[unsigned(lo + 1)] += 1
    for i in range(n_new):
        start_lo[i + 1] += start_lo[i]
    # At f = 0, his[f - 1] is his[-1], the last slot (numba counts a
    # negative index from the end): read and ignored.
    his = scratch[2, :n_between]
    src = scratch[3, :n_between]
    for i in range(n_new):
        fill[i] = start_lo[i]
    for hi in range(n_new):
        for k in range(start_hi[hi], start_hi[hi + 1]):
            lo = unsigned(los[unsigned(k)])
            f = fill[lo]
            # A duplicate is written over by the next edge of lo's bucket
            # (its bucket has room: it holds every edge of lo, duplicates
            # included) and does not advance the fill. (f - 1 stays signed:
            # -1 at f = 0.)
            his[unsigned(f)] = hi
            src[unsigned(f)] = src_by_hi[unsigned(k)]
            fill[lo] = f + ((f == start_lo[lo]) | (his[f - 1] != hi))
    n_todo = 0
    k = 0
    for lo in range(n_new):
        alone = count[lo] == 1
        for i in range(start_lo[lo], fill[lo]):
            hi = his[unsigned(i)]
            new_u[unsigned(k)] = lo
            new_v[unsigned(k)] = hi
            new_w[unsigned(k)] = w[unsigned(src[unsigned(i)])]
            todo[unsigned(n_todo)] = k
            n_todo += not (alone & (count[unsigned(hi)] == 1))
            k += 1
    return k, n_todo


def edge_buffers(n_edges):
    """``new_u``, ``new_v``, ``new_w`` and ``todo`` for
    :func:`reduced_edges_into`: as long as the old edges (never fewer)."""
    return (np.empty(n_edges, dtype=np.int64), np.empty(n_edges, dtype=np.int64),
            np.empty(n_edges, dtype=np.float64), np.empty(n_edges, dtype=np.int64))


@njit(cache=True)
def sort_scratch(n_edges):
    """The working rows of :func:`reduced_edges_into`'s sort for up to
    ``n_edges`` edges. Allocated by numba, in pages of 4 KB: numpy asks
    the system for huge pages for a large array, and where it must
    compact memory to find them a first touch stalls (the rounds'
    buffers all from numpy, 1 mm x 100 float32 samples: 5 of 18 fits
    took 1.3-2x the time, with 1-2 s of system time; none with this
    one from numba, the same typical time as the sort's own arrays were
    before, new in each round)."""
    return np.empty((4, n_edges), dtype=np.int64)


def reduced_edges_carrying(u, v, w, step, n_new, count):
    """:func:`reduce_edges` and :func:`carry_weights` in one radix sort, the
    same results bit for bit: ``(new_u, new_v, new_w, todo)``, ``new_w``
    holding the carried weights, except at the new edges ``todo``, whose
    weights are to be computed. ``count[c]`` is the number of old nodes in
    new node c."""
    new_u, new_v, new_w, todo = edge_buffers(u.shape[0])
    # A kernel called from Python here is not behind the module's guard.
    n_out, n_todo = call_deferring_sigint(
        reduced_edges_into, (u, v, w, step, np.int64(n_new), count, new_u, new_v, new_w, todo,
                             sort_scratch(u.shape[0])), {})
    return new_u[:n_out], new_v[:n_out], new_w[:n_out], todo[:n_todo]
