"""Tests of the feature-graph builders in :mod:`fastrena.graphs`.

Every builder is compared with a brute-force construction written directly
from the spec (docs/design.md section 1) on many random inputs.
"""

import itertools
import pickle
import re

import joblib
import numpy as np
import pytest
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from fastrena.graphs import (
    FeatureGraph,
    adjacency_graph,
    chain_graph,
    graph_from_edges,
    lattice_graph,
    mesh_graph,
    surface_graph,
)

from helpers import brute_lattice_edges_fast, edge_list

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def assert_canonical(graph):
    """The FeatureGraph invariants: int64, u < v, sorted by (u, v), unique."""
    assert isinstance(graph, FeatureGraph)
    assert isinstance(graph.n_nodes, int)
    assert graph.u.dtype == np.int64
    assert graph.v.dtype == np.int64
    assert graph.u.ndim == 1 and graph.v.ndim == 1
    assert graph.u.shape == graph.v.shape
    assert graph.n_edges == graph.u.shape[0]
    if graph.n_edges:
        assert np.all(graph.u < graph.v)
        assert graph.u.min() >= 0
        assert graph.v.max() < graph.n_nodes
        edges = edge_list(graph)
        assert edges == sorted(edges)
        assert len(set(edges)) == len(edges)


def assert_graph_is(graph, n_nodes, edges):
    """``graph`` has ``n_nodes`` nodes and exactly ``edges`` (sorted), and is
    canonical."""
    assert graph.n_nodes == n_nodes
    assert edge_list(graph) == edges
    assert_canonical(graph)


def brute_lattice_edges(mask):
    """All pairs of in-mask cells (in C order) differing by 1 along one axis."""
    coords = np.argwhere(np.asarray(mask) != 0)  # C order of in-mask cells
    edges = []
    for i in range(len(coords)):
        for j in range(i + 1, len(coords)):
            diff = np.abs(coords[i] - coords[j])
            if diff.sum() == 1:  # integer coords: exactly one axis, by 1
                edges.append((i, j))
    return len(coords), sorted(edges)


def brute_mesh_edges(parts):
    """Triangle sides with both ends in the mask, parts concatenated."""
    edges = set()
    offset = 0
    for faces, mask in parts:
        mask = np.asarray(mask, dtype=bool)
        ids = {}
        for vert in range(len(mask)):
            if mask[vert]:
                ids[vert] = offset + len(ids)
        for face in np.asarray(faces).reshape(-1, 3).tolist():
            for a, b in itertools.combinations(face, 2):
                if a in ids and b in ids and a != b:
                    x, y = ids[a], ids[b]
                    edges.add((min(x, y), max(x, y)))
        offset += len(ids)
    return offset, sorted(edges)


def random_mask(rng, shape, density):
    return rng.random(shape) < density


def assert_lattice_graph_matches(mask, brute_force=brute_lattice_edges):
    """lattice_graph(mask) is the brute-force lattice graph of ``mask``
    (``brute_lattice_edges_fast`` for bigger masks)."""
    graph = lattice_graph(mask)
    n, edges = brute_force(mask)
    assert_graph_is(graph, n, edges)


# ---------------------------------------------------------------------------
# lattice_graph
# ---------------------------------------------------------------------------


def _random_masks():
    """Many random masks of 1, 2 and 3 dimensions (seeded)."""
    rng = np.random.default_rng(20240601)
    masks = []
    shapes = [
        (1,), (2,), (7,), (30,),
        (1, 1), (1, 9), (9, 1), (4, 5), (8, 8), (3, 13),
        (1, 1, 1), (1, 1, 10), (10, 1, 1), (1, 10, 1), (2, 3, 4),
        (5, 5, 5), (6, 4, 7), (3, 9, 2),
    ]
    for shape in shapes:
        for density in (0.15, 0.5, 0.85):
            for _ in range(3):
                masks.append(random_mask(rng, shape, density))
    return masks


RANDOM_MASKS = _random_masks()


@pytest.mark.parametrize("idx", range(len(RANDOM_MASKS)))
def test_lattice_graph_matches_brute_force_random(idx):
    assert_lattice_graph_matches(RANDOM_MASKS[idx])


