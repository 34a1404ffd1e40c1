"""Feature graphs: the one structure the agglomeration consumes.

A :class:`FeatureGraph` is a number of nodes and an edge list ``(u, v)``
with ``u < v``, sorted by ``(u, v)``, without duplicates or self loops. Node
``i`` is column ``i`` of ``X``. Builders turn masks, meshes and sparse
adjacency matrices into that form; none of them allocates anything of the
size of the bounding grid times the samples.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse

from . import _kernels

if TYPE_CHECKING:  # annotations only: numpy.typing is not loaded at run time
    from numpy.typing import ArrayLike, NDArray

__all__ = [
    "GRAPH_CACHE",
    "FeatureGraph",
    "GraphCache",
    "adjacency_graph",
    "cached_adjacency_graph",
    "cached_lattice_graph",
    "chain_graph",
    "graph_from_edges",
    "listed_parts_graph",
    "lattice_graph",
    "mesh_graph",
    "surface_graph",
]


@dataclass(frozen=True, eq=False)
class FeatureGraph:
    """An undirected graph over the features of ``X``.

    Parameters
    ----------
    n_nodes : int
        Number of nodes (features).
    u, v : ndarray of int64, shape (n_edges,)
        Edge ends, ``u < v``, sorted by ``(u, v)``, unique. Build graphs with
        :func:`graph_from_edges` or the other builders, which guarantee this.
    """

    n_nodes: int
    u: NDArray[np.int64]
    v: NDArray[np.int64]

    @property
    def n_edges(self) -> int:
        return int(self.u.shape[0])

    def _component_labels(self):
        keep = np.ones(self.n_edges, dtype=bool)
        return _kernels.connected_components(self.n_nodes, self.u, self.v, keep)

    def n_connected_components(self) -> int:
        """Number of connected components (isolated nodes count as one each)."""
        return int(self._component_labels()[1])

    def component_sizes(self) -> np.ndarray:
        """Number of nodes of each connected component (int64, one entry
        per component)."""
        labels, n_components = self._component_labels()
        return np.bincount(labels, minlength=n_components)

    def largest_component_size(self) -> int:
        """Number of nodes in the largest connected component (0 if empty)."""
        return int(self.component_sizes().max(initial=0))

    def neighbour_lists(self) -> tuple[NDArray[np.int64], NDArray[np.integer], int]:
        """The graph as neighbour lists, both directions: ``(indptr,
        indices, max_degree)``, node i's neighbours
        ``indices[indptr[i]:indptr[i + 1]]`` in the order of the edges
        (:func:`fastrena._kernels.neighbour_lists`), ``indices`` int32 when
        the nodes' numbers fit; the boundary refinement reads them.

        Built on the first call (a counting sort, linear in the edges) and
        kept, read-only, with the graph, and with the graph that
        :class:`GraphCache` keeps for this mask or matrix: every later
        refinement on it, such as the fits of a bootstrap or of
        cross-validation on one mask, skips them. They take 12 bytes a
        node and 8 an edge (7.4 MB on the 2 mm MNI mask), counted in the
        cache's size, and are not pickled."""
        box = _neighbour_box(self)
        kept = box[0]
        if kept is None:
            indptr, indices, max_degree = _kernels.neighbour_lists(self.n_nodes, self.u, self.v)
            indptr.flags.writeable = False
            indices.flags.writeable = False
            # Two threads may both build them: the same arrays, either
            # one kept.
            kept = box[0] = (indptr, indices, max_degree)
        return kept

    def __getstate__(self):
        # Without the neighbour lists (rebuilt where they are needed): a
        # graph sent to Dask workers stays its edges.
        return {key: value for key, value in self.__dict__.items() if key != "_neighbours"}

    def to_adjacency(self) -> sparse.csr_matrix:
        """Symmetric ``scipy.sparse`` CSR adjacency with ones on the edges."""
        n = self.n_nodes
        rows = np.concatenate([self.u, self.v])
        cols = np.concatenate([self.v, self.u])
        data = np.ones(rows.shape[0], dtype=np.int8)
        return sparse.csr_matrix((data, (rows, cols)), shape=(n, n))

    def __repr__(self):
        return f"FeatureGraph(n_nodes={self.n_nodes}, n_edges={self.n_edges})"


def _neighbour_box(graph):
    """The one-slot list holding ``graph``'s neighbour lists once built
    (:meth:`FeatureGraph.neighbour_lists`), shared with the graphs
    :class:`GraphCache` hands out for the same key. A frozen dataclass:
    its ``__dict__`` is written directly, as ``functools.cached_property``
    does."""
    return graph.__dict__.setdefault("_neighbours", [None])


