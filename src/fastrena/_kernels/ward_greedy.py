"""``linkage="ward"``: Ward's greedy order on the small graph the rounds of
:mod:`.ward` leave (the graph's edges sorted once by cost, and a 4-ary heap
of the costs pushed since; ties by node numbers), every merge made at its
current Ward cost: an entry whose ends changed since it was pushed is
re-costed before it is merged.
"""

import numpy as np
from numba import njit

from .._interrupt import call_deferring_sigint
from .compiling import filled, inner, inner_leaf, int_range, unsigned
from .layout import permute_rows
from .merges import (cheapest_edges_in_cost_order, edges_above, edges_in_cost_order, find_root,
                     nodes_in_edge_order)
from .prefetch import prefetch_row
from .ward_costs import ward_cost, ward_costs
from .ward_heap import (grown, heap_push, pop, precedes, precedes_all, purged, push_cost, put,
                        sift_down)


#: In :func:`greedy_ward`, a cluster at least this many times larger than
#: the one it absorbs keeps its other neighbours' costs until they come to
#: the top of the heap: its mean moves by at most 1/(_HUB + 1) of the
#: distance to what it absorbs.
_HUB = 64

#: :func:`_merge_while_room`'s outcomes.
_DONE, _ROOM, _MORE = 0, 1, 2

#: A greedy order asked for fewer merges than a quarter of its nodes first
#: sorts the edges of about this many lowest costs per merge, plus
#: :data:`_FIRST_EDGES`, when that is under half of them, and the rest only
#: if the merges reach them: the refinement's exchange (a sixth of the
#: clusters merged) read 35,736 of 715,511 sorted edges for its 18,830
#: merges at 1 mm x 100 samples. The same merges (see :func:`greedy_ward`).
#: The greedy finish of a fit, asked for every merge, sorts them all.
_EDGES_PER_MERGE = 4
_FIRST_EDGES = 1024

#: The heap is first swept of replaced entries at this size, then each
#: time it has grown to twice its size after the last sweep plus this
#: many (see :func:`greedy_ward_costed`). Only when the heap is swept: never
#: the merges.
_SWEEP_SLACK = 1024


def _first_sorted(max_merges, n_nodes, n_edges):
    """How many of the cheapest edges :func:`greedy_ward` sorts first (see
    :data:`_EDGES_PER_MERGE`): all of them unless the merges are fewer than
    a quarter of the nodes and those edges under half."""
    count = _EDGES_PER_MERGE * max_merges + _FIRST_EDGES
    return count if 4 * max_merges < n_nodes and 2 * count < n_edges else n_edges


#: From this many samples, a merge first asks for the means of every
#: neighbour it re-costs (:func:`fastrena._kernels.prefetch.prefetch_row`),
#: then reads them.
_PREFETCHED_SAMPLES = 8


