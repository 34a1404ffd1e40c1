"""fastrena.ReNA as a scikit-learn estimator (docs/design.md)."""

import inspect
import json
import os
import pickle
import re
import subprocess
import sys
import textwrap
import warnings

import joblib
import nibabel
import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from sklearn.base import clone
from sklearn.cluster import FeatureAgglomeration
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import check_estimator

import fastrena.estimator
from fastrena import ReNA, recursive_neighbor_agglomeration

from helpers import halving_chain

# --------------------------------------------------------------------------
# scikit-learn's estimator checks
# --------------------------------------------------------------------------

# check_clustering asserts that labels_ has one entry per *sample*; ReNA's
# labels_ label features (scikit-learn skips this check for
# FeatureAgglomeration by class name).
EXPECTED_FAILURES = {"check_clustering"}


def _summarise(results):
    """{check name: sorted list of statuses} (some checks run twice)."""
    out = {}
    for r in results:
        out.setdefault(r["check_name"], []).append(r["status"])
    return {k: sorted(v) for k, v in out.items()}


def _assert_check_results(statuses):
    assert "check_clustering" in statuses
    assert set(statuses["check_clustering"]) == {"failed"}
    bad = {k: v for k, v in statuses.items()
           if k not in EXPECTED_FAILURES and set(v) != {"passed"}}
    assert bad == {}


def test_check_estimator():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # n_clusters > n_features etc.
        results = check_estimator(ReNA(), on_fail=None)
    assert len(results) > 40
    for r in results:
        if r["check_name"] == "check_clustering":
            assert isinstance(r["exception"], AssertionError)
    statuses = _summarise(results)
    if os.environ.get("SCIPY_ARRAY_API") == "1":
        _assert_check_results(statuses)
    else:
        # skipped in-process; run for real in test_check_array_api_input
        assert statuses.pop("check_array_api_input") == ["skipped"]
        _assert_check_results(statuses)


ARRAY_API_SCRIPT = textwrap.dedent("""
    import json, warnings
    from sklearn.utils.estimator_checks import check_estimator
    from fastrena import ReNA
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        results = check_estimator(ReNA(), on_fail=None)
    print(json.dumps([[r["check_name"], r["status"], repr(r["exception"])]
                      for r in results]))
""")


def test_check_array_api_input():
    """SCIPY_ARRAY_API=1 must be set before scipy is imported: run the whole
    check_estimator in a fresh interpreter. ReNA does not declare
    array_api_support, so scikit-learn runs check_array_api_input with the
    numpy namespace only (no array_api_strict needed)."""
    env = dict(os.environ, SCIPY_ARRAY_API="1")
    proc = subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", "-c", ARRAY_API_SCRIPT],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    statuses = _summarise([{"check_name": n, "status": s} for n, s, _ in results])
    assert statuses["check_array_api_input"] == ["passed"], [
        r for r in results if r[0] == "check_array_api_input"]
    _assert_check_results(statuses)


# --------------------------------------------------------------------------
# Drop-in compatibility
# --------------------------------------------------------------------------


def test_is_a_feature_agglomeration():
    assert issubclass(ReNA, FeatureAgglomeration)
    assert isinstance(ReNA(), FeatureAgglomeration)


def test_fit_predict_returns_labels():
    X = np.random.RandomState(0).randn(4, 12)
    est = ReNA(n_clusters=3)
    labels = est.fit_predict(X)
    np.testing.assert_array_equal(labels, est.labels_)
    assert labels.shape == (12,)
    assert est.n_clusters_ == 3


def test_signature_matches_nilearn():
    from nilearn.regions import ReNA as NilearnReNA

    ours = list(inspect.signature(ReNA).parameters.values())
    theirs = list(inspect.signature(NilearnReNA).parameters.values())
    assert len(theirs) == 8
    assert [(p.name, p.default) for p in ours[:8]] == [
        (p.name, p.default) for p in theirs]
    assert [p.name for p in theirs] == [
        "mask_img", "n_clusters", "scaling", "n_iter", "threshold", "memory",
        "memory_level", "verbose"]
    assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in ours[:8])
    rest = {p.name: p for p in ours[8:]}
    assert "connectivity" in rest
    assert rest["connectivity"].kind is inspect.Parameter.KEYWORD_ONLY
    assert rest["connectivity"].default is None
    assert rest["linkage"].default == "nilearn"
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in ours[8:])
    with pytest.raises(TypeError):
        ReNA(None, 2, False, 10, 1e-7, None, 1, 0, sparse.eye(3))


def _classification_problem():
    rng = np.random.RandomState(0)
    mask = np.ones((4, 4), dtype=bool)
    n = 80
    y = np.arange(n) % 2
    block = np.zeros((4, 4))
    block[:2, :2] = 1.0
    X = 0.3 * rng.randn(n, 16) + 2.0 * y[:, None] * block.ravel()[None, :]
    return mask, X, y


