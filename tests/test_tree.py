"""ReNA's merge tree (issue 17): ``compute_full_tree=True`` gives every scale
from one fit.

* default linkage: ``labels_at(k) == ReNA(..., n_clusters=k).fit(X).labels_``
  for every k, on random graphs, disconnected ones, tied (quantized) data
  and one feature;
* both linkages: scales are nested; scikit-learn's tree conventions
  (``children_``, ``n_leaves_``, ``n_connected_components_``); scipy's
  linkage matrix cuts as ``labels_at`` does; the same tree from a Dask
  array as in memory;
* ``linkage="ward"``: the tree's scale k is the fit to k without its
  boundary refinement (``max_refine_iter=0``; refined, the fit to k), and
  heights grow towards the root;
* with refinement (issue 26): ``labels_at(n_clusters) == labels_``, the
  refined partition, and the other scales stay the tree's nested cuts.
"""

import numpy as np
import pytest
from helpers import random_mask, refined_as_a_ward_fit
from scipy import sparse
from scipy.cluster.hierarchy import dendrogram, fcluster
from scipy.ndimage import gaussian_filter
from sklearn.exceptions import NotFittedError
from sklearn.metrics import adjusted_rand_score

from fastrena import ReNA, to_linkage_matrix


def quantized(rng, n_samples, n_features, levels=None):
    X = rng.standard_normal((n_samples, n_features))
    return np.round(X * levels) / levels if levels else X


