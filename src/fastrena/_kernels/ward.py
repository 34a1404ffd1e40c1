"""``linkage="ward"``: a round's choice of merges (:func:`ward_choice`) and
merges recorded with their heights (the reduced graph with the weights
carried over untouched edges is :mod:`.ward_edges`; Ward's greedy order
that finishes on a small graph, :mod:`.ward_greedy`). In memory, a
round's graph and its signals are reduced side by side
(:func:`fastrena._kernels.round_end.ward_round_end`), with the same
results as the steps the chunked backend takes one by one.

Every merge these kernels make is made at its current Ward cost: the cost
of the two clusters' true means and sizes when it is made (a round's pairs
are disjoint, and its merges of cost 0 join identical means; the greedy
order re-costs any entry whose ends changed since it was pushed).
"""

import numba
import numpy as np
from numba import njit

from .._interrupt import call_deferring_sigint
from . import threads
from .compiling import filled, inner, inner_leaf, int_range, unsigned
from .merges import edge_priority, find_root, union_in_order, union_roots


@njit(cache=True, inline="always")
def merge_cost(w, sa, sb):
    """Ward's merge cost of an edge of squared distance w between clusters
    of sizes sa and sb (the same bits whichever end comes first)."""
    return w * (sa * sb / (sa + sb))


#: At most this many runs of edges in :func:`ward_choice`'s two passes
#: over the edges: each run holds two arrays the size of the nodes (16
#: bytes a node), and past a few threads the serial rest of the round
#: dominates.
_MAX_RUNS = 4