def test_pipeline_with_classifier():
    mask, X, y = _classification_problem()
    pipe = make_pipeline(ReNA(mask, n_clusters=4), LogisticRegression())
    pipe.fit(X, y)
    np.testing.assert_array_equal(pipe.predict(X), y)
    rena = pipe[0]
    assert rena.n_clusters_ == 4
    assert rena.labels_.shape == (16,)
    assert pipe[1].coef_.shape == (1, 4)
    np.testing.assert_array_equal(pipe.predict_proba(X).argmax(axis=1), y)


def test_clone_and_get_set_params():
    mask = np.ones((3, 4), dtype=bool)
    est = ReNA(mask, n_clusters=5, scaling=True, n_iter=7, threshold=0.01,
               memory_level=0, verbose=0)
    params = est.get_params()
    assert params["n_clusters"] == 5 and params["connectivity"] is None
    assert set(params) == {"mask_img", "n_clusters", "scaling", "n_iter", "threshold",
                           "memory", "memory_level", "verbose", "connectivity",
                           "linkage", "compute_full_tree", "max_refine_iter"}
    est.fit(np.random.RandomState(0).randn(3, 12))
    cl = clone(est)
    assert not hasattr(cl, "labels_")
    cl_params = cl.get_params()
    np.testing.assert_array_equal(cl_params.pop("mask_img"), mask)
    params.pop("mask_img")
    assert cl_params == params
    cl.set_params(n_clusters=2)
    assert cl.n_clusters == 2 and est.n_clusters == 5


@pytest.mark.parametrize("scaling", [False, True])
def test_pickle_round_trip(scaling):
    rng = np.random.RandomState(1)
    mask = rng.rand(5, 4, 3) < 0.8
    X = rng.randn(6, mask.sum())
    est = ReNA(mask, n_clusters=6, scaling=scaling).fit(X)
    est2 = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(est2.labels_, est.labels_)
    np.testing.assert_array_equal(est2.sizes_, est.sizes_)
    assert est2.n_clusters_ == est.n_clusters_
    np.testing.assert_array_equal(est2.transform(X), est.transform(X))
    Xr = est.transform(X)
    np.testing.assert_array_equal(est2.inverse_transform(Xr), est.inverse_transform(Xr))


def test_set_output_pandas_and_dataframe_input():
    rng = np.random.RandomState(2)
    mask = np.ones((3, 5), dtype=bool)
    columns = [f"voxel_{i}" for i in range(15)]
    df = pd.DataFrame(rng.randn(7, 15), columns=columns, index=list("abcdefg"))
    est = ReNA(mask, n_clusters=4).set_output(transform="pandas")
    out = est.fit_transform(df)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["rena0", "rena1", "rena2", "rena3"]
    assert list(est.get_feature_names_out()) == list(out.columns)
    assert list(out.index) == list("abcdefg")
    np.testing.assert_array_equal(est.feature_names_in_, np.array(columns, dtype=object))
    assert est.n_features_in_ == 15
    np.testing.assert_allclose(out.to_numpy(),
                               ReNA(mask, n_clusters=4).fit(df.to_numpy()).transform(
                                   df.to_numpy()))
    # plain numpy input: no feature_names_in_
    est_np = ReNA(mask, n_clusters=4).fit(df.to_numpy())
    assert not hasattr(est_np, "feature_names_in_")


@pytest.mark.parametrize("how", ["pandas", "polars", "global"])
def test_set_output_names_the_columns_of_another_scale(how):
    # transform(X, n_clusters=k) with set_output: scikit-learn's wrapper
    # named n_clusters_ columns, and pandas failed ("Length mismatch").
    import polars as pl
    from sklearn import config_context

    rng = np.random.RandomState(3)
    df = pd.DataFrame(rng.randn(6, 12), index=list("abcdef"))
    rena = ReNA(np.ones((3, 4), dtype=bool), n_clusters=5, compute_full_tree=True).fit(df)
    plain = rena.transform(df.to_numpy(), n_clusters=3)
    with config_context(transform_output="pandas" if how == "global" else "default"):
        if how != "global":
            rena.set_output(transform=how)
        out = rena.transform(df, n_clusters=3)
        assert list(rena.get_feature_names_out()) == [f"rena{i}" for i in range(5)]
        whole = rena.transform(df)
    if how == "polars":
        assert isinstance(out, pl.DataFrame) and out.columns == ["rena0", "rena1", "rena2"]
        np.testing.assert_array_equal(out.to_numpy(), plain)
    else:
        assert isinstance(out, pd.DataFrame) and list(out.index) == list("abcdef")
        assert list(out.columns) == ["rena0", "rena1", "rena2"]
        np.testing.assert_array_equal(out.to_numpy(), plain)
        assert list(whole.columns) == [f"rena{i}" for i in range(5)]
    # Without a container, nothing is left pending for a later call.
    rena.set_output(transform="default")
    assert rena.transform(df, n_clusters=3).shape == (6, 3)
    assert list(rena.get_feature_names_out()) == [f"rena{i}" for i in range(5)]


