"""Numerical edge cases: values whose squares or sums leave float64's range,
subnormals, all-equal data, data that differs only in the last bit.

The defined behaviour (``fastrena.agglomeration.WEIGHT_RANGE``): when the
squared distances would over- or underflow, the signals are multiplied by a
power of two, which is exact. So the labels of ``X * 2**j`` are the labels
of ``X`` for every j that keeps ``X * 2**j`` finite and normal, the weights
the merge rule sees are never NaN or infinite, and transform's means are
right even where their sums would overflow.
"""

import math
import warnings

import dask
import dask.array as da
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

import fastrena.agglomeration as agglomeration
from fastrena import _kernels
from fastrena import ReNA, recursive_neighbor_agglomeration

from helpers import assert_clusters_connected
from helpers import assert_partition, mask_adjacency

MASK = np.ones((7, 8, 6), dtype=bool)


def smooth(n_samples=12, seed=0, dtype=np.float64):
    """Smooth signals on MASK, of magnitude ~1 (no near-ties)."""
    rng = np.random.default_rng(seed)
    X = np.stack([gaussian_filter(rng.standard_normal(MASK.shape), 1.2)[MASK]
                  for _ in range(n_samples)])
    return (X / X.std()).astype(dtype)


def fit_quietly(X, **params):
    """ReNA(MASK, ...).fit(X) with every warning turned into an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return ReNA(MASK, **params).fit(X)


@pytest.fixture
def recorded_weights(monkeypatch):
    """Every weight array the merge rule (either linkage) is given during
    the test."""
    seen = []
    for name in ("nearest_neighbor_edges", "ward_choice"):
        def recording(n_nodes, u, v, weights, *args, choose=getattr(_kernels, name), **kwargs):
            seen.append(np.array(weights))
            return choose(n_nodes, u, v, weights, *args, **kwargs)

        monkeypatch.setattr(_kernels, name, recording)
    return seen


# --------------------------------------------------------------------------
# Invariance to powers of two: the labels of X, however large or small
# --------------------------------------------------------------------------
@pytest.mark.parametrize("linkage", ["nilearn", "ward"])
@pytest.mark.parametrize("seed", [0, 1])
def test_float64_labels_do_not_depend_on_a_power_of_two_factor(linkage, seed):
    X = smooth(seed=seed)
    params = dict(n_clusters=9, n_iter=20, linkage=linkage)
    ref = fit_quietly(X, **params).labels_
    # |X| <= ~5: every multiple below stays finite and normal
    for exponent in (-1010, -800, -600, -520, -300, -100, 100, 300, 520, 600, 800, 1015):
        Xj = np.ldexp(X, exponent)
        np.testing.assert_array_equal(fit_quietly(Xj, **params).labels_, ref,
                                      err_msg=f"X * 2**{exponent}")


@pytest.mark.parametrize("linkage", ["nilearn", "ward"])
def test_float32_labels_do_not_depend_on_a_power_of_two_factor(linkage):
    X = smooth(seed=2, dtype=np.float32)
    params = dict(n_clusters=9, n_iter=20, linkage=linkage)
    ref = fit_quietly(X, **params).labels_
    for exponent in (-120, -60, 60, 120):
        Xj = np.ldexp(X, exponent)
        assert Xj.dtype == np.float32
        np.testing.assert_array_equal(fit_quietly(Xj, **params).labels_, ref)


@pytest.mark.parametrize("factor", [1e-300, 1e-200, 1e-160, 1e160, 1e200, 1e300, 1e307])
def test_decimal_factors_near_the_ends_of_float64_keep_the_labels(factor):
    """Not exact in general (rounding), but these smooth signals have no
    near-ties: before the rescaling, factors beyond 1e150 or below 1e-160
    gave different, arbitrary labels (all weights infinite or zero)."""
    X = smooth(seed=3)
    ref = fit_quietly(X, n_clusters=9).labels_
    np.testing.assert_array_equal(fit_quietly(X * factor, n_clusters=9).labels_, ref)


@pytest.mark.parametrize("exponent", [-1000, 1000])
@pytest.mark.parametrize("limit", [None, 0])  # in memory; every level on disk
def test_dask_fit_of_extreme_values_matches_the_in_memory_fit(exponent, limit, tmp_path):
    X = np.ldexp(smooth(n_samples=130, seed=4), exponent)
    ref = fit_quietly(X, n_clusters=9, n_iter=20)
    config = {"temporary-directory": str(tmp_path)}
    if limit is not None:
        config["fastrena.in-memory-limit"] = limit
    with dask.config.set(config):
        rena = fit_quietly(da.from_array(X, chunks=(64, -1)), n_clusters=9, n_iter=20)
    np.testing.assert_array_equal(rena.labels_, ref.labels_)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------
# What the merge rule sees: never NaN, never infinite
# --------------------------------------------------------------------------
def _huge_constant_component():
    """Two components: a 6x8x6 block holding one huge value everywhere (its
    sums overflow, its own weights are 0) and a 1x8x6 slab of ordinary
    smooth signals, between which no edge runs."""
    mask = np.ones((8, 8, 6), dtype=bool)
    mask[6] = False
    X = np.empty((5, int(mask.sum())))
    block = np.zeros(mask.shape, dtype=bool)
    block[:6] = True
    in_block = block[mask]
    X[:, in_block] = 1.7e308
    X[:, ~in_block] = np.random.default_rng(5).standard_normal((5, int((~in_block).sum())))
    return mask, X


@pytest.mark.parametrize("name, make", [
    ("overflowing squares", lambda: (MASK, smooth(seed=6) * 1e200)),
    ("underflowing squares", lambda: (MASK, smooth(seed=6) * 1e-200)),
    ("half huge, half tiny", lambda: (MASK, np.concatenate(
        [smooth(seed=6)[:, :168] * 1e300, smooth(seed=7)[:, 168:] * 1e-300], axis=1))),
    ("huge constant component", _huge_constant_component),
    ("largest finite values", lambda: (MASK, np.where(smooth(seed=8) > 0, 1.79e308,
                                                      -1.79e308))),
])
@pytest.mark.parametrize("linkage", ["nilearn", "ward"])
def test_weights_stay_finite_and_the_partition_valid(recorded_weights, name, make, linkage):
    mask, X = make()
    N = X.shape[1]
    K = 12
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rena = ReNA(mask, n_clusters=K, n_iter=30, linkage=linkage).fit(X)
        Xt = rena.transform(X)
        Xi = rena.inverse_transform(Xt)
    assert [str(w.message) for w in caught] == []
    assert recorded_weights and all(np.isfinite(w).all() for w in recorded_weights)
    assert all(w.max() <= agglomeration.WEIGHT_RANGE[1] for w in recorded_weights)
    assert_partition(rena.labels_, rena.n_clusters_, N)
    assert_clusters_connected(rena.labels_, mask_adjacency(mask), rena.n_clusters_)
    assert rena.n_clusters_ == K
    assert np.isfinite(Xt).all() and np.isfinite(Xi).all()


# --------------------------------------------------------------------------
# transform: right means where the sums overflow
# --------------------------------------------------------------------------
def test_transform_means_of_values_whose_sums_overflow():
    rng = np.random.default_rng(9)
    X = rng.uniform(1.0, 1.7, (4, 300)) * 1e308  # any two of them overflow
    rena = ReNA(n_clusters=3).fit(rng.standard_normal((2, 300)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Xt = rena.transform(X)
        Xt_lazy = rena.transform(da.from_array(X, chunks=(2, -1))).compute()
    expected = np.stack([(X[:, rena.labels_ == c] / 1000).mean(axis=1) * 1000
                         for c in range(3)], axis=1)
    np.testing.assert_allclose(Xt, expected, rtol=1e-13)
    np.testing.assert_array_equal(Xt_lazy, Xt)


def test_scaled_transform_beyond_float64_is_infinite_without_warning():
    """With scaling=True a cluster's value is its mean times sqrt(size):
    beyond float64's range it is infinite, with the sign of the mean."""
    X = np.full((2, 16), 1.5e308)
    X[1] *= -1
    rena = ReNA(n_clusters=2, scaling=True).fit(np.repeat([[0.0, 5.0]], 8, axis=1))
    assert list(rena.sizes_) == [8, 8]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Xt = rena.transform(X)
        back = rena.inverse_transform(np.full((1, 2), 3.0))
    np.testing.assert_array_equal(Xt, [[np.inf, np.inf], [-np.inf, -np.inf]])
    np.testing.assert_allclose(back, np.full((1, 16), 3.0 / math.sqrt(8)))


