"""Properties of the ReNA agglomeration (docs/design.md sections 2, 3 and 5).

Every random problem is checked against a graph built here independently of
fastrena (scikit-learn's ``grid_to_graph`` for masks, the symmetrised
off-diagonal nonzeros for explicit adjacencies) with ``scipy.sparse.csgraph``.
"""

import math
import re
import tempfile
import warnings

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import sparse
from sklearn.feature_extraction.image import grid_to_graph

import fastrena
from fastrena import ReNA, recursive_neighbor_agglomeration

from helpers import (DATA_KINDS, MAX_THREADS, assert_clusters_connected, assert_partition,
                     build_problem, check_problem, coo_adjacency, estimator_recording,
                     halving_chain, mask_adjacency, num_threads, random_mask, readonly_memmaps,
                     sufficient_n_iter, tie_order)

# --------------------------------------------------------------------------
# Reference graphs and invariant checks (independent of fastrena)
# --------------------------------------------------------------------------


# --------------------------------------------------------------------------
# Random problems
# --------------------------------------------------------------------------


GRAPH_KINDS = ("mask2d", "mask3d", "sparse", "chain", "one_voxel")


@pytest.mark.parametrize("seed", range(20))
def test_invariants_fixed_seeds(seed, tmp_path):
    rng = np.random.RandomState(seed)
    graph_kind = GRAPH_KINDS[seed % len(GRAPH_KINDS)]
    data_kind = DATA_KINDS[seed % len(DATA_KINDS)]
    dtype = (np.float64, np.float32)[seed % 2]
    n_samples = (1, 2, 5, 11)[seed % 4]
    X, graph_kw, A = build_problem(rng, graph_kind, data_kind, dtype, n_samples)
    N = X.shape[1]
    for K in sorted({1, 2, max(1, N // 3), N}):
        if K <= N:
            for threshold in (1e-7, 0.3):
                check_problem(X, K, graph_kw, A, threshold, str(tmp_path))


@st.composite
def problems(draw):
    graph_kind = draw(st.sampled_from(GRAPH_KINDS))
    data_kind = draw(st.sampled_from(DATA_KINDS))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    n_samples = draw(st.integers(1, 7))
    seed = draw(st.integers(0, 2**32 - 1))
    X, graph_kw, A = build_problem(np.random.RandomState(seed), graph_kind, data_kind,
                                   dtype, n_samples)
    K = draw(st.integers(1, X.shape[1]))
    threshold = draw(st.sampled_from([0.0, 1e-7, 0.05, 0.5, 0.99]))
    return X, K, graph_kw, A, threshold


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_invariants_hypothesis(problem):
    X, K, graph_kw, A, threshold = problem
    with tempfile.TemporaryDirectory() as d:
        check_problem(X, K, graph_kw, A, threshold, d)


# --------------------------------------------------------------------------
# Determinism on inputs large enough to use several threads and chunks
# --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_thread_count_and_layout_on_large_input(dtype, tmp_path):
    rng = np.random.RandomState(7)
    mask = rng.rand(22, 21, 20) < 0.9  # ~25k edges: several weight chunks
    N = int(mask.sum())
    # spatially smooth data with exact ties (rounded) and > 8 samples
    X = np.round(np.cumsum(rng.randn(19, N), axis=1), 1).astype(dtype)
    params = dict(mask_img=mask, n_clusters=40, n_iter=20)
    results = []
    for n in (1, MAX_THREADS):
        with num_threads(n):
            for Xl in (X, np.asfortranarray(X), *readonly_memmaps(X, str(tmp_path))):
                est = ReNA(**params).fit(Xl)
                results.append((est.labels_, est.transform(Xl)))
    labels, Xt = results[0]
    assert_partition(labels, 40, N)
    assert_clusters_connected(labels, mask_adjacency(mask), 40)
    assert Xt.dtype == dtype
    for other_labels, other_Xt in results[1:]:
        np.testing.assert_array_equal(other_labels, labels)
        np.testing.assert_array_equal(other_Xt, Xt)


def test_num_threads_restored():
    before = numba.get_num_threads()
    with num_threads(1):
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == before


# --------------------------------------------------------------------------
# n_iter and the exact number of levels
# --------------------------------------------------------------------------


def test_halving_chain_needs_exactly_log2_levels():
    X = halving_chain(6)  # 64 features
    n, labels = recursive_neighbor_agglomeration(X, n_clusters=1, n_iter=6)
    assert n == 1
    np.testing.assert_array_equal(labels, np.zeros(64, dtype=int))
    with pytest.warns(UserWarning) as rec:
        n, labels = recursive_neighbor_agglomeration(X, n_clusters=1, n_iter=5)
    assert n == 2
    np.testing.assert_array_equal(labels, np.repeat([0, 1], 32))
    assert len(rec) == 1
    msg = str(rec[0].message)
    assert "n_iter=5" in msg and re.search(r"\b2\b", msg) and re.search(r"\b1\b", msg)


def test_n_iter_too_small_warning_names_numbers():
    X = halving_chain(5)  # 32 -> 16 -> 8 after two levels
    with pytest.warns(UserWarning) as rec:
        est = ReNA(n_clusters=3, n_iter=2).fit(X)
    assert est.n_clusters_ == 8
    np.testing.assert_array_equal(est.labels_, np.repeat(np.arange(8), 4))
    assert len(rec) == 1
    msg = str(rec[0].message)
    assert "n_iter=2" in msg
    assert re.search(r"\b8\b", msg) and re.search(r"\b3\b", msg), msg
    # Enough levels: exactly K (the last level lands on 3 by step 4), silent.
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        est = ReNA(n_clusters=3, n_iter=4).fit(X)
    assert rec == []
    assert est.n_clusters_ == 3


def test_components_warning_names_numbers():
    mask = np.zeros((5, 5), dtype=bool)
    mask[0, :] = True          # component of 5
    mask[2, 1:3] = True        # component of 2
    mask[4, 4] = True          # isolated voxel
    X = np.arange(8, dtype=np.float64)[None, :] ** 2
    with pytest.warns(UserWarning) as rec:
        est = ReNA(mask, n_clusters=2, n_iter=10).fit(X)
    assert est.n_clusters_ == 3
    np.testing.assert_array_equal(est.labels_, [0, 0, 0, 0, 0, 1, 1, 2])
    assert len(rec) == 1
    msg = str(rec[0].message)
    assert re.search(r"\b3\b", msg) and "n_clusters=2" in msg, msg
    assert "component" in msg


def test_no_warning_in_normal_case():
    rng = np.random.RandomState(0)
    mask = np.ones((6, 7, 5), dtype=bool)
    X = rng.randn(4, mask.sum())
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        est = ReNA(mask, n_clusters=12).fit(X)
        est.transform(X)
        est.inverse_transform(est.transform(X))
        recursive_neighbor_agglomeration(X, mask, n_clusters=12)
    assert rec == []
    assert est.n_clusters_ == 12


def _isolated_voxels_problem():
    """A halving chain of 1024 voxels plus 63 isolated voxels: c = 64."""
    mask = np.zeros((3, 1024), dtype=bool)
    mask[0] = True
    mask[2, :126:2] = True
    X = np.concatenate([halving_chain(10)[0], np.arange(63.0)])[None, :]
    return mask, X


@pytest.mark.parametrize("K", [1, 3, 5, 100, 1000])
def test_spec_n_iter_bound_on_connected_worst_case(K):
    """docs/design.md section 5: n_clusters_ == K as soon as
    n_iter >= ceil(log2(N/K)) + 1, on a connected graph where every level
    merges exactly pairs (the slowest possible)."""
    X = halving_chain(10)
    n_iter = math.ceil(math.log2(X.shape[1] / K)) + 1
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        est = ReNA(n_clusters=K, n_iter=n_iter).fit(X)
    assert rec == []
    assert est.n_clusters_ == K
    assert_clusters_connected(est.labels_, coo_adjacency(
        np.arange(1023), np.arange(1, 1024), np.ones(1023), 1024), K)


def test_n_iter_suggested_by_warning_suffices():
    """The n_iter warning says which n_iter 'always suffices': it must.

    1024 chain voxels that merge exactly in pairs at every level plus 63
    isolated voxels (c = 64, N = 1087): the chain needs 10 levels whatever
    K <= 64, but ceil(log2(N/K)) + 1 = 6 for K = 64, the value the warning
    gives (and the bound stated in docs/design.md section 5).
    """
    mask, X = _isolated_voxels_problem()
    with pytest.warns(UserWarning) as rec:
        ReNA(mask, n_clusters=64, n_iter=3).fit(X)
    suggested = [int(m) for w in rec
                 for m in re.findall(r"n_iter=(\d+) always suffices", str(w.message))]
    assert len(suggested) == 1
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        est = ReNA(mask, n_clusters=64, n_iter=suggested[0]).fit(X)
    assert est.n_clusters_ == 64


def test_sufficient_bound_holds_on_isolated_voxels_problem():
    """The bound used by the property tests does reach max(K, c) here."""
    mask, X = _isolated_voxels_problem()
    A = mask_adjacency(mask)
    for K in (1, 64, 70):
        est = estimator_recording(X, mask_img=mask, n_clusters=K,
                                  n_iter=sufficient_n_iter(mask.sum(), K, A))[0]
        assert est.n_clusters_ == max(K, 64)
        assert_clusters_connected(est.labels_, A, est.n_clusters_)


# --------------------------------------------------------------------------
# Threshold semantics, weight-0 edges, the exact-K rule (section 2)
# --------------------------------------------------------------------------

# Points of a 4-node chain (2 samples): w(0,1) = 9, w(1,2) = 16, w(2,3) = 13.
# Edge (1,2) is nobody's nearest; it is a candidate (a tie) of node 2 iff
# (1-t)*16 <= 13, i.e. t >= 3/16 (node 1 would need t >= 7/16). A node
# chooses one of its candidates, the first in ``tie_order``.
THRESHOLD_CHAIN = np.array([[0.0, 3.0, 7.0, 10.0],
                            [0.0, 0.0, 0.0, 2.0]])


def threshold_chain(reverse, swap):
    """THRESHOLD_CHAIN, its features reversed and/or its samples swapped
    (the same weights, another first sample: another tie order)."""
    X = THRESHOLD_CHAIN[::-1] if swap else THRESHOLD_CHAIN
    return X[:, ::-1] if reverse else X


@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("threshold", [0.0, 1e-7, 0.15, 0.1874,
                                       0.1875,  # (1 - t) * 16 == 13 exactly ("<=")
                                       0.2, 0.4374, 0.4375, 0.9])
def test_threshold_decides_edge(threshold, reverse, swap):
    X = threshold_chain(reverse, swap)
    # Edge (1,2) against the other edge of the node at weight 13 (t >= 3/16)
    # and of the node at weight 9 (t >= 7/16).
    at_13, at_9 = ((0, 1), (2, 3)) if reverse else ((2, 3), (0, 1))
    merged = any(threshold >= bound and tie_order(X[0], 1, 2) < tie_order(X[0], *other)
                 for bound, other in ((3 / 16, at_13), (7 / 16, at_9)))
    if merged:
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            n, labels = recursive_neighbor_agglomeration(
                X, n_clusters=1, n_iter=1, threshold=threshold)
        assert rec == []
        assert n == 1
        np.testing.assert_array_equal(labels, [0, 0, 0, 0])
    else:
        with pytest.warns(UserWarning, match="n_iter=1"):
            n, labels = recursive_neighbor_agglomeration(
                X, n_clusters=1, n_iter=1, threshold=threshold)
        assert n == 2
        np.testing.assert_array_equal(labels, [0, 0, 1, 1])
    est = estimator_recording(X, n_clusters=1, n_iter=1, threshold=threshold)[0]
    np.testing.assert_array_equal(est.labels_, labels)


def test_threshold_chain_covers_both_outcomes():
    # The variants of THRESHOLD_CHAIN lead to both outcomes above.
    outcomes = set()
    for reverse in (False, True):
        for swap in (False, True):
            x0 = threshold_chain(reverse, swap)[0]
            at_13 = (0, 1) if reverse else (2, 3)
            outcomes.add(tie_order(x0, 1, 2) < tie_order(x0, *at_13))
    assert outcomes == {False, True}


def test_exact_ties_kept_with_zero_threshold():
    # node 1 has two edges of weight 1: it keeps both
    n, labels = recursive_neighbor_agglomeration(np.array([[0.0, 1.0, 2.0]]),
                                                 n_clusters=1, n_iter=1, threshold=0.0)
    assert n == 1
    np.testing.assert_array_equal(labels, [0, 0, 0])


@pytest.mark.parametrize("threshold", [0.0, 1e-7, 0.5, 0.9999])
def test_weight_zero_edges_always_merge_and_dominate(threshold):
    X = np.array([[1.0, 1.0, 5.0, 5.0, 5.0, 9.0, 9.0]])
    with pytest.warns(UserWarning, match="n_iter=1"):
        n, labels = recursive_neighbor_agglomeration(X, n_clusters=1, n_iter=1,
                                                     threshold=threshold)
    assert n == 3
    np.testing.assert_array_equal(labels, [0, 0, 1, 1, 1, 2, 2])


def test_flat_regions_on_a_mask_merge_in_one_level():
    mask = np.ones((4, 4), dtype=bool)
    X = np.repeat([[0.0, 0.0, 1.0, 1.0]], 4, axis=0).ravel()[None, :]
    est = ReNA(mask, n_clusters=2, n_iter=1).fit(X)
    np.testing.assert_array_equal(est.labels_.reshape(4, 4),
                                  [[0, 0, 1, 1]] * 4)
    np.testing.assert_array_equal(est.transform(X), [[0.0, 1.0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_constant_data_reaches_one_cluster_in_one_level(dtype):
    mask = np.ones((3, 4, 5), dtype=bool)
    X = np.full((2, 60), 7.0, dtype=dtype)
    est = ReNA(mask, n_clusters=1, n_iter=1).fit(X)
    assert est.n_clusters_ == 1
    np.testing.assert_array_equal(est.labels_, np.zeros(60))
    Xt = est.transform(X)
    assert Xt.dtype == dtype
    np.testing.assert_array_equal(Xt, np.full((2, 1), 7.0))


@pytest.mark.parametrize("K, expected", [
    (2, [0, 0, 0, 0, 0, 1]),
    (3, [0, 0, 0, 0, 1, 2]),
    (6, [0, 1, 2, 3, 4, 5]),
])
def test_exact_k_on_constant_chain(K, expected):
    # all weights 0, all gaps 1: edges merged in (i, j) order until K remain
    n, labels = recursive_neighbor_agglomeration(np.full((2, 6), 3.5), n_clusters=K,
                                                 n_iter=1)
    assert n == K
    np.testing.assert_array_equal(labels, expected)


@pytest.mark.parametrize("K, expected", [
    (2, [0, 0, 1, 0, 0, 1]),   # gap-3 edges first, then (0, 1)
    (3, [0, 1, 2, 0, 1, 2]),
    (4, [0, 1, 2, 0, 1, 3]),
])
def test_exact_k_largest_gap_first_on_mask(K, expected):
    n, labels = recursive_neighbor_agglomeration(np.zeros((1, 6)), np.ones((2, 3), bool),
                                                 n_clusters=K, n_iter=1)
    assert n == K
    np.testing.assert_array_equal(labels, expected)


def test_exact_k_skips_cycles_and_breaks_ties_by_index():
    # edges (0,4) gap 4, (0,2) and (2,4) gap 2 [closes a cycle], (0,1) and
    # (3,4) gap 1 [(0,1) first]
    rows, cols = [0, 0, 2, 0, 3], [4, 2, 4, 1, 4]
    C = sparse.coo_matrix((np.ones(5), (rows, cols)), shape=(5, 5))
    n, labels = recursive_neighbor_agglomeration(np.zeros((1, 5)), n_clusters=2,
                                                 n_iter=1, connectivity=C)
    assert n == 2
    np.testing.assert_array_equal(labels, [0, 0, 0, 1, 0])


def test_isolated_voxel_does_not_shift_node_ids():
    mask = np.array([[1, 0, 1, 1], [0, 0, 1, 1]], dtype=bool)
    X = np.array([[100.0, 0.0, 0.0, 5.0, 5.0]])
    n, labels = recursive_neighbor_agglomeration(X, mask, n_clusters=3, n_iter=1)
    assert n == 3
    np.testing.assert_array_equal(labels, [0, 1, 1, 2, 2])
    with pytest.warns(UserWarning, match="2 connected components"):
        n, labels = recursive_neighbor_agglomeration(X, mask, n_clusters=1, n_iter=5)
    assert n == 2
    np.testing.assert_array_equal(labels, [0, 1, 1, 1, 1])


def test_connectivity_and_equivalent_mask_agree():
    rng = np.random.RandomState(3)
    mask = random_mask(rng, (6, 5, 4), 0.7)
    X = rng.randn(3, mask.sum())
    C = grid_to_graph(6, 5, 4, mask=mask)  # with its self loops
    a = ReNA(mask, n_clusters=7).fit(X).labels_
    b = ReNA(n_clusters=7, connectivity=C).fit(X).labels_
    c = fastrena.agglomerate(X, fastrena.lattice_graph(mask), 7).labels
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


def test_function_matches_estimator_defaults():
    rng = np.random.RandomState(11)
    X = rng.randn(3, 40)
    n, labels = recursive_neighbor_agglomeration(X)
    est = ReNA().fit(X)
    assert (n, est.n_clusters_) == (2, 2)
    np.testing.assert_array_equal(labels, est.labels_)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_transform_rejects_non_finite_values(bad, dtype):
    """transform checks X's values through its cluster sums: a NaN or an
    infinity anywhere (here in a cluster of several features) must still
    give scikit-learn's standard error."""
    rng = np.random.default_rng(3)
    X = rng.random((4, 30)).astype(dtype)
    rena = ReNA(n_clusters=3).fit(X)
    Y = X.copy()
    Y[2, 17] = bad
    message = "Input X contains NaN" if np.isnan(bad) else "Input X contains infinity"
    with pytest.raises(ValueError, match=message):
        rena.transform(Y)


def test_transform_overflow_is_not_mistaken_for_bad_input():
    """Finite values whose cluster sum overflows are valid input: no error."""
    rena = ReNA(n_clusters=1).fit(np.arange(6.0)[None, :])
    out = rena.transform(np.full((1, 6), 1.5e308))
    assert out.shape == (1, 1)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("params", [
    dict(n_clusters=2, n_iter=10),   # checked through the first level's means
    dict(n_clusters=2, n_iter=1),    # one level, no reduction: full scan
    dict(n_clusters=500, n_iter=10), # K >= N, no level at all: full scan
    # checked as the copy the rounds reduce in place is made
    dict(n_clusters=2, linkage="ward"),
])
@pytest.mark.parametrize("where", [0, 41, 99])
def test_fit_rejects_non_finite_values_on_every_path(bad, params, where):
    X = np.random.default_rng(5).random((3, 100))
    X[1, where] = bad
    message = "Input X contains NaN" if np.isnan(bad) else "Input X contains infinity"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(ValueError, match=message):
            ReNA(**params).fit(X)
        with pytest.raises(ValueError, match=message):
            recursive_neighbor_agglomeration(X, **params)


# --------------------------------------------------------------------------
# cluster_means: the divisors are checked (the kernels divide unchecked)
# --------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan, np.inf])
def test_cluster_means_names_a_divisor_that_is_not_positive(bad):
    from fastrena.agglomeration import cluster_means

    X = np.arange(6.0).reshape(2, 3)
    labels = np.array([0, 0, 1])
    np.testing.assert_array_equal(cluster_means(X, labels, [2.0, 1.0]), [[0.5, 2.0], [3.5, 5.0]])
    with pytest.raises(ValueError, match=re.escape(f"divisors[1] = {bad!r}")):
        cluster_means(X, labels, [2.0, bad])