def graph_from_edges(n_nodes: int, u: ArrayLike, v: ArrayLike) -> FeatureGraph:
    """Build a :class:`FeatureGraph` from any list of edges.

    Self loops are dropped, each edge is stored once as ``(min, max)``
    and the list is sorted.

    Parameters
    ----------
    n_nodes : int
    u, v : array-like of int, shape (n_edges,)
        Edge ends, in ``[0, n_nodes)``, in any order, duplicates allowed.

    Returns
    -------
    FeatureGraph

    Examples
    --------
    >>> g = graph_from_edges(3, [2, 0, 1, 1], [1, 1, 0, 1])
    >>> g.u.tolist(), g.v.tolist()
    ([0, 1], [1, 2])
    """
    n_nodes = int(n_nodes)
    u = np.asarray(u, dtype=np.int64).ravel()
    v = np.asarray(v, dtype=np.int64).ravel()
    if u.shape != v.shape:
        raise ValueError(f"u and v must have the same length, got {u.shape[0]} and {v.shape[0]}")
    if u.size and (min(u.min(), v.min()) < 0 or max(u.max(), v.max()) >= n_nodes):
        raise ValueError(f"edge ends must lie in [0, {n_nodes}), got values in "
                         f"[{min(u.min(), v.min())}, {max(u.max(), v.max())}]")
    lo = np.minimum(u, v)
    hi = np.maximum(u, v)
    # Reusing the level-reduction kernel with the identity labelling gives
    # a linear-time sort and deduplication.
    identity = np.arange(n_nodes, dtype=np.int64)
    su, sv = _kernels.reduce_edges(lo, hi, identity, n_nodes)
    return FeatureGraph(n_nodes, su, sv)


def chain_graph(n_nodes: int) -> FeatureGraph:
    """The 1-D chain 0-1-2-...-(n-1): the graph used when none is given.

    Examples
    --------
    >>> chain_graph(4).u.tolist(), chain_graph(4).v.tolist()
    ([0, 1, 2], [1, 2, 3])
    """
    u = np.arange(max(int(n_nodes) - 1, 0), dtype=np.int64)
    return FeatureGraph(int(n_nodes), u, u + 1)


def lattice_graph(mask: ArrayLike) -> FeatureGraph:
    """Graph of the nonzero cells of a mask, joined when they share a face.

    6-connectivity in 3-D, 4-connectivity in 2-D, 2 in 1-D. Nodes are the
    in-mask cells in C order, which is the column order of ``X`` as
    nilearn's maskers produce it. Cells with no in-mask neighbour are nodes
    without edges; they never shift the ids of later cells.

    Parameters
    ----------
    mask : ndarray, any dimension
        Nonzero cells are in the mask.

    Returns
    -------
    FeatureGraph

    Examples
    --------
    >>> import numpy as np
    >>> g = lattice_graph(np.array([[1, 1], [0, 1]], dtype=bool))
    >>> g.u.tolist(), g.v.tolist()
    ([0, 1], [1, 2])
    """
    mask = np.asarray(mask) != 0
    n_nodes = int(np.count_nonzero(mask))
    ids = np.full(mask.shape, -1, dtype=np.int64)
    ids[mask] = np.arange(n_nodes, dtype=np.int64)
    # forward[i, k]: neighbour of node i one step ahead along axis
    # (ndim - 1 - k), or -1. In C order a step along a later axis is a
    # smaller index jump, so reading the table row by row yields the
    # edges already sorted by (u, v).
    forward = np.full((n_nodes, mask.ndim), -1, dtype=np.int64)
    for k, axis in enumerate(reversed(range(mask.ndim))):
        head = [slice(None)] * mask.ndim
        tail = [slice(None)] * mask.ndim
        head[axis] = slice(None, -1)
        tail[axis] = slice(1, None)
        a = ids[tuple(head)]
        b = ids[tuple(tail)]
        both = (a >= 0) & (b >= 0)
        forward[a[both], k] = b[both]
    has = forward >= 0
    u = np.broadcast_to(np.arange(n_nodes, dtype=np.int64)[:, None], forward.shape)[has]
    v = forward[has]
    return FeatureGraph(n_nodes, np.ascontiguousarray(u), np.ascontiguousarray(v))


