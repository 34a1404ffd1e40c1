"""The ``"ward"`` linkage's invariant (``fastrena.ward``): every merge is
made at its Ward cost at that moment, on every input: hubs, stars, chains,
ties and plateaus, and real maps whose flat regions make hubs (tissue
probability maps, a thresholded map, a binary mask). The merges are read
in the order they were made and replayed on the data with numpy
(:func:`fastrena.ward.replayed_costs`)."""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from fastrena import ReNA
from fastrena.ward import replayed_costs

from helpers import WardMergesSpy, chain_adjacency, star_adjacency


def check_costs(spy, X):
    first, second, costs = spy.merges()
    true, scale = replayed_costs(X, first, second)
    # Merges recorded at cost 0 join identical means: replayed, their cost
    # is rounding error at most.
    bad = np.abs(costs - true) > 1e-9 * true + 1e-10 * scale
    assert not bad.any(), (
        f"{bad.sum()} of {costs.shape[0]} merges recorded off their Ward cost, "
        f"first: merge {np.flatnonzero(bad)[0]}, recorded {costs[bad][0]!r}, "
        f"Ward's {true[bad][0]!r}")
    return first.shape[0]


def rounded(X, levels=5):
    low, high = X.min(), X.max()
    return low + np.round((X - low) / (high - low) * (levels - 1)) * ((high - low) / (levels - 1))


