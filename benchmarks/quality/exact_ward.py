"""Exact Ward reference for graphs too large for scikit-learn's ``ward_tree``.

Greedy Ward agglomeration of the features on a graph, merge for merge as
scikit-learn's ``ward_tree`` with ``connectivity`` runs it (what
``FeatureAgglomeration(linkage="ward", connectivity=A)`` fits):

* a binary heap of (cost, a, b) with lazy deletion: an entry is skipped when
  either cluster has been merged since it was pushed; entries are ordered
  by cost, then a, then b (scikit-learn's heap of tuples), so equal costs
  are broken the same way;
* cluster ids as scikit-learn numbers them: features 0..N-1, the cluster
  made by merge m is N + m; an edge (i, j), i > j, is pushed as (cost, i,
  j), a new cluster k with each neighbour c as (cost, k, c);
* cost = n_a n_b / (n_a + n_b) * ||sum_a / n_a - sum_b / n_b||^2, on the
  clusters' true means (sums and sizes added up at each merge), computed
  in the same order of operations as scikit-learn's ``compute_ward_dist``;
* always the cheapest current pair of neighbouring clusters; after a merge
  the costs from the merged cluster to every one of its neighbours are
  recomputed and pushed (eager, no approximation; the worst case is
  quadratic).

So the merges, and the labels after N - K of them, are scikit-learn's up to
the rounding of the costs (same operations: the same bits in practice).
Unlike scikit-learn, a graph with more than one connected component is
refused (scikit-learn adds edges between the components).

    from exact_ward import ward_labels
    labels = ward_labels(X, A, n_clusters=K)   # X (n_samples, n_features)

``python benchmarks/quality/exact_ward.py`` checks it against scikit-learn
on small random graphs.
"""

import numpy as np
from numba import njit
from scipy import sparse
from scipy.sparse.csgraph import connected_components

#: part of the Ward cache's key (real_suite.WardCache): bump on any change
#: that could change the labels
VERSION = 1


@njit(cache=True)
def _before(c1, a1, b1, c2, a2, b2):
    """(c1, a1, b1) < (c2, a2, b2), lexicographic."""
    if c1 != c2:
        return c1 < c2
    if a1 != a2:
        return a1 < a2
    return b1 < b2


@njit(cache=True)
def _sift_down(hc, ha, hb, size, i):
    c, a, b = hc[i], ha[i], hb[i]
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        right = child + 1
        if right < size and _before(hc[right], ha[right], hb[right],
                                    hc[child], ha[child], hb[child]):
            child = right
        if not _before(hc[child], ha[child], hb[child], c, a, b):
            break
        hc[i], ha[i], hb[i] = hc[child], ha[child], hb[child]
        i = child
    hc[i], ha[i], hb[i] = c, a, b


@njit(cache=True)
def _sift_up(hc, ha, hb, i):
    c, a, b = hc[i], ha[i], hb[i]
    while i > 0:
        up = (i - 1) // 2
        if not _before(c, a, b, hc[up], ha[up], hb[up]):
            break
        hc[i], ha[i], hb[i] = hc[up], ha[up], hb[up]
        i = up
    hc[i], ha[i], hb[i] = c, a, b


