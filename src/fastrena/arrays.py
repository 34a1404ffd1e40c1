"""The in-memory backend: ReNA's passes over a numpy array.

Each function here has a namesake in :mod:`fastrena._chunked`, the backend
for Dask arrays (chunked along samples), which gives the same values bit
for bit; :func:`fastrena.backends.backend_of` picks one per call. The
passes themselves are the numba kernels of :mod:`fastrena._kernels`.
"""

import math
from contextlib import nullcontext
from typing import NamedTuple

import numpy as np

from . import _kernels
from ._validation import check_data, check_finite, is_finite

__all__ = [
    "check_data", "check_finite", "cluster_means", "cluster_means_checked",
    "cluster_sums_divided_into", "edge_weights", "edge_weights_and_first_sample",
    "WrittenCopy", "expand_clusters", "feature_major_copy", "gathered", "is_feature_major",
    "live_rows",
    "max_abs", "means_of",
    "prepare",
    "reduce_signals", "reduce_signals_in_place", "scale_by_power_of_two", "signal_store",
    "unit_exponent", "unit_scale_exponent", "worker_pool",
]


#: Whether the ``"ward"`` levels may overwrite their own reduced signals
#: (``reduce_signals_in_place``): only arrays this backend made in memory.
REDUCES_IN_PLACE = True


def prepare(X):
    """The first level's signals: ``X`` itself."""
    return X


def signal_store():
    """Where the levels' reduced signals are kept: in memory, as arrays."""
    return nullcontext()


def worker_pool():
    """The pool of worker processes a fit's passes share (the chunked
    backend's, for Dask's processes scheduler): none in memory."""
    return nullcontext()


def _mapped_empty(shape, dtype):
    """``np.empty(shape, dtype)`` whose memory is already mapped
    (:func:`fastrena._kernels.mapped_in_order`: its values are still
    meaningless).

    The system maps (and clears) a new array's pages when they are first
    written. :func:`feature_major_copy`'s tiles, written from two threads at
    once into fresh pages, paid far more for that than one thread walking
    the pages in order first: a (100, 235,375) float64 copy took 59 ms
    (40-86 ms) into ``np.empty``'s memory and 33.5 ms (33-34 ms) in all
    into this function's, float32 36 ms (33-146 ms) against 24.4 ms; in
    whole ``"ward"`` fits, 46 ms against 39 ms (float64). Not a rule for
    every new array: the cluster means expanded into a new float32 array
    (``inverse_transform``) took 1.23x the time with it."""
    return _kernels.mapped_in_order(np.empty(shape, dtype=dtype))


def is_feature_major(F):
    """Whether each node's samples are contiguous (F is a transposed C array)."""
    return abs(F.strides[0]) < abs(F.strides[1])


def edge_weights(F, u, v):
    """Squared Euclidean distance between the signals of each edge's ends.

    Parameters
    ----------
    F : ndarray, shape (n_samples, n_nodes), float32 or float64, any layout
    u, v : ndarray of int64, shape (n_edges,)

    Returns
    -------
    ndarray of float64, shape (n_edges,)
        Accumulated in float64 in a fixed order (see
        ``fastrena._kernels.SAMPLE_BLOCK``), so the result does not depend on
        the memory layout of ``F`` or the number of threads (and
        ``fastrena._chunked.edge_weights`` gives the same bits chunk by
        chunk).
    """
    if is_feature_major(F):
        return _kernels.edge_weights_feature_major(F.T, u, v)
    return _kernels.edge_weights_sample_major(F, u, v)


def edge_weights_into(F, rows, u, v, edges, out):
    """``out[edges]`` = the :func:`edge_weights` of those edges, node i's
    signal being ``F[:, rows[i]]`` (or ``F[:, i]`` if ``rows`` is None):
    the same bits, without gathering the ends first when F is
    feature-major."""
    if is_feature_major(F):
        _kernels.edge_weights_feature_major(F.T, u, v, rows, edges, out)
        return
    lo, hi = u[edges], v[edges]
    if rows is not None:
        lo, hi = rows[lo], rows[hi]
    out[edges] = edge_weights(F, lo, hi)


