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


@njit(cache=True, parallel=True)
def cluster_means_feature_major(XT, order, start, divisors, outT, weights=None):
    """``outT[c, s] = sum of XT[i, s] over the members i of c / divisors[c]``,
    each term multiplied by ``weights[i]`` if given.

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
                x = acc[s] / divisors[c]
                outT[c, s] = x
                n_bad += (x - x) != 0
        bad[t] = n_bad != 0
    return not bad.any()


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


@njit(cache=True)
def nearest_neighbor_edges(n_nodes, u, v, w, threshold, mutual=False):
    """Edges that are, for one of their ends (both ends if ``mutual``),
    within ``threshold`` of its lightest edge:
    ``(1 - t) * w(a, b) <= min_b' w(a, b')``."""
    lightest = np.full(n_nodes, np.inf)
    n_edges = u.shape[0]
    for e in range(n_edges):
        if w[e] < lightest[u[e]]:
            lightest[u[e]] = w[e]
        if w[e] < lightest[v[e]]:
            lightest[v[e]] = w[e]
    scale = 1.0 - threshold
    keep = np.empty(n_edges, dtype=np.bool_)
    for e in range(n_edges):
        sw = scale * w[e]
        if mutual:
            keep[e] = sw <= lightest[u[e]] and sw <= lightest[v[e]]
        else:
            keep[e] = sw <= lightest[u[e]] or sw <= lightest[v[e]]
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
def reduce_edges(u, v, labels, n_new):
    """Edges between the new nodes: ``(labels[u], labels[v])`` without self
    loops or duplicates, sorted by ``(lo, hi)``. Linear time: a counting
    sort on ``lo`` then a small sort inside each bucket."""
    n_edges = u.shape[0]
    counts = np.zeros(n_new + 1, dtype=np.int64)
    for e in range(n_edges):
        a = labels[u[e]]
        b = labels[v[e]]
        if a != b:
            counts[min(a, b) + 1] += 1
    for i in range(n_new):
        counts[i + 1] += counts[i]
    his = np.empty(counts[n_new], dtype=np.int64)
    fill = counts[:-1].copy()
    for e in range(n_edges):
        a = labels[u[e]]
        b = labels[v[e]]
        if a != b:
            lo = min(a, b)
            his[fill[lo]] = max(a, b)
            fill[lo] += 1
    new_u = np.empty(his.shape[0], dtype=np.int64)
    new_v = np.empty(his.shape[0], dtype=np.int64)
    n_out = 0
    for lo in range(n_new):
        b0 = counts[lo]
        b1 = counts[lo + 1]
        # Buckets hold a node's few forward neighbours: an insertion sort
        # in place beats allocating a sorted copy per bucket.
        for i in range(b0 + 1, b1):
            x = his[i]
            j = i - 1
            while j >= b0 and his[j] > x:
                his[j + 1] = his[j]
                j -= 1
            his[j + 1] = x
        prev = -1
        for i in range(b0, b1):
            hi = his[i]
            if hi != prev:
                new_u[n_out] = lo
                new_v[n_out] = hi
                n_out += 1
                prev = hi
    return new_u[:n_out].copy(), new_v[:n_out].copy()


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
