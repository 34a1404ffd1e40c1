"""fastrena.ReNA on surfaces (nilearn SurfaceImage / SurfaceMasker masks).

Checked against nilearn.regions.ReNA on a hand-made two-part sphere mesh
and on nilearn's bundled fsaverage5 mesh (docs/design.md sections 1, 5):
equal partitions without pruning, ARI >= 0.9 and approximation error within
1% with pruning, clusters connected in the mesh graph and never spanning two
parts, fitted SurfaceMasker accepted, partial masks.
"""

import warnings

import numpy as np
import pytest
from nilearn import datasets
from nilearn.maskers import SurfaceMasker
from nilearn.regions import ReNA as NilearnReNA
from nilearn.surface import InMemoryMesh, PolyMesh, SurfaceImage
from scipy import sparse
from scipy.sparse import csgraph

from fastrena import ReNA

from helpers import (assert_close_to_nilearn, assert_clusters_connected, assert_same_partition,
                     expected_shortfall_messages, first_appearance, fit_recording,
                     grid_mesh, largest_component, octasphere)

PARTS = ("left", "right")


# --------------------------------------------------------------------------
# helpers (independent of fastrena's own code)
# --------------------------------------------------------------------------


def mesh_adjacency(faces, n_vertices):
    """Symmetric vertex adjacency of a triangle mesh (triangle sides)."""
    faces = np.asarray(faces)
    a = faces.ravel()
    b = np.roll(faces, -1, axis=1).ravel()
    adj = sparse.coo_matrix((np.ones(a.size), (a, b)), shape=(n_vertices, n_vertices))
    adj = (adj + adj.T).tocsr()
    adj.data[:] = 1.0
    return adj


def masked_adjacency(mesh, mask_parts):
    """Block-diagonal adjacency of the in-mask vertices, parts in order."""
    blocks = []
    for part in PARTS:
        m = mask_parts[part]
        adj = mesh_adjacency(mesh.parts[part].faces, mesh.parts[part].n_vertices)
        blocks.append(adj[m][:, m])
    return sparse.block_diag(blocks, format="csr")


def smooth_signals(faces, n_vertices, n_samples, rng, steps=5):
    """Random noise smoothed by ``steps`` neighbour averages over the mesh;
    shape (n_samples, n_vertices)."""
    adj = mesh_adjacency(faces, n_vertices) + sparse.eye(n_vertices)
    walk = sparse.diags(1.0 / np.asarray(adj.sum(axis=1)).ravel()) @ adj
    Y = rng.standard_normal((n_vertices, n_samples))
    for _ in range(steps):
        Y = walk @ Y
    return Y.T


def surface_mask(mesh, mask_parts, two_d=False):
    data = {p: (mask_parts[p][:, None] if two_d else mask_parts[p]) for p in PARTS}
    return SurfaceImage(mesh, data)


def isolated_vertices(mesh, mask_parts):
    out = {}
    for part in PARTS:
        m = mask_parts[part]
        adj = mesh_adjacency(mesh.parts[part].faces, mesh.parts[part].n_vertices)
        degree = np.asarray(adj[:, m].sum(axis=1)).ravel()
        out[part] = m & (degree == 0)
    return out


def assert_valid_surface_clustering(labels, adjacency, n_left):
    """Clusters are numbered 0..n-1, connected in the mesh graph, and never
    contain vertices of both parts."""
    n_clusters = int(labels.max()) + 1
    np.testing.assert_array_equal(np.unique(labels), np.arange(n_clusters))
    assert not set(labels[:n_left].tolist()) & set(labels[n_left:].tolist())
    assert_clusters_connected(labels, adjacency, n_clusters)


def fit_user_warnings(estimator, X):
    """Fit; return the UserWarning messages emitted (no other warning may be)."""
    messages, others = fit_recording(estimator, X)
    assert others == [], others
    return messages


