"""Numba kernels: pure functions over arrays, no Python objects inside.

Every parallel loop here gives each output element to exactly one thread and
sums in a fixed order, so results are bit-identical whatever the thread
count. No ``fastmath``: reassociating the sums would change tie decisions.
"""

import numpy as np
from numba import njit, prange

#: Samples are summed in consecutive blocks of this many samples, from
#: sample 0; each block's partial sum runs over its samples in order, from
#: zero. The partials are then added along a fixed binary tree over the block
#: index (see :func:`_push_partial`), the same whatever the memory layout,
#: the thread count or the way the samples are split into chunks: a chunked
#: (Dask) pass whose chunks start at multiples of this size rebuilds exactly
#: the same float64 weights from the sums of whole subtrees
#: (``fastrena._chunked``).
SAMPLE_BLOCK = 64

#: Edges handled by one parallel task in the sample-major weight kernel.
_EDGE_CHUNK = 4096

#: Rows of X reduced together by one parallel task. Sample-major X: four
#: rows give four independent chains of adds into the accumulator, which
#: hides the store-to-load latency of consecutive same-cluster features.
#: Feature-major X: eight float64 rows of one feature share a cache line.
ROWS_SAMPLE_MAJOR = 4
ROWS_FEATURE_MAJOR = 8


@njit(cache=True)
def tree_levels(n_samples):
    """Slots of the binary counter that adds the block partials of
    ``n_samples`` samples: the bit length of the number of blocks."""
    n_blocks = (n_samples + SAMPLE_BLOCK - 1) // SAMPLE_BLOCK
    levels = 0
    while n_blocks > 0:
        levels += 1
        n_blocks >>= 1
    return max(levels, 1)


@njit(cache=True)
def _push_partial(slots, block, value):
    """Add the partial of block number ``block`` to a binary counter.

    ``slots[j]`` holds, when bit j of the number of blocks pushed so far is
    set, the sum of the aligned run of 2**j blocks before the later slots'
    runs. Pushing block b merges it with the runs it completes, so every
    stored value is the sum of an aligned dyadic run of blocks, computed as
    (left half) + (right half). The total, :func:`_counter_total`, is then
    the binary tree sum over the blocks padded with zeros to a power of two.
    """
    j = 0
    while (block >> j) & 1:
        value = slots[j] + value
        j += 1
    slots[j] = value


@njit(cache=True)
def _counter_total(slots, n_blocks):
    """The tree sum held by a binary counter after ``n_blocks`` pushes:
    its runs added from the smallest (rightmost) to the largest."""
    total = 0.0
    first = True
    for j in range(slots.shape[0]):
        if (n_blocks >> j) & 1:
            if first:
                total = slots[j]
                first = False
            else:
                total = slots[j] + total
    return total


@njit(cache=True, parallel=True)
def edge_weights_sample_major(X, u, v):
    """Squared distances along edges for X of shape (n_samples, n_nodes).

    Suited to C-ordered X. Blocks of samples are the outer loop so that the
    rows of one block stay in cache while the threads sweep the edges (a
    node's far neighbours, a slice away, are reused from cache rather than
    read again from memory); each task gathers the ends of a contiguous run
    of edges, whose nodes sit close together. Block partials go into one
    binary counter per edge (see :data:`SAMPLE_BLOCK`).
    """
    n_samples = X.shape[0]
    n_edges = u.shape[0]
    n_chunks = (n_edges + _EDGE_CHUNK - 1) // _EDGE_CHUNK
    slots = np.zeros((n_edges, tree_levels(n_samples)), dtype=np.float64)
    block = 0
    for b0 in range(0, n_samples, SAMPLE_BLOCK):
        b1 = min(b0 + SAMPLE_BLOCK, n_samples)
        for c in prange(n_chunks):
            e0 = c * _EDGE_CHUNK
            m = min(e0 + _EDGE_CHUNK, n_edges) - e0
            part = np.zeros(m, dtype=np.float64)
            s = b0
            # Four rows per sweep: the edge ends and the partial sum are
            # loaded once for four samples; the adds into ``p`` stay in
            # sample order, so the bits equal the one-row loop's.
            while s + 4 <= b1:
                for k in range(m):
                    a = u[e0 + k]
                    b = v[e0 + k]
                    d0 = np.float64(X[s, a]) - np.float64(X[s, b])
                    d1 = np.float64(X[s + 1, a]) - np.float64(X[s + 1, b])
                    d2 = np.float64(X[s + 2, a]) - np.float64(X[s + 2, b])
                    d3 = np.float64(X[s + 3, a]) - np.float64(X[s + 3, b])
                    p = part[k]
                    p += d0 * d0
                    p += d1 * d1
                    p += d2 * d2
                    p += d3 * d3
                    part[k] = p
                s += 4
            while s < b1:
                for k in range(m):
                    d = np.float64(X[s, u[e0 + k]]) - np.float64(X[s, v[e0 + k]])
                    part[k] += d * d
                s += 1
            for k in range(m):
                _push_partial(slots[e0 + k], block, part[k])
        block += 1
    out = np.empty(n_edges, dtype=np.float64)
    for e in prange(n_edges):
        out[e] = _counter_total(slots[e], block)
    return out


