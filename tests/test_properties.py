"""Property-based tests of fastrena's public entry points (docs/design.md
sections 5 and "Errors"), with hypothesis.

Random problems go through ``fastrena.ReNA`` and
``fastrena.recursive_neighbor_agglomeration`` only:

* feature graphs: 2-D and 3-D masks (random, with holes, isolated voxels,
  several components, one voxel, 1-voxel-wide lines and planes; bool, 0/1
  integer or float arrays, or 3-D/4-D NIfTI images), explicit sparse adjacencies
  (self loops, duplicate, asymmetric and negative entries, explicitly
  stored zeros; coo/csr/csc/lil/dok matrices and coo/csr arrays, csr/csc
  with non-canonical duplicates; float, int or bool values), the 1-D chain
  (no graph given), and triangle-mesh surfaces (nilearn ``SurfaceImage``
  with one or two parts: triangulated grids and octaspheres, some faces
  dropped, a vertex mask, 1-D or (n, 1) mask data);
* data: Gaussian, piecewise constant, all equal, all zero, duplicated
  features, integer ties, rounded random walks, per-feature dynamic range;
  1 to 8 samples; float32 and float64; C or Fortran order; an overall
  magnitude 10**e, e drawn in [-30, 30] (about uniformly);
* parameters: n_clusters from 1 to n_features + 3 (int or numpy integer),
  n_iter from 1 to more than enough, threshold in [0, 1) (0, tiny,
  subnormal, near 1), scaling, linkage "nilearn" and "ward".

Checked on every example: the section-5 invariants (partition numbered in
order of first appearance, connected clusters, n_clusters_ == max(K,
components) whenever n_iter levels surely suffice, sizes_), the documented
UserWarnings word for word and no other warning, identical labels from a
fresh estimator and from the function, transform / inverse_transform
(shapes, dtypes, values relative to the data's magnitude, the projection);
and on a share of them that X * 2**k and -X give the same labels.

Reference graphs are built here (scikit-learn's
``grid_to_graph`` for masks, triangle sides for meshes, the stored nonzeros
for adjacencies) with scipy's ``csgraph``, never with fastrena's builders.

Example counts come from the hypothesis profile (tests/conftest.py): the
default "ci" profile is deterministic (a few hundred examples); the long run
is ``python -m pytest tests/test_properties.py --hypothesis-profile=long -q
-W error::RuntimeWarning``.
"""

import math
import warnings

import nibabel
import numpy as np
from hypothesis import event, given, note, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from nilearn.surface import InMemoryMesh, PolyMesh, SurfaceImage
from scipy import sparse
from scipy.sparse import csgraph

from fastrena import ReNA, recursive_neighbor_agglomeration

from helpers import assert_clusters_connected, expected_shortfall_messages, grid_mesh
from helpers import (DATA_KINDS, assert_partition, coo_adjacency, make_data, mask_adjacency,
                     octasphere)


def examples(share):
    """``share`` of the loaded profile's ``max_examples`` (the main property
    test runs the whole of it), at least 10."""
    return max(10, round(settings.default.max_examples * share))


# --------------------------------------------------------------------------
# Problems
# --------------------------------------------------------------------------
class Problem:
    """One random problem: X, the graph as given to fastrena (``graph_kw``),
    the reference adjacency ``A``, the parameters, and ``source``, code
    rebuilding ``graph_kw`` (its repr is a reproducer)."""

    def __init__(self, kind, X, graph_kw, A, n_clusters, n_iter, threshold, scaling,
                 linkage, source):
        self.kind, self.X, self.graph_kw, self.A = kind, X, graph_kw, A
        self.n_clusters, self.n_iter, self.threshold = n_clusters, n_iter, threshold
        self.scaling, self.linkage, self.source = scaling, linkage, source

    @property
    def params(self):
        return dict(n_clusters=self.n_clusters, n_iter=self.n_iter,
                    threshold=self.threshold, linkage=self.linkage, **self.graph_kw)

    def __repr__(self):
        X = self.X
        order = "F" if X.flags.f_contiguous and not X.flags.c_contiguous else "C"
        return (
            f"Problem[{self.kind}](\n  {self.source}\n"
            f"  X = np.array({X.tolist()!r}, dtype=np.{X.dtype}, order={order!r})\n"
            f"  ReNA(n_clusters={self.n_clusters!r}, n_iter={self.n_iter!r}, "
            f"threshold={self.threshold!r}, scaling={self.scaling!r}, "
            f"linkage={self.linkage!r}, **graph_kw)\n)"
        )


