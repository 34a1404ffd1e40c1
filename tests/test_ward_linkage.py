"""``linkage="ward"``: the size-aware variant of the agglomeration.

Its labels are checked against a slow reference written here with numpy and
scipy only (true means recomputed from X at every level, Ward's cost,
mutual nearest neighbours after the first level, smallest merged size first
for the exact-K cut), its invariants with the same checks as the default
linkage (``test_agglomeration.check_problem``), and its purpose on smooth
data: an error close to scikit-learn's Ward clustering without giant
clusters.
"""

import re
import tempfile
import warnings

import dask
import dask.array as da
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import sparse
from scipy.ndimage import gaussian_filter
from scipy.sparse import csgraph
from sklearn.cluster import FeatureAgglomeration
from sklearn.utils._param_validation import InvalidParameterError

from fastrena import ReNA, recursive_neighbor_agglomeration
from fastrena.agglomeration import (MUTUAL_SHRINK, nearest_neighbor_merge,
                                    reduce_signals)

from helpers import assert_clusters_connected
from test_agglomeration import (MAX_THREADS, assert_partition, build_problem,
                                check_problem, mask_adjacency, num_threads,
                                random_mask)

# --------------------------------------------------------------------------
# A slow reference of the rule, independent of fastrena's kernels
# --------------------------------------------------------------------------


def _sorted_edges(A):
    """Edges (u < v) of a symmetric adjacency, sorted by (u, v)."""
    coo = sparse.triu(A, k=1).tocoo()
    order = np.lexsort((coo.col, coo.row))
    return coo.row[order].astype(np.int64), coo.col[order].astype(np.int64)


def _numbered_by_first_member(groups):
    """Renumber groups 0, 1, ... in order of their smallest member."""
    _, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
    rank = np.empty(first.shape[0], dtype=np.int64)
    rank[np.argsort(first)] = np.arange(first.shape[0])
    return rank[inverse.ravel()]


def _components(n, u, v, keep):
    A = sparse.coo_matrix((np.ones(int(keep.sum())), (u[keep], v[keep])), shape=(n, n))
    return csgraph.connected_components(A, directed=False)


def _union_until(n, u, v, edges, k):
    parent = list(range(n))

    def find(a):
        while parent[a] != a:
            a = parent[a]
        return a

    left = n
    for e in edges:
        if left <= k:
            break
        a, b = find(u[e]), find(v[e])
        if a != b:
            parent[max(a, b)] = min(a, b)
            left -= 1
    return np.array([find(a) for a in range(n)])


def _halving_reaches(n, u, v, k, n_levels):
    n_comp, comp = _components(n, u, v, np.ones(u.shape[0], dtype=bool))
    sizes = np.bincount(comp, minlength=n_comp)
    return int(np.ceil(sizes / 2.0 ** n_levels).sum()) <= max(n_comp, k)


def ward_reference(X, A, k, n_iter, threshold=1e-7):
    X = np.asarray(X, dtype=np.float64)
    n_features = X.shape[1]
    labels = np.arange(n_features)
    n = n_features
    u, v = _sorted_edges(sparse.csr_matrix(A))
    for level in range(n_iter):
        if n <= k or u.shape[0] == 0:
            break
        sizes = np.bincount(labels, minlength=n).astype(np.float64)
        means = np.zeros((X.shape[0], n))
        np.add.at(means.T, labels, X.T)
        means /= sizes
        d = ((means[:, u] - means[:, v]) ** 2).sum(axis=0)
        cost = d * sizes[u] * sizes[v] / (sizes[u] + sizes[v])
        lightest = np.full(n, np.inf)
        np.minimum.at(lightest, u, cost)
        np.minimum.at(lightest, v, cost)
        near_u = (1 - threshold) * cost <= lightest[u]
        near_v = (1 - threshold) * cost <= lightest[v]
        mutual = (level > 0 and n * MUTUAL_SHRINK ** (n_iter - level) <= k
                  and _halving_reaches(n, u, v, k, n_iter - level - 1))
        keep = (near_u & near_v) if mutual else (near_u | near_v)
        n_new, groups = _components(n, u, v, keep)
        if n_new < k:
            kept = np.flatnonzero(keep)
            kept = kept[np.lexsort((kept, cost[kept], (sizes[u] + sizes[v])[kept]))]
            groups = _union_until(n, u, v, kept, k)
        step = _numbered_by_first_member(groups)
        n = int(step.max()) + 1
        labels = step[labels]
        a, b = step[u], step[v]
        pairs = np.unique(np.stack([np.minimum(a, b), np.maximum(a, b)])[:, a != b], axis=1)
        u, v = pairs[0].astype(np.int64), pairs[1].astype(np.int64)
    return labels


# --------------------------------------------------------------------------
# The rule, level by level
# --------------------------------------------------------------------------