@njit(cache=True)
def _edge_weight_feature_major(XT, a, b, slots):
    n_samples = XT.shape[1]
    block = 0
    for b0 in range(0, n_samples, SAMPLE_BLOCK):
        part = 0.0
        for s in range(b0, min(b0 + SAMPLE_BLOCK, n_samples)):
            d = np.float64(XT[a, s]) - np.float64(XT[b, s])
            part += d * d
        _push_partial(slots, block, part)
        block += 1
    return _counter_total(slots, block)


#: Groups of four edges handled by one parallel task of the feature-major
#: weight kernel (each task allocates its binary counters once).
_GROUPS_PER_TASK = 1024


@njit(cache=True, parallel=True)
def edge_weights_feature_major(XT, u, v):
    """Squared distances along edges for XT of shape (n_nodes, n_samples).

    Same summation order as :func:`edge_weights_sample_major` (hence the same
    bits). Each node's samples are contiguous; four edges advance together
    so that their four chains of dependent adds overlap in the pipeline.
    """
    n_samples = XT.shape[1]
    n_edges = u.shape[0]
    levels = tree_levels(n_samples)
    out = np.empty(n_edges, dtype=np.float64)
    n_groups = n_edges // 4
    n_tasks = (n_groups + _GROUPS_PER_TASK - 1) // _GROUPS_PER_TASK
    for t in prange(n_tasks):
        slots = np.zeros((4, levels), dtype=np.float64)
        for g in range(t * _GROUPS_PER_TASK, min((t + 1) * _GROUPS_PER_TASK, n_groups)):
            e = 4 * g
            a0, a1, a2, a3 = u[e], u[e + 1], u[e + 2], u[e + 3]
            c0, c1, c2, c3 = v[e], v[e + 1], v[e + 2], v[e + 3]
            block = 0
            for b0 in range(0, n_samples, SAMPLE_BLOCK):
                p0 = p1 = p2 = p3 = 0.0
                for s in range(b0, min(b0 + SAMPLE_BLOCK, n_samples)):
                    d0 = np.float64(XT[a0, s]) - np.float64(XT[c0, s])
                    d1 = np.float64(XT[a1, s]) - np.float64(XT[c1, s])
                    d2 = np.float64(XT[a2, s]) - np.float64(XT[c2, s])
                    d3 = np.float64(XT[a3, s]) - np.float64(XT[c3, s])
                    p0 += d0 * d0
                    p1 += d1 * d1
                    p2 += d2 * d2
                    p3 += d3 * d3
                _push_partial(slots[0], block, p0)
                _push_partial(slots[1], block, p1)
                _push_partial(slots[2], block, p2)
                _push_partial(slots[3], block, p3)
                block += 1
            out[e] = _counter_total(slots[0], block)
            out[e + 1] = _counter_total(slots[1], block)
            out[e + 2] = _counter_total(slots[2], block)
            out[e + 3] = _counter_total(slots[3], block)
    slots = np.zeros(levels, dtype=np.float64)
    for e in range(4 * n_groups, n_edges):
        out[e] = _edge_weight_feature_major(XT, u[e], v[e], slots)
    return out