# --------------------------------------------------------------------------
# transform / inverse_transform values
# --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scaling", [False, True])
def test_transform_values(dtype, scaling):
    rng = np.random.RandomState(4)
    mask = rng.rand(6, 5, 4) < 0.85
    N = int(mask.sum())
    X = rng.randn(9, N).astype(dtype)
    est = ReNA(mask, n_clusters=10, scaling=scaling).fit(X)
    labels, sizes = est.labels_, est.sizes_
    np.testing.assert_array_equal(sizes, np.bincount(labels))
    Xt = est.transform(X)
    assert Xt.dtype == dtype and Xt.shape == (9, 10)
    expected = np.stack([X[:, labels == c].astype(np.float64).mean(axis=1)
                         for c in range(10)], axis=1)
    if scaling:
        expected = expected * np.sqrt(sizes)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12)
    np.testing.assert_allclose(Xt, expected, **tol)
    Xi = est.inverse_transform(Xt)
    assert Xi.dtype == dtype and Xi.shape == X.shape
    means = expected / np.sqrt(sizes) if scaling else expected
    np.testing.assert_allclose(Xi, means[:, labels], **tol)
    # orthogonal projection: idempotent, residual orthogonal to the range
    np.testing.assert_allclose(est.inverse_transform(est.transform(Xi)), Xi, **tol)
    resid = X.astype(np.float64) - Xi
    np.testing.assert_allclose(resid @ Xi.T.astype(np.float64), 0,
                               atol=1e-3 if dtype == np.float32 else 1e-10)
    # 1-D X_red gives a 1-D result
    np.testing.assert_array_equal(est.inverse_transform(Xt[0]), Xi[0])


def test_int_input_becomes_float64():
    X = np.arange(24).reshape(3, 8)
    est = ReNA(n_clusters=2).fit(X)
    assert est.transform(X).dtype == np.float64


# --------------------------------------------------------------------------
# memory caching
# --------------------------------------------------------------------------

CALLS = []


def counting_agglomerate(X, graph, n_clusters, n_iter=10, threshold=1e-7, verbose=0,
                         on_level=None, check_values=False, linkage="nilearn", on_step=None,
                         full_tree=False, max_refine_iter="auto"):
    CALLS.append(n_clusters if linkage == "nilearn" else (n_clusters, linkage))
    return fastrena.agglomeration.agglomerate(X, graph, n_clusters, n_iter, threshold,
                                              verbose, on_level, check_values, linkage,
                                              on_step, full_tree, max_refine_iter)


@pytest.fixture
def counted(monkeypatch):
    CALLS.clear()
    monkeypatch.setattr(fastrena.estimator, "agglomerate", counting_agglomerate)
    yield CALLS
    CALLS.clear()


def _files(path):
    return [p for p in path.rglob("*") if p.is_file()]


@pytest.mark.parametrize("kind", ["str", "path", "joblib.Memory"])
def test_memory_caches_fit(tmp_path, counted, kind):
    memory = {"str": str(tmp_path), "path": tmp_path,
              "joblib.Memory": joblib.Memory(tmp_path, verbose=0)}[kind]
    X = np.random.RandomState(5).randn(4, 30)
    a = ReNA(n_clusters=3, memory=memory, memory_level=1).fit(X)
    assert counted == [3]
    assert _files(tmp_path)
    b = ReNA(n_clusters=3, memory=memory, memory_level=1).fit(X)
    assert counted == [3]  # served from the cache
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert a.n_clusters_ == b.n_clusters_ == 3
    np.testing.assert_array_equal(a.sizes_, b.sizes_)
    ReNA(n_clusters=4, memory=memory).fit(X)  # another key: computed
    assert counted == [3, 4]
    ReNA(n_clusters=3, memory=memory).fit(X + 1.0)  # other data: computed
    assert counted == [3, 4, 3]
    ReNA(n_clusters=3, memory=memory, linkage="ward").fit(X)  # other linkage: computed
    assert counted == [3, 4, 3, (3, "ward")]


def test_memory_level_zero_writes_nothing(tmp_path, counted):
    X = np.random.RandomState(6).randn(4, 30)
    for _ in range(2):
        ReNA(n_clusters=3, memory=str(tmp_path), memory_level=0).fit(X)
    assert counted == [3, 3]
    assert list(tmp_path.rglob("*")) == []


def test_no_memory_computes_every_time(counted):
    X = np.random.RandomState(6).randn(4, 30)
    ReNA(n_clusters=3).fit(X)
    ReNA(n_clusters=3).fit(X)
    assert counted == [3, 3]


