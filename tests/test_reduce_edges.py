"""``_kernels.reduce_edges`` against a NumPy reference, on random graphs and
on the shapes that made its old in-bucket insertion sort quadratic (a hub
whose edges all land in one bucket, in shuffled order)."""

import numpy as np
import pytest

from fastrena._kernels import reduce_edges
from fastrena.graphs import graph_from_edges


def reference(u, v, labels):
    """``(labels[u], labels[v])`` as (lo, hi) pairs, self loops dropped,
    deduplicated and sorted by (lo, hi), with ``np.unique``."""
    a = labels[u]
    b = labels[v]
    between = a != b
    pairs = np.stack([np.minimum(a, b)[between], np.maximum(a, b)[between]], axis=1)
    pairs = np.unique(pairs.reshape(-1, 2), axis=0)
    return pairs[:, 0], pairs[:, 1]


def assert_matches_reference(u, v, labels, n_new):
    new_u, new_v = reduce_edges(u, v, labels, n_new)
    ref_u, ref_v = reference(u, v, labels)
    assert new_u.dtype == new_v.dtype == np.int64
    np.testing.assert_array_equal(new_u, ref_u)
    np.testing.assert_array_equal(new_v, ref_v)
    return new_u, new_v


@pytest.mark.parametrize("halves", [False, True])
@pytest.mark.parametrize("seed", range(40))
def test_random_graphs_match_numpy(seed, halves, halves_from):
    # With halves, each graph is reduced in two halves (from one edge on):
    # pairs met in both halves, in one only, or in neither, and halves of
    # 0 or 1 edge.
    if halves:
        halves_from(1)
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    m = int(rng.integers(0, 400))
    u = rng.integers(0, n, m)
    v = rng.integers(0, n, m)
    n_new = int(rng.integers(1, n + 1))
    labels = rng.integers(0, n_new, n)
    assert_matches_reference(u, v, labels, n_new)


@pytest.mark.parametrize("seed", range(5))
def test_random_labels_on_a_lattice_match_numpy(seed):
    # The shape of a real level: a grid's edges, a few nodes per new node,
    # some new nodes with no member at all (n_new above the labels used).
    from fastrena.graphs import lattice_graph

    rng = np.random.default_rng(seed)
    graph = lattice_graph(np.ones((7, 8, 9), dtype=bool))
    n_new = graph.n_nodes // 3
    labels = np.sort(rng.integers(0, n_new - 5, graph.n_nodes))
    assert_matches_reference(graph.u, graph.v, labels, n_new)