@njit(cache=True)
def members_by_cluster(labels, n_clusters):
    """(order, start): features of cluster c are order[start[c]:start[c+1]],
    in increasing order (a stable counting sort of ``labels``)."""
    start = np.zeros(n_clusters + 1, dtype=np.int64)
    for i in range(labels.shape[0]):
        start[labels[i] + 1] += 1
    for c in range(n_clusters):
        start[c + 1] += start[c]
    fill = start[:-1].copy()
    order = np.empty(labels.shape[0], dtype=np.int64)
    for i in range(labels.shape[0]):
        order[fill[labels[i]]] = i
        fill[labels[i]] += 1
    return order, start


@njit(cache=True, inline="always")
def _cluster_mean_into(XT, order, start, c, divisor, weights, acc, out_row):
    """``out_row = sum of XT[i] (times weights[i]) over the members i of
    cluster c / divisor``: members added in increasing order in float64,
    from zero. With ``weights``, a lone member's row is copied exactly
    (``w * x / w`` can be off by an ulp), so its edge weights can be
    carried over (see :func:`carry_weights`). The whole sum is taken before
    ``out_row`` is written, which may be one of the members' rows. Returns
    how many results are not finite."""
    n_samples = XT.shape[1]
    n_bad = 0
    if weights is not None and start[c + 1] - start[c] == 1:
        row = order[start[c]]
        for s in range(n_samples):
            x = XT[row, s]
            out_row[s] = x
            n_bad += (x - x) != 0
        return n_bad
    acc[:] = 0.0
    for k in range(start[c], start[c + 1]):
        row = order[k]
        if weights is None:
            for s in range(n_samples):
                acc[s] += XT[row, s]
        else:
            wr = weights[row]
            for s in range(n_samples):
                acc[s] += wr * XT[row, s]
    for s in range(n_samples):
        x = acc[s] / divisor
        out_row[s] = x
        n_bad += (x - x) != 0
    return n_bad


@njit(cache=True, parallel=True)
def cluster_means_feature_major(XT, order, start, divisors, outT, weights=None):
    """``outT[c, s] = sum of XT[i, s] over the members i of c / divisors[c]``,
    each term multiplied by ``weights[i]`` if given (see
    :func:`_cluster_mean_into`).

    Feature-major twin of :func:`cluster_sums_divided_into`: members are
    added in increasing feature order in float64, so the bits are the same;
    the adds run along contiguous sample rows and vectorise. Returns
    whether every result is finite. (``weights=None`` compiles without the
    multiply.)
    """
    n_clusters = divisors.shape[0]
    n_samples = XT.shape[1]
    n_tasks = (n_clusters + 255) // 256
    bad = np.zeros(n_tasks, dtype=np.bool_)
    for t in prange(n_tasks):
        acc = np.empty(n_samples, dtype=np.float64)
        n_bad = 0
        for c in range(256 * t, min(256 * (t + 1), n_clusters)):
            n_bad += _cluster_mean_into(XT, order, start, c, divisors[c], weights, acc,
                                        outT[c])
        bad[t] = n_bad != 0
    return not bad.any()


@njit(cache=True)
def cluster_means_in_place(XT, order, start, divisors, weights):
    """:func:`cluster_means_feature_major` written over ``XT`` itself: row
    c of the result replaces row c, for c = 0, 1, ... (same bits).

    Safe because clusters are numbered in order of first appearance: the
    members of cluster c are rows c or later, and only rows before c have
    been overwritten when c is computed. Saves allocating (and the page
    faults of first touching) a new array at every round. Serial: row c
    must be written after the rows it may read. Returns whether every
    result is finite.
    """
    acc = np.empty(XT.shape[1], dtype=np.float64)
    n_bad = 0
    for c in range(divisors.shape[0]):
        n_bad += _cluster_mean_into(XT, order, start, c, divisors[c], weights, acc, XT[c])
    return n_bad == 0


