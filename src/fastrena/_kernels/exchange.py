"""The refinement's exchange of clusters: Ward's greedy order merges a
refined partition's clusters back to fewer (:func:`exchanged`).

The merge tree's finer cut, refined, holds clusters that the boundary
moves made nearly alike (two neighbours whose means met: cheap to merge)
beside the pieces of clusters whose split gains much; Ward's greedy order
on them, with their current means and sizes, merges the cheapest, so the
clusters the last merges of the tree would have spent are spent where they
lower the sum of squares most. Every merge is made at its current Ward
cost (:func:`fastrena._kernels.greedy_ward`), ties to the smaller cluster
numbers: the same merges on every machine and thread count.
"""

import numpy as np
from numba import njit

from .._interrupt import call_deferring_sigint
from .compiling import int_range
from .graph import reduce_edges
from .merges import find_root, union_in_order
from .ward import ZERO_PAIRING
from .ward_costs import ward_costs
from .ward_greedy import check_greedy_nodes, greedy_ward_costed, greedy_ward_options


@njit(cache=True)
def _means(sums, sizes, n_samples):
    """The clusters' means (n_clusters, n_samples) float64, from their sums
    (padded rows) and sizes, and the sizes as float64."""
    n_clusters = sums.shape[0]
    means = np.empty((n_clusters, n_samples))
    weights = np.empty(n_clusters)
    for c in range(n_clusters):
        weights[c] = sizes[c]
        for s in range(n_samples):
            means[c, s] = sums[c, s] / sizes[c]
    return means, weights


@njit(cache=True)
def _means_and_zeros(sums, sizes, n_samples, u, v):
    """:func:`_means` and :func:`_equal_means` in one call."""
    means, weights = _means(sums, sizes, n_samples)
    return means, weights, _equal_means(means, u, v)


@njit(cache=True)
def _greedy_merged(labels, sums, sizes, means, weights, u, v, costs, n_final, n_first, slack):
    """Ward's greedy order on the clusters' graph ``u``, ``v`` (their means,
    sizes and edge costs given; ``n_first``, ``slack``:
    :func:`fastrena._kernels.ward_greedy.greedy_ward_options`) until
    ``n_final`` clusters are left, then the labels, sums and sizes mapped
    onto them (:func:`_merged_along`): one call. Returns the new sums,
    sizes and their number."""
    n_clusters = sums.shape[0]
    first, second, _, _, _ = greedy_ward_costed(
        means, weights, u, v, int_range(n_clusters), np.zeros(n_clusters),
        np.int64(n_clusters - n_final), costs, n_first, slack)
    sums, sizes, n_new, _ = _merged_along(labels, sums, sizes, first, second,
                                          int_range(first.shape[0]), n_final)
    return sums, sizes, n_new


@njit(cache=True)
def _equal_means(means, u, v):
    """The edges (indices, increasing) whose two ends have the same mean in
    every sample: their merge costs exactly 0."""
    equal = np.zeros(u.shape[0], dtype=np.bool_)
    for e in range(u.shape[0]):
        a = u[e]
        b = v[e]
        same = True
        for s in range(means.shape[1]):
            if means[a, s] != means[b, s]:
                same = False
                break
        equal[e] = same
    return np.flatnonzero(equal)


@njit(cache=True)
def _zero_merges(n_nodes, u, v, zero, weights, n_merges):
    """At most ``n_merges`` merges along the edges ``zero`` (identical
    means: cost 0, in any order), as edge indices in merge order, smallest
    unions first: in passes, the edges still between two pieces sorted by
    the size of their union (ties by edge index), each taken when neither
    piece was merged in the pass. A flat region so grows in clusters of
    similar sizes, as in Ward's rounds; merged in node order, its pieces
    would chain into one (a 0/1 mask: 80x Ward's largest). Once a pass
    pairs fewer than :data:`fastrena._kernels.ward.ZERO_PAIRING` of its
    pieces (the rounds' rule; a star's centre pairs with one leaf a pass),
    the rest go in one sorted pass without the pairing: at most ~log(n) / log(8/7) passes, each
    ``O(E log E)``."""
    parent = np.arange(n_nodes)
    size = weights.copy()
    used = np.zeros(n_nodes, dtype=np.bool_)
    order = np.empty(min(n_merges, zero.shape[0]), dtype=np.int64)
    done = 0
    active = zero.copy()
    pairing = True
    while done < order.shape[0] and active.shape[0] > 0:
        keys = np.empty(active.shape[0])
        for i in range(active.shape[0]):
            keys[i] = size[find_root(parent, u[active[i]])] + size[find_root(parent, v[active[i]])]
        ranked = active[np.argsort(keys, kind="mergesort")]
        used[:] = False
        n_pieces = 0
        for e in active:
            for x in (find_root(parent, u[e]), find_root(parent, v[e])):
                if not used[x]:
                    used[x] = True
                    n_pieces += 1
        used[:] = False
        n_pairs = 0
        for e in ranked:
            if done == order.shape[0]:
                break
            ra = find_root(parent, u[e])
            rb = find_root(parent, v[e])
            if ra == rb or (pairing and (used[ra] or used[rb])):
                continue
            used[ra] = used[rb] = True
            parent[rb] = ra
            size[ra] += size[rb]
            order[done] = e
            done += 1
            n_pairs += 1
        if 2 * n_pairs < ZERO_PAIRING * n_pieces:
            pairing = False
        n_left = 0
        for e in active:
            if find_root(parent, u[e]) != find_root(parent, v[e]):
                active[n_left] = e
                n_left += 1
        active = active[:n_left]
    return order[:done].copy()


