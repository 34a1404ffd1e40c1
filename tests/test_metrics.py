"""fastrena.metrics against direct NumPy computations on small data, in
memory and chunk by chunk (Dask), bit for bit."""

import sys

import dask
import dask.array as da
import nibabel
import numpy as np
import pytest
from helpers import AFFINE, box_mask, grid_mesh
from scipy.ndimage import gaussian_filter
from scipy.sparse.csgraph import connected_components
from sklearn.exceptions import NotFittedError

from fastrena import ReNA, chain_graph, graph_from_edges
from fastrena import metrics
from fastrena.errors import MissingDependencyError
from fastrena.layouts import SurfaceLayout
from fastrena.plotting import relative_error


@pytest.fixture(scope="module")
def smooth():
    """150 smooth samples (more than two blocks of 64) on an 8 x 9 x 7 box,
    a ReNA fit to 20 clusters on a 2 mm NIfTI mask."""
    mask = box_mask()
    rng = np.random.default_rng(3)
    X = np.stack([gaussian_filter(rng.standard_normal(mask.shape), 1.2)[mask]
                  for _ in range(150)])
    rena = ReNA(nibabel.Nifti1Image(mask.astype(np.uint8), AFFINE), n_clusters=20).fit(X)
    return X, rena


def reference_homogeneity(X, labels):
    """np.corrcoef of each feature with its parcel's mean, averaged."""
    out = []
    for c in range(labels.max() + 1):
        members = np.flatnonzero(labels == c)
        mean = X[:, members].mean(axis=1)
        out.append(np.mean([np.corrcoef(X[:, i], mean)[0, 1] for i in members]))
    return np.array(out)


def test_homogeneity_is_numpys_mean_correlation_with_the_parcel_mean(smooth):
    X, rena = smooth
    expected = reference_homogeneity(X, rena.labels_)
    np.testing.assert_allclose(metrics.homogeneity(X, rena.labels_), expected, rtol=1e-12)
    # A baseline 10^6 times the spread (BOLD sits on one) changes nothing:
    # the sums are centred block by block, not raw.
    np.testing.assert_allclose(metrics.homogeneity(X + 1e5, rena.labels_), expected,
                               rtol=1e-7)


def test_undefined_correlations_are_left_out_without_a_warning():
    X = np.array([[0., 1, 5, 3, 3], [1, 2, 5, 3, 3], [2, 2, 5, 3, 3]])
    # Feature 2 is constant (no correlation); parcel 1 (features 3, 4) too.
    labels = np.array([0, 0, 0, 1, 1])
    r = metrics.feature_correlations(X, labels)
    assert np.isnan(r[2:]).all()
    np.testing.assert_allclose(r[:2], [np.corrcoef(X[:, i], X[:, :3].mean(axis=1))[0, 1]
                                       for i in (0, 1)], rtol=1e-12)
    h = metrics.homogeneity(X, labels)
    assert h[0] == pytest.approx(r[:2].mean(), rel=1e-12) and np.isnan(h[1])