def _mesh_edges(faces, mask, offset):
    """Edges (in node ids shifted by ``offset``) of one masked mesh part."""
    faces = np.asarray(faces)
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces must have shape (n_faces, 3), got {faces.shape}")
    mask = np.asarray(mask).ravel() != 0
    ids = np.full(mask.shape[0], -1, dtype=np.int64)
    n_in = int(np.count_nonzero(mask))
    ids[mask] = np.arange(offset, offset + n_in, dtype=np.int64)
    if faces.size and (faces.min() < 0 or faces.max() >= mask.shape[0]):
        raise ValueError(
            f"faces refer to vertices in [{faces.min()}, {faces.max()}] but the "
            f"mesh part has {mask.shape[0]} vertices"
        )
    face_ids = ids[faces.astype(np.int64)]
    a = face_ids.ravel()
    b = np.roll(face_ids, -1, axis=1).ravel()
    both = (a >= 0) & (b >= 0)
    return n_in, a[both], b[both]


def _listed_vertex_edges(faces, vertices, n_vertices, offset):
    """Edges of a mesh among the listed ``vertices`` (node ``offset + i`` is
    ``vertices[i]``): triangle sides whose two ends are listed."""
    faces = np.asarray(faces, dtype=np.int64)
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces must have shape (n_faces, 3), got {faces.shape}")
    if faces.size and (faces.min() < 0 or faces.max() >= n_vertices):
        raise ValueError(f"faces refer to vertices in [{faces.min()}, {faces.max()}] but "
                         f"the mesh has {n_vertices} vertices")
    ids = np.full(int(n_vertices), -1, dtype=np.int64)
    ids[vertices] = np.arange(offset, offset + vertices.shape[0], dtype=np.int64)
    face_ids = ids[faces]
    a = face_ids.ravel()
    b = np.roll(face_ids, -1, axis=1).ravel()
    both = (a >= 0) & (b >= 0)
    return a[both], b[both]


def _listed_voxel_edges(ijk, shape, offset):
    """6-connectivity among the listed voxels ``ijk`` (node ``offset + i``
    is voxel ``ijk[i]``) of a grid of ``shape``."""
    ids = np.full(tuple(int(n) for n in shape), -1, dtype=np.int64)
    ids[tuple(ijk.T)] = np.arange(offset, offset + ijk.shape[0], dtype=np.int64)
    us, vs = [], []
    for axis in range(3):
        step = np.zeros(3, dtype=np.int64)
        step[axis] = 1
        inside = ijk[:, axis] + 1 < shape[axis]
        here = ijk[inside]
        b = ids[tuple((here + step).T)]
        us.append(ids[tuple(here.T)][b >= 0])
        vs.append(b[b >= 0])
    return np.concatenate(us), np.concatenate(vs)


def listed_parts_graph(parts: Sequence[Any]) -> FeatureGraph:
    """Graph of features listed part after part, as CIFTI-2 brain models
    list grayordinates: no edge joins two parts.

    Parameters
    ----------
    parts : sequence of tuples
        ``("surface", faces, vertices, n_vertices)``: the listed vertices of
        a mesh of ``n_vertices`` vertices, joined by its triangle sides; or
        ``("volume", ijk, shape)``: listed voxels (integer array (n, 3)) of
        a grid, 6-connected. Nodes are numbered in listing order.

    Returns
    -------
    FeatureGraph

    Examples
    --------
    >>> g = listed_parts_graph([("surface", [[0, 1, 2]], [2, 0], 3),
    ...                         ("volume", [[0, 0, 0], [0, 0, 1]], (1, 1, 2))])
    >>> g.n_nodes, g.u.tolist(), g.v.tolist()
    (4, [0, 2], [1, 3])
    """
    us, vs = [], []
    offset = 0
    for part in parts:
        if part[0] == "surface":
            _, faces, vertices, n_vertices = part
            vertices = np.asarray(vertices, dtype=np.int64).ravel()
            if vertices.size and (vertices.min() < 0 or vertices.max() >= n_vertices):
                raise ValueError(f"vertices must lie in [0, {n_vertices}), got values in "
                                 f"[{vertices.min()}, {vertices.max()}]")
            a, b = _listed_vertex_edges(faces, vertices, n_vertices, offset)
        else:
            _, ijk, shape = part
            vertices = np.asarray(ijk, dtype=np.int64).reshape(-1, 3)
            a, b = _listed_voxel_edges(vertices, shape, offset)
        us.append(a)
        vs.append(b)
        offset += vertices.shape[0]
    if not us:
        return FeatureGraph(0, np.empty(0, np.int64), np.empty(0, np.int64))
    return graph_from_edges(offset, np.concatenate(us), np.concatenate(vs))


