"""Agreement of fastrena.ReNA with nilearn.regions.ReNA on volumes.

What is checked (docs/design.md sections 2-5):

* no pruning (``n_clusters=1``, small ``n_iter``): the partitions are equal
  to nilearn's, on nilearn's bundled 4 mm MNI mask and on small random masks
  without isolated voxels;
* with pruning (``n_clusters`` reached): adjusted Rand index >= 0.9, both
  reach exactly K, approximation error within 1% of nilearn's;
* ``transform`` / ``inverse_transform`` against direct numpy computations;
* the places where fastrena deliberately differs from nilearn (section 4),
  asserted on fastrena's side only.
"""

import warnings

import nibabel as nib
import numpy as np
import pytest
from nilearn import datasets
from nilearn.regions import ReNA as NilearnReNA
from scipy import ndimage, sparse

from fastrena import ReNA

from helpers import (
    assert_close_to_nilearn,
    assert_clusters_connected,
    assert_same_partition,
    expected_shortfall_messages,
    first_appearance,
    fit_recording,
)

FACE = ndimage.generate_binary_structure(3, 1)


# --------------------------------------------------------------------------
# helpers (independent of fastrena's own code)
# --------------------------------------------------------------------------
def lattice_adjacency(mask):
    """6-connectivity adjacency of the in-mask voxels (C order), built here
    independently of fastrena.graphs."""
    ids = np.full(mask.shape, -1, dtype=np.int64)
    ids[mask] = np.arange(int(mask.sum()))
    rows, cols = [], []
    for axis in range(3):
        a = np.moveaxis(ids, axis, 0)
        lo, hi = a[:-1].ravel(), a[1:].ravel()
        both = (lo >= 0) & (hi >= 0)
        rows.append(lo[both])
        cols.append(hi[both])
    rows = np.concatenate(rows)
    cols = np.concatenate(cols)
    n = int(mask.sum())
    adj = sparse.coo_matrix((np.ones(rows.size), (rows, cols)), shape=(n, n))
    return (adj + adj.T).tocsr()


def smooth_data(mask, n_samples, seed, sigma=2.0):
    """White noise smoothed over the grid, taken in the mask, unit std."""
    rng = np.random.default_rng(seed)
    X = np.stack([
        ndimage.gaussian_filter(rng.standard_normal(mask.shape), sigma)[mask]
        for _ in range(n_samples)
    ])
    return X / X.std()


