"""Exact ties: quantized data must not percolate.

A node chooses one of its tied lightest edges as if the data carried
infinitesimal noise: on its first sample (default linkage), then on the
edge's weight (an edge priority; ``fastrena._kernels.nearest_neighbor_edges``);
only edges of weight 0 (identical signals, which cost nothing to merge) are
all kept. Checked here: ramps, where every edge is tied, give clusters of
bounded extent; plateaus of identical signals merge whole; the tie-break is
the same for every thread count, layout and Dask chunking; and on quantized
smooth fields the error is Ward's (``linkage="ward"``) or that of the same
data with its ties broken by noise (default).
"""

import dask
import dask.array as da
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from sklearn.cluster import FeatureAgglomeration

from fastrena import ReNA, _kernels, recursive_neighbor_agglomeration

from helpers import assert_clusters_connected, edge_priority, tie_order
from helpers import MAX_THREADS, assert_partition, mask_adjacency, num_threads


def ramp(shape):
    """x + y (+ z): every edge of the grid joins values one apart."""
    return np.indices(shape).sum(axis=0).reshape(1, -1).astype(np.float64)


def value_spans(X, labels, n_clusters):
    high = np.full(n_clusters, -np.inf)
    low = np.full(n_clusters, np.inf)
    np.maximum.at(high, labels, X[0])
    np.minimum.at(low, labels, X[0])
    return high - low


def reconstruction_error(X, labels):
    n = int(labels.max()) + 1
    sizes = np.bincount(labels, minlength=n)
    means = np.zeros((X.shape[0], n))
    np.add.at(means.T, labels, X.T)
    return (np.linalg.norm(X - (means / sizes)[:, labels])
            / np.linalg.norm(X - X.mean(axis=1, keepdims=True)))


@pytest.mark.parametrize("linkage", ["nilearn", "ward"])
@pytest.mark.parametrize("K", [30, 150, 600])
def test_a_tied_chain_ramp_splits_into_short_runs(linkage, K):
    # 0, 1, 2, ...: every weight is 1. Keeping every tied edge merged the
    # whole chain in one level; the largest cluster must stay within a
    # small factor of N / K.
    N = 3000
    X = ramp((N,))
    n, labels = recursive_neighbor_agglomeration(X, n_clusters=K, n_iter=30,
                                                 linkage=linkage)
    assert n == K
    assert_partition(labels, K, N)
    bound = 2 if linkage == "ward" else 8
    assert np.bincount(labels).max() <= bound * N / K