def test_cached_fit_re_emits_warnings(tmp_path, counted):
    mask = np.zeros((4, 4), dtype=bool)
    mask[0, :] = True
    mask[3, :] = True          # two components
    X = np.random.RandomState(7).randn(3, 8)
    for expected_calls in (1, 1):
        with pytest.warns(UserWarning, match="2 connected components") as rec:
            est = ReNA(mask, n_clusters=1, memory=str(tmp_path)).fit(X)
        assert len(rec) == 1 and "n_clusters=1" in str(rec[0].message)
        assert len(counted) == expected_calls
        assert est.n_clusters_ == 2
    # the n_iter warning too
    for _ in range(2):
        with pytest.warns(UserWarning, match="n_iter=1") as rec:
            est = ReNA(n_clusters=1, n_iter=1, memory=str(tmp_path)).fit(
                halving_chain(4))
        assert len(rec) == 1 and re.search(r"\b8\b", str(rec[0].message))
        assert est.n_clusters_ == 8
    assert len(counted) == 2


# --------------------------------------------------------------------------
# verbose
# --------------------------------------------------------------------------


def test_verbose_prints_one_line_per_level(capsys):
    X = halving_chain(3)  # 8 -> 4 -> 2 -> 1
    est = ReNA(n_clusters=1, verbose=1).fit(X)
    assert est.n_clusters_ == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 3, out
    for level, (before, after, line) in enumerate(zip((8, 4, 2), (4, 2, 1), lines), 1):
        assert re.search(rf"\b{level}\b", line), line
        assert re.search(rf"\b{before}\b.*\b{after}\b", line), line
        assert re.search(r"\d+(\.\d+)?\s*s\b", line), line  # seconds
    assert err == ""
    recursive_neighbor_agglomeration(X, n_clusters=1, verbose=1)
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_verbose_zero_prints_nothing(capsys):
    X = halving_chain(3)
    ReNA(n_clusters=1).fit(X)
    recursive_neighbor_agglomeration(X, n_clusters=1)
    out, err = capsys.readouterr()
    assert out == "" and err == ""


# --------------------------------------------------------------------------
# Errors (docs/design.md, "Errors"), through the estimator and the function
# --------------------------------------------------------------------------

X8 = np.random.RandomState(8).randn(5, 8)


def fit_estimator(X, **kw):
    return ReNA(**kw).fit(X)


def fit_function(X, **kw):
    return recursive_neighbor_agglomeration(X, **kw)


BOTH = pytest.mark.parametrize("fit", [fit_estimator, fit_function],
                               ids=["estimator", "function"])


@BOTH
@pytest.mark.parametrize("name, value, shown", [
    ("n_clusters", 0, "0"),
    ("n_clusters", -1, "-1"),
    ("n_clusters", 2.5, "2.5"),
    ("n_clusters", True, "True"),
    ("n_clusters", "a", "'a'"),
    ("n_iter", 0, "0"),
    ("n_iter", 1.5, "1.5"),
    ("threshold", -0.1, "-0.1"),
    ("threshold", 1.0, "1.0"),
    ("threshold", "x", "'x'"),
])
def test_bad_parameters(fit, name, value, shown):
    with pytest.raises((ValueError, TypeError)) as exc:
        fit(X8, **{name: value})
    msg = str(exc.value)
    assert name in msg, msg
    assert re.search(rf"(?<![\w.-]){re.escape(shown)}(?![\w.])", msg), msg


@BOTH
@pytest.mark.parametrize("value", [np.int64(3), np.int32(3), 3])
def test_numpy_integers_accepted(fit, value):
    out = fit(X8, n_clusters=value, n_iter=np.int64(10))
    n = out.n_clusters_ if isinstance(out, ReNA) else out[0]
    assert n == 3


@BOTH
@pytest.mark.parametrize("mask", [[[1, 1], [1, 1]], 5, {"a": 1}, 2.0])
def test_unsupported_mask_type(fit, mask):
    with pytest.raises(TypeError) as exc:
        fit(X8, mask_img=mask)
    msg = str(exc.value)
    assert "mask_img" in msg
    for accepted in ("None", "path", "Nifti1Image", "numpy array", "SurfaceImage",
                     "NiftiMasker"):
        assert accepted in msg, msg
    assert type(mask).__name__ in msg


@BOTH
def test_mask_and_connectivity_both(fit):
    with pytest.raises(ValueError, match="mask_img and connectivity"):
        fit(X8, mask_img=np.ones((2, 4), bool), connectivity=sparse.eye(8).tocsr())


@BOTH
@pytest.mark.parametrize("make_mask", [
    lambda: np.zeros((2, 4), dtype=bool),
    lambda: np.zeros((2, 2, 2), dtype=np.uint8),
    lambda: nibabel.Nifti1Image(np.zeros((2, 2, 2), np.uint8), np.eye(4)),
], ids=["bool2d", "uint8-3d", "nifti"])
def test_empty_mask(fit, make_mask):
    with pytest.raises(ValueError, match=r"mask_img has no in-mask voxel"):
        fit(X8, mask_img=make_mask())


