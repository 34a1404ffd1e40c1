"""``linkage="ward"``: the size-aware variant of the agglomeration.

Its labels are checked against a slow reference written here with numpy and
scipy only (true means recomputed from X at every round, Ward's cost,
mutual and near-mutual nearest neighbours with the edge-priority tie-break, merges recorded
with their heights, to the end, and the cut by height), its invariants with
the same checks as the default linkage (``test_agglomeration.check_problem``),
and its purpose: an error close to scikit-learn's Ward clustering on smooth
data and on quantized data (ties).
"""

import re
import tempfile
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import sparse
from scipy.ndimage import gaussian_filter
from scipy.sparse import csgraph
from sklearn.cluster import FeatureAgglomeration
from sklearn.utils._param_validation import InvalidParameterError

from fastrena import ReNA, _kernels, arrays, recursive_neighbor_agglomeration
from fastrena._kernels import threads
from fastrena.agglomeration import agglomerate
from fastrena.graphs import chain_graph
from fastrena.agglomeration import nearest_neighbor_merge, reduce_signals
from fastrena.ward import WARD_GREEDY_SWITCH, WARD_PAIR_SLACK, WARD_WORK_BUDGET

from helpers import MAX_THREADS, edge_priority, num_threads, refined_as_a_ward_fit
from helpers import (assert_partition, build_problem, check_problem, mask_adjacency,
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


def chosen_edges(n, u, v, w, threshold, mutual, slack=0.0):
    """Each node's chosen edge among those within ``threshold`` of its
    lightest (smallest priority, then index); kept when chosen by one end
    (both if mutual), unless an end is on an edge of weight 0; and every
    edge of weight 0. With ``mutual`` and ``slack``, also the near-mutual
    pairs (:func:`near_mutual_pairs`)."""
    on_zero = np.zeros(n, dtype=bool)
    on_zero[u[w == 0]] = on_zero[v[w == 0]] = True
    lightest = np.full(n, np.inf)
    np.minimum.at(lightest, u, w)
    np.minimum.at(lightest, v, w)
    best = {}
    for e in range(u.shape[0]):
        for a in (u[e], v[e]):
            if (1 - threshold) * w[e] <= lightest[a]:
                key = (edge_priority(int(u[e]), int(v[e])), e)
                if a not in best or key < best[a]:
                    best[a] = key
    by_u = np.array([best.get(u[e], (0, -1))[1] == e for e in range(u.shape[0])], bool)
    by_v = np.array([best.get(v[e], (0, -1))[1] == e for e in range(u.shape[0])], bool)
    chosen = (by_u & by_v) if mutual else (by_u | by_v)
    if mutual and slack > 0:
        choice = {a: key[1] for a, key in best.items()
                  if w[key[1]] != 0 and not on_zero[u[key[1]]] and not on_zero[v[key[1]]]}
        chosen = near_mutual_pairs(u, v, w, lightest, choice, slack)
    return (w == 0) | (chosen & ~on_zero[u] & ~on_zero[v])


def near_mutual_pairs(u, v, w, lightest, choice, slack):
    """The pairs of fastrena.ward.WARD_PAIR_SLACK: node a proposes its
    choice ``choice[a]`` (an edge); b takes the proposal along its own
    choice if made (mutual), else the cheapest proposal (priority, then
    index, on ties) costing less than ``(1 + slack) lightest[b]``; a
    proposal taken pairs its two ends unless its proposer took another."""
    suitors = {}
    for a, e in choice.items():
        b = int(u[e] + v[e] - a)
        suitors.setdefault(b, []).append(e)
    taken = {}
    for b, edges in suitors.items():
        if choice.get(b) in edges:
            taken[b] = choice[b]
            continue
        near = [e for e in edges if w[e] < (1 + slack) * lightest[b]]
        if near:
            taken[b] = min(near, key=lambda e: (w[e], edge_priority(int(u[e]), int(v[e])), e))
    kept = np.zeros(u.shape[0], dtype=bool)
    for b, e in taken.items():
        a = int(u[e] + v[e] - b)
        if taken.get(a, e) == e:
            kept[e] = True
    return kept


def greedy_reference(X, labels, u, v, rep, height, merges):
    """Ward's greedy order on the graph of the current nodes, to the end:
    always the cheapest pair of neighbouring clusters (means from X), ties
    to the smallest node numbers, the survivor the smaller number. (No
    cluster here is 64 times larger than one it absorbs, nor holds 64 times
    more edges, where fastrena re-costs the large side's other neighbours
    lazily.)"""
    members = {c: set(np.flatnonzero(labels == c)) for c in range(rep.shape[0])}
    neighbours = {c: set() for c in members}
    for a, b in zip(u, v):
        neighbours[a].add(b)
        neighbours[b].add(a)
    height = {c: height[c] for c in members}
    rep = {c: rep[c] for c in members}

    def cost(a, b):
        ma = X[:, sorted(members[a])].mean(axis=1)
        mb = X[:, sorted(members[b])].mean(axis=1)
        na, nb = len(members[a]), len(members[b])
        return ((ma - mb) ** 2).sum() * (na * nb / (na + nb))

    new = []
    while True:
        pairs = [(cost(a, b), a, b) for a in neighbours for b in neighbours[a] if a < b]
        if not pairs:
            break
        c, a, b = min(pairs)
        h = max(c, height[a], height[b])
        new.append((h, len(merges) + len(new), rep[a], rep[b]))
        height[a] = h
        members[a] |= members.pop(b)
        for x in neighbours.pop(b):
            if x != a:
                neighbours[x].discard(b)
                neighbours[x].add(a)
                neighbours[a].add(x)
        neighbours[a].discard(b)
    return new


def ward_reference(X, A, k, threshold=1e-7):
    X = np.asarray(X, dtype=np.float64)
    n_features = X.shape[1]
    labels = np.arange(n_features)
    n = n_features
    u, v = _sorted_edges(sparse.csr_matrix(A))
    height = np.zeros(n)       # highest merge inside each node
    merges = []                # (height, order, feature a, feature b)
    while u.shape[0] > 0:
        sizes = np.bincount(labels, minlength=n).astype(np.float64)
        means = np.zeros((X.shape[0], n))
        np.add.at(means.T, labels, X.T)
        means /= sizes
        d = ((means[:, u] - means[:, v]) ** 2).sum(axis=0)
        cost = d * (sizes[u] * sizes[v] / (sizes[u] + sizes[v]))
        keep = chosen_edges(n, u, v, cost, threshold, True, WARD_PAIR_SLACK)
        rep = np.array([np.flatnonzero(labels == c)[0] for c in range(n)])
        n_pairs = n - _components(n, u, v, keep)[0]
        if n_pairs < WARD_GREEDY_SWITCH * n:
            merges += greedy_reference(X, labels, u, v, rep, height, merges)
            break
        parent = list(range(n))

        def find(a):
            while parent[a] != a:
                a = parent[a]
            return a

        new_height = height.copy()
        for e in np.flatnonzero(keep):
            ra, rb = find(u[e]), find(v[e])
            if ra != rb:
                h = max(cost[e], height[u[e]], height[v[e]])
                merges.append((h, len(merges), rep[u[e]], rep[v[e]]))
                parent[max(ra, rb)] = min(ra, rb)
                new_height[min(ra, rb)] = max(new_height[ra], new_height[rb], h)
        groups = np.array([find(a) for a in range(n)])
        step = _numbered_by_first_member(groups)
        height = np.zeros(int(step.max()) + 1)
        np.maximum.at(height, step, new_height[groups])
        n = height.shape[0]
        labels = step[labels]
        a, b = step[u], step[v]
        pairs = np.unique(np.stack([np.minimum(a, b), np.maximum(a, b)])[:, a != b], axis=1)
        u, v = pairs[0].astype(np.int64), pairs[1].astype(np.int64)
    merges.sort(key=lambda m: (m[0], m[1]))
    order = np.arange(len(merges))
    first = np.array([m[2] for m in merges], dtype=np.int64)
    second = np.array([m[3] for m in merges], dtype=np.int64)
    return _numbered_by_first_member(_union_until(n_features, first, second, order, k))


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


def test_near_mutual_pairs_within_the_slack():
    # A path 0-1-2-3-4-5, single features (cost = weight / 2). Nodes 2 and
    # 3 are mutual; 1's nearest is 2 (taken by 3), and 0 proposes to 1 at
    # 1.2 times 1's cheapest: a pair within a slack of 0.3, not of 0.1;
    # 5 proposes to 4, whose nearest is 3, at 1.5 times its cheapest: no.
    # Node 1 also proposes (to 2), but 2 took its mutual partner.
    u, v = np.arange(5), np.arange(1, 6)
    w = np.array([1.2, 1.0, 0.5, 1.0, 1.5])
    n = 6
    sizes, rep, height = np.ones(n), np.arange(n, dtype=np.int64), np.zeros(n)
    for slack, pairs in ((0.0, [2]), (0.1, [2]), (0.3, [0, 2]), (0.6, [0, 2, 4])):
        n_new, step, (first, second, heights, costs, *_), *_ = _kernels.ward_choice(
            n, u, v, w, sizes, rep, height, 1e-7, True, -1.0, slack=slack)
        np.testing.assert_array_equal(first, u[pairs])
        np.testing.assert_array_equal(second, v[pairs])
        np.testing.assert_array_equal(costs, w[pairs] / 2)
        assert n_new == n - len(pairs)
        np.testing.assert_array_equal(np.flatnonzero(chosen_edges(n, u, v, w, 1e-7, True, slack)),
                                      pairs)
    # A node proposed to by two takes the cheaper; a proposer that took a
    # proposal itself does not pair again: a star 0-1, 0-2, 0-3 whose
    # centre's nearest is 3 (which proposes back: mutual), and 1, 2 near.
    u, v = np.array([0, 0, 0]), np.array([1, 2, 3])
    w = np.array([1.1, 1.05, 1.0])
    n_new, step, (first, second, *_), *_ = _kernels.ward_choice(
        4, u, v, w, np.ones(4), np.arange(4, dtype=np.int64), np.zeros(4), 1e-7, True, -1.0,
        slack=0.3)
    np.testing.assert_array_equal(first, [0])
    np.testing.assert_array_equal(second, [3])


def test_mutual_round_breaks_ties_by_edge_priority():
    # A chain of six nodes, every weight tied: each node keeps the edge of
    # smallest priority among its two; only edges chosen by both ends merge.
    u, v = np.arange(5), np.arange(1, 6)
    w = np.ones(5)
    p = [edge_priority(a, a + 1) for a in range(5)]
    expected = [(a == 0 or p[a] < p[a - 1]) and (a == 4 or p[a] < p[a + 1])
                for a in range(5)]
    np.testing.assert_array_equal(chosen_edges(6, u, v, w, 0.0, True), expected)
    labels, n = nearest_neighbor_merge(6, u, v, w, 0.0, 1, mutual=True)
    assert n == 6 - sum(expected)


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


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_reduction_in_place_moves_only_merged_rows(dtype):
    # Nodes 0..5 kept as rows 6, 1, 4, 0, 7, 2 of F (rows 3 and 5 unused):
    # merged nodes' means replace their first member's row, bit for bit as
    # the new-array reduction; lone nodes keep their rows untouched.
    rng = np.random.RandomState(3)
    F = np.ascontiguousarray(rng.randn(8, 5).astype(dtype)).T     # feature-major
    rows = np.array([6, 1, 4, 0, 7, 2])
    step = np.array([0, 1, 0, 2, 1, 1])                           # {0, 2}, {1, 4, 5}, {3}
    sizes = np.array([2.0, 1.0, 3.0, 5.0, 1.0, 4.0])
    live = arrays.live_rows(F, rows)
    expected, finite = reduce_signals(live, step, 3, weights=sizes)
    untouched = F[:, [3, 5, 0]].copy()
    new_rows, finite_in_place = arrays.reduce_signals_in_place(F, rows, step, 3, sizes)
    assert finite and finite_in_place
    np.testing.assert_array_equal(new_rows, [6, 1, 0])
    np.testing.assert_array_equal(F[:, new_rows], expected)
    np.testing.assert_array_equal(F[:, [3, 5, 0]], untouched)


def test_reduced_edges_carry_the_weights_of_untouched_pairs():
    rng = np.random.RandomState(4)
    n = 60
    A = sparse.random(n, n, density=0.15, random_state=rng)
    u, v = _sorted_edges((A + A.T).tocsr())
    w = rng.rand(u.shape[0])
    step = _numbered_by_first_member(np.minimum(np.arange(n), rng.randint(0, n, n) % 40))
    n_new = int(step.max()) + 1
    new_u, new_v = _kernels.reduce_edges(u, v, step, n_new)
    carried, todo = _kernels.carry_weights(u, v, w, step, n_new, new_u, new_v)
    lone = np.bincount(step, minlength=n_new) == 1
    old = {(step[a], step[b]): x for a, b, x in zip(u, v, w)}
    expected_todo = [e for e in range(new_u.shape[0]) if not (lone[new_u[e]] and lone[new_v[e]])]
    assert 0 < len(expected_todo) < new_u.shape[0]
    np.testing.assert_array_equal(todo, expected_todo)
    for e in range(new_u.shape[0]):
        if e not in set(expected_todo):
            lo, hi = new_u[e], new_v[e]
            assert carried[e] == old.get((lo, hi), old.get((hi, lo)))


@pytest.mark.parametrize("n_leaves", range(5, 13))
def test_a_tie_met_across_runs_is_settled_by_the_edge_priority(n_leaves):
    # A star of equal weights cut into one run per edge: no run meets two
    # candidates of one node, but the centre's candidates fall in every
    # run, and its choice must still be the first by edge priority, as
    # with one run.
    u = np.zeros(n_leaves, dtype=np.int64)
    v = np.arange(1, n_leaves + 1, dtype=np.int64)
    w = np.ones(n_leaves)
    n = n_leaves + 1
    sizes, rep, height = np.ones(n), np.arange(n, dtype=np.int64), np.zeros(n)
    one = _kernels.ward_choice(n, u, v, w, sizes, rep, height, 1e-7, True, -1.0, 1)
    split = _kernels.ward_choice(n, u, v, w, sizes, rep, height, 1e-7, True, -1.0, n_leaves)
    np.testing.assert_array_equal(split[1], one[1])
    for got, want in zip(split[2], one[2]):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("with_zeros", [False, True])
@pytest.mark.parametrize("mutual, slack", [(True, 0.0), (True, WARD_PAIR_SLACK), (False, 0.0)])
def test_round_choice_is_the_serial_rule_for_any_split(monkeypatch, mutual, slack, with_zeros):
    # Tied costs everywhere (integer weights, sizes 1 and 2): the choice of
    # each node falls to the edge priority. Cut into 1 to 4 runs, and into
    # one run per thread with the grain lowered so that this small graph is
    # split and the runs go to threads, the round keeps the edges the serial
    # rule keeps.
    rng = np.random.RandomState(8)
    mask = rng.rand(12, 11, 10) < 0.9
    u, v = _sorted_edges(mask_adjacency(mask))
    n = int(mask.sum())
    w = rng.randint(1, 4, u.shape[0]).astype(np.float64)
    if with_zeros:
        w[::17] = 0.0
    sizes = rng.randint(1, 3, n).astype(np.float64)
    cost = w * (sizes[u] * sizes[v] / (sizes[u] + sizes[v]))
    keep = _kernels.nearest_neighbor_edges(n, u, v, cost, 1e-7, mutual, _kernels.NO_KEY)
    if slack:
        keep = chosen_edges(n, u, v, cost, 1e-7, True, slack)
        # Sizes 1 and 2, integer weights: costs 1/2 to 6, many of them
        # within the slack of another.
        assert (keep & ~chosen_edges(n, u, v, cost, 1e-7, True)).sum() > 10
    if with_zeros:
        # Every edge of cost 0; no pair touching one.
        on_zero = np.zeros(n, dtype=bool)
        on_zero[u[cost == 0]] = on_zero[v[cost == 0]] = True
        keep = (cost == 0) | (keep & ~on_zero[u] & ~on_zero[v])
    expected_step, expected_n = _kernels.connected_components(n, u, v, keep)
    rep, height = np.arange(n, dtype=np.int64), rng.randint(0, 3, n).astype(np.float64)

    def choose(n_runs=None):
        return _kernels.ward_choice(n, u, v, w, sizes, rep, height, 1e-7, mutual, -1.0, n_runs,
                                    slack=slack)

    results = [choose(n_runs) for n_runs in (1, 2, 3, 4)]
    monkeypatch.setattr(threads, "PARALLEL_GRAIN", 64)
    for n_threads in sorted({1, MAX_THREADS}):
        with num_threads(n_threads):
            results.append(choose())
    # With rep the node itself, a merge records its edge's ends: the kept
    # edges that join two parts, in the order they are recorded.
    nonzero = np.flatnonzero(keep & (cost != 0))
    for n_new, step, (first, second, heights, costs, new_rep, new_height), new_sizes, count \
            in results:
        # Edges of cost 0 first (in the order their merges are recorded, the
        # same for any split), then the others increasing.
        n_zero_merges = int((costs == 0).sum())
        assert (costs[:n_zero_merges] == 0).all() and (costs[n_zero_merges:] > 0).all()
        np.testing.assert_array_equal(first[n_zero_merges:], u[nonzero])
        np.testing.assert_array_equal(second[n_zero_merges:], v[nonzero])
        np.testing.assert_array_equal(costs[n_zero_merges:], cost[nonzero])
        for got, want in zip((first, second, heights, costs), results[0][2]):
            np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(step, expected_step)
        assert n_new == expected_n
        np.testing.assert_array_equal(new_sizes, np.bincount(step, weights=sizes))
        np.testing.assert_array_equal(count, np.bincount(step))
        # A merge's height: its cost raised to its ends' heights; a new
        # node's rep, its first member's; its height, the highest below it.
        np.testing.assert_array_equal(
            heights[n_zero_merges:],
            np.maximum(np.maximum(height[first], height[second]), costs)[n_zero_merges:])
        expected_rep = np.full(n_new, n)
        np.minimum.at(expected_rep, step, rep)
        np.testing.assert_array_equal(new_rep, expected_rep)
        expected_height = np.zeros(n_new)
        np.maximum.at(expected_height, step, height)
        np.maximum.at(expected_height, step[first], heights)
        np.testing.assert_array_equal(new_height, expected_height)


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
    if seed % 3 == 0:
        X = np.round(X, 1)      # ties
    for k in (1, max(2, N // 40), N // 8, N // 2):
        expected = ward_reference(X, A, k)
        # n_iter bounds nilearn's rule only: "ward" runs its merges to the end.
        for n_iter in (1, 10):
            est = ReNA(mask, n_clusters=k, n_iter=n_iter, linkage="ward", max_refine_iter=0)
            with np.errstate(all="raise"), warnings.catch_warnings():
                # more components than k: checked elsewhere
                warnings.simplefilter("ignore", UserWarning)
                est.fit(X)
            np.testing.assert_array_equal(est.labels_, expected)
        # Refined by default: the reference's cut, refined (issue 26).
        with np.errstate(all="raise"), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            refined = ReNA(mask, n_clusters=k, linkage="ward").fit(X).labels_
        n = int(expected.max()) + 1
        np.testing.assert_array_equal(refined, refined_as_a_ward_fit(
            X, A, lambda m: ward_reference(X, A, m), n))


def test_chains_go_to_ward_greedy_order_at_once():
    # Steps that grow along a chain: every node's nearest neighbour is the
    # one before it, so a mutual round would merge a single pair; the first
    # round hands the chain to Ward's greedy order, which has no budget.
    N = 3000
    X = np.cumsum(np.arange(N, dtype=np.float64) ** 1.5)[None, :]
    result = agglomerate(X, chain_graph(N), 10, linkage="ward")
    assert result.n_clusters == 10
    assert result.n_levels == 1
    expected = ward_reference(X[:, :400], sparse.diags([1.0, 1.0], [-1, 1], (400, 400)), 10)
    np.testing.assert_array_equal(
        agglomerate(X[:, :400], chain_graph(400), 10, linkage="ward",
                    max_refine_iter=0).labels, expected)


def _greedy_work(X, u, v):
    """Slots read plus costs recomputed by greedy_ward to the end, per edge."""
    n = X.shape[1]
    *_, work = _kernels.greedy_ward(np.ascontiguousarray(X.T, dtype=np.float64), np.ones(n),
                                    u, v, np.arange(n), np.zeros(n), np.int64(n))
    return work / u.shape[0]


def test_greedy_order_work_stays_linear_on_hubs():
    # A star's centre holds every edge: a merge with a leaf reads the
    # leaf's list alone (the centre's is 64 times longer), and the other
    # leaves are re-costed when they reach the top. Measured: 4.0-4.7
    # reads per edge on the star, 4.0 on chains, 6.7-12.4 on 3-D grids
    # (smooth, noise, a checkerboard, a plateau); reading the centre's list
    # at every merge would be 2 * 2,000 per edge.
    rng = np.random.default_rng(0)
    n = 4001
    star_u, star_v = np.zeros(n - 1, dtype=np.int64), np.arange(1, n, dtype=np.int64)
    chain_u = np.arange(n - 1, dtype=np.int64)
    mask = np.ones((16, 16, 16), dtype=bool)
    grid_u, grid_v = _sorted_edges(mask_adjacency(mask))
    x, y, z = np.indices(mask.shape)
    cases = {
        "star": (rng.standard_normal((1, n)), star_u, star_v),
        "star, sorted": (np.arange(n, dtype=np.float64)[None], star_u, star_v),
        "chain": (rng.standard_normal((1, n)), chain_u, chain_u + 1),
        "grid noise": (rng.standard_normal((3, mask.size)), grid_u, grid_v),
        "checkerboard": ((((x // 4 + y // 4 + z // 4) % 2) * 1.0).reshape(1, -1),
                         grid_u, grid_v),
    }
    for name, (X, u, v) in cases.items():
        assert _greedy_work(X, u, v) <= 16, name


def test_greedy_order_does_not_depend_on_the_order_of_the_edges():
    # The graph's edges are merged from one list sorted by (cost, u, v):
    # given in another order than (u, v)'s, they are sorted so first, and
    # ties (the checkerboard's costs are mostly 0 or equal) still go to
    # the smallest node numbers: the same merges, bit for bit. (Each run
    # gets its own copy of the signals, which it overwrites.)
    mask = np.ones((12, 12, 12), dtype=bool)
    u, v = _sorted_edges(mask_adjacency(mask))
    x, y, z = np.indices(mask.shape)
    rng = np.random.default_rng(3)
    shuffled = rng.permutation(u.shape[0])
    for X in (rng.standard_normal((2, mask.size)),
              (((x // 3 + y // 3 + z // 3) % 2) * 1.0).reshape(1, -1)):
        n = X.shape[1]
        runs = [_kernels.greedy_ward(np.array(X.T, order="C"), np.ones(n), uu, vv,
                                     np.arange(n), np.zeros(n), np.int64(n))
                for uu, vv in ((u, v), (u[shuffled], v[shuffled]))]
        assert runs[0][0].shape == (n - 1,)
        for given, shuffled_run in zip(runs[0][:4], runs[1][:4]):
            np.testing.assert_array_equal(given, shuffled_run)


def test_greedy_order_does_not_depend_on_the_numbers_of_the_nodes():
    # Without ties, the merges (the partitions they make, their costs and
    # heights) do not depend on how the nodes are numbered: the order
    # renumbers them internally (the order the sorted edges first name
    # them) and must map every number back. Nodes of several sizes, hubs
    # (two stars joined by a path), nodes without an edge and nodes whose
    # feature is not their number. (Which feature stands for a merged
    # cluster does depend on the numbers: the partitions are compared.)
    rng = np.random.default_rng(11)
    n = 700
    hub_a, hub_b = 0, 1
    u = np.concatenate([np.full(300, hub_a), np.full(300, hub_b), np.arange(602, 690),
                        [hub_a, 601]])
    v = np.concatenate([np.arange(2, 302), np.arange(302, 602), np.arange(603, 691),
                        [hub_b, 602]])
    X = rng.standard_normal((n, 2))
    sizes = rng.integers(1, 6, n).astype(np.float64)
    rep = rng.permutation(n).astype(np.int64)

    def merges(perm):
        # Node i of the graph given becomes node perm[i].
        new_u, new_v = perm[u], perm[v]
        lo, hi = np.minimum(new_u, new_v), np.maximum(new_u, new_v)
        order = np.lexsort((hi, lo))
        inverse = np.argsort(perm)
        first, second, heights, costs, _ = _kernels.greedy_ward(
            X[inverse].copy(), sizes[inverse].copy(), lo[order].astype(np.int64),
            hi[order].astype(np.int64), rep[inverse].copy(), np.zeros(n), np.int64(n))
        # The partition of the features after each 50 merges.
        parent = np.arange(n)

        def root(x):
            while parent[x] != x:
                x = parent[x]
            return x

        partitions = []
        for k, (a, b) in enumerate(zip(first, second)):
            parent[root(b)] = root(a)
            if k % 50 == 49:
                partitions.append(_numbered_by_first_member(
                    np.array([root(x) for x in range(n)])))
        return partitions, heights, costs

    expected = merges(np.arange(n))
    assert expected[1].shape == (len(u),)
    for seed in range(3):
        got = merges(np.random.default_rng(seed).permutation(n))
        for got_partition, partition in zip(got[0], expected[0]):
            np.testing.assert_array_equal(got_partition, partition)
        np.testing.assert_array_equal(got[1], expected[1])
        np.testing.assert_array_equal(got[2], expected[2])


def test_without_room_for_the_greedy_finish_rounds_stay_linear(monkeypatch):
    # Signals too large for the greedy finish (here: any): the mutual rounds
    # go on, one pair per round on this chain, until the work budget;
    # nearest-neighbour rounds then halve the graph.
    import fastrena.ward as ward

    monkeypatch.setattr(ward, "WARD_GREEDY_BYTES", 0)
    N = 3000
    X = np.cumsum(np.arange(N, dtype=np.float64) ** 1.5)[None, :]
    result = agglomerate(X, chain_graph(N), 10, linkage="ward")
    assert result.n_clusters == 10
    assert_partition(result.labels, 10, N)
    assert WARD_WORK_BUDGET <= result.n_levels <= WARD_WORK_BUDGET + np.log2(N) + 2


def test_verbose_names_the_greedy_finish(capsys):
    X = np.cumsum(np.arange(300, dtype=np.float64) ** 1.5)[None, :]
    ReNA(n_clusters=7, linkage="ward", verbose=1).fit(X)
    out = capsys.readouterr().out
    assert re.fullmatch(r"\[fastrena\] round 1: 300 -> 1 nodes in Ward's greedy order "
                        r"\(\d+\.\d{3} s\)\n"
                        r"\[fastrena\] cut: the 293 lowest of 299 merges leave 7 clusters\n"
                        r"\[fastrena\] refinement: 2 sweeps moved \d+, \d+ features "
                        r"\(\d+\.\d{3} s\)\n",
                        out), out


def test_greedy_phase_never_writes_into_x():
    # One sample, feature-major X: the greedy phase (entered at the first
    # round here, mutual pairs being rare) works on a copy; a read-only X
    # and a writable one give the same labels and stay as they were.
    X = np.cumsum(np.arange(300, dtype=np.float64) ** 1.5)[None, :]
    before = X.copy()
    ro = X.copy()
    ro.setflags(write=False)
    labels = agglomerate(X, chain_graph(300), 7, linkage="ward").labels
    np.testing.assert_array_equal(X, before)
    np.testing.assert_array_equal(agglomerate(ro, chain_graph(300), 7, linkage="ward").labels,
                                  labels)
    assert np.unique(labels).shape[0] == 7


def test_differs_from_the_default_linkage_on_smooth_data():
    rng = np.random.RandomState(3)
    mask = np.ones((20, 20), dtype=bool)
    X = gaussian_filter(rng.randn(10, 20, 20), (0, 2, 2)).reshape(10, -1)
    default = ReNA(mask, n_clusters=20).fit(X)
    ward = ReNA(mask, n_clusters=20, linkage="ward", max_refine_iter=0).fit(X)
    assert default.n_clusters_ == ward.n_clusters_ == 20
    assert not np.array_equal(default.labels_, ward.labels_)
    np.testing.assert_array_equal(ward.labels_, ward_reference(X, mask_adjacency(mask), 20))


# --------------------------------------------------------------------------
# Invariants of docs/design.md section 5, as for the default linkage
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


# Same labels for any thread count, layout and Dask chunking, with ties:
# tests/test_ties.py::test_tie_break_is_the_same_for_threads_layouts_and_chunks.


def test_reaches_k_whatever_n_iter():
    # A smooth chain of 512 features, K = 4: "ward" takes the rounds it
    # needs, with no warning, even with n_iter=1.
    rng = np.random.RandomState(0)
    X = np.cumsum(rng.randn(3, 512), axis=1)
    for n_iter in (1, 7, 40):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
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
    ours = ReNA(mask, n_clusters=k, linkage="ward").fit(noisy)
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
    # The estimator and the function say it in the same words.
    for caller, fit in (("ReNA", lambda: ReNA(n_clusters=2, linkage=bad).fit(X)),
                        ("recursive_neighbor_agglomeration",
                         lambda: recursive_neighbor_agglomeration(X, n_clusters=2,
                                                                  linkage=bad))):
        with pytest.raises(InvalidParameterError,
                           match=rf"^The 'linkage' parameter of {caller} must be one of "
                                 rf"'nilearn', 'ward'\. Got {re.escape(repr(bad))} instead\.$"):
            fit()


def test_greedy_order_on_a_complete_graph_is_wards_with_its_heap_grown():
    # On a complete graph Ward's greedy order is scipy's unconstrained
    # Ward. Every merge there may push a cost per neighbour of both sides
    # (2 (n - 1) slots) beyond the n (n - 1) / 2 entries first pushed: the
    # heap must grow (its loop hands back for room) many times over, and
    # the merges are still Ward's, at their exact costs (scipy's heights
    # are sqrt(2 * cost)).
    from scipy.cluster.hierarchy import ward

    rng = np.random.default_rng(5)
    n = 60
    X = rng.standard_normal((n, 3))
    u, v = np.triu_indices(n, 1)
    first, second, heights, costs, _ = _kernels.greedy_ward(
        X.copy(), np.ones(n), u.astype(np.int64), v.astype(np.int64), np.arange(n),
        np.zeros(n), np.int64(n))
    assert first.shape == (n - 1,)
    np.testing.assert_allclose(costs, ward(X)[:, 2] ** 2 / 2, rtol=1e-10)
    np.testing.assert_allclose(heights, costs, rtol=0)


def test_the_cheapest_edges_come_first_in_the_sorted_order_and_the_rest_above_their_bound():
    # The greedy order stopped after a few merges sorts the cheapest edges
    # alone (those whose costs begin as the count-th lowest's, or lower):
    # they are the start of the whole sorted list, ties included, and every
    # other edge costs more than the bound returned.
    from fastrena._kernels.merges import cheapest_edges_in_cost_order, edges_in_cost_order

    rng = np.random.default_rng(2)
    n_edges = 3_000
    u = np.sort(rng.integers(0, 500, n_edges))
    v = u + 1 + np.arange(n_edges) % 7
    for costs in (rng.exponential(size=n_edges), np.round(rng.exponential(size=n_edges), 1),
                  np.zeros(n_edges), 10.0 ** rng.integers(-300, 300, n_edges)):
        whole = edges_in_cost_order(costs, u, v)
        for count in (1, 17, 1_000, n_edges):
            first, bound = cheapest_edges_in_cost_order(costs, u, v, count)
            assert count <= first.shape[0]
            np.testing.assert_array_equal(first, whole[:first.shape[0]])
            assert costs[first].max() <= bound
            assert np.all(costs[whole[first.shape[0]:]] > bound)
            # Within about 1/1000 of the count-th lowest cost.
            assert costs[first].max() <= np.sort(costs)[count - 1] * (1 + 2.0 ** -9)


@pytest.mark.parametrize("n_merges", [1, 9, 60, 330])
def test_greedy_order_sorting_the_cheapest_edges_first_makes_the_same_merges(monkeypatch,
                                                                            n_merges):
    # Asked for fewer merges than a quarter of its nodes (here a grid and
    # 1,100 nodes without edges), the order sorts about 4 edges a merge
    # first (ward_greedy._EDGES_PER_MERGE) and the rest when its merges
    # reach them. Here one edge a merge and none more: the same merges as
    # the whole list sorted at once, on random and tied signals (a
    # checkerboard: most costs 0 or equal). From 60 merges on the random
    # signal, and at 330 on both, the merges pass the first edges' bound:
    # the rest were sorted mid-way.
    from fastrena._kernels import ward_greedy
    from fastrena._kernels.merges import cheapest_edges_in_cost_order
    from fastrena._kernels.ward_costs import ward_costs

    mask = np.ones((20, 18), dtype=bool)
    u, v = _sorted_edges(mask_adjacency(mask))
    x, y = np.indices(mask.shape)
    rng = np.random.default_rng(4)
    n = mask.size + 1_100
    passed = []
    for signal in (rng.standard_normal((mask.size, 2)),
                   (((x // 3 + y // 3) % 2) * 1.0).reshape(-1, 1)):
        X = np.zeros((n, signal.shape[1]))
        X[:mask.size] = signal
        sizes = rng.integers(1, 4, n).astype(np.float64)

        def merges():
            return _kernels.greedy_ward(X.copy(), sizes.copy(), u, v, np.arange(n), np.zeros(n),
                                        np.int64(n_merges))

        whole = merges()
        monkeypatch.setattr(ward_greedy, "_EDGES_PER_MERGE", 1)
        monkeypatch.setattr(ward_greedy, "_FIRST_EDGES", 0)
        assert ward_greedy._first_sorted(n_merges, n, u.shape[0]) == n_merges
        batched = merges()
        monkeypatch.undo()
        assert whole[0].shape == (n_merges,)
        for expected, got in zip(whole[:4], batched[:4]):
            np.testing.assert_array_equal(got, expected)
        bound = cheapest_edges_in_cost_order(ward_costs(X, sizes, u, v), u, v, n_merges)[1]
        passed.append(bool(whole[3].max() > bound))
    assert passed == [n_merges >= 60, n_merges == 330]


def test_greedy_order_sorting_the_cheapest_edges_first_sweeps_the_heap_before_looking_at_it(
        monkeypatch):
    # With edges left unsorted, the loop goes on from the heap's top only
    # if it costs no more than the sorted edges' bound. A sweep of replaced
    # entries may take the top away: the test must read the heap after the
    # sweep, else a live entry above the bound is merged before a cheaper
    # edge not yet sorted. Here (a chain found by a random search, 20 more
    # nodes without edges) the heap is swept before every merge
    # (ward_greedy._SWEEP_SLACK < 0) and two edges are sorted first: the
    # same merges as the whole list sorted at once (with the test before
    # the sweep, the third merge differed).
    from fastrena._kernels import ward_greedy

    n = 27
    X = np.zeros((n, 1))
    X[:7, 0] = [0.5, 0.0, 1.0, 0.0, 1.5, 0.0, 1.0]
    sizes = np.ones(n)
    sizes[:7] = [3, 3, 3, 1, 2, 3, 2]
    u, v = np.arange(6), np.arange(1, 7)

    def merges():
        return _kernels.greedy_ward(X.copy(), sizes.copy(), u, v, np.arange(n), np.zeros(n),
                                    np.int64(4))

    whole = merges()
    monkeypatch.setattr(ward_greedy, "_EDGES_PER_MERGE", 0)
    monkeypatch.setattr(ward_greedy, "_FIRST_EDGES", 2)
    monkeypatch.setattr(ward_greedy, "_SWEEP_SLACK", -(2 ** 40))
    assert ward_greedy._first_sorted(4, n, u.shape[0]) == 2
    swept = merges()
    assert whole[0].shape == (4,)
    for expected, got in zip(whole[:4], swept[:4]):
        np.testing.assert_array_equal(got, expected)