@inner_leaf
def _merge_while_room(M, sizes, rep, orig, height, nbr, nxt, head, tail, reach, keys, rows,
                      cold_keys, cold_rows, version, fresh, parent, mark, first, second, heights,
                      costs, state, bound, slack):
    """The merge loop of :func:`greedy_ward`, on its arrays, from and into
    ``state`` (the heap's size, the merges and work so far, the size of the
    heap's next sweep, the room asked for, the next entry of the sorted
    ones, the merges to stop at, the sorted entries so far). Every edge not
    yet sorted costs more than ``bound`` (infinite once all are); ``slack``:
    :data:`_SWEEP_SLACK`. Returns
    :data:`_ROOM` when it stopped for the heap's room: the next merge could
    push more entries than the heap holds (``state[4]``); :data:`_MORE`
    when the next entry may be one not yet sorted; :data:`_DONE` when no
    edge is left or the merges reached ``state[6]``."""
    size = state[0]
    n_merges = state[1]
    work = state[2]
    sweep_at = state[3]
    at = state[5]
    n_cold = state[7]
    # Whether edges are left unsorted, all of them costing more than bound.
    unsorted = n_cold < cold_keys.shape[0]
    outcome = _DONE
    while (size > 0 or at < n_cold or unsorted) and n_merges < state[6]:
        if size >= sweep_at:
            size = purged(keys, rows, size, parent, fresh)
            sweep_at = 2 * size + slack
        # (After the sweep: it may take a replaced entry off the top.)
        if unsorted and at == n_cold and (size == 0 or keys[0] > bound):
            # The next entry of all may be an edge not yet sorted.
            outcome = _MORE
            break
        # The first entry of all: the heap's top or the next sorted one.
        from_cold = at < n_cold
        if from_cold:
            ua = unsigned(at)
            cost = cold_keys[ua]
            a = cold_rows[ua, 0]
            b = cold_rows[ua, 1]
            if size > 0 and precedes(keys[0], rows[0, 2], rows[0, 3], cold_keys, cold_rows,
                                     ua):
                from_cold = False
        if from_cold:
            # The graph's edges: versions 0.
            va = np.int32(0)
            vb = np.int32(0)
            oa = cold_rows[ua, 2]
            ob = cold_rows[ua, 3]
        else:
            cost = keys[0]
            a = rows[0, 0]
            b = rows[0, 1]
            oa = rows[0, 2]
            ob = rows[0, 3]
            va = rows[0, 4]
            vb = rows[0, 5]
        if parent[a] != a or parent[b] != b or va < fresh[a] or vb < fresh[b]:
            # Replaced: an end was absorbed (its neighbours were pushed
            # with the cluster it joined) or re-pushed all its neighbours.
            if from_cold:
                at += 1
            else:
                size = pop(keys, rows, size)
            continue
        if size + reach[a] + reach[b] + 1 > keys.shape[0]:
            # The merge may push a cost for each slot of both lists (and
            # this entry, re-costed): no room for them all. Nothing was
            # changed since the last merge.
            state[4] = size + reach[a] + reach[b] + 1
            outcome = _ROOM
            break
        if va != version[a] or vb != version[b]:
            # A hub's neighbour whose entry is older than the hub's last
            # merge: its current cost, merged only if still first (before
            # every other entry); else it takes its place in the heap,
            # down from the top when it was the heap's top, where it
            # mostly stays near (the hub barely moved): a pop and a push
            # took it to the bottom and back up (a star of 300,000 leaves:
            # 2x the time).
            cost = ward_cost(M, sizes, a, b)
            work += 1
            if from_cold:
                first_of_all = size == 0 or precedes(cost, oa, ob, keys, rows, 0)
                if first_of_all and at + 1 < n_cold:
                    first_of_all = precedes(cost, oa, ob, cold_keys, cold_rows, at + 1)
                elif unsorted and cost > bound:
                    first_of_all = False
                if not first_of_all:
                    at += 1
                    size = heap_push(keys, rows, size, cost, a, b, version[a], version[b],
                                     oa, ob)
                    continue
            else:
                first_of_all = precedes_all(cost, oa, ob, keys, rows, size)
                if first_of_all and at < n_cold:
                    first_of_all = precedes(cost, oa, ob, cold_keys, cold_rows, at)
                elif unsorted and cost > bound:
                    first_of_all = False
                if not first_of_all:
                    put(keys, rows, 0, cost, a, b, version[a], version[b], oa, ob)
                    sift_down(keys, rows, np.int64(0), size)
                    continue
        if from_cold:
            at += 1
        else:
            size = pop(keys, rows, size)
        # The survivor s absorbs t: the hub (by the ends of edges it holds,
        # else by size), or the smaller number (in the graph given: an
        # entry's first end).
        if reach[a] >= _HUB * reach[b] or reach[b] >= _HUB * reach[a]:
            hub = True
            s, t = (a, b) if reach[a] > reach[b] else (b, a)
        elif sizes[a] >= _HUB * sizes[b] or sizes[b] >= _HUB * sizes[a]:
            hub = True
            s, t = (a, b) if sizes[a] > sizes[b] else (b, a)
        else:
            hub = False
            s, t = a, b
        h = height[t] if height[t] > height[s] else height[s]
        h = h if h > cost else cost
        first[n_merges] = rep[s]
        second[n_merges] = rep[t]
        heights[n_merges] = h
        costs[n_merges] = cost
        height[s] = h
        parent[t] = s
        total = sizes[s] + sizes[t]
        for j in range(M.shape[1]):
            M[s, j] = (sizes[s] * M[s, j] + sizes[t] * M[t, j]) / total
        sizes[s] = total
        reach[s] += reach[t]
        version[s] += 1
        if not hub:
            fresh[s] = version[s]
        stamp = n_merges
        n_merges += 1
        mark[s] = stamp
        # The lists read: both, or the absorbed side's alone. Each slot
        # read is renamed to its current node; repeats and slots now inside
        # s are unlinked; each neighbour's cost is pushed anew.
        new_head = np.int64(-1)
        new_tail = np.int64(-1)
        for x in (t, s):
            if (x == s and hub) or M.shape[1] < _PREFETCHED_SAMPLES:
                break
            k = head[x]
            while k >= 0:
                prefetch_row(M, nbr[k])
                k = nxt[k]
        for x in (t, s):
            if x == s and hub:
                break
            k = head[x]
            while k >= 0:
                following = nxt[k]
                work += 1
                c = find_root(parent, nbr[k])
                if mark[c] != stamp:
                    mark[c] = stamp
                    nbr[k] = c
                    if new_tail < 0:
                        new_head = k
                    else:
                        nxt[new_tail] = k
                    new_tail = k
                    size = push_cost(keys, rows, size, M, sizes, version, s, c, orig)
                k = following
        if hub:
            # The hub's own list follows, unread.
            if new_tail < 0:
                new_head = head[s]
                new_tail = tail[s]
            elif head[s] >= 0:
                nxt[new_tail] = head[s]
                new_tail = tail[s]
        elif new_tail >= 0:
            nxt[new_tail] = -1
        head[s] = new_head
        tail[s] = new_tail
        head[t] = -1
        tail[t] = -1

    state[0] = size
    state[1] = n_merges
    state[2] = work
    state[3] = sweep_at
    state[5] = at
    return outcome