@njit(cache=True, parallel=True)
def cluster_sums_divided_into(X, labels, divisors, out, rows_per_task, weights=None):
    """``out[s, c] = (sum of X[s, i] over i with labels[i] == c) / divisors[c]``,
    each term multiplied by ``weights[i]`` if given.

    With ``divisors`` the cluster sizes this is the cluster mean; with their
    square roots, the l2-preserving scaled mean. Sums run in float64 in
    increasing feature order. Each task owns a block of rows. Returns
    whether every result is finite (NaN or infinity in X always makes its
    cluster's result non-finite, so True proves X finite).
    """
    n_samples, n_features = X.shape
    n_clusters = divisors.shape[0]
    n_blocks = (n_samples + rows_per_task - 1) // rows_per_task
    bad = np.zeros(n_blocks, dtype=np.bool_)
    for blk in prange(n_blocks):
        s0 = blk * rows_per_task
        r = min(rows_per_task, n_samples - s0)
        # Cluster-major accumulator: one feature's adds for the block's
        # rows land in one cache line, and labels mostly increase along
        # the features, so the accumulator is walked nearly in order.
        acc = np.zeros((n_clusters, r), dtype=np.float64)
        for i in range(n_features):
            c = labels[i]
            if weights is None:
                for j in range(r):
                    acc[c, j] += X[s0 + j, i]
            else:
                wi = weights[i]
                for j in range(r):
                    acc[c, j] += wi * X[s0 + j, i]
        # Cluster-outer writes: contiguous when ``out`` is feature-major.
        n_bad = 0
        for c in range(n_clusters):
            for j in range(r):
                x = acc[c, j] / divisors[c]
                out[s0 + j, c] = x
                n_bad += (x - x) != 0
        bad[blk] = n_bad != 0
    return not bad.any()


#: Multipliers of :func:`edge_priority` (SplitMix64's finaliser constants).
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@njit(cache=True)
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


@njit(cache=True)
def _node_noise(a):
    """A pseudo-random number in [0, 1) for node a (see :func:`edge_priority`)."""
    return float(edge_priority(a, 0) >> np.uint64(11)) * 2.0 ** -53


@njit(cache=True)
def _tie_key(key, a, b):
    """First-order change of the weight of edge (a, b) when each node's
    ``key`` value moves by an infinitesimal :func:`_node_noise`: lower is
    lighter; 0 when ``key`` is empty."""
    if key.shape[0] == 0:
        return 0.0
    return (_node_noise(a) - _node_noise(b)) * (key[a] - key[b])


@njit(cache=True)
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
    lightest = np.full(n_nodes, np.inf)
    n_edges = u.shape[0]
    for e in range(n_edges):
        if w[e] < lightest[u[e]]:
            lightest[u[e]] = w[e]
        if w[e] < lightest[v[e]]:
            lightest[v[e]] = w[e]
    scale = 1.0 - threshold
    chosen = np.full(n_nodes, -1, dtype=np.int64)
    for e in range(n_edges):
        sw = scale * w[e]
        for a in (u[e], v[e]):
            if sw <= lightest[a]:
                c = chosen[a]
                # Priorities are computed only for ties (none on tie-free data).
                if c < 0 or _precedes(_tie_key(key, u[e], v[e]), edge_priority(u[e], v[e]), e,
                                      _tie_key(key, u[c], v[c]), edge_priority(u[c], v[c]), c):
                    chosen[a] = e
    keep = np.empty(n_edges, dtype=np.bool_)
    for e in range(n_edges):
        by_u = chosen[u[e]] == e
        by_v = chosen[v[e]] == e
        # Weight 0: identical signals, and identity is transitive, so a
        # plateau of them merges whole at no cost.
        keep[e] = w[e] == 0.0 or ((by_u and by_v) if mutual else (by_u or by_v))
    return keep


@njit(cache=True)
def _find(parent, a):
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


@njit(cache=True)
def _first_appearance_labels(parent):
    """Component labels numbered by the smallest node of each component."""
    n = parent.shape[0]
    labels = np.empty(n, dtype=np.int64)
    root_label = np.full(n, -1, dtype=np.int64)
    n_labels = 0
    for a in range(n):
        r = _find(parent, a)
        if root_label[r] < 0:
            root_label[r] = n_labels
            n_labels += 1
        labels[a] = root_label[r]
    return labels, n_labels