@njit(cache=True)
def _heapify(hc, ha, hb, size):
    for i in range(size // 2 - 1, -1, -1):
        _sift_down(hc, ha, hb, size, i)


@njit(cache=True)
def _cost(counts, sums, a, b):
    """scikit-learn's compute_ward_dist for one pair, same operation order."""
    n = (counts[a] * counts[b]) / (counts[a] + counts[b])
    total = 0.0
    for j in range(sums.shape[1]):
        d = sums[a, j] / counts[a] - sums[b, j] / counts[b]
        total += d * d
    return total * n


@njit(cache=True)
def _find(parent, x):
    while parent[x] != x:
        parent[x] = parent[parent[x]]       # path halving: only roots matter
        x = parent[x]
    return x


@njit(cache=True)
def _ward(indptr, indices, values, n_merges):
    """``values``: (N, n_samples), one row per feature. Returns (first,
    second, cost) of the merges made (fewer than ``n_merges`` if the heap
    ran dry), the root of each feature after them, the heap pushes, and
    how often the neighbour pool was compacted and the heap pruned."""
    n = indptr.shape[0] - 1
    n_nodes = n + n_merges
    counts = np.zeros(n_nodes)
    counts[:n] = 1.0
    sums = np.zeros((n_nodes, values.shape[1]))
    sums[:n] = values
    parent = np.arange(n_nodes)
    alive = np.zeros(n_nodes, dtype=np.bool_)
    alive[:n] = True

    # neighbour lists (feature or cluster ids, resolved to roots when read)
    # in one pool; a merged cluster's list is its deduplicated neighbours.
    # The live lists never hold more than the graph's nnz entries in all.
    pool_cap = 2 * indices.shape[0] + 16
    pool = np.empty(pool_cap, dtype=np.int64)
    pool[:indices.shape[0]] = indices
    start = np.zeros(n_nodes, dtype=np.int64)
    length = np.zeros(n_nodes, dtype=np.int64)
    for i in range(n):
        start[i] = indptr[i]
        length[i] = indptr[i + 1] - indptr[i]
    used = indices.shape[0]

    n_edges = 0
    for i in range(n):
        for p in range(indptr[i], indptr[i + 1]):
            if indices[p] < i:
                n_edges += 1
    heap_cap = max(2 * n_edges, 1024)
    hc = np.empty(heap_cap)
    ha = np.empty(heap_cap, dtype=np.int64)
    hb = np.empty(heap_cap, dtype=np.int64)
    size = 0
    for i in range(n):
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            if j < i:
                hc[size] = _cost(counts, sums, i, j)
                ha[size] = i
                hb[size] = j
                size += 1
    _heapify(hc, ha, hb, size)
    pushes = size

    first = np.empty(n_merges, dtype=np.int64)
    second = np.empty(n_merges, dtype=np.int64)
    costs = np.empty(n_merges)
    seen = np.full(n_nodes, -1, dtype=np.int64)    # merge that last listed a root
    done = 0
    c, a, b = 0.0, 0, 0
    compactions = prunings = 0
    for m in range(n_merges):
        found = False
        while size > 0:
            c, a, b = hc[0], ha[0], hb[0]
            size -= 1
            if size > 0:
                hc[0], ha[0], hb[0] = hc[size], ha[size], hb[size]
                _sift_down(hc, ha, hb, size, 0)
            if alive[a] and alive[b]:
                found = True
                break
        if not found:
            break
        k = n + m
        first[m], second[m], costs[m] = a, b, c
        counts[k] = counts[a] + counts[b]
        for j in range(sums.shape[1]):
            sums[k, j] = sums[a, j] + sums[b, j]

        need = length[a] + length[b]
        if used + need > pool_cap:
            # compact the live lists (a's and b's included), growing if needed
            live = need
            for x in range(k):
                if alive[x] and x != a and x != b:
                    live += length[x]
            new_cap = pool_cap if 2 * live <= pool_cap else 2 * live
            new_pool = np.empty(new_cap, dtype=np.int64)
            at = 0
            for x in range(k):
                if alive[x]:
                    new_pool[at:at + length[x]] = pool[start[x]:start[x] + length[x]]
                    start[x] = at
                    at += length[x]
            pool, pool_cap, used = new_pool, new_cap, at
            compactions += 1

        alive[a] = False
        alive[b] = False
        alive[k] = True
        parent[a] = k
        parent[b] = k
        seen[k] = m                                 # never its own neighbour
        count = 0
        for src in (a, b):
            for p in range(start[src], start[src] + length[src]):
                r = _find(parent, pool[p])
                if seen[r] != m:
                    seen[r] = m
                    pool[used + count] = r
                    count += 1
        start[k] = used
        length[k] = count
        used += count
        length[a] = 0
        length[b] = 0

        if size + count > heap_cap:
            # drop the dead entries first; grow if still over half full
            kept = 0
            for e in range(size):
                if alive[ha[e]] and alive[hb[e]]:
                    hc[kept], ha[kept], hb[kept] = hc[e], ha[e], hb[e]
                    kept += 1
            size = kept
            _heapify(hc, ha, hb, size)
            prunings += 1
            if 2 * (size + count) > heap_cap:
                new_cap = 2 * (size + count)
                nc = np.empty(new_cap)
                na = np.empty(new_cap, dtype=np.int64)
                nb = np.empty(new_cap, dtype=np.int64)
                nc[:size] = hc[:size]
                na[:size] = ha[:size]
                nb[:size] = hb[:size]
                hc, ha, hb, heap_cap = nc, na, nb, new_cap
        for q in range(count):
            r = pool[start[k] + q]
            hc[size] = _cost(counts, sums, k, r)
            ha[size] = k
            hb[size] = r
            _sift_up(hc, ha, hb, size)
            size += 1
        pushes += count
        done += 1

    roots = np.empty(n, dtype=np.int64)
    for i in range(n):
        roots[i] = _find(parent, i)
    return first[:done], second[:done], costs[:done], roots, pushes, compactions, prunings


def graph(connectivity, n_features):
    """The symmetric CSR pattern scikit-learn uses (A + A.T; the diagonal
    is harmless: a cluster is never its own neighbour)."""
    A = sparse.csr_matrix(connectivity)
    if A.shape != (n_features, n_features):
        raise ValueError(f"connectivity is {A.shape}, expected ({n_features}, {n_features})")
    A = (A + A.T).tocsr()
    A.sort_indices()
    return A.indptr.astype(np.int64), A.indices.astype(np.int64)


def ward_tree(X, connectivity, n_clusters):
    """The first N - n_clusters merges of the features of ``X`` (n_samples,
    n_features): {"first", "second", "cost", "roots", "pushes", "compactions",
    "prunings"}, merge m making cluster N + m from ``first[m]`` (the newer)
    and ``second[m]`` (scikit-learn's ``children_`` order, pairs reversed;
    its distances are sqrt(2 cost))."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError("X must be (n_samples, n_features)")
    n_features = X.shape[1]
    if not 1 <= n_clusters <= n_features:
        raise ValueError(f"n_clusters={n_clusters} with {n_features} features")
    indptr, indices = graph(connectivity, n_features)
    n_components = connected_components(
        sparse.csr_matrix((np.ones(indices.shape[0]), indices, indptr),
                          shape=(n_features, n_features)), directed=False)[0]
    if n_components > 1:
        raise ValueError(f"the graph has {n_components} connected components (scikit-learn "
                         "would add edges between them; this reference does not)")
    first, second, cost, roots, pushes, compactions, prunings = _ward(
        indptr, indices, np.ascontiguousarray(X.T), n_features - n_clusters)
    if first.shape[0] != n_features - n_clusters:
        raise RuntimeError("the heap ran dry before the last merge")
    return {"first": first, "second": second, "cost": cost, "roots": roots,
            "pushes": int(pushes), "compactions": int(compactions), "prunings": int(prunings)}


def ward_labels(X, connectivity, n_clusters):
    """Labels 0..K-1 (in the order of the clusters' ids) of the clusters left
    after N - K merges: scikit-learn's
    ``FeatureAgglomeration(n_clusters=K, linkage="ward",
    connectivity=connectivity).fit(X).labels_`` as a partition."""
    roots = ward_tree(X, connectivity, n_clusters)["roots"]
    return np.unique(roots, return_inverse=True)[1].astype(np.int64)


def same_partition(labels, other):
    """True when two labelings make the same clusters (names aside)."""
    labels, other = np.asarray(labels), np.asarray(other)
    pairs = np.unique(np.stack([labels, other]), axis=1).shape[1]
    return pairs == np.unique(labels).shape[0] == np.unique(other).shape[0]


def _random_graph(rng, n, extra):
    """A path through a random permutation (connected) plus random edges."""
    order = rng.permutation(n)
    rows = list(order[:-1]) + list(rng.integers(0, n, extra))
    cols = list(order[1:]) + list(rng.integers(0, n, extra))
    A = sparse.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n)).tocsr()
    A = ((A + A.T) > 0).astype(np.float64)
    A.setdiag(0)
    A.eliminate_zeros()
    return A


def random_checks(n_graphs=12, seed=0):
    """Against scikit-learn on small random graphs, with continuous values,
    few levels (ties) and several samples. Per graph: the whole tree
    against ``sklearn.cluster.ward_tree`` (children equal? largest
    |sqrt(2 cost) - distance|), then per K the labels against
    ``FeatureAgglomeration``: rows of (n, edges, samples, levels, K, same
    partition?, |error difference| / error, tree equal?, distance gap)."""
    import warnings

    from sklearn.cluster import FeatureAgglomeration
    from sklearn.cluster import ward_tree as sklearn_ward_tree

    from real_suite import relative_error

    rng = np.random.default_rng(seed)
    rows = []
    for g in range(n_graphs):
        n = int(rng.integers(50, 3000))
        A = _random_graph(rng, n, int(rng.integers(0, 3 * n)))
        n_samples = int(rng.choice([1, 1, 3]))
        levels = int(rng.choice([0, 2, 5]))      # 0: continuous
        X = rng.standard_normal((n_samples, n))
        if levels:
            X = np.round(X * levels / 2)
        children, _, _, _, distances = sklearn_ward_tree(X.T, connectivity=A,
                                                         return_distance=True)
        tree = ward_tree(X, A, 1)
        # ward_tree lists each merge's pair reversed: (older, newer)
        same_tree = bool(np.array_equal(children, np.stack([tree["second"], tree["first"]], 1)))
        gap = float(np.max(np.abs(np.sqrt(2.0 * tree["cost"]) - distances)))
        for k in sorted({2, max(2, n // 50), max(2, n // 5)}):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                theirs = FeatureAgglomeration(n_clusters=k, linkage="ward",
                                              connectivity=A).fit(X).labels_
            ours = ward_labels(X, A, k)
            e_theirs, e_ours = relative_error(X, theirs), relative_error(X, ours)
            rows.append((n, A.nnz // 2, n_samples, levels, k, same_partition(ours, theirs),
                         abs(e_ours - e_theirs) / max(e_theirs, 1e-300), same_tree, gap))
    return rows


if __name__ == "__main__":
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    rows = random_checks()
    for row in rows:
        print("n=%d edges=%d S=%d levels=%d K=%d same=%s rel.diff=%.2e tree=%s gap=%.1e" % row)
    print(f"{sum(r[5] for r in rows)}/{len(rows)} identical partitions, largest relative error "
          f"difference {max(r[6] for r in rows):.2e}; whole trees identical: "
          f"{all(r[7] for r in rows)}, largest distance gap {max(r[8] for r in rows):.1e}")
