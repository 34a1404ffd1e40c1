"""``linkage="ward"``: a round's choice of merges, merges recorded with
their heights, weights carried over untouched edges, and Ward's greedy
order on a small graph (a binary heap, ties by node numbers).
"""

import numba
import numpy as np
from numba import njit

from .._interrupt import call_deferring_sigint
from . import threads
from .compiling import filled, inner, int_range
from .merges import edge_priority, find_root, union_in_order, union_roots


@njit(cache=True, inline="always")
def _merge_cost(w, sa, sb):
    """Ward's merge cost of an edge of squared distance w between clusters
    of sizes sa and sb (the same bits whichever end comes first)."""
    return w * (sa * sb / (sa + sb))


#: At most this many runs in :func:`ward_round`: each holds two arrays the
#: size of the nodes (16 bytes a node), and past a few threads the serial
#: rest of the round dominates.
_MAX_RUNS = 4


@njit(cache=True, nogil=True)
def _lightest_tasks(u, v, w, sizes, cost, lightest, t0, t1):
    """Tasks t0..t1 of :func:`ward_round`'s first pass: task t takes the
    t-th of ``lightest.shape[0]`` equal runs of edges, writes their costs
    and, in row t of ``lightest``, each node's lightest cost among them."""
    n_parts = lightest.shape[0]
    n_edges = u.shape[0]
    for t in range(t0, t1):
        row = lightest[t]
        for a in range(row.shape[0]):
            row[a] = np.inf
        for e in range(n_edges * t // n_parts, n_edges * (t + 1) // n_parts):
            a = u[e]
            b = v[e]
            c = _merge_cost(w[e], sizes[a], sizes[b])
            cost[e] = c
            if c < row[a]:
                row[a] = c
            if c < row[b]:
                row[b] = c


@njit(cache=True, inline="always")
def _before(e, f, u, v):
    """Whether edge e goes before edge f (f >= 0) among a node's tied
    candidates: smaller edge priority, then smaller index."""
    p = edge_priority(u[e], v[e])
    q = edge_priority(u[f], v[f])
    return p < q or (p == q and e < f)


@njit(cache=True, nogil=True)
def _choice_tasks(u, v, cost, lightest, scale, chosen, t0, t1):
    """Tasks t0..t1 of :func:`ward_round`'s second pass: in row t of
    ``chosen``, each node's choice among the edges of run t (-1 if none is
    a candidate)."""
    n_parts = chosen.shape[0]
    n_edges = u.shape[0]
    for t in range(t0, t1):
        row = chosen[t]
        for a in range(row.shape[0]):
            row[a] = -1
        for e in range(n_edges * t // n_parts, n_edges * (t + 1) // n_parts):
            sc = scale * cost[e]
            for a in (u[e], v[e]):
                if sc <= lightest[a]:
                    c = row[a]
                    # Priorities only for ties (none on tie-free data).
                    if c < 0 or _before(e, c, u, v):
                        row[a] = e


@inner
def _combined_choices(u, v, chosen):
    """Each node's choice over all runs: the first, by :func:`_before`, of
    the runs' choices (the order is total, so the split into runs does
    not matter)."""
    best = chosen[0].copy()
    for t in range(1, chosen.shape[0]):
        row = chosen[t]
        for a in range(best.shape[0]):
            e = row[a]
            if e >= 0 and (best[a] < 0 or _before(e, best[a], u, v)):
                best[a] = e
    return best


@njit(cache=True)
def _kept_components(n_nodes, u, v, cost, chosen, mutual):
    """The end of :func:`ward_round`: the runs' choices combined, the edges
    kept (chosen by both ends if ``mutual``, else by either, and every edge
    of cost 0; increasing) and the components they make."""
    best = _combined_choices(u, v, chosen)
    n_kept = 0
    keep = np.empty(u.shape[0], dtype=np.int64)
    for e in range(u.shape[0]):
        by_u = best[u[e]] == e
        by_v = best[v[e]] == e
        if cost[e] == 0.0 or ((by_u and by_v) if mutual else (by_u or by_v)):
            keep[n_kept] = e
            n_kept += 1
    kept = keep[:n_kept].copy()
    step, n_new = union_in_order(n_nodes, u, v, kept, np.int64(0))
    return kept, step, n_new


def ward_round(n_nodes, u, v, w, sizes, threshold, mutual, n_runs=None):
    """One ``"ward"`` round's choice: each edge's Ward cost (``w``, the
    squared distance between its ends' means, times ``sa * sb / (sa + sb)``
    for their ``sizes``), the edges kept by the rule of
    :func:`~fastrena._kernels.merges.nearest_neighbor_edges` on those costs
    (ties by the edge priority alone), and the components they make.
    Returns the costs, the kept edges' indices (increasing), the new
    nodes' labels (first-appearance order) and their number.

    The edges are cut into ``n_runs`` runs (default: one per thread, at
    most :data:`_MAX_RUNS`), each run's on a thread of its own: their
    lightest costs and choices per node are combined by a minimum and by
    the total order of the choice, so the result is the same for any number
    of runs.
    """
    grain = threads.PARALLEL_GRAIN
    if n_runs is None:
        n_runs = max(1, min(numba.get_num_threads(), 1 + u.shape[0] // grain, _MAX_RUNS))
    # One thread per run, up to the thread count (run_tasks reads this
    # work estimate so).
    work = n_runs * grain
    cost = np.empty(u.shape[0], dtype=np.float64)
    lightest = np.empty((n_runs, n_nodes), dtype=np.float64)
    threads.run_tasks(_lightest_tasks, n_runs, (u, v, w, sizes, cost, lightest), work)
    lightest = lightest.min(axis=0) if n_runs > 1 else lightest[0]
    chosen = np.empty((n_runs, n_nodes), dtype=np.int64)
    threads.run_tasks(_choice_tasks, n_runs, (u, v, cost, lightest, 1.0 - threshold, chosen), work)
    # A kernel called from Python here is not behind the module's guard.
    kept, step, n_new = call_deferring_sigint(_kept_components,
                                              (n_nodes, u, v, cost, chosen, mutual), {})
    return cost, kept, step, n_new


@njit(cache=True)
def record_merges(u, v, edges, step, n_new, cost, rep, height):
    """The merges of one level, as pairs of features, with their heights.

    ``rep[a]`` is a feature of node a, ``height[a]`` the largest height of
    the merges that made it. Each edge ``edges[k]`` (in that order) that
    joins two parts is one binary merge, recorded as ``(rep[a], rep[b])``
    with height ``max(cost[e], height[a], height[b])``: never below the
    merges inside either side, so a cut by height takes a merge only after
    every merge beneath it. ``step`` are the labels the edges make
    (``n_new`` of them). Returns the merges' two features and heights, and
    ``rep`` and ``height`` of the new nodes.
    """
    n_merges = step.shape[0] - n_new
    first = np.empty(n_merges, dtype=np.int64)
    second = np.empty(n_merges, dtype=np.int64)
    heights = np.empty(n_merges, dtype=np.float64)
    new_rep = filled(np.empty(n_new, dtype=np.int64), np.int64(-1))
    new_height = filled(np.empty(n_new, dtype=np.float64), 0.0)
    for a in range(step.shape[0]):
        c = step[a]
        if new_rep[c] < 0:
            new_rep[c] = rep[a]
        if height[a] > new_height[c]:
            new_height[c] = height[a]
    # Kept edges of weight 0 may close cycles: only the edges that join
    # two parts are merges.
    parent = int_range(step.shape[0])
    k = 0
    for i in range(edges.shape[0]):
        e = edges[i]
        if union_roots(parent, u[e], v[e]):
            a = u[e]
            b = v[e]
            # max(cost[e], max(height[a], height[b])), as numba's max
            # orders its operands.
            h = height[b] if height[b] > height[a] else height[a]
            h = h if h > cost[e] else cost[e]
            first[k] = rep[a]
            second[k] = rep[b]
            heights[k] = h
            k += 1
            c = step[a]
            if h > new_height[c]:
                new_height[c] = h
    return first, second, heights, new_rep, new_height


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


#: Columns of a :func:`greedy_ward` heap entry: its cost, its two nodes
#: (a < b) and their versions when it was pushed. One row per entry, so
#: that moving an entry touches one cache line; node numbers and versions
#: are below 2**53, exact in float64.
_KEY, _A, _B, _VA, _VB = 0, 1, 2, 3, 4


@inner
def _heap_before(heap, i, j):
    """Whether heap entry i goes strictly before entry j: by key, then a, b."""
    if heap[i, _KEY] != heap[j, _KEY]:
        return heap[i, _KEY] < heap[j, _KEY]
    if heap[i, _A] != heap[j, _A]:
        return heap[i, _A] < heap[j, _A]
    return heap[i, _B] < heap[j, _B]


@inner
def _goes_first(key, a, b, heap):
    """Whether an entry (key, a, b) would go before the heap's top."""
    if key != heap[0, _KEY]:
        return key < heap[0, _KEY]
    if a != heap[0, _A]:
        return a < heap[0, _A]
    return b < heap[0, _B]


@inner
def _heap_swap(heap, i, j):
    for k in range(5):
        heap[i, k], heap[j, k] = heap[j, k], heap[i, k]


@inner
def _heap_push(heap, size, key, a, b, va, vb):
    """Push (key, a, b) with the versions of a and b onto a binary min-heap
    ordered by (key, a, b); returns the new size."""
    i = size
    heap[i, _KEY] = key
    heap[i, _A] = a
    heap[i, _B] = b
    heap[i, _VA] = va
    heap[i, _VB] = vb
    while i > 0:
        parent = (i - 1) // 2
        if not _heap_before(heap, i, parent):
            break
        _heap_swap(heap, i, parent)
        i = parent
    return size + 1


@inner
def _heap_pop(heap, size):
    """Move the smallest entry to index ``size - 1``; returns the new size."""
    last = size - 1
    _heap_swap(heap, np.int64(0), last)
    _sift_down(heap, np.int64(0), last)
    return last


@inner
def _sift_down(heap, i, last):
    """Move entry i down the heap of the first ``last`` entries to its place."""
    while True:
        left = 2 * i + 1
        if left >= last:
            break
        child = left
        right = left + 1
        if right < last and _heap_before(heap, right, left):
            child = right
        if not _heap_before(heap, child, i):
            break
        _heap_swap(heap, i, child)
        i = child


@inner
def _keep_merge(a, b, cost, k, parent, rep, height, first, second, heights):
    """Merge b into a (a < b) as merge number k: its two features and its
    height (its cost, raised to the heights beneath it)."""
    h = height[b] if height[b] > height[a] else height[a]
    h = h if h > cost else cost
    first[k] = rep[a]
    second[k] = rep[b]
    heights[k] = h
    parent[b] = a
    height[a] = h


@njit(cache=True)
def _in_heap_order(heap, size):
    """The indices of the first ``size`` heap entries in the order the heap
    pops them, (key, a, b): three stable sorts, least significant first."""
    column = np.empty(size, dtype=np.float64)
    order = np.arange(size)
    for field in (_B, _A, _KEY):
        for i in range(size):
            column[i] = heap[order[i], field]
        order = order[np.argsort(column, kind="mergesort")]
    return order


@inner
def _ward_cost(M, sizes, a, b):
    d = 0.0
    for s in range(M.shape[1]):
        x = M[a, s] - M[b, s]
        d += x * x
    return _merge_cost(d, sizes[a], sizes[b])


#: In :func:`greedy_ward`, a cluster at least this many times larger than
#: the one it absorbs, or with this many times its neighbours (a hub),
#: re-costs its other neighbours lazily.
_HUB = 64


@njit(cache=True)
def greedy_ward(M, sizes, u, v, rep, height, budget, below, n_wanted):
    """Ward's greedy agglomeration of a graph's nodes, to the end: always
    the cheapest merge of two neighbouring clusters (Ward's cost on their
    means), ties to the pair of smallest node numbers.

    ``M`` (n_nodes, n_samples) float64 holds the nodes' means and
    ``sizes`` their sizes (both overwritten); ``u``, ``v`` the edges,
    ``rep`` a feature of each node, ``height`` its highest merge. Each
    merge is recorded as for :func:`record_merges`. Merging two clusters
    recomputes the costs to their neighbours (as scikit-learn's Ward does),
    except when one side is :data:`_HUB` times larger, or has that many
    times more neighbours: the big side barely moves, so its other
    neighbours' costs are recomputed only when they reach the top of the
    heap (and put back in line). The work still grows with the degrees of
    the merged clusters: past ``budget`` neighbour visits, the costs are no
    longer updated and the remaining candidate merges are made in the
    order of their last known costs, which keeps the work linear on any
    input.
    It stops once ``n_wanted`` merges are at or below the current cost,
    counting the sorted heights ``below`` of earlier merges: later merges
    cost more (up to Ward's rare inversions), so a cut taking
    ``n_wanted`` merges would not take them. Returns the merges' two
    features and heights.
    """
    n = M.shape[0]
    n_edges = u.shape[0]
    # Adjacency lists in a pool; a merged cluster's list is rebuilt at the
    # end of the pool, so the pool holds at most the edges twice plus the
    # budget.
    degree = np.zeros(n, dtype=np.int64)
    for e in range(n_edges):
        degree[u[e]] += 1
        degree[v[e]] += 1
    capacity = 2 * n_edges + budget + 2 * n + 1
    pool = np.empty(capacity, dtype=np.int64)
    start = np.zeros(n, dtype=np.int64)
    for a in range(n - 1):
        start[a + 1] = start[a] + degree[a]
    fill = start.copy()
    for e in range(n_edges):
        pool[fill[u[e]]] = v[e]
        fill[u[e]] += 1
        pool[fill[v[e]]] = u[e]
        fill[v[e]] += 1
    used = 2 * n_edges
    heap_capacity = n_edges + budget + 2 * n + 1
    heap = np.empty((heap_capacity, 5), dtype=np.float64)
    version = np.zeros(n, dtype=np.int64)
    # Floyd's heap construction: linear.
    for e in range(n_edges):
        heap[e, _KEY] = _ward_cost(M, sizes, u[e], v[e])
        heap[e, _A] = u[e]
        heap[e, _B] = v[e]
        heap[e, _VA] = 0
        heap[e, _VB] = 0
    size = n_edges
    for i in range(size // 2 - 1, -1, -1):
        _sift_down(heap, i, size)
    parent = np.arange(n)
    mark = np.full(n, -1, dtype=np.int64)
    first = np.empty(n, dtype=np.int64)
    second = np.empty(n, dtype=np.int64)
    heights = np.empty(n, dtype=np.float64)
    n_merges = np.int64(0)
    n_below = 0
    visits = 0
    lazy = np.zeros(n, dtype=np.bool_)
    settled = False
    while size > 0 and visits <= budget:
        size = _heap_pop(heap, size)
        cost = heap[size, _KEY]
        a = np.int64(heap[size, _A])
        b = np.int64(heap[size, _B])
        while n_below < below.shape[0] and below[n_below] <= cost:
            n_below += 1
        if n_below + n_merges >= n_wanted:
            settled = True
            break
        if version[a] != heap[size, _VA] or version[b] != heap[size, _VB]:
            # A stale cost: one end has merged since. A fresh entry
            # was pushed then, unless that merge was a big cluster's
            # (lazy): then re-cost now, and back in line.
            a = find_root(parent, a)
            b = find_root(parent, b)
            if a == b or not (lazy[a] or lazy[b]):
                continue
            lo = min(a, b)
            hi = max(a, b)
            cost = _ward_cost(M, sizes, lo, hi)
            visits += 1
            if size > 0 and not _goes_first(cost, lo, hi, heap):
                size = _heap_push(heap, size, cost, lo, hi, version[lo], version[hi])
                continue
            # It would come straight back to the top: merge it now.
            a, b = lo, hi
            while n_below < below.shape[0] and below[n_below] <= cost:
                n_below += 1
            if n_below + n_merges >= n_wanted:
                settled = True
                break
        if a > b:
            a, b = b, a
        _keep_merge(a, b, cost, n_merges, parent, rep, height, first, second, heights)
        n_merges += 1
        if (visits > budget or used + degree[a] + degree[b] > capacity
                or size + degree[a] + degree[b] > heap_capacity):
            visits = budget + 1     # no more updates (see above)
            continue
        # A big cluster absorbing a small one barely moves: its other
        # neighbours are re-costed lazily (when they come to the top).
        small, big = (a, b) if sizes[a] <= sizes[b] else (b, a)
        hub = (sizes[big] >= _HUB * sizes[small]
               or degree[big] >= _HUB * max(degree[small], 1))
        total = sizes[a] + sizes[b]
        for s in range(M.shape[1]):
            M[a, s] = (sizes[a] * M[a, s] + sizes[b] * M[b, s]) / total
        sizes[a] = total
        version[a] += 1
        version[b] = -1
        lazy[a] = hub
        # The merged cluster's neighbours: both lists, current names, once;
        # fresh costs for all of them, or for the small side's only.
        new_start = used
        mark[a] = a
        for x in (small, big):
            for k in range(start[x], start[x] + degree[x]):
                c = find_root(parent, pool[k])
                visits += 1
                if mark[c] != a:
                    mark[c] = a
                    pool[used] = c
                    used += 1
                    if not (hub and x == big):
                        lo = min(a, c)
                        hi = max(a, c)
                        size = _heap_push(heap, size, _ward_cost(M, sizes, a, c), lo, hi,
                                          version[lo], version[hi])
        mark[a] = -1
        start[a] = new_start
        degree[a] = used - new_start
        degree[b] = 0
        for k in range(new_start, used):
            mark[pool[k]] = -1
    if not settled and size > 0:
        # Out of budget: the remaining candidates merge in the order of their
        # last known costs, whatever their ends have become. One sort of
        # what is left (n log n, as the pops were) instead of a pop each.
        for idx in _in_heap_order(heap, size):
            cost = heap[idx, _KEY]
            while n_below < below.shape[0] and below[n_below] <= cost:
                n_below += 1
            if n_below + n_merges >= n_wanted:
                break
            a = find_root(parent, np.int64(heap[idx, _A]))
            b = find_root(parent, np.int64(heap[idx, _B]))
            if a == b:
                continue
            _keep_merge(min(a, b), max(a, b), cost, n_merges, parent, rep, height, first,
                        second, heights)
            n_merges += 1
    return first[:n_merges].copy(), second[:n_merges].copy(), heights[:n_merges].copy()