@njit(cache=True)
def _merged(labels, sums, sizes, coarse, n_new):
    """``labels`` mapped through ``coarse`` (in place), and the merged
    clusters' sums and sizes, in the first ``n_new`` rows of ``sums`` and
    ``sizes``: each from 0, its clusters' rows added in increasing cluster
    number (one fixed order). In place: ``coarse`` numbers the merged
    clusters in order of their first cluster, so ``coarse[c] <= c`` and
    row ``coarse[c]`` is written only once every row before c was read."""
    fresh = np.zeros(n_new, dtype=np.bool_)
    for c in range(sums.shape[0]):
        d = coarse[c]
        if not fresh[d]:
            fresh[d] = True
            sizes[d] = sizes[c]
            for s in range(sums.shape[1]):
                sums[d, s] = 0.0 + sums[c, s]
        else:
            sizes[d] += sizes[c]
            for s in range(sums.shape[1]):
                sums[d, s] += sums[c, s]
    for i in range(labels.shape[0]):
        labels[i] = coarse[labels[i]]
    return sums[:n_new], sizes[:n_new]


@njit(cache=True)
def _merged_along(labels, sums, sizes, a, b, order, n_final):
    """Merge the clusters along the pairs ``(a[e], b[e])`` for e in
    ``order`` until ``n_final`` are left (:func:`fastrena._kernels.union_in_order`),
    and map ``labels`` and the sums and sizes onto them (:func:`_merged`).
    Returns the sums, sizes, their number and each old cluster's new one."""
    coarse, n_new = union_in_order(sums.shape[0], a, b, order, n_final)
    sums, sizes = _merged(labels, sums, sizes, coarse, n_new)
    return sums, sizes, n_new, coarse


def exchanged(labels, sums, sizes, u, v, n_samples, n_final):
    """Merge a partition's clusters to ``n_final`` in Ward's greedy order.

    ``labels`` (n_features,) in [0, n_clusters), rewritten in place to the
    merged clusters' numbers (in order of their first cluster); ``sums``
    (n_clusters, S' >= n_samples) float64 and ``sizes`` (n_clusters,) the
    clusters' sums and sizes; ``u``, ``v`` the features' graph. The
    clusters' graph (the pairs of clusters a feature edge joins) is merged
    first along its edges between identical means (cost 0), smallest
    unions first (:func:`_zero_merges`), then by
    :func:`fastrena._kernels.greedy_ward` on the clusters' means, until
    ``n_final`` are left (fewer clusters than the graph's components are
    not reachable). Returns the merged clusters'
    sums, sizes and number. Linear in the features and edges, plus
    ``O(E log E log n)`` for identical means (:func:`_zero_merges`, E the
    clusters' edges) and ``O(n_clusters log n_clusters)`` cost updates of
    n_samples each for the greedy order.
    """
    n_clusters = sums.shape[0]
    cu, cv = call_deferring_sigint(reduce_edges, (u, v, labels, np.int64(n_clusters)), {})
    # Few calls, each one compiled: a small refinement (sklearn's digits:
    # 64 features, 1,797 samples) paid some microseconds for each call
    # between them.
    means, weights, zero = call_deferring_sigint(
        _means_and_zeros, (sums, sizes, np.int64(n_samples), cu, cv), {})
    if zero.shape[0] > 0:
        # Identical means first, smallest unions first (_zero_merges).
        order = call_deferring_sigint(
            _zero_merges, (np.int64(n_clusters), cu, cv, zero, weights,
                           np.int64(n_clusters - n_final)), {})
        sums, sizes, n_clusters, coarse = call_deferring_sigint(
            _merged_along, (labels, sums, sizes, cu, cv, order, np.int64(n_final)), {})
        n_clusters = int(n_clusters)
        if n_clusters <= n_final:
            return sums, sizes, n_clusters
        cu, cv = call_deferring_sigint(reduce_edges, (cu, cv, coarse, np.int64(n_clusters)), {})
        means, weights = call_deferring_sigint(_means, (sums, sizes, np.int64(n_samples)), {})
    # The nodes' own numbers as their representatives: the merges come back
    # as pairs of cluster numbers. The costs on threads, the merges after.
    check_greedy_nodes(n_clusters)
    costs = ward_costs(means, weights, cu, cv)
    sums, sizes, n_new = call_deferring_sigint(
        _greedy_merged, (labels, sums, sizes, means, weights, cu, cv, costs, np.int64(n_final),
                         *greedy_ward_options(n_clusters - n_final, n_clusters, cu.shape[0])),
        {})
    return sums, sizes, int(n_new)
