"""Recursive Neighbor Agglomeration as plain functions.

One level is: edge weights -> nearest-neighbour merge (with the exact-K
rule) -> reduction of the graph and of the signals. The estimator in
:mod:`fastrena.estimator` is a thin shell over
:func:`recursive_neighbor_agglomeration` and :func:`agglomerate`.
"""

import math
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
from sklearn.utils._param_validation import validate_params

from . import _kernels
from ._validation import (
    LINKAGES,
    check_data,
    check_finite,
    constraints_of,
    is_dask_array,
    is_finite,
)
from .graphs import FeatureGraph
from .ward import WardMerges
from .masks import resolve_graph

__all__ = [
    "LINKAGES",
    "AgglomerationResult",
    "agglomerate",
    "cluster_means",
    "edge_weights",
    "nearest_neighbor_merge",
    "recursive_neighbor_agglomeration",
]


def edge_weights(F, u, v):
    """Squared Euclidean distance between the signals of each edge's ends.

    Parameters
    ----------
    F : ndarray, shape (n_samples, n_nodes), float32 or float64, any layout
        Or a Dask array chunked along samples, each chunk but the last a
        multiple of 64 samples with all the nodes (see
        ``fastrena._chunked.sample_aligned``): one pass over it.
    u, v : ndarray of int64, shape (n_edges,)

    Returns
    -------
    ndarray of float64, shape (n_edges,)
        Accumulated in float64 in a fixed order (see
        ``fastrena._kernels.SAMPLE_BLOCK``), so the result does not depend on
        the memory layout of ``F``, the number of threads, or how a Dask
        array is chunked.
    """
    if is_dask_array(F):
        from ._chunked import chunked_edge_weights

        return chunked_edge_weights(F, u, v)
    if _is_feature_major(F):
        return _kernels.edge_weights_feature_major(F.T, u, v)
    return _kernels.edge_weights_sample_major(F, u, v)


#: Squared edge distances are trusted on the first level when their largest
#: lies in this range, and on every level when it is finite. Outside it
#: (edge differences beyond ~1e90 or below ~1e-90) the values are near those
#: whose squares, sums or means over- or underflow float64 (~1e150 and
#: ~1e-160 for squares, ~1e308 for sums); the signals are then
#: multiplied by the power of two that brings their largest magnitude into
#: [0.5, 1) (see :func:`unit_scaled`). That is exact, so the labels are
#: those of any other power-of-two multiple of the data.
WEIGHT_RANGE = (2.0 ** -600, 2.0 ** 600)

#: ``"ward"`` levels overwrite their own reduced signals with the next
#: level's (:func:`reduce_signals_in_place`) when these stay below this
#: magnitude: sums of at most 2**63 of them, weighted by sizes, stay
#: finite, so the in-place means never need the overflow rescaling, which
#: needs the previous level's signals intact.
IN_PLACE_LIMIT = 2.0 ** 900


def nearest_neighbor_merge(n_nodes, u, v, weights, threshold, n_clusters, *,
                           mutual=False, key=None):
    """One level's grouping: labels of the new nodes and their number.

    Every node chooses its lightest edge; edges within a relative
    ``threshold`` of it tie, and the node chooses one of them as if the
    signal ``key`` (one value per node, such as the first sample: see
    :func:`edge_weights_and_tie_signal`) carried a fixed infinitesimal
    noise, then by a fixed pseudo-random edge priority (see
    ``fastrena._kernels.nearest_neighbor_edges``); edges of weight 0 are
    all kept. A chosen edge is kept (with ``mutual``, only when both its
    ends chose it); the components of the kept edges are the new nodes. If
    they would be fewer than ``n_clusters``, kept edges are added one at a
    time until exactly ``n_clusters`` remain, largest index gap first
    (nilearn's order), ties to the edge first in ``(u, v)`` order.

    Returns
    -------
    labels : ndarray of int64, shape (n_nodes,)
        Numbered in order of first appearance.
    n_new : int
    """
    key = _kernels.NO_KEY if key is None else key
    keep = _kernels.nearest_neighbor_edges(n_nodes, u, v, weights, threshold, mutual, key)
    labels, n_new = _kernels.connected_components(n_nodes, u, v, keep)
    if n_new < n_clusters:
        kept = np.flatnonzero(keep)
        order = np.argsort(u[kept] - v[kept], kind="stable")
        labels, n_new = _kernels.union_in_order(n_nodes, u, v, kept[order], n_clusters)
    return labels, int(n_new)