def greedy_ward(M, sizes, u, v, rep, height, max_merges):
    """Ward's greedy agglomeration of a graph's nodes, to the end: always
    the cheapest merge of two neighbouring clusters (Ward's cost on their
    means), ties to the pair of smallest node numbers.

    ``M`` (n_nodes, n_samples) float64 holds the nodes' means (overwritten)
    and ``sizes`` their sizes; ``u``, ``v`` the edges (``u < v``, each
    once), ``rep`` a feature of each node, ``height`` its highest merge.
    Each merge is recorded as for :func:`record_merges`.

    **Every merge is made at its current cost**: the Ward cost of the two
    clusters' means and sizes at that moment, computed when the merge is
    made or since the last change of either side. A heap entry whose ends
    have changed since it was pushed is never merged on its old cost: it is
    dropped when a fresh entry replaced it, else re-costed and merged only
    if still first, or put back in line. There is no work budget.

    The entries are the graph's edges, sorted once by (cost, u, v) (a radix
    sort: linear), and a heap of the costs pushed since; the next entry is
    the first of the list's next one and the heap's top. That is the order
    of one heap holding them all (the same merges), with a heap that holds
    only what merges pushed: on a star, the leaves re-costed near the
    hub's mean rather than every leaf. Asked for fewer merges than a
    quarter of the nodes (see :data:`_EDGES_PER_MERGE`), it sorts the
    cheapest edges first, and the others (all costing more than the last
    of those) only when the next entry of all may be one of them: the same
    list, read in the same order.

    Merging two clusters re-costs their neighbours (as scikit-learn's Ward
    does), except when one side is :data:`_HUB` times larger (a hub
    absorbing a small cluster): then only the small side's neighbours are
    re-costed, and the hub's others keep their entries until these reach
    the top of the heap (the hub barely moves, so their order barely
    changes). Adjacency lists are linked lists of the edges' two ends
    (``2 * n_edges`` slots, never more): a hub's list takes the small
    side's by relinking, without being read, and a list read is rewritten
    with current node numbers, each neighbour once. So a merge reads the
    smaller side's list (by size) unless the two sizes are within a factor
    :data:`_HUB`; on a graph of bounded degree every feature is read
    O(_HUB log n) times in all.

    It merges until no edge is left (one cluster per connected
    component) or after ``max_merges`` merges. Returns the merges' two
    features, heights and costs, and the work done (list slots read plus
    costs recomputed on the heap's top).
    """
    check_greedy_nodes(M.shape[0])
    return call_deferring_sigint(greedy_ward_costed, (
        M, sizes, u, v, rep, height, max_merges, ward_costs(M, sizes, u, v),
        *greedy_ward_options(int(max_merges), M.shape[0], u.shape[0])), {})


