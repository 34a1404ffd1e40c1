"""Tests of how the estimator's ``mask_img`` and ``connectivity`` become a
layout (:func:`fastrena.layouts.feature_space`, :func:`mask_img_layout`):
its graph and the fitted ``mask_img_``."""

import re
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import sparse

from fastrena import ReNA
from fastrena.graphs import adjacency_graph, chain_graph, lattice_graph, surface_graph
from fastrena.layouts import feature_space, mask_img_layout

from helpers import brute_lattice_edges_fast, edge_list

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def resolve_mask(mask_img):
    """(graph, mask_img_) of a ``mask_img``; (None, None) for None."""
    if mask_img is None:
        return None, None
    layout = mask_img_layout(mask_img)
    return layout.graph, layout.mask_img_


def resolve_graph(mask_img, connectivity, n_features):
    """(graph, mask_img_) of the estimator's two parameters."""
    layout = feature_space(mask_img, connectivity, n_features)
    return layout.graph, layout.mask_img_


def assert_same_graph(g, ref):
    assert g.n_nodes == ref.n_nodes
    assert g.u.dtype == np.int64 and g.v.dtype == np.int64
    np.testing.assert_array_equal(g.u, ref.u)
    np.testing.assert_array_equal(g.v, ref.v)


AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])


def make_mask(seed=0, shape=(5, 6, 4), density=0.5):
    rng = np.random.default_rng(seed)
    mask = rng.random(shape) < density
    # guarantee an isolated voxel and a non-trivial component
    mask[0, 0, 0] = True
    mask[1, 0, 0] = mask[0, 1, 0] = mask[0, 0, 1] = False
    mask[-2:, -2:, -2:] = True
    return mask


@pytest.fixture
def mask3d():
    return make_mask()


# ---------------------------------------------------------------------------
# None
# ---------------------------------------------------------------------------


def test_none_gives_none():
    assert resolve_mask(None) == (None, None)


# ---------------------------------------------------------------------------
# NIfTI files and images
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("as_type", [str, Path])
def test_path_to_nifti(tmp_path, mask3d, as_type):
    path = tmp_path / "mask.nii.gz"
    nib.save(nib.Nifti1Image(mask3d.astype(np.uint8), AFFINE), path)
    graph, mask_img_ = resolve_mask(as_type(path))
    assert_same_graph(graph, lattice_graph(mask3d))
    n, edges = brute_lattice_edges_fast(mask3d)
    assert graph.n_nodes == n == int(mask3d.sum())
    assert edge_list(graph) == edges
    # the loaded image is kept as mask_img_
    assert isinstance(mask_img_, nib.spatialimages.SpatialImage)
    np.testing.assert_array_equal(np.asanyarray(mask_img_.dataobj) != 0, mask3d)
    np.testing.assert_array_equal(mask_img_.affine, AFFINE)


def test_path_to_uncompressed_nifti(tmp_path, mask3d):
    path = tmp_path / "mask.nii"
    nib.save(nib.Nifti1Image(mask3d.astype(np.int16), AFFINE), path)
    graph, _ = resolve_mask(path)
    assert_same_graph(graph, lattice_graph(mask3d))


@pytest.mark.parametrize("cls", [nib.Nifti1Image, nib.Nifti2Image])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32, np.float64])
def test_nibabel_images(mask3d, cls, dtype):
    img = cls(mask3d.astype(dtype), AFFINE)
    graph, mask_img_ = resolve_mask(img)
    assert_same_graph(graph, lattice_graph(mask3d))
    assert mask_img_ is img