def _special_masks():
    masks = {}
    masks["single_voxel_3d"] = np.zeros((4, 4, 4), bool)
    masks["single_voxel_3d"][2, 1, 3] = True
    masks["single_voxel_1x1x1"] = np.ones((1, 1, 1), bool)
    masks["full_cube"] = np.ones((3, 4, 5), bool)
    masks["line_x"] = np.zeros((6, 5, 4), bool)
    masks["line_x"][:, 2, 1] = True
    masks["line_y"] = np.zeros((6, 5, 4), bool)
    masks["line_y"][3, :, 1] = True
    masks["line_z"] = np.zeros((6, 5, 4), bool)
    masks["line_z"][3, 2, :] = True
    # hole in the middle of a cube
    hole = np.ones((5, 5, 5), bool)
    hole[2, 2, 2] = False
    masks["hole"] = hole
    # cube shell (big hole)
    shell = np.ones((5, 5, 5), bool)
    shell[1:4, 1:4, 1:4] = False
    masks["shell"] = shell
    # checkerboard: every voxel isolated
    idx = np.indices((5, 4, 3)).sum(axis=0)
    masks["checkerboard"] = idx % 2 == 0
    # several components with isolated voxels between them
    comps = np.zeros((7, 7, 7), bool)
    comps[0:2, 0:2, 0:2] = True
    comps[4:7, 4:7, 0] = True
    comps[3, 0, 6] = True  # isolated
    comps[6, 0, 0] = True  # isolated
    comps[0, 6, 3:6] = True
    masks["components"] = comps
    # an isolated voxel early in C order, then a block: ids must not shift
    early = np.zeros((4, 4, 4), bool)
    early[0, 0, 0] = True
    early[2:, 2:, 2:] = True
    masks["isolated_first"] = early
    # 2-D with a ring (hole) and a diagonal chain (no 4-connectivity)
    ring = np.ones((5, 5), bool)
    ring[1:4, 1:4] = False
    masks["ring_2d"] = ring
    masks["diagonal_2d"] = np.eye(6, dtype=bool)
    masks["diagonal_3d"] = np.zeros((4, 4, 4), bool)
    masks["diagonal_3d"][np.arange(4), np.arange(4), np.arange(4)] = True
    masks["line_1d_gaps"] = np.array([1, 1, 0, 1, 0, 0, 1, 1, 1, 0, 1], bool)
    return masks


SPECIAL_MASKS = _special_masks()


@pytest.mark.parametrize("name", sorted(SPECIAL_MASKS))
def test_lattice_graph_matches_brute_force_special(name):
    assert_lattice_graph_matches(SPECIAL_MASKS[name])


def test_lattice_graph_larger_random_masks():
    rng = np.random.default_rng(7)
    for shape in [(12, 11, 10), (40, 37), (500,), (9, 1, 30)]:
        for density in (0.3, 0.7):
            mask = random_mask(rng, shape, density)
            assert_lattice_graph_matches(mask, brute_lattice_edges_fast)


def test_lattice_graph_exact_small_examples():
    # docstring example
    g = lattice_graph(np.array([[1, 1], [0, 1]], dtype=bool))
    assert (g.n_nodes, edge_list(g)) == (3, [(0, 1), (1, 2)])
    # 1-D
    g = lattice_graph(np.array([1, 0, 1, 1, 1, 0, 1]))
    assert (g.n_nodes, edge_list(g)) == (5, [(1, 2), (2, 3)])
    # 2x2x2 full cube: 12 edges
    g = lattice_graph(np.ones((2, 2, 2)))
    assert g.n_nodes == 8
    assert edge_list(g) == [
        (0, 1), (0, 2), (0, 4), (1, 3), (1, 5), (2, 3),
        (2, 6), (3, 7), (4, 5), (4, 6), (5, 7), (6, 7),
    ]
    # isolated voxel at position 0 does not shift the others
    m = np.zeros((3, 3), bool)
    m[0, 0] = True
    m[2, 1:] = True
    g = lattice_graph(m)
    assert (g.n_nodes, edge_list(g)) == (3, [(1, 2)])