class Case:
    """A mesh, a mask per part and smooth data in the masked column order."""

    def __init__(self, mesh, mask_parts, signals):
        self.mesh = mesh
        self.mask_parts = mask_parts
        self.mask_img = surface_mask(mesh, mask_parts)
        self.signals = signals  # full per-part signals (n_samples, n_vertices)
        X = np.hstack([signals[p][:, mask_parts[p]] for p in PARTS])
        self.X = X / X.std()
        self.n_left = int(mask_parts["left"].sum())
        self.adjacency = masked_adjacency(mesh, mask_parts)
        self.n_components = csgraph.connected_components(self.adjacency, directed=False)[0]


# --------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sphere_mesh():
    v3, f3 = octasphere(3)
    v4, f4 = octasphere(4)
    # parts of different sizes, so that the right part's node ids are offset
    mesh = PolyMesh(left=InMemoryMesh(v3, f3), right=InMemoryMesh(v4 + [3.0, 0, 0], f4))
    assert mesh.parts["left"].n_vertices == 258
    assert mesh.parts["right"].n_vertices == 1026
    return mesh


def _sphere_signals(mesh, seed, n_samples=10):
    rng = np.random.default_rng(seed)
    return {p: smooth_signals(mesh.parts[p].faces, mesh.parts[p].n_vertices, n_samples, rng)
            for p in PARTS}


def _full_mask_case(mesh, seed):
    """Every vertex of both parts in the mask: two components."""
    masks = {p: np.ones(mesh.parts[p].n_vertices, dtype=bool) for p in PARTS}
    case = Case(mesh, masks, _sphere_signals(mesh, seed))
    assert case.n_components == 2
    return case


@pytest.fixture(scope="module")
def sphere_full(sphere_mesh):
    return _full_mask_case(sphere_mesh, 0)


def _sphere_partial_masks(mesh):
    left = np.asarray(mesh.parts["left"].coordinates)
    right = np.asarray(mesh.parts["right"].coordinates) - [3.0, 0, 0]
    # left: the sphere without its bottom cap (one component);
    # right: two caps, the band |x| <= 0.2 removed (two components)
    return {"left": left[:, 2] > -0.5, "right": np.abs(right[:, 0]) > 0.2}


@pytest.fixture(scope="module")
def sphere_partial(sphere_mesh):
    masks = _sphere_partial_masks(sphere_mesh)
    assert not any(v.any() for v in isolated_vertices(sphere_mesh, masks).values())
    case = Case(sphere_mesh, masks, _sphere_signals(sphere_mesh, 1, n_samples=12))
    assert case.n_components == 3
    assert 0 < case.X.shape[1] < 258 + 1026
    return case


@pytest.fixture(scope="module")
def fsaverage_mesh():
    mesh = datasets.load_fsaverage("fsaverage5")["pial"]
    assert {p: mesh.parts[p].n_vertices for p in PARTS} == {"left": 10242, "right": 10242}
    return mesh


@pytest.fixture(scope="module")
def fsaverage_full(fsaverage_mesh):
    return _full_mask_case(fsaverage_mesh, 2)


@pytest.fixture(scope="module")
def fsaverage_partial(fsaverage_mesh):
    """Vertices of positive sulcal depth, without isolated ones."""
    sulc = datasets.load_fsaverage_data("fsaverage5", data_type="sulcal")
    masks = {p: np.asarray(sulc.data.parts[p]) > 0 for p in PARTS}
    iso = isolated_vertices(fsaverage_mesh, masks)
    assert sum(int(v.sum()) for v in iso.values()) == 1
    masks = {p: masks[p] & ~iso[p] for p in PARTS}
    case = Case(fsaverage_mesh, masks, _sphere_signals(fsaverage_mesh, 3))
    assert case.n_components == 36
    assert case.X.shape[1] == 4940 + 5013
    return case


