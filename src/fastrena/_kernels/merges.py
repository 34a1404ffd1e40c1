"""One level's merge: the edge each node chooses (ties broken as
infinitesimal noise would), the components of the kept edges, and the
exact-K rule (kept edges added one at a time, in a given order).
"""

import numpy as np
from numba import njit

from .compiling import filled, inner, inner_leaf, int_range, unsigned


#: Multipliers of :func:`edge_priority` (SplitMix64's finaliser constants).
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


#: An empty ``key`` for :func:`nearest_neighbor_edges`: ties go to the edge
#: priority alone.
NO_KEY = np.zeros(0)


@inner
def edge_priority(a, b):
    """A pseudo-random 64-bit priority of the edge between nodes a and b.

    A fixed bijective mix (SplitMix64's finaliser) of the pair, so it is the
    same on every machine, thread count and call: it stands for an
    infinitesimal random perturbation of the edge's weight, which decides
    between edges whose weights are tied.
    """
    x = np.uint64(a) * _GOLDEN + np.uint64(b)
    x ^= x >> np.uint64(30)
    x *= _MIX_1
    x ^= x >> np.uint64(27)
    x *= _MIX_2
    x ^= x >> np.uint64(31)
    return x


@inner
def _node_noise(a):
    """A pseudo-random number in [0, 1) for node a (see :func:`edge_priority`)."""
    return float(edge_priority(a, np.int64(0)) >> np.uint64(11)) * 2.0 ** -53


@inner
def _tie_key(key, a, b):
    """First-order change of the weight of edge (a, b) when each node's
    ``key`` value moves by an infinitesimal :func:`_node_noise`: lower is
    lighter; 0 when ``key`` is empty."""
    if key.shape[0] == 0:
        return 0.0
    return (_node_noise(a) - _node_noise(b)) * (key[a] - key[b])


@inner
def _precedes(k, p, e, l, q, f):
    """Whether edge e (tie key k, priority p) goes before edge f (l, q)."""
    if k != l:
        return k < l
    return p < q or (p == q and e < f)


@njit(cache=True)
def nearest_neighbor_edges(n_nodes, u, v, w, threshold, mutual, key):
    """The edge each node chooses, as a mask over the edges: kept when it is
    chosen by one of its ends (by both if ``mutual``).

    A node's candidates are its edges within ``threshold`` of its lightest,
    ``(1 - t) * w(a, b) <= min_b' w(a, b')``: ties, up to the tolerance.
    It chooses exactly one of them: the one of smallest :func:`_tie_key`
    (the first-order change of the weight when the signal ``key``, one
    value per node, moves by infinitesimal noise), then of smallest
    :func:`edge_priority` (infinitesimal noise on the weight itself), then
    of smallest index; an empty ``key`` leaves the priority alone.
    Keeping every tied edge would let equal weights chain: a plateau or a
    ramp of quantized data would merge whole in one level. This order is
    one total order of the edges (the key and the priority are symmetric
    in the ends), so following chosen edges it strictly decreases, and a
    component is a tree around one mutually chosen edge; on noise,
    decreasing paths are short. Noise on the signal (rather than on each
    weight) gives the choice the data would get with its ties jittered:
    on a ramp, neighbouring nodes' choices agree as they do on real data.
    Without ties the choice is the lightest edge, as before (nilearn's
    rule). Edges of weight 0 join identical signals: they are all kept, so
    that a plateau of equal values merges whole, which costs nothing.
    """
    lightest = filled(np.empty(n_nodes, dtype=np.float64), np.inf)
    n_edges = u.shape[0]
    # Ends index through compiling.unsigned.
    for e in range(n_edges):
        a = unsigned(u[e])
        b = unsigned(v[e])
        if w[e] < lightest[a]:
            lightest[a] = w[e]
        if w[e] < lightest[b]:
            lightest[b] = w[e]
    scale = 1.0 - threshold
    chosen = filled(np.empty(n_nodes, dtype=np.int64), np.int64(-1))
    for e in range(n_edges):
        sw = scale * w[e]
        for a in (unsigned(u[e]), unsigned(v[e])):
            if sw <= lightest[a]:
                c = chosen[a]
                # Priorities are computed only for ties (none on tie-free data).
                if c < 0 or _precedes(_tie_key(key, u[e], v[e]), edge_priority(u[e], v[e]), e,
                                      _tie_key(key, u[c], v[c]), edge_priority(u[c], v[c]), c):
                    chosen[a] = e
    keep = np.empty(n_edges, dtype=np.bool_)
    for e in range(n_edges):
        by_u = chosen[unsigned(u[e])] == e
        by_v = chosen[unsigned(v[e])] == e
        # Weight 0: identical signals, and identity is transitive, so a
        # plateau of them merges whole at no cost.
        keep[e] = w[e] == 0.0 or ((by_u and by_v) if mutual else (by_u or by_v))
    return keep


