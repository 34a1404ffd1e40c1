"""Boundary refinement (issue 26, fastrena.refine): every cluster stays
connected, K is kept, the within-cluster sum of squares never rises (a
numpy computation written here, independent of fastrena's) and never
rises from one sweep to the next; known moves on hand-made graphs, and
refused ones on a star and a U; the same labels whatever the thread
count, memory layout, Dask chunking and power-of-two scale."""

import os
import subprocess
import sys

import numpy as np
import pytest
from numba import njit
from scipy.ndimage import gaussian_filter
from scipy.sparse.csgraph import connected_components

from fastrena import ReNA
from fastrena._kernels import lanes as lanes_kernels
from fastrena.graphs import chain_graph, graph_from_edges, lattice_graph
from fastrena.refine import refine_labels
from helpers import chain_adjacency, first_appearance, refined_as_a_ward_fit
from helpers import within_sse as sse


def kernel_adjacency(graph):
    """The refinement's own CSR of the graph (each node's neighbours in
    edge order, in 32 bits), as its sweeps read it."""
    indptr, indices, _ = graph.neighbour_lists()
    return indptr, indices


def assert_connected_partition(graph, labels, k):
    """K clusters 0..K-1, each connected in the graph."""
    assert np.array_equal(np.unique(labels), np.arange(k))
    A = graph.to_adjacency()
    for c in range(k):
        members = np.flatnonzero(labels == c)
        n_parts, _ = connected_components(A[members][:, members], directed=False)
        assert n_parts == 1, f"cluster {c} ({members.shape[0]} features) in {n_parts} parts"


def test_a_misplaced_feature_moves_to_its_side():
    X = np.array([[0.0, 0.1, 1.0, 1.1]])
    labels, n_iter = refine_labels(X, chain_adjacency(4), [0, 0, 0, 1], return_n_iter=True)
    np.testing.assert_array_equal(labels, [0, 0, 1, 1])
    # The second sweep moved nothing, and stopped.
    assert n_iter == 2
    np.testing.assert_array_equal(refine_labels(X, chain_adjacency(4), [0, 0, 0, 1],
                                                max_iter=0), [0, 0, 0, 1])


def test_a_move_that_would_empty_a_cluster_is_not_made():
    # Feature 1 alone is closer to cluster 0's mean, but it is cluster 1.
    X = np.array([[0.0, 0.5, 5.0]])
    np.testing.assert_array_equal(refine_labels(X, chain_adjacency(3), [0, 1, 2]), [0, 1, 2])


def star(n_leaves):
    return graph_from_edges(n_leaves + 1, np.zeros(n_leaves, dtype=np.int64),
                            np.arange(1, n_leaves + 1))


def test_star_centre_never_disconnects_its_leaves():
    """The centre (0) would gain by joining leaf 3's cluster, but its own
    cluster's leaves 1 and 2 touch nothing else: it stays; with a single
    leaf left behind, it moves."""
    graph = star(3)
    X = np.array([[10.0, 0.0, 0.0, 10.0]])
    np.testing.assert_array_equal(refine_labels(X, graph, [0, 0, 0, 1]), [0, 0, 0, 1])
    X = np.array([[10.0, 0.0, 10.0, 10.0]])
    labels = refine_labels(X, graph, [0, 0, 1, 2])
    np.testing.assert_array_equal(labels, [0, 1, 0, 2])
    assert sse(X, labels) < sse(X, [0, 0, 1, 2])


def test_star_with_many_leaves_keeps_every_cluster_connected():
    rng = np.random.default_rng(0)
    n = 3000
    graph = star(n)
    X = rng.standard_normal((2, n + 1))
    # The centre with half the leaves; the other leaves alone (a leaf
    # touches only the centre: a cluster without the centre is one leaf).
    labels = np.zeros(n + 1, dtype=np.int64)
    lone = np.arange(1, n + 1, 2)
    labels[lone] = np.arange(1, lone.shape[0] + 1)
    out = refine_labels(X, graph, labels)
    assert_connected_partition(graph, out, lone.shape[0] + 1)
    assert sse(X, out) <= sse(X, labels)


def test_a_feature_moves_with_the_piece_it_holds_to_its_cluster():
    """Feature 2 is nearer cluster b = {4} but holds feature 3 (a pendant of
    cluster a) to the rest of a: moving 2 alone would cut 3 off, and 3
    alone has no neighbour in b. 2 and 3 move together (the sum of
    squares falls from 1 to 0), in one sweep; a keeps 0 and 1, connected."""
    X = np.array([[0.0, 0.0, 1.0, 1.0, 1.0]])
    u, v = np.array([(0, 1), (1, 2), (2, 3), (2, 4)]).T
    graph = graph_from_edges(5, u, v)
    labels = np.array([0, 0, 0, 0, 1])
    out, n_iter = refine_labels(X, graph, labels, max_iter=1, return_n_iter=True)
    np.testing.assert_array_equal(out, [0, 0, 1, 1, 1])
    assert sse(X, out) == 0.0 < sse(X, labels)
    # Not when the pendant is far from b: taking 3 along would cost more
    # in b than 2 gains there (4/3 * 2**2 against 2 * 0.5**2), and 2 stays.
    X[0, 3] = -3.0
    np.testing.assert_array_equal(refine_labels(X, graph, labels, max_iter=1), labels)


def _outcome(kernels, *args):
    """kernels.removal_outcome to its end: a search paused on a piece
    (PIECE_FIRST) resumed, as a sweep does when the piece would gain."""
    state = kernels.search_state()
    outcome = kernels.removal_outcome(*args, state)
    if outcome[0] == kernels.PIECE_FIRST:
        outcome = kernels.removal_outcome(*args, state)
    return outcome


def _root(parent, a):
    """The root of a's tree in the union-find forest ``parent`` (read only)."""
    while parent[a] != a:
        a = parent[a]
    return a