# --------------------------------------------------------------------------
# no pruning: equal partitions
# --------------------------------------------------------------------------
def fit_nilearn(mask_img, X, nilearn_divides_by_zero=False, **params):
    """nilearn's ReNA; where a small mask component collapses to a node
    without edges, nilearn divides by zero (1 / max of an empty row): that
    RuntimeWarning of nilearn's is silenced, only for the nilearn call."""
    estimator = NilearnReNA(mask_img, **params)
    if not nilearn_divides_by_zero:
        return estimator.fit(X)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "divide by zero encountered", RuntimeWarning)
        return estimator.fit(X)


def _no_pruning(case, n_iter, mask_img=None, nilearn_divides_by_zero=False):
    mask_img = case.mask_img if mask_img is None else mask_img
    ref = fit_nilearn(mask_img, case.X, nilearn_divides_by_zero, n_clusters=1, n_iter=n_iter)
    fast = ReNA(mask_img, n_clusters=1, n_iter=n_iter)
    messages = fit_user_warnings(fast, case.X)
    assert fast.n_clusters_ == ref.n_clusters_
    assert_same_partition(fast.labels_, ref.labels_)
    assert messages == expected_shortfall_messages(
        largest_component(case.adjacency), case.n_components, 1, n_iter, fast.n_clusters_)
    assert_valid_surface_clustering(fast.labels_, case.adjacency, case.n_left)
    return fast


@pytest.mark.parametrize("n_iter", [1, 2])
@pytest.mark.parametrize("which", ["sphere_full", "sphere_partial"])
def test_sphere_no_pruning_equals_nilearn(request, which, n_iter):
    case = request.getfixturevalue(which)
    fast = _no_pruning(case, n_iter)
    assert fast.n_clusters_ > 10


@pytest.mark.parametrize("n_iter", [1, 2])
def test_fsaverage_no_pruning_equals_nilearn(fsaverage_full, n_iter):
    fast = _no_pruning(fsaverage_full, n_iter)
    assert fast.n_clusters_ == {1: 5603, 2: 1573}[n_iter]


@pytest.mark.parametrize("n_iter", [1, 2])
def test_fsaverage_partial_mask_no_pruning_equals_nilearn(fsaverage_partial, n_iter):
    fast = _no_pruning(fsaverage_partial, n_iter, nilearn_divides_by_zero=n_iter > 1)
    assert fast.n_clusters_ > 36


def test_two_dimensional_mask_data_is_the_same_mask(sphere_partial):
    mask_2d = surface_mask(sphere_partial.mesh, sphere_partial.mask_parts, two_d=True)
    assert mask_2d.shape == (sphere_partial.mask_img.shape[0], 1)
    fast = _no_pruning(sphere_partial, 2, mask_img=mask_2d)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        from_1d = ReNA(sphere_partial.mask_img, n_clusters=1, n_iter=2).fit(sphere_partial.X)
    np.testing.assert_array_equal(fast.labels_, from_1d.labels_)


# --------------------------------------------------------------------------
# with pruning
# --------------------------------------------------------------------------
@pytest.mark.parametrize("k", [10, 100, 1000])
def test_fsaverage_pruning_close_to_nilearn(fsaverage_full, k):
    case = fsaverage_full
    ref = NilearnReNA(case.mask_img, n_clusters=k).fit(case.X)
    fast = ReNA(case.mask_img, n_clusters=k)
    assert fit_user_warnings(fast, case.X) == []
    assert ref.n_clusters_ == k
    assert fast.n_clusters_ == k
    assert_close_to_nilearn(fast, ref, case.X)
    assert_valid_surface_clustering(fast.labels_, case.adjacency, case.n_left)
    np.testing.assert_array_equal(fast.sizes_, np.bincount(fast.labels_))