def test_lattice_graph_node_numbering_is_c_order():
    """Node i is the i-th in-mask cell of np.argwhere (C order), checked by
    giving each cell a distinct coordinate-dependent label."""
    rng = np.random.default_rng(3)
    for shape in [(4, 5, 6), (7, 3), (3, 1, 8)]:
        mask = random_mask(rng, shape, 0.55)
        coords = np.argwhere(mask)
        graph = lattice_graph(mask)
        assert graph.n_nodes == len(coords)
        # every edge joins face neighbours according to C order numbering
        d = np.abs(coords[graph.u] - coords[graph.v])
        assert np.all(d.sum(axis=1) == 1)
        # and the linear C-order index of u is smaller than that of v
        lin = np.ravel_multi_index(coords.T, shape, order="C")
        assert np.all(np.diff(lin) > 0)
        assert np.all(lin[graph.u] < lin[graph.v])


@pytest.mark.parametrize(
    "values",
    [
        np.array([0, 2, 5, -1, 0, 7]),
        np.array([0.0, 0.5, 1e-30, -3.0, 0.0, 2.0]),
        np.array([False, True, True, True, False, True]),
        np.array([0, 1, 1, 1, 0, 1], dtype=np.uint8),
    ],
)
def test_lattice_graph_any_nonzero_is_in(values):
    mask = values.reshape(2, 3)
    g = lattice_graph(mask)
    # in-mask cells: (0,1) (0,2) (1,0) (1,2) -> ids 0..3
    assert g.n_nodes == 4
    assert edge_list(g) == [(0, 1), (1, 3)]


def test_lattice_graph_fortran_order_and_views():
    rng = np.random.default_rng(11)
    mask = random_mask(rng, (5, 6, 7), 0.6)
    ref = lattice_graph(np.ascontiguousarray(mask))
    for variant in (np.asfortranarray(mask), mask.astype(np.int16)):
        g = lattice_graph(variant)
        assert g.n_nodes == ref.n_nodes
        np.testing.assert_array_equal(g.u, ref.u)
        np.testing.assert_array_equal(g.v, ref.v)
    view = mask[::2, 1:, ::-1]
    g = lattice_graph(view)
    n, edges = brute_lattice_edges(view)
    assert g.n_nodes == n and edge_list(g) == edges


def test_lattice_graph_does_not_modify_input():
    mask = np.array([[1, 0, 1], [1, 1, 0]], dtype=np.int64)
    before = mask.copy()
    lattice_graph(mask)
    np.testing.assert_array_equal(mask, before)


def test_lattice_graph_empty_mask():
    g = lattice_graph(np.zeros((3, 4, 2), bool))
    assert g.n_nodes == 0
    assert g.n_edges == 0
    assert_canonical(g)


# ---------------------------------------------------------------------------
# mesh_graph / surface_graph
# ---------------------------------------------------------------------------


def random_mesh(rng, n_vertices, n_faces):
    faces = np.array([rng.choice(n_vertices, size=3, replace=False) for _ in range(n_faces)])
    return faces.reshape(-1, 3)


def test_mesh_graph_docstring_example():
    g = mesh_graph([[0, 1, 2], [1, 2, 3]], mask=[True, True, True, False])
    assert (g.n_nodes, edge_list(g)) == (3, [(0, 1), (0, 2), (1, 2)])


@pytest.mark.parametrize("seed", range(25))
def test_mesh_graph_matches_brute_force(seed):
    rng = np.random.default_rng(1000 + seed)
    n_vertices = int(rng.integers(3, 40))
    faces = random_mesh(rng, n_vertices, int(rng.integers(1, 3 * n_vertices)))
    mask = rng.random(n_vertices) < rng.choice([0.3, 0.7, 1.0])
    g = mesh_graph(faces, mask=mask)
    n, edges = brute_mesh_edges([(faces, mask)])
    assert n == int(mask.sum())
    assert_graph_is(g, n, edges)


def test_mesh_graph_node_ids_are_in_mask_vertices_in_order():
    # vertices 1, 3, 4 in mask -> node ids 0, 1, 2
    faces = np.array([[0, 1, 3], [1, 3, 4], [3, 4, 2], [0, 2, 4]])
    mask = np.array([False, True, False, True, True])
    g = mesh_graph(faces, mask=mask)
    assert g.n_nodes == 3
    assert edge_list(g) == [(0, 1), (0, 2), (1, 2)]
    mask = np.array([True, False, True, False, True])  # vertices 0, 2, 4
    g = mesh_graph(faces, mask=mask)
    assert g.n_nodes == 3
    assert edge_list(g) == [(0, 1), (0, 2), (1, 2)]  # face [0, 2, 4]
    mask = np.array([False, False, True, True, True])  # vertices 2, 3, 4
    g = mesh_graph(faces, mask=mask)
    assert g.n_nodes == 3
    assert edge_list(g) == [(0, 1), (0, 2), (1, 2)]  # face [3, 4, 2]
    mask = np.array([True, True, True, False, False])  # vertices 0, 1, 2
    g = mesh_graph(faces, mask=mask)
    assert g.n_nodes == 3
    assert edge_list(g) == [(0, 1), (0, 2)]  # sides 0-1 and 0-2 only