def mesh_graph(faces: ArrayLike, mask: ArrayLike | None = None,
               n_vertices: int | None = None) -> FeatureGraph:
    """Graph of a triangle mesh: triangle sides with both ends in the mask.

    Parameters
    ----------
    faces : ndarray of int, shape (n_faces, 3)
    mask : array-like of bool, shape (n_vertices,), optional
        In-mask vertices; all vertices when omitted.
    n_vertices : int, optional
        Number of vertices when ``mask`` is omitted (default: the largest
        vertex index in ``faces`` plus one).

    Returns
    -------
    FeatureGraph
        Nodes are the in-mask vertices in vertex order.

    Examples
    --------
    >>> g = mesh_graph([[0, 1, 2], [1, 2, 3]], mask=[True, True, True, False])
    >>> g.u.tolist(), g.v.tolist()
    ([0, 0, 1], [1, 2, 2])
    """
    return surface_graph([(faces, mask, n_vertices)])


def surface_graph(parts: Any) -> FeatureGraph:
    """Graph of a mesh made of several parts (hemispheres).

    Parameters
    ----------
    parts : sequence of (faces, mask) or (faces, mask, n_vertices)
        Nodes are the in-mask vertices of the first part in vertex order,
        then of the second part, and so on; no edge joins two parts.

    Returns
    -------
    FeatureGraph
    """
    us, vs = [], []
    offset = 0
    for part in parts:
        faces, mask = part[0], part[1]
        n_vertices = part[2] if len(part) > 2 else None
        if mask is None:
            faces_arr = np.asarray(faces)
            if n_vertices is None:
                n_vertices = int(faces_arr.max()) + 1 if faces_arr.size else 0
            mask = np.ones(int(n_vertices), dtype=bool)
        n_in, a, b = _mesh_edges(faces, mask, offset)
        us.append(a)
        vs.append(b)
        offset += n_in
    if not us:
        return FeatureGraph(0, np.empty(0, np.int64), np.empty(0, np.int64))
    return graph_from_edges(offset, np.concatenate(us), np.concatenate(vs))


def adjacency_graph(adjacency: Any) -> FeatureGraph:
    """Graph of a square sparse (or dense) adjacency matrix.

    Any stored nonzero off the diagonal is an edge; the matrix is
    symmetrised (an entry at ``(i, j)`` or ``(j, i)`` joins i and j).

    Parameters
    ----------
    adjacency : scipy sparse matrix or array, shape (n, n)
        For example what ``sklearn.feature_extraction.image.grid_to_graph``
        or ``sklearn.neighbors.kneighbors_graph`` return.

    Returns
    -------
    FeatureGraph

    Examples
    --------
    >>> from scipy import sparse
    >>> g = adjacency_graph(sparse.coo_matrix(([1, 5, 1], ([0, 2, 1], [1, 1, 1])), shape=(3, 3)))
    >>> g.u.tolist(), g.v.tolist()
    ([0, 1], [1, 2])
    """
    if sparse.issparse(adjacency):
        coo = sparse.coo_matrix(adjacency)
    else:
        coo = sparse.coo_matrix(np.asarray(adjacency))
    if coo.ndim != 2 or coo.shape[0] != coo.shape[1]:
        raise ValueError(f"connectivity must be a square matrix, got shape {coo.shape}")
    nonzero = coo.data != 0
    return graph_from_edges(coo.shape[0], coo.row[nonzero], coo.col[nonzero])


