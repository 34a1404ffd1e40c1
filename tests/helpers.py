"""Helpers shared by several test modules (independent of fastrena's own code).

Imported as ``from helpers import ...``: ``tests`` is on ``pythonpath`` in
pyproject.toml, and ``tests/conftest.py`` has pytest rewrite the asserts here.
"""

import math
import warnings

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph
from sklearn.metrics import adjusted_rand_score


# --------------------------------------------------------------------------
# labels and clusters
# --------------------------------------------------------------------------
def first_appearance(labels):
    """Relabel ``labels`` 0, 1, 2, ... in order of first appearance."""
    labels = np.asarray(labels)
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.empty(first.shape[0], dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.shape[0])
    return rank[inverse.ravel()]


def assert_same_partition(fast_labels, ref_labels):
    """``fast_labels`` is ``ref_labels`` renumbered in order of first appearance."""
    fast_labels = np.asarray(fast_labels)
    # fastrena numbers its clusters in order of first appearance
    np.testing.assert_array_equal(fast_labels, first_appearance(fast_labels))
    np.testing.assert_array_equal(fast_labels, first_appearance(ref_labels))
    assert adjusted_rand_score(ref_labels, fast_labels) == 1.0


def assert_clusters_connected(labels, adjacency, n_clusters=None):
    """Every cluster induces a connected subgraph of ``adjacency``: the graph
    of the intra-cluster edges has exactly ``n_clusters`` components (by
    default, the number of distinct labels)."""
    if n_clusters is None:
        n_clusters = np.unique(labels).shape[0]
    coo = sparse.coo_matrix(adjacency)
    same = labels[coo.row] == labels[coo.col]
    intra = sparse.coo_matrix(
        (np.ones(int(same.sum())), (coo.row[same], coo.col[same])), shape=coo.shape)
    n_pieces, _ = csgraph.connected_components(intra, directed=False)
    assert n_pieces == n_clusters


def largest_component(adjacency):
    """Number of nodes in the largest connected component of a graph given
    by its (symmetric) adjacency matrix."""
    _, labels = csgraph.connected_components(adjacency, directed=False)
    return int(np.bincount(labels).max())


# --------------------------------------------------------------------------
# fitting, warnings, agreement with nilearn
# --------------------------------------------------------------------------
def fit_recording(estimator, X):
    """Fit ``estimator`` on X, recording every warning; return (the messages
    of the UserWarnings, the records of all other warnings)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimator.fit(X)
    return [str(w.message) for w in caught if issubclass(w.category, UserWarning)], [
        w for w in caught if not issubclass(w.category, UserWarning)]


def expected_shortfall_messages(largest, n_comp, k, n_iter, stopped_at):
    """The UserWarnings docs/design.md section 5 asks for when K cannot be
    reached; ``largest`` is the size of the graph's largest component (each
    level at least halves every component that still has an edge)."""
    messages = []
    if n_comp > k:
        messages.append(
            f"The feature graph has {n_comp} connected components, more than "
            f"n_clusters={k}: clusters never span two components, so at least "
            f"{n_comp} clusters are returned")
    target = max(n_comp, k)
    if stopped_at > target:
        needed = max(1, math.ceil(math.log2(largest)))
        messages.append(
            f"n_iter={n_iter} levels were not enough to reach {target} clusters: "
            f"stopped at {stopped_at}; n_iter={needed} always suffices here")
    return messages


def relative_error(estimator, X):
    """||X - inverse_transform(transform(X))|| / ||X||."""
    X_hat = estimator.inverse_transform(estimator.transform(X))
    return np.linalg.norm(X - X_hat) / np.linalg.norm(X)


def assert_close_to_nilearn(fast, ref, X):
    """With pruning: adjusted Rand index >= 0.9 against nilearn's fitted
    ``ref``, approximation error of X within 1% of nilearn's."""
    ari = adjusted_rand_score(ref.labels_, fast.labels_)
    ratio = relative_error(fast, X) / relative_error(ref, X)
    assert ari >= 0.9, ari
    assert 0.99 <= ratio <= 1.01, ratio


# --------------------------------------------------------------------------
# data and graphs
# --------------------------------------------------------------------------
def halving_chain(n_levels):
    """1-sample chain of 2**L features on which every level merges exactly
    pairs: x_i = sum_k bit_k(i) * 4**k."""
    i = np.arange(2**n_levels)
    x = sum(((i >> k) & 1) * 4.0**k for k in range(n_levels))
    return x[None, :]


def edge_list(graph):
    """The edges of a FeatureGraph as a list of (u, v) int pairs."""
    return list(zip(graph.u.tolist(), graph.v.tolist()))


def brute_lattice_edges_fast(mask):
    """All pairs of nonzero cells (numbered in C order) differing by 1 along
    one axis, vectorised over all pairs: (number of cells, sorted edges)."""
    coords = np.argwhere(np.asarray(mask) != 0)
    n = len(coords)
    if n == 0:
        return 0, []
    l1 = np.abs(coords[:, None, :] - coords[None, :, :]).sum(axis=2)
    i, j = np.nonzero(np.triu(l1 == 1, k=1))
    return n, sorted(zip(i.tolist(), j.tolist()))


