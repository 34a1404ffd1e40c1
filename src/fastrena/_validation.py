"""Parameter and data validation shared by the functions and the estimator."""

import os
import sys
from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_array
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import validate_data

from . import _kernels, _rules
from ._rules import LINKAGES

FLOAT_DTYPES = (np.float64, np.float32)


class Count(Interval):
    """A parameter constraint: :class:`fastrena._rules.Count`, for
    scikit-learn."""

    def __init__(self, minimum):
        super().__init__(Integral, minimum, None, closed="left")
        self.rule = _rules.Count(minimum)

    def is_satisfied_by(self, val):
        return self.rule.accepts(val)

    def __str__(self):
        return str(self.rule)


class Fraction(Interval):
    """A parameter constraint: :class:`fastrena._rules.Fraction`, for
    scikit-learn."""

    def __init__(self):
        super().__init__(Real, 0, 1, closed="left")
        self.rule = _rules.Fraction()

    def is_satisfied_by(self, val):
        return self.rule.accepts(val)

    def __str__(self):
        return str(self.rule)


class OneOf(StrOptions):
    """A parameter constraint: :class:`fastrena._rules.OneOf`, for
    scikit-learn."""

    def __init__(self, options):
        super().__init__(set(options))
        self.rule = _rules.OneOf(options)

    def is_satisfied_by(self, val):
        return self.rule.accepts(val)

    def __str__(self):
        return str(self.rule)


#: The one vocabulary of fastrena's parameters: the estimator's
#: ``_parameter_constraints``, the functions' ``validate_params`` and the
#: command line's argument types (``fastrena.cli.common.parse_as``) all take their
#: constraints here, so that they accept and reject the same values with
#: the same words. ``mask_img`` is checked where it is parsed
#: (:func:`fastrena.layouts.feature_space`), with the list of what it accepts.
PARAMETERS = {
    "mask_img": "no_validation",
    "n_clusters": [Count(1)],
    "scaling": ["boolean"],
    "n_iter": [Count(1)],
    "threshold": [Fraction()],
    "memory": [None, str, os.PathLike, HasMethods(["cache"])],
    "memory_level": [Count(0)],
    "verbose": [Count(0), "boolean"],
    "connectivity": [None, "array-like", "sparse matrix", callable],
    "linkage": [OneOf(set(LINKAGES))],
    "compute_full_tree": ["boolean"],
    "max_refine_iter": [Count(0), OneOf({"auto"})],
    "max_iter": [Count(0)],
}


def constraints_of(*names):
    """The :data:`PARAMETERS` constraints of ``names`` (a dict)."""
    return {name: PARAMETERS[name] for name in names}


def check_positive_int(value, name, minimum=1, error=ValueError):
    """Return ``int(value)`` if it satisfies :class:`Count` (``minimum``);
    else raise ``error`` in the words of :data:`PARAMETERS`."""
    constraint = Count(minimum)
    if not constraint.is_satisfied_by(value):
        raise error(f"{name} must be {constraint}, got {value!r}")
    return int(value)


def is_dask_array(X):
    """Whether X is a ``dask.array.Array`` (without importing Dask)."""
    module = sys.modules.get("dask.array")
    return module is not None and isinstance(X, module.Array)


def is_finite(X):
    """Whether the array X holds no NaN and no infinity (parallel scan)."""
    if X.flags.c_contiguous or X.flags.f_contiguous:
        return bool(_kernels.all_finite(X.ravel(order="K")))
    return all(_kernels.all_finite(np.ascontiguousarray(row)) for row in X)


def check_finite(X, input_name="X", locate=True):
    """Raise scikit-learn's standard error if X holds NaN or infinity, and
    (with ``locate``) where: :func:`where_not_finite`.
    Not given the estimator: scikit-learn would then add advice on the
    estimators that take NaN (HistGradientBoosting...), which a
    parcellation cannot use.

    scikit-learn's own check is a single-threaded pass over X, as long as
    a whole ReNA level on two threads; this one scans contiguous arrays in
    parallel and only calls scikit-learn's to word the error (for a Dask
    array: ``fastrena._chunked.check_finite``).
    """
    if is_finite(X):
        return
    # scikit-learn sums X first: +inf and -inf (or finite values that
    # overflow) would warn before its error is raised.
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            check_array(X, dtype=None, ensure_all_finite=True, ensure_min_samples=0,
                        ensure_min_features=0, input_name=input_name)
    except ValueError as exc:
        if not locate:
            raise
        # Where: a scan has a bad volume or a voxel is bad in every scan.
        raise ValueError(f"{exc} {where_not_finite(X)}") from None


def where_not_finite(X):
    """Where the 2-D array X holds NaN or infinity, in words: the first
    such value (in C order), how many there are, in how many samples and
    features (a pass over X, and a boolean array of its shape: for error
    messages)."""
    bad = np.isfinite(X)
    np.logical_not(bad, out=bad)
    s, f = np.unravel_index(int(np.argmax(bad)), bad.shape)
    return (f"(first at sample {s}, feature {f}: {X[s, f]}; {int(bad.sum())} such "
            f"values in {int(bad.any(axis=1).sum())} of {X.shape[0]} samples and "
            f"{int(bad.any(axis=0).sum())} of {X.shape[1]} features)")