def test_nifti_any_nonzero_value_is_in_with_a_warning(mask3d, tmp_path):
    # A probability map or an atlas given as a mask: every nonzero voxel is
    # in, as before, but nilearn's maskers would refuse it: a warning says
    # so, naming the file, the values and how to threshold it.
    rng = np.random.default_rng(5)
    values = rng.choice([-3.0, 0.25, 1.0, 7.5], size=mask3d.shape)
    data = np.where(mask3d, values, 0.0).astype(np.float32)
    path = tmp_path / "gm_prob.nii.gz"
    nib.save(nib.Nifti1Image(data, AFFINE), path)
    with pytest.warns(UserWarning) as caught:
        graph, _ = resolve_mask(str(path))
    assert_same_graph(graph, lattice_graph(mask3d))
    assert [str(w.message) for w in caught] == [
        f"mask_img '{path}' is not binary: its nonzero values range from -3 to 7.5 (4 "
        "distinct values); every nonzero value is read as in the mask (nilearn's maskers "
        "refuse a mask of more than two values). To keep only part of it, threshold it "
        "first, for example nilearn.image.binarize_img(mask, threshold=0.5)"]


@pytest.mark.parametrize("value", [1.0, 5.0, -2.0])
def test_nifti_mask_of_one_nonzero_value_does_not_warn(mask3d, value):
    data = np.where(mask3d, value, 0.0).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graph, _ = resolve_mask(nib.Nifti1Image(data, AFFINE))
    assert_same_graph(graph, lattice_graph(mask3d))


def test_nifti_2d_image():
    mask = np.array([[1, 1, 0], [0, 1, 1], [1, 0, 0]], dtype=np.uint8)
    graph, _ = resolve_mask(nib.Nifti1Image(mask, np.eye(4)))
    assert graph.n_nodes == 5
    assert edge_list(graph) == [(0, 1), (1, 2), (2, 3)]


def test_nifti_4d_single_volume_accepted(tmp_path, mask3d):
    img = nib.Nifti1Image(mask3d[..., None].astype(np.uint8), AFFINE)
    graph, _ = resolve_mask(img)
    assert_same_graph(graph, lattice_graph(mask3d))
    path = tmp_path / "mask4d.nii.gz"
    nib.save(img, path)
    graph, _ = resolve_mask(path)
    assert_same_graph(graph, lattice_graph(mask3d))


@pytest.mark.parametrize("n_volumes", [2, 3])
def test_nifti_4d_several_volumes_rejected(tmp_path, mask3d, n_volumes):
    data = np.repeat(mask3d[..., None], n_volumes, axis=3).astype(np.uint8)
    img = nib.Nifti1Image(data, AFFINE)
    with pytest.raises(ValueError, match=f"4-D with {n_volumes} volumes"):
        resolve_mask(img)
    path = tmp_path / "mask4d.nii.gz"
    nib.save(img, path)
    with pytest.raises(ValueError, match=f"4-D with {n_volumes} volumes"):
        resolve_mask(str(path))


def test_nifti_all_zero_rejected(tmp_path):
    img = nib.Nifti1Image(np.zeros((4, 5, 3), np.uint8), AFFINE)
    with pytest.raises(ValueError, match="no in-mask"):
        resolve_mask(img)
    path = tmp_path / "empty.nii.gz"
    nib.save(img, path)
    with pytest.raises(ValueError, match="no in-mask"):
        resolve_mask(path)
    with pytest.raises(ValueError, match="no in-mask"):
        resolve_mask(nib.Nifti1Image(np.zeros((4, 5, 3, 1), np.float32), AFFINE))


@pytest.mark.parametrize("as_type", [str, Path])
def test_missing_file(tmp_path, as_type):
    path = tmp_path / "does_not_exist.nii.gz"
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        resolve_mask(as_type(path))


@pytest.mark.parametrize(
    "name, content",
    [
        ("mask.txt", b"this is not an image"),
        ("mask.nii.gz", b"not gzip data at all"),
        ("mask.nii", b"garbage" * 100),
    ],
)
def test_non_nifti_file(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=re.escape(str(path))):
        resolve_mask(path)
    with pytest.raises(ValueError, match="NIfTI"):
        resolve_mask(str(path))