@BOTH
def test_4d_mask_with_two_volumes(fit, tmp_path):
    img = nibabel.Nifti1Image(np.ones((2, 2, 2, 2), np.uint8), np.eye(4))
    for mask in (img, str(tmp_path / "m.nii.gz")):
        if isinstance(mask, str):
            nibabel.save(img, mask)
        with pytest.raises(ValueError) as exc:
            fit(X8, mask_img=mask)
        msg = str(exc.value)
        assert "mask_img" in msg and "4-D" in msg and "2 volumes" in msg, msg


@BOTH
def test_4d_mask_with_one_volume_is_a_3d_mask(fit):
    img = nibabel.Nifti1Image(np.ones((2, 2, 2, 1), np.uint8), np.eye(4))
    out = fit(X8, mask_img=img, n_clusters=3)
    out3 = fit(X8, mask_img=np.ones((2, 2, 2), bool), n_clusters=3)
    if isinstance(out, ReNA):
        np.testing.assert_array_equal(out.labels_, out3.labels_)
    else:
        np.testing.assert_array_equal(out[1], out3[1])


@BOTH
def test_4d_array_mask(fit):
    with pytest.raises(ValueError) as exc:
        fit(X8, mask_img=np.ones((2, 2, 2, 2), bool))
    msg = str(exc.value)
    assert "mask_img" in msg and "(2, 2, 2, 2)" in msg, msg


@BOTH
@pytest.mark.parametrize("mask", [
    np.ones((3, 3), bool),
    nibabel.Nifti1Image(np.ones((3, 3, 1), np.uint8), np.eye(4)),
], ids=["array", "nifti"])
def test_mask_size_mismatch(fit, mask):
    with pytest.raises(ValueError) as exc:
        fit(X8, mask_img=mask)
    msg = str(exc.value)
    assert re.search(r"\b9\b", msg) and re.search(r"\b8\b", msg), msg
    assert "mask_img" in msg


@BOTH
@pytest.mark.parametrize("conn, shapes", [
    (sparse.random(8, 7, density=0.3, random_state=0), ["(8, 7)"]),
    (sparse.eye(9).tocsr(), ["(9, 9)", "(8, 8)"]),
    (sparse.eye(7).tocoo(), ["(7, 7)", "(8, 8)"]),
])
def test_connectivity_shape(fit, conn, shapes):
    with pytest.raises(ValueError) as exc:
        fit(X8, connectivity=conn)
    msg = str(exc.value)
    assert "connectivity" in msg
    for s in shapes:
        assert s in msg, msg


BAD_X = {
    "nan": (np.array([[np.nan, 1.0], [1.0, 2.0]]), ValueError, "NaN"),
    "inf": (np.array([[np.inf, 1.0], [1.0, 2.0]]), ValueError, "infinity"),
    "complex": (np.array([[1 + 1j, 2], [3, 4]]), ValueError,
                r"^Complex data not supported: X has dtype complex128; pass real signals, such "
                r"as X\.real or np\.abs\(X\)$"),
    # Numbers written as text were converted without a word (scikit-learn's
    # FeatureAgglomeration refuses them).
    "strings": (np.array([["a", "b"], ["c", "d"]]), ValueError,
                r"^X holds text \(dtype <U1\), not numbers: pass real signals, such as "
                r"X\.astype\(float\) if the text is numbers$"),
    "numbers as text": (np.array([["1.5", "2"], ["3", "4"]]), ValueError,
                        r"^X holds text \(dtype <U3\), not numbers"),
    "bytes": (np.array([[b"1", b"2"], [b"3", b"4"]]), ValueError,
              r"^X holds text \(dtype \|S1\), not numbers"),
    "sparse": (sparse.csr_matrix(np.eye(3)), TypeError, "dense data is required"),
    "0 samples": (np.empty((0, 3)), ValueError, r"0 sample\(s\) \(shape=\(0, 3\)\)"),
    "0 features": (np.empty((3, 0)), ValueError, r"0 feature\(s\) \(shape=\(3, 0\)\)"),
    # Reshaping named as scikit-learn's check_fit2d_predict1d asks, without
    # its dump of every value.
    "1-D": (np.arange(3.0), ValueError,
            r"^X must be 2-D \(n_samples, n_features\); got a 1-D array of shape \(3,\)\. "
            r"Reshape your data: X\[None\] \(or X\.reshape\(1, -1\)\) is one sample of 3 "
            r"features$"),
    "3-D": (np.ones((2, 2, 2)), ValueError, "Found array with dim 3"),
    # What a new user passes instead of the masked matrix: an image, its
    # file name, a list of them (scikit-learn said "setting an array
    # element with a sequence").
    "image": (nibabel.Nifti1Image(np.ones((2, 2, 2)), np.eye(4)), TypeError,
              r"^X must be an array of shape \(n_samples, n_features\), one row per scan and "
              r"one column per voxel or vertex; got a Nifti1Image\. Read images into one with "
              r"fastrena\.io\.images_to_array\(imgs, mask_img\)"),
    "file name": ("run1.nii.gz", TypeError, r"; got the str 'run1\.nii\.gz'\. Read images"),
    "list of images": ([nibabel.Nifti1Image(np.ones((2, 2, 2)), np.eye(4))] * 2, TypeError,
                       r"; got a list of Nifti1Image\. Read images"),
    "complex list": ([[1 + 1j, 2.0], [3.0, 4.0]], ValueError,
                     r"^Complex data not supported: X has dtype complex128; pass real"),
    "list of numbers": ([1.0, 2.0, 3.0], ValueError,
                        r"^X must be 2-D \(n_samples, n_features\); got a 1-D array of shape "
                        r"\(3,\)\. Reshape your data"),
}