# --------------------------------------------------------------------------
# many fits on one graph
# --------------------------------------------------------------------------
def content_digest(*arrays):
    """A digest of the arrays' shapes, data types and values: equal for
    arrays of equal content, whoever holds them (a copy, a clone's deep
    copy, an unpickled one), different as soon as one value changes."""
    h = hashlib.blake2b(digest_size=20)
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(repr((a.shape, a.dtype.str)).encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


class GraphCache:
    """The graphs of the last masks and connectivity matrices fitted on,
    keyed by their content, so that fits on one mask (bootstraps, folds,
    clones of one estimator) build its graph once.

    A key is the builder's name and a :func:`content_digest` of its input:
    hashing costs a pass over the mask or the matrix (about a tenth of
    building the graph), and a mask changed in place, or another mask of
    the same shape, is another key. Every caller gets its own copy of the
    edge arrays, so nothing a caller does to a graph reaches the cache.
    At most ``max_bytes`` of edges are kept (least recently used dropped
    first); 0 disables the cache. One lock guards the table: threads share
    it safely (two threads that miss the same key both build it, and get
    the same graph). Each process has its own. The graphs handed out share
    the kept graph's neighbour lists (read-only, see
    :meth:`FeatureGraph.neighbour_lists`), which count in its size once
    built: each lookup drops the least recently used graphs until the
    rest, lists included, fit in ``max_bytes``.

    Parameters
    ----------
    max_bytes : int, default=256 MiB
        The 2 mm MNI brain mask's graph takes 11 MB, the 1 mm one's 90 MB
        (their neighbour lists, once a refinement built them, 7.4 and 60
        MB more).
    """

    def __init__(self, max_bytes=256 * 2**20):
        self.max_bytes = int(max_bytes)
        self._graphs = OrderedDict()
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0

    def get(self, key, build):
        """The graph under ``key``, built by ``build()`` on a miss (or
        always, without counting, when the cache is off: ``max_bytes`` 0)."""
        if self.max_bytes <= 0:
            return build()
        with self._lock:
            graph = self._graphs.get(key)
            if graph is not None:
                self._graphs.move_to_end(key)
                self._hits += 1
                # Neighbour lists built since the last lookup count now:
                # the least recently used graphs go first, this one last.
                self._evict()
            else:
                self._misses += 1
        if graph is None:
            graph = build()
            self._store(key, graph)
        # Copies: a caller that writes into its edges cannot reach the
        # cache (a copy costs a few milliseconds at 2 mm, building 0.1 s).
        # The neighbour lists, read-only, are shared: built by the first
        # refinement on any of them, kept for the next.
        copy = FeatureGraph(graph.n_nodes, graph.u.copy(), graph.v.copy())
        copy.__dict__["_neighbours"] = _neighbour_box(graph)
        return copy

    def _store(self, key, graph):
        size = graph.u.nbytes + graph.v.nbytes
        with self._lock:
            if size > self.max_bytes:
                return
            # The builder's own graph: no caller holds it (each gets a copy).
            self._graphs[key] = graph
            self._graphs.move_to_end(key)
            self._evict()

    def _evict(self):
        # Under the lock: the least recently used graphs dropped until the
        # rest fit in max_bytes.
        while self._graphs and self._nbytes() > self.max_bytes:
            self._graphs.popitem(last=False)

    def _nbytes(self):
        total = 0
        for graph in self._graphs.values():
            total += graph.u.nbytes + graph.v.nbytes
            kept = _neighbour_box(graph)[0]
            if kept is not None:
                total += kept[0].nbytes + kept[1].nbytes
        return total

    def info(self):
        """``{"hits", "misses", "graphs", "bytes"}``: lookups that found a
        graph, lookups that built one, graphs kept and their edges' bytes."""
        with self._lock:
            return {"hits": self._hits, "misses": self._misses,
                    "graphs": len(self._graphs), "bytes": self._nbytes()}

    def clear(self):
        """Forget every graph (and the counts)."""
        with self._lock:
            self._graphs.clear()
            self._hits = self._misses = 0


#: The process's graph cache (:class:`GraphCache`), used by the estimator
#: for masks (:func:`cached_lattice_graph`) and connectivity matrices
#: (:func:`cached_adjacency_graph`). ``GRAPH_CACHE.max_bytes = 0`` turns it
#: off; ``GRAPH_CACHE.clear()`` frees it.
GRAPH_CACHE = GraphCache()


def cached_lattice_graph(mask):
    """:func:`lattice_graph` of ``mask``, through :data:`GRAPH_CACHE`."""
    mask = np.asarray(mask) != 0
    return GRAPH_CACHE.get(("lattice", content_digest(mask)), lambda: lattice_graph(mask))


def cached_adjacency_graph(adjacency):
    """:func:`adjacency_graph` of ``adjacency``, through :data:`GRAPH_CACHE`:
    keyed by the matrix's stored entries (a sparse matrix in COO, CSR or
    CSC form, as given) or its values (a dense array)."""
    if sparse.issparse(adjacency):
        fmt = adjacency.format
        if fmt == "coo":
            parts = (adjacency.row, adjacency.col, adjacency.data)
        elif fmt in ("csr", "csc"):
            parts = (adjacency.indptr, adjacency.indices, adjacency.data)
        else:
            # lil, dok, dia, bsr: their content is not a few flat arrays.
            return adjacency_graph(adjacency)
        key = ("adjacency", fmt, tuple(adjacency.shape), content_digest(*parts))
    else:
        adjacency = np.asarray(adjacency)
        if adjacency.dtype == object:
            return adjacency_graph(adjacency)
        key = ("adjacency", "dense", content_digest(adjacency))
    return GRAPH_CACHE.get(key, lambda: adjacency_graph(adjacency))
