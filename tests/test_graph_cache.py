"""Many fits on one graph: the graph of a mask or connectivity matrix is
built once per content in a process (``fastrena.graphs.GRAPH_CACHE``), for
bootstraps, folds and clones of one estimator; it never changes a label."""

import pickle
import threading

import numpy as np
import pytest
from scipy import sparse
from sklearn.base import clone
from sklearn.feature_extraction.image import grid_to_graph

from fastrena import ReNA
from fastrena.graphs import (GRAPH_CACHE, GraphCache, adjacency_graph, cached_adjacency_graph,
                             cached_lattice_graph, lattice_graph)


@pytest.fixture
def cache():
    GRAPH_CACHE.clear()
    size = GRAPH_CACHE.max_bytes
    yield GRAPH_CACHE
    GRAPH_CACHE.max_bytes = size
    GRAPH_CACHE.clear()


def smooth(mask, n_samples, seed=0):
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    return np.stack([gaussian_filter(rng.standard_normal(mask.shape), 1.0)[mask]
                     for _ in range(n_samples)])


def blob(shape=(12, 13, 11)):
    grid = np.indices(shape) - (np.array(shape) // 2)[:, None, None, None]
    return (grid ** 2).sum(axis=0) < 25


def same_graph(a, b):
    return (a.n_nodes == b.n_nodes and np.array_equal(a.u, b.u) and np.array_equal(a.v, b.v))


def uncached_labels(cache, estimator, X):
    """A fit with the cache off (it neither reads nor counts)."""
    size, cache.max_bytes = cache.max_bytes, 0
    try:
        return clone(estimator).fit(X).labels_
    finally:
        cache.max_bytes = size


@pytest.mark.parametrize("linkage", ["nilearn", "ward"])
@pytest.mark.parametrize("graph_from", ["mask", "connectivity"])
def test_bootstrap_fits_build_the_graph_once_and_give_the_uncached_labels(cache, linkage,
                                                                         graph_from):
    mask = blob()
    X = smooth(mask, 40)
    given = ({"mask_img": mask} if graph_from == "mask"
             else {"connectivity": grid_to_graph(*mask.shape, mask=mask)})
    rena = ReNA(n_clusters=30, linkage=linkage, **given)
    rng = np.random.default_rng(1)
    for b in range(4):
        rows = rng.choice(X.shape[0], 12, replace=True)
        # hidimstat's ensembles clone the estimator (a deep copy of its
        # mask or matrix) for every bootstrap.
        labels = clone(rena).fit(X[rows]).labels_
        np.testing.assert_array_equal(labels, uncached_labels(cache, rena, X[rows]))
    assert cache.info()["misses"] == 1 and cache.info()["hits"] == 3
    assert cache.info()["graphs"] == 1


def test_a_mask_changed_in_place_is_another_graph(cache):
    mask = blob()
    X = smooth(mask, 10)
    first = ReNA(mask, n_clusters=20).fit(X)
    mask[6, 6, :] = False          # the same array, fewer voxels
    X2 = smooth(mask, 10)
    second = ReNA(mask, n_clusters=20).fit(X2)
    assert second.n_features_in_ == X2.shape[1] < X.shape[1]
    assert same_graph(second.layout_.graph, lattice_graph(mask))
    np.testing.assert_array_equal(second.labels_, uncached_labels(cache, second, X2))
    assert cache.info()["misses"] == 2 and first.labels_.shape != second.labels_.shape


def test_a_connectivity_changed_in_place_is_another_graph(cache):
    mask = blob()
    conn = grid_to_graph(*mask.shape, mask=mask).tocoo()
    before = cached_adjacency_graph(conn)
    # Stored zeros are not edges: node 0 loses its edges, nothing else.
    conn.data[(conn.row == 0) | (conn.col == 0)] = 0
    after = cached_adjacency_graph(conn)
    assert same_graph(after, adjacency_graph(conn)) and after.n_edges < before.n_edges
    assert cache.info()["misses"] == 2


def test_what_a_caller_does_to_its_graph_does_not_reach_the_cache(cache):
    mask = blob()
    graph = cached_lattice_graph(mask)
    graph.u[:] = 0
    assert same_graph(cached_lattice_graph(mask), lattice_graph(mask))


def test_graphs_of_one_mask_share_their_neighbour_lists(cache):
    # Each caller gets its own edges, but the neighbour lists a refinement
    # reads (read-only) are built once for every graph of that mask, and
    # count in the cache's size.
    mask = blob()
    first = cached_lattice_graph(mask)
    before = cache.info()["bytes"]
    indptr, indices, _ = first.neighbour_lists()
    second = cached_lattice_graph(mask)
    assert second.u is not first.u
    assert second.neighbour_lists()[0] is indptr and second.neighbour_lists()[1] is indices
    cached_lattice_graph(blob((11, 12, 13)))
    assert cache.info()["bytes"] == (before + indptr.nbytes + indices.nbytes
                                     + 2 * lattice_graph(blob((11, 12, 13))).u.nbytes)
    # A fit on the mask refines on them: the same labels as a fit without
    # the cache, which builds its own.
    X = smooth(mask, 10)
    estimator = ReNA(mask, n_clusters=20, linkage="ward")
    np.testing.assert_array_equal(clone(estimator).fit(X).labels_,
                                  uncached_labels(cache, estimator, X))


def test_neighbour_lists_built_after_a_graph_was_kept_count_at_the_next_lookup():
    # The lists are built by a refinement after the graph was stored: the
    # next lookup (a hit) drops the least recently used graph to keep the
    # cache within its size, lists included.
    masks = [blob((10 + i, 11, 12)) for i in range(2)]
    edges = [2 * lattice_graph(mask).u.nbytes for mask in masks]
    cache = GraphCache(max_bytes=sum(edges) + 1000)
    first = cache.get("a", lambda: lattice_graph(masks[0]))
    cache.get("b", lambda: lattice_graph(masks[1]))
    assert cache.info()["graphs"] == 2
    indptr, indices, _ = first.neighbour_lists()
    assert indptr.nbytes + indices.nbytes > 1000
    # "b" is looked up: "a", the least recently used, goes.
    cache.get("b", lambda: pytest.fail("should be kept"))
    assert cache.info() == {"hits": 1, "misses": 2, "graphs": 1, "bytes": edges[1]}
    # A graph whose edges and lists alone pass the size goes too, on its
    # own lookup (the caller still gets its copy).
    again = cache.get("a", lambda: lattice_graph(masks[0]))
    assert again.neighbour_lists()[0] is not indptr
    small = GraphCache(max_bytes=edges[0] + 1000)
    kept = small.get("a", lambda: lattice_graph(masks[0]))
    kept.neighbour_lists()
    assert same_graph(small.get("a", lambda: pytest.fail("should be kept")), kept)
    assert small.info()["graphs"] == 0 and small.info()["bytes"] == 0


def test_the_cache_is_bounded_and_can_be_turned_off():
    masks = [blob((10 + i, 11, 12)) for i in range(4)]
    one = lattice_graph(masks[0])
    small = GraphCache(max_bytes=2 * (one.u.nbytes + one.v.nbytes) + 1000)
    for mask in masks:
        assert same_graph(small.get(("m", mask.shape), lambda m=mask: lattice_graph(m)),
                          lattice_graph(mask))
    assert small.info()["graphs"] == 2 and small.info()["bytes"] <= small.max_bytes
    # The oldest went first: the last two are kept.
    small.get(("m", masks[3].shape), lambda: pytest.fail("should be kept"))
    off = GraphCache(max_bytes=0)
    assert off.get("k", lambda: one) is one and off.get("k", lambda: one) is one
    assert off.info() == {"hits": 0, "misses": 0, "graphs": 0, "bytes": 0}


def test_threads_fitting_clones_share_the_cache_safely(cache):
    masks = [blob(), blob((11, 12, 13))]
    data = [smooth(m, 15, seed=i) for i, m in enumerate(masks)]
    expected = [uncached_labels(cache, ReNA(m, n_clusters=25, linkage="ward"), X)
                for m, X in zip(masks, data)]
    cache.clear()
    results = {}
    start = threading.Barrier(8)

    def fit(i):
        start.wait()
        m, X = masks[i % 2], data[i % 2]
        results[i] = ReNA(m.copy(), n_clusters=25, linkage="ward").fit(X).labels_

    threads = [threading.Thread(target=fit, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(8):
        np.testing.assert_array_equal(results[i], expected[i % 2])
    info = cache.info()
    # Two threads missing one mask at once both build it (and get the same).
    assert info["hits"] + info["misses"] == 8 and 2 <= info["misses"] <= 8
    assert info["graphs"] == 2


def test_pickled_estimators_fit_on_the_cached_graph(cache):
    mask = blob()
    X = smooth(mask, 20)
    conn = sparse.csr_matrix(grid_to_graph(*mask.shape, mask=mask))
    rena = ReNA(n_clusters=30, connectivity=conn, linkage="ward")
    fitted = clone(rena).fit(X)
    again = pickle.loads(pickle.dumps(rena)).fit(X)
    np.testing.assert_array_equal(again.labels_, fitted.labels_)
    assert cache.info()["hits"] == 1
    # A fitted one carries its own graph, not the cache's.
    restored = pickle.loads(pickle.dumps(fitted))
    assert same_graph(restored.layout_.graph, adjacency_graph(conn))
    np.testing.assert_array_equal(restored.transform(X), fitted.transform(X))