def test_non_volume_image_file(tmp_path):
    gii = nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(np.ones(5, np.float32))])
    path = tmp_path / "surface.gii"
    nib.save(gii, path)
    with pytest.raises(ValueError, match=re.escape(str(path))):
        resolve_mask(path)


# ---------------------------------------------------------------------------
# numpy arrays
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dtype", [bool, np.int8, np.uint8, np.int32, np.int64, np.float32, np.float64]
)
def test_ndarray_boolean_and_01(mask3d, dtype):
    arr = mask3d.astype(dtype)
    graph, mask_img_ = resolve_mask(arr)
    assert_same_graph(graph, lattice_graph(mask3d))
    assert mask_img_.dtype == bool
    np.testing.assert_array_equal(mask_img_, mask3d)


def test_ndarray_2d_image():
    arr = np.array([[1, 0, 1], [1, 1, 1]])
    graph, mask_img_ = resolve_mask(arr)
    assert graph.n_nodes == 5
    assert edge_list(graph) == [(0, 2), (1, 4), (2, 3), (3, 4)]
    np.testing.assert_array_equal(mask_img_, arr.astype(bool))


def test_ndarray_single_voxel():
    arr = np.zeros((3, 3, 3), bool)
    arr[1, 2, 0] = True
    graph, _ = resolve_mask(arr)
    assert (graph.n_nodes, graph.n_edges) == (1, 0)


@pytest.mark.parametrize(
    "arr",
    [
        np.array([[0, 1], [2, 1]]),
        np.array([[0, 1], [-1, 1]]),
        np.array([[0.0, 0.5], [1.0, 1.0]]),
        np.array([[0.0, np.nan], [1.0, 1.0]]),
    ],
)
def test_ndarray_other_values_rejected(arr):
    with pytest.raises(ValueError, match="boolean or contain only 0 and 1"):
        resolve_mask(arr)


def test_ndarray_strings_rejected():
    with pytest.raises(ValueError, match="only 0 and 1"):
        resolve_mask(np.array([["0", "1"], ["1", "1"]]))


@pytest.mark.parametrize("shape", [(5,), (2, 2, 2, 2), (3, 3, 3, 1), (1, 1, 1, 1, 1)])
def test_ndarray_wrong_dimension(shape):
    with pytest.raises(ValueError, match=re.escape(str(shape))):
        resolve_mask(np.ones(shape, bool))


def test_ndarray_all_zero():
    with pytest.raises(ValueError, match="no in-mask"):
        resolve_mask(np.zeros((3, 4, 5), bool))
    with pytest.raises(ValueError, match="no in-mask"):
        resolve_mask(np.zeros((3, 4), np.int64))


# ---------------------------------------------------------------------------
# unsupported types
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "obj",
    [
        [[1, 0], [1, 1]],
        {"left": np.ones(3)},
        (1, 0, 1),
        3,
        1.5,
        object(),
        sparse.csr_matrix(np.eye(3)),
    ],
)
def test_unsupported_types(obj):
    with pytest.raises(TypeError, match="NIfTI") as info:
        resolve_mask(obj)
    msg = str(info.value)
    assert "SurfaceImage" in msg
    assert "NiftiMasker" in msg
    assert "mask_img" in msg
    assert type(obj).__name__ in msg


def test_unsupported_nilearn_object():
    from nilearn.surface import InMemoryMesh, PolyMesh

    mesh = PolyMesh(left=InMemoryMesh(np.zeros((3, 3)), np.array([[0, 1, 2]])))
    with pytest.raises(TypeError, match="SurfaceImage"):
        resolve_mask(mesh)


# ---------------------------------------------------------------------------
# nilearn NiftiMasker
# ---------------------------------------------------------------------------


def test_fitted_nifti_masker(mask3d):
    from nilearn.maskers import NiftiMasker

    masker = NiftiMasker(mask_img=nib.Nifti1Image(mask3d.astype(np.uint8), AFFINE)).fit()
    graph, mask_img_ = resolve_mask(masker)
    assert mask_img_ is masker.mask_img_
    assert_same_graph(graph, lattice_graph(mask3d))
    n, edges = brute_lattice_edges_fast(mask3d)
    assert graph.n_nodes == n
    assert edge_list(graph) == edges