seeds = st.integers(0, 2**32 - 1)

MASK_KINDS = ("random", "holes", "lines", "components", "single", "checker", "full")
MASK_CONTAINERS = ("bool", "uint8", "int64", "float64", "nifti", "nifti4d")


def _positions(shape):
    return st.tuples(*[st.integers(0, s - 1) for s in shape])


@st.composite
def volume_masks(draw, ndim):
    """(graph_kw, reference adjacency, source, kind) of a 2-D or 3-D mask."""
    side = 10 if ndim == 2 else 6
    shape = tuple(draw(st.integers(1, side)) for _ in range(ndim))
    kind = draw(st.sampled_from(MASK_KINDS))
    if kind == "random":
        # cells < level: shrinks towards the full box
        level = draw(st.integers(1, 10))
        cells = draw(arrays(np.int8, shape, elements=st.integers(0, 9), fill=st.nothing()))
        mask = cells < level
    elif kind == "holes":
        mask = np.ones(shape, dtype=bool)
        for h in draw(st.lists(_positions(shape), max_size=max(1, mask.size // 2))):
            mask[h] = False
    elif kind == "lines":
        # 1-voxel-wide lines, and in 3-D 1-voxel-thin planes, maybe crossing
        mask = np.zeros(shape, dtype=bool)
        for _ in range(draw(st.integers(1, 3))):
            index = list(draw(_positions(shape)))
            axis = draw(st.integers(0, ndim - 1))
            index[axis] = slice(None)
            if ndim == 3 and draw(st.booleans()):
                index[(axis + draw(st.integers(1, 2))) % 3] = slice(None)
            mask[tuple(index)] = True
    elif kind == "components":
        # small boxes: touching, overlapping or apart
        mask = np.zeros(shape, dtype=bool)
        for _ in range(draw(st.integers(1, 4))):
            lo = draw(_positions(shape))
            hi = [draw(st.integers(a + 1, min(s, a + 3))) for a, s in zip(lo, shape)]
            mask[tuple(slice(a, b) for a, b in zip(lo, hi))] = True
    elif kind == "single":
        mask = np.zeros(shape, dtype=bool)
    elif kind == "checker":
        # every in-mask voxel isolated, plus a few extra voxels joining some
        mask = np.indices(shape).sum(axis=0) % 2 == draw(st.integers(0, 1))
        for p in draw(st.lists(_positions(shape), max_size=3)):
            mask[p] = True
    else:
        mask = np.ones(shape, dtype=bool)
    if not mask.any():
        mask[draw(_positions(shape))] = True

    # NIfTI images for volumes only (4-D: one volume)
    container = draw(st.sampled_from(MASK_CONTAINERS if ndim == 3 else MASK_CONTAINERS[:-2]))
    as_int = mask.astype(np.uint8).tolist()
    if container.startswith("nifti"):
        volume = mask[..., None] if container == "nifti4d" else mask
        given_mask = nibabel.Nifti1Image(volume.astype(np.uint8), np.eye(4))
        source = (f"graph_kw = dict(mask_img=nibabel.Nifti1Image("
                  f"np.array({as_int!r}, dtype=np.uint8)"
                  f"{'[..., None]' if container == 'nifti4d' else ''}, np.eye(4)))")
    else:
        given_mask = mask.astype(container)
        source = f"graph_kw = dict(mask_img=np.array({as_int!r}).astype({container!r}))"
    return {"mask_img": given_mask}, mask_adjacency(mask), source, f"mask{ndim}d-{kind}"


# number of nodes of chains and sparse graphs: hypothesis favours small
# integers; the second branch keeps mid-sized graphs frequent
SIZES = st.one_of(st.integers(1, 120), st.integers(16, 120))

SPARSE_FORMATS = ("coo", "csr", "csc", "lil", "dok", "coo_array", "csr_array",
                  "csr_raw", "csc_raw")


def _raw_compressed(r, c, data, n, fmt):
    """A csr/csc matrix built from its arrays as they are: duplicate entries,
    explicit zeros and unsorted indices stay stored."""
    major, minor = (r, c) if fmt == "csr_raw" else (c, r)
    order = np.argsort(major, kind="stable")
    indptr = np.concatenate([[0], np.cumsum(np.bincount(major, minlength=n))])
    cls = sparse.csr_matrix if fmt == "csr_raw" else sparse.csc_matrix
    M = cls((data[order], minor[order], indptr), shape=(n, n))
    assert M.nnz == len(data)
    return M


def random_adjacency(rng, n, mean_degree, fmt, values):
    """A random sparse graph with self loops, duplicate, asymmetric and
    negative entries and explicit zeros; returns (matrix, reference A).

    An entry's sign depends on its position only, so that duplicates never
    cancel when a format sums them."""
    m = rng.poisson(mean_degree * n / 2)
    rows, cols = rng.randint(0, n, m), rng.randint(0, n, m)
    dup = rng.randint(0, m, rng.randint(0, m // 2 + 1)) if m else np.zeros(0, int)
    loops = rng.randint(0, n, rng.randint(0, n // 4 + 2))
    zr, zc = rng.randint(0, n, 3), rng.randint(0, n, 3)
    r = np.concatenate([rows, rows[dup], loops, zr]).astype(np.int64)
    c = np.concatenate([cols, cols[dup], loops, zc]).astype(np.int64)
    sign = np.where((r * 31 + c * 17) % 3 == 0, -1.0, 1.0)
    data = sign * rng.uniform(0.5, 2.0, r.shape[0])
    data[-3:] = 0.0  # explicitly stored zeros
    if values == "int64":
        data = (np.sign(data) * rng.randint(1, 4, r.shape[0])).astype(np.int64)
    elif values == "bool":
        data = data != 0
    else:
        data = data.astype(values)
    reference = coo_adjacency(r, c, data, n)
    if fmt in ("csr_raw", "csc_raw"):
        return _raw_compressed(r, c, data, n, fmt), reference
    coo = sparse.coo_matrix((data, (r, c)), shape=(n, n))
    matrix = {
        "coo": lambda: coo, "csr": coo.tocsr, "csc": coo.tocsc, "lil": coo.tolil,
        "dok": coo.todok, "coo_array": lambda: sparse.coo_array(coo),
        "csr_array": lambda: sparse.csr_array(coo),
    }[fmt]()
    return matrix, reference


@st.composite
def sparse_graphs(draw):
    n = draw(SIZES)
    mean_degree = draw(st.sampled_from([0.0, 0.3, 1.0, 2.0, 3.0, 6.0]))
    fmt = draw(st.sampled_from(SPARSE_FORMATS))
    values = draw(st.sampled_from(("float64", "float32", "int64", "bool")))
    seed = draw(seeds)
    C, A = random_adjacency(np.random.RandomState(seed), n, mean_degree, fmt, values)
    source = (f"graph_kw = dict(connectivity=random_adjacency(np.random.RandomState({seed}), "
              f"{n}, {mean_degree}, {fmt!r}, {values!r})[0])")
    return {"connectivity": C}, A, source, f"sparse-{fmt}-{values}"


@st.composite
def chains(draw):
    n = draw(SIZES)
    A = coo_adjacency(np.arange(n - 1), np.arange(1, n), np.ones(n - 1), n)
    return {}, A, f"graph_kw = {{}}  # chain of {n}", "chain"


def mesh_part_adjacency(faces, mask):
    """Adjacency of the in-mask vertices (in vertex order): triangle sides
    with both ends in the mask."""
    a, b = faces.ravel(), faces[:, [1, 2, 0]].ravel()
    keep = mask[a] & mask[b]
    new_id = np.cumsum(mask) - 1
    n = int(mask.sum())
    return coo_adjacency(new_id[a[keep]], new_id[b[keep]], np.ones(int(keep.sum())), n)


@st.composite
def surfaces(draw):
    """A nilearn SurfaceImage mask on a mesh of one or two parts."""
    names = draw(st.sampled_from((("left",), ("right",), ("left", "right"))))
    two_d = draw(st.booleans())
    mask_dtype = draw(st.sampled_from((bool, np.float64)))
    parts, sources = {}, []
    for name in names:
        if draw(st.booleans()):
            shape = (draw(st.integers(2, 7)), draw(st.integers(2, 7)))
            coords, faces = grid_mesh(*shape)
            sources.append(f"{name}: grid_mesh{shape}")
        else:
            level = draw(st.integers(0, 2))
            coords, faces = octasphere(level)
            sources.append(f"{name}: octasphere({level})")
        if draw(st.booleans()):  # drop faces: some vertices end up in none
            keep = draw(arrays(np.bool_, faces.shape[0], elements=st.booleans(),
                               fill=st.nothing()))
            keep[0] = True  # nilearn needs a face
            faces = faces[keep]
            sources.append(f"faces kept {np.flatnonzero(keep).tolist()}")
        level = draw(st.integers(1, 10))
        cells = draw(arrays(np.int8, coords.shape[0], elements=st.integers(0, 9),
                            fill=st.nothing()))
        parts[name] = (coords, faces, cells < level)
    if not any(m.any() for _, _, m in parts.values()):
        name = names[0]
        parts[name][2][draw(st.integers(0, parts[name][0].shape[0] - 1))] = True
    sources += [f"{name} mask {np.flatnonzero(m).tolist()}" for name, (_, _, m) in parts.items()]
    mesh = PolyMesh(**{name: InMemoryMesh(co, fa) for name, (co, fa, _) in parts.items()})
    data = {name: (m[:, None] if two_d else m).astype(mask_dtype)
            for name, (_, _, m) in parts.items()}
    img = SurfaceImage(mesh, data)
    # nodes: in-mask vertices of the left part, then of the right one (spec)
    A = sparse.block_diag([mesh_part_adjacency(parts[name][1], parts[name][2])
                           for name in ("left", "right") if name in parts], format="csr")
    source = (f"surface, mask data {'(n, 1)' if two_d else '(n,)'} "
              f"{np.dtype(mask_dtype).name}; " + "; ".join(sources))
    return {"mask_img": img}, A, source, f"surface-{len(names)}part"


DATA = DATA_KINDS + ("walk", "dynamic")


def make_X(rng, n_samples, n_features, kind, dtype, magnitude, order):
    if kind == "walk":  # smooth along the features, exact ties from rounding
        X = np.round(np.cumsum(rng.randn(n_samples, n_features), axis=1), 1)
    elif kind == "dynamic":  # features of very different scales
        X = rng.randn(n_samples, n_features) * 10.0 ** rng.uniform(-10, 10, n_features)
    else:
        X = make_data(rng, n_samples, n_features, kind, np.float64)
    X = np.asarray(X * magnitude, dtype=dtype)
    return np.asfortranarray(X) if order == "F" else np.ascontiguousarray(X)


GRAPHS = {
    "mask2d": lambda: volume_masks(2),
    "mask3d": lambda: volume_masks(3),
    "sparse": sparse_graphs,
    "chain": chains,
    "surface": surfaces,
}
THRESHOLDS = st.one_of(
    st.sampled_from([0.0, 1e-7, 5e-324, 0.5, 0.999999, 1 - 1e-12, float(np.nextafter(1.0, 0.0))]),
    st.floats(0.0, 1.0, exclude_max=True),
)


@st.composite
def data_arrays(draw, n_features):
    """(X, description) for a graph of ``n_features`` nodes."""
    kind = draw(st.sampled_from(DATA))
    dtype = draw(st.sampled_from((np.float64, np.float32)))
    n_samples = draw(st.integers(1, 8))
    # log-uniform overall magnitude (the dynamic kind spans 1e+-10 itself)
    limit = 20.0 if kind == "dynamic" else 30.0
    exponent = draw(st.floats(-limit, limit))
    order = draw(st.sampled_from("CF"))
    seed = draw(seeds)
    X = make_X(np.random.RandomState(seed), n_samples, n_features, kind, dtype,
               10.0**exponent, order)
    event(f"data: {kind}")
    event(f"dtype: {np.dtype(dtype).name}")
    return X, f"{kind}, 1e{exponent:+.1f}"


@st.composite
def problems(draw, graph_kinds=tuple(GRAPHS)):
    graph_kind = draw(st.sampled_from(graph_kinds))
    graph_kw, A, source, kind = draw(GRAPHS[graph_kind]())
    N = A.shape[0]
    X, data_description = draw(data_arrays(N))
    K = draw(st.one_of(st.integers(1, min(N, 6)), st.integers(1, N + 3)))
    K = draw(st.sampled_from((int, np.int64, np.int32)))(K)
    # enough levels in any case: each level at least halves every component
    enough = max(1, math.ceil(math.log2(max(1, largest_component(A)))))
    n_iter = draw(st.one_of(st.just(1), st.integers(1, enough + 1),
                            st.integers(enough, enough + 3), st.just(10)))
    threshold = draw(THRESHOLDS)
    scaling = draw(st.booleans())
    linkage = draw(st.sampled_from(("nilearn", "ward")))
    event(f"graph: {graph_kind}")
    event(f"linkage: {linkage}")
    event("n_clusters > n_features" if K > N else "n_clusters <= n_features")
    return Problem(f"{kind}, {data_description}", X, graph_kw, A, K, n_iter, threshold,
                   scaling, linkage, source)


# --------------------------------------------------------------------------
# Reference computations (independent of fastrena)
# --------------------------------------------------------------------------
def component_sizes(A):
    _, comp = csgraph.connected_components(A, directed=False)
    return np.bincount(comp)


def largest_component(A):
    return int(component_sizes(A).max()) if A.shape[0] else 0


def halving_reaches(A, k, n_iter):
    """Whether ``n_iter`` levels surely reach max(k, components): a level at
    least halves every component with an edge (spec section 5; for a
    connected graph this is the spec's ``ceil(log2(N/K)) + 1`` and better)."""
    sizes = component_sizes(A)
    left = -(-sizes // 2 ** min(n_iter, 62))
    return int(left.sum()) <= max(k, sizes.shape[0])


def expected_messages(problem, n_clusters_):
    N = problem.X.shape[1]
    K = int(problem.n_clusters)
    k = min(K, N)
    messages = []
    if K > N:
        messages.append(f"n_clusters={K} is larger than the number of features ({N}); "
                        f"using n_clusters={N}")
    sizes = component_sizes(problem.A)
    return messages + expected_shortfall_messages(
        int(sizes.max()), sizes.shape[0], k, int(problem.n_iter), n_clusters_)


def tolerance(expected, scale, dtype, units):
    """``units`` ulps of ``dtype`` relative to the magnitude of the values
    (``scale``, same shape as ``expected``), plus a few subnormals."""
    finfo = np.finfo(dtype)
    return units * finfo.eps * (np.abs(expected) + scale) + 4 * finfo.smallest_subnormal


def assert_close(actual, expected, scale, units, dtype=None):
    """|actual - expected| within ``units`` ulps of ``dtype`` (by default
    actual's) relative to ``scale``."""
    actual = np.asarray(actual)
    tol = tolerance(expected, scale, dtype or actual.dtype, units)
    err = np.abs(actual.astype(np.float64) - expected)
    assert np.all(err <= tol), (
        f"max error {err.max()!r} over tolerance {tol[np.unravel_index(np.argmax(err - tol), err.shape)]!r}"
        f"\nactual={actual!r}\nexpected={expected!r}")


def per_cluster(X64, labels, n):
    """Per-cluster sums of X64's columns: (n_samples, n)."""
    out = np.zeros((X64.shape[0], n))
    np.add.at(out.T, labels, X64.T)
    return out


def fit_recording(X, params, scaling=False):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        est = ReNA(scaling=scaling, **params).fit(X)
    return est, [(w.category, str(w.message)) for w in rec]


def function_warnings(X, params):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        out = recursive_neighbor_agglomeration(X, **params)
    return out, [(w.category, str(w.message)) for w in rec]


# --------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------
def check_fit(problem):
    """Section-5 invariants, the warnings, determinism, the function."""
    X, A, params = problem.X, problem.A, problem.params
    N = X.shape[1]
    K = problem.n_clusters
    k = min(int(K), N)
    c = int(component_sizes(A).shape[0])
    target = max(k, c)

    est, records = fit_recording(X, params, problem.scaling)
    labels, n = est.labels_, est.n_clusters_
    note(f"labels_={labels.tolist()}, n_clusters_={n}, components={c}, warnings={records}")

    # a partition numbered in order of first appearance, connected clusters
    assert_partition(labels, n, N)
    assert_clusters_connected(labels, A, n)
    # the number of clusters
    if halving_reaches(A, k, int(problem.n_iter)):
        assert n == target, (n, target)
    else:
        event("n_iter below the halving bound")
        assert n >= target, (n, target)
    event("target reached" if n == target else "target not reached (n_iter too small)")
    if c > k:
        event("more components than n_clusters")
    np.testing.assert_array_equal(est.sizes_, np.bincount(labels, minlength=n))
    assert est.sizes_.shape == (n,)
    assert est.n_features_in_ == N
    # the parameter is left alone, even when larger than n_features
    assert est.n_clusters is K

    # the documented UserWarnings, with their numbers, and nothing else
    assert all(cat is UserWarning for cat, _ in records), records
    assert [m for _, m in records] == expected_messages(problem, n)

    # same labels and warnings from a fresh estimator, and from the function
    est2, records2 = fit_recording(X, params, problem.scaling)
    np.testing.assert_array_equal(est2.labels_, labels)
    assert est2.n_clusters_ == n and records2 == records
    (n_fun, labels_fun), records_fun = function_warnings(X, params)
    assert n_fun == n and isinstance(n_fun, int)
    np.testing.assert_array_equal(labels_fun, labels)
    assert records_fun == records
    return est


def check_transforms(est, X):
    """transform, inverse_transform and their projection, on X."""
    labels, n, sizes = est.labels_, est.n_clusters_, est.sizes_
    S, N = X.shape
    X64 = X.astype(np.float64)
    root = np.sqrt(sizes.astype(np.float64))
    factor = root if est.scaling else np.ones(n)
    dtype = X.dtype
    # summing s values in float64 costs up to s float64 ulps, rounding to
    # float32 a float32 ulp
    units = 4 if dtype == np.float32 else 8 + int(sizes.max())

    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        Xt = est.transform(X)
        P = est.inverse_transform(Xt)
        Xt2 = est.transform(P)
        P2 = est.inverse_transform(Xt2)
        P_row = est.inverse_transform(Xt[0])
    assert rec == [], [(w.category, str(w.message)) for w in rec]

    # transform: per-cluster means (times sqrt(size) with scaling)
    assert Xt.shape == (S, n) and Xt.dtype == dtype
    expected = per_cluster(X64, labels, n) / sizes * factor
    scale = per_cluster(np.abs(X64), labels, n) / sizes * factor
    assert_close(Xt, expected, scale, units)

    # inverse_transform: each feature gets its cluster's value
    assert P.shape == (S, N) and P.dtype == dtype
    if est.scaling:
        back = Xt.astype(np.float64)[:, labels] / root[labels]
        assert_close(P, back, np.abs(back), 4)
    else:
        np.testing.assert_array_equal(P, Xt[:, labels])
    assert P_row.shape == (N,) and P_row.dtype == dtype
    np.testing.assert_array_equal(P_row, P[0])

    # a projection: transform gives the same reduced values back, and
    # inverse_transform(transform(P)) is P again
    assert Xt2.dtype == dtype and P2.dtype == dtype
    Xt64 = Xt.astype(np.float64)
    assert_close(Xt2, Xt64, np.abs(Xt64), 8 + (0 if dtype == np.float32 else int(sizes.max())))
    P64 = P.astype(np.float64)
    assert_close(P2, P64, np.abs(P64), 16 + (0 if dtype == np.float32 else int(sizes.max())))
    if est.scaling:
        # the l2 norm of a piecewise-constant signal is preserved
        norm_red = np.linalg.norm(Xt64, axis=1)
        assert_close(norm_red, np.linalg.norm(P64, axis=1), norm_red, 8, dtype)


# --------------------------------------------------------------------------
# The tests
# --------------------------------------------------------------------------
@given(problems(), st.data())
def test_invariants(problem, data):
    """Main property test (the profile's max_examples)."""
    est = check_fit(problem)
    check_transforms(est, problem.X)
    # transform works on other data of the same width, any float dtype
    check_transforms(est, data.draw(data_arrays(problem.X.shape[1]), label="X_other")[0])


def _safe_exponents(X, k):
    """Clip the power of two ``k`` so that X * 2**k, and the squared
    distances in float64, stay far from subnormals and overflow; whether X
    itself is (float32 data next to the subnormals is not)."""
    # float64 beyond +-2**500 runs through the power-of-two rescaling
    # (fastrena.agglomeration.WEIGHT_RANGE): exact as well.
    lo_limit, hi_limit = (-112, 120) if X.dtype == np.float32 else (-1000, 1000)
    lo, hi = lo_limit, hi_limit
    nonzero = np.abs(X[X != 0]).astype(np.float64)
    if nonzero.size:
        lo = math.ceil(lo_limit - math.log2(nonzero.min()))
        hi = math.floor(hi_limit - math.log2(nonzero.max()))
    # 2**k itself must be a normal number of X's dtype as well
    return int(np.clip(k, max(lo, lo_limit), min(hi, hi_limit))), lo <= 0 <= hi


@settings(max_examples=examples(0.25))
@given(problems(), st.integers(-1100, 1100))
def test_power_of_two_scaling_and_sign_flip(problem, k):
    """Labels depend on relative distances only: X * 2**k and -X (exact in
    floating point) give the same labels, and transform scales exactly."""
    X = problem.X
    k, safe = _safe_exponents(X, k)
    if not safe:  # float32 values next to the subnormals: nothing exact to test
        event("skipped: float32 near subnormal")
        return
    est, records = fit_recording(X, problem.params, problem.scaling)
    Xt = est.transform(X)
    for Y, how in ((X * X.dtype.type(2.0**k), f"X * 2**{k}"), (-X, "-X")):
        note(how)
        assert Y.dtype == X.dtype
        other, other_records = fit_recording(Y, problem.params, problem.scaling)
        np.testing.assert_array_equal(other.labels_, est.labels_)
        assert other.n_clusters_ == est.n_clusters_
        assert other_records == records
        expected = Xt * X.dtype.type(2.0**k) if how != "-X" else -Xt
        np.testing.assert_array_equal(other.transform(Y), expected)