def every_k(n):
    ks = sorted({1, 2, 3, n // 7 + 1, n // 3 + 1, n // 2, n - 1, n} - {0})
    return [k for k in ks if 1 <= k <= n]


# Random masks are often split: fits below their component count warn.
@pytest.mark.filterwarnings("ignore:The feature graph has")
@pytest.mark.parametrize("seed", range(12))
def test_labels_at_k_equals_a_fit_to_k(seed):
    rng = np.random.RandomState(seed)
    shape = (rng.randint(2, 9), rng.randint(2, 9), rng.randint(1, 6))
    mask = random_mask(rng, shape, 0.4 + 0.6 * rng.rand())  # often disconnected
    n = int(mask.sum())
    X = quantized(np.random.default_rng(seed), rng.randint(1, 5), n,
                  levels=[None, 2, 10][seed % 3])
    full = ReNA(mask, n_clusters=max(1, n // 4), n_iter=1000, compute_full_tree=True).fit(X)
    for k in every_k(n):
        fit = ReNA(mask, n_clusters=k, n_iter=1000).fit(X)
        np.testing.assert_array_equal(full.labels_at(k), fit.labels_)
    np.testing.assert_array_equal(full.labels_, full.labels_at(max(1, n // 4)))


def structure_checks(rena, n_features):
    children = rena.children_
    n_roots = rena.n_connected_components_
    assert rena.n_leaves_ == n_features
    assert children.shape == (n_features - n_roots, 2)
    # Every node but the roots is a child exactly once; merge i's children
    # were made before it.
    nodes = np.sort(children.ravel())
    assert np.unique(nodes).shape[0] == nodes.shape[0]
    assert (children.max(axis=1) < n_features + np.arange(children.shape[0])).all()
    all_nodes = np.arange(n_features + children.shape[0])
    roots = np.setdiff1d(all_nodes, nodes)
    assert roots.shape[0] == n_roots


@pytest.mark.parametrize("linkage", ["nilearn", "ward"])
def test_tree_conventions_nesting_and_linkage_matrix(linkage):
    rng = np.random.default_rng(4)
    mask = np.ones((7, 8, 6), dtype=bool)
    mask[3] = False  # two components
    n = int(mask.sum())
    X = rng.standard_normal((6, n))
    # The tree's cuts are nested; the refined labels_ (the default after
    # "ward") are not, and are tested below.
    rena = ReNA(mask, n_clusters=20, linkage=linkage, compute_full_tree=True,
                max_refine_iter=0).fit(X)
    structure_checks(rena, n)
    assert rena.n_connected_components_ == 2
    scales = [1, 2, 3, 10, 20, 50, 100, n]
    with pytest.warns(UserWarning, match="has 2 connected components, more than n_clusters=1"):
        partitions = [rena.labels_at(k) for k in scales]
    assert [int(p.max()) + 1 for p in partitions] == [2, 2, 3, 10, 20, 50, 100, n]
    for coarse, fine in zip(partitions, partitions[1:]):
        # Nested: each cluster of the finer scale lies inside one coarser.
        pairs = np.unique(np.column_stack([fine, coarse]), axis=0)
        assert np.unique(pairs[:, 0]).shape[0] == pairs.shape[0]
    Z = to_linkage_matrix(rena)
    assert Z.shape == (n - 1, 4) and (np.diff(Z[:, 2]) > 0).all()
    assert Z[-1, 3] == n
    for k, partition in zip(scales[1:], partitions[1:]):
        assert adjusted_rand_score(fcluster(Z, k, criterion="maxclust"), partition) == 1.0
    assert len(dendrogram(Z, no_plot=True)["leaves"]) == n
    X_red = rena.transform(X, n_clusters=10)
    assert X_red.shape == (6, 10)
    back = rena.inverse_transform(X_red, n_clusters=10)
    labels = rena.labels_at(10)
    np.testing.assert_allclose(back, X_red[:, labels])
    np.testing.assert_allclose(X_red[:, 0], X[:, labels == 0].mean(axis=1))


@pytest.mark.parametrize("data", ["smooth, 8 samples", "one map", "rounded map", "star"])
def test_ward_scales_are_fits_to_them(data):
    """With "ward" every fit runs its merges to the end and takes the
    tree's cut: the tree's scale k is the fit to k, on multi-sample data
    (rounds), single maps (rounds, then Ward's greedy order with its
    inversions), tied data and a hub; the tree's heights never decrease
    from a merge to the merge it is part of."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(5)
    mask = np.ones((14, 15, 13), dtype=bool)
    graph = {"mask_img": mask}
    if data == "smooth, 8 samples":
        X = np.stack([gaussian_filter(rng.standard_normal(mask.shape), 1.5)[mask]
                      for _ in range(8)])
    elif data == "star":
        n = 2000
        A = sparse.coo_matrix((np.ones(n - 1), (np.zeros(n - 1, dtype=int), np.arange(1, n))),
                              shape=(n, n))
        graph = {"connectivity": A + A.T}
        X = rng.standard_normal((1, n))
    else:
        X = gaussian_filter(rng.standard_normal(mask.shape), 1.5)[mask][None]
        if data == "rounded map":
            X = np.round(X * 8)
    full = ReNA(n_clusters=30, linkage="ward", compute_full_tree=True, **graph).fit(X)
    Z = to_linkage_matrix(full)
    n = X.shape[1]
    heights = np.concatenate([np.zeros(n), Z[:, 2]])
    assert (Z[:, 2] >= heights[Z[:, 0].astype(int)]).all()
    assert (Z[:, 2] >= heights[Z[:, 1].astype(int)]).all()
    for k in (15, 30, 60, 250, 900):
        fit = ReNA(n_clusters=k, linkage="ward", max_refine_iter=0, **graph).fit(X)
        labels = full.labels_at(k)
        if k == 30:
            # The fit's own scale: its refined labels_.
            np.testing.assert_array_equal(labels, full.labels_)
            labels = ReNA(n_clusters=30, linkage="ward", compute_full_tree=True,
                          max_refine_iter=0, **graph).fit(X).labels_at(30)
        np.testing.assert_array_equal(labels, fit.labels_)
        refined = ReNA(n_clusters=k, linkage="ward", **graph).fit(X)
        unrefined = ReNA(n_clusters=k, linkage="ward", max_refine_iter=0,
                         compute_full_tree=True, **graph).fit(X)
        np.testing.assert_array_equal(
            refined_as_a_ward_fit(X, full.layout_.graph, unrefined.labels_at,
                                  unrefined.n_clusters_), refined.labels_)


@pytest.mark.parametrize("linkage", ["nilearn", "ward"])
def test_refined_labels_are_the_fit_scale_and_the_other_scales_the_cuts(linkage):
    """labels_at(n_clusters) is labels_ (refined: not nested in the other
    scales), every other scale the tree's cut, which fcluster gives."""
    rng = np.random.default_rng(4)
    mask = np.ones((9, 8, 7), dtype=bool)
    X = gaussian_filter(rng.standard_normal((3,) + mask.shape), (0, 1, 1, 1)).reshape(3, -1)
    rena = ReNA(mask, n_clusters=40, linkage=linkage, compute_full_tree=True,
                max_refine_iter=3).fit(X)
    plain = ReNA(mask, n_clusters=40, linkage=linkage, compute_full_tree=True,
                 max_refine_iter=0).fit(X)
    assert rena.n_refine_iter_ > 0
    np.testing.assert_array_equal(rena.labels_at(40), rena.labels_)
    assert not np.array_equal(rena.labels_, plain.labels_)
    Z = to_linkage_matrix(rena)
    for k in (10, 39, 41, 100):
        np.testing.assert_array_equal(rena.labels_at(k), plain.labels_at(k))
        assert adjusted_rand_score(fcluster(Z, k, criterion="maxclust"),
                                   rena.labels_at(k)) == 1.0
    assert adjusted_rand_score(fcluster(Z, 40, criterion="maxclust"), plain.labels_) == 1.0


@pytest.mark.filterwarnings("ignore:The feature graph has")
def test_one_feature_and_no_edge():
    X = np.array([[1.0], [2.0]])
    rena = ReNA(n_clusters=1, compute_full_tree=True).fit(X)
    assert rena.children_.shape == (0, 2) and rena.n_connected_components_ == 1
    # More clusters than features, or fewer than the components: warned,
    # as a fit to that many warns.
    with pytest.warns(UserWarning, match=r"^n_clusters=5 is larger than the number of "
                                         r"features \(1\); using n_clusters=1$") as record:
        np.testing.assert_array_equal(rena.labels_at(5), [0])
        # Through transform and inverse_transform too, each warning at the
        # caller's line.
        rena.transform(X, n_clusters=5)
        rena.inverse_transform(np.ones((2, 1)), n_clusters=5)
        import dask.array as da

        rena.inverse_transform(da.ones((2, 1)), n_clusters=5)
    assert [w.filename for w in record] == [__file__] * 4
    assert to_linkage_matrix(rena).shape == (0, 4)
    isolated = ReNA(connectivity=sparse.csr_matrix((3, 3)), n_clusters=1,
                    compute_full_tree=True).fit(np.ones((2, 3)))
    assert isolated.children_.shape == (0, 2) and isolated.n_connected_components_ == 3
    with pytest.warns(UserWarning, match=r"^The feature graph has 3 connected components, "
                                         r"more than n_clusters=1: clusters never span two "
                                         r"components, so 3 clusters are returned$"):
        np.testing.assert_array_equal(isolated.labels_at(1), [0, 1, 2])
    Z = to_linkage_matrix(isolated)
    np.testing.assert_array_equal(Z, [[0, 1, 1, 2], [2, 3, 2, 3]])


@pytest.mark.parametrize("linkage", ["nilearn", "ward"])
def test_inverse_transform_reads_the_scale_from_the_width(linkage):
    """Issue 28, item 6: docs/merge_tree.md's ``inverse_transform(X_100)`` after
    ``transform(X, n_clusters=100)``, without ``n_clusters`` again."""
    mask = np.ones((6, 6, 5), dtype=bool)
    X = np.random.default_rng(3).standard_normal((4, 180))
    rena = ReNA(mask, n_clusters=40, linkage=linkage, compute_full_tree=True).fit(X)
    X_10 = rena.transform(X, n_clusters=10)
    back = rena.inverse_transform(X_10)
    np.testing.assert_array_equal(back, rena.inverse_transform(X_10, n_clusters=10))
    np.testing.assert_array_equal(back, X_10[:, rena.labels_at(10)])
    np.testing.assert_array_equal(rena.inverse_transform(X_10[1]), back[1])
    # Its own width is labels_'s scale; one per feature is the tree's finest.
    np.testing.assert_array_equal(rena.inverse_transform(rena.transform(X)),
                                  rena.transform(X)[:, rena.labels_])
    np.testing.assert_array_equal(rena.inverse_transform(X), X)
    with pytest.raises(ValueError, match=r"^X_red has 181 columns but this ReNA has "
                                         r"n_clusters_=40, and the scales of its merge tree "
                                         r"have 1 to 180 clusters; give X_red one column per "
                                         r"cluster of one of them$"):
        rena.inverse_transform(np.ones((2, 181)))
    with pytest.raises(ValueError, match=r"^X_red has 10 columns but this ReNA has 12 "
                                         r"clusters at n_clusters=12; they must be equal$"):
        rena.inverse_transform(X_10, n_clusters=12)


def test_inverse_transform_reads_the_scale_of_a_dask_x_red():
    da = pytest.importorskip("dask.array")
    mask = np.ones((6, 6, 5), dtype=bool)
    X = np.random.default_rng(3).standard_normal((4, 180))
    rena = ReNA(mask, n_clusters=40, compute_full_tree=True).fit(X)
    X_10 = rena.transform(X, n_clusters=10)
    lazy = rena.inverse_transform(da.from_array(X_10, chunks=(2, 10)))
    np.testing.assert_array_equal(lazy.compute(), X_10[:, rena.labels_at(10)])


def test_inverse_transform_of_another_width_without_the_tree_says_what_to_pass():
    mask = np.ones((6, 6, 5), dtype=bool)
    X = np.random.default_rng(3).standard_normal((4, 180))
    rena = ReNA(mask, n_clusters=40).fit(X)
    with pytest.raises(ValueError, match=r"^X_red has 10 columns but this ReNA has "
                                         r"n_clusters_=40; they must be equal \(for X_red "
                                         r"from transform\(X, n_clusters=10\), fit with "
                                         r"compute_full_tree=True and pass n_clusters=10 to "
                                         r"inverse_transform too\)$"):
        rena.inverse_transform(np.ones((4, 10)))


def test_a_fit_without_the_tree_says_how_to_get_it():
    rena = ReNA(n_clusters=2).fit(np.arange(8.0)[None, :])
    assert not hasattr(rena, "children_")
    with pytest.raises(NotFittedError, match="fit it with compute_full_tree=True"):
        rena.labels_at(3)
    with pytest.raises(NotFittedError, match="fit it with compute_full_tree=True"):
        to_linkage_matrix(rena)
    with pytest.raises(ValueError, match="n_clusters must be an integer >= 1, got 0"):
        ReNA(n_clusters=2, compute_full_tree=True).fit(np.arange(8.0)[None, :]).labels_at(0)
    # A refit without the tree drops the previous tree.
    rena.set_params(compute_full_tree=True).fit(np.arange(8.0)[None, :])
    assert rena.children_.shape == (7, 2)
    rena.set_params(compute_full_tree=False).fit(np.arange(8.0)[None, :])
    assert not hasattr(rena, "children_") and not hasattr(rena, "tree_")


@pytest.mark.parametrize("linkage", ["nilearn", "ward"])
def test_the_same_tree_from_dask(linkage):
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(6)
    mask = np.ones((6, 7, 5), dtype=bool)
    X = rng.standard_normal((130, int(mask.sum())))
    memory = ReNA(mask, n_clusters=9, linkage=linkage, compute_full_tree=True).fit(X)
    lazy = ReNA(mask, n_clusters=9, linkage=linkage, compute_full_tree=True).fit(
        da.from_array(X, chunks=(64, -1)))
    np.testing.assert_array_equal(memory.children_, lazy.children_)
    np.testing.assert_array_equal(memory.tree_.heights, lazy.tree_.heights)
    np.testing.assert_array_equal(memory.labels_, lazy.labels_)


@pytest.mark.filterwarnings("ignore:n_iter=1 levels were not enough")
def test_the_tree_does_not_change_labels_(recwarn):
    """As scikit-learn's compute_full_tree: labels_ are what the fit without
    the tree gives, n_iter included (and it warns alike)."""
    rng = np.random.default_rng(8)
    mask = np.ones((8, 9, 7), dtype=bool)
    X = rng.standard_normal((4, int(mask.sum())))
    plain = ReNA(mask, n_clusters=20, n_iter=1).fit(X)
    with pytest.warns(UserWarning, match="n_iter=1 levels were not enough to reach 20"):
        full = ReNA(mask, n_clusters=20, n_iter=1, compute_full_tree=True).fit(X)
    np.testing.assert_array_equal(full.labels_, plain.labels_)
    assert full.n_clusters_ == plain.n_clusters_ > 20
    assert int(full.labels_at(20).max()) + 1 == 20  # the tree itself goes on


@pytest.mark.parametrize("n", [0, 1, 2, 7, 511, 512, 3000])
def test_height_order_is_numpys_stable_argsort(n):
    # The ward tree's merges sorted by height, ties in recording order:
    # a radix sort of the heights' bits (a merge sort below 512 keys: both
    # sides of that), against numpy's stable sort, on
    # heights spanning many exponents, tied ones, and zeros of both signs.
    from fastrena import _kernels

    rng = np.random.default_rng(n)
    spread = rng.random(n) * 10.0 ** rng.integers(-300, 300, n)
    tied = np.round(rng.random(n), 1)
    zeros = np.where(rng.random(n) < 0.3, 2.5, np.where(rng.random(n) < 0.5, 0.0, -0.0))
    assert n < 7 or np.signbit(zeros).any()
    # Heights apart only in their last 12 bits (the first passes' digits).
    close = 1.0 + rng.integers(0, 1 << 12, n) * 2.0 ** -52
    for heights in (spread, tied, zeros, close, np.zeros(n), np.concatenate([tied, spread])):
        np.testing.assert_array_equal(_kernels.order_by_height(heights),
                                      np.argsort(heights, kind="stable"))