def test_fitted_nifti_masker_with_computed_mask():
    from nilearn.maskers import NiftiMasker

    rng = np.random.default_rng(2)
    data = np.zeros((8, 9, 7, 5), np.float32)
    data[2:6, 1:8, 2:5] = 100 + rng.random((4, 7, 3, 5))
    masker = NiftiMasker().fit(nib.Nifti1Image(data, AFFINE))
    mask = np.asanyarray(masker.mask_img_.dataobj) != 0
    assert mask.any()
    graph, mask_img_ = resolve_mask(masker)
    assert mask_img_ is masker.mask_img_
    assert_same_graph(graph, lattice_graph(mask))


def test_unfitted_nifti_masker(mask3d):
    from nilearn.maskers import NiftiMasker
    from sklearn.exceptions import NotFittedError

    # One that carries its own mask_img (as sklearn.clone makes of a fitted
    # one) is fitted on the spot, as a copy: the user's stays unfitted.
    masker = NiftiMasker(mask_img=nib.Nifti1Image(mask3d.astype(np.uint8), AFFINE))
    graph, mask_img_ = resolve_mask(masker)
    assert_same_graph(graph, lattice_graph(mask3d))
    np.testing.assert_array_equal(np.asarray(mask_img_.dataobj) != 0, mask3d)
    assert not hasattr(masker, "mask_img_")
    with pytest.raises(NotFittedError, match="^mask_img is a NiftiMasker that has not been "
                                             "fitted and has no mask_img of its own"):
        resolve_mask(NiftiMasker())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_node_numbering_matches_nifti_masker_columns(seed):
    """Column i of NiftiMasker's output is the voxel lattice_graph calls
    node i: the np.argwhere (C order) position of the in-mask voxels."""
    from nilearn.maskers import NiftiMasker

    shape = (6, 5, 7)
    mask = make_mask(seed, shape, density=0.45)
    n_samples = 3
    lin = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    # sample s encodes the voxel's linear (C) index plus 10000 * s
    data = np.stack([lin + 10000.0 * s for s in range(n_samples)], axis=-1).astype(np.float32)
    mask_img = nib.Nifti1Image(mask.astype(np.uint8), AFFINE)
    data_img = nib.Nifti1Image(data, AFFINE)
    with warnings.catch_warnings():
        # nilearn 0.14 announces a change of the 'standardize' default
        warnings.simplefilter("ignore", FutureWarning)
        X = NiftiMasker(mask_img=mask_img).fit_transform(data_img)
    assert X.shape == (n_samples, int(mask.sum()))

    graph, _ = resolve_mask(mask_img)
    assert graph.n_nodes == X.shape[1]

    coords = np.argwhere(mask)
    # column i of X is voxel coords[i]
    voxel_of_column = np.unravel_index(X[0].astype(np.int64), shape)
    np.testing.assert_array_equal(np.stack(voxel_of_column, axis=1), coords)
    np.testing.assert_array_equal(X[2] - X[0], 20000.0)

    # every edge joins columns whose voxels are face neighbours
    vox = np.stack(voxel_of_column, axis=1)
    diff = np.abs(vox[graph.u] - vox[graph.v])
    assert np.all(diff.sum(axis=1) == 1)
    # and every face-neighbour pair of columns is an edge
    n, edges = brute_lattice_edges_fast(mask)
    assert edge_list(graph) == edges


# ---------------------------------------------------------------------------
# nilearn surfaces
# ---------------------------------------------------------------------------