def test_mesh_graph_no_mask_uses_all_vertices():
    faces = np.array([[0, 1, 2], [2, 3, 1]])
    g = mesh_graph(faces)
    assert g.n_nodes == 4
    assert edge_list(g) == [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)]
    # explicit n_vertices: vertices not in any face are isolated nodes
    g = mesh_graph(faces, n_vertices=7)
    assert g.n_nodes == 7
    assert edge_list(g) == [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)]
    assert g.n_connected_components() == 4


def test_mesh_graph_mask_accepts_int_and_list():
    faces = [[0, 1, 2], [1, 2, 3]]
    g_bool = mesh_graph(faces, mask=np.array([True, False, True, True]))
    g_int = mesh_graph(faces, mask=[1, 0, 1, 1])
    assert g_bool.n_nodes == g_int.n_nodes == 3
    # vertices 0, 2, 3 -> ids 0, 1, 2; sides 0-2 and 2-3 survive
    assert edge_list(g_bool) == edge_list(g_int) == [(0, 1), (1, 2)]


def test_mesh_graph_empty_mask_and_isolated_vertices():
    faces = np.array([[0, 1, 2]])
    g = mesh_graph(faces, mask=np.zeros(3, bool))
    assert (g.n_nodes, g.n_edges) == (0, 0)
    g = mesh_graph(faces, mask=np.array([True, False, False, True]))
    assert (g.n_nodes, g.n_edges) == (2, 0)


def test_mesh_graph_bad_faces():
    with pytest.raises(ValueError, match=re.escape("(2, 4)")):
        mesh_graph(np.zeros((2, 4), int), mask=np.ones(4, bool))
    with pytest.raises(ValueError, match="faces refer to vertices"):
        mesh_graph(np.array([[0, 1, 5]]), mask=np.ones(4, bool))
    with pytest.raises(ValueError, match="4 vertices"):
        mesh_graph(np.array([[0, 1, 5]]), mask=np.ones(4, bool))
    with pytest.raises(ValueError, match="faces refer to vertices"):
        mesh_graph(np.array([[0, -1, 2]]), mask=np.ones(4, bool))


@pytest.mark.parametrize("seed", range(15))
def test_surface_graph_matches_brute_force(seed):
    rng = np.random.default_rng(5000 + seed)
    parts = []
    for _ in range(int(rng.integers(1, 4))):
        n_vertices = int(rng.integers(3, 25))
        faces = random_mesh(rng, n_vertices, int(rng.integers(1, 2 * n_vertices)))
        mask = rng.random(n_vertices) < 0.6
        parts.append((faces, mask))
    g = surface_graph(parts)
    n, edges = brute_mesh_edges(parts)
    assert_graph_is(g, n, edges)

    # parts are concatenated: each block is that part's own mesh_graph,
    # shifted by the number of in-mask vertices of the previous parts, and
    # no edge crosses two blocks.
    offsets = np.cumsum([0] + [int(np.count_nonzero(m)) for _, m in parts])
    block = np.searchsorted(offsets, np.arange(n), side="right") - 1
    assert np.all(block[g.u] == block[g.v])
    for k, (faces, mask) in enumerate(parts):
        sub = mesh_graph(faces, mask=mask)
        in_block = block[g.u] == k
        np.testing.assert_array_equal(g.u[in_block] - offsets[k], sub.u)
        np.testing.assert_array_equal(g.v[in_block] - offsets[k], sub.v)


