"""In memory, a ``"ward"`` round reduces its graph and carries its weights
in one radix sort, beside the in-place merge of its signals
(``fastrena._kernels.ward_round_end``); the chunked backend takes those
steps one by one (``reduce_edges``, ``carry_weights``, then the signals).
Both must make the same merges, bit for bit: the same
features, heights and costs in the same order, on every input (ties,
plateaus, cost-0 regions, hubs, chains, rescaled data, the rounds past the
work budget that are not mutual, the greedy finish)."""

import numpy as np
import pytest
from scipy import sparse
from scipy.ndimage import gaussian_filter

from fastrena import ReNA, _kernels, agglomeration, ward

from helpers import WardMergesSpy, chain_adjacency, star_adjacency


def merges(monkeypatch, fused, X, n_clusters, **graph):
    monkeypatch.setattr(agglomeration, "_FUSED_WARD_ROUNDS", fused)
    spy = WardMergesSpy(monkeypatch)
    est = ReNA(n_clusters=n_clusters, linkage="ward", max_refine_iter=0, **graph).fit(X)
    made = spy.made[-1]
    return est.labels_, [np.concatenate(getattr(made, name))
                         for name in ("first", "second", "heights", "costs")]


def assert_same_merges(monkeypatch, X, n_clusters, **graph):
    labels_new, new = merges(monkeypatch, True, X, n_clusters, **graph)
    labels_old, old = merges(monkeypatch, False, X, n_clusters, **graph)
    for name, a, b in zip(("first", "second", "heights", "costs"), new, old):
        assert a.dtype == b.dtype and a.shape == b.shape, name
        # Bits, not values: -0.0 and 0.0, NaN payloads alike.
        assert np.array_equal(a.view(np.int64), b.view(np.int64)), name
    np.testing.assert_array_equal(labels_new, labels_old)
    return new[0].shape[0]


def random_graph(n, n_edges, rng):
    a = rng.integers(0, n, n_edges)
    b = rng.integers(0, n, n_edges)
    keep = a != b
    A = sparse.coo_matrix((np.ones(keep.sum()), (a[keep], b[keep])), shape=(n, n))
    # A chain through every node keeps the graph connected.
    chain = sparse.diags([np.ones(n - 1)], [1], (n, n))
    return (A + A.T + chain + chain.T).tocoo()