@BOTH
@pytest.mark.parametrize("case", list(BAD_X))
def test_bad_X(fit, case):
    X, exc_type, pattern = BAD_X[case]
    with pytest.raises(exc_type, match=pattern):
        fit(X)


def test_array_likes_with_image_like_names_are_data():
    # A DataFrame with columns "data" and "mesh" (as a SurfaceImage's
    # attributes) is an array, not an image.
    X = pd.DataFrame(np.arange(15.0).reshape(5, 3) ** 2, columns=["data", "mesh", "x"])
    np.testing.assert_array_equal(ReNA(n_clusters=2).fit(X).labels_,
                                  ReNA(n_clusters=2).fit(X.to_numpy()).labels_)


def test_inverse_transform_errors_name_X_red():
    rena = ReNA(n_clusters=2).fit(np.arange(24.0).reshape(4, 6) ** 2)
    with pytest.raises(TypeError, match=r"^X_red must be an array of shape \(n_samples, "
                                        r"n_clusters\), one column per cluster, or one such row; "
                                        r"got the str 'foo\.nii'\. X_red is what transform\(X\) "
                                        r"returns$"):
        rena.inverse_transform("foo.nii")
    with pytest.raises(ValueError, match=r"^X_red holds text \(dtype <U1\), not numbers"):
        rena.inverse_transform(np.array([["1", "2"]]))


def test_transposed_X_is_named():
    # X given as (n_features, n_samples): the size error says so.
    mask = np.zeros((3, 3, 2), dtype=bool)
    mask[:, :, 0] = True
    with pytest.raises(ValueError, match=r"^mask_img has 9 in-mask voxels/vertices but X has 4 "
                                         r"features; they must be equal; X has 9 rows: is it "
                                         r"transposed\? X is \(n_samples, n_features\), one row "
                                         r"per scan \(X\.T swaps them\)$"):
        ReNA(mask, n_clusters=2).fit(np.ones((9, 4)))
    with pytest.raises(ValueError, match=r"expected \(4, 4\); X has 9 rows: is it transposed"):
        ReNA(connectivity=sparse.eye(9), n_clusters=2).fit(np.ones((9, 4)))
    # No hint when the rows do not match either.
    with pytest.raises(ValueError, match=r"they must be equal$"):
        ReNA(mask, n_clusters=2).fit(np.ones((5, 4)))


def test_one_sample_is_enough():
    X = np.array([[0.0, 0.1, 5.0, 5.1, 9.0, 9.2]])
    est = ReNA(n_clusters=3).fit(X)
    np.testing.assert_array_equal(est.labels_, [0, 0, 1, 1, 2, 2])
    np.testing.assert_allclose(est.transform(X), [[0.05, 5.05, 9.1]])
    assert recursive_neighbor_agglomeration(X, n_clusters=3)[0] == 3


@BOTH
def test_n_clusters_larger_than_n_features(fit):
    with pytest.warns(UserWarning) as rec:
        out = fit(X8, n_clusters=20)
    assert len(rec) == 1
    msg = str(rec[0].message)
    assert "n_clusters=20" in msg and re.search(r"\b8\b", msg), msg
    if isinstance(out, ReNA):
        assert out.n_clusters == 20
        assert out.get_params()["n_clusters"] == 20
        assert out.n_clusters_ == 8
        np.testing.assert_array_equal(out.labels_, np.arange(8))
    else:
        assert out[0] == 8
        np.testing.assert_array_equal(out[1], np.arange(8))


@pytest.mark.parametrize("method", ["transform", "inverse_transform"])
def test_not_fitted(method):
    with pytest.raises(NotFittedError):
        getattr(ReNA(), method)(X8)


def test_transform_wrong_number_of_features():
    est = ReNA(n_clusters=3).fit(X8)
    with pytest.raises(ValueError) as exc:
        est.transform(X8[:, :5])
    msg = str(exc.value)
    assert re.search(r"\b5\b", msg) and re.search(r"\b8\b", msg), msg


