"""Properties of the ReNA agglomeration (docs/design.md sections 2, 3 and 5).

Every random problem is checked against a graph built here independently of
fastrena (scikit-learn's ``grid_to_graph`` for masks, the symmetrised
off-diagonal nonzeros for explicit adjacencies) with ``scipy.sparse.csgraph``.
"""

import math
import os
import re
import tempfile
import warnings

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import sparse
from scipy.sparse import csgraph
from sklearn.feature_extraction.image import grid_to_graph

import fastrena
from fastrena import ReNA, recursive_neighbor_agglomeration

from helpers import assert_clusters_connected, halving_chain, largest_component, tie_order

# --------------------------------------------------------------------------
# Reference graphs and invariant checks (independent of fastrena)
# --------------------------------------------------------------------------


def _clean_adjacency(A):
    """Symmetric 0/1 CSR adjacency without self loops."""
    A = sparse.csr_matrix(A, dtype=np.float64)
    A = ((abs(A) + abs(A.T)) > 0).astype(np.int8).tolil()
    A.setdiag(0)
    A = A.tocsr()
    A.eliminate_zeros()
    return A


def mask_adjacency(mask):
    """Face-sharing adjacency of the in-mask cells, in C order."""
    mask3 = mask if mask.ndim == 3 else mask[..., None]
    return _clean_adjacency(grid_to_graph(*mask3.shape, mask=mask3))


def coo_adjacency(rows, cols, data, n):
    """Edges = stored nonzeros off the diagonal, symmetrised."""
    rows, cols, data = map(np.asarray, (rows, cols, data))
    keep = (data != 0) & (rows != cols)
    A = sparse.coo_matrix(
        (np.ones(int(keep.sum())), (rows[keep], cols[keep])), shape=(n, n)
    )
    return _clean_adjacency(A)


def n_components(A):
    return int(csgraph.connected_components(A, directed=False)[0])


def sufficient_n_iter(N, K, A):
    """At least the spec's ``ceil(log2(N/K)) + 1``.

    The ``max`` with ``ceil(log2(largest component))`` is there because the
    spec's bound alone does not hold for graphs with many small components
    (isolated voxels never merge, so the node count does not halve); see
    ``test_n_iter_suggested_by_warning_suffices``.
    """
    spec = math.ceil(math.log2(N / K)) + 1
    return max(spec, math.ceil(math.log2(largest_component(A))))


def assert_partition(labels, n_clusters, N):
    """labels_ is a partition into n_clusters non-empty clusters numbered
    0..n_clusters-1 in order of first appearance."""
    labels = np.asarray(labels)
    assert labels.shape == (N,)
    assert np.issubdtype(labels.dtype, np.integer)
    assert isinstance(n_clusters, int)
    uniq, first = np.unique(labels, return_index=True)
    np.testing.assert_array_equal(uniq, np.arange(n_clusters))
    # first appearance of cluster c comes before that of cluster c + 1
    assert np.all(np.diff(first) > 0), labels
    assert labels[0] == 0


def cluster_means_reference(X, labels, n_clusters):
    X64 = np.asarray(X, dtype=np.float64)
    out = np.zeros((X64.shape[0], n_clusters))
    np.add.at(out.T, labels, X64.T)
    return out / np.bincount(labels, minlength=n_clusters)


def estimator_recording(X, **params):
    """ReNA(**params).fit(X), recording every warning: (estimator, records)."""
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        est = ReNA(**params).fit(X)
    return est, rec


def function_recording(X, **params):
    """recursive_neighbor_agglomeration(X, **params), recording every
    warning: (its result, records)."""
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        out = recursive_neighbor_agglomeration(X, **params)
    return out, rec


class num_threads:
    """Context manager setting numba's thread count, restoring it after."""

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        self.saved = numba.get_num_threads()
        numba.set_num_threads(self.n)

    def __exit__(self, *exc):
        numba.set_num_threads(self.saved)


MAX_THREADS = min(2, numba.config.NUMBA_NUM_THREADS)


def readonly_memmaps(X, directory):
    """Read-only np.memmap copies of X, in C and in Fortran order."""
    out = []
    for order in ("C", "F"):
        path = os.path.join(directory, f"X_{order}.dat")
        mm = np.memmap(path, dtype=X.dtype, mode="w+", shape=X.shape, order=order)
        mm[:] = X
        mm.flush()
        del mm
        ro = np.memmap(path, dtype=X.dtype, mode="r", shape=X.shape, order=order)
        assert not ro.flags.writeable
        out.append(ro)
    return out