@pytest.mark.parametrize("k", [2, 3, 4, 25, 400])
def test_sphere_partial_reaches_max_of_k_and_components(sphere_partial, k):
    case = sphere_partial
    fast = ReNA(case.mask_img, n_clusters=k, n_iter=20)
    messages = fit_user_warnings(fast, case.X)
    assert fast.n_clusters_ == max(k, 3)
    assert messages == expected_shortfall_messages(
        largest_component(case.adjacency), 3, k, 20, fast.n_clusters_)
    if k < 3:
        assert len(messages) == 1
    assert_valid_surface_clustering(fast.labels_, case.adjacency, case.n_left)


@pytest.mark.parametrize("k", [10, 100, 1000])
def test_fsaverage_partial_mask_with_pruning(fsaverage_partial, k):
    """36 components: K=10 gives 36 clusters (with a warning), larger K
    exactly K; close to nilearn either way."""
    case = fsaverage_partial
    fast = ReNA(case.mask_img, n_clusters=k)
    messages = fit_user_warnings(fast, case.X)
    assert fast.n_clusters_ == max(k, 36)
    assert messages == expected_shortfall_messages(
        largest_component(case.adjacency), 36, k, 10, fast.n_clusters_)
    assert_valid_surface_clustering(fast.labels_, case.adjacency, case.n_left)
    ref = fit_nilearn(case.mask_img, case.X, True, n_clusters=k)
    assert ref.n_clusters_ == fast.n_clusters_
    assert_close_to_nilearn(fast, ref, case.X)


@pytest.mark.parametrize("k", [10, 100, 400])
def test_sphere_partial_mask_pruning_close_to_nilearn(sphere_partial, k):
    case = sphere_partial
    ref = fit_nilearn(case.mask_img, case.X, n_clusters=k)
    fast = ReNA(case.mask_img, n_clusters=k)
    assert fit_user_warnings(fast, case.X) == []
    assert ref.n_clusters_ == fast.n_clusters_ == k
    assert_close_to_nilearn(fast, ref, case.X)
    assert_valid_surface_clustering(fast.labels_, case.adjacency, case.n_left)


def test_transform_on_surface_matches_numpy(fsaverage_full):
    case = fsaverage_full
    fast = ReNA(case.mask_img, n_clusters=300, scaling=True).fit(case.X)
    labels = fast.labels_
    sizes = np.bincount(labels, minlength=300).astype(float)
    means = np.stack([np.bincount(labels, weights=r, minlength=300) for r in case.X]) / sizes
    np.testing.assert_allclose(fast.transform(case.X), means * np.sqrt(sizes), rtol=1e-12)
    np.testing.assert_allclose(fast.inverse_transform(fast.transform(case.X)),
                               means[:, labels], rtol=1e-12)


# --------------------------------------------------------------------------
# maskers, partial masks, isolated vertices, errors
# --------------------------------------------------------------------------
def test_fitted_surface_masker_is_accepted(sphere_partial):
    case = sphere_partial
    masker = SurfaceMasker(case.mask_img).fit()
    from_img = ReNA(case.mask_img, n_clusters=25).fit(case.X)
    from_masker = ReNA(masker, n_clusters=25).fit(case.X)
    np.testing.assert_array_equal(from_masker.labels_, from_img.labels_)
    assert from_masker.mask_img_ is masker.mask_img_
    assert from_masker.n_clusters_ == 25
    # nilearn accepts the masker too, and agrees without pruning
    fast = _no_pruning(case, 2, mask_img=masker)
    assert fast.mask_img_ is masker.mask_img_


def test_a_surface_image_given_as_X_names_the_surface_masker(sphere_partial):
    with pytest.raises(TypeError, match=r"^X must be an array of shape \(n_samples, "
                                        r"n_features\).*; got a SurfaceImage\. Read it into one "
                                        r"with nilearn's SurfaceMasker\(mask_img\)"
                                        r"\.fit_transform\(img\) or fastrena\.io"
                                        r"\.images_to_array\(img, mask_img\)$"):
        ReNA(sphere_partial.mask_img, n_clusters=5).fit(sphere_partial.mask_img)