@pytest.mark.parametrize("linkage", ["nilearn", "ward"])
@pytest.mark.parametrize("shape", [(60, 50), (20, 20, 20)])
def test_a_tied_grid_ramp_gives_clusters_of_few_levels(linkage, shape):
    X = ramp(shape)
    mask = np.ones(shape, dtype=bool)
    N = X.shape[1]
    for K in (N // 100, N // 20, N // 5):
        rena = ReNA(mask, n_clusters=K, n_iter=30, linkage=linkage).fit(X)
        assert rena.n_clusters_ == K
        assert_clusters_connected(rena.labels_, mask_adjacency(mask), K)
        # The ramp spans 108 or 57 values. A cube of N / K nodes spans
        # d * (side - 1); no cluster may span more than twice that (+ 2):
        # the extent K forces, not percolation (measured: at most 1.4x the
        # jittered ramp's largest span).
        d = len(shape)
        compact = d * ((N / K) ** (1 / d) - 1)
        assert value_spans(X, rena.labels_, K).max() <= 2 * compact + 2


@pytest.mark.parametrize("linkage", ["nilearn", "ward"])
def test_a_plateau_of_identical_signals_merges_whole(linkage):
    # Features 0..199 hold the same signal (weight-0 edges), 200..399 a
    # ramp far above it. The plateau costs nothing as one cluster: it is
    # one after any fit that has room for it.
    rng = np.random.default_rng(0)
    X = np.concatenate([np.tile(rng.standard_normal((3, 1)), 200),
                        np.cumsum(np.abs(rng.standard_normal((3, 200))), axis=1) + 1000],
                       axis=1)
    n, labels = recursive_neighbor_agglomeration(X, n_clusters=40, n_iter=30,
                                                 linkage=linkage)
    assert n == 40
    assert np.unique(labels[:200]).shape[0] == 1
    if linkage == "ward":
        # Ward's cost keeps the plateau apart from the distant ramp (the
        # default rule merges every node with its nearest neighbour at
        # every level, however far).
        assert not np.isin(labels[200:], labels[:200]).any()
    # With the default rule the plateau is one node after the first level.
    if linkage == "nilearn":
        with pytest.warns(UserWarning, match="n_iter=1"):
            _, labels1 = recursive_neighbor_agglomeration(X, n_clusters=40, n_iter=1)
        assert np.unique(labels1[:200]).shape[0] == 1


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("linkage", ["nilearn", "ward"])
def test_tie_break_is_the_same_for_threads_layouts_and_chunks(linkage, dtype):
    rng = np.random.RandomState(5)
    mask = rng.rand(18, 17, 16) < 0.9
    N = int(mask.sum())
    X = gaussian_filter(rng.randn(130, *mask.shape), (0, 2, 2, 2)).reshape(130, -1)
    X = np.round(X[:, mask.ravel()] * 3).astype(dtype)   # a few levels: ties
    params = dict(mask_img=mask, n_clusters=200, n_iter=20, linkage=linkage)
    results = []
    for n in (1, MAX_THREADS):
        with num_threads(n):
            for Xl in (X, np.asfortranarray(X)):
                results.append(ReNA(**params).fit(Xl).labels_)
    with dask.config.set(scheduler="threads", **{"fastrena.in-memory-limit": 0}):
        for chunks in ((64, -1), (100, 500)):
            results.append(ReNA(**params).fit(da.from_array(X, chunks=chunks)).labels_)
    assert_partition(results[0], 200, N)
    assert_clusters_connected(results[0], mask_adjacency(mask), 200)
    for labels in results[1:]:
        np.testing.assert_array_equal(labels, results[0])


@pytest.fixture(scope="module")
def quantized_fields():
    """Three smooth fields on a 20^3 grid, rounded to integers (about 9
    levels each): most neighbouring voxels are tied."""
    rng = np.random.default_rng(0)
    shape = (20, 20, 20)
    X = np.stack([gaussian_filter(rng.standard_normal(shape), 2.0).ravel()
                  for _ in range(3)])
    return np.ones(shape, dtype=bool), np.round(X / X.std() * 2)


def test_ward_linkage_reaches_wards_error_on_quantized_fields(quantized_fields):
    mask, X = quantized_fields
    K = X.shape[1] // 50
    ward = FeatureAgglomeration(K, connectivity=mask_adjacency(mask)).fit(X)
    ours = ReNA(mask, n_clusters=K, linkage="ward").fit(X)
    assert ours.n_clusters_ == K
    assert reconstruction_error(X, ours.labels_) <= 1.10 * reconstruction_error(
        X, ward.labels_)


def tied_over_jittered_error(mask, X):
    """The default's error on tied data ``X`` over its error (measured on
    ``X``) when the ties are broken by 1e-6 noise, K = N / 50."""
    K = X.shape[1] // 50
    jittered = X + 1e-6 * np.random.default_rng(1).random(X.shape)
    tied = ReNA(mask, n_clusters=K).fit(X)
    broken = ReNA(mask, n_clusters=K).fit(jittered)
    assert tied.n_clusters_ == broken.n_clusters_ == K
    return reconstruction_error(X, tied.labels_) / reconstruction_error(X, broken.labels_)


def test_default_error_on_quantized_fields_is_that_of_jittered_data(quantized_fields):
    assert tied_over_jittered_error(*quantized_fields) <= 1.2


@pytest.mark.parametrize("shape", [(30, 30, 30), (200, 150)])
def test_default_error_on_a_ramp_is_that_of_jittered_data(shape):
    # Every edge is tied. Breaking ties by noise on each edge alone (an
    # independent priority) gave 1.29x the jittered error on a 40^3 ramp:
    # the choices of neighbouring nodes disagree as they do not on real
    # data, where they share the nodes' values.
    assert tied_over_jittered_error(np.ones(shape, dtype=bool), ramp(shape)) <= 1.1


def test_default_tie_break_is_first_sample_noise_then_edge_priority():
    # A random walk of steps +-1: every edge weighs 1, every node is tied.
    # The choice follows the first sample's noise; with no key, the edge
    # priority alone (a different choice).
    rng = np.random.default_rng(3)
    N = 400
    x0 = np.cumsum(rng.choice([-1.0, 1.0], N))
    x0 *= np.sign(x0[1] - x0[0])           # as oriented by the fit (x0[1] > x0[0])
    X = np.stack([x0, np.zeros(N)])
    u = np.arange(N - 1, dtype=np.int64)
    v = u + 1
    w = (X[:, u] - X[:, v]) ** 2
    w = w.sum(axis=0)                      # all 1: every node is tied
    chosen = {}
    for a in range(N):
        edges = [e for e in (a - 1, a) if 0 <= e < N - 1]
        chosen[a] = min(edges, key=lambda e: (tie_order(x0, int(u[e]), int(v[e])), e))
    expected = np.zeros(N - 1, dtype=bool)
    for a, e in chosen.items():
        expected[e] = True
    keep = _kernels.nearest_neighbor_edges(N, u, v, w, 1e-7, False, X[0].copy())
    np.testing.assert_array_equal(keep, expected)
    # An empty key: the edge priority alone.
    by_priority = np.zeros(N - 1, dtype=bool)
    for a in range(N):
        edges = [e for e in (a - 1, a) if 0 <= e < N - 1]
        by_priority[min(edges, key=lambda e: (edge_priority(int(u[e]), int(v[e])), e))] = True
    keep = _kernels.nearest_neighbor_edges(N, u, v, w, 1e-7, False, np.zeros(0))
    np.testing.assert_array_equal(keep, by_priority)
    assert not np.array_equal(expected, by_priority)


@pytest.mark.parametrize("linkage", ["nilearn", "ward"])
def test_tied_data_and_its_negative_get_the_same_labels(linkage):
    # The first-sample noise flips with the data (it is oriented by the
    # first value unequal to the first), so labels still depend on
    # distances only.
    X = ramp((25, 25, 25))
    X = np.concatenate([X, X[:, ::-1] % 7])
    mask = np.ones((25, 25, 25), dtype=bool)
    labels = [ReNA(mask, n_clusters=300, linkage=linkage).fit(Y).labels_
              for Y in (X, -X, X - 1000.0)]
    np.testing.assert_array_equal(labels[1], labels[0])
    np.testing.assert_array_equal(labels[2], labels[0])