@njit(cache=True, inline="always", no_cpython_wrapper=True, no_cfunc_wrapper=True)
def find_root(parent, a):
    """The root of a's tree in the union-find forest ``parent``, halving
    the path on the way. Inlined where it is called (numba's
    ``inline="always"``): a call passing ``parent`` took and released a
    reference to it, two atomic operations that cost more than the search
    (Ward's greedy order calls it for every adjacency slot it reads).
    Indexed through ``unsigned``; ``a`` is read as a signed integer (an
    unsigned one would make numba type it as a float)."""
    a = np.int64(a)
    ua = unsigned(a)
    while parent[ua] != a:
        up = unsigned(parent[ua])
        parent[ua] = parent[up]
        a = parent[ua]
        ua = unsigned(a)
    return a


@inner
def _first_appearance_labels(parent):
    """Component labels numbered by the smallest node of each component."""
    n = parent.shape[0]
    labels = np.empty(n, dtype=np.int64)
    root_label = filled(np.empty(n, dtype=np.int64), np.int64(-1))
    n_labels = 0
    for a in range(n):
        r = find_root(parent, a)
        if root_label[r] < 0:
            root_label[r] = n_labels
            n_labels += 1
        labels[a] = root_label[r]
    return labels, n_labels


@inner_leaf
def union_roots(parent, a, b):
    """Join the sets of a and b; return False when they were already one."""
    ra = find_root(parent, a)
    rb = find_root(parent, b)
    if ra == rb:
        return False
    if ra < rb:
        parent[rb] = ra
    else:
        parent[ra] = rb
    return True


@njit(cache=True)
def connected_components(n_nodes, u, v, keep):
    """Labels (first-appearance order) and count of the components of the
    graph made of the edges with ``keep[e]``."""
    parent = int_range(n_nodes)
    for e in range(u.shape[0]):
        if keep[e]:
            union_roots(parent, u[e], v[e])
    return _first_appearance_labels(parent)


@njit(cache=True)
def union_in_order(n_nodes, u, v, edges, n_clusters):
    """Merge along ``edges`` (indices into u, v), in that order, until
    exactly ``n_clusters`` components remain (or the edges run out).

    Edges that would close a cycle are skipped, so every accepted edge
    removes one component. Returns first-appearance labels and their count.
    """
    parent = int_range(n_nodes)
    n_left = n_nodes
    for k in range(edges.shape[0]):
        if n_left <= n_clusters:
            break
        e = edges[k]
        if union_roots(parent, u[e], v[e]):
            n_left -= 1
    return _first_appearance_labels(parent)