@pytest.mark.parametrize("X_red", [np.ones((2, 4)), np.ones(4), np.ones((2, 2))])
def test_inverse_transform_wrong_width(X_red):
    est = ReNA(n_clusters=3).fit(X8)
    assert est.n_clusters_ == 3
    with pytest.raises(ValueError) as exc:
        est.inverse_transform(X_red)
    msg = str(exc.value)
    assert re.search(rf"\b{X_red.shape[-1]}\b", msg) and re.search(r"\b3\b", msg), msg


# --------------------------------------------------------------------------
# No RuntimeWarning on awkward inputs
# --------------------------------------------------------------------------


def _awkward_inputs():
    rng = np.random.RandomState(9)
    yield "constant", np.full((3, 24), 2.5)
    yield "zeros", np.zeros((3, 24))
    yield "zeros one sample", np.zeros((1, 24))
    yield "huge", rng.randn(4, 24) * 1e150
    yield "huge constant", np.full((4, 24), 1e150)
    yield "tiny", rng.randn(4, 24) * 1e-300
    yield "subnormal", np.full((2, 24), 5e-324) * rng.randint(0, 3, (2, 24))
    yield "mixed", np.concatenate([rng.randn(3, 12) * 1e150, rng.randn(3, 12) * 1e-300],
                                  axis=1)
    yield "float32 huge", (rng.randn(3, 24) * 1e30).astype(np.float32)
    yield "float32 tiny", (rng.randn(3, 24) * 1e-40).astype(np.float32)
    yield "float32 zeros", np.zeros((3, 24), dtype=np.float32)


@pytest.mark.parametrize("scaling", [False, True])
@pytest.mark.parametrize("n_clusters", [1, 5, 24])
@pytest.mark.parametrize("name", [n for n, _ in _awkward_inputs()])
def test_no_runtime_warning_on_awkward_inputs(name, n_clusters, scaling):
    X = dict(_awkward_inputs())[name]
    mask = np.ones((2, 3, 4), dtype=bool)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)  # n_iter not enough, maybe
        est = ReNA(mask, n_clusters=n_clusters, scaling=scaling).fit(X)
        Xt = est.transform(X)
        Xi = est.inverse_transform(Xt)
        Xt2 = ReNA(mask, n_clusters=n_clusters, scaling=scaling).fit_transform(X)
        n, labels = recursive_neighbor_agglomeration(X, mask, n_clusters=n_clusters)
    assert n == est.n_clusters_ and np.array_equal(labels, est.labels_)
    assert est.n_clusters_ == n_clusters  # connected mask, n_iter=10 >= enough
    assert Xt.dtype == X.dtype and Xi.dtype == X.dtype
    np.testing.assert_array_equal(Xt, Xt2)
    assert np.isfinite(Xt).all() and np.isfinite(Xi).all()
    expected = np.stack([X[:, est.labels_ == c].astype(np.float64).mean(axis=1)
                         for c in range(est.n_clusters_)], axis=1)
    if scaling:
        expected = expected * np.sqrt(est.sizes_)
    # atol: a few units of the smallest subnormal (rounding order differs)
    tol = (dict(rtol=1e-5, atol=1e-44) if X.dtype == np.float32
           else dict(rtol=1e-12, atol=1e-322))
    np.testing.assert_allclose(Xt, expected.astype(X.dtype), **tol)


@pytest.mark.parametrize("name, value, words", [
    ("n_clusters", 0, "an integer >= 1"),
    ("n_clusters", True, "an integer >= 1"),
    ("n_iter", 2.5, "an integer >= 1"),
    ("threshold", 1.0, "a number in [0, 1)"),
    ("threshold", float("nan"), "a number in [0, 1)"),
    ("linkage", "average", "one of 'nilearn', 'ward'"),
])
def test_one_vocabulary_for_the_estimator_and_the_function(name, value, words):
    from sklearn.utils._param_validation import InvalidParameterError

    for caller, fit in (("ReNA", fit_estimator),
                        ("recursive_neighbor_agglomeration", fit_function)):
        with pytest.raises(InvalidParameterError) as info:
            fit(X8, **{name: value})
        assert str(info.value) == (f"The {name!r} parameter of {caller} must be {words}. "
                                   f"Got {value!r} instead.")


@BOTH
@pytest.mark.parametrize("verbose", [True, False, 0, np.int64(0)])
def test_verbose_accepts_the_same_values(fit, verbose, capsys):
    fit(X8, n_clusters=3, verbose=verbose)
    if verbose:
        assert "[fastrena] level 1" in capsys.readouterr().out