def test_mutual_keeps_only_edges_lightest_for_both_ends():
    # chain 0-1-2-3 with weights 1, 2, 3: every node's lightest edge is
    # kept by the default rule (one component); only 0-1 is mutual.
    u, v = np.array([0, 1, 2]), np.array([1, 2, 3])
    w = np.array([1.0, 2.0, 3.0])
    labels, n = nearest_neighbor_merge(4, u, v, w, 0.0, 1)
    assert n == 1
    labels, n = nearest_neighbor_merge(4, u, v, w, 0.0, 1, mutual=True)
    assert n == 3
    np.testing.assert_array_equal(labels, [0, 0, 1, 2])


def test_exact_k_cut_takes_smallest_merged_size_then_lightest_then_first():
    # star-free chain 0-1-2-3-4, all edges kept (equal weights); merged
    # sizes 5, 3, 3, 4: the two edges of size 3 go first, tie broken by
    # weight (edge 2 is lighter), then by position.
    u, v = np.arange(4), np.arange(1, 5)
    merged = np.array([5.0, 3.0, 3.0, 4.0])
    w = np.array([1.0, 1.0, 1.0 - 1e-12, 1.0])
    labels, n = nearest_neighbor_merge(5, u, v, w, 1e-6, 4, merged_sizes=merged)
    np.testing.assert_array_equal(labels, [0, 1, 2, 2, 3])
    labels, n = nearest_neighbor_merge(5, u, v, np.ones(4), 1e-6, 4, merged_sizes=merged)
    np.testing.assert_array_equal(labels, [0, 1, 1, 2, 3])
    # nilearn's order on the same level: largest index gap, then first
    labels, n = nearest_neighbor_merge(5, u, v, np.ones(4), 1e-6, 4)
    np.testing.assert_array_equal(labels, [0, 0, 1, 2, 3])