@njit(cache=True)
def tree_children(n_nodes, first, second):
    """scikit-learn's ``children_`` of a sequence of binary merges of
    features (merge i joins the clusters of ``first[i]`` and ``second[i]``,
    which must be apart): leaves are 0..n_nodes-1, merge i makes node
    n_nodes + i. Returns children (smaller node first) and each new node's
    number of leaves."""
    parent = int_range(n_nodes)
    node = int_range(n_nodes)
    size = filled(np.empty(n_nodes, dtype=np.int64), np.int64(1))
    n_merges = first.shape[0]
    children = np.empty((n_merges, 2), dtype=np.int64)
    counts = np.empty(n_merges, dtype=np.int64)
    for i in range(n_merges):
        ra = find_root(parent, first[i])
        rb = find_root(parent, second[i])
        a, b = node[ra], node[rb]
        children[i, 0] = a if a < b else b
        children[i, 1] = b if a < b else a
        total = size[ra] + size[rb]
        counts[i] = total
        union_roots(parent, ra, rb)
        root = find_root(parent, ra)
        node[root] = n_nodes + i
        size[root] = total
    return children, counts


@njit(cache=True)
def strictly_increasing(heights):
    """``heights`` (non-decreasing) made strictly increasing: each value not
    above the previous one becomes the next float above it."""
    out = heights.copy()
    for i in range(1, out.shape[0]):
        if out[i] <= out[i - 1]:
            out[i] = np.nextafter(out[i - 1], np.inf)
    return out


#: Bits of the key :func:`order_by_height` sorts by in each pass: 2,048
#: buckets a pass, whose write positions stay in cache (16 bits, 65,536
#: buckets: 1.3x the time).
_DIGIT_BITS = 11

#: Below this many keys :func:`order_by_height` sorts them by a stable
#: merge sort instead: each radix pass clears and sums its 2,048 counts
#: whatever n, about 15 us for the 6 passes, the most of the exchange's
#: greedy order on a few clusters (digits: 4 clusters, one merge).
_FEW_KEYS = 512


@njit(cache=True)
def order_by_height(heights):
    """The stable order of ``heights`` (finite and >= 0: merge heights),
    what ``np.argsort(heights, kind="stable")`` returns: a least-significant
    digit radix sort of their bit patterns (those of non-negative floats
    increase with the floats; -0.0 is read as 0.0), 11 bits a pass, a pass
    skipped when every key has the same digit there. Linear: numpy's
    stable sort of floats is a merge sort, n log n (used below
    :data:`_FEW_KEYS` keys)."""
    n = heights.shape[0]
    # + 0.0: -0.0 becomes 0.0, which it equals.
    keys = (heights + 0.0).view(np.uint64)
    if n < _FEW_KEYS:
        # The same order (both stable), in O(n log n) of a few keys.
        return np.argsort(keys, kind="mergesort")
    n_digits = 1 << _DIGIT_BITS
    n_passes = (64 + _DIGIT_BITS - 1) // _DIGIT_BITS
    mask = np.uint64(n_digits - 1)
    # Every pass's counts in one read of the keys.
    count = np.zeros((n_passes, n_digits + 1), dtype=np.int64)
    for i in range(n):
        k = keys[i]
        for p in range(n_passes):
            count[p, np.int64((k >> np.uint64(p * _DIGIT_BITS)) & mask) + 1] += 1
    order = int_range(n)
    other = np.empty(n, dtype=np.int64)
    sorted_keys = keys.copy()
    other_keys = np.empty(n, dtype=np.uint64)
    for p in range(n_passes):
        row = count[p]
        if row.max() == n:
            continue
        for d in range(n_digits):
            row[d + 1] += row[d]
        s = np.uint64(p * _DIGIT_BITS)
        for i in range(n):
            k = sorted_keys[i]
            d = np.int64((k >> s) & mask)
            f = row[d]
            other[f] = order[i]
            other_keys[f] = k
            row[d] = f + 1
        order, other = other, order
        sorted_keys, other_keys = other_keys, sorted_keys
    return order