def test_surface_graph_exact_two_parts():
    left_faces = np.array([[0, 1, 2], [1, 2, 3], [3, 4, 5]])
    left_mask = np.array([1, 1, 0, 1, 1, 1], bool)
    right_faces = np.array([[0, 1, 2], [0, 2, 3]])
    right_mask = np.array([1, 0, 1, 1], bool)
    g = surface_graph([(left_faces, left_mask), (right_faces, right_mask)])
    assert g.n_nodes == 8
    assert edge_list(g) == [
        (0, 1), (1, 2), (2, 3), (2, 4), (3, 4),  # left
        (5, 6), (5, 7), (6, 7),  # right, shifted by 5
    ]
    # the same two parts with identical vertex indices are not joined
    g2 = surface_graph([(right_faces, None), (right_faces, None)])
    assert g2.n_nodes == 8
    assert edge_list(g2) == [
        (0, 1), (0, 2), (0, 3), (1, 2), (2, 3),
        (4, 5), (4, 6), (4, 7), (5, 6), (6, 7),
    ]
    assert g2.n_connected_components() == 2


def test_surface_graph_three_element_parts_and_empty():
    g = surface_graph([(np.array([[0, 1, 2]]), None, 5), (np.array([[0, 1, 2]]), None)])
    assert g.n_nodes == 8
    assert edge_list(g) == [(0, 1), (0, 2), (1, 2), (5, 6), (5, 7), (6, 7)]
    empty = surface_graph([])
    assert (empty.n_nodes, empty.n_edges) == (0, 0)
    assert_canonical(empty)


def test_surface_graph_part_with_nothing_in_mask():
    faces = np.array([[0, 1, 2]])
    g = surface_graph([(faces, np.zeros(3, bool)), (faces, np.ones(3, bool))])
    assert g.n_nodes == 3
    assert edge_list(g) == [(0, 1), (0, 2), (1, 2)]


# ---------------------------------------------------------------------------
# adjacency_graph
# ---------------------------------------------------------------------------


def brute_adjacency_edges(dense_nonzero):
    """Edges from a boolean n x n matrix of stored nonzeros."""
    n = dense_nonzero.shape[0]
    return sorted(
        (i, j)
        for i in range(n)
        for j in range(i + 1, n)
        if dense_nonzero[i, j] or dense_nonzero[j, i]
    )


def test_adjacency_graph_docstring_example():
    adj = sparse.coo_matrix(([1, 5, 1], ([0, 2, 1], [1, 1, 1])), shape=(3, 3))
    g = adjacency_graph(adj)
    assert (g.n_nodes, edge_list(g)) == (3, [(0, 1), (1, 2)])


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("fmt", ["coo", "csr", "csc", "lil", "dense", "coo_array", "csr_array"])
def test_adjacency_graph_random_asymmetric_with_self_loops(seed, fmt):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 30))
    n_entries = int(rng.integers(0, 3 * n + 1))
    rows = rng.integers(0, n, size=n_entries)
    cols = rng.integers(0, n, size=n_entries)
    # nonzero values of both signs; diagonal entries included on purpose
    vals = rng.choice([-2.5, -1.0, 0.3, 1.0, 7.0], size=n_entries)
    rows = np.concatenate([rows, np.arange(n)])
    cols = np.concatenate([cols, np.arange(n)])
    vals = np.concatenate([vals, np.full(n, 3.0)])
    # make duplicates positive so they cannot cancel when summed
    vals = np.abs(vals)
    coo = sparse.coo_matrix((vals, (rows, cols)), shape=(n, n))
    dense = coo.toarray()
    expected = brute_adjacency_edges(dense != 0)
    if fmt == "coo":
        adj = coo
    elif fmt == "csr":
        adj = coo.tocsr()
    elif fmt == "csc":
        adj = coo.tocsc()
    elif fmt == "lil":
        adj = coo.tolil()
    elif fmt == "dense":
        adj = dense
    elif fmt == "coo_array":
        adj = sparse.coo_array(coo)
    else:
        adj = sparse.csr_array(coo)
    g = adjacency_graph(adj)
    assert_graph_is(g, n, expected)


def test_adjacency_graph_asymmetric_and_duplicates_exact():
    # (0,2) only one direction, (1,0) twice, (3,1) & (1,3), self loops
    rows = [0, 1, 1, 3, 1, 2, 4]
    cols = [2, 0, 0, 1, 3, 2, 4]
    adj = sparse.coo_matrix((np.ones(7), (rows, cols)), shape=(5, 5))
    g = adjacency_graph(adj)
    assert g.n_nodes == 5
    assert edge_list(g) == [(0, 1), (0, 2), (1, 3)]