LEFT_FACES = np.array([[0, 1, 2], [1, 2, 3], [3, 4, 5]])
RIGHT_FACES = np.array([[0, 1, 2], [0, 2, 3]])
LEFT_MASK = np.array([1, 1, 0, 1, 1, 1])
RIGHT_MASK = np.array([1, 0, 1, 1])
SURFACE_EDGES = [(0, 1), (1, 2), (2, 3), (2, 4), (3, 4), (5, 6), (5, 7), (6, 7)]


def _poly_mesh():
    from nilearn.surface import InMemoryMesh, PolyMesh

    rng = np.random.default_rng(0)
    left = InMemoryMesh(rng.normal(size=(6, 3)), LEFT_FACES)
    right = InMemoryMesh(rng.normal(size=(4, 3)), RIGHT_FACES)
    return PolyMesh(left=left, right=right)


def _surface_mask(left=LEFT_MASK, right=RIGHT_MASK):
    from nilearn.surface import SurfaceImage

    return SurfaceImage(_poly_mesh(), {"left": np.asarray(left), "right": np.asarray(right)})


def test_surface_image_mask():
    img = _surface_mask()
    graph, mask_img_ = resolve_mask(img)
    assert mask_img_ is img
    assert graph.n_nodes == 8
    assert edge_list(graph) == SURFACE_EDGES
    ref = surface_graph([(LEFT_FACES, LEFT_MASK), (RIGHT_FACES, RIGHT_MASK)])
    assert_same_graph(graph, ref)


@pytest.mark.parametrize("dtype", [bool, np.int64, np.float32])
def test_surface_image_mask_dtypes_and_column(dtype):
    img = _surface_mask(
        LEFT_MASK.astype(dtype)[:, None], RIGHT_MASK.astype(dtype)[:, None]
    )
    graph, _ = resolve_mask(img)
    assert graph.n_nodes == 8
    assert edge_list(graph) == SURFACE_EDGES


def test_surface_image_full_mask_and_no_cross_part_edges():
    img = _surface_mask(np.ones(6, bool), np.ones(4, bool))
    graph, _ = resolve_mask(img)
    assert graph.n_nodes == 10
    assert edge_list(graph) == [
        (0, 1), (0, 2), (1, 2), (1, 3), (2, 3), (3, 4), (3, 5), (4, 5),
        (6, 7), (6, 8), (6, 9), (7, 8), (8, 9),
    ]
    assert not np.any((graph.u < 6) & (graph.v >= 6))
    assert graph.n_connected_components() == 2


def test_surface_image_single_part():
    from nilearn.surface import InMemoryMesh, PolyMesh, SurfaceImage

    mesh = PolyMesh(right=InMemoryMesh(np.zeros((4, 3)), RIGHT_FACES))
    img = SurfaceImage(mesh, {"right": np.array([1, 1, 0, 1])})
    graph, _ = resolve_mask(img)
    assert graph.n_nodes == 3
    assert edge_list(graph) == [(0, 1), (0, 2)]


def test_surface_image_all_zero():
    with pytest.raises(ValueError, match="no in-mask"):
        resolve_mask(_surface_mask(np.zeros(6), np.zeros(4)))