# --------------------------------------------------------------------------
# small NIfTI and GIfTI files
# --------------------------------------------------------------------------
# A 2 mm grid, as MNI152 files are, with the origin off the corner.
AFFINE = np.array([[2.0, 0, 0, -10], [0, 2.0, 0, -12], [0, 0, 2.0, -8], [0, 0, 0, 1]])


def write_nifti(path, data, affine=AFFINE):
    """Save ``data`` as a NIfTI file (format from the name); return the path."""
    import nibabel

    nibabel.save(nibabel.Nifti1Image(np.asarray(data), affine), str(path))
    return path


def box_mask(shape=(8, 9, 7)):
    """A boolean grid true everywhere but on a one-voxel border."""
    mask = np.zeros(shape, dtype=bool)
    mask[1:-1, 1:-1, 1:-1] = True
    return mask


def masked_volumes(mask, n_volumes, seed=0):
    """float32 (x, y, z, n) random volumes, 0 outside ``mask``."""
    rng = np.random.default_rng(seed)
    data = rng.standard_normal(mask.shape + (n_volumes,)).astype(np.float32)
    data[~mask] = 0
    return data


def grid_mesh(n_rows, n_cols, x=0.0):
    """A flat triangulated grid in the plane at ``x`` mm (negative: a left
    hemisphere, positive: a right one): coordinates (n, 3), faces (m, 3)."""
    yy, zz = np.meshgrid(np.arange(n_cols, dtype=np.float64),
                         np.arange(n_rows, dtype=np.float64))
    coords = np.column_stack([np.full(yy.size, x), yy.ravel(), zz.ravel()])
    ids = np.arange(n_rows * n_cols).reshape(n_rows, n_cols)
    a, b = ids[:-1, :-1].ravel(), ids[:-1, 1:].ravel()
    c, d = ids[1:, :-1].ravel(), ids[1:, 1:].ravel()
    faces = np.concatenate([np.column_stack([a, b, c]), np.column_stack([b, d, c])])
    return coords, faces


def write_gifti_mesh(path, coords, faces):
    """Save a mesh as a GIfTI surface file; return the path."""
    from nibabel import gifti

    arrays = [gifti.GiftiDataArray(np.asarray(coords, dtype=np.float32),
                                   intent="NIFTI_INTENT_POINTSET",
                                   datatype="NIFTI_TYPE_FLOAT32"),
              gifti.GiftiDataArray(np.asarray(faces, dtype=np.int32),
                                   intent="NIFTI_INTENT_TRIANGLE",
                                   datatype="NIFTI_TYPE_INT32")]
    gifti.GiftiImage(darrays=arrays).to_filename(str(path))
    return path


def write_gifti_data(path, data):
    """Save per-vertex data (n_vertices,) or (n_vertices, n_scans) as a
    GIfTI file with one float32 data array per scan; return the path."""
    from nibabel import gifti

    data = np.asarray(data, dtype=np.float32)
    columns = data[:, None] if data.ndim == 1 else data
    arrays = [gifti.GiftiDataArray(np.ascontiguousarray(c), datatype="NIFTI_TYPE_FLOAT32")
              for c in columns.T]
    gifti.GiftiImage(darrays=arrays).to_filename(str(path))
    return path


# --------------------------------------------------------------------------
# dask chunk functions that kill the worker process running them (importable
# by the workers of a distributed cluster: ``tests`` is on their path)
# --------------------------------------------------------------------------
def die_on_read(block, block_id=None, folder=None, on_read=1):
    """Return ``block``, except that the ``on_read``-th read of the first
    chunk kills its process, once per ``folder`` (reads are counted by
    marker files, which survive the worker)."""
    import os
    from pathlib import Path

    if block_id[0] == 0:
        folder = Path(folder)
        n_read = len(list(folder.glob("read-*"))) + 1
        (folder / f"read-{n_read}").touch()
        if n_read == on_read and not (folder / "died").exists():
            (folder / "died").touch()
            os._exit(1)
    return block


def die_always(block, block_id=None):
    """Kill the process that reads the first chunk, every time."""
    import os

    if block_id[0] == 0:
        os._exit(1)
    return block


_MASK64 = (1 << 64) - 1


def edge_priority(a, b):
    """The tie-break priority of edge (a, b), a < b, written independently
    of fastrena's kernel: SplitMix64's finaliser of a * golden + b, with
    Python integers reduced mod 2**64."""
    x = (a * 0x9E3779B97F4A7C15 + b) & _MASK64
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & _MASK64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def node_noise(a):
    """The infinitesimal noise of node a behind the signal tie key: the top
    53 bits of ``edge_priority(a, 0)`` as a number in [0, 1)."""
    return (edge_priority(a, 0) >> 11) * 2.0 ** -53


def tie_order(x0, a, b):
    """The order in which a node chooses among tied edges (lower first) in
    the default linkage: the first-order change of the weight of (a, b)
    when the first sample ``x0`` moves by the nodes' noise, then the edge
    priority (a < b). ``x0`` is oriented so that its first value unequal
    to ``x0[0]`` is above it (-X and X + c tie as X does)."""
    first = next((float(x) for x in x0 if x != x0[0]), float(x0[0]))
    sign = -1.0 if first < x0[0] else 1.0
    return ((node_noise(a) - node_noise(b)) * sign * (float(x0[a]) - float(x0[b])),
            edge_priority(a, b))
