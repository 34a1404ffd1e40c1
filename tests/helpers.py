"""Helpers and reference implementations shared by the test modules
(written independently of fastrena's own code); fixtures are in conftest.py.

Imported as ``from helpers import ...``: ``tests`` is on ``pythonpath`` in
pyproject.toml, and ``tests/conftest.py`` has pytest rewrite the asserts here.
"""

import math
import os
import re
import sys
import warnings
from pathlib import Path

import numba
import numpy as np
from scipy import sparse
from scipy.sparse import csgraph
from sklearn.feature_extraction.image import grid_to_graph
from sklearn.metrics import adjusted_rand_score

from fastrena import ReNA, recursive_neighbor_agglomeration
from fastrena.cli import main


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


# --------------------------------------------------------------------------
# graphs, data and checks shared by the agglomeration tests
# --------------------------------------------------------------------------
def _clean_adjacency(A):
    """Symmetric 0/1 CSR adjacency without self loops."""
    A = sparse.csr_matrix(A, dtype=np.float64)
    A = ((abs(A) + abs(A.T)) > 0).astype(np.int8).tolil()
    A.setdiag(0)
    A = A.tocsr()
    A.eliminate_zeros()
    return A


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


def octasphere(level):
    """Closed triangle mesh: an octahedron subdivided ``level`` times,
    projected on the unit sphere (4**level * 8 faces)."""
    verts = [np.array(v, dtype=float) for v in
             [(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)]]
    faces = [(0, 2, 4), (2, 1, 4), (1, 3, 4), (3, 0, 4),
             (2, 0, 5), (1, 2, 5), (3, 1, 5), (0, 3, 5)]
    for _ in range(level):
        midpoint = {}

        def mid(a, b):
            key = (min(a, b), max(a, b))
            if key not in midpoint:
                m = verts[a] + verts[b]
                verts.append(m / np.linalg.norm(m))
                midpoint[key] = len(verts) - 1
            return midpoint[key]

        new = []
        for a, b, c in faces:
            ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
            new += [(a, ab, ca), (ab, b, bc), (ca, bc, c), (ab, bc, ca)]
        faces = new
    return np.array(verts), np.array(faces, dtype=np.int64)


# --------------------------------------------------------------------------
# the command line
# --------------------------------------------------------------------------
FASTRENA = Path(sys.executable).parent / "fastrena"


def call(capsys, *args):
    """``main`` in this process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def folder_state(folder):
    """Every file under ``folder`` with its content, to prove nothing changed."""
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


PARCELLATE = ["parcellate", "run1.nii.gz", "run2.nii", "--mask", "mask.nii.gz", "-k", 4]


class WardMergesSpy:
    """Keeps every :class:`fastrena.ward.WardMerges` that fits make while
    installed (``monkeypatch`` on ``fastrena.agglomeration``), to read the
    merges in the order they were made."""

    def __init__(self, monkeypatch):
        from fastrena import agglomeration, ward

        self.made = []
        spy = self

        class Recording(ward.WardMerges):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                spy.made.append(self)

        monkeypatch.setattr(agglomeration, "WardMerges", Recording)

    def merges(self):
        """(first, second, costs) of the last fit, in the order made."""
        last = self.made[-1]
        return (np.concatenate(last.first), np.concatenate(last.second),
                np.concatenate(last.costs))


def star_adjacency(n_leaves):
    """A star's symmetric adjacency: node 0 joined to nodes 1..n_leaves."""
    A = sparse.coo_matrix((np.ones(n_leaves), (np.zeros(n_leaves, dtype=int),
                                               np.arange(1, n_leaves + 1))),
                          shape=(n_leaves + 1,) * 2)
    return A + A.T


def chain_adjacency(n):
    """A chain's symmetric adjacency: node i joined to i - 1 and i + 1."""
    return sparse.diags([np.ones(n - 1), np.ones(n - 1)], [-1, 1], (n, n))


def refined_as_a_ward_fit(X, graph, cut_at, n, sweeps=None):
    """The labels ``ReNA(linkage="ward", max_refine_iter=sweeps)`` (by
    default ``"auto"``) gives for
    ``n`` clusters, from its merge tree's cuts (``cut_at(k)``: the labels
    at k clusters, as ``labels_at`` of an unrefined fit with the full tree
    gives them): with two sweeps or more, the cut at
    ``exchange_count(n, n_features)`` more clusters refined and merged back
    to ``n`` (the exchange, see ``fastrena.refine``), or the cut at ``n``
    itself (numbered by first appearance) unless the refined within-cluster
    sum of squares is lower than the cut's by more than 1e-12 of it (a tie
    keeps the cut; the 1e-20 of X's sum of squares absorbs numpy's
    rounding of sums that are 0); else the cut at ``n``, refined."""
    from fastrena.refine import REFINE_ITER_WARD, exchange_count, refine_labels

    sweeps = REFINE_ITER_WARD if sweeps is None else sweeps
    if sweeps >= 2 and n >= 2:
        start = cut_at(n + exchange_count(n, X.shape[1]))
        out = refine_labels(X, graph, start, sweeps, n_clusters=n)
        cut = cut_at(n)
        kept = within_sse(X, cut)
        floor = 1e-20 * float((np.asarray(X, dtype=np.float64) ** 2).sum())
        if within_sse(X, out) - kept >= -(1e-12 * kept + floor):
            return first_appearance(cut)
        return out
    return refine_labels(X, graph, cut_at(n), sweeps)


def within_sse(X, labels):
    """Within-cluster sum of squares, straight from its definition (numpy,
    float64)."""
    X = np.asarray(X, dtype=np.float64)
    total = 0.0
    for c in np.unique(labels):
        block = X[:, labels == c]
        total += float(((block - block.mean(axis=1, keepdims=True)) ** 2).sum())
    return total