def cluster_sums_divided_into(F, labels, divisors, out, weights=None):
    """``out[s, c] = sum(F[s, labels == c]) / divisors[c]`` (each term times
    ``weights[i]`` if given), sums in float64 in feature order, into ``out``
    of any layout. Returns whether all the results are finite."""
    rows = (_kernels.ROWS_FEATURE_MAJOR if is_feature_major(F)
            else _kernels.ROWS_SAMPLE_MAJOR)
    return _kernels.cluster_sums_divided_into(F, labels, divisors, out, rows, weights)


def cluster_means(X, labels, divisors):
    """``out[s, c] = sum(X[s, labels == c]) / divisors[c]`` in one pass.

    The output has X's float dtype; sums run in float64.
    """
    return cluster_means_checked(X, labels, divisors)[0]


def cluster_means_checked(X, labels, divisors):
    """:func:`cluster_means` and whether X is finite.

    Finite means prove X finite (a NaN or infinity always reaches its
    cluster's mean), so X itself is only scanned when some mean is not.
    Finite values whose sum overflows float64 (beyond ~1e308) are not an
    error: their means are then computed from X scaled by a power of two
    (exact) and scaled back, so they are right unless the mean itself (times
    the square root of the size, for l2-preserving ``divisors``) is beyond
    the range of X's dtype, where it is infinite.
    """
    out = np.empty((X.shape[0], divisors.shape[0]), dtype=X.dtype)
    finite = cluster_sums_divided_into(X, labels, divisors, out)
    if not finite and is_finite(X):
        exponent = unit_scale_exponent(X)
        cluster_sums_divided_into(scale_by_power_of_two(X, exponent), labels, divisors,
                                  out)
        with np.errstate(over="ignore"):
            out = scale_by_power_of_two(out, -exponent)
        finite = True
    return out, finite


def max_abs(F):
    """Largest absolute value in ``F`` (any layout); 0.0 if F is all
    zeros. NaN is ignored."""
    rows = F.T if is_feature_major(F) else F
    return float(_kernels.row_max_abs(rows).max(initial=0.0))


def unit_scale_exponent(F):
    """The integer k such that ``F * 2**k`` has its largest magnitude in
    [0.5, 1); 0 when F is all zeros or holds an infinity."""
    return unit_exponent(max_abs(F))


def unit_exponent(largest):
    """The integer k that brings a largest magnitude ``largest`` into
    [0.5, 1) when multiplied by ``2**k``; 0 for 0 or infinity."""
    if largest == 0.0 or not math.isfinite(largest):
        return 0
    return -math.frexp(largest)[1]


def scale_by_power_of_two(F, exponent):
    """``F * 2**exponent``, exact (but for values pushed below the smallest
    normal number), in F's dtype and layout."""
    if exponent == 0:
        return F
    return np.ldexp(F, exponent).astype(F.dtype, copy=False)


def reduce_signals(F, labels, n_new, store=None, weights=None):
    """Signals of the next level: the mean of each new node's members,
    weighted by ``weights`` (one per member) if given.

    The result is feature-major (the transpose of a C-ordered
    (n_new, n_samples) array): each node's samples are contiguous, which
    is what the weight and reduction kernels of the later levels stream
    through. Its size is that of X times n_new / n_features (about a
    quarter after the first level). Also returns whether every mean is
    finite. ``store`` is for the chunked backend's signature (unused).
    """
    divisors = np.bincount(labels, weights=weights, minlength=n_new).astype(np.float64)
    out_t = np.empty((n_new, F.shape[0]), dtype=F.dtype)
    # Weighted means always by the member-ordered kernel, which copies a
    # lone member exactly, whatever the layout.
    if weights is not None or is_feature_major(F):
        order, start = _kernels.members_by_cluster(labels, n_new)
        finite = _kernels.cluster_means_feature_major(F.T, order, start, divisors, out_t,
                                                      weights)
    else:
        finite = cluster_sums_divided_into(F, labels, divisors, out_t.T, weights)
    return out_t.T, finite