def test_adjacency_graph_only_self_loops():
    g = adjacency_graph(sparse.identity(6, format="csr"))
    assert (g.n_nodes, g.n_edges) == (6, 0)
    assert g.n_connected_components() == 6


def test_adjacency_graph_explicit_zeros_are_not_edges():
    # CSR with stored zeros at (0, 1), (2, 3) and a real edge at (1, 2)
    data = np.array([0.0, 5.0, 0.0, 1.0])
    indices = np.array([1, 2, 3, 1])
    indptr = np.array([0, 1, 2, 3, 4])
    adj = sparse.csr_matrix((data, indices, indptr), shape=(4, 4))
    assert adj.nnz == 4  # zeros really are stored
    g = adjacency_graph(adj)
    assert g.n_nodes == 4
    assert edge_list(g) == [(1, 2), (1, 3)]

    coo = sparse.coo_matrix(([0, 0, 2], ([0, 1, 3], [3, 2, 0])), shape=(4, 4))
    assert coo.nnz == 3
    g = adjacency_graph(coo)
    assert edge_list(g) == [(0, 3)]

    all_zero = sparse.csr_matrix((np.zeros(3), ([0, 1, 2], [1, 2, 0])), shape=(3, 3))
    assert all_zero.nnz == 3
    g = adjacency_graph(all_zero)
    assert (g.n_nodes, g.n_edges) == (3, 0)


def test_adjacency_graph_dense_and_bool():
    dense = np.array(
        [
            [1, 0, 0, 4],
            [2, 0, 0, 0],
            [0, 0, 9, 0],
            [0, 0, -1, 0],
        ]
    )
    expected = [(0, 1), (0, 3), (2, 3)]
    assert edge_list(adjacency_graph(dense)) == expected
    assert edge_list(adjacency_graph(dense != 0)) == expected
    assert edge_list(adjacency_graph(dense.tolist())) == expected
    assert edge_list(adjacency_graph(dense.astype(np.float32))) == expected


def test_adjacency_graph_matches_grid_to_graph_and_kneighbors():
    from sklearn.feature_extraction.image import grid_to_graph
    from sklearn.neighbors import kneighbors_graph

    rng = np.random.default_rng(42)
    mask = random_mask(rng, (6, 5, 4), 0.6)
    conn = grid_to_graph(*mask.shape, mask=mask)
    g = adjacency_graph(conn)
    ref = lattice_graph(mask)
    assert g.n_nodes == ref.n_nodes
    np.testing.assert_array_equal(g.u, ref.u)
    np.testing.assert_array_equal(g.v, ref.v)

    pts = rng.normal(size=(40, 3))
    knn = kneighbors_graph(pts, n_neighbors=3)  # asymmetric
    g = adjacency_graph(knn)
    nz = knn.toarray() != 0
    assert edge_list(g) == brute_adjacency_edges(nz)


@pytest.mark.parametrize(
    "adj, shape",
    [
        (sparse.csr_matrix((3, 4)), (3, 4)),
        (sparse.coo_matrix(np.ones((5, 2))), (5, 2)),
        (np.ones((2, 3)), (2, 3)),
        (np.ones((1, 7)), (1, 7)),
    ],
)
def test_adjacency_graph_non_square(adj, shape):
    with pytest.raises(ValueError, match=re.escape(str(shape))):
        adjacency_graph(adj)
    with pytest.raises(ValueError, match="square"):
        adjacency_graph(adj)


# ---------------------------------------------------------------------------
# chain_graph
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 2, 3, 10, 257])
def test_chain_graph(n):
    g = chain_graph(n)
    assert_graph_is(g, n, [(i, i + 1) for i in range(n - 1)])
    assert g.n_connected_components() == (1 if n else 0)


def test_chain_graph_accepts_numpy_int():
    g = chain_graph(np.int64(4))
    assert g.n_nodes == 4 and type(g.n_nodes) is int
    assert edge_list(g) == [(0, 1), (1, 2), (2, 3)]


# ---------------------------------------------------------------------------
# graph_from_edges
# ---------------------------------------------------------------------------