# --------------------------------------------------------------------------
# Random problems
# --------------------------------------------------------------------------

DATA_KINDS = ("normal", "constant", "zeros", "blocks", "integers", "duplicated")


def make_data(rng, n_samples, n_features, kind, dtype):
    if kind == "normal":
        X = rng.randn(n_samples, n_features)
    elif kind == "constant":
        X = np.full((n_samples, n_features), 3.25)
    elif kind == "zeros":
        X = np.zeros((n_samples, n_features))
    elif kind == "blocks":
        # piecewise-constant along the feature axis: many weight-0 edges
        n_blocks = rng.randint(1, max(2, n_features // 2) + 1)
        block = np.sort(rng.randint(0, n_blocks, n_features))
        X = rng.randn(n_samples, n_blocks)[:, block]
    elif kind == "integers":
        # many exact ties between weights
        X = rng.randint(0, 3, (n_samples, n_features)).astype(np.float64)
    elif kind == "duplicated":
        X = rng.randn(n_samples, n_features)
        cols = rng.randint(0, n_features, n_features // 2)
        X[:, cols] = X[:, rng.randint(0, n_features)][:, None]
    else:  # pragma: no cover
        raise AssertionError(kind)
    return np.ascontiguousarray(X, dtype=dtype)


def random_mask(rng, shape, density):
    mask = rng.rand(*shape) < density
    if not mask.any():
        mask.flat[rng.randint(mask.size)] = True
    return mask


def random_connectivity(rng, n, mean_degree, fmt):
    """A random sparse graph with self loops, duplicate entries, asymmetric
    entries and explicitly stored zeros; returns (matrix, reference A)."""
    density = min(1.0, mean_degree / max(n, 1))
    base = sparse.random(n, n, density=density, format="coo", random_state=rng,
                         data_rvs=lambda k: rng.uniform(0.5, 2.0, k))
    rows, cols, data = [base.row], [base.col], [base.data]
    if base.nnz:  # duplicates of some entries
        dup = rng.randint(0, base.nnz, max(1, base.nnz // 3))
        rows.append(base.row[dup])
        cols.append(base.col[dup])
        data.append(np.full(dup.shape[0], 0.25))
    loops = rng.randint(0, n, max(1, n // 4))  # self loops
    rows.append(loops)
    cols.append(loops)
    data.append(np.full(loops.shape[0], 3.0))
    zr, zc = rng.randint(0, n, 3), rng.randint(0, n, 3)  # explicit zeros
    rows.append(zr)
    cols.append(zc)
    data.append(np.zeros(3))
    rows, cols, data = (np.concatenate(a) for a in (rows, cols, data))
    coo = sparse.coo_matrix((data, (rows, cols)), shape=(n, n))
    reference = coo_adjacency(rows, cols, data, n)
    matrix = {"coo": coo, "csr": coo.tocsr(), "csc": coo.tocsc(), "lil": coo.tolil()}[fmt]
    return matrix, reference


def check_problem(X, K, graph_kw, A, threshold, memmap_dir, linkage="nilearn"):
    """Every section-5 invariant on one problem."""
    N = X.shape[1]
    c = n_components(A)
    n_iter = sufficient_n_iter(N, K, A)
    params = dict(n_clusters=K, n_iter=n_iter, threshold=threshold, linkage=linkage,
                  **graph_kw)

    est, rec = estimator_recording(X, **params)
    labels = est.labels_
    assert_partition(labels, est.n_clusters_, N)
    assert_clusters_connected(labels, A, est.n_clusters_)
    assert est.n_clusters_ == max(K, c)
    np.testing.assert_array_equal(est.sizes_, np.bincount(labels))
    assert est.sizes_.shape == (est.n_clusters_,)

    # Warnings: the components one exactly when c > K, nothing else.
    if c > K:
        assert len(rec) == 1, [str(w.message) for w in rec]
        assert rec[0].category is UserWarning
        msg = str(rec[0].message)
        assert re.search(rf"\b{c}\b", msg) and f"n_clusters={K}" in msg, msg
    else:
        assert rec == [], [str(w.message) for w in rec]

    # transform: X's float dtype, per-cluster means
    Xt = est.transform(X)
    assert Xt.dtype == X.dtype
    assert Xt.shape == (X.shape[0], est.n_clusters_)
    rtol = 1e-5 if X.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(Xt, cluster_means_reference(X, labels, est.n_clusters_),
                               rtol=rtol, atol=1e-6 if X.dtype == np.float32 else 1e-12)

    messages = [str(w.message) for w in rec]

    def refit(Xl, estimator=None):
        with warnings.catch_warnings(record=True) as again:
            warnings.simplefilter("always")
            e = (estimator or ReNA(**params)).fit(Xl)
        assert [str(w.message) for w in again] == messages
        return e

    # same labels on a second run, same estimator and a fresh one
    np.testing.assert_array_equal(refit(X, est).labels_, labels)
    np.testing.assert_array_equal(refit(X).labels_, labels)

    # the plain function agrees, with the same warnings
    (n_fun, labels_fun), rec_fun = function_recording(X, **params)
    assert n_fun == est.n_clusters_ and isinstance(n_fun, int)
    np.testing.assert_array_equal(labels_fun, labels)
    assert [str(w.message) for w in rec_fun] == messages

    # thread count
    for n in (1, MAX_THREADS):
        with num_threads(n):
            np.testing.assert_array_equal(refit(X).labels_, labels)

    # memory layout: Fortran, read-only, read-only memmaps (C and F)
    ro = X.copy()
    ro.setflags(write=False)
    layouts = [np.asfortranarray(X), ro, *readonly_memmaps(X, memmap_dir)]
    for Xl in layouts:
        est_l = refit(Xl)
        np.testing.assert_array_equal(est_l.labels_, labels)
        Xt_l = est_l.transform(Xl)
        assert Xt_l.dtype == X.dtype
        np.testing.assert_array_equal(Xt_l, Xt)

    # With a single level the partition invariants still hold, and a warning
    # names n_iter whenever the target was not reached.
    est1, rec1 = estimator_recording(X, **dict(params, n_iter=1))
    assert_partition(est1.labels_, est1.n_clusters_, N)
    assert_clusters_connected(est1.labels_, A, est1.n_clusters_)
    assert est1.n_clusters_ >= max(K, c)
    msgs = [str(w.message) for w in rec1]
    assert all(w.category is UserWarning for w in rec1)
    n_iter_msgs = [m for m in msgs if "n_iter=1" in m]
    if est1.n_clusters_ > max(K, c):
        assert len(n_iter_msgs) == 1, msgs
        assert re.search(rf"\b{est1.n_clusters_}\b", n_iter_msgs[0])
        assert re.search(rf"\b{max(K, c)}\b", n_iter_msgs[0])
    else:
        assert n_iter_msgs == [], msgs
    assert len(msgs) == len(n_iter_msgs) + (c > K)


def build_problem(rng, graph_kind, data_kind, dtype, n_samples):
    if graph_kind == "mask2d":
        mask = random_mask(rng, tuple(rng.randint(1, 9, 2)), rng.uniform(0.2, 1.0))
        graph_kw, A = {"mask_img": mask}, mask_adjacency(mask)
    elif graph_kind == "mask3d":
        mask = random_mask(rng, tuple(rng.randint(1, 6, 3)), rng.uniform(0.2, 1.0))
        graph_kw, A = {"mask_img": mask}, mask_adjacency(mask)
    elif graph_kind == "one_voxel":
        mask = np.zeros((3, 2, 4), dtype=bool)
        mask[1, 1, 2] = True
        graph_kw, A = {"mask_img": mask}, mask_adjacency(mask)
    elif graph_kind == "sparse":
        n = int(rng.randint(1, 70))
        fmt = ("coo", "csr", "csc", "lil")[rng.randint(4)]
        C, A = random_connectivity(rng, n, rng.uniform(0.0, 3.0), fmt)
        graph_kw = {"connectivity": C}
    elif graph_kind == "chain":
        n = int(rng.randint(1, 60))
        graph_kw = {}
        A = coo_adjacency(np.arange(n - 1), np.arange(1, n), np.ones(n - 1), n)
    else:  # pragma: no cover
        raise AssertionError(graph_kind)
    N = A.shape[0]
    X = make_data(rng, n_samples, N, data_kind, dtype)
    return X, graph_kw, A


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