# --------------------------------------------------------------------------
# subnormals, all-equal data, the last bit
# --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype, smallest", [(np.float64, 5e-324),
                                             (np.float32, np.float32(1e-45))])
def test_subnormal_data_gives_a_valid_partition(dtype, smallest):
    rng = np.random.default_rng(10)
    X = (rng.integers(0, 4, (3, int(MASK.sum()))) * smallest).astype(dtype)
    assert (np.abs(X[X != 0]) < np.finfo(dtype).tiny).all()  # all subnormal
    rena = fit_quietly(X, n_clusters=20, n_iter=20)
    assert_partition(rena.labels_, 20, X.shape[1])
    assert_clusters_connected(rena.labels_, mask_adjacency(MASK), 20)
    Xt = rena.transform(X)
    assert Xt.dtype == dtype and np.isfinite(Xt).all()


@pytest.mark.parametrize("value", [0.0, 3.25, -1e300, 1e-310, 1.79e308])
@pytest.mark.parametrize("linkage", ["nilearn", "ward"])
def test_all_equal_data_reaches_k_with_equal_means(value, linkage):
    """Every weight is 0: ties, broken by node order (nilearn's rule then
    chains most nodes into one cluster, as nilearn does)."""
    X = np.full((3, int(MASK.sum())), value)
    rena = fit_quietly(X, n_clusters=17, linkage=linkage)
    assert_partition(rena.labels_, 17, X.shape[1])
    assert_clusters_connected(rena.labels_, mask_adjacency(MASK), 17)
    # a sum of n equal values divided by n is the value up to rounding
    np.testing.assert_allclose(rena.transform(X), np.full((3, 17), value), rtol=1e-13,
                               atol=0)
    np.testing.assert_array_equal(rena.labels_, fit_quietly(
        np.ones_like(X), n_clusters=17, linkage=linkage).labels_)