def test_graph_from_edges_docstring_example():
    g = graph_from_edges(3, [2, 0, 1, 1], [1, 1, 0, 1])
    assert (g.n_nodes, edge_list(g)) == (3, [(0, 1), (1, 2)])


@pytest.mark.parametrize("seed", range(30))
def test_graph_from_edges_normalisation(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 50))
    m = int(rng.integers(0, 4 * n))
    u = rng.integers(0, n, size=m)
    v = rng.integers(0, n, size=m)
    # add reversed duplicates and self loops
    u = np.concatenate([u, v[: m // 2], np.arange(0, n, 3)])
    v = np.concatenate([v, u[: m // 2], np.arange(0, n, 3)])
    perm = rng.permutation(len(u))
    u, v = u[perm], v[perm]
    g = graph_from_edges(n, u, v)
    expected = sorted({(min(a, b), max(a, b)) for a, b in zip(u.tolist(), v.tolist()) if a != b})
    assert_graph_is(g, n, expected)


def test_graph_from_edges_input_types():
    for dtype in (np.int32, np.uint16, np.int64):
        g = graph_from_edges(4, np.array([3, 1], dtype=dtype), np.array([0, 2], dtype=dtype))
        assert edge_list(g) == [(0, 3), (1, 2)]
        assert_canonical(g)
    g = graph_from_edges(np.int32(4), (3, 1), (0, 2))
    assert g.n_nodes == 4 and type(g.n_nodes) is int


def test_graph_from_edges_empty():
    g = graph_from_edges(5, [], [])
    assert (g.n_nodes, g.n_edges) == (5, 0)
    assert_canonical(g)
    g = graph_from_edges(0, [], [])
    assert (g.n_nodes, g.n_edges) == (0, 0)
    g = graph_from_edges(3, [1, 2], [1, 2])  # only self loops
    assert (g.n_nodes, g.n_edges) == (3, 0)


@pytest.mark.parametrize(
    "u, v, bad",
    [
        ([0, 5], [1, 2], "5"),
        ([0, 1], [1, 7], "7"),
        ([-1, 1], [1, 2], "-1"),
        ([0, 1], [1, -3], "-3"),
    ],
)
def test_graph_from_edges_out_of_range(u, v, bad):
    with pytest.raises(ValueError, match=re.escape("[0, 5)")):
        graph_from_edges(5, u, v)
    with pytest.raises(ValueError, match=re.escape(bad)):
        graph_from_edges(5, u, v)


def test_graph_from_edges_edges_with_no_nodes():
    with pytest.raises(ValueError, match=re.escape("[0, 0)")):
        graph_from_edges(0, [0], [0])


def test_graph_from_edges_length_mismatch():
    with pytest.raises(ValueError, match="same length, got 3 and 2"):
        graph_from_edges(5, [0, 1, 2], [1, 2])


# ---------------------------------------------------------------------------
# FeatureGraph methods
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(30))
def test_n_connected_components_matches_scipy(seed):
    rng = np.random.default_rng(300 + seed)
    n = int(rng.integers(1, 80))
    m = int(rng.integers(0, n + n // 2 + 1))
    g = graph_from_edges(n, rng.integers(0, n, m), rng.integers(0, n, m))
    expected, _ = connected_components(g.to_adjacency(), directed=False)
    assert g.n_connected_components() == expected
    # independent check without going through to_adjacency
    adj = sparse.coo_matrix((np.ones(g.n_edges), (g.u, g.v)), shape=(n, n))
    assert g.n_connected_components() == connected_components(adj, directed=False)[0]
    # The sizes of the components, whatever their numbering, and the largest.
    _, scipy_labels = connected_components(adj, directed=False)
    sizes = g.component_sizes()
    assert sizes.shape == (expected,)
    np.testing.assert_array_equal(np.sort(sizes), np.sort(np.bincount(scipy_labels)))
    assert g.largest_component_size() == np.bincount(scipy_labels).max()


@pytest.mark.parametrize("name", sorted(SPECIAL_MASKS))
def test_n_connected_components_on_masks(name):
    from scipy import ndimage

    mask = SPECIAL_MASKS[name]
    g = lattice_graph(mask)
    structure = ndimage.generate_binary_structure(mask.ndim, 1)  # face connectivity
    _, n_labels = ndimage.label(mask, structure=structure)
    assert g.n_connected_components() == n_labels


def test_n_connected_components_exact():
    assert graph_from_edges(6, [0, 2], [1, 3]).n_connected_components() == 4
    assert graph_from_edges(0, [], []).n_connected_components() == 0
    assert graph_from_edges(0, [], []).component_sizes().shape == (0,)
    assert graph_from_edges(0, [], []).largest_component_size() == 0
    assert sorted(graph_from_edges(6, [0, 2], [1, 3]).component_sizes()) == [1, 1, 2, 2]
    assert graph_from_edges(1, [], []).n_connected_components() == 1
    assert chain_graph(100).n_connected_components() == 1


def random_edges_graph(seed):
    """A graph of 1-39 nodes and up to three times as many random edges
    (self loops and duplicates dropped)."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    m = int(rng.integers(0, 3 * n))
    return graph_from_edges(n, rng.integers(0, n, m), rng.integers(0, n, m))


@pytest.mark.parametrize("seed", range(15))
def test_to_adjacency_round_trip(seed):
    g = random_edges_graph(900 + seed)
    n = g.n_nodes
    adj = g.to_adjacency()
    assert sparse.issparse(adj)
    assert adj.format == "csr"
    assert adj.shape == (n, n)
    assert adj.nnz == 2 * g.n_edges
    dense = adj.toarray()
    np.testing.assert_array_equal(dense, dense.T)
    assert np.all(np.diag(dense) == 0)
    assert set(np.unique(dense).tolist()) <= {0, 1}
    for a, b in edge_list(g):
        assert dense[a, b] == 1 and dense[b, a] == 1
    assert int(dense.sum()) == 2 * g.n_edges
    back = adjacency_graph(adj)
    assert back.n_nodes == g.n_nodes
    np.testing.assert_array_equal(back.u, g.u)
    np.testing.assert_array_equal(back.v, g.v)


@pytest.mark.parametrize("seed", range(10))
def test_neighbour_lists_are_each_node_s_neighbours_in_edge_order(seed):
    # Node i's list: the other end of each of its edges, in the order of
    # the edges (sorted by (u, v)): the order in which a refinement meets
    # its candidate clusters (ties go to the first met).
    g = random_edges_graph(40 + seed)
    n = g.n_nodes
    indptr, indices, max_degree = g.neighbour_lists()
    assert indptr.dtype == np.int64 and indices.dtype == np.int32
    assert indptr.shape == (n + 1,) and indices.shape == (2 * g.n_edges,)
    for i in range(n):
        expected = [int(b if a == i else a) for a, b in edge_list(g) if i in (a, b)]
        assert indices[indptr[i]:indptr[i + 1]].tolist() == expected
    degrees = np.bincount(np.concatenate([g.u, g.v]), minlength=n)
    assert max_degree == int(degrees.max(initial=0))
    # Built once, kept with the graph, read-only: the same arrays again.
    again = g.neighbour_lists()
    assert again[0] is indptr and again[1] is indices
    assert not indptr.flags.writeable and not indices.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        indices[:1] = 0


def test_neighbour_lists_are_not_pickled():
    # Nor hashed: joblib's hash of a graph (an estimator's memory= cache
    # keys) is the same before and after a refinement built them.
    g = chain_graph(5)
    before = joblib.hash(g)
    g.neighbour_lists()
    assert joblib.hash(g) == before
    back = pickle.loads(pickle.dumps(g))
    assert "_neighbours" not in back.__dict__
    np.testing.assert_array_equal(back.neighbour_lists()[1], [1, 0, 2, 1, 3, 2, 4, 3])
    assert back.neighbour_lists()[2] == 2 and back.n_edges == 4


def test_to_adjacency_of_lattice_equals_grid_to_graph_off_diagonal():
    from sklearn.feature_extraction.image import grid_to_graph

    rng = np.random.default_rng(8)
    mask = random_mask(rng, (5, 6, 3), 0.5)
    adj = lattice_graph(mask).to_adjacency().toarray()
    ref = grid_to_graph(*mask.shape, mask=mask).toarray() != 0
    np.fill_diagonal(ref, False)
    np.testing.assert_array_equal(adj != 0, ref)


def test_feature_graph_repr():
    assert repr(chain_graph(4)) == "FeatureGraph(n_nodes=4, n_edges=3)"