@njit(cache=True)
def _union(parent, a, b):
    """Join the sets of a and b; return False when they were already one."""
    ra = _find(parent, a)
    rb = _find(parent, b)
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
    parent = np.arange(n_nodes)
    for e in range(u.shape[0]):
        if keep[e]:
            _union(parent, u[e], v[e])
    return _first_appearance_labels(parent)


@njit(cache=True)
def union_in_order(n_nodes, u, v, edges, n_clusters):
    """Merge along ``edges`` (indices into u, v), in that order, until
    exactly ``n_clusters`` components remain (or the edges run out).

    Edges that would close a cycle are skipped, so every accepted edge
    removes one component. Returns first-appearance labels and their count.
    """
    parent = np.arange(n_nodes)
    n_left = n_nodes
    for k in range(edges.shape[0]):
        if n_left <= n_clusters:
            break
        e = edges[k]
        if _union(parent, u[e], v[e]):
            n_left -= 1
    return _first_appearance_labels(parent)


@njit(cache=True)
def record_merges(u, v, keep, step, n_new, cost, rep, height):
    """The merges of one level, as pairs of features, with their heights.

    ``rep[a]`` is a feature of node a, ``height[a]`` the largest height of
    the merges that made it. Each kept edge (a, b) that joins two parts
    (in edge order) is one binary merge, recorded as ``(rep[a], rep[b])``
    with height ``max(cost[e], height[a], height[b])``:
    never below the merges inside either side, so a cut by height takes a
    merge only after every merge beneath it. Returns the merges' two
    features and heights, and ``rep`` and ``height`` of the new nodes.
    """
    n_merges = step.shape[0] - n_new
    first = np.empty(n_merges, dtype=np.int64)
    second = np.empty(n_merges, dtype=np.int64)
    heights = np.empty(n_merges, dtype=np.float64)
    new_rep = np.full(n_new, -1, dtype=np.int64)
    new_height = np.zeros(n_new, dtype=np.float64)
    for a in range(step.shape[0]):
        c = step[a]
        if new_rep[c] < 0:
            new_rep[c] = rep[a]
        if height[a] > new_height[c]:
            new_height[c] = height[a]
    # Kept edges of weight 0 may close cycles: only the edges that join
    # two parts are merges.
    parent = np.arange(step.shape[0])
    k = 0
    for e in range(u.shape[0]):
        if keep[e] and _union(parent, u[e], v[e]):
            a = u[e]
            b = v[e]
            h = max(cost[e], max(height[a], height[b]))
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
    count = np.zeros(n_new, dtype=np.int64)
    member = np.empty(n_new, dtype=np.int64)
    for a in range(n_old):
        c = step[a]
        count[c] += 1
        member[c] = a
    row_start = np.zeros(n_old + 1, dtype=np.int64)
    for e in range(u.shape[0]):
        row_start[u[e] + 1] += 1
    for a in range(n_old):
        row_start[a + 1] += row_start[a]
    out = np.zeros(new_u.shape[0], dtype=np.float64)
    todo = np.empty(new_u.shape[0], dtype=np.int64)
    n_todo = 0
    for e in range(new_u.shape[0]):
        a = new_u[e]
        b = new_v[e]
        if count[a] == 1 and count[b] == 1:
            lo = min(member[a], member[b])
            hi = max(member[a], member[b])
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


@njit(cache=True)
def _heap_before(heap, i, j):
    """Whether heap entry i goes strictly before entry j: by key, then a, b."""
    if heap[i, _KEY] != heap[j, _KEY]:
        return heap[i, _KEY] < heap[j, _KEY]
    if heap[i, _A] != heap[j, _A]:
        return heap[i, _A] < heap[j, _A]
    return heap[i, _B] < heap[j, _B]


@njit(cache=True)
def _goes_first(key, a, b, heap):
    """Whether an entry (key, a, b) would go before the heap's top."""
    if key != heap[0, _KEY]:
        return key < heap[0, _KEY]
    if a != heap[0, _A]:
        return a < heap[0, _A]
    return b < heap[0, _B]