#: What to do with images given where X is asked for: volumes
#: (:data:`READ_IMAGES`) or a nilearn SurfaceImage (:data:`READ_SURFACES`).
READ_IMAGES = ("Read images into one with fastrena.io.images_to_array(imgs, mask_img) (files "
               "or images, 3-D or 4-D, one row per volume; mask_img as given to ReNA), or "
               "nilearn's NiftiMasker(mask_img).fit_transform(img) for one image (or the "
               "command line: fastrena parcellate)")
READ_SURFACES = ("Read it into one with nilearn's SurfaceMasker(mask_img).fit_transform(img) "
                 "or fastrena.io.images_to_array(img, mask_img)")


def complex_data_error(input_name, dtype):
    """The error for complex values where real signals are asked for."""
    return ValueError(f"Complex data not supported: {input_name} has dtype {dtype}; pass "
                      f"real signals, such as {input_name}.real or np.abs({input_name})")


def check_matrix_like(X, input_name="X", allow_1d=False,
                      expected="(n_samples, n_features), one row per scan and one column per "
                               "voxel or vertex", advice=READ_IMAGES):
    """Errors for what a new user passes as X instead of a (n_samples,
    n_features) matrix, which scikit-learn's validation words obscurely
    ("setting an array element with a sequence" for an image, a dump of
    every value for a 1-D array): an image or a file name (names the
    helpers that read images), complex values, or a 1-D array or list of
    numbers (``X[None]`` is one sample) unless ``allow_1d``. ``expected``: the
    shape asked for, in words; ``advice``: how to make it."""
    def image_like(obj):
        # (An array-like, such as a DataFrame with columns "mesh" and
        # "data", is never one: nibabel's and nilearn's images have no
        # __array__.)
        return (isinstance(obj, (str, bytes, os.PathLike)) or (
            not hasattr(obj, "__array__")
            and (hasattr(obj, "get_fdata") or (hasattr(obj, "mesh") and hasattr(obj, "data")))))

    listed = isinstance(X, (list, tuple)) and len(X) > 0 and image_like(X[0])
    if listed or image_like(X):
        first = X[0] if listed else X
        if advice is READ_IMAGES and hasattr(first, "mesh"):
            advice = READ_SURFACES
        if listed:
            what = f"a {type(X).__name__} of {type(X[0]).__name__}"
        elif isinstance(X, (str, bytes, os.PathLike)):
            what = f"the {type(X).__name__} {str(X)!r}"
        else:
            what = f"a {type(X).__name__}"
        raise TypeError(
            f"{input_name} must be an array of shape {expected}; got {what}. {advice}")
    shape, dtype = getattr(X, "shape", None), getattr(X, "dtype", None)
    if isinstance(X, (list, tuple)):
        # A list's shape and type: of the array it makes (numbers or rows).
        as_array = np.asarray(X)
        shape, dtype = as_array.shape, as_array.dtype
    if isinstance(dtype, np.dtype) and dtype.kind == "c":
        # (scikit-learn's own error prints every value.)
        raise complex_data_error(input_name, dtype)
    if isinstance(dtype, np.dtype) and dtype.kind in "US":
        # Converted to float64 without a word otherwise (scikit-learn's
        # dtype="numeric" rejects them too).
        raise ValueError(f"{input_name} holds text (dtype {dtype}), not numbers: pass real "
                         f"signals, such as {input_name}.astype(float) if the text is numbers")
    if not allow_1d and shape is not None and len(shape) == 1:
        raise ValueError(
            f"{input_name} must be 2-D (n_samples, n_features); got a 1-D array of shape "
            f"{tuple(shape)}. Reshape your data: {input_name}[None] (or "
            f"{input_name}.reshape(1, -1)) is one sample of {shape[0]} features")


def transposed_hint(n_expected, n_samples, input_name="X"):
    """The end of a size error where ``n_expected`` features were asked
    of X: a hint when X's ``n_samples`` rows, not its columns, match."""
    if n_samples is not None and n_samples == n_expected:
        return (f"; {input_name} has {n_samples} rows: is it transposed? {input_name} is "
                f"(n_samples, n_features), one row per scan ({input_name}.T swaps them)")
    return ""


def check_data(X, estimator=None, reset=None, check_values=True, input_name="X"):
    """sklearn's standard validation of a (n_samples, n_features) float matrix.

    float32 stays float32 (no copy); anything else real becomes float64.
    With ``reset`` (True or False) and an ``estimator``, goes through
    ``validate_data`` so that ``n_features_in_``/``feature_names_in_`` are
    set or checked. ``check_values=False`` leaves the NaN/infinity scan to
    the caller (who may prove X finite more cheaply, see
    ``fastrena.agglomeration.cluster_means_checked``).

    For a Dask array: ``fastrena._chunked.check_data``.
    """
    check_matrix_like(X, input_name)
    kwargs = dict(dtype=list(FLOAT_DTYPES), ensure_min_samples=1,
                  ensure_min_features=1, ensure_all_finite=False)
    if reset is None:
        X = check_array(X, estimator=estimator, input_name=input_name, **kwargs)
    else:
        # (validate_data names X itself.)
        X = validate_data(estimator, X, reset=reset, **kwargs)
    if check_values:
        check_finite(X, input_name)
    return X