def check_greedy_nodes(n_nodes):
    """Raise unless :func:`greedy_ward` can take ``n_nodes`` nodes: the
    heap's rows hold node numbers and versions as int32 (the signals of
    2**31 nodes are 16 GiB a sample: ward.WARD_GREEDY_BYTES keeps the
    greedy order far below)."""
    if n_nodes >= 2 ** 31:
        raise ValueError("greedy_ward: at most 2**31 - 1 nodes")


def greedy_ward_options(max_merges, n_nodes, n_edges):
    """:func:`greedy_ward_costed`'s last two arguments for ``max_merges``
    merges of ``n_nodes`` nodes joined by ``n_edges`` edges: the edges
    sorted first (:func:`_first_sorted`) and :data:`_SWEEP_SLACK`."""
    return np.int64(_first_sorted(max_merges, n_nodes, n_edges)), np.int64(_SWEEP_SLACK)


@inner
def _sorted_into(order, u, v, new, edge_costs, cold_keys, cold_rows, at):
    """The edges ``order`` (in the sorted list's order) into the list's
    entries from ``at`` on: their costs and rows (both ends in the nodes'
    new numbers ``new``, then in the graph's)."""
    for i in range(order.shape[0]):
        e = order[i]
        cold_keys[at + i] = edge_costs[e]
        cold_rows[at + i, 0] = new[u[e]]
        cold_rows[at + i, 1] = new[v[e]]
        cold_rows[at + i, 2] = u[e]
        cold_rows[at + i, 3] = v[e]