@pytest.mark.parametrize("feature_major", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_weighted_reduction_gives_true_means(feature_major, dtype):
    rng = np.random.RandomState(0)
    F = rng.randn(7, 9).astype(dtype)
    if feature_major:
        F = np.asfortranarray(F)
    step = np.array([0, 0, 1, 2, 1, 2, 2, 3, 0])
    sizes = rng.randint(1, 50, 9).astype(np.float64)
    out, finite = reduce_signals(F, step, 4, weights=sizes)
    assert finite and out.dtype == dtype
    F64 = F.astype(np.float64)
    expected = np.stack([(F64[:, step == c] * sizes[step == c]).sum(axis=1)
                         / sizes[step == c].sum() for c in range(4)], axis=1)
    np.testing.assert_allclose(out, expected, rtol=1e-6 if dtype == np.float32 else 1e-13)


# --------------------------------------------------------------------------
# Labels: the reference's, on random masks and graphs
# --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_labels_match_the_reference(seed):
    rng = np.random.RandomState(seed)
    shape = (9, 8, 7) if seed % 2 else (30, 25)
    mask = random_mask(rng, shape, rng.uniform(0.5, 1.0))
    A = mask_adjacency(mask)
    N = int(mask.sum())
    X = gaussian_filter(rng.randn(5, *mask.shape), (0, 1.5, 1.5, 1.5)[:mask.ndim + 1])
    X = X.reshape(5, -1)[:, mask.ravel()] + 0.3 * rng.randn(5, N)
    for k in (1, max(2, N // 40), N // 8, N // 2):
        for n_iter in (3, 10, 30):
            est = ReNA(mask, n_clusters=k, n_iter=n_iter, linkage="ward")
            with np.errstate(all="raise"), warnings.catch_warnings():
                # too few levels, or more components than k: checked elsewhere
                warnings.simplefilter("ignore", UserWarning)
                est.fit(X)
            np.testing.assert_array_equal(est.labels_, ward_reference(X, A, k, n_iter))


def test_differs_from_the_default_linkage_on_smooth_data():
    rng = np.random.RandomState(3)
    mask = np.ones((20, 20), dtype=bool)
    X = gaussian_filter(rng.randn(10, 20, 20), (0, 2, 2)).reshape(10, -1)
    default = ReNA(mask, n_clusters=20).fit(X)
    ward = ReNA(mask, n_clusters=20, n_iter=20, linkage="ward").fit(X)
    assert default.n_clusters_ == ward.n_clusters_ == 20
    assert not np.array_equal(default.labels_, ward.labels_)
    np.testing.assert_array_equal(ward.labels_, ward_reference(X, mask_adjacency(mask), 20, 20))


# --------------------------------------------------------------------------
# Invariants of algorithm.md section 5, as for the default linkage
# --------------------------------------------------------------------------


GRAPH_KINDS = ("mask2d", "mask3d", "sparse", "chain", "one_voxel")
DATA_KINDS = ("normal", "constant", "zeros", "blocks", "integers", "duplicated")


@pytest.mark.parametrize("seed", range(10))
def test_invariants_fixed_seeds(seed, tmp_path):
    rng = np.random.RandomState(100 + seed)
    graph_kind = GRAPH_KINDS[seed % len(GRAPH_KINDS)]
    data_kind = DATA_KINDS[seed % len(DATA_KINDS)]
    dtype = (np.float64, np.float32)[seed % 2]
    X, graph_kw, A = build_problem(rng, graph_kind, data_kind, dtype, (1, 3, 8)[seed % 3])
    N = X.shape[1]
    for K in sorted({1, min(2, N), max(1, N // 3), N}):
        check_problem(X, K, graph_kw, A, 1e-7, str(tmp_path), linkage="ward")


@st.composite
def problems(draw):
    graph_kind = draw(st.sampled_from(GRAPH_KINDS))
    data_kind = draw(st.sampled_from(DATA_KINDS))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    seed = draw(st.integers(0, 2**32 - 1))
    X, graph_kw, A = build_problem(np.random.RandomState(seed), graph_kind, data_kind,
                                   dtype, draw(st.integers(1, 7)))
    K = draw(st.integers(1, X.shape[1]))
    threshold = draw(st.sampled_from([0.0, 1e-7, 0.05, 0.5, 0.99]))
    return X, K, graph_kw, A, threshold


@settings(max_examples=40, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_invariants_hypothesis(problem):
    X, K, graph_kw, A, threshold = problem
    with tempfile.TemporaryDirectory() as d:
        check_problem(X, K, graph_kw, A, threshold, d, linkage="ward")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_same_labels_for_any_thread_count_layout_and_dask_chunking(dtype):
    rng = np.random.RandomState(7)
    mask = rng.rand(22, 21, 20) < 0.9
    N = int(mask.sum())
    X = np.round(np.cumsum(rng.randn(150, N), axis=1), 1).astype(dtype)
    params = dict(mask_img=mask, n_clusters=300, n_iter=25, linkage="ward")
    results = []
    for n in (1, MAX_THREADS):
        with num_threads(n):
            for Xl in (X, np.asfortranarray(X)):
                results.append(ReNA(**params).fit(Xl).labels_)
    with dask.config.set(scheduler="threads", **{"fastrena.in-memory-limit": 0}):
        for chunks in ((64, -1), (50, 1000)):
            results.append(ReNA(**params).fit(da.from_array(X, chunks=chunks)).labels_)
    assert_partition(results[0], 300, N)
    assert_clusters_connected(results[0], mask_adjacency(mask), 300)
    for labels in results[1:]:
        np.testing.assert_array_equal(labels, results[0])


def test_reaches_k_whenever_the_n_iter_bound_allows():
    # Mutual levels remove few nodes; they are skipped whenever the levels
    # left could not halve the graph down to K. A smooth chain of 512
    # features, K = 4: log2(512 / 4) = 7 halving levels are enough.
    rng = np.random.RandomState(0)
    X = np.cumsum(rng.randn(3, 512), axis=1)
    for n_iter in (7, 8, 12, 40):
        n, labels = recursive_neighbor_agglomeration(X, n_clusters=4, n_iter=n_iter,
                                                     linkage="ward")
        assert n == 4
        assert_partition(labels, 4, 512)


# --------------------------------------------------------------------------
# What it is for: Ward's error, no giant cluster, on smooth noisy data
# --------------------------------------------------------------------------


def _relative_error(clean, noisy, labels):
    sizes = np.bincount(labels).astype(np.float64)
    means = np.zeros((noisy.shape[0], sizes.shape[0]))
    np.add.at(means.T, labels, noisy.T)
    means /= sizes
    return np.linalg.norm(clean - means[:, labels]) / np.linalg.norm(clean)


def test_error_close_to_ward_and_no_giant_cluster():
    rng = np.random.RandomState(0)
    mask = np.ones((24, 24, 24), dtype=bool)
    clean = gaussian_filter(rng.randn(40, *mask.shape), (0, 3, 3, 3)).reshape(40, -1)
    clean /= clean.std()
    noisy = clean + rng.randn(*clean.shape)
    k = mask.size // 20
    ward = FeatureAgglomeration(k, connectivity=mask_adjacency(mask)).fit(noisy)
    ours = ReNA(mask, n_clusters=k, n_iter=30, linkage="ward").fit(noisy)
    nilearn_rule = ReNA(mask, n_clusters=k).fit(noisy)
    e_ward = _relative_error(clean, noisy, ward.labels_)
    e_ours = _relative_error(clean, noisy, ours.labels_)
    e_default = _relative_error(clean, noisy, nilearn_rule.labels_)
    assert ours.n_clusters_ == k
    assert e_ours <= 1.02 * e_ward
    assert e_ours < e_default
    assert ours.sizes_.max() <= 20 * ours.sizes_.mean()


# --------------------------------------------------------------------------
# Parameter
# --------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["Ward", "average", "", None, 1])
def test_bad_linkage_is_named(bad):
    X = np.zeros((2, 6))
    with pytest.raises(InvalidParameterError, match="'linkage' parameter of ReNA") as info:
        ReNA(n_clusters=2, linkage=bad).fit(X)
    assert repr(bad) in str(info.value)
    with pytest.raises(ValueError, match=r"linkage must be one of 'nilearn', 'ward', "
                                         rf"got {re.escape(repr(bad))}$"):
        recursive_neighbor_agglomeration(X, n_clusters=2, linkage=bad)