@njit(cache=True)
def _heap_swap(heap, i, j):
    for k in range(5):
        heap[i, k], heap[j, k] = heap[j, k], heap[i, k]


@njit(cache=True)
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


@njit(cache=True)
def _heap_pop(heap, size):
    """Move the smallest entry to index ``size - 1``; returns the new size."""
    last = size - 1
    _heap_swap(heap, 0, last)
    _sift_down(heap, 0, last)
    return last


@njit(cache=True)
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


@njit(cache=True)
def _ward_cost(M, sizes, a, b):
    d = 0.0
    for s in range(M.shape[1]):
        x = M[a, s] - M[b, s]
        d += x * x
    return d * (sizes[a] * sizes[b] / (sizes[a] + sizes[b]))


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
    n_merges = 0
    n_below = 0
    visits = 0
    lazy = np.zeros(n, dtype=np.bool_)
    while size > 0:
        size = _heap_pop(heap, size)
        cost = heap[size, _KEY]
        a = np.int64(heap[size, _A])
        b = np.int64(heap[size, _B])
        while n_below < below.shape[0] and below[n_below] <= cost:
            n_below += 1
        if n_below + n_merges >= n_wanted:
            break
        if visits <= budget:
            if version[a] != heap[size, _VA] or version[b] != heap[size, _VB]:
                # A stale cost: one end has merged since. A fresh entry
                # was pushed then, unless that merge was a big cluster's
                # (lazy): then re-cost now, and back in line.
                a = _find(parent, a)
                b = _find(parent, b)
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
                    break
        else:
            # Out of budget: merge along the remaining candidates as they
            # come, whatever their ends have become.
            a = _find(parent, a)
            b = _find(parent, b)
            if a == b:
                continue
        if a > b:
            a, b = b, a
        h = max(cost, max(height[a], height[b]))
        first[n_merges] = rep[a]
        second[n_merges] = rep[b]
        heights[n_merges] = h
        n_merges += 1
        parent[b] = a
        height[a] = h
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
                c = _find(parent, pool[k])
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
    return first[:n_merges].copy(), second[:n_merges].copy(), heights[:n_merges].copy()


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
    # The lo end of every edge between two new nodes, grouped by hi.
    los = np.empty(n_between, dtype=np.int64)
    fill = start_hi[:-1].copy()
    start_lo = np.zeros(n_new + 1, dtype=np.int64)
    for e in range(n_edges):
        a = labels[u[e]]
        b = labels[v[e]]
        if a != b:
            lo = min(a, b)
            hi = max(a, b)
            los[fill[hi]] = lo
            fill[hi] += 1
            start_lo[lo + 1] += 1
    for i in range(n_new):
        start_lo[i + 1] += start_lo[i]
    # Grouped by lo, each group in increasing hi, duplicates left out.
    his = np.empty(n_between, dtype=np.int64)
    fill = start_lo[:-1].copy()
    n_out = 0
    for hi in range(n_new):
        for k in range(start_hi[hi], start_hi[hi + 1]):
            lo = los[k]
            f = fill[lo]
            if f == start_lo[lo] or his[f - 1] != hi:
                his[f] = hi
                fill[lo] = f + 1
                n_out += 1
    new_u = np.empty(n_out, dtype=np.int64)
    new_v = np.empty(n_out, dtype=np.int64)
    k = 0
    for lo in range(n_new):
        for i in range(start_lo[lo], fill[lo]):
            new_u[k] = lo
            new_v[k] = his[i]
            k += 1
    return new_u, new_v


@njit(cache=True, parallel=True)
def expand_clusters(X_red, labels, out):
    """``out[s, i] = X_red[s, labels[i]]``."""
    n_samples, n_features = out.shape
    for s in prange(n_samples):
        for i in range(n_features):
            out[s, i] = X_red[s, labels[i]]


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


# Python code gets the kernels above wrapped so that a Ctrl-C arriving while
# one runs raises its KeyboardInterrupt after the call, not inside numba's
# boxing of the returned arrays (a SystemError or a segmentation fault): see
# fastrena._interrupt. Jitted code calling a kernel still gets the dispatcher.
from ._interrupt import guard_module  # noqa: E402

guard_module(__name__)