@njit(cache=True)
def greedy_ward_costed(M, sizes, u, v, rep, height, max_merges, edge_costs, n_first, slack):
    """:func:`greedy_ward` once the edges' costs are known (``ward_costs(M,
    sizes, u, v)``, which threads compute), with the ``n_first`` cheapest
    sorted first (all of them: ``n_edges``; see :data:`_EDGES_PER_MERGE`);
    ``slack``: :data:`_SWEEP_SLACK` (both from
    :func:`greedy_ward_options`). Compiled code may call it: a caller that
    goes on with the merges in the same call (the refinement's exchange)
    saves the calls in between. The nodes must pass
    :func:`check_greedy_nodes`."""
    n = M.shape[0]
    n_edges = u.shape[0]
    # The graph's edges, sorted once in the heap's order, are merged from
    # that list; only the entries pushed later (re-costed, or the costs of
    # a merged cluster's neighbours) go into the heap, which starts empty:
    # the next entry of all is the first of the list's next and the heap's
    # top. On a star of 300,000 leaves the heap then holds the leaves
    # re-costed since (50,670 at most) rather than every leaf, and on the
    # tissue maps the pushed costs alone (replaced edges are passed over in
    # the list): the greedy order 0.76x its time on the star, 0.61-0.85x
    # on the tissue maps at 2 and 3 mm (the same merges).
    bound = np.inf
    if n_first < n_edges:
        # The cheapest edges first (and any costing little more), the rest
        # (costing more than bound) when the merges reach them; the nodes
        # in the graph's numbering: a few merges gain nothing from the
        # order below, whose set-up needs every edge sorted (both together:
        # the exchange's greedy order 0.86x its time at 1 mm x 100
        # samples, 0.83x at 2 mm).
        order, bound = cheapest_edges_in_cost_order(edge_costs, u, v, n_first)
        orig = int_range(n)
    else:
        # The nodes are numbered anew in the order their edges come in
        # that list (then those without an edge), and their lists laid out
        # in that order: merges then mostly read nodes numbered near each
        # other, where the graph's numbers scatter them (a star's leaves:
        # every merge waited on memory for each of the leaf's arrays).
        # ``orig`` is a node's number in the graph given, by which ties
        # still go (entries carry both ends' numbers in it): the same
        # merges, the greedy order 0.62x its time on the star, 0.74-0.84x
        # on the tissue maps at 2 mm, 0.98-1.03x on WM 3 mm and T1 2 mm
        # (against the sorted list alone).
        order = edges_in_cost_order(edge_costs, u, v)
        orig = nodes_in_edge_order(order, u, v, n)
    new = np.empty(n, dtype=np.int64)
    for i in range(n):
        new[orig[i]] = i
    permute_rows(M, orig)
    sizes = sizes[orig]
    rep = rep[orig]
    height = height[orig]
    cold_keys = np.empty(n_edges, dtype=np.float64)
    cold_rows = np.empty((n_edges, 4), dtype=np.int32)
    _sorted_into(order, u, v, new, edge_costs, cold_keys, cold_rows, 0)
    # Adjacency: node x's list starts as the slots head[x] to head[x] +
    # reach[x] - 1 (its edges' other ends, in the order of the edges
    # given, in the new numbers), nodes in their new order; lists are
    # chains of slots (2 * n_edges in all). reach[x] counts the edge ends x's members held in
    # the graph given: its list is never longer.
    reach = filled(np.empty(n, dtype=np.int64), np.int64(0))
    for e in range(n_edges):
        reach[new[u[e]]] += 1
        reach[new[v[e]]] += 1
    head = filled(np.empty(n, dtype=np.int64), np.int64(-1))
    tail = filled(np.empty(n, dtype=np.int64), np.int64(-1))
    slot = 0
    for x in range(n):
        if reach[x] > 0:
            head[x] = slot
            tail[x] = slot
            slot += reach[x]
    nbr = np.empty(2 * n_edges, dtype=np.int64)
    nxt = np.empty(2 * n_edges, dtype=np.int64)
    for e in range(n_edges):
        ue = new[u[e]]
        ve = new[v[e]]
        for x, y in ((ue, ve), (ve, ue)):
            k = tail[x]
            nbr[k] = y
            tail[x] = k + 1
    for x in range(n):
        if reach[x] > 0:
            for k in range(head[x], tail[x] - 1):
                nxt[k] = k + 1
            tail[x] -= 1
            nxt[tail[x]] = -1
    keys = np.empty(n + 1024, dtype=np.float64)
    rows = np.empty((n + 1024, 6), dtype=np.int32)
    # version[x] counts x's merges; fresh[x] is its version when every
    # neighbour's cost was last pushed anew (entries of older versions are
    # replaced); a node is alive while parent[x] == x.
    version = filled(np.empty(n, dtype=np.int64), np.int64(0))
    fresh = filled(np.empty(n, dtype=np.int64), np.int64(0))
    parent = int_range(n)
    mark = filled(np.empty(n, dtype=np.int64), np.int64(-1))
    first = np.empty(n, dtype=np.int64)
    second = np.empty(n, dtype=np.int64)
    heights = np.empty(n, dtype=np.float64)
    costs = np.empty(n, dtype=np.float64)
    # Entries replaced by fresher ones stay in the heap until popped or
    # swept out: once the entries pushed since the last sweep outnumber
    # those it kept (replaced ones could then be half the heap), one pass
    # keeps the live ones and heapifies them, paid for by those pushes. A
    # replaced entry popped from the top costs a sift down the whole heap,
    # a cache miss a level: sweeping only past twice the graph's edge ends
    # and nodes, GM 2 mm's greedy order (47,130 nodes, 1.2 M entries pushed)
    # popped them all and took 2x the time. The heap holds at most about
    # twice the entries that can still be merged. (The sorted list's
    # replaced entries are passed over in order, one read each.)
    # The loop's counters: the heap's size, the merges, the work, the
    # heap's size at its next sweep, the room it asks for, the sorted
    # list's next entry, the merges to stop at and the entries sorted.
    state = np.zeros(8, dtype=np.int64)
    state[3] = slack
    state[6] = max_merges
    state[7] = order.shape[0]
    while True:
        outcome = _merge_while_room(M, sizes, rep, orig, height, nbr, nxt, head, tail, reach,
                                    keys, rows, cold_keys, cold_rows, version, fresh, parent,
                                    mark, first, second, heights, costs, state, bound, slack)
        # The heap grows, and the list takes the rest of the edges, outside
        # the loop: the loop never rebinds its arrays (a rebinding in it
        # made numba take and release references to them on every pass).
        if outcome == _ROOM:
            keys, rows = grown(keys, rows, state[0], state[4])
        elif outcome == _MORE:
            rest = edges_above(edge_costs, bound)
            _sorted_into(rest[edges_in_cost_order(edge_costs[rest], u[rest], v[rest])], u, v,
                         new, edge_costs, cold_keys, cold_rows, state[7])
            state[7] = n_edges
            bound = np.inf
        else:
            break
    n_merges = state[1]
    work = state[2]
    return (first[:n_merges].copy(), second[:n_merges].copy(), heights[:n_merges].copy(),
            costs[:n_merges].copy(), work)