def reduce_signals_in_place(F, rows, labels, n_new, weights):
    """:func:`reduce_signals` with ``weights`` of signals kept as rows of
    ``F`` (node i's signal is ``F[:, rows[i]]``; F an in-memory,
    feature-major array this module made), written over F: each merged
    node's mean replaces its first member's row, a node left alone keeps
    its row. The same values as :func:`reduce_signals`, bit for bit,
    without moving the signals of the nodes left alone. Returns the new
    nodes' rows and whether every new mean is finite."""
    divisors = np.bincount(labels, weights=weights, minlength=n_new).astype(np.float64)
    order, start = _kernels.members_by_cluster(labels, n_new)
    return _kernels.merge_rows_in_place(F.T, rows, order, start, divisors, weights,
                                        2 * (labels.shape[0] - n_new))


class WrittenCopy(NamedTuple):
    """A copy of X made by :func:`feature_major_copy` (``array``, and X's
    ``largest`` magnitude and whether all of it is ``finite``, as it
    returned them), since written over at the rows flagged in ``written``
    alone (a flag a row of ``array.T``: the in-place reductions of a
    ``"ward"`` fit's rounds). Copying those rows from X again gives the
    copy back (:func:`feature_major_copy` does)."""

    array: np.ndarray
    written: np.ndarray
    largest: float
    finite: bool


def feature_major_copy(F, spare=None):
    """``F`` (any layout) copied into a new feature-major array of its
    dtype (the transpose of a C-ordered (n_features, n_samples) array):
    each feature's samples contiguous, the same values bit for bit; and,
    read on the way, :func:`max_abs` of F and whether every value of F is
    finite.

    ``spare``, if given, is an array the caller no longer needs: when it is
    such a feature-major array of F's shape and dtype, the copy is written
    into it rather than into new memory (whose pages the system would
    first have to map and clear: on the 2 mm mask with 100 float32
    samples, 21 ms against 28 ms). Or a :class:`WrittenCopy` of F: only
    its rows written over are copied again (a ``"ward"`` fit's rounds
    write about half of them: at 2 mm x 100 samples 11 ms, float32, and
    19-21 ms, float64, against 27-31 and 34-36 ms for the whole copy)."""
    handed = spare if isinstance(spare, WrittenCopy) else None
    if handed is not None:
        spare = handed.array
    fits = (spare is not None and spare.shape == F.shape and spare.dtype == F.dtype
            and is_feature_major(spare) and spare.T.flags.c_contiguous
            and not np.may_share_memory(spare, F))
    if fits and handed is not None:
        _kernels.restore_rows(F, spare.T, handed.written)
        return spare, handed.largest, handed.finite
    out = spare.T if fits else _mapped_empty((F.shape[1], F.shape[0]), F.dtype)
    out, largest, finite = _kernels.feature_major_copy(F, F.dtype, out)
    return out.T, largest, finite


def live_rows(F, rows):
    """The signals of the nodes kept as ``rows`` of ``F`` (see
    :func:`reduce_signals_in_place`), as a new feature-major array with
    node i in row i."""
    return np.ascontiguousarray(F.T[rows]).T


def expand_clusters(X_red, labels, divisors=None):
    """``out[s, i] = X_red[s, labels[i]]``, after dividing ``X_red`` by
    ``divisors`` (per cluster) if given; X_red's float dtype."""
    if divisors is not None:
        X_red = (X_red / divisors).astype(X_red.dtype, copy=False)
    out = np.empty((X_red.shape[0], labels.shape[0]), dtype=X_red.dtype)
    _kernels.expand_clusters(X_red, labels, out)
    return out


def edge_weights_and_first_sample(F, u, v):
    """:func:`edge_weights`, and F's first sample in float64 (a copy)."""
    return edge_weights(F, u, v), np.array(F[0], dtype=np.float64)


def means_of(X, labels, divisors, locate=True):
    """``transform``'s cluster means of ``X``: computed here (lazy in the
    chunked backend, ``locate=False``: its blocks' rows are not X's); NaN
    or infinity in ``X`` raise scikit-learn's error, with where they are
    (:func:`fastrena._validation.check_finite`)."""
    means, finite = cluster_means_checked(X, labels, divisors)
    if not finite:  # a bad value, or finite values whose sum overflows
        check_finite(X, locate=locate)
    return means


def gathered(X):
    """``X`` whole in memory, for passes that need every sample of a
    feature at once (the boundary refinement, :mod:`fastrena.refine`):
    ``X`` itself here; the chunked backend computes it, below a size."""
    return X