def blob_mask(shape, seed, quantile, largest=False):
    """Threshold a smoothed random field; keep voxels with at least one
    in-mask face neighbour (optionally only the largest component)."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.standard_normal(shape), 2.0)
    mask = field > np.quantile(field, quantile)
    if largest:
        lab, _ = ndimage.label(mask, FACE)
        mask = lab == np.argmax(np.bincount(lab.ravel())[1:]) + 1
    return mask & (n_face_neighbours(mask) > 0)


def n_face_neighbours(mask):
    m = mask.astype(np.int64)
    return ndimage.convolve(m, FACE.astype(np.int64), mode="constant") - m


def mask_n_components(mask):
    return ndimage.label(mask, FACE)[1]


def nifti(mask):
    return nib.Nifti1Image(mask.astype(np.uint8), np.eye(4))


def largest_mask_component(mask):
    """Number of voxels in the largest face-connected component of ``mask``
    (the mask-based twin of helpers.largest_component)."""
    labelled, _ = ndimage.label(mask)
    return int(np.bincount(labelled.ravel())[1:].max())


def cluster_means_and_sizes(X, labels, n_clusters):
    """Per-cluster means with np.bincount, in float64."""
    X = np.asarray(X, dtype=np.float64)
    sizes = np.bincount(labels, minlength=n_clusters).astype(np.float64)
    sums = np.stack([np.bincount(labels, weights=row, minlength=n_clusters) for row in X])
    return sums / sizes, sizes


# --------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mni():
    img = datasets.load_mni152_brain_mask(resolution=4)
    mask = np.asarray(img.dataobj) != 0
    # preconditions of the exact-agreement claim: no isolated voxel
    assert mask.sum() == 29398
    assert not (mask & (n_face_neighbours(mask) == 0)).any()
    return img, mask


@pytest.fixture(scope="module")
def mni_data(mni):
    return smooth_data(mni[1], 10, seed=0)


SMALL_MASKS = {
    # name: (shape, seed, quantile, n_samples)
    "connected-12x14x10": ((12, 14, 10), 0, 0.5, 5),
    "box-9x16x11-two-samples": ((9, 16, 11), 1, 0.5, 2),
    "disconnected-15x15x15": ((15, 15, 15), 2, 0.75, 13),
    "disconnected-20x8x12": ((20, 8, 12), 3, 0.7, 17),
}


@pytest.fixture(scope="module", params=sorted(SMALL_MASKS))
def small_case(request):
    shape, seed, quantile, n_samples = SMALL_MASKS[request.param]
    mask = blob_mask(shape, seed, quantile)
    assert not (mask & (n_face_neighbours(mask) == 0)).any()
    X = smooth_data(mask, n_samples, seed=100 + seed)
    return request.param, mask, X


@pytest.fixture(scope="module")
def medium():
    """A connected random mask of 11232 voxels, smaller than the MNI mask."""
    mask = blob_mask((30, 26, 24), 7, 0.4, largest=True)
    assert mask.sum() == 11232 and mask_n_components(mask) == 1
    return mask, smooth_data(mask, 10, seed=7)


# --------------------------------------------------------------------------
# no pruning: equal partitions
# --------------------------------------------------------------------------
@pytest.mark.parametrize("n_iter", [1, 2, 3])
def test_no_pruning_equals_nilearn_on_mni_mask(mni, mni_data, n_iter):
    img, mask = mni
    X = mni_data
    ref = NilearnReNA(img, n_clusters=1, n_iter=n_iter).fit(X)
    fast = ReNA(img, n_clusters=1, n_iter=n_iter)
    messages, others = fit_recording(fast, X)
    assert others == []

    assert fast.n_clusters_ == ref.n_clusters_
    assert fast.n_clusters_ == {1: 7872, 2: 2161, 3: 590}[n_iter]
    assert_same_partition(fast.labels_, ref.labels_)
    assert messages == expected_shortfall_messages(
        largest_mask_component(mask), 1, 1, n_iter, fast.n_clusters_)
    np.testing.assert_array_equal(fast.sizes_, np.bincount(fast.labels_))
    np.testing.assert_array_equal(np.sort(fast.sizes_), np.sort(ref.sizes_))
    assert_clusters_connected(fast.labels_, lattice_adjacency(mask))

    # the boolean array gives the same graph as the image
    with pytest.warns(UserWarning, match=f"n_iter={n_iter} levels were not enough"):
        from_array = ReNA(mask, n_clusters=1, n_iter=n_iter).fit(X)
    np.testing.assert_array_equal(from_array.labels_, fast.labels_)


def test_no_pruning_transform_equals_nilearn_after_relabelling(mni, mni_data):
    img, _ = mni
    X = mni_data
    ref = NilearnReNA(img, n_clusters=1, n_iter=3, scaling=True).fit(X)
    with pytest.warns(UserWarning, match="n_iter=3 levels were not enough"):
        fast = ReNA(img, n_clusters=1, n_iter=3, scaling=True).fit(X)
    assert_same_partition(fast.labels_, ref.labels_)
    # nilearn's columns follow sorted nilearn labels; map them to fastrena's
    ref_values = np.unique(ref.labels_)
    first_index = np.array([np.flatnonzero(ref.labels_ == v)[0] for v in ref_values])
    to_fast = fast.labels_[first_index]
    X_red_fast = fast.transform(X)
    X_red_ref = ref.transform(X)
    np.testing.assert_allclose(X_red_fast[:, to_fast], X_red_ref, rtol=1e-10, atol=1e-13)
    np.testing.assert_array_equal(fast.sizes_[to_fast], ref.sizes_)
    np.testing.assert_allclose(fast.inverse_transform(X_red_fast),
                               ref.inverse_transform(X_red_ref), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("n_iter", [1, 2, 3])
def test_no_pruning_equals_nilearn_on_small_masks(small_case, n_iter):
    name, mask, X = small_case
    n_comp = mask_n_components(mask)
    if name.startswith("disconnected"):
        assert n_comp > 1
    else:
        assert n_comp == 1
    ref = NilearnReNA(nifti(mask), n_clusters=1, n_iter=n_iter).fit(X)
    fast = ReNA(mask, n_clusters=1, n_iter=n_iter)
    messages, others = fit_recording(fast, X)
    assert others == []
    assert fast.n_clusters_ == ref.n_clusters_
    assert_same_partition(fast.labels_, ref.labels_)
    assert messages == expected_shortfall_messages(
        largest_mask_component(mask), n_comp, 1, n_iter, fast.n_clusters_)
    assert_clusters_connected(fast.labels_, lattice_adjacency(mask))
    # the nibabel image and the boolean array are the same mask
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        from_image = ReNA(nifti(mask), n_clusters=1, n_iter=n_iter).fit(X)
    np.testing.assert_array_equal(from_image.labels_, fast.labels_)
    # the memory layout of X does not matter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        from_fortran = ReNA(mask, n_clusters=1, n_iter=n_iter).fit(np.asfortranarray(X))
    np.testing.assert_array_equal(from_fortran.labels_, fast.labels_)


# --------------------------------------------------------------------------
# with pruning: close to nilearn
# --------------------------------------------------------------------------
def _pruning_case(mask_img, mask, X, k):
    ref = NilearnReNA(mask_img, n_clusters=k).fit(X)
    fast = ReNA(mask_img, n_clusters=k)
    messages, others = fit_recording(fast, X)
    assert messages == [] and others == []
    assert ref.n_clusters_ == k
    assert fast.n_clusters_ == k
    assert fast.labels_.max() == k - 1
    assert np.all(fast.sizes_ > 0) and fast.sizes_.sum() == mask.sum()
    assert_close_to_nilearn(fast, ref, X)
    assert_clusters_connected(fast.labels_, lattice_adjacency(mask))


@pytest.mark.parametrize("k", [10, 100, 1000])
def test_pruning_close_to_nilearn_on_mni_mask(mni, mni_data, k):
    img, mask = mni
    _pruning_case(img, mask, mni_data, k)


@pytest.mark.parametrize("k", [10, 100, 1000])
def test_pruning_close_to_nilearn_on_smaller_mask(medium, k):
    mask, X = medium
    _pruning_case(nifti(mask), mask, X, k)


# --------------------------------------------------------------------------
# transform / inverse_transform against numpy
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fitted_mni_labels(mni, mni_data):
    img, _ = mni
    return ReNA(img, n_clusters=1000).fit(mni_data).labels_


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("scaling", [False, True])
def test_transform_matches_numpy(mni, mni_data, dtype, rtol, scaling):
    img, _ = mni
    X = mni_data.astype(dtype)
    fast = ReNA(img, n_clusters=1000, scaling=scaling).fit(X)
    assert fast.n_clusters_ == 1000
    X_red = fast.transform(X)
    assert X_red.dtype == dtype
    assert X_red.shape == (X.shape[0], 1000)

    means, sizes = cluster_means_and_sizes(X, fast.labels_, 1000)
    np.testing.assert_array_equal(fast.sizes_, sizes.astype(np.int64))
    expected = means * np.sqrt(sizes) if scaling else means
    np.testing.assert_allclose(X_red, expected, rtol=rtol, atol=0)
    if dtype == np.float32:
        # and close to the computation on the original float64 data
        ref64, _ = cluster_means_and_sizes(mni_data, fast.labels_, 1000)
        ref64 = ref64 * np.sqrt(sizes) if scaling else ref64
        np.testing.assert_allclose(X_red, ref64, rtol=1e-5, atol=1e-6)

    X_back = fast.inverse_transform(X_red)
    assert X_back.dtype == dtype
    assert X_back.shape == X.shape
    red64 = X_red.astype(np.float64)
    expected_back = (red64 / np.sqrt(sizes) if scaling else red64)[:, fast.labels_]
    np.testing.assert_allclose(X_back, expected_back, rtol=rtol, atol=0)
    # inverse(transform(X)) is the cluster mean for each feature, scaled or not
    np.testing.assert_allclose(X_back, means[:, fast.labels_], rtol=10 * rtol, atol=0)


def test_transform_matches_explicit_loop_on_small_mask(small_case):
    _, mask, X = small_case
    fast = ReNA(mask, n_clusters=7, n_iter=20).fit(X)
    n_comp = mask_n_components(mask)
    assert fast.n_clusters_ == max(7, n_comp)
    X_red = fast.transform(X)
    for c in range(fast.n_clusters_):
        members = fast.labels_ == c
        assert members.sum() == fast.sizes_[c] > 0
        np.testing.assert_allclose(X_red[:, c], X[:, members].mean(axis=1), rtol=1e-12)
    # single-sample rows and 1-D inverse input
    np.testing.assert_allclose(fast.transform(X[:1]), X_red[:1], rtol=0, atol=0)
    np.testing.assert_array_equal(fast.inverse_transform(X_red[0]),
                                  fast.inverse_transform(X_red)[0])


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("scaling", [False, True])
def test_inverse_transform_of_transform_is_orthogonal_projection(
        mni, mni_data, fitted_mni_labels, dtype, tol, scaling):
    img, _ = mni
    X = mni_data.astype(dtype)
    fast = ReNA(img, n_clusters=1000, scaling=scaling).fit(X)
    if dtype == np.float64:
        # scaling changes transform only, never the clustering
        np.testing.assert_array_equal(fast.labels_, fitted_mni_labels)
    labels = fast.labels_
    P = fast.inverse_transform(fast.transform(X))
    assert P.dtype == dtype
    # idempotent
    PP = fast.inverse_transform(fast.transform(P))
    np.testing.assert_allclose(PP, P, rtol=0, atol=tol * np.abs(P).max())
    # P is piecewise constant
    for row in P[:3]:
        lo = np.full(1000, np.inf)
        hi = np.full(1000, -np.inf)
        np.minimum.at(lo, labels, row)
        np.maximum.at(hi, labels, row)
        np.testing.assert_array_equal(lo, hi)
    # the residual is orthogonal to every piecewise-constant signal:
    # its sum over each cluster vanishes ...
    R = X.astype(np.float64) - P.astype(np.float64)
    scale = np.stack([np.bincount(labels, weights=np.abs(r), minlength=1000)
                      for r in X.astype(np.float64)])
    sums = np.stack([np.bincount(labels, weights=r, minlength=1000) for r in R])
    assert np.all(np.abs(sums) <= tol * scale)
    # ... and its cosine with random piecewise-constant signals is ~0
    rng = np.random.default_rng(3)
    pc = rng.standard_normal((4, 1000))[:, labels]
    cosine = (R @ pc.T) / np.outer(np.linalg.norm(R, axis=1), np.linalg.norm(pc, axis=1))
    assert np.all(np.abs(cosine) <= tol)
    # so P is the best piecewise-constant approximation
    P64 = P.astype(np.float64)
    for shift in (1e-2 * pc[0], -1e-2 * pc[1]):
        assert np.linalg.norm(X - (P64 + shift)) > np.linalg.norm(X - P64)


def test_scaled_transform_preserves_norm_of_piecewise_constant_signals(mni, mni_data):
    img, _ = mni
    fast = ReNA(img, n_clusters=1000, scaling=True).fit(mni_data)
    rng = np.random.default_rng(4)
    Y = rng.standard_normal((3, 1000))[:, fast.labels_]
    Y_red = fast.transform(Y)
    np.testing.assert_allclose(np.linalg.norm(Y_red, axis=1), np.linalg.norm(Y, axis=1),
                               rtol=1e-12)
    np.testing.assert_allclose(fast.inverse_transform(Y_red), Y, rtol=1e-12)


# --------------------------------------------------------------------------
# where fastrena deliberately differs from nilearn (docs/design.md section 4)
# --------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 2, 7, 50, 400])
@pytest.mark.parametrize("n_iter", [1, 10])
def test_constant_data_merges_to_exactly_k(k, n_iter):
    mask = blob_mask((12, 14, 10), 0, 0.5)
    assert mask_n_components(mask) == 1
    X = np.full((3, int(mask.sum())), 2.5)
    fast = ReNA(mask, n_clusters=k, n_iter=n_iter)
    messages, others = fit_recording(fast, X)
    assert messages == [] and others == []
    # nilearn drops weight-0 edges and returns n_clusters_ = N here
    assert fast.n_clusters_ == k
    np.testing.assert_array_equal(np.unique(fast.labels_), np.arange(k))
    assert_clusters_connected(fast.labels_, lattice_adjacency(mask))
    np.testing.assert_allclose(fast.transform(X), np.full((3, k), 2.5), rtol=1e-15)


def test_flat_regions_are_recovered_exactly():
    """Two flat halves of a box (zero-padded data): weight-0 edges are the
    strongest, so one level finds exactly the two halves."""
    mask = np.ones((8, 9, 10), dtype=bool)
    grid = np.zeros(mask.shape)
    grid[4:] = 1.0
    X = np.stack([grid[mask] * 3.0, np.zeros(mask.sum())])
    fast = ReNA(mask, n_clusters=2, n_iter=1).fit(X)
    assert fast.n_clusters_ == 2
    np.testing.assert_array_equal(fast.labels_, (grid[mask] > 0).astype(np.int64))
    np.testing.assert_array_equal(fast.sizes_, [360, 360])


@pytest.fixture(scope="module")
def isolated_case():
    """The medium connected mask plus one in-mask voxel with no in-mask
    neighbour, placed in the middle of the C order of the voxels."""
    blob = blob_mask((30, 26, 24), 7, 0.4, largest=True)
    candidates = np.argwhere(~blob & (n_face_neighbours(blob) == 0))
    # number of blob voxels before each candidate in C order
    before = (np.cumsum(blob.ravel()) - blob.ravel()).reshape(blob.shape)
    position = before[tuple(candidates.T)]
    pick = tuple(candidates[np.argmin(np.abs(position - blob.sum() / 2))])
    full = blob.copy()
    full[pick] = True
    assert n_face_neighbours(full)[pick] == 0
    iso_column = int(before[pick])
    assert np.flatnonzero(full.ravel())[iso_column] == np.ravel_multi_index(pick, full.shape)
    assert 0.4 * full.sum() < iso_column < 0.6 * full.sum()
    grid_data = np.random.default_rng(11).standard_normal((10,) + full.shape)
    grid_data = np.stack([ndimage.gaussian_filter(g, 2.0) for g in grid_data])
    X_full = grid_data[:, full]
    X_full /= X_full.std()
    keep = np.ones(full.sum(), dtype=bool)
    keep[iso_column] = False
    return full, blob, X_full, iso_column, keep


def test_isolated_voxel_is_its_own_cluster_and_the_rest_is_unaffected(isolated_case):
    full, blob, X_full, iso, keep = isolated_case
    X_blob = X_full[:, keep]
    n_iter = 2

    fast = ReNA(full, n_clusters=1, n_iter=n_iter)
    messages, others = fit_recording(fast, X_full)
    assert others == []
    alone = ReNA(blob, n_clusters=1, n_iter=n_iter)
    fit_recording(alone, X_blob)
    ref = NilearnReNA(nifti(blob), n_clusters=1, n_iter=n_iter).fit(X_blob)

    # the isolated voxel is a cluster of its own
    assert np.sum(fast.labels_ == fast.labels_[iso]) == 1
    # the other voxels are clustered as if it were not in the mask
    assert fast.n_clusters_ == alone.n_clusters_ + 1
    assert_same_partition(first_appearance(fast.labels_[keep]), alone.labels_)
    assert_same_partition(first_appearance(fast.labels_[keep]), ref.labels_)
    assert messages == expected_shortfall_messages(
        largest_mask_component(full), 2, 1, n_iter, fast.n_clusters_)


@pytest.mark.parametrize("k", [2, 40])
def test_isolated_voxel_with_k_reached(isolated_case, k):
    full, blob, X_full, iso, keep = isolated_case
    fast = ReNA(full, n_clusters=k)
    messages, others = fit_recording(fast, X_full)
    assert messages == [] and others == []
    assert fast.n_clusters_ == k
    assert fast.sizes_[fast.labels_[iso]] == 1
    assert_clusters_connected(fast.labels_, lattice_adjacency(full))
    if k == 2:
        expected = np.zeros(full.sum(), dtype=np.int64)
        expected[iso] = 1
        np.testing.assert_array_equal(fast.labels_, expected)


def test_isolated_voxel_gets_one_cluster_with_too_small_k(isolated_case):
    full, _, X_full, iso, _ = isolated_case
    with pytest.warns(UserWarning) as record:
        fast = ReNA(full, n_clusters=1).fit(X_full)
    messages = [str(w.message) for w in record]
    assert messages == [
        "The feature graph has 2 connected components, more than n_clusters=1: "
        "clusters never span two components, so at least 2 clusters are returned"]
    assert fast.n_clusters_ == 2
    assert fast.n_clusters == 1
    np.testing.assert_array_equal(fast.labels_ == fast.labels_[iso],
                                  np.arange(full.sum()) == iso)


def test_n_clusters_larger_than_n_features_is_not_modified():
    mask = blob_mask((9, 16, 11), 1, 0.5)
    n = int(mask.sum())
    X = smooth_data(mask, 4, seed=5)
    fast = ReNA(mask, n_clusters=n + 5)
    with pytest.warns(UserWarning) as record:
        fast.fit(X)
    assert [str(w.message) for w in record] == [
        f"n_clusters={n + 5} is larger than the number of features ({n}); "
        f"using n_clusters={n}"]
    assert fast.n_clusters == n + 5
    assert fast.get_params()["n_clusters"] == n + 5
    assert fast.n_clusters_ == n
    np.testing.assert_array_equal(fast.labels_, np.arange(n))
    np.testing.assert_array_equal(fast.sizes_, np.ones(n, dtype=np.int64))
    np.testing.assert_allclose(fast.transform(X), X, rtol=0, atol=0)
    # refitting is the same (the parameter was left alone)
    with pytest.warns(UserWarning, match=f"n_clusters={n + 5} is larger"):
        fast.fit(X)
    assert fast.n_clusters == n + 5 and fast.n_clusters_ == n


def test_n_clusters_equal_n_features_does_not_warn():
    mask = blob_mask((9, 16, 11), 1, 0.5)
    n = int(mask.sum())
    X = smooth_data(mask, 4, seed=5)
    fast = ReNA(mask, n_clusters=n)
    messages, others = fit_recording(fast, X)
    assert messages == [] and others == []
    assert fast.n_clusters_ == n


@pytest.mark.parametrize("n_iter", [1, 3])
def test_single_sample_matches_nilearn_on_duplicated_sample(mni, mni_data, n_iter):
    """n_samples=1 works; duplicating the sample doubles every weight,
    which changes no decision, and nilearn accepts the duplicated input."""
    img, mask = mni
    X1 = mni_data[:1]
    X2 = np.vstack([X1, X1])
    fast1 = ReNA(img, n_clusters=1, n_iter=n_iter)
    messages1, _ = fit_recording(fast1, X1)
    fast2 = ReNA(img, n_clusters=1, n_iter=n_iter)
    messages2, _ = fit_recording(fast2, X2)
    ref = NilearnReNA(img, n_clusters=1, n_iter=n_iter).fit(X2)
    np.testing.assert_array_equal(fast1.labels_, fast2.labels_)
    assert_same_partition(fast1.labels_, ref.labels_)
    assert messages1 == messages2 == expected_shortfall_messages(
        largest_mask_component(mask), 1, 1, n_iter, fast1.n_clusters_)


def test_single_sample_reaches_k(mni, mni_data):
    img, mask = mni
    X1 = mni_data[:1]
    fast = ReNA(img, n_clusters=100)
    messages, others = fit_recording(fast, X1)
    assert messages == [] and others == []
    assert fast.n_clusters_ == 100
    X_red = fast.transform(X1)
    assert X_red.shape == (1, 100)
    means, _ = cluster_means_and_sizes(X1, fast.labels_, 100)
    np.testing.assert_allclose(X_red, means, rtol=1e-12)
    assert fast.inverse_transform(X_red).shape == (1, mask.sum())
    assert_clusters_connected(fast.labels_, lattice_adjacency(mask))