def _is_feature_major(F):
    return abs(F.strides[0]) < abs(F.strides[1])


def cluster_sums_divided_into(F, labels, divisors, out, weights=None):
    """``out[s, c] = sum(F[s, labels == c]) / divisors[c]`` (each term times
    ``weights[i]`` if given), sums in float64 in feature order, into ``out``
    of any layout. Returns whether all the results are finite."""
    rows = (_kernels.ROWS_FEATURE_MAJOR if _is_feature_major(F)
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
    """Largest absolute value in ``F`` (an array of any layout, or a Dask
    array: one pass); 0.0 if F is all zeros. NaN is ignored."""
    if is_dask_array(F):
        from ._chunked import chunked_max_abs

        return chunked_max_abs(F)
    rows = F.T if _is_feature_major(F) else F
    return float(_kernels.row_max_abs(rows).max(initial=0.0))


def unit_scale_exponent(F):
    """The integer k such that ``F * 2**k`` has its largest magnitude in
    [0.5, 1); 0 when F is all zeros or holds an infinity."""
    largest = max_abs(F)
    if largest == 0.0 or not math.isfinite(largest):
        return 0
    return -math.frexp(largest)[1]


def scale_by_power_of_two(F, exponent):
    """``F * 2**exponent``, exact (but for values pushed below the smallest
    normal number), in F's dtype and layout; a Dask array stays lazy."""
    if exponent == 0:
        return F
    if is_dask_array(F):
        return F.map_blocks(np.ldexp, exponent, dtype=F.dtype)
    return np.ldexp(F, exponent).astype(F.dtype, copy=False)


def unit_scaled(F):
    """``F`` times the power of two that brings its largest magnitude into
    [0.5, 1), and whether that changed anything."""
    exponent = unit_scale_exponent(F)
    return scale_by_power_of_two(F, exponent), exponent != 0


def _weights_in_range(w, first_level):
    largest = w.max()
    return largest <= WEIGHT_RANGE[1] and (not first_level or largest >= WEIGHT_RANGE[0])


def reduce_signals(F, labels, n_new, store=None, weights=None):
    """Signals of the next level: the mean of each new node's members,
    weighted by ``weights`` (one per member) if given.

    The result is feature-major (the transpose of a C-ordered
    (n_new, n_samples) array): each node's samples are contiguous, which
    is what the weight and reduction kernels of the later levels stream
    through. Its size is that of X times n_new / n_features (about a
    quarter after the first level). Also returns whether every mean is
    finite. A Dask ``F`` gives a Dask array, computed and kept by ``store``
    (a ``fastrena._chunked.SignalStore``), chunk by chunk the same values.
    """
    if is_dask_array(F):
        from ._chunked import chunked_reduce_signals

        return chunked_reduce_signals(F, labels, n_new, store, weights)
    divisors = np.bincount(labels, weights=weights, minlength=n_new).astype(np.float64)
    out_t = np.empty((n_new, F.shape[0]), dtype=F.dtype)
    # Weighted means always by the member-ordered kernel, which copies a
    # lone member exactly, whatever the layout.
    if weights is not None or _is_feature_major(F):
        order, start = _kernels.members_by_cluster(labels, n_new)
        finite = _kernels.cluster_means_feature_major(F.T, order, start, divisors, out_t,
                                                      weights)
    else:
        finite = cluster_sums_divided_into(F, labels, divisors, out_t.T, weights)
    return out_t.T, finite


def reduce_signals_in_place(F, labels, n_new, weights):
    """:func:`reduce_signals` with ``weights``, overwriting ``F`` (an
    in-memory, feature-major array this module made): the same values,
    without a new array per level."""
    divisors = np.bincount(labels, weights=weights, minlength=n_new).astype(np.float64)
    order, start = _kernels.members_by_cluster(labels, n_new)
    FT = F.T
    finite = _kernels.cluster_means_in_place(FT, order, start, divisors, weights)
    return FT[:n_new].T, finite


def expand_clusters(X_red, labels, divisors=None):
    """``out[s, i] = X_red[s, labels[i]]``, after dividing ``X_red`` by
    ``divisors`` (per cluster) if given; X_red's float dtype."""
    if divisors is not None:
        X_red = (X_red / divisors).astype(X_red.dtype, copy=False)
    out = np.empty((X_red.shape[0], labels.shape[0]), dtype=X_red.dtype)
    _kernels.expand_clusters(X_red, labels, out)
    return out


def _signal_store(X):
    """Where a Dask fit keeps its reduced signals (nothing for arrays)."""
    if is_dask_array(X):
        from ._chunked import SignalStore

        return SignalStore()
    return nullcontext()


@dataclass(frozen=True)
class AgglomerationResult:
    """What :func:`agglomerate` found.

    Attributes
    ----------
    labels : ndarray of int64, shape (n_features,)
    n_clusters : int
    n_levels : int
        Levels run.
    messages : tuple of str
        Why fewer than requested clusters could not be reached, if so.
    """

    labels: np.ndarray
    n_clusters: int
    n_levels: int
    messages: tuple = ()


def _log(verbose, message):
    if verbose:
        print(f"[fastrena] {message}", flush=True)


def agglomerate(X, graph, n_clusters, n_iter=10, threshold=1e-7, verbose=0,
                on_level=None, check_values=False, linkage="nilearn", on_step=None):
    """ReNA on validated inputs: ``X`` (n_samples, n_nodes) float, a graph.

    ``linkage`` is ``"nilearn"`` or ``"ward"`` (see :class:`fastrena.ReNA`).
    ``X`` may be a Dask array: the levels then run as Dask passes (see
    :mod:`fastrena._chunked`) and give the labels of the in-memory fit of
    the same values.

    No warning is emitted here: the reasons for missing ``n_clusters`` come
    back in ``messages`` (so a cached result reports them again). Callers
    should use :func:`recursive_neighbor_agglomeration` or ``ReNA``.
    ``on_level``, if given, is called as ``on_level(level, n_before,
    n_after)`` after each level (progress bars); it does not change the
    result. ``on_step``, likewise, as ``on_step(level, step, n_before,
    n_after)`` when a step of a level starts (``step`` names it; ``n_after``
    is None until the level's merge is decided). ``check_values=True``
    raises scikit-learn's error for NaN or infinite X: the first level's
    means cover every feature, so checking them (a quarter of X's size)
    replaces a scan of X whenever a level reduces the signals.
    """
    with _signal_store(X) as store:
        n, u, v, labels, level = _run_levels(X, graph, n_clusters, n_iter, threshold,
                                             verbose, on_level, check_values, store,
                                             linkage, on_step)
    messages = []
    if n > n_clusters:
        n_components = FeatureGraph(n, u, v).n_connected_components()
        if n_components > n_clusters:
            messages.append(
                f"The feature graph has {n_components} connected components, more "
                f"than n_clusters={n_clusters}: clusters never span two components, "
                f"so at least {n_components} clusters are returned"
            )
        if n > max(n_components, n_clusters):
            target = max(n_components, n_clusters)
            # Each level at least halves every component that still has an
            # edge, so the largest component bounds the levels needed.
            needed = max(1, math.ceil(math.log2(graph.largest_component_size())))
            messages.append(
                f"n_iter={n_iter} levels were not enough to reach {target} clusters: "
                f"stopped at {n}; n_iter={needed} always suffices here"
            )
    return AgglomerationResult(labels, int(n), level, tuple(messages))


def edge_weights_and_tie_signal(F, u, v):
    """:func:`edge_weights`, and the first sample of ``F`` in float64 (times
    -1 if its first value unequal to the first is below it): the signal whose
    infinitesimal noise breaks ties (the ``key`` of
    :func:`nearest_neighbor_merge`). A Dask ``F`` is read once for both."""
    if is_dask_array(F):
        from ._chunked import chunked_edge_weights

        w, key = chunked_edge_weights(F, u, v, first_sample=True)
    else:
        w, key = edge_weights(F, u, v), np.array(F[0], dtype=np.float64)
    # Oriented so that its first value unequal to key[0] is above it: the
    # noise then flips with the data, so -X (and X + c) gets X's labels.
    differs = np.flatnonzero(key != key[0]) if key.shape[0] else key
    if differs.shape[0] and key[differs[0]] < key[0]:
        np.negative(key, out=key)
    return w, key


def _weights_and_key(F, u, v, tie_signal):
    """Edge weights and the tie key (empty unless ``tie_signal``)."""
    if tie_signal:
        return edge_weights_and_tie_signal(F, u, v)
    return edge_weights(F, u, v), _kernels.NO_KEY


def _step(on_step, level, step, n_before, n_after=None):
    """Tell ``on_step`` (if any) that a step of a level starts."""
    if on_step is not None:
        on_step(level, step, n_before, n_after)


def _run_levels(X, graph, n_clusters, n_iter, threshold, verbose, on_level, check_values,
                store, linkage="nilearn", on_step=None):
    """The levels of :func:`agglomerate`: (nodes left, their edges u and v,
    labels of the features, levels run)."""
    n = graph.n_nodes
    u, v = graph.u, graph.v
    labels = np.arange(n, dtype=np.int64)
    F = X
    if is_dask_array(X):
        from ._chunked import sample_aligned

        F = sample_aligned(X)
    # "ward" runs rounds until its cut is settled (see fastrena.ward.WardMerges);
    # n_iter bounds the levels of nilearn's rule only.
    ward = WardMerges(n, n_clusters, u.shape[0]) if linkage == "ward" else None
    level = 0
    # "ward" rounds leave most nodes alone: their edges keep their weights
    # (weights carried, and the indices of the edges still to compute).
    carried = None
    # Whether "ward" levels may reduce the signals in place (see below).
    in_place = False
    while u.shape[0] > 0 and (ward is not None or (level < n_iter and n > n_clusters)):
        start = time.perf_counter()
        _step(on_step, level + 1, "edge weights", n)
        # The default rule breaks ties by noise on the first sample, "ward"
        # by the edge priority alone (see nearest_neighbor_merge).
        key = _kernels.NO_KEY
        if carried is None:
            w, key = _weights_and_key(F, u, v, ward is None)
        else:
            w, todo = carried
            w[todo] = edge_weights(F, u[todo], v[todo])
            carried = None
        if not _weights_in_range(w, level == 0):
            F, rescaled = unit_scaled(F)
            if rescaled:
                w, key = _weights_and_key(F, u, v, ward is None)
        _step(on_step, level + 1, "merging", n)
        if ward is not None:
            cost = ward.cost(u, v, w)
            if ward.settled(n, cost):
                break
            step, n_new = ward.merge(n, u, v, cost, threshold, F)
            if step is None:
                # Ward's greedy order has finished the job on this graph.
                level += 1
                n_end = max(n_clusters, n - len(ward.heights[-1]))
                _log(verbose, f"level {level}: {n} -> {n_end} clusters in Ward's greedy "
                              f"order ({time.perf_counter() - start:.3f} s)")
                if on_level is not None:
                    on_level(level, n, n_end)
                break
        else:
            step, n_new = nearest_neighbor_merge(n, u, v, w, threshold, n_clusters, key=key)
            labels = step[labels]
        _step(on_step, level + 1, "reducing the graph", n, n_new)
        u_old, v_old = u, v
        u, v = _kernels.reduce_edges(u, v, step, n_new)
        if ward is not None:
            carried = _kernels.carry_weights(u_old, v_old, w, step, n_new, u, v)
        level += 1
        if u.shape[0] > 0 and (ward is not None or (level < n_iter and n_new > n_clusters)):
            # Level 1's members are single features: plain means are true
            # means; later "ward" levels weight each node by its size.
            weights = ward.sizes_before if ward is not None and level > 1 else None
            _step(on_step, level, "reducing the signals", n, n_new)
            if weights is not None and in_place:
                F_next, finite = reduce_signals_in_place(F, step, n_new, weights)
            else:
                F_next, finite = reduce_signals(F, step, n_new, store, weights)
            if not finite:
                if check_values:
                    # The first level's means cover every feature: finite
                    # means prove a finite X without scanning it.
                    check_finite(X)
                # Finite values whose sums overflow: scale them down, exactly
                # (then no weight is carried: they were of the old scale).
                F, _ = unit_scaled(F)
                F_next, _ = reduce_signals(F, step, n_new, store, weights)
                carried = None
            check_values = False
            if ward is not None and level == 1 and not is_dask_array(F_next):
                # Later levels may overwrite this array (not the caller's
                # X): their weighted sums, at most n_features times its
                # largest value, cannot overflow below 2**900.
                in_place = max_abs(F_next) < IN_PLACE_LIMIT
            F = F_next
            if store is not None:
                store.release_previous()
        _log(verbose, f"level {level}: {n} -> {n_new} clusters "
                      f"({time.perf_counter() - start:.3f} s)")
        if on_level is not None:
            on_level(level, n, n_new)
        n = n_new
    if check_values:
        check_finite(X)
    if ward is not None:
        labels, n = ward.labels()
        u, v = _kernels.reduce_edges(graph.u, graph.v, labels, n)
    return n, u, v, labels, level


def effective_n_clusters(n_clusters, n_features):
    """``min(n_clusters, n_features)``, warning when it has to cut."""
    if n_clusters > n_features:
        warnings.warn(
            f"n_clusters={n_clusters} is larger than the number of features "
            f"({n_features}); using n_clusters={n_features}",
            UserWarning,
            stacklevel=3,
        )
        return n_features
    return n_clusters


def emit_messages(result, stacklevel=3):
    for message in result.messages:
        warnings.warn(message, UserWarning, stacklevel=stacklevel)


@validate_params({"X": "no_validation", **constraints_of(
    "mask_img", "n_clusters", "n_iter", "threshold", "connectivity", "verbose", "linkage")},
    prefer_skip_nested_validation=True)
def recursive_neighbor_agglomeration(X, mask_img=None, n_clusters=2, n_iter=10,
                                     threshold=1e-7, *, connectivity=None, verbose=0,
                                     linkage="nilearn"):
    """Recursive Neighbor Agglomeration of the features of ``X``.

    Parameters
    ----------
    X : array-like or dask array, shape (n_samples, n_features)
        float32 stays float32; other real types become float64. A Dask
        array is read chunk by chunk (twice), never whole.
    mask_img : see :class:`fastrena.ReNA`, optional
        Defines the feature graph (None: a 1-D chain, unless ``connectivity``).
    n_clusters : int, default=2
    n_iter : int, default=10
    threshold : float in [0, 1), default=1e-7
    connectivity : sparse matrix, shape (n_features, n_features), optional
    verbose : int or bool, default=0
    linkage : {"nilearn", "ward"}, default="nilearn"
        See :class:`fastrena.ReNA`.

    Returns
    -------
    n_clusters_ : int
    labels : ndarray of int64, shape (n_features,)
        Numbered ``0..n_clusters_-1`` in order of first appearance.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0., 0.1, 5., 5.1, 9., 9.2]])
    >>> recursive_neighbor_agglomeration(X, n_clusters=3)
    (3, array([0, 0, 1, 1, 2, 2]))
    """
    n_clusters, n_iter, threshold, verbose = (int(n_clusters), int(n_iter), float(threshold),
                                              int(verbose))
    X = check_data(X, check_values=False)
    graph, _ = resolve_graph(mask_img, connectivity, X.shape[1])
    k = effective_n_clusters(n_clusters, X.shape[1])
    result = agglomerate(X, graph, k, n_iter, threshold, verbose, check_values=True,
                         linkage=linkage)
    emit_messages(result)
    return result.n_clusters, result.labels