def synthetic_cases():
    rng = np.random.default_rng(0)
    side = 24
    mask = np.ones((side,) * 3, dtype=bool)
    field = gaussian_filter(rng.standard_normal((side,) * 3), 2).reshape(1, -1)
    x, y, z = np.indices((side,) * 3)
    ball = (((x - 12) ** 2 + (y - 12) ** 2 + (z - 12) ** 2) < 64).astype(float)
    return {
        # A hub absorbing its leaves, in shuffled value order.
        "star": (rng.standard_normal((1, 3001)), {"connectivity": star_adjacency(3000)}),
        # Every node's nearest neighbour is the one before it.
        "chain of steps": (np.cumsum(np.arange(2000.0) ** 1.5)[None],
                           {"connectivity": chain_adjacency(2000)}),
        "rounded field": (rounded(field), {"mask_img": mask}),
        "rounded noise": (rounded(rng.standard_normal((1, side ** 3))), {"mask_img": mask}),
        # A plateau in a nearly flat background: two hubs.
        "plateau": ((ball + 0.01 * rng.standard_normal(ball.shape)).reshape(1, -1),
                    {"mask_img": mask}),
        "checkerboard": ((((x // 4 + y // 4 + z // 4) % 2) * 1.0).reshape(1, -1),
                         {"mask_img": mask}),
        "smooth, 20 samples": (gaussian_filter(rng.standard_normal((20, side, side, side)),
                                               (0, 2, 2, 2)).reshape(20, -1),
                               {"mask_img": mask}),
    }


@pytest.mark.parametrize("name", list(synthetic_cases()))
@pytest.mark.parametrize("fraction", [0.02, 0.2])
def test_every_merge_at_its_ward_cost_synthetic(monkeypatch, name, fraction):
    X, graph = synthetic_cases()[name]
    spy = WardMergesSpy(monkeypatch)
    k = max(2, int(fraction * X.shape[1]))
    est = ReNA(n_clusters=k, linkage="ward", **graph).fit(X)
    assert est.n_clusters_ == k
    assert check_costs(spy, X) >= X.shape[1] - k


def mni_maps(resolution):
    from nilearn import datasets

    mask = np.asarray(datasets.load_mni152_brain_mask(resolution=resolution).dataobj) != 0
    gm = datasets.load_mni152_gm_template(resolution=resolution).get_fdata()
    wm = datasets.load_mni152_wm_template(resolution=resolution).get_fdata()
    return mask, {"WM": wm, "GM": gm, "CSF": np.clip(1 - gm - wm, 0, None)}


#: scikit-learn Ward's figures on these maps at K = 1395 (K/N = 0.02):
#: relative error and largest cluster (benchmarks/tissue_maps.py, on the
#: labels cached in benchmarks/results/quality/ward_cache_real.npz).
WARD_3MM = {"WM": (0.1788, 14569), "CSF": (0.2884, 31195)}


@pytest.mark.parametrize("tissue", ["WM", "CSF"])
def test_every_merge_at_its_ward_cost_on_tissue_maps(monkeypatch, tissue):
    # The white-matter map collapsed into one cluster of 85-95 % of the
    # brain (error 0.97-0.99, 5.5x Ward's) when a work budget let the
    # greedy order merge on stale costs.
    mask, maps = mni_maps(3)
    X = maps[tissue][mask][None]
    spy = WardMergesSpy(monkeypatch)
    k = 1395
    est = ReNA(mask, n_clusters=k, linkage="ward").fit(X)
    check_costs(spy, X)
    ward_error, ward_largest = WARD_3MM[tissue]
    sizes = np.bincount(est.labels_)
    means = np.bincount(est.labels_, weights=X[0]) / sizes
    error = np.linalg.norm(X[0] - means[est.labels_]) / np.linalg.norm(X[0] - X[0].mean())
    assert error <= 1.02 * ward_error
    assert sizes.max() <= 2 * ward_largest


def test_every_merge_at_its_ward_cost_on_thresholded_and_binary_maps(monkeypatch):
    from nilearn.datasets import load_mni152_brain_mask, load_sample_motor_activation_image
    from nilearn.image import load_img

    z = load_img(load_sample_motor_activation_image()).get_fdata()
    mask = np.isfinite(z) & (z != 0)
    thresholded = np.where(np.abs(z) < 3, 0.0, z)[mask][None]
    brain = np.asarray(load_mni152_brain_mask(resolution=3).dataobj) != 0
    box = tuple(slice(i.min(), i.max() + 1) for i in np.nonzero(brain))
    # One axial slab of the brain mask's bounding box, as a 0/1 image.
    slab = brain[box][:, :, 20:30]
    binary = slab.astype(float).reshape(1, -1)
    for X, m in ((thresholded, mask), (binary, np.ones(slab.shape, dtype=bool))):
        spy = WardMergesSpy(monkeypatch)
        ReNA(m, n_clusters=int(0.02 * X.shape[1]), linkage="ward").fit(X)
        check_costs(spy, X)


@pytest.mark.parametrize("fraction", [0.02, 0.05])
def test_binary_mask_in_clusters_of_wards_sizes(fraction):
    # A 0/1 image: its flat regions cost 0 to merge in any order, and Ward's
    # order grows them in clusters of similar sizes. Recording a region's
    # merges in edge order left one cluster of 1,000-2,000x Ward's largest
    # at the cut (the brain mask at 3 mm).
    from nilearn.datasets import load_mni152_brain_mask
    from sklearn.cluster import FeatureAgglomeration
    from sklearn.feature_extraction.image import grid_to_graph

    brain = np.asarray(load_mni152_brain_mask(resolution=3).dataobj) != 0
    box = tuple(slice(i.min(), i.max() + 1) for i in np.nonzero(brain))
    slab = brain[box][:, :, 20:30]
    X = slab.astype(float).reshape(1, -1)
    k = int(fraction * X.shape[1])
    ward = FeatureAgglomeration(n_clusters=k, linkage="ward",
                                connectivity=grid_to_graph(*slab.shape)).fit(X)
    est = ReNA(np.ones(slab.shape, dtype=bool), n_clusters=k, linkage="ward").fit(X)
    assert est.n_clusters_ == k
    largest = np.bincount(est.labels_).max()
    assert largest <= 2 * np.bincount(ward.labels_).max()
    # Every cluster inside one value (the partition costs nothing, as Ward's).
    assert (np.bincount(est.labels_, weights=X[0]) % np.bincount(est.labels_) == 0).all()


def test_a_flat_cube_cut_in_equal_clusters():
    # Identical values everywhere: every merge costs 0, and the cut of the
    # merge tree must still split the cube into clusters of similar sizes.
    X = np.full((2, 16 ** 3), 0.3)
    est = ReNA(np.ones((16,) * 3, dtype=bool), n_clusters=64, linkage="ward").fit(X)
    sizes = np.bincount(est.labels_)
    assert sizes.shape[0] == 64
    assert sizes.max() <= 2 * 16 ** 3 // 64
    assert sizes.min() >= 16 ** 3 // 64 // 4