def test_surface_image_two_columns_rejected():
    img = _surface_mask(np.ones((6, 2)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="SurfaceImage with 2 samples"):
        resolve_mask(img)


def test_fitted_surface_masker():
    from nilearn.maskers import SurfaceMasker
    from nilearn.surface import SurfaceImage

    masker = SurfaceMasker(mask_img=_surface_mask()).fit()
    graph, mask_img_ = resolve_mask(masker)
    assert mask_img_ is masker.mask_img_
    assert graph.n_nodes == 8
    assert edge_list(graph) == SURFACE_EDGES

    # node numbering equals the masker's column order
    left = np.arange(6, dtype=np.float64)[:, None] * np.ones((1, 2))
    right = 100 + np.arange(4, dtype=np.float64)[:, None] * np.ones((1, 2))
    data = SurfaceImage(masker.mask_img_.mesh, {"left": left, "right": right})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        X = masker.transform(data)
    np.testing.assert_array_equal(X[0], [0, 1, 3, 4, 5, 100, 102, 103])


def test_unfitted_surface_masker():
    from nilearn.maskers import SurfaceMasker
    from sklearn.exceptions import NotFittedError

    mask = _surface_mask()
    graph, _ = resolve_mask(SurfaceMasker(mask_img=mask))
    assert_same_graph(graph, resolve_mask(mask)[0])
    with pytest.raises(NotFittedError, match="SurfaceMasker that has not been fitted"):
        resolve_mask(SurfaceMasker())


# ---------------------------------------------------------------------------
# resolve_graph
# ---------------------------------------------------------------------------


def test_resolve_graph_none_is_chain():
    graph, mask_img_ = resolve_graph(None, None, 6)
    assert mask_img_ is None
    assert_same_graph(graph, chain_graph(6))


def test_resolve_graph_with_mask(mask3d):
    n = int(mask3d.sum())
    graph, mask_img_ = resolve_graph(mask3d, None, n)
    assert_same_graph(graph, lattice_graph(mask3d))
    np.testing.assert_array_equal(mask_img_, mask3d)
    img = nib.Nifti1Image(mask3d.astype(np.uint8), AFFINE)
    graph, mask_img_ = resolve_graph(img, None, n)
    assert mask_img_ is img
    assert_same_graph(graph, lattice_graph(mask3d))


def test_resolve_graph_with_connectivity():
    from sklearn.feature_extraction.image import grid_to_graph

    mask = make_mask(3, (4, 5, 3))
    conn = grid_to_graph(*mask.shape, mask=mask)
    graph, mask_img_ = resolve_graph(None, conn, int(mask.sum()))
    assert mask_img_ is None
    assert_same_graph(graph, lattice_graph(mask))
    dense = np.array([[0, 1, 0], [0, 0, 0], [1, 0, 0]])
    graph, _ = resolve_graph(None, dense, 3)
    assert edge_list(graph) == [(0, 1), (0, 2)]
    graph, _ = resolve_graph(None, dense.tolist(), 3)
    assert_same_graph(graph, adjacency_graph(dense))


def test_resolve_graph_both_given(mask3d):
    conn = sparse.identity(int(mask3d.sum()), format="csr")
    with pytest.raises(ValueError, match="mutually exclusive"):
        resolve_graph(mask3d, conn, int(mask3d.sum()))
    with pytest.raises(ValueError, match="mutually exclusive"):
        resolve_graph(_surface_mask(), sparse.identity(8), 8)


@pytest.mark.parametrize(
    "conn, shape",
    [
        (sparse.csr_matrix((5, 4)), (5, 4)),
        (np.zeros((4, 5)), (4, 5)),
        (np.zeros(5), (5,)),
        (np.zeros((5, 5, 1)), (5, 5, 1)),
        ([[0, 1, 0], [1, 0, 1]], (2, 3)),
    ],
)
def test_resolve_graph_connectivity_not_square(conn, shape):
    with pytest.raises(ValueError, match=re.escape(str(shape))) as info:
        resolve_graph(None, conn, 5)
    assert "square" in str(info.value)


@pytest.mark.parametrize("n_conn, n_features", [(3, 5), (7, 2), (1, 10)])
def test_resolve_graph_connectivity_wrong_size(n_conn, n_features):
    conn = sparse.identity(n_conn, format="csr")
    with pytest.raises(ValueError) as info:
        resolve_graph(None, conn, n_features)
    msg = str(info.value)
    assert f"({n_conn}, {n_conn})" in msg
    assert f"({n_features}, {n_features})" in msg
    assert f"{n_features} features" in msg


@pytest.mark.parametrize("delta", [-3, -1, 1, 20])
def test_resolve_graph_mask_size_mismatch(mask3d, delta):
    n = int(mask3d.sum())
    with pytest.raises(ValueError) as info:
        resolve_graph(mask3d, None, n + delta)
    msg = str(info.value)
    assert re.search(rf"\b{n}\b", msg)
    assert re.search(rf"\b{n + delta}\b", msg)


def test_resolve_graph_surface_size_mismatch():
    with pytest.raises(ValueError, match=r"8 in-mask .*\b9 features"):
        resolve_graph(_surface_mask(), None, 9)
    graph, _ = resolve_graph(_surface_mask(), None, 8)
    assert edge_list(graph) == SURFACE_EDGES


def test_resolve_graph_propagates_mask_errors(tmp_path):
    with pytest.raises(TypeError, match="SurfaceImage"):
        resolve_graph([1, 0, 1], None, 2)
    with pytest.raises(FileNotFoundError, match="nope.nii"):
        resolve_graph(tmp_path / "nope.nii", None, 3)
    with pytest.raises(ValueError, match="no in-mask"):
        resolve_graph(np.zeros((2, 2, 2), bool), None, 0)


def test_a_fitted_masker_survives_sklearn_clone(mask3d):
    # GridSearchCV and hidimstat's clustered inference clone the estimator,
    # which leaves an unfitted copy of the masker.
    from nilearn.maskers import NiftiMasker
    from sklearn.base import clone

    masker = NiftiMasker(nib.Nifti1Image(mask3d.astype(np.uint8), AFFINE)).fit()
    X = np.random.default_rng(0).standard_normal((6, int(mask3d.sum())))
    reference = ReNA(masker, n_clusters=12).fit(X)
    cloned = clone(ReNA(masker, n_clusters=12))
    assert not hasattr(cloned.mask_img, "mask_img_")
    np.testing.assert_array_equal(cloned.fit(X).labels_, reference.labels_)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nifti_nan_or_infinity_is_outside_the_mask_with_a_warning(tmp_path, mask3d, bad):
    # A map saved with NaN outside the brain, given as the mask: read as
    # nonzero, every background voxel was in (the whole grid parcellated,
    # silently); nilearn's maskers read it as outside, with a warning.
    data = np.where(mask3d, 1.0, bad).astype(np.float32)
    path = tmp_path / "nan_mask.nii.gz"
    nib.save(nib.Nifti1Image(data, AFFINE), path)
    n_out = int((~mask3d).sum())
    for given in (str(path), nib.Nifti1Image(data, AFFINE)):
        with pytest.warns(UserWarning, match=rf"holds {n_out} NaN or infinite values: read as "
                                             r"outside the mask, as nilearn's maskers read them"):
            graph, _ = resolve_mask(given)
        assert_same_graph(graph, lattice_graph(mask3d))
    with pytest.warns(UserWarning, match="NaN or infinite"), pytest.raises(
            ValueError, match="has no in-mask voxel"):
        resolve_mask(nib.Nifti1Image(np.full(mask3d.shape, np.nan, np.float32), AFFINE))


def test_surface_masks_read_nan_as_outside(tmp_path):
    from nilearn.surface import InMemoryMesh, PolyMesh, SurfaceImage

    from fastrena.layouts import mask_layout, surface_layout
    from helpers import grid_mesh, write_gifti_data, write_gifti_mesh

    coords, faces = grid_mesh(4, 5)
    values = np.ones(coords.shape[0])
    values[[0, 7]] = np.nan
    expected = np.isfinite(values)
    with pytest.warns(UserWarning, match=r"^mask '.*mask\.func\.gii' holds 2 NaN or infinite"):
        layout = surface_layout([write_gifti_mesh(tmp_path / "m.surf.gii", coords, faces)],
                                [write_gifti_data(tmp_path / "mask.func.gii", values)])
    np.testing.assert_array_equal(layout.masks[0], expected)
    mesh = PolyMesh(left=InMemoryMesh(coords, faces))
    with pytest.warns(UserWarning, match=r"^mask_img's part 'left' holds 2 NaN or infinite"):
        layout = mask_layout(SurfaceImage(mesh, {"left": values}))
    np.testing.assert_array_equal(layout.masks[0], expected)