@pytest.mark.parametrize("option, text, words", [
    ("-k", "0", "an integer >= 1"),
    ("--n-iter", "2.5", "an integer >= 1"),
    ("--threshold", "1", "a number in [0, 1)"),
    ("--memory-level", "-1", "an integer >= 0"),
])
def test_the_command_line_says_it_in_the_same_words(option, text, words, capsys):
    from fastrena.cli import main

    args = ["parcellate", "a.nii", "-o", "b.nii", "-k", "3", option, text]
    assert main(args) == 2
    assert f"must be {words}, got '{text}'" in capsys.readouterr().err


def _warned_here(call):
    """The UserWarnings ``call()`` raises, each checked to name this file's
    line (fastrena.errors.warn_user): the user's, not scikit-learn's or
    fastrena's."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    user = [w for w in caught if issubclass(w.category, UserWarning)]
    assert user, "no warning"
    for w in user:
        assert w.filename == __file__, (str(w.message), w.filename, w.lineno)
    return [str(w.message) for w in user]


@pytest.mark.parametrize("path", ["fit", "fit_transform", "fit_predict", "pipeline", "search",
                                  "function", "memory"])
def test_a_fit_warning_names_the_users_line_whichever_way_it_came(path, tmp_path):
    # fit_transform and fit_predict are scikit-learn's (TransformerMixin,
    # set_output's wrapper): a fixed stacklevel named sklearn/base.py.
    from sklearn.model_selection import GridSearchCV

    X = np.random.default_rng(0).random((6, 8))
    rena = ReNA(n_clusters=20)
    calls = {
        "fit": lambda: rena.fit(X),
        "fit_transform": lambda: rena.fit_transform(X),
        "fit_predict": lambda: rena.fit_predict(X),
        "pipeline": lambda: make_pipeline(rena, LogisticRegression()).fit(X, [0, 1] * 3),
        "search": lambda: GridSearchCV(make_pipeline(rena, LogisticRegression()),
                                       {"rena__n_clusters": [20]}, cv=2).fit(X, [0, 1] * 3),
        "function": lambda: recursive_neighbor_agglomeration(X, n_clusters=20),
        "memory": lambda: ReNA(n_clusters=20, memory=str(tmp_path), memory_level=1).fit(X)}
    messages = _warned_here(calls[path])
    assert "n_clusters=20 is larger than the number of features (8); using n_clusters=8" in (
        messages[0])


@pytest.mark.parametrize("path", ["labels_at", "transform", "transform_pandas",
                                  "inverse_transform"])
def test_a_scale_warning_names_the_users_line(path):
    X = np.random.default_rng(1).random((4, 6))
    two_chains = sparse.block_diag([sparse.diags([1.0, 1.0], [-1, 1], shape=(3, 3))] * 2)
    rena = ReNA(n_clusters=2, connectivity=two_chains, compute_full_tree=True).fit(X)
    pandas_rena = clone(rena).fit(X).set_output(transform="pandas")
    calls = {"labels_at": lambda: rena.labels_at(1),
             "transform": lambda: rena.transform(X, n_clusters=1),
             "transform_pandas": lambda: pandas_rena.transform(X, n_clusters=1),
             "inverse_transform": lambda: rena.inverse_transform(np.ones((1, 2)), n_clusters=1)}
    messages = _warned_here(calls[path])
    assert messages[0].startswith("The feature graph has 2 connected components, more than "
                                  "n_clusters=1")


def test_a_callable_connectivity_is_called_on_the_features_as_scikit_learn_does():
    # FeatureAgglomeration(connectivity=callable) calls it on X.T (one row
    # per feature): a kneighbors_graph of the features' own signals.
    from functools import partial

    from sklearn.neighbors import kneighbors_graph

    X = np.random.default_rng(3).standard_normal((5, 40))
    make = partial(kneighbors_graph, n_neighbors=4)
    graph = make(X.T)
    rena = ReNA(n_clusters=6, connectivity=make, linkage="ward").fit(X)
    np.testing.assert_array_equal(
        rena.labels_, ReNA(n_clusters=6, connectivity=graph, linkage="ward").fit(X).labels_)
    np.testing.assert_array_equal(
        recursive_neighbor_agglomeration(X, n_clusters=6, connectivity=make,
                                         linkage="ward")[1], rena.labels_)
    # The graph made at fit is the one transform uses; a clone (its
    # callable copied) fits the same.
    assert rena.layout_.graph.n_nodes == 40
    np.testing.assert_array_equal(clone(rena).fit(X).labels_, rena.labels_)
    assert rena.transform(X).shape == (5, rena.n_clusters_)
    with pytest.raises(ValueError, match=r"^connectivity\(X\.T\) \(square\) has shape \(5, 5\) "
                                         r"but X has 40 features"):
        def square(XT):
            return sparse.eye(XT.shape[1])
        ReNA(connectivity=square).fit(X)
    with pytest.raises(ValueError, match=r"^connectivity\(X\.T\) \(<lambda>\) returned None"):
        ReNA(connectivity=lambda XT: None).fit(X)