@pytest.mark.parametrize("hub", ["first", "last", "middle"])
def test_star_in_shuffled_order_matches_numpy(hub):
    # Every edge in the hub's bucket, in random order, with duplicates and
    # both orientations; the hub is the lo end, the hi end, or both.
    rng = np.random.default_rng(7)
    n = 5001
    centre = {"first": 0, "last": n - 1, "middle": n // 2}[hub]
    leaves = np.setdiff1d(np.arange(n), [centre])
    ends = rng.permutation(np.concatenate([leaves, leaves[::3]]))
    flip = rng.random(ends.shape[0]) < 0.5
    u = np.where(flip, ends, centre)
    v = np.where(flip, centre, ends)
    new_u, new_v = assert_matches_reference(u, v, np.arange(n), n)
    assert new_u.shape[0] == n - 1
    assert set(new_u.tolist()) | set(new_v.tolist()) == set(range(n))


def test_star_made_by_merging_leaves_matches_numpy():
    # A chain whose every other node joins one new node: that node is a
    # hub with an edge to each of the others, each edge seen twice.
    n = 20001
    u = np.arange(n - 1)
    v = u + 1
    labels = np.where(np.arange(n) % 2 == 0, 0, (np.arange(n) + 1) // 2)
    n_new = int(labels.max()) + 1
    new_u, new_v = assert_matches_reference(u, v, labels, n_new)
    np.testing.assert_array_equal(new_u, np.zeros(n_new - 1))
    np.testing.assert_array_equal(new_v, np.arange(1, n_new))


def test_no_edges_and_only_self_loops():
    empty = np.zeros(0, dtype=np.int64)
    new_u, new_v = reduce_edges(empty, empty, np.arange(3), 3)
    assert new_u.shape == new_v.shape == (0,)
    new_u, new_v = reduce_edges(np.array([0, 1, 2]), np.array([1, 2, 0]),
                                np.zeros(3, dtype=np.int64), 1)
    assert new_u.shape == new_v.shape == (0,)


def test_exact_small_example():
    # Edges 0-1, 1-2, 2-3, 3-0, 1-3 with nodes {0, 1} -> 1 and {2, 3} -> 0.
    u = np.array([0, 1, 2, 3, 1])
    v = np.array([1, 2, 3, 0, 3])
    new_u, new_v = reduce_edges(u, v, np.array([1, 1, 0, 0]), 2)
    assert new_u.tolist() == [0]
    assert new_v.tolist() == [1]


def test_graph_from_edges_star_is_sorted_and_deduplicated():
    rng = np.random.default_rng(3)
    leaves = rng.permutation(np.repeat(np.arange(1, 3001), 2))
    graph = graph_from_edges(3001, leaves, np.zeros_like(leaves))
    np.testing.assert_array_equal(graph.u, np.zeros(3000))
    np.testing.assert_array_equal(graph.v, np.arange(1, 3001))


@pytest.fixture
def halves_from(monkeypatch):
    """Set the size from which reduce_edges works on two halves."""
    from fastrena._kernels import graph

    def set_to(n_edges):
        monkeypatch.setattr(graph, "PARALLEL_EDGES", n_edges)
    return set_to


@pytest.mark.parametrize("label_dtype", [np.int64, np.int32])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_two_halves_on_a_large_lattice_any_threads(n_threads, label_dtype, halves_from):
    # Past PARALLEL_EDGES (its value as shipped), a real level's shape: a
    # lattice's 0.1 M edges with random labels; the same edges whether one
    # thread reduces both halves or two do, and as the one-pass kernel.
    import numba

    from fastrena._kernels import graph as kernel_graph
    from fastrena.graphs import lattice_graph

    g = lattice_graph(np.ones((30, 40, 30), dtype=bool))
    assert g.n_edges >= kernel_graph.PARALLEL_EDGES
    rng = np.random.default_rng(n_threads)
    n_new = g.n_nodes // 4
    # int32: the refinement's labels (its exchange reduces with them).
    labels = rng.integers(0, n_new, g.n_nodes).astype(label_dtype)
    before = numba.get_num_threads()
    numba.set_num_threads(min(n_threads, numba.config.NUMBA_NUM_THREADS))
    try:
        new_u, new_v = assert_matches_reference(g.u, g.v, labels, n_new)
    finally:
        numba.set_num_threads(before)
    halves_from(g.n_edges + 1)
    one_u, one_v = reduce_edges(g.u, g.v, labels, n_new)
    np.testing.assert_array_equal(new_u, one_u)
    np.testing.assert_array_equal(new_v, one_v)


def test_two_halves_of_a_shuffled_star(halves_from):
    # A hub's edges shuffled, with duplicates in both orientations: each
    # pair in both halves, written once.
    halves_from(2)
    rng = np.random.default_rng(11)
    n = 3001
    leaves = np.arange(1, n)
    ends = rng.permutation(np.concatenate([leaves, leaves, leaves[::2]]))
    flip = rng.random(ends.shape[0]) < 0.5
    u = np.where(flip, ends, 0)
    v = np.where(flip, 0, ends)
    new_u, new_v = assert_matches_reference(u, v, np.arange(n), n)
    np.testing.assert_array_equal(new_u, np.zeros(n - 1))
    np.testing.assert_array_equal(new_v, leaves)