@pytest.mark.parametrize("seed", range(6))
def test_the_connectivity_test_is_sound_for_any_budget_and_exact_without_one(seed):
    """kernels.connectivity.removal_outcome on random clusters of random
    graphs (a grid with edges removed, plus random chords) against scipy:
    CONNECTED only when the cluster without the feature keeps all the
    feature's neighbours in it together; ONE_PIECE only when it falls into
    exactly two pieces, the piece returned being the smaller, whole;
    whatever the budget. With a budget that never runs out, exactly
    then. And the searches from all the neighbours at once answer within
    a budget where one search from the first neighbour alone would not
    (the neighbours meet pairwise, close by, while the first is far from
    the last)."""
    from fastrena._kernels import connectivity as kernels

    rng = np.random.default_rng(seed)
    mask = np.ones((14, 13), dtype=bool)
    full = lattice_graph(mask)
    keep = rng.random(full.n_edges) < 0.8
    n = full.n_nodes
    chords = rng.integers(0, n, (2, 12))
    u = np.concatenate([full.u[keep], chords.min(axis=0)])
    v = np.concatenate([full.v[keep], chords.max(axis=0)])
    graph = graph_from_edges(n, u[u != v], v[u != v])
    indptr, indices = kernel_adjacency(graph)
    A = graph.to_adjacency()
    labels = rng.integers(0, 3, n)
    labels[rng.random(n) < 0.5] = 0
    visited = np.full(n, -1)
    origin = np.zeros(n, dtype=np.int64)
    queue = np.empty(n, dtype=np.int64)
    sources = np.empty((2, int(np.diff(indptr).max())), dtype=np.int64)
    stamp = 0
    n_pieces_found = 0
    for i in range(n):
        a = labels[i]
        near = [j for j in indices[indptr[i]:indptr[i + 1]] if labels[j] == a]
        rest = np.flatnonzero((labels == a) & (np.arange(n) != i))
        _, parts = connected_components(A[rest][:, rest], directed=False)
        part_of = dict(zip(rest, parts))
        n_parts = len({part_of[j] for j in near})
        for budget in (0, 4, 16, 64, 10 ** 9):
            stamp += 1
            outcome, cut, end = _outcome(kernels, i, a, int((labels == a).sum()), labels,
                                                        indptr, indices, visited, origin, queue,
                                                        sources, stamp, budget)
            assert outcome in (kernels.CONNECTED, kernels.ONE_PIECE, kernels.UNKNOWN)
            assert outcome != kernels.CONNECTED or n_parts <= 1, (i, budget)
            if outcome == kernels.ONE_PIECE:
                # One of the two pieces, whole; in a connected cluster (as
                # refined clusters are) the smaller, or on equal sizes the
                # one holding the smaller feature.
                assert n_parts == 2, (i, budget)
                piece = {int(q) for q in queue[:end] if _root(sources[0], origin[q]) == cut}
                pieces = sorted(({int(j) for j in rest if part_of[j] == part_of[k]}
                                 for k in near), key=lambda c: (len(c), min(c)))
                assert piece in pieces, (i, budget)
                if len(pieces[0]) + len(pieces[-1]) == rest.shape[0]:
                    assert piece == pieces[0], (i, budget)
                n_pieces_found += budget == 10 ** 9
            if budget == 10 ** 9 or len(near) <= 1:
                expected = {0: kernels.CONNECTED, 1: kernels.CONNECTED,
                            2: kernels.ONE_PIECE}.get(n_parts, kernels.UNKNOWN)
                assert outcome == expected, (i, budget)
    assert n_pieces_found > 0


@pytest.mark.parametrize(("n_star", "expected"), [(5, [1, 2, 3, 4, 5]), (2, [6, 7, 8]),
                                                (4, [1, 2, 3, 4, 5])])
def test_the_piece_returned_is_the_smaller_whichever_the_search_finds_first(n_star, expected):
    """Feature 0 joins a path 1 - 2 - 3 - 4 - 5 and a star (centre 6, leaves
    7...): without 0, two pieces. A star of 5 leaves (6 features) is found
    whole first (its leaves are one step from its centre) but is the
    larger: the search goes on until the path runs out and returns it. A
    star of 2 leaves is the smaller; one of 4 (5 features, as the path)
    ties, and the path holds the smaller feature."""
    from fastrena._kernels import connectivity as kernels

    edges = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (0, 6)]
    edges += [(6, 7 + k) for k in range(n_star)]
    u, v = np.array(edges).T
    n = 7 + n_star
    indptr, indices = kernel_adjacency(graph_from_edges(n, u, v))
    labels = np.zeros(n, dtype=np.int64)
    scratch = (np.full(n, -1), np.zeros(n, dtype=np.int64), np.empty(n, dtype=np.int64),
               np.empty((2, 2), dtype=np.int64))
    outcome, root, end = _outcome(kernels, 0, 0, n, labels, indptr, indices, *scratch, 1,
                                                 10 ** 9)
    assert outcome == kernels.ONE_PIECE
    assert sorted(q for q in scratch[2][:end] if _root(scratch[3][0], scratch[1][q]) == root) == (
        expected)


def test_a_search_pauses_on_a_smaller_piece_until_asked_to_go_on():
    """Feature 0's neighbours in its cluster: 1 (a pendant) and 2, 3 (joined
    through 4 and 5). 1 runs out first, while 2 and 3 have not met: the
    search pauses (PIECE_FIRST, the piece {1}) so that the sweep asks
    whether moving 0 and 1 gains before it pays for the rest; resumed, it
    proves the rest one piece (ONE_PIECE, the same piece)."""
    from fastrena._kernels import connectivity as kernels

    u, v = np.array([(0, 1), (0, 2), (0, 3), (2, 4), (4, 5), (5, 3)]).T
    indptr, indices = kernel_adjacency(graph_from_edges(6, u, v))
    labels = np.zeros(6, dtype=np.int64)
    scratch = (np.full(6, -1), np.zeros(6, dtype=np.int64), np.empty(6, dtype=np.int64),
               np.empty((2, 3), dtype=np.int64))
    state = kernels.search_state()
    args = (0, 0, 6, labels, indptr, indices, *scratch, 1, 10 ** 9, state)
    outcome, root, end = kernels.removal_outcome(*args)
    assert (outcome, state[7]) == (kernels.PIECE_FIRST, 1)
    assert [q for q in scratch[2][:end] if _root(scratch[3][0], scratch[1][q]) == root] == [1]
    assert kernels.removal_outcome(*args)[:2] == (kernels.ONE_PIECE, root)
    assert state[7] == 0


def test_the_neighbours_meet_pairwise_within_a_budget():
    """Feature 0's neighbours in its cluster, 1, 2 and 3, meet pairwise two
    steps away (1 - 4 - 2 and 2 - 5 - 3); 1 also leads into a dead end of
    40 features. The joint search is done after 8 adjacency slots: 1's
    list (0, 4, 6), 2's (0, then 4, where 1's search was: joined; 5), 3's
    (0, then 5, where 2's search was: joined). A search from 1 alone
    would read 14, half the dead end's start included, before it met 3."""
    from fastrena._kernels import connectivity as kernels

    edges = [(0, 1), (0, 2), (0, 3), (1, 4), (2, 4), (2, 5), (3, 5), (1, 6)]
    edges += [(j, j + 1) for j in range(6, 45)]
    u, v = np.array(edges).T
    graph = graph_from_edges(46, u, v)
    indptr, indices = kernel_adjacency(graph)
    labels = np.zeros(46, dtype=np.int64)
    scratch = (np.full(46, -1), np.zeros(46, dtype=np.int64), np.empty(46, dtype=np.int64),
               np.empty((2, 3), dtype=np.int64))
    connected = (kernels.CONNECTED, -1, 0)
    assert _outcome(kernels, 0, 0, 46, labels, indptr, indices, *scratch, 1, 8) == connected
    assert _outcome(kernels, 0, 0, 46, labels, indptr, indices, *scratch, 2, 7)[0] == (
        kernels.UNKNOWN)
    # Without 3 - 5, 3 is cut off: a group with nothing left to visit (its
    # one node, 3, queued third), while 1 and 2 join.
    keep = (u != 3) | (v != 5)
    cut = graph_from_edges(46, u[keep], v[keep])
    indptr, indices = kernel_adjacency(cut)
    outcome, root, end = _outcome(kernels, 0, 0, 46, labels, indptr, indices, *scratch, 3,
                                                 10 ** 9)
    assert (outcome, root) == (kernels.ONE_PIECE, 2)
    assert [q for q in scratch[2][:end] if _root(scratch[3][0], scratch[1][q]) == 2] == [3]


def test_a_bridge_of_a_u_shaped_cluster_stays():
    """3 x 3 grid: cluster 0 is a U, cluster 1 the two cells inside it.
    The bottom middle cell matches cluster 1 but holds the U's arms
    together: it stays. A corner of the U that matches moves."""
    graph = lattice_graph(np.ones((3, 3), dtype=bool))
    labels = np.array([[0, 1, 0],
                       [0, 1, 0],
                       [0, 0, 0]]).ravel()
    X = np.array([[0, 5, 0],
                  [0, 5, 0],
                  [0, 5, 0]], dtype=float).ravel()[None]
    np.testing.assert_array_equal(refine_labels(X, graph, labels), labels)
    X = np.array([[5, 5, 0],
                  [0, 5, 0],
                  [0, 0, 0]], dtype=float).ravel()[None]
    out = refine_labels(X, graph, labels)
    np.testing.assert_array_equal(out, [0, 0, 1, 1, 0, 1, 1, 1, 1])