def test_unfitted_surface_masker_with_a_mask_is_fitted_on_the_spot(sphere_partial):
    from sklearn.base import clone

    fitted = SurfaceMasker(sphere_partial.mask_img).fit()
    reference = ReNA(fitted, n_clusters=5).fit(sphere_partial.X)
    # sklearn.clone (GridSearchCV, hidimstat) leaves an unfitted masker.
    cloned = clone(ReNA(fitted, n_clusters=5)).fit(sphere_partial.X)
    np.testing.assert_array_equal(cloned.labels_, reference.labels_)
    with pytest.raises(ValueError) as excinfo:
        ReNA(SurfaceMasker(), n_clusters=5).fit(sphere_partial.X)
    assert str(excinfo.value) == (
        "mask_img is a SurfaceMasker that has not been fitted and has no mask_img of its "
        "own; fit it first (its mask_img_ is used), or give it a mask_img. A masker fitted "
        "on data (its mask computed from the images) is unfitted again in a copy made by "
        "scikit-learn's clone (as cross_val_score, GridSearchCV and hidimstat make): pass "
        "its mask, mask_img=masker.mask_img_, to ReNA instead")
    # A masker fitted on data loses its mask in a clone (the error above);
    # its mask image, as the message says, does not.
    on_data = SurfaceMasker().fit(sphere_partial.mask_img)
    n_in_mask = sum(int(np.asarray(part).astype(bool).sum())
                    for part in on_data.mask_img_.data.parts.values())
    X = np.random.default_rng(0).standard_normal((6, n_in_mask))
    with pytest.raises(ValueError, match="pass its mask, mask_img=masker.mask_img_"):
        clone(ReNA(on_data, n_clusters=5)).fit(X)
    np.testing.assert_array_equal(clone(ReNA(on_data.mask_img_, n_clusters=5)).fit(X).labels_,
                                  ReNA(on_data, n_clusters=5).fit(X).labels_)


@pytest.mark.filterwarnings("ignore:boolean values for 'standardize':FutureWarning")
def test_masker_column_order_matches_graph(sphere_mesh):
    """Data extracted by a SurfaceMasker from a SurfaceImage: four flat
    regions (two per part) are recovered exactly in one level, which needs
    the graph's node order to be the masker's column order."""
    masks = _sphere_partial_masks(sphere_mesh)
    masks["right"] = np.ones(1026, dtype=bool)
    mask_img = surface_mask(sphere_mesh, masks)
    regions = {}
    data = {}
    for offset, part in zip((0, 2), PARTS):
        z = np.asarray(sphere_mesh.parts[part].coordinates)[:, 2]
        regions[part] = offset + (z > 0.1).astype(int)
        values = np.array([1.0, 4.0, -2.0, 7.5])[regions[part]]
        data[part] = np.stack([values, -values, 2 * values], axis=1)
    img = SurfaceImage(sphere_mesh, data)
    masker = SurfaceMasker(mask_img).fit()
    X = masker.transform(img)
    assert X.shape == (3, int(masks["left"].sum()) + 1026)
    fast = ReNA(masker, n_clusters=4, n_iter=1).fit(X)
    expected = np.concatenate([regions[p][masks[p]] for p in PARTS])
    assert fast.n_clusters_ == 4
    np.testing.assert_array_equal(fast.labels_, first_appearance(expected))