@njit(cache=True)
def edges_in_cost_order(costs, u, v):
    """The edges' order by (cost, u, v): a stable sort of the costs (a
    radix sort, linear) of the edges in (u, v) order, which they are given
    in (else sorted so first, by two more stable sorts)."""
    in_order = True
    for e in range(1, u.shape[0]):
        if u[e - 1] > u[e] or (u[e - 1] == u[e] and v[e - 1] >= v[e]):
            in_order = False
            break
    if in_order:
        return order_by_height(costs)
    by_v = order_by_height(v.astype(np.float64))
    by_uv = by_v[order_by_height(u[by_v].astype(np.float64))]
    return by_uv[order_by_height(costs[by_uv])]


#: Bits of a cost's bit pattern below the prefix by which
#: :func:`cheapest_edges_in_cost_order` takes the cheapest edges: the
#: prefix is 22 bits (the sign, the exponent and 10 bits of the
#: mantissa), two counting passes of 11 bits.
_PREFIX_SHIFT = 42


@njit(cache=True)
def cheapest_edges_in_cost_order(costs, u, v, count):
    """The start of :func:`edges_in_cost_order`'s order: the edges whose
    costs' bit patterns begin as that of the ``count``-th lowest cost, or
    lower (its first 22 bits: a cost within about 1/1000 of it), in that
    order; and the largest cost such a bit pattern holds, ``bound``:
    :func:`edges_above` gives every other edge. Two counting passes over
    the costs' first two 11-bit digits (linear, whatever the costs), then
    the sort of those edges alone. ``count`` in 1..n_edges; costs finite
    and >= 0."""
    keys = (costs + 0.0).view(np.uint64)
    n_digits = np.uint64(1 << _DIGIT_BITS)
    high = np.uint64(_PREFIX_SHIFT + _DIGIT_BITS)
    low = np.uint64(_PREFIX_SHIFT)
    # Filled in loops (see .compiling: each numpy fill compiles a function
    # of its own, at a first "ward" fit).
    counts = filled(np.empty(1 << _DIGIT_BITS, dtype=np.int64), np.int64(0))
    for i in range(keys.shape[0]):
        counts[np.int64(keys[i] >> high)] += 1
    running = 0
    first = 0
    while running + counts[first] < count:
        running += counts[first]
        first += 1
    filled(counts, np.int64(0))
    for i in range(keys.shape[0]):
        if np.int64(keys[i] >> high) == first:
            counts[np.int64((keys[i] >> low) & (n_digits - np.uint64(1)))] += 1
    second = 0
    while running + counts[second] < count:
        running += counts[second]
        second += 1
    prefix = np.uint64(first) * n_digits + np.uint64(second)
    bound = np.empty(1, dtype=np.uint64)
    bound[0] = ((prefix + np.uint64(1)) << low) - np.uint64(1)
    chosen = np.flatnonzero(keys <= bound[0])
    return (chosen[edges_in_cost_order(costs[chosen], u[chosen], v[chosen])],
            bound.view(np.float64)[0])


@inner
def edges_above(costs, bound):
    """The edges (indices, increasing) that
    :func:`cheapest_edges_in_cost_order` left out, given its ``bound``:
    those whose cost's bit pattern is above the bound's (the same test,
    so that the two together hold every edge, whatever the costs)."""
    pattern = np.empty(1)
    pattern[0] = bound
    limit = pattern.view(np.uint64)[0]
    return np.flatnonzero((costs + 0.0).view(np.uint64) > limit)


@njit(cache=True)
def nodes_in_edge_order(order, u, v, n):
    """The n nodes in the order the edges ``order`` first name them (an
    edge's u before its v), then those no edge names, in increasing order."""
    seen = np.zeros(n, dtype=np.bool_)
    nodes = np.empty(n, dtype=np.int64)
    count = 0
    for i in range(order.shape[0]):
        e = order[i]
        for x in (u[e], v[e]):
            if not seen[x]:
                seen[x] = True
                nodes[count] = x
                count += 1
    for x in range(n):
        if not seen[x]:
            nodes[count] = x
            count += 1
    return nodes