@pytest.mark.parametrize("rows", [150, 64, 50, 100, (10, 54, 64, 22)])
def test_dask_gives_the_in_memory_values_bit_for_bit(smooth, rows):
    X, rena = smooth
    lazy = da.from_array(X, chunks=(rows, X.shape[1]))
    with dask.config.set(scheduler="synchronous"):
        assert np.array_equal(metrics.homogeneity(lazy, rena.labels_),
                              metrics.homogeneity(X, rena.labels_), equal_nan=True)
        labelings = [rena.labels_, np.arange(X.shape[1]) // 7]
        assert np.array_equal(metrics.compression_errors(lazy, labelings),
                              metrics.compression_errors(X, labelings))


def test_compression_errors_are_plottings_relative_error(smooth):
    X, rena = smooth
    coarse = ReNA(rena.mask_img_, n_clusters=5).fit(X)
    errors = metrics.compression_errors(X, [rena.labels_, coarse.labels_])
    for error, fit in zip(errors, (rena, coarse)):
        assert error == pytest.approx(
            relative_error(X, fit.inverse_transform(fit.transform(X))), rel=1e-12)
    assert errors[1] > errors[0] > 0


def test_parcel_components_counts_the_pieces_of_each_parcel():
    # 0 0 1 0 1 1 2 on a chain: parcel 0 in two pieces, 1 in two, 2 in one.
    labels = np.array([0, 0, 1, 0, 1, 1, 2])
    assert metrics.parcel_components(labels, chain_graph(7)).tolist() == [2, 2, 1]
    # Joined by an edge 2-4, parcel 1 is whole.
    graph = graph_from_edges(7, np.array([0, 1, 2, 3, 4, 5, 2]),
                             np.array([1, 2, 3, 4, 5, 6, 4]))
    assert metrics.parcel_components(labels, graph).tolist() == [2, 1, 1]


def test_parcel_metrics_of_a_volume_fit(smooth):
    X, rena = smooth
    table = metrics.parcel_metrics(rena, X)
    assert list(table.columns) == ["name", "color", "n_features", "volume_mm3",
                                   "n_components", "homogeneity", "null_homogeneity",
                                   "null_n_features"]
    assert table.index.name == "index" and table.index.tolist() == list(range(1, 21))
    assert table["name"].tolist() == [f"label_{v}" for v in range(1, 21)]
    assert table["n_features"].tolist() == rena.sizes_.tolist()
    # 2 mm voxels: 8 mm^3 each.
    assert table["volume_mm3"].tolist() == (8.0 * rena.sizes_).tolist()
    assert (table["n_components"] == 1).all()
    np.testing.assert_allclose(table["homogeneity"], reference_homogeneity(X, rena.labels_),
                               rtol=1e-12)
    # The null regions have the parcels' sizes (one connected graph), each
    # its own homogeneity, and are less homogeneous than ReNA's on smooth
    # data.
    features, region = metrics.null_regions(rena.labels_, rena.layout_.graph, 0)
    assert table["null_n_features"].tolist() == rena.sizes_.tolist()
    expected = [reference_homogeneity(X[:, features[region == c]],
                                      np.zeros(int((region == c).sum()), dtype=np.int64))[0]
                for c in range(20)]
    np.testing.assert_allclose(table["null_homogeneity"], expected, rtol=1e-12)
    assert (table["homogeneity"] * table["n_features"]).sum() > (
        table["null_homogeneity"] * table["null_n_features"]).sum()


def test_an_oblique_affine_gives_its_voxel_volume(smooth):
    X, _ = smooth
    affine = np.array([[0, 3.0, 0, 0], [1.5, 0, 0, 0], [0, 0, -2.0, 4], [0, 0, 0, 1]])
    mask = nibabel.Nifti1Image(box_mask().astype(np.uint8), affine)
    rena = ReNA(mask, n_clusters=4).fit(X)
    assert metrics.parcel_metrics(rena)["volume_mm3"].tolist() == (9.0 * rena.sizes_).tolist()


def test_null_regions_are_connected_deterministic_and_of_the_parcels_sizes(smooth):
    # Grown apart on the whole graph (they may overlap): every parcel's
    # null has its size. Tiled one after the other, the last parcels filled
    # the holes the others left and stopped smaller (17 % at K = 1,000 on a
    # 3 mm brain).
    _, rena = smooth
    graph = rena.layout_.graph
    features, region = metrics.null_regions(rena.labels_, graph, 7)
    again = metrics.null_regions(rena.labels_, graph, 7)
    assert np.array_equal(features, again[0]) and np.array_equal(region, again[1])
    assert not np.array_equal(features, metrics.null_regions(rena.labels_, graph, 8)[0])
    assert np.bincount(region, minlength=20).tolist() == rena.sizes_.tolist()
    A = graph.to_adjacency()
    for c in range(20):
        members = features[region == c]
        assert np.unique(members).shape == members.shape
        assert connected_components(A[members][:, members], directed=False)[0] == 1
    # Overlapping is allowed, and happens.
    assert np.unique(features).shape[0] < features.shape[0]
    # A region is smaller only when its seed's component is: a graph of
    # two pieces, 3 and 2 features, and a parcel of 4.
    two = graph_from_edges(5, np.array([0, 1, 3]), np.array([1, 2, 4]))
    sizes = set()
    for seed in range(20):
        _, region = metrics.null_regions(np.array([0, 0, 0, 0, 1]), two, seed)
        sizes.add(int((region == 0).sum()))
    assert sizes == {2, 3}


def test_surface_areas_are_a_third_of_each_triangles(smooth):
    coords, faces = grid_mesh(5, 6)
    coords = coords * np.array([1.0, 2.0, 3.0])   # rectangles of 2 x 3 mm
    mask = np.ones(30, dtype=bool)
    mask[:2] = False
    layout = SurfaceLayout((mask,), ((coords, faces),))
    labels = np.arange(28) % 3
    table = metrics.parcel_metrics(labels, layout=layout)
    assert "volume_mm3" not in table.columns
    # Direct: each triangle (area 3 mm^2) gives a third to each corner.
    area = np.zeros(30)
    for face in faces:
        a, b, c = coords[face]
        area[face] += np.linalg.norm(np.cross(b - a, c - a)) / 2 / 3
    np.testing.assert_allclose(table["area_mm2"], np.bincount(labels, area[mask]), rtol=1e-12)
    assert metrics.vertex_areas(coords, faces).sum() == pytest.approx(4 * 5 * 6.0)


def test_split_half_reproducibility():
    rng = np.random.default_rng(0)
    # Two blocks of features that differ in every sample: both halves agree.
    X = np.repeat([[0.0] * 6 + [10.0] * 6], 10, axis=0) + rng.random((10, 12)) * 1e-3
    assert metrics.split_half_reproducibility(ReNA(n_clusters=2), X) == 1.0
    # A fitted estimator is cloned, not refitted.
    fitted = ReNA(n_clusters=2, compute_full_tree=True).fit(X[:3])
    labels = fitted.labels_.copy()
    assert metrics.split_half_reproducibility(fitted, X) == 1.0
    assert np.array_equal(fitted.labels_, labels) and fitted.n_features_in_ == 12
    with pytest.raises(ValueError, match="^X has 1 sample; split-half reproducibility "
                                         r"needs at least 2 \(one per half\)$"):
        metrics.split_half_reproducibility(ReNA(), X[:1])


def test_errors_name_the_argument(smooth):
    X, rena = smooth
    with pytest.raises(NotFittedError, match="^this ReNA is not fitted; fit it first$"):
        metrics.parcel_metrics(ReNA())
    with pytest.raises(ValueError, match="^parcellation is an array of labels: give its "
                                         "layout too"):
        metrics.parcel_metrics(rena.labels_)
    with pytest.raises(ValueError, match=r"^X has shape \(3, 5\) but the parcellation has "
                                         r"210 features; X must be \(n_samples, 210\)$"):
        metrics.parcel_metrics(rena, np.zeros((3, 5)))
    # Given as (n_features, n_samples), or as an image: said so.
    with pytest.raises(ValueError, match=r"^X has shape \(210, 3\) but the parcellation has "
                                         r"210 features; X must be \(n_samples, 210\); X has "
                                         r"210 rows: is it transposed\?"):
        metrics.homogeneity(np.zeros((210, 3)), rena.labels_)
    with pytest.raises(TypeError, match=r"^X must be an array of shape \(n_samples, "
                                        r"n_features\).*; got the str 'run\.nii\.gz'"):
        metrics.homogeneity("run.nii.gz", rena.labels_)
    # The halves of split_half_reproducibility: X's own sample is named.
    bad = np.ones((8, 6))
    bad[6, 2] = np.nan
    with pytest.raises(ValueError, match=r"\(first at sample 6, feature 2: nan; 1 such values "
                                         r"in 1 of 8 samples and 1 of 6 features\)$"):
        metrics.split_half_reproducibility(ReNA(n_clusters=2), bad)
    bad = X[:2].copy()
    bad[1, 4] = np.nan
    with pytest.raises(ValueError, match=r"^X contains NaN or infinity \(first at sample 1, "
                                         r"feature 4: nan; 1 such values in 1 of 2 samples "
                                         r"and 1 of 210 features\)$"):
        metrics.homogeneity(bad, rena.labels_)


def test_without_pandas_the_error_names_what_to_install(smooth, monkeypatch):
    _, rena = smooth
    monkeypatch.setitem(sys.modules, "pandas", None)   # import pandas raises ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install pandas \(or "
                                                     r"fastrena\[neuro\]"):
        metrics.parcel_metrics(rena)