def test_isolated_vertex_is_its_own_cluster(sphere_mesh):
    """A kept vertex whose neighbours are all masked out: its own cluster,
    and the rest is clustered as without it (nilearn would shift ids)."""
    masks = _sphere_partial_masks(sphere_mesh)
    coords = np.asarray(sphere_mesh.parts["left"].coordinates)
    bottom = int(np.argmin(coords[:, 2]))  # a vertex of the removed cap
    assert not masks["left"][bottom]
    with_iso = {p: m.copy() for p, m in masks.items()}
    with_iso["left"][bottom] = True
    assert isolated_vertices(sphere_mesh, with_iso)["left"].sum() == 1
    signals = _sphere_signals(sphere_mesh, 5)
    full = Case(sphere_mesh, with_iso, signals)
    rest = Case(sphere_mesh, masks, signals)
    column = int(with_iso["left"][:bottom].sum())
    assert 0 < column < full.n_left - 1
    keep = np.ones(full.X.shape[1], dtype=bool)
    keep[column] = False
    X_rest = full.X[:, keep]

    fast = ReNA(full.mask_img, n_clusters=1, n_iter=2)
    messages = fit_user_warnings(fast, full.X)
    assert messages == expected_shortfall_messages(
        largest_component(full.adjacency), 4, 1, 2, fast.n_clusters_)
    assert np.sum(fast.labels_ == fast.labels_[column]) == 1
    ref = NilearnReNA(rest.mask_img, n_clusters=1, n_iter=2).fit(X_rest)
    assert fast.n_clusters_ == ref.n_clusters_ + 1
    assert_same_partition(first_appearance(fast.labels_[keep]), ref.labels_)

    exact = ReNA(full.mask_img, n_clusters=30).fit(full.X)
    assert exact.n_clusters_ == 30
    assert exact.sizes_[exact.labels_[column]] == 1
    assert_valid_surface_clustering(exact.labels_, full.adjacency, full.n_left)


def test_feature_count_mismatch_is_reported(sphere_partial):
    X = sphere_partial.X
    n = X.shape[1]
    with pytest.raises(ValueError) as excinfo:
        ReNA(sphere_partial.mask_img, n_clusters=5).fit(X[:, :-3])
    assert str(excinfo.value) == (
        f"mask_img has {n} in-mask voxels/vertices but X has {n - 3} features; "
        "they must be equal")


def test_empty_surface_mask_is_rejected(sphere_mesh):
    empty = surface_mask(sphere_mesh, {p: np.zeros(sphere_mesh.parts[p].n_vertices, bool)
                                       for p in PARTS})
    with pytest.raises(ValueError, match="^mask_img has no in-mask vertex$"):
        ReNA(empty, n_clusters=2).fit(np.ones((2, 5)))


def test_gifti_data_read_with_a_surface_image_mask_follow_its_hemispheres(tmp_path):
    """Issue 28, item 7: nilearn's "left" and "right" parts are the
    hemispheres GIfTI files name (AnatomicalStructurePrimary)."""
    import nibabel

    from fastrena.io import InputError, images_to_array

    parts = {}
    for part, side, x in (("left", "CortexLeft", -20.0), ("right", "CortexRight", 20.0)):
        coords, faces = grid_mesh(5, 6, x=x)
        parts[part] = InMemoryMesh(coords, faces)
        meta = nibabel.gifti.GiftiMetaData({"AnatomicalStructurePrimary": side})
        values = np.arange(30, dtype=np.float32) + (100 if part == "right" else 0)
        nibabel.gifti.GiftiImage(meta=meta, darrays=[nibabel.gifti.GiftiDataArray(values)]) \
            .to_filename(str(tmp_path / f"{part}.func.gii"))
    mask = SurfaceImage(PolyMesh(**parts), {p: np.ones(30, dtype=bool) for p in PARTS})
    left, right = str(tmp_path / "left.func.gii"), str(tmp_path / "right.func.gii")
    X = images_to_array([(left, right)], mask)
    np.testing.assert_array_equal(X, [np.r_[np.arange(30), np.arange(30) + 100]])
    with pytest.raises(InputError) as excinfo:
        images_to_array([(right, left)], mask)
    assert str(excinfo.value) == (
        f"image '{right}' is on CortexRight but mask_img's part 'left', part 1 of 2, is on "
        "CortexLeft; give each scan group's files in this order: CortexLeft, CortexRight")