def test_chain_clusters_stay_runs():
    rng = np.random.default_rng(1)
    n = 5000
    X = np.cumsum(rng.standard_normal((3, n)), axis=1)
    graph = chain_graph(n)
    labels = np.repeat(np.arange(n // 10), 10)
    out = refine_labels(X, graph, labels)
    assert_connected_partition(graph, out, n // 10)
    # A partition of a chain into connected clusters is one into runs.
    assert (np.diff(out) >= 0).all()
    assert sse(X, out) < sse(X, labels)


def random_cases():
    rng = np.random.default_rng(2)
    mask = np.ones((14, 13, 12), dtype=bool)
    mask[:4, :5] = False
    smooth = gaussian_filter(rng.standard_normal((5,) + mask.shape), (0, 1.5, 1.5, 1.5))
    cases = {
        "smooth, 5 samples": (smooth[:, mask], {"mask_img": mask}),
        "one map": (smooth[:1, mask], {"mask_img": mask}),
        "rounded map": (np.round(smooth[:1, mask] * 4), {"mask_img": mask}),
        "noise": (rng.standard_normal((2, int(mask.sum()))), {"mask_img": mask}),
        "image": (gaussian_filter(rng.standard_normal((40, 40)), 2).ravel()[None],
                  {"mask_img": np.ones((40, 40), dtype=bool)}),
    }
    return cases


@pytest.mark.parametrize("name", list(random_cases()))
@pytest.mark.parametrize("linkage", ["ward", "nilearn"])
@pytest.mark.parametrize("fraction", [0.02, 0.1])
def test_invariants_and_sweeps_never_raise_the_error(name, linkage, fraction):
    X, graph_spec = random_cases()[name]
    k = max(2, int(fraction * X.shape[1]))
    plain = ReNA(n_clusters=k, linkage=linkage, max_refine_iter=0, compute_full_tree=True,
                 **graph_spec).fit(X)
    graph = plain.layout_.graph
    before = sse(X, plain.labels_)
    errors = [before]
    for sweeps in range(1, 6):
        out = refine_labels(X, graph, plain.labels_, sweeps)
        assert_connected_partition(graph, out, plain.n_clusters_)
        errors.append(sse(X, out))
    # Rounding of this sum only: 1e-12 of it.
    tolerance = 1e-12 * before
    assert all(b <= a + tolerance for a, b in zip(errors, errors[1:])), errors
    fit = ReNA(n_clusters=k, linkage=linkage, max_refine_iter=5, **graph_spec).fit(X)
    if linkage == "ward":
        # The exchange: from the tree's finer cut, merged back.
        out = refined_as_a_ward_fit(X, graph, plain.labels_at, plain.n_clusters_, 5)
        assert_connected_partition(graph, out, plain.n_clusters_)
    np.testing.assert_array_equal(fit.labels_, out)
    assert fit.n_clusters_ == plain.n_clusters_
    if name != "rounded map" and k >= 10:
        # Smooth data always has a border feature to move.
        assert errors[-1] < before and sse(X, fit.labels_) < before


def reference_sweeps(X, graph, labels, sweeps, n_blocks=1):
    """Hartigan's single-feature moves as the module docstring states them,
    in plain numpy. A feature's turn: a border feature of a cluster of 2 or
    more moves to the neighbouring cluster of least
    ``n_b / (n_b + 1) ||x - mu_b||^2`` (first met in its adjacency list on
    a tie) when that is below ``n_a / (n_a - 1) ||x - mu_a||^2`` by more
    than the margin, and its cluster stays connected without it (a whole
    breadth-first search, with no budget). A sweep: the clusters, in order
    of their first feature (as the sweep starts), dealt to ``n_blocks``
    blocks in runs of about
    equal numbers of features (cluster c to block ``m * n_blocks // n``, m
    the features of the clusters before it); for each block, the features
    of its clusters in index order, a feature waiting when a neighbouring
    cluster belongs to another block; then those that waited, in index
    order. One block throughout when the first sweep's deal would leave
    more than half of the features 0, 8, 16, ... waiting (a neighbour in
    another block's cluster)."""
    X = np.asarray(X, dtype=np.float64)
    X = X - X[:, :1]
    A = graph.to_adjacency()
    labels = np.array(labels, copy=True)
    n = X.shape[1]

    def deal():
        owner, before = {}, 0
        for c in labels:
            if c not in owner:
                owner[c] = before * n_blocks // n
                before += int((labels == c).sum())
        return owner

    if n_blocks > 1:
        owner = deal()
        examined = range(0, n, 8)
        waiting = sum(
            any(owner[labels[j]] != owner[labels[i]]
                for j in A.indices[A.indptr[i]:A.indptr[i + 1]]) for i in examined)
        if 2 * waiting > len(examined):
            n_blocks = 1

    def turn(i, block, owner):
        """The features moved (0: none), or -1: i waits."""
        a = labels[i]
        members = labels == a
        n_a = int(members.sum())
        neighbours = A.indices[A.indptr[i]:A.indptr[i + 1]]
        if n_a < 2 or np.all(labels[neighbours] == a):
            return 0
        if block is not None and any(owner[c] != block for c in set(labels[neighbours]) | {a}):
            return -1
        x = X[:, i]
        mu_a = X[:, members].mean(axis=1)
        d_a = float(((x - mu_a) ** 2).sum())
        leave = n_a / (n_a - 1.0) * d_a
        bar = leave - 2.0 ** -30 * n_a / (n_a - 1.0) * (
            d_a + float((x ** 2).sum() + (mu_a ** 2).sum()))
        best, best_cost = -1, bar
        for b in dict.fromkeys(labels[neighbours]):
            if b == a:
                continue
            in_b = labels == b
            n_b = int(in_b.sum())
            join = n_b / (n_b + 1.0) * float(((x - X[:, in_b].mean(axis=1)) ** 2).sum())
            if join < best_cost:
                best, best_cost = b, join
        if best < 0:
            return 0
        rest = np.flatnonzero(members & (np.arange(n) != i))
        n_parts, part = connected_components(A[rest][:, rest], directed=False)
        if n_parts == 2:
            # i moves with the smaller piece (on equal sizes, the one
            # holding the smaller feature) if that lowers the sum of squares.
            pieces = sorted((rest[part == p] for p in range(2)),
                            key=lambda c: (c.shape[0], c.min()))
            S = np.concatenate([[i], pieces[0]])
            m = S.shape[0]
            mu_S = X[:, S].mean(axis=1)
            mu_b = X[:, labels == best].mean(axis=1)
            n_b = int((labels == best).sum())
            factor = n_a * m / (n_a - m)
            d_a = float(((mu_S - mu_a) ** 2).sum())
            join = n_b * m / (n_b + m) * float(((mu_S - mu_b) ** 2).sum())
            if join < factor * d_a - 2.0 ** -30 * factor * (
                    d_a + float((mu_S ** 2).sum() + (mu_a ** 2).sum())):
                labels[S] = best
                return m
            return 0
        if n_parts != 1:
            return 0
        labels[i] = best
        return 1

    for _ in range(sweeps):
        owner = deal()
        moved, waiting = 0, []
        for t in range(n_blocks):
            for i in range(n):
                if owner[labels[i]] != t:
                    continue
                done = turn(i, t, owner)
                if done < 0:
                    waiting.append(i)
                else:
                    moved += done
        for i in sorted(waiting):
            moved += turn(i, None, owner)
        if moved == 0:
            break
    return labels


def renumbered(labels):
    """Labels numbered in order of first appearance, as the kernel's."""
    _, first = np.unique(labels, return_index=True)
    order = np.empty(first.shape[0], dtype=np.int64)
    order[np.argsort(first)] = np.arange(first.shape[0])
    return order[np.unique(labels, return_inverse=True)[1]]


def unrefined_ward_on_a_grid(seed, shape, sigma, k, n_samples=3):
    """Smooth random samples (three by default) on a 2-D grid, its graph,
    and the unrefined ``"ward"`` fit to k clusters."""
    rng = np.random.default_rng(seed)
    X = gaussian_filter(rng.standard_normal((n_samples,) + shape),
                        (0, sigma, sigma)).reshape(n_samples, -1)
    mask = np.ones(shape, dtype=bool)
    plain = ReNA(mask, n_clusters=k, linkage="ward", max_refine_iter=0).fit(X)
    return X, lattice_graph(mask), plain


@pytest.mark.parametrize("seed", range(4))
def test_sweeps_make_the_moves_of_a_plain_reference(seed):
    # Small clusters on a grid: the kernel's connectivity budget never runs
    # out, so its local test is the whole one.
    X, graph, plain = unrefined_ward_on_a_grid(seed, (9, 8), 1.5, 9)
    expected = reference_sweeps(X, graph, plain.labels_, 4)
    out = refine_labels(X, graph, plain.labels_, 4)
    assert not np.array_equal(expected, plain.labels_)
    # The same partition (the kernel numbers clusters by first appearance).
    np.testing.assert_array_equal(out, renumbered(expected))


@pytest.mark.parametrize("n_samples", [1, 7, 9, 16, 37, 100])
def test_sums_in_lanes_of_padded_samples_make_the_moves_of_the_reference(n_samples):
    # Distances are summed in eight lanes over samples padded with zeros
    # to a multiple of eight (kernels.lanes): on sample counts below,
    # at and past a multiple of eight the moves must be the plain
    # reference's.
    X, graph, plain = unrefined_ward_on_a_grid(5, (12, 10), 1.5, 14, n_samples)
    expected = reference_sweeps(X, graph, plain.labels_, 4)
    out = refine_labels(X, graph, plain.labels_, 4)
    assert not np.array_equal(expected, plain.labels_)
    np.testing.assert_array_equal(out, renumbered(expected))


@njit
def _lane_distances(x, rows, inv, q0, q1):
    out = np.empty(rows.shape[0])
    for c in range(rows.shape[0]):
        lanes = lanes_kernels.add_squared_differences(lanes_kernels.ZERO_LANES, x, rows[c], inv,
                                                      0, q0)
        lanes = lanes_kernels.add_squared_differences(lanes, x, rows[c], inv, q0, q1)
        out[c] = lanes_kernels.lanes_total(lanes)
    return out


def test_lane_sums_are_the_scalar_lanes_bit_for_bit():
    # Lane j adds (x[s] - row[s] * inv)**2 for s = j mod 8 in sample order,
    # from zero; the total is ((l0 + l4) + (l1 + l5)) + ((l2 + l6) +
    # (l3 + l7)). Python floats, one operation at a time, give the bits any
    # machine must give: no fused multiply-add, no reordering (values of
    # mixed magnitudes make both show), whatever the split into calls.
    rng = np.random.default_rng(3)
    n = 40
    # Values of one magnitude (where the order of the adds shows) and of
    # mixed magnitudes (where a fused multiply-add shows).
    spread = np.where(np.arange(50)[:, None] < 25, 1.0, 10.0 ** rng.integers(-8, 9, (50, n)))
    x = rng.standard_normal(n)
    rows = rng.standard_normal((50, n)) * spread
    inv = 1.0 / 3.0
    for q0 in (0, 2, 5):
        got = _lane_distances(x, rows, inv, q0, n // 8)
        for c in range(rows.shape[0]):
            lanes = [0.0] * 8
            for s in range(n):
                d = float(x[s]) - float(rows[c, s]) * inv
                lanes[s % 8] = lanes[s % 8] + d * d
            total = (((lanes[0] + lanes[4]) + (lanes[1] + lanes[5]))
                     + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7])))
            assert got[c] == total
    # The rows such sums read: padded with zeros to a multiple of eight.
    assert [lanes_kernels.padded(np.int64(n)) for n in (0, 1, 8, 9, 16)] == [0, 8, 8, 16, 16]


@pytest.mark.parametrize(("n_blocks", "seed", "shape", "k", "like_one_block"),
                         [(2, 3, (20, 16), 40, True), (2, 8, (20, 16), 40, False),
                          (3, 7, (20, 16), 40, False), (3, 3, (24, 20), 48, False)])
def test_sweeps_in_blocks_make_the_moves_of_the_reference(monkeypatch, n_blocks, seed, shape, k,
                                                          like_one_block):
    # Large inputs deal each sweep's clusters to blocks whose features move
    # on threads of their own (kernels.refine._n_blocks, _owners); here on
    # small grids, against the reference dealt the same way. Features
    # beside another block's cluster wait for the second phase. On all but
    # the first case, the moves differ from one block's (the second case's
    # seed is 8 since features move with pieces: on seed 2 they no longer
    # differed).
    from fastrena._kernels import refine as kernels

    X, graph, plain = unrefined_ward_on_a_grid(seed, shape, 1.0, k)
    one_block = refine_labels(X, graph, plain.labels_, 4)
    monkeypatch.setattr(kernels, "_n_blocks", lambda n_features: n_blocks)
    out = refine_labels(X, graph, plain.labels_, 4)
    expected = reference_sweeps(X, graph, plain.labels_, 4, n_blocks)
    np.testing.assert_array_equal(out, renumbered(expected))
    assert np.array_equal(out, one_block) == like_one_block
    assert_connected_partition(graph, out, plain.n_clusters_)
    assert sse(X, out) < sse(X, plain.labels_)


def test_blocks_that_would_leave_most_features_waiting_are_not_used(monkeypatch):
    # Features numbered in a scattered order (as a surface's vertices by
    # subdivision level): clusters dealt in order of their first feature
    # give each block clusters everywhere, and most features would wait
    # for the second phase. The sweeps are then one block's, the plain
    # ones (two blocks would make other moves here); on the grid's own
    # numbering, two blocks make moves of their own.
    from fastrena._kernels import refine as kernels

    X, graph, plain = unrefined_ward_on_a_grid(2, (24, 20), 1.0, 120)
    order = np.random.default_rng(0).permutation(X.shape[1])
    X_s = X[:, order]
    where = np.empty_like(order)
    where[order] = np.arange(order.shape[0])
    graph_s = graph_from_edges(X.shape[1], where[graph.u], where[graph.v])
    labels_s = plain.labels_[order]
    one_block = refine_labels(X_s, graph_s, labels_s, 4)
    monkeypatch.setattr(kernels, "_n_blocks", lambda n_features: 2)
    np.testing.assert_array_equal(refine_labels(X_s, graph_s, labels_s, 4), one_block)
    np.testing.assert_array_equal(one_block, renumbered(reference_sweeps(X_s, graph_s, labels_s,
                                                                           4, 2)))
    # The same clusters on the grid's numbering: two blocks.
    blocks = refine_labels(X, graph, plain.labels_, 4)
    np.testing.assert_array_equal(blocks, renumbered(reference_sweeps(X, graph, plain.labels_,
                                                                      4, 2)))
    assert not np.array_equal(blocks, renumbered(reference_sweeps(X, graph, plain.labels_, 4, 1)))


def test_the_start_sums_each_cluster_on_one_task_whatever_the_split(monkeypatch):
    # The start's two tasks share the clusters' sums, each about half of
    # the features: each cluster's sum is one task's, in feature order, so
    # any split gives the same bits.
    from fastrena._kernels import refine as kernels

    X, graph, plain = unrefined_ward_on_a_grid(1, (12, 10), 1.5, 14, 100)
    k = plain.n_clusters_
    sizes = np.bincount(plain.labels_, minlength=k)
    split = kernels._start_split(sizes)
    assert 0 < split < k
    assert sizes[:split].sum() <= X.shape[1] // 2 < sizes[:split + 1].sum()
    assert kernels._start_split(np.array([3, 1, 1])) == 0
    expected = refine_labels(X, graph, plain.labels_, 4)
    for split in (0, 1, k // 2, k):
        monkeypatch.setattr(kernels, "_start_split", lambda *args, split=split: split)
        np.testing.assert_array_equal(refine_labels(X, graph, plain.labels_, 4), expected)


def test_blocks_by_number_of_features():
    # One block below 2**12 features (a sweep too short for a second
    # thread), two below 2**20, four beyond; never the thread count.
    from fastrena._kernels import refine as kernels

    assert [kernels._n_blocks(n) for n in (0, 4095, 4096, 2 ** 20 - 1, 2 ** 20)] == [
        1, 1, 2, 2, 4]


def test_ward_refines_by_default_and_the_default_linkage_does_not():
    X, spec = random_cases()["one map"]
    ward = ReNA(n_clusters=40, linkage="ward", **spec).fit(X)
    ward_cut = ReNA(n_clusters=40, linkage="ward", max_refine_iter=0, compute_full_tree=True,
                    **spec).fit(X)
    assert ward.n_refine_iter_ >= 1 and ward_cut.n_refine_iter_ == 0
    assert sse(X, ward.labels_) < sse(X, ward_cut.labels_)
    np.testing.assert_array_equal(
        ward.labels_, refined_as_a_ward_fit(X, ward.layout_.graph, ward_cut.labels_at, 40))
    default = ReNA(n_clusters=40, **spec).fit(X)
    assert default.n_refine_iter_ == 0
    np.testing.assert_array_equal(
        default.labels_, ReNA(n_clusters=40, max_refine_iter=0, **spec).fit(X).labels_)


def test_labels_at_the_fit_scale_are_the_refined_labels():
    X, spec = random_cases()["smooth, 5 samples"]
    full = ReNA(n_clusters=50, linkage="ward", compute_full_tree=True, **spec).fit(X)
    cut = ReNA(n_clusters=50, linkage="ward", max_refine_iter=0, **spec).fit(X)
    np.testing.assert_array_equal(full.labels_at(50), full.labels_)
    assert not np.array_equal(full.labels_, cut.labels_)
    # Other scales are the tree's cuts; refined, they are fits to them.
    for k in (20, 120):
        np.testing.assert_array_equal(
            full.labels_at(k),
            ReNA(n_clusters=k, linkage="ward", max_refine_iter=0, **spec).fit(X).labels_)
        np.testing.assert_array_equal(
            refined_as_a_ward_fit(X, full.layout_.graph, full.labels_at, k),
            ReNA(n_clusters=k, linkage="ward", **spec).fit(X).labels_)
    np.testing.assert_allclose(full.transform(X), np.array(
        [[X[s, full.labels_ == c].mean() for c in range(50)] for s in range(X.shape[0])]))


def test_same_labels_for_any_layout_dtype_scale_and_sign():
    X, spec = random_cases()["smooth, 5 samples"]
    fit = ReNA(n_clusters=60, linkage="ward", **spec).fit(X)
    graph, base = fit.layout_.graph, ReNA(n_clusters=60, linkage="ward", max_refine_iter=0,
                                          compute_full_tree=True, **spec).fit(X)
    for variant in (np.asfortranarray(X), X * 2.0 ** 300, X * 2.0 ** -300, -X, X.T.copy().T):
        np.testing.assert_array_equal(
            refined_as_a_ward_fit(variant, graph, base.labels_at, 60), fit.labels_)
        np.testing.assert_array_equal(
            ReNA(n_clusters=60, linkage="ward", **spec).fit(variant).labels_, fit.labels_)


@pytest.mark.parametrize(("shape", "k"), [((42, 40, 40), 1300), ((20, 16, 16), 100)])
def test_same_labels_on_every_thread_count(shape, k):
    # 67,200 and 5,120 features: two blocks, each swept on a thread of its
    # own when there are two (kernels.refine._n_blocks).
    code = (
        "import numpy as np, sys\n"
        "from scipy.ndimage import gaussian_filter\n"
        "from fastrena import ReNA\n"
        "rng = np.random.default_rng(3)\n"
        f"X = gaussian_filter(rng.standard_normal((4, *{shape})), (0, 1, 1, 1)).reshape(4, -1)\n"
        f"r = ReNA(np.ones({shape}, bool), n_clusters={k}, linkage='ward').fit(X)\n"
        "assert r.n_refine_iter_ > 0\n"
        "sys.stdout.write(','.join(map(str, r.labels_)))\n")
    outputs = []
    for threads in ("1", "2"):
        env = dict(os.environ, NUMBA_NUM_THREADS=threads)
        outputs.append(subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                      capture_output=True, text=True).stdout)
    assert outputs[0] == outputs[1] and outputs[0]


def test_same_labels_for_any_dask_chunking():
    da = pytest.importorskip("dask.array")
    import dask

    rng = np.random.default_rng(4)
    mask = np.ones((12, 12, 12), dtype=bool)
    X = gaussian_filter(rng.standard_normal((150, 12, 12, 12)), (0, 1, 1, 1)).reshape(150, -1)
    expected = ReNA(mask, n_clusters=80, linkage="ward").fit(X).labels_
    for chunks in ((150, -1), (64, -1), (37, 500)):
        with dask.config.set(scheduler="synchronous"):
            labels = ReNA(mask, n_clusters=80, linkage="ward").fit(
                da.from_array(X, chunks=chunks)).labels_
        np.testing.assert_array_equal(labels, expected)


def test_a_dask_array_beyond_the_memory_limit_is_not_refined_and_says_so():
    da = pytest.importorskip("dask.array")
    import dask

    X, spec = random_cases()["smooth, 5 samples"]
    with dask.config.set({"fastrena.refine-limit": 1000, "scheduler": "synchronous"}):
        with pytest.warns(UserWarning, match="max_refine_iter=2.*fastrena.refine-limit"):
            fit = ReNA(n_clusters=30, linkage="ward", **spec).fit(da.from_array(X))
    assert fit.n_refine_iter_ == 0
    np.testing.assert_array_equal(
        fit.labels_, ReNA(n_clusters=30, linkage="ward", max_refine_iter=0,
                          **spec).fit(X).labels_)


@pytest.mark.parametrize("value", [-1, 1.5, "three", True, None])
def test_bad_max_refine_iter_is_named(value):
    with pytest.raises(ValueError, match="max_refine_iter"):
        ReNA(max_refine_iter=value).fit(np.ones((1, 5)))


def test_refine_labels_rejects_mismatched_input_by_name():
    X = np.ones((1, 4))
    with pytest.raises(ValueError, match="labels must be integers of shape"):
        refine_labels(X, chain_adjacency(4), [0, 1, 1])
    with pytest.raises(ValueError, match="graph has 5 nodes"):
        refine_labels(X, chain_adjacency(5), [0, 0, 1, 1])
    with pytest.raises(ValueError, match="max_iter"):
        refine_labels(X, chain_adjacency(4), [0, 0, 1, 1], max_iter=-2)


def test_the_copy_goes_into_a_spare_array_only_when_it_fits_and_is_not_x():
    # The refinement copies a C-ordered X feature-major into the rounds'
    # copy, which they no longer need (fastrena.arrays.feature_major_copy):
    # into it when it is a feature-major array of X's shape and dtype that
    # does not overlap X, into new memory otherwise; the same values.
    from fastrena import arrays

    rng = np.random.default_rng(0)
    X = rng.standard_normal((5, 300)).astype(np.float32)
    spare = np.empty((300, 5), dtype=np.float32).T
    out, largest, finite = arrays.feature_major_copy(X, spare)
    assert np.shares_memory(out, spare) and arrays.is_feature_major(out)
    np.testing.assert_array_equal(out, X)
    assert largest == np.abs(X).max() and finite
    for other in (np.empty((300, 5), dtype=np.float64).T, np.empty((5, 300), dtype=np.float32),
                  np.empty((300, 10), dtype=np.float32).T[::2], None):
        out, _, _ = arrays.feature_major_copy(X, other)
        assert other is None or not np.shares_memory(out, other)
        np.testing.assert_array_equal(out, X)
    # A square X's own memory, seen transposed, is feature-major: never
    # written over.
    square = rng.standard_normal((6, 6))
    before = square.copy()
    out, _, _ = arrays.feature_major_copy(square, square.T)
    assert not np.shares_memory(out, square)
    np.testing.assert_array_equal(square, before)
    np.testing.assert_array_equal(out, before)


@pytest.mark.parametrize("order", ["C", "F"])
def test_the_tiled_copy_is_exact_past_every_tile_edge(order):
    # The copy walks tiles of 16 features by 128 samples: 130 samples and 37
    # features leave partial tiles on both axes. Every value lands in its
    # place (widened exactly to float64), the largest magnitude ignores NaN,
    # and a NaN or an infinity anywhere (here in the last, partial tile) is
    # reported.
    from fastrena import _kernels

    rng = np.random.default_rng(3)
    X = np.asarray(rng.standard_normal((130, 37)).astype(np.float32), order=order)
    X[7, 5] = -9.5
    for dtype in (np.float32, np.float64):
        out, largest, finite = _kernels.feature_major_copy(X, dtype)
        assert out.dtype == dtype and out.flags.c_contiguous and out.shape == (37, 130)
        np.testing.assert_array_equal(out, X.T.astype(dtype))
        assert largest == 9.5 and finite
    for bad in (np.nan, np.inf, -np.inf):
        Y = X.copy(order=order)
        Y[129, 36] = bad
        out, largest, finite = _kernels.feature_major_copy(Y, np.float64)
        assert not finite
        assert largest == (9.5 if np.isnan(bad) else np.inf)
        np.testing.assert_array_equal(out, Y.T.astype(np.float64))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
@pytest.mark.parametrize("order", ["C", "F"])
def test_a_new_array_is_mapped_in_place_by_every_task(order):
    # mapped_in_order maps the pages of the array it is given (not of a
    # copy), 16 MiB a task, several tasks here: the process's resident
    # memory grows by the array's size, and its values are still zeros.
    from fastrena import _kernels

    def resident():
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    n_bytes = 48 * 2 ** 20 + 12_345 * 8
    out = np.zeros((n_bytes // 8 // 5, 5), order=order)
    before = resident()
    assert _kernels.mapped_in_order(out) is out
    assert resident() - before >= 0.95 * out.nbytes
    assert not out.any()


def test_a_fit_refines_as_refine_labels_does_with_the_rounds_copy_reused(monkeypatch):
    # In memory, the fit's rounds leave their copy of X with the rows they
    # wrote over flagged (arrays.WrittenCopy): every other row is still
    # X's, and the refinement copies the flagged ones alone again. The
    # same labels as refine_labels of the unrefined fit, and the copy did
    # go there.
    from fastrena import arrays

    X, graph, _ = unrefined_ward_on_a_grid(2, (30, 24), 1.5, 36, n_samples=5)
    plain = ReNA(np.ones((30, 24), dtype=bool), n_clusters=36, linkage="ward",
                 max_refine_iter=0, compute_full_tree=True).fit(X)
    spares = []
    copy = arrays.feature_major_copy

    def recording(F, spare=None):
        if isinstance(spare, arrays.WrittenCopy):
            kept = ~spare.written
            assert 0 < spare.written.sum() < X.shape[1]
            np.testing.assert_array_equal(spare.array[:, kept], F[:, kept])
            assert not np.array_equal(spare.array, F)
            assert spare.largest == np.abs(X).max() and spare.finite
        out = copy(F, spare)
        spares.append(type(spare).__name__ if spare is None
                      else np.shares_memory(out[0], spare.array))
        np.testing.assert_array_equal(out[0], F)
        return out

    monkeypatch.setattr(arrays, "feature_major_copy", recording)
    fit = ReNA(np.ones((30, 24), dtype=bool), n_clusters=36, linkage="ward").fit(X)
    assert spares == ["NoneType", True]
    np.testing.assert_array_equal(fit.labels_, refined_as_a_ward_fit(X, graph, plain.labels_at, 36))


def test_only_the_rows_flagged_written_are_copied_again():
    # A WrittenCopy of X whose flagged rows hold anything: those are
    # copied from X again, the others are left as they are; into new
    # memory when the copy does not fit X or is X's own memory. X's rows
    # of at most 1 KiB are read along (37 float32 features), others in
    # tiles of 16 features by 128 samples, here partial on both axes (X
    # in Fortran order, and 300 float64 features).
    from fastrena import arrays
    from fastrena._kernels import layout

    rng = np.random.default_rng(1)
    assert 37 * 4 <= layout._SHORT_ROW_BYTES < 300 * 8
    for dtype, order, n in ((np.float32, "C", 37), (np.float64, "F", 37), (np.float64, "C", 300)):
        X = np.asarray(rng.standard_normal((130, n)), dtype=dtype, order=order)
        array, largest, finite = arrays.feature_major_copy(X)
        written = rng.random(n) < 0.5
        array[:, written] = -7.0
        array[:, ~written] = 3.0
        spare = arrays.WrittenCopy(array, written, largest, finite)
        out, got_largest, got_finite = arrays.feature_major_copy(X, spare)
        assert out is array and got_largest == largest and got_finite
        np.testing.assert_array_equal(out[:, written], X[:, written])
        assert np.all(out[:, ~written] == 3.0)
        other = arrays.feature_major_copy(X[:, :30].copy(), spare)[0]
        assert not np.shares_memory(other, array)
        np.testing.assert_array_equal(other, X[:, :30])
    # X seen through the copy's own memory: never written over.
    own = arrays.WrittenCopy(out, np.ones(300, dtype=bool), largest, finite)
    before = out.copy()
    again = arrays.feature_major_copy(out, own)[0]
    assert not np.shares_memory(again, out)
    np.testing.assert_array_equal(out, before)
    np.testing.assert_array_equal(again, before)


# --------------------------------------------------------------------------
# The exchange: refined clusters merged back in Ward's greedy order
# --------------------------------------------------------------------------


def reference_exchange(X, graph, labels, n_final):
    """Ward's greedy order on the clusters of ``labels``, in plain numpy:
    always the pair of neighbouring clusters of least
    ``n_a n_b / (n_a + n_b) ||mu_a - mu_b||^2`` on their current means,
    until ``n_final`` are left; the partition renumbered."""
    groups = {c: set(np.flatnonzero(labels == c)) for c in np.unique(labels)}
    u, v = graph.u, graph.v
    owner = np.array(labels)
    while len(groups) > n_final:
        pairs = {(min(a, b), max(a, b)) for a, b in zip(owner[u], owner[v]) if a != b}

        def cost(pair):
            a, b = (sorted(groups[c]) for c in pair)
            na, nb = len(a), len(b)
            gap = X[:, a].mean(axis=1) - X[:, b].mean(axis=1)
            return na * nb / (na + nb) * float(gap @ gap)

        a, b = min(sorted(pairs), key=cost)
        groups[a] |= groups.pop(b)
        owner[list(groups[a])] = a
    return renumbered(owner)


@pytest.mark.parametrize("seed", range(4))
def test_the_exchange_merges_in_wards_greedy_order(seed):
    # No sweep: the exchange alone, against the plain reference on a
    # partition that is not a Ward tree's cut (a grid's 4 x 4 blocks).
    rng = np.random.default_rng(seed)
    shape = (16, 12)
    X = gaussian_filter(rng.standard_normal((3,) + shape), (0, 1.2, 1.2)).reshape(3, -1)
    X += 0.05 * rng.standard_normal(X.shape)
    graph = lattice_graph(np.ones(shape, dtype=bool))
    rows, cols = np.indices(shape)
    blocks = ((rows // 4) * (shape[1] // 4) + cols // 4).ravel()
    out = refine_labels(X, graph, blocks, 0, n_clusters=5)
    np.testing.assert_array_equal(out, reference_exchange(X, graph, blocks, 5))
    assert_connected_partition(graph, out, 5)
    # n_clusters equal to the labels' own: no merge, the labels renumbered.
    np.testing.assert_array_equal(refine_labels(X, graph, blocks, 0, n_clusters=12),
                                  renumbered(blocks))


def test_the_greedy_order_stopped_early_makes_the_first_merges():
    from fastrena import _kernels

    rng = np.random.default_rng(5)
    graph = lattice_graph(np.ones((12, 11), dtype=bool))
    X = rng.standard_normal((graph.n_nodes, 2))
    n = graph.n_nodes
    runs = [_kernels.greedy_ward(X.copy(), np.ones(n), graph.u, graph.v, np.arange(n),
                                 np.zeros(n), np.int64(m)) for m in (n, 40)]
    for whole, first in zip(runs[0][:4], runs[1][:4]):
        assert first.shape == (40,)
        np.testing.assert_array_equal(first, whole[:40])


def test_the_exchange_lowers_the_error_on_a_brain_slice():
    # A real map: an axial slice of nilearn's MNI152 T1 template at 2 mm,
    # inside the brain mask. The default refinement (a sweep, the exchange,
    # a sweep) ends below three plain sweeps, which end below the merges.
    from nilearn import datasets

    z = 45
    values = datasets.load_mni152_template(resolution=2).get_fdata()[:, :, z]
    mask = np.asarray(datasets.load_mni152_brain_mask(resolution=2).dataobj)[:, :, z] != 0
    X = values[mask][None]
    k = int(mask.sum()) // 50
    fit = ReNA(mask, n_clusters=k, linkage="ward").fit(X)
    plain = ReNA(mask, n_clusters=k, linkage="ward", max_refine_iter=0).fit(X)
    graph = fit.layout_.graph
    assert_connected_partition(graph, fit.labels_, k)
    three_sweeps = refine_labels(X, graph, plain.labels_, 3)
    assert sse(X, fit.labels_) < sse(X, three_sweeps) < sse(X, plain.labels_)


def test_refine_labels_names_a_bad_n_clusters():
    X, graph, plain = unrefined_ward_on_a_grid(1, (10, 9), 1.5, 8)
    with pytest.raises(ValueError, match=r"n_clusters must be at most the 8 clusters of labels; "
                                         r"got n_clusters=9"):
        refine_labels(X, graph, plain.labels_, n_clusters=9)
    for bad in (0, -2, 1.5, "four"):
        with pytest.raises(ValueError, match="n_clusters"):
            refine_labels(X, graph, plain.labels_, n_clusters=bad)
    edgeless = graph_from_edges(X.shape[1], np.zeros(0, dtype=np.int64),
                                np.zeros(0, dtype=np.int64))
    with pytest.raises(ValueError, match=r"n_clusters=3 asks for merges, but the graph has no "
                                         r"edge: its 90 features cannot be merged"):
        refine_labels(X, edgeless, np.arange(90) % 5, n_clusters=3)


def test_the_exchange_merges_a_flat_region_in_balanced_pieces():
    # Identical means cost 0 in any order: merged smallest unions first,
    # in passes of disjoint pairs (not in cluster order, which chains a
    # flat region into one cluster). 64 blocks of 2 x 2 on a flat 16 x 16
    # grid, merged to 32.
    graph = lattice_graph(np.ones((16, 16), dtype=bool))
    rows, cols = np.indices((16, 16))
    blocks = ((rows // 2) * 8 + cols // 2).ravel()
    X = np.full((2, 256), 0.25)
    out = refine_labels(X, graph, blocks, 0, n_clusters=32)
    assert_connected_partition(graph, out, 32)
    sizes = np.bincount(out)
    assert sizes.min() >= 4 and sizes.max() <= 12, sizes
    # The blocks are kept whole: only merges.
    assert all(np.unique(out[blocks == b]).shape[0] == 1 for b in range(64))


def test_a_scale_refined_from_the_tree_of_a_refined_fit_is_a_fit_to_it():
    # labels_at's recipe: from tree_.labels_at (the cut, even at the fit's
    # own scale, where labels_at gives the refined labels_).
    from fastrena.refine import exchange_count

    X, spec = random_cases()["smooth, 5 samples"]
    rena = ReNA(n_clusters=120, linkage="ward", compute_full_tree=True, **spec).fit(X)
    k = 100
    assert k + exchange_count(k, X.shape[1]) == 120
    start = rena.tree_.labels_at(120)[0]
    assert not np.array_equal(start, rena.labels_at(120))
    np.testing.assert_array_equal(
        refine_labels(X, rena.layout_.graph, start, n_clusters=k),
        ReNA(n_clusters=k, linkage="ward", **spec).fit(X).labels_)


def test_merges_of_a_dask_array_beyond_the_memory_limit_are_refused_by_name():
    da = pytest.importorskip("dask.array")
    import dask

    X, graph, plain = unrefined_ward_on_a_grid(1, (10, 9), 1.5, 8)
    with dask.config.set({"fastrena.refine-limit": 100, "scheduler": "synchronous"}):
        with pytest.raises(ValueError, match=r"n_clusters=5: X \(a Dask array of 0\.0 GiB\) is "
                                             r"larger than the Dask setting "
                                             r"fastrena.refine-limit.*raise the limit"):
            refine_labels(da.from_array(X), graph, plain.labels_, 0, n_clusters=5)


# Refining never leaves a worse partition than the merge tree's own cut.
# The moves only lower the sum of squares, but the exchange starts from
# the tree's finer cut and merges back in Ward's greedy order, which can
# end above the cut: before the refinement kept the cut then, 105 of
# 3,000 fits on small random grids (1 to 3 samples of integers) ended
# above it, by up to a few per cent. This is one of them (13 features on a
# line, K = 3).
ABOVE_THE_CUT = np.array([[8, 3, 7, 7, 2, 6, 0, 7, 6, 0, 4, 8, 8],
                          [3, 8, 8, 5, 1, 3, 6, 7, 9, 7, 6, 6, 7],
                          [8, 9, 5, 2, 5, 8, 5, 9, 8, 8, 3, 8, 8]], dtype=np.float64)


def test_the_fit_keeps_its_trees_cut_when_the_exchange_ends_above_it(capsys):
    from fastrena.refine import exchange_count

    X, mask, k = ABOVE_THE_CUT, np.ones((1, 13), dtype=bool), 3
    plain = ReNA(mask_img=mask, n_clusters=k, linkage="ward", max_refine_iter=0,
                 compute_full_tree=True).fit(X)
    graph = plain.layout_.graph
    # Without the check, the refinement from the finer cut ends above it.
    exchanged = refine_labels(X, graph, plain.labels_at(k + exchange_count(k, 13)), n_clusters=k)
    assert sse(X, exchanged) > 1.01 * sse(X, plain.labels_)
    fit = ReNA(mask_img=mask, n_clusters=k, linkage="ward").fit(X)
    np.testing.assert_array_equal(fit.labels_, first_appearance(plain.labels_))
    assert sse(X, fit.labels_) == sse(X, plain.labels_)
    # verbose says so; the sweeps run are still counted.
    ReNA(mask_img=mask, n_clusters=k, linkage="ward", verbose=1).fit(X)
    assert "the merge tree's cut is kept" in capsys.readouterr().out
    assert fit.n_refine_iter_ == 2
    # At K = 4 the refinement is lower (152.15 against the cut's 156.08).
    ReNA(mask_img=mask, n_clusters=4, linkage="ward", verbose=1).fit(X)
    assert "cut is kept" not in capsys.readouterr().out
    # So does a refined scale of a larger fit's tree (labels_at's recipe,
    # the command line's -k): the same code.
    from fastrena.refine import refined_fit_labels

    larger = ReNA(mask_img=mask, n_clusters=6, linkage="ward", compute_full_tree=True).fit(X)
    cut, n = larger.tree_.labels_at(k)
    scale = refined_fit_labels(X, graph, cut, n, 2, ward_cut=larger.tree_.labels_at)[0]
    np.testing.assert_array_equal(scale, first_appearance(plain.labels_))


# Two flat blocks 1e12 apart, integer noise 0-9 on a line of 30: the total
# sum of squares is 1.5e25, the cut's within-cluster sum 86. What each
# partition's means explain is then equal to rounding: the within-cluster
# sums are computed from X instead (a search of 400 such fits found 5
# refined fits up to 10 % above the cut, and 6 cuts kept where the
# refinement was 5-8 % lower, when the explained sums decided alone).
FAR_APART_NOISE = np.array([[3, 6, 6, 2, 6, 9, 3, 6, 2, 7, 2, 2, 0, 1, 8,
                             0, 5, 9, 2, 5, 9, 6, 9, 6, 9, 3, 5, 4, 1, 2]], dtype=np.float64)


def test_the_check_against_the_cut_reads_x_when_the_explained_sums_are_too_close():
    X = FAR_APART_NOISE + np.repeat([0.0, 1e12], 15)[None]
    mask = np.ones((1, 30), dtype=bool)
    plain = ReNA(mask_img=mask, n_clusters=8, linkage="ward", max_refine_iter=0).fit(X)
    fit = ReNA(mask_img=mask, n_clusters=8, linkage="ward").fit(X)
    # Measured on the noise alone (exact here): the blocks' offsets cancel.
    noise = FAR_APART_NOISE
    assert sse(noise, fit.labels_) <= sse(noise, plain.labels_)


@pytest.mark.parametrize("seed", range(3))
def test_a_refined_fit_is_never_above_the_unrefined_one(seed):
    # Small random grids of integer values (ties, noise: where greedy
    # merges go wrong most), every K from 2 to a third of the features.
    rng = np.random.default_rng(seed)
    for case in range(60):
        shape = [(1, int(rng.integers(8, 40))), (int(rng.integers(3, 8)), int(rng.integers(3, 8))),
                 (3, 4, int(rng.integers(2, 5)))][case % 3]
        n = int(np.prod(shape))
        k = int(rng.integers(2, max(3, n // 3)))
        X = rng.integers(0, int(rng.choice([3, 10, 100])), (int(rng.integers(1, 4)), n))
        X = X.astype(np.float64)
        mask = np.ones(shape, dtype=bool)
        before = sse(X, ReNA(mask_img=mask, n_clusters=k, linkage="ward",
                             max_refine_iter=0).fit(X).labels_)
        after = sse(X, ReNA(mask_img=mask, n_clusters=k, linkage="ward").fit(X).labels_)
        assert after <= before + 1e-12 * before, (seed, case, shape, k)


def test_the_cuts_explained_sum_of_squares_from_the_finer_cuts_sums():
    from fastrena._kernels.partition_sums import between_sum, coarse_between_sum, within_sum

    rng = np.random.default_rng(3)
    X = rng.standard_normal((3, 12))
    fine = np.array([0, 0, 1, 1, 1, 2, 3, 3, 4, 4, 5, 5])
    coarse = np.array([0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
    sums = np.stack([X[:, fine == c].sum(axis=1) for c in range(6)])
    sizes = np.bincount(fine).astype(np.int64)
    explained = sum(float((X[:, coarse == c].sum(axis=1) ** 2).sum()) / (coarse == c).sum()
                    for c in range(3))
    assert np.isclose(coarse_between_sum(sums, sizes, fine, coarse, 3), explained, rtol=1e-14)
    # The within-cluster sum of squares is the total minus what is explained.
    assert np.isclose((X ** 2).sum() - explained, sse(X, coarse), rtol=1e-12)
    assert np.isclose(between_sum(sums, sizes), (X ** 2).sum() - sse(X, fine), rtol=1e-12)
    # Feature 4 (coarse cluster 0) with feature 5 (coarse 1) in finer
    # cluster 2: not nested, no answer.
    fine_split = fine.copy()
    fine_split[4] = 2
    assert np.isnan(coarse_between_sum(sums, sizes, fine_split, coarse, 3))
    # From X itself, read as the refinement reads it (X * 2**-3), the same
    # bits whichever X's layout, also past a block of eight samples.
    read = [within_sum(layout, 0.125, coarse, 3) for layout in (X, np.asfortranarray(X))]
    assert read[0] == read[1]
    assert np.isclose(read[0], sse(X, coarse) / 64, rtol=1e-12)
    wide = rng.standard_normal((19, 12)).astype(np.float32)
    read = [within_sum(layout, 1.0, fine, 6) for layout in (wide, np.asfortranarray(wide))]
    assert read[0] == read[1]
    assert np.isclose(read[0], sse(wide, fine), rtol=1e-6)
    # Values far from 0 with a spread of a few units: exact, where a sum of
    # squares about the common offset would round it away.
    far = 1e15 + np.array([[0.0, 0.5, 1.0, 4.0, 4.5, 5.0]])
    assert within_sum(far, 1.0, np.array([0, 0, 0, 1, 1, 1]), 2) == 1.0