def cases():
    rng = np.random.default_rng(7)
    side = 14
    cube = np.ones((side,) * 3, dtype=bool)
    x, y, z = np.indices((side,) * 3)
    ball = (((x - 7) ** 2 + (y - 7) ** 2 + (z - 7) ** 2) < 20).astype(float)
    smooth = gaussian_filter(rng.standard_normal((6, side, side, side)), (0, 1.5, 1.5, 1.5))
    holes = cube.copy()
    holes[rng.random(cube.shape) < 0.15] = False
    return {
        "smooth": (smooth.reshape(6, -1), {"mask_img": cube}),
        "smooth, mask with holes": (smooth[:, holes], {"mask_img": holes}),
        "binary ball": (ball.reshape(1, -1), {"mask_img": cube}),
        "checkerboard": ((((x // 3 + y // 3 + z // 3) % 2) * 1.0).reshape(1, -1),
                         {"mask_img": cube}),
        "constant": (np.ones((2, side ** 3)), {"mask_img": cube}),
        "constant regions in noise": (
            np.where(x < 7, 1.0, rng.standard_normal(cube.shape)).reshape(1, -1),
            {"mask_img": cube}),
        "integer levels": (rng.integers(0, 3, (2, side ** 3)).astype(float),
                           {"mask_img": cube}),
        "plateau": ((ball + 0.01 * rng.standard_normal(ball.shape)).reshape(1, -1),
                    {"mask_img": cube}),
        "random graph": (rng.standard_normal((3, 1500)),
                         {"connectivity": random_graph(1500, 4000, rng)}),
        "random graph, ties": (rng.integers(0, 4, (1, 1500)).astype(float),
                               {"connectivity": random_graph(1500, 4000, rng)}),
        "star": (rng.standard_normal((1, 2001)), {"connectivity": star_adjacency(2000)}),
        "star, ties": (rng.integers(0, 3, (1, 2001)).astype(float),
                       {"connectivity": star_adjacency(2000)}),
        "chain of steps": (np.cumsum(np.arange(1500.0) ** 1.5)[None],
                           {"connectivity": chain_adjacency(1500)}),
        "chain, noise": (rng.standard_normal((2, 1500)), {"connectivity": chain_adjacency(1500)}),
        "huge values": (1e300 * smooth.reshape(6, -1), {"mask_img": cube}),
        "tiny values": (1e-300 * smooth.reshape(6, -1), {"mask_img": cube}),
    }


#: Every case in float64, and in float32 all but the values beyond its
#: range (they are there for the rescaling of float64 weights).
DTYPE_CASES = [(name, dtype) for dtype in (np.float64, np.float32) for name in cases()
               if dtype == np.float64 or name not in ("huge values", "tiny values")]


@pytest.mark.parametrize(("name", "dtype"), DTYPE_CASES)
def test_fused_rounds_make_the_same_merges(monkeypatch, name, dtype):
    X, graph = cases()[name]
    X = X.astype(dtype)
    n_merges = assert_same_merges(monkeypatch, X, max(2, X.shape[1] // 50), **graph)
    assert n_merges >= X.shape[1] // 2


@pytest.mark.parametrize("name", ["smooth", "checkerboard", "star", "chain, noise",
                                  "random graph, ties", "binary ball"])
def test_fused_rounds_past_the_work_budget(monkeypatch, name):
    # Signals too large for the greedy finish (here: any) leave the rounds
    # to go on, and past the work budget the rounds are not mutual.
    X, graph = cases()[name]
    monkeypatch.setattr(ward, "WARD_GREEDY_BYTES", 0)
    monkeypatch.setattr(ward, "WARD_WORK_BUDGET", 2)
    assert_same_merges(monkeypatch, X, 3, **graph)


def test_one_round_matches_the_plain_rule_and_the_steps():
    rng = np.random.default_rng(3)
    n = 400
    A = random_graph(n, 1200, rng)
    lo, hi = np.minimum(A.row, A.col), np.maximum(A.row, A.col)
    keep = lo != hi
    u, v = _kernels.reduce_edges(lo[keep], hi[keep], np.arange(n), n)
    for w in (rng.random(u.shape[0]), rng.integers(0, 3, u.shape[0]).astype(float)):
        sizes = rng.integers(1, 4, n).astype(float)
        rep = np.arange(n, dtype=np.int64)
        height = rng.random(n)
        for mutual in (True, False):
            n_new, step, got, new_sizes, count = _kernels.ward_choice(
                n, u, v, w, sizes, rep, height, 1e-7, mutual, -1.0)
            nu, nv, nw, todo = _kernels.reduced_edges_carrying(u, v, w, step, n_new, count)
            # The merges against the plain rule: every edge kept by both
            # ends (mutual) or either end, recorded in edge order, with the
            # kept edges' costs.
            cost = w * (sizes[u] * sizes[v] / (sizes[u] + sizes[v]))
            keep = _kernels.nearest_neighbor_edges(n, u, v, cost, 1e-7, mutual, _kernels.NO_KEY)
            on_zero = np.zeros(n, dtype=bool)
            on_zero[u[cost == 0]] = on_zero[v[cost == 0]] = True
            keep = (cost == 0) | (keep & ~on_zero[u] & ~on_zero[v])
            step_old, n_old = _kernels.connected_components(n, u, v, keep)
            assert n_new == n_old
            np.testing.assert_array_equal(step, step_old)
            first, second, heights, costs, new_rep, new_height = got
            nonzero = np.flatnonzero(keep & (cost != 0))
            if mutual and nonzero.shape[0]:
                np.testing.assert_array_equal(first[-nonzero.shape[0]:], rep[u[nonzero]])
                np.testing.assert_array_equal(costs[-nonzero.shape[0]:], cost[nonzero])
            assert (heights >= costs).all()
            np.testing.assert_array_equal(new_sizes,
                                          np.bincount(step, weights=sizes, minlength=n_new))
            u_old, v_old = _kernels.reduce_edges(u, v, step, n_new)
            carried, todo_old = _kernels.carry_weights(u, v, w, step, n_new, u_old, v_old)
            np.testing.assert_array_equal(nu, u_old)
            np.testing.assert_array_equal(nv, v_old)
            np.testing.assert_array_equal(todo, todo_old)
            kept_weight = np.ones(nu.shape[0], dtype=bool)
            kept_weight[todo] = False
            np.testing.assert_array_equal(nw[kept_weight], carried[kept_weight])


@pytest.mark.parametrize("n_threads", [1, 2])
def test_a_rounds_end_split_between_its_tasks_is_its_steps(n_threads):
    # ward_round_end reduces the graph on one task while the other merges
    # the new nodes' signals, a piece at a time, the first task joining it
    # once the graph is done. Whichever task claims which piece, and on any
    # thread count, the new graph, its carried weights, the new rows and the
    # signals written in place are those of the steps taken one by one,
    # bit for bit.
    import numba

    from fastrena import arrays
    from fastrena._kernels import round_end
    from fastrena.graphs import lattice_graph

    rng = np.random.default_rng(11)
    side, n_samples = 40, 300
    n = side * side
    graph = lattice_graph(np.ones((side, side), dtype=bool))
    u, v = graph.u, graph.v
    # Pairs along the first axis (every other one, in a checkerboard of
    # rows), numbered by first appearance as a round's labels are.
    partner = np.arange(n)
    for a in range(0, n - side, 2 * side):
        for b in range(a, a + side, 3):
            partner[b + side] = b
    step = np.unique(np.minimum(np.arange(n), partner), return_inverse=True)[1].reshape(-1)
    n_new = int(step.max()) + 1
    count = np.bincount(step, minlength=n_new)
    sizes = rng.integers(1, 5, n).astype(np.float64)
    new_sizes = np.bincount(step, weights=sizes, minlength=n_new)
    w = rng.random(u.shape[0])
    # Node i's signal is row rows[i] of a feature-major array with spare rows.
    rows = rng.permutation(n + 50)[:n]
    F = np.asarray(rng.standard_normal((n + 50, n_samples)).T)
    # Several pieces of merges to claim: with two threads, both tasks take
    # some (the one that reduces the graph once it is done).
    assert n_new > 4 * round_end._MERGED_PER_CLAIM
    before = numba.get_num_threads()
    numba.set_num_threads(min(n_threads, numba.config.NUMBA_NUM_THREADS))
    try:
        F_fused = F.copy(order="A")
        *edges, new_rows = _kernels.ward_round_end(u, v, w, step, n_new, count, F_fused.T, rows,
                                                   sizes, new_sizes)
    finally:
        numba.set_num_threads(before)
    F_steps = F.copy(order="A")
    expected_rows, finite = arrays.reduce_signals_in_place(F_steps, rows, step, n_new, sizes)
    assert finite
    for got, want in zip(edges, _kernels.reduced_edges_carrying(u, v, w, step, n_new, count)):
        assert np.array_equal(got.view(np.int64), want.view(np.int64))
    np.testing.assert_array_equal(new_rows, expected_rows)
    assert np.array_equal(F_fused.view(np.int64), F_steps.view(np.int64))


def test_round_buffers_alternate_and_hold_nothing_over():
    # A fit's rounds reduce their graphs into two sets of buffers taken in
    # turn: a round reads the set the round before wrote, so two calls in a
    # row never hand out the same memory; the third hands the first's back.
    # Whatever an earlier round left in them (and in the sort's scratch),
    # the new graph is the one new arrays give, bit for bit.
    from fastrena.graphs import lattice_graph

    buffers = _kernels.RoundBuffers(10)
    first, second = buffers.outputs(10), buffers.outputs(7)
    assert not any(np.shares_memory(a, b) for a in first for b in second)
    assert all(a is b for a, b in zip(buffers.outputs(3), first))
    with pytest.raises(ValueError, match=r"^11 edges exceed the buffers' 10$"):
        buffers.outputs(11)

    rng = np.random.default_rng(5)
    side, n_samples = 12, 3
    n = side * side
    graph = lattice_graph(np.ones((side, side), dtype=bool))
    u, v = graph.u, graph.v
    buffers = _kernels.RoundBuffers(u.shape[0])
    for used in buffers.outputs(u.shape[0]) + buffers.outputs(u.shape[0]):
        used[:] = -7
    buffers.scratch[:] = 123456789
    # Pairs of horizontal neighbours, numbered by first appearance.
    step = np.arange(n) // 2
    count = np.bincount(step)
    n_new = count.shape[0]
    sizes = np.ones(n)
    new_sizes = np.bincount(step, weights=sizes)
    w = rng.random(u.shape[0])
    for _ in range(3):
        F = rng.standard_normal((n_samples, n))
        F_fresh = np.asfortranarray(F)
        F_reused = np.asfortranarray(F)
        *fresh, fresh_rows = _kernels.ward_round_end(u, v, w, step, n_new, count, F_fresh.T,
                                                     np.arange(n), sizes, new_sizes)
        *reused, reused_rows = _kernels.ward_round_end(u, v, w, step, n_new, count,
                                                       F_reused.T, np.arange(n), sizes,
                                                       new_sizes, buffers)
        for got, want in zip(reused, fresh):
            assert np.array_equal(got.view(np.int64), want.view(np.int64))
        np.testing.assert_array_equal(reused_rows, fresh_rows)
        assert np.array_equal(F_reused.view(np.int64), F_fresh.view(np.int64))