def test_data_differing_only_in_the_last_bit_follows_those_bits():
    """1 + k * ulp(1) for small integers k: the differences, hence the first
    level's weights, are exactly those of k times 2**-52, so one level gives
    the labels of k itself."""
    rng = np.random.default_rng(11)
    K = np.round(np.cumsum(rng.standard_normal((4, int(MASK.sum()))), axis=1) * 3)
    X = 1.0 + K * np.finfo(np.float64).eps
    assert len(np.unique(X)) > 50 and np.ptp(X) < 1e-12
    one_level = dict(n_clusters=2, n_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # n_iter=1 does not reach 2
        np.testing.assert_array_equal(ReNA(MASK, **one_level).fit(X).labels_,
                                      ReNA(MASK, **one_level).fit(K).labels_)
    rena = fit_quietly(X, n_clusters=10, n_iter=20)
    assert_partition(rena.labels_, 10, X.shape[1])
    assert_clusters_connected(rena.labels_, mask_adjacency(MASK), 10)


def test_function_and_estimator_agree_on_extreme_values():
    X = smooth(seed=12) * 1e300
    n, labels = recursive_neighbor_agglomeration(X, MASK, n_clusters=9)
    np.testing.assert_array_equal(labels, fit_quietly(X, n_clusters=9).labels_)
    assert n == 9


@pytest.mark.parametrize("where", ["fit", "transform"])
def test_plus_and_minus_infinity_give_the_standard_error_without_warning(where):
    """scikit-learn's check sums its input first; +inf + -inf must not leak
    a RuntimeWarning before the error."""
    rng = np.random.default_rng(13)
    bad = rng.random((3, 20))
    bad[0, 1], bad[1, 3] = np.inf, -np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rena = ReNA(n_clusters=3).fit(rng.random((3, 20)))
        with pytest.raises(ValueError, match="Input X contains infinity"):
            if where == "fit":
                ReNA(n_clusters=3).fit(bad)
            else:
                rena.transform(bad)


@pytest.mark.parametrize("scaling", [False, True])
@pytest.mark.parametrize("lazy", [False, True])
def test_inverse_transform_copies_nan_and_infinity_to_their_clusters(scaling, lazy):
    """As scikit-learn's FeatureAgglomeration: hidimstat maps a cluster's
    NaN p-value (a constant region) back to its features; nothing is
    computed from the values, so nothing warns."""
    rng = np.random.default_rng(14)
    rena = ReNA(n_clusters=4, scaling=scaling).fit(rng.random((5, 20)))
    X_red = rng.random((2, 4))
    X_red[0, 1], X_red[1, 2], X_red[1, 3] = np.nan, np.inf, -np.inf
    given = X_red
    if lazy:
        given = da.from_array(X_red, chunks=(1, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = np.asarray(rena.inverse_transform(given))
        row = np.asarray(rena.inverse_transform(given[1]))
    divisors = np.sqrt(rena.sizes_) if scaling else np.ones(4)
    np.testing.assert_array_equal(back, (X_red / divisors)[:, rena.labels_])
    np.testing.assert_array_equal(row, back[1])
    assert np.isnan(back[0, rena.labels_ == 1]).all()
    assert not np.isnan(back[0, rena.labels_ != 1]).any()
    assert (back[1, rena.labels_ == 2] == np.inf).all()
    assert (back[1, rena.labels_ == 3] == -np.inf).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_finiteness_scan_finds_one_bad_value_anywhere(dtype):
    # _kernels.all_finite counts bad values per chunk of 2**16 without a
    # branch: one NaN or infinity at a chunk's ends, at the array's ends or
    # alone in a short last chunk is found; the largest, smallest and
    # subnormal finite values are not bad.
    chunk = 1 << 16
    n = 2 * chunk + 5
    info = np.finfo(dtype)
    good = np.random.default_rng(21).standard_normal(n).astype(dtype)
    good[[1, 2, 3, 4]] = [info.max, -info.max, info.smallest_subnormal, -0.0]
    assert _kernels.all_finite(good)
    assert _kernels.all_finite(good[:0])
    for where in (0, chunk - 1, chunk, 2 * chunk - 1, 2 * chunk, n - 1):
        for bad in (np.nan, np.inf, -np.inf):
            x = good.copy()
            x[where] = bad
            assert not _kernels.all_finite(x), (where, bad)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_edge_weights_ask_for_rows_ahead_without_changing_a_bit(dtype):
    # The feature-major weight kernels ask for the rows of edges ahead
    # (_kernels.prefetch.prefetch_row: a hint, on C-ordered rows only): a
    # later round's computed edges (rows and edge indices), on C-ordered
    # and strided signals, and on fewer edges than it looks ahead, give
    # the weights of numpy's float64 sums to rounding, and the same bits
    # on both layouts.
    from fastrena import arrays

    rng = np.random.default_rng(5)
    n, n_samples, n_edges = 500, 70, 3000
    u = rng.integers(0, n, n_edges)
    v = rng.integers(0, n, n_edges)
    rows = rng.permutation(n)
    signals = rng.standard_normal((n, n_samples)).astype(dtype)
    strided = np.empty((n, 2 * n_samples), dtype=dtype)
    strided[:, ::2] = signals
    expected = ((signals[rows[u]].astype(np.float64)
                 - signals[rows[v]].astype(np.float64)) ** 2).sum(axis=1)
    for edges in (np.arange(n_edges), rng.permutation(n_edges)[:700], np.array([4, 9])):
        out = {}
        for name, F in (("C", signals.T), ("strided", strided[:, ::2].T)):
            assert arrays.is_feature_major(F)
            w = np.full(n_edges, -1.0)
            arrays.edge_weights_into(F, rows, u, v, edges, w)
            np.testing.assert_allclose(w[edges], expected[edges], rtol=1e-12)
            untouched = np.ones(n_edges, dtype=bool)
            untouched[edges] = False
            assert (w[untouched] == -1.0).all()
            out[name] = w
        assert np.array_equal(out["C"].view(np.int64), out["strided"].view(np.int64))


@pytest.mark.parametrize("n_samples", [1, 3, 4, 5, 63, 64, 65, 100, 131])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_feature_major_weights_are_the_sample_major_bits(n_samples, dtype):
    # The feature-major kernel sums four edges side by side, four samples
    # a step (kernels.lanes.add_squares_of_four), the block's last samples
    # one by one: on sample counts below, at and past a step and a block
    # (SAMPLE_BLOCK = 64), with values of mixed magnitudes (where another
    # order of the adds or a fused multiply-add shows), and on fewer edges
    # than a group of four, every weight is the sample-major kernel's, bit
    # for bit, through rows and edge indices too.
    rng = np.random.default_rng(n_samples)
    n = 300
    X = (rng.standard_normal((n_samples, n))
         * 10.0 ** rng.integers(-6, 7, (n_samples, n))).astype(dtype)
    for n_edges in (1, 3, 997):
        u = rng.integers(0, n, n_edges)
        v = rng.integers(0, n, n_edges)
        expected = _kernels.edge_weights_sample_major(np.ascontiguousarray(X), u, v)
        got = _kernels.edge_weights_feature_major(np.ascontiguousarray(X.T), u, v)
        assert np.array_equal(got.view(np.int64), expected.view(np.int64))
        rows = rng.permutation(n)
        edges = np.sort(rng.choice(n_edges, (n_edges + 1) // 2, replace=False))
        out = np.full(n_edges, -1.0)
        _kernels.edge_weights_feature_major(np.ascontiguousarray(X[:, rows].T), u, v,
                                            np.argsort(rows), edges, out)
        assert np.array_equal(out[edges].view(np.int64), expected[edges].view(np.int64))


def test_four_edge_squares_are_python_floats_bit_for_bit():
    # add_squares_of_four: each edge's sum adds (float64(a[s]) - float64(
    # b[s]))**2 in sample order from the given start, with no fused
    # multiply-add: Python floats, one operation at a time, give the bits.
    from numba import njit

    from fastrena._kernels.lanes import add_squares_of_four

    @njit
    def four(sums, XT, a, b, s0, s1):
        return add_squares_of_four(sums, XT, a, b, s0, s1)

    rng = np.random.default_rng(9)
    for dtype in (np.float32, np.float64):
        XT = (rng.standard_normal((12, 40)) * 10.0 ** rng.integers(-8, 9, (12, 40))).astype(dtype)
        a, b = (3, 0, 11, 3), (7, 7, 2, 5)
        start = (0.5, -0.0, 1e-20, 3.0)
        got = four(start, XT, a, b, 8, 36)
        for k in range(4):
            total = start[k]
            for s in range(8, 36):
                d = float(XT[a[k], s]) - float(XT[b[k], s])
                total = total + d * d
            assert got[k] == total