@njit(cache=True, nogil=True)
def _lightest_tasks(u, v, w, sizes, cost, lightest, t0, t1):
    """Tasks t0..t1 of :func:`ward_choice`'s first pass: task t takes the
    t-th of ``lightest.shape[0]`` equal runs of edges, writes their costs
    and, in row t of ``lightest``, each node's lightest cost among them
    (a minimum without a branch)."""
    n_parts = lightest.shape[0]
    n_edges = u.shape[0]
    for t in range(t0, t1):
        row = lightest[t]
        for a in range(row.shape[0]):
            row[a] = np.inf
        for e in range(n_edges * t // n_parts, n_edges * (t + 1) // n_parts):
            # Unsigned indices (compiling.unsigned): the two passes 0.69x
            # their time on the first round at 2 mm.
            ue = unsigned(e)
            a = unsigned(u[ue])
            b = unsigned(v[ue])
            c = merge_cost(w[ue], sizes[a], sizes[b])
            cost[ue] = c
            la = row[a]
            row[a] = c if c < la else la
            lb = row[b]
            row[b] = c if c < lb else lb


@njit(cache=True, inline="always")
def _before(e, f, u, v):
    """Whether edge e goes before edge f (f >= 0) among a node's tied
    candidates: smaller edge priority, then smaller index."""
    p = edge_priority(u[e], v[e])
    q = edge_priority(u[f], v[f])
    return p < q or (p == q and e < f)


@njit(cache=True, nogil=True)
def _first_choice_tasks(u, v, cost, lightest, scale, chosen, ties, t0, t1):
    """Tasks t0..t1 of :func:`ward_choice`'s second pass: in row t of
    ``chosen``, each node's first candidate in edge order among the edges
    of run t (an edge within the relative threshold of the node's lightest
    cost; -1 if none), found without a branch (on tie-free data a node has
    one candidate: 0.4x the time of a loop that compared ties as it met
    them); in ``ties[t]``, how many times a node met a second candidate
    in the run."""
    n_parts = chosen.shape[0]
    n_edges = u.shape[0]
    for t in range(t0, t1):
        row = chosen[t]
        for a in range(row.shape[0]):
            row[a] = -1
        n_ties = 0
        for e in range(n_edges * t // n_parts, n_edges * (t + 1) // n_parts):
            ue = unsigned(e)
            sc = scale * cost[ue]
            a = unsigned(u[ue])
            b = unsigned(v[ue])
            fa = row[a]
            fb = row[b]
            ca = sc <= lightest[a]
            cb = sc <= lightest[b]
            row[a] = e if ca & (fa < 0) else fa
            row[b] = e if cb & (fb < 0) else fb
            n_ties += (ca & (fa >= 0)) | (cb & (fb >= 0))
        ties[t] = n_ties


#: The merges of a round's cost-0 edges are recorded in passes of disjoint
#: pairs while at least this fraction of the pieces that still have such an
#: edge pair up in a pass (see :func:`_zero_merge_order`).
ZERO_PAIRING = 0.25


@inner
def _zero_merge_order(n_nodes, u, v, zero, sizes):
    """The edges ``zero`` (a round's edges of cost 0, increasing) in the
    order their merges are recorded.

    Merging identical means costs 0 in any order, so the order is free; it
    is what the merge tree's cut undoes first when a flat region must end
    in several clusters (its merges all have height 0, ties in recording
    order), and Ward's own greedy order grows such a region in clusters of
    similar sizes. Merging the region's edges in index order would leave
    one cluster holding nearly all of it and single features around it
    (a 0/1 brain mask: a largest cluster 1,000-2,000x Ward's). So the
    region is paired up in passes: in node order, each piece (a part of a
    region made so far) not yet paired in the pass pairs with the unpaired
    neighbouring piece that makes the smallest union (ties by the edge
    priority, then the edge's index); the pass's pairs are recorded before
    the next pass's, so the cut undoes the last, largest unions first. A
    pass costs O(nodes + edges still between two pieces); the passes stop
    once fewer than :data:`ZERO_PAIRING` of the pieces that have such an
    edge pair up (a star's centre pairs with one leaf a pass), so there are
    at most ~log(n) / log(8/7) of them (O((n + E) log n) in all; a few
    tens on a grid); the edges left follow in index order.
    """
    parent = int_range(n_nodes)
    weight = sizes.copy()
    active = zero.copy()
    n_active = active.shape[0]
    order = np.empty(zero.shape[0], dtype=np.int64)
    n_order = 0
    start = np.empty(n_nodes + 1, dtype=np.int64)
    mate = np.empty(n_nodes, dtype=np.int64)
    other = np.empty(2 * n_active, dtype=np.int64)
    via = np.empty(2 * n_active, dtype=np.int64)
    root_u = np.empty(n_active, dtype=np.int64)
    root_v = np.empty(n_active, dtype=np.int64)
    while n_active > 0:
        # Adjacency of the pieces (roots) by the edges still between two.
        for a in range(n_nodes + 1):
            start[a] = 0
        for i in range(n_active):
            e = active[i]
            ra = find_root(parent, u[e])
            rb = find_root(parent, v[e])
            root_u[i] = ra
            root_v[i] = rb
            start[ra + 1] += 1
            start[rb + 1] += 1
        for a in range(n_nodes):
            start[a + 1] += start[a]
        for a in range(n_nodes):
            mate[a] = start[a]      # the next free slot of a's list
        for i in range(n_active):
            e = active[i]
            ra = root_u[i]
            rb = root_v[i]
            other[mate[ra]] = rb
            via[mate[ra]] = e
            mate[ra] += 1
            other[mate[rb]] = ra
            via[mate[rb]] = e
            mate[rb] += 1
        n_pieces = 0
        for a in range(n_nodes):
            mate[a] = -1
            if start[a + 1] > start[a]:
                n_pieces += 1
        n_pairs = 0
        for a in range(n_nodes):
            if mate[a] >= 0:
                continue
            chosen = -1
            size = 0.0
            for k in range(start[a], start[a + 1]):
                b = other[k]
                if mate[b] >= 0:
                    continue
                s = weight[a] + weight[b]
                if chosen < 0 or s < size or (s == size and _before(via[k], via[chosen], u, v)):
                    chosen = k
                    size = s
            if chosen >= 0:
                b = other[chosen]
                mate[a] = b
                mate[b] = a
                order[n_order] = via[chosen]
                n_order += 1
                n_pairs += 1
        for k in range(n_order - n_pairs, n_order):
            e = order[k]
            ra = find_root(parent, u[e])
            rb = find_root(parent, v[e])
            union_roots(parent, ra, rb)
            weight[find_root(parent, ra)] = weight[ra] + weight[rb]
        n_left = 0
        for i in range(n_active):
            e = active[i]
            if find_root(parent, u[e]) != find_root(parent, v[e]):
                active[n_left] = e
                n_left += 1
        n_active = n_left
        if 2 * n_pairs < ZERO_PAIRING * n_pieces:
            break
    for i in range(n_active):
        order[n_order] = active[i]
        n_order += 1
    return order[:n_order].copy()



@inner
def _good_pairs(n_nodes, u, v, cost, lightest, chosen, on_zero, slack, keep):
    """A round's disjoint pairs, written into ``keep`` in increasing edge
    index; returns how many.

    Each node proposes its choice ``chosen[a]`` (none on an edge of cost 0
    or with an end on one). A node b takes the proposal of its own choice
    when that comes back (a mutual pair); otherwise the cheapest proposal
    (ties by :func:`_before`) whose cost is below ``(1 + slack)`` times b's
    lightest cost. A proposal taken is a pair unless its proposer took
    another one: each node ends in one pair at most, and every pair is a
    merge its proposer would make first and costs less than ``1 + slack``
    times the cheapest merge its other end could make. ``slack = 0`` keeps
    the mutual pairs alone."""
    bar = 1.0 + slack
    taken = filled(np.empty(n_nodes, dtype=np.int64), np.int64(-1))
    # Indices read from arrays through compiling.unsigned (once known
    # non-negative).
    for a in range(n_nodes):
        e = chosen[a]
        if e < 0:
            continue
        ue = unsigned(e)
        if cost[ue] == 0.0 or on_zero[unsigned(u[ue])] or on_zero[unsigned(v[ue])]:
            continue
        b = unsigned(u[ue] + v[ue] - a)
        f = taken[b]
        if chosen[b] == e:
            taken[b] = e
        elif cost[ue] < bar * lightest[b] and (f < 0 or (chosen[b] != f and (
                cost[ue] < cost[f] or (cost[ue] == cost[f] and _before(e, f, u, v))))):
            taken[b] = e
    pair = filled(np.empty(n_nodes, dtype=np.int64), np.int64(-1))
    for b in range(n_nodes):
        e = taken[b]
        if e >= 0:
            ue = unsigned(e)
            a = unsigned(u[ue] + v[ue] - b)
            if taken[a] < 0 or taken[a] == e:
                pair[a] = e
                pair[b] = e
    # Listed at their u end (edges sorted by u: in increasing index).
    n_kept = 0
    for a in range(n_nodes):
        e = pair[a]
        if e >= 0 and u[unsigned(e)] == a:
            keep[n_kept] = e
            n_kept += 1
    return n_kept


@inner_leaf
def _put_merge(k, e, u, v, cost, rep, height, first, second, heights, costs):
    """Merge k, along edge e: its two features, its cost, and its height,
    ``max(cost[e], max(height[a], height[b]))`` for the edge's ends a, b
    (as numba's max orders its operands), which it returns."""
    a = unsigned(u[e])
    b = unsigned(v[e])
    h = height[b] if height[b] > height[a] else height[a]
    h = h if h > cost[e] else cost[e]
    first[k] = rep[a]
    second[k] = rep[b]
    heights[k] = h
    costs[k] = cost[e]
    return h


@njit(cache=True)
def record_merges(u, v, edges, step, n_new, cost, rep, height):
    """The merges of one level, as pairs of features, with their heights.

    ``rep[a]`` is a feature of node a, ``height[a]`` the largest height of
    the merges that made it. Each edge ``edges[k]`` (in that order) that
    joins two parts is one binary merge, recorded as ``(rep[a], rep[b])``
    with height ``max(cost[e], height[a], height[b])``: never below the
    merges inside either side, so a cut by height takes a merge only after
    every merge beneath it. ``step`` are the labels the edges make
    (``n_new`` of them). Returns the merges' two features, heights and
    costs (``cost[e]``), and ``rep`` and ``height`` of the new nodes.
    """
    n_merges = step.shape[0] - n_new
    first = np.empty(n_merges, dtype=np.int64)
    second = np.empty(n_merges, dtype=np.int64)
    heights = np.empty(n_merges, dtype=np.float64)
    costs = np.empty(n_merges, dtype=np.float64)
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
            h = _put_merge(k, e, u, v, cost, rep, height, first, second, heights, costs)
            k += 1
            c = step[u[e]]
            if h > new_height[c]:
                new_height[c] = h
    return first, second, heights, costs, new_rep, new_height


@inner
def _pair_labels(n_nodes, u, v, kept):
    """The labels the disjoint pairs ``kept`` (edge indices) make, numbered
    by first appearance (a pair's number at its smaller node, ``u``): those
    of :func:`union_in_order`, and their count."""
    partner = filled(np.empty(n_nodes, dtype=np.int64), np.int64(-1))
    for i in range(kept.shape[0]):
        e = unsigned(kept[i])
        partner[unsigned(v[e])] = u[e]
    step = np.empty(n_nodes, dtype=np.int64)
    n_new = 0
    for a in range(n_nodes):
        p = partner[a]
        if p >= 0:
            step[a] = step[unsigned(p)]
        else:
            step[a] = n_new
            n_new += 1
    return step, n_new


@inner
def _pair_merges(u, v, kept, step, n_new, cost, rep, height):
    """:func:`record_merges` of disjoint pairs (every kept edge joins two
    parts, one merge each, in the order kept): the same results without
    its union-find."""
    n_merges = kept.shape[0]
    first = np.empty(n_merges, dtype=np.int64)
    second = np.empty(n_merges, dtype=np.int64)
    heights = np.empty(n_merges, dtype=np.float64)
    costs = np.empty(n_merges, dtype=np.float64)
    new_rep = np.empty(n_new, dtype=np.int64)
    new_height = np.empty(n_new, dtype=np.float64)
    # Backwards: the last write is the new node's first (smallest) member,
    # whose rep is the new node's; a pair's height is its merge's, set
    # below (never below either side's).
    for a in range(step.shape[0] - 1, -1, -1):
        c = unsigned(step[a])
        new_rep[c] = rep[a]
        new_height[c] = height[a]
    for k in range(n_merges):
        # e stays signed: _put_merge is compiled once for record_merges's
        # edges and these.
        e = kept[k]
        new_height[unsigned(step[unsigned(u[e])])] = _put_merge(
            k, e, u, v, cost, rep, height, first, second, heights, costs)
    return first, second, heights, costs, new_rep, new_height


@njit(cache=True)
def _choice_end(n_nodes, u, v, cost, lightest, chosen, ties, scale, sizes, rep, height, mutual,
                greedy_below, slack):
    """The rest of :func:`ward_choice` after its two passes: each node's
    choice (the first run's first candidate, which is the first in edge
    order; if any node met two candidates, in a run or across runs, a
    pass that keeps the first of each node's candidates by
    :func:`_before`), the edges kept (with ``mutual``, the pairs of
    :func:`_good_pairs`), the merges and the new sizes."""
    best = chosen[0].copy()
    n_ties = 0
    for t in range(ties.shape[0]):
        n_ties += ties[t]
    for t in range(1, chosen.shape[0]):
        row = chosen[t]
        for a in range(n_nodes):
            e = row[a]
            if e >= 0:
                if best[a] < 0:
                    best[a] = e
                else:
                    n_ties += 1
    chosen = best
    n_edges = u.shape[0]
    if n_ties > 0:
        for e in range(n_edges):
            sc = scale * cost[e]
            for x in (u[e], v[e]):
                f = chosen[x]
                if sc <= lightest[x] and f != e and _before(e, f, u, v):
                    chosen[x] = e
    # Edges of cost 0 (identical means): merged first, in the order of
    # _zero_merge_order; a pair with an end on one waits for the next
    # round.
    on_zero = np.zeros(n_nodes, dtype=np.bool_)
    n_zero = 0
    for e in range(n_edges):
        if cost[e] == 0.0:
            on_zero[u[e]] = True
            on_zero[v[e]] = True
            n_zero += 1
    zero = np.empty(n_zero, dtype=np.int64)
    if n_zero > 0:
        n_zero = 0
        for e in range(n_edges):
            if cost[e] == 0.0:
                zero[n_zero] = e
                n_zero += 1
    # A node keeps at most its own choice when mutual; else any edge may.
    keep = np.empty(n_nodes if mutual else n_edges, dtype=np.int64)
    n_kept = 0
    if mutual:
        n_kept = _good_pairs(n_nodes, u, v, cost, lightest, chosen, on_zero, slack, keep)
    else:
        for e in range(n_edges):
            if cost[e] != 0.0 and not (on_zero[u[e]] or on_zero[v[e]]) and (
                    chosen[u[e]] == e or chosen[v[e]] == e):
                keep[n_kept] = e
                n_kept += 1
    ordered = _zero_merge_order(n_nodes, u, v, zero, sizes) if n_zero > 0 else zero
    kept = np.empty(ordered.shape[0] + n_kept, dtype=np.int64)
    for i in range(ordered.shape[0]):
        kept[i] = ordered[i]
    for i in range(n_kept):
        kept[ordered.shape[0] + i] = keep[i]
    # Disjoint pairs alone (no edge of cost 0): their labels and merges
    # without a union-find (what union_in_order and record_merges give).
    pairs = mutual and n_zero == 0
    if pairs:
        step, n_new = _pair_labels(n_nodes, u, v, kept)
    else:
        step, n_new = union_in_order(n_nodes, u, v, kept, np.int64(0))
    empty_i = np.empty(0, dtype=np.int64)
    empty_f = np.empty(0, dtype=np.float64)
    if n_nodes - n_new < greedy_below:
        return n_new, step, (empty_i, empty_i, empty_f, empty_f, rep, height), empty_f, empty_i
    if pairs:
        merges = _pair_merges(u, v, kept, step, n_new, cost, rep, height)
    else:
        merges = record_merges(u, v, kept, step, n_new, cost, rep, height)
    new_sizes = filled(np.empty(n_new, dtype=np.float64), 0.0)
    count = filled(np.empty(n_new, dtype=np.int64), np.int64(0))
    for a in range(n_nodes):
        c = unsigned(step[a])
        new_sizes[c] += sizes[a]
        count[c] += 1
    return n_new, step, merges, new_sizes, count


def ward_choice(n_nodes, u, v, w, sizes, rep, height, threshold, mutual, greedy_below,
                n_runs=None, slack=0.0):
    """A ``"ward"`` round up to its new graph: each edge's Ward cost (``w``,
    the squared distance between its ends' means, times ``sa * sb / (sa +
    sb)`` for their ``sizes``), the edges kept by the rule of
    :func:`~fastrena._kernels.merges.nearest_neighbor_edges` on those
    costs (ties by the edge priority alone: :func:`_before`), the
    components they make; then, unless the round would merge fewer than
    ``greedy_below`` nodes (the greedy finish takes over: the rest is
    returned empty), :func:`record_merges` and the new sizes
    (``np.bincount``'s sums, in node order).

    Kept: with ``mutual``, disjoint pairs (each merge costs what its edge
    costs): the mutual pairs, and with ``slack > 0`` also a node's choice
    taken by a neighbour whose own choice is elsewhere, when it costs less
    than ``1 + slack`` times that neighbour's lightest (:func:`_good_pairs`);
    without, the edges chosen by either end; and every edge of cost 0 first,
    in the order of :func:`_zero_merge_order`. ``u``, ``v`` are sorted by
    ``(u, v)`` (as :func:`reduce_edges` returns them). Returns ``(n_new,
    step, merges, new sizes, count)``, ``count[c]`` the old nodes in new
    node c. The passes over the edges run on ``n_runs`` runs of edges
    (default: one per thread, at most :data:`_MAX_RUNS`), each on a thread
    of its own; their minima and first candidates are combined so that
    the result is the same for any number of runs. Each step is linear in
    the edges and nodes whatever the degrees.
    """
    n_edges = u.shape[0]
    grain = threads.PARALLEL_GRAIN
    if n_runs is None:
        n_runs = max(1, min(numba.get_num_threads(), 1 + n_edges // grain, _MAX_RUNS))
    # One thread per run, up to the thread count (run_tasks reads this
    # work estimate so).
    work = n_runs * grain
    cost = np.empty(n_edges, dtype=np.float64)
    lightest = np.empty((n_runs, n_nodes), dtype=np.float64)
    threads.run_tasks(_lightest_tasks, n_runs, (u, v, w, sizes, cost, lightest), work)
    lightest = lightest.min(axis=0) if n_runs > 1 else lightest[0]
    chosen = np.empty((n_runs, n_nodes), dtype=np.int64)
    ties = np.zeros(n_runs, dtype=np.int64)
    scale = 1.0 - threshold
    threads.run_tasks(_first_choice_tasks, n_runs, (u, v, cost, lightest, scale, chosen, ties),
                      work)
    # A kernel called from Python here is not behind the module's guard.
    return call_deferring_sigint(
        _choice_end, (n_nodes, u, v, cost, lightest, chosen, ties, scale, sizes, rep, height,
                      mutual, float(greedy_below), float(slack)), {})
