"""Recursive Neighbor Agglomeration as plain functions.

One level is: edge weights -> nearest-neighbour merge (with the exact-K
rule) -> reduction of the graph and of the signals. The estimator in
:mod:`fastrena.estimator` is a thin shell over
:func:`recursive_neighbor_agglomeration` and :func:`agglomerate`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from sklearn.utils._param_validation import validate_params

from . import _kernels, arrays
from ._kernels.caching import compile_notice
from ._validation import LINKAGES, constraints_of
from .arrays import expand_clusters
from .backends import backend_of
from .errors import warn_user
from .graphs import FeatureGraph
from .layouts import feature_space
from .refine import refine_iter_for, refined_fit_labels
from .tree import LevelRecorder, ward_tree
from .ward import WardMerges

if TYPE_CHECKING:  # annotations only: numpy.typing is not loaded at run time
    from numpy.typing import ArrayLike

__all__ = [
    "LINKAGES",
    "AgglomerationResult",
    "agglomerate",
    "cluster_means",
    "edge_weights",
    "expand_clusters",
    "nearest_neighbor_merge",
    "recursive_neighbor_agglomeration",
]


def edge_weights(F, u, v):
    """Squared Euclidean distance between the signals of each edge's ends:
    :func:`fastrena.arrays.edge_weights` for an array (any layout), or the
    chunked backend's for a Dask array chunked along samples, each chunk
    but the last a multiple of 64 samples with all the nodes (see
    ``fastrena._chunked.sample_aligned``): the same float64 bits."""
    return backend_of(F).edge_weights(F, u, v)


def cluster_means(X, labels, divisors):
    """``out[s, c] = sum(X[s, labels == c]) / divisors[c]`` in one pass
    (:func:`fastrena.arrays.cluster_means`; an in-memory X). Every divisor
    must be positive and finite (a ValueError names the first that is not,
    where the kernel would raise numba's ZeroDivisionError or return
    infinities)."""
    divisors = np.asarray(divisors, dtype=np.float64)
    bad = np.flatnonzero(~(np.isfinite(divisors) & (divisors > 0)))
    if bad.shape[0]:
        raise ValueError(f"divisors must be positive and finite; divisors[{bad[0]}] = "
                         f"{float(divisors[bad[0]])!r}")
    return arrays.cluster_means(X, labels, divisors)


def reduce_signals(F, labels, n_new, store=None, weights=None):
    """Signals of the next level (see :func:`fastrena.arrays.reduce_signals`;
    a Dask ``F`` is reduced chunk by chunk and kept by ``store``)."""
    return backend_of(F).reduce_signals(F, labels, n_new, store, weights)


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


def unit_scaled(backend, F):
    """``F`` times the power of two that brings its largest magnitude into
    [0.5, 1), and whether that changed anything."""
    exponent = arrays.unit_exponent(backend.max_abs(F))
    return backend.scale_by_power_of_two(F, exponent), exponent != 0


def _weights_in_range(w, first_level):
    largest = w.max()
    return largest <= WEIGHT_RANGE[1] and (not first_level or largest >= WEIGHT_RANGE[0])


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
    tree : fastrena.tree.MergeTree or None
        Every merge, with ``full_tree=True``.
    refine_iter : int
        Sweeps of boundary refinement run (:mod:`fastrena.refine`).
    refine_moves : tuple of int
        Features moved by each sweep.
    """

    labels: np.ndarray
    n_clusters: int
    n_levels: int
    messages: tuple = ()
    tree: object = None
    refine_iter: int = 0
    refine_moves: tuple = ()


def _log(verbose, message):
    if verbose:
        print(f"[fastrena] {message}", flush=True)


def agglomerate(X: Any, graph: FeatureGraph, n_clusters: int, n_iter: int = 10,
                threshold: float = 1e-7, verbose: int = 0,
                on_level: Callable[[int, int, int], None] | None = None,
                check_values: bool = False, linkage: str = "nilearn",
                on_step: Callable[[int, str, int, int | None], None] | None = None,
                full_tree: bool = False,
                max_refine_iter: int | Literal["auto"] = "auto") -> AgglomerationResult:
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

    ``full_tree=True`` runs the levels until one cluster per connected
    component is left (``n_iter`` then bounds the levels only for
    ``labels``) and returns every merge (``tree``); ``labels`` are then
    what the fit without the tree gives (see :mod:`fastrena.tree`).

    ``max_refine_iter`` (an int >= 0 or ``"auto"``: see
    :func:`fastrena.refine.refine_iter_for`) sweeps of boundary refinement
    (:mod:`fastrena.refine`) then move single features between
    neighbouring clusters while the within-cluster sum of squares falls;
    ``labels`` are refined, the tree is not. ``verbose`` also has a line
    say when numba compiles (:func:`fastrena._kernels.caching.compile_notice`).
    """
    # verbose: a line says so when numba compiles (seconds of silence).
    with compile_notice(verbose > 0):
        backend = backend_of(X)
        # The pool (if any) is shut down first: its workers may still write
        # into the store's files when an error or Ctrl-C ends the fit.
        with backend.signal_store() as store, backend.worker_pool():
            n, labels, level, tree, spare = _run_levels(backend, X, graph, n_clusters, n_iter,
                                                        threshold, verbose, on_level, check_values,
                                                        store, linkage, on_step, full_tree)
        messages = []
        sweeps, moves = 0, ()
        max_sweeps = refine_iter_for(max_refine_iter, linkage)
        # After "ward", the refinement starts from a finer cut of its tree.
        ward_cut = tree.labels_at if linkage == "ward" else None
        if not full_tree:
            tree = None
        if max_sweeps > 0:
            start = time.perf_counter()
            _step(on_step, level + 1, "refining the boundaries", n, n)
            labels, sweeps, moves, message, kept_cut = refined_fit_labels(
                X, graph, labels, n, max_sweeps, ward_cut, spare=spare)
            if message is not None:
                messages.append(message)
            moves = tuple(int(m) for m in moves)
            _log(verbose, f"refinement: {sweeps} sweep{'' if sweeps == 1 else 's'} moved "
                          f"{', '.join(map(str, moves)) or 'no'} features "
                          f"({time.perf_counter() - start:.3f} s)"
                          + ("; the merge tree's cut is kept: the refined within-cluster sum of "
                             "squares is not lower" if kept_cut else ""))
        # The rounds' copy of X and the tree's cuts: not held past here.
        spare = ward_cut = None
        if n > n_clusters:
            # The clusters are connected: the graph's components are theirs.
            component_sizes = graph.component_sizes()
            n_components = component_sizes.shape[0]
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
                needed = max(1, math.ceil(math.log2(int(component_sizes.max()))))
                messages.append(
                    f"n_iter={n_iter} levels were not enough to reach {target} clusters: "
                    f"stopped at {n}; n_iter={needed} always suffices here"
                )
        return AgglomerationResult(labels, int(n), level, tuple(messages), tree, sweeps, moves)


def oriented_tie_signal(first_sample):
    """The first sample, times -1 if its first value unequal to its first
    value is below it (in place): the signal whose infinitesimal noise
    breaks ties (the ``key`` of :func:`nearest_neighbor_merge`). Oriented
    so that the noise flips with the data: -X (and X + c) gets X's labels."""
    key = first_sample
    differs = np.flatnonzero(key != key[0]) if key.shape[0] else key
    if differs.shape[0] and key[differs[0]] < key[0]:
        np.negative(key, out=key)
    return key


def _weights_and_key(backend, F, u, v):
    """Edge weights and the tie key (see :func:`oriented_tie_signal`), in
    one pass over F."""
    w, first = backend.edge_weights_and_first_sample(F, u, v)
    return w, oriented_tie_signal(first)


def _level_done(verbose, on_level, level, n_before, n_after, start, how="",
                name="level", unit="clusters"):
    """Log a level's end (``verbose``) and tell ``on_level``, if any."""
    _log(verbose, f"{name} {level}: {n_before} -> {n_after} {unit}{how} "
                  f"({time.perf_counter() - start:.3f} s)")
    if on_level is not None:
        on_level(level, n_before, n_after)


def _step(on_step, level, step, n_before, n_after=None):
    """Tell ``on_step`` (if any) that a step of a level starts."""
    if on_step is not None:
        on_step(level, step, n_before, n_after)


def _run_levels(backend, X, graph, n_clusters, n_iter, threshold, verbose, on_level, check_values,
                store, linkage="nilearn", on_step=None, full_tree=False):
    """The levels of :func:`agglomerate`: (nodes left, labels of the
    features, levels run, the merge tree or None, an array of the levels'
    own that nothing reads any more (an :class:`fastrena.arrays.WrittenCopy`
    when it is a copy of X but for rows it flags), or None)."""
    if linkage == "ward":
        return _run_ward_rounds(backend, X, graph, n_clusters, threshold, verbose, on_level,
                                check_values, store, on_step, full_tree)
    n = graph.n_nodes
    u, v = graph.u, graph.v
    labels = np.arange(n, dtype=np.int64)
    F = backend.prepare(X)
    # The full tree: the levels run to the end, each recorded as binary
    # merges.
    recorder = LevelRecorder(n) if full_tree else None
    level = 0
    while u.shape[0] > 0 and (recorder is not None or (level < n_iter and n > n_clusters)):
        start = time.perf_counter()
        _step(on_step, level + 1, "edge weights", n)
        # Ties are broken by noise on the first sample (see
        # nearest_neighbor_merge).
        w, key = _weights_and_key(backend, F, u, v)
        if not _weights_in_range(w, level == 0):
            F, rescaled = unit_scaled(backend, F)
            if rescaled:
                w, key = _weights_and_key(backend, F, u, v)
        _step(on_step, level + 1, "merging", n)
        if recorder is not None:
            keep = _kernels.nearest_neighbor_edges(n, u, v, w, threshold, False, key)
            step, n_new = _kernels.connected_components(n, u, v, keep)
            recorder.record(level + 1, u, v, keep, step, n_new)
            n_new = int(n_new)
        else:
            step, n_new = nearest_neighbor_merge(n, u, v, w, threshold, n_clusters, key=key)
            labels = step[labels]
        _step(on_step, level + 1, "reducing the graph", n, n_new)
        u, v = _kernels.reduce_edges(u, v, step, n_new)
        level += 1
        if u.shape[0] > 0 and (recorder is not None or (level < n_iter and n_new > n_clusters)):
            _step(on_step, level, "reducing the signals", n, n_new)
            F, _ = _reduced_signals(backend, X, F, step, n_new, store, None, check_values)
            check_values = False
        _level_done(verbose, on_level, level, n, n_new, start)
        n = n_new
    if check_values:
        backend.check_finite(X)
    tree = None
    if full_tree:
        tree = recorder.tree()
        # labels_ as a fit without the tree gives them (n_iter included).
        labels, n = tree.fit_labels(n_clusters, n_iter)
    return n, labels, level, tree, None


def _reduced_signals(backend, X, F, step, n_new, store, weights, check_values):
    """The next level's signals, new (:func:`reduce_signals`), and whether
    they had to be computed from F scaled down by a power of two (exact):
    when finite values' sums overflow. ``X`` is checked for NaN or infinity
    (``check_values``) when a mean is not finite."""
    F_next, finite = backend.reduce_signals(F, step, n_new, store, weights)
    if not finite:
        if check_values:
            # The first level's means cover every feature: finite means
            # prove a finite X without scanning it.
            backend.check_finite(X)
        F, _ = unit_scaled(backend, F)
        F_next, _ = backend.reduce_signals(F, step, n_new, store, weights)
    if store is not None:
        store.release_previous()
    return F_next, not finite


#: Whether in-memory ``"ward"`` fits run each round as one kernel call
#: (:meth:`fastrena.ward.WardMerges.step`) rather than step by step as the
#: chunked backend does; the same merges either way (the tests compare the
#: two).
_FUSED_WARD_ROUNDS = True


def _run_ward_rounds(backend, X, graph, n_clusters, threshold, verbose, on_level, check_values,
                     store, on_step, full_tree):
    """:func:`_run_levels` for ``linkage="ward"``: rounds of
    :class:`fastrena.ward.WardMerges` to the end (``n_iter`` does not
    bound them), the partition their merge tree's cut. A round leaves most nodes alone: the edges between
    them keep their weights, and only the others are computed."""
    n = graph.n_nodes
    u, v = graph.u, graph.v
    ward = WardMerges(n, u.shape[0])
    # In memory, a round is one kernel call (WardMerges.step); the chunked
    # backend takes the round's steps one by one (the same merges and bits).
    fused = _FUSED_WARD_ROUNDS and backend.REDUCES_IN_PLACE
    # The weights carried over, and the indices of the edges to compute.
    carried = None
    # Rounds may reduce the signals in place: node i's signal is then row
    # rows[i] of F, and a round writes the rows of the nodes it merges, no
    # others.
    rows = None
    # The rounds' new graphs, in memory reused round after round.
    buffers = _kernels.RoundBuffers(u.shape[0]) if fused else None
    # While the rounds write in place into their copy of X, the rows they
    # wrote (None once F is another array): the refinement copies those
    # alone from X again (arrays.WrittenCopy).
    written = None
    if fused:
        # From the first round on, in a feature-major copy of X: the copy
        # (a tiled transpose) and the weights read from it took less time
        # than the weights read from a C-ordered X alone (float32, 2 mm x
        # 100 samples: 0.05 + 0.03 s against 0.08 s), and the first round
        # then writes only the rows it merges (a fifth of them) rather than
        # a new array of every node's mean (0.09 s). It is as large as X:
        # so was the first round's new array (n_new / n_features of X) and
        # so is the refinement's copy, made after this one is freed.
        F, largest, finite = arrays.feature_major_copy(X)
        if check_values and not finite:
            backend.check_finite(X)
        check_values = False
        if largest < IN_PLACE_LIMIT:
            rows = np.arange(n)
            written = np.zeros(n, dtype=np.bool_)
            copied = (largest, finite)
    else:
        F = backend.prepare(X)
    level = 0
    while u.shape[0] > 0:
        start = time.perf_counter()
        _step(on_step, level + 1, "edge weights", n)
        if carried is None:
            w = backend.edge_weights(F, u, v)
        else:
            w, todo = carried
            if fused:
                arrays.edge_weights_into(F, rows, u, v, todo, w)
            else:
                w[todo] = backend.edge_weights(F, *_ends(rows, u[todo], v[todo]))
        if not _weights_in_range(w, level == 0):
            if rows is not None and level > 0:
                # The scale is that of the live signals alone, as the
                # chunked backend finds it.
                F, rows = arrays.live_rows(F, rows), np.arange(n)
                written = None
            F, rescaled = unit_scaled(backend, F)
            if rescaled:
                # A new array: not the copy of X. Every weight again: those
                # carried were of the old scale.
                written = None
                w = backend.edge_weights(F, *_ends(rows, u, v))
        _step(on_step, level + 1, "merging", n)
        if fused:
            # Signals kept in place are merged beside the graph's reduction.
            result = ward.step(n, u, v, w, threshold, F, rows, in_place=rows is not None,
                               buffers=buffers, written=written)
            step, n_new, reduced, *merged_rows = (None, 0, None) if result is None else result
        else:
            step, n_new = ward.merge(n, u, v, w, threshold, F, rows)
        if step is None:
            # Ward's greedy order has finished the job on this graph.
            level += 1
            _level_done(verbose, on_level, level, n, n - len(ward.heights[-1]), start,
                        " in Ward's greedy order", "round", "nodes")
            break
        _step(on_step, level + 1, "reducing the graph", n, n_new)
        if fused:
            u, v, w_next, todo = reduced
            carried = w_next, todo
        else:
            u_old, v_old = u, v
            u, v = _kernels.reduce_edges(u, v, step, n_new)
            carried = _kernels.carry_weights(u_old, v_old, w, step, n_new, u, v)
        level += 1
        if u.shape[0] > 0:
            _step(on_step, level, "reducing the signals", n, n_new)
            if rows is not None:
                # Their in-place sums stay finite (IN_PLACE_LIMIT).
                rows = merged_rows[0] if fused else arrays.reduce_signals_in_place(
                    F, rows, step, n_new, ward.sizes_before)[0]
            else:
                # Level 1's members are single features: plain means are
                # true means; later levels weight each node by its size.
                weights = ward.sizes_before if level > 1 else None
                F, rescaled = _reduced_signals(backend, X, F, step, n_new, store, weights,
                                               check_values)
                if rescaled:
                    # No weight is carried: they were of the old scale.
                    carried = None
                if level == 1 and backend.REDUCES_IN_PLACE and (
                        arrays.max_abs(F) < IN_PLACE_LIMIT):
                    # Later levels may overwrite this array (not the
                    # caller's X): their weighted sums, at most n_features
                    # times its largest value, cannot overflow below 2**900.
                    rows = np.arange(n_new)
            check_values = False
        _level_done(verbose, on_level, level, n, n_new, start, "", "round", "nodes")
        n = n_new
    if check_values:
        backend.check_finite(X)
    # The cut: the lowest n_features - n_clusters merges, in height order.
    tree = ward_tree(ward)
    labels, n = tree.labels_at(n_clusters)
    _log(verbose, f"cut: the {graph.n_nodes - n} lowest of "
                  f"{sum(f.shape[0] for f in ward.first)} merges leave {n} clusters")
    # The rounds' copy of X, if they made one: the refinement copies again
    # the rows the rounds wrote over, or all of X into it (its pages are
    # already mapped).
    # The tree is returned whatever full_tree: the refinement starts from a
    # finer cut of it (agglomerate drops it after).
    if written is not None:
        return n, labels, level, tree, arrays.WrittenCopy(F, written, *copied)
    return n, labels, level, tree, F if fused else None


def _ends(rows, lo, hi):
    """The signals' indices of edge ends: the nodes themselves, or their
    ``rows``."""
    return (lo, hi) if rows is None else (rows[lo], rows[hi])


def effective_n_clusters(n_clusters, n_features):
    """``min(n_clusters, n_features)``, warning (at the user's line) when
    it has to cut."""
    if n_clusters > n_features:
        warn_user(f"n_clusters={n_clusters} is larger than the number of features "
                  f"({n_features}); using n_clusters={n_features}")
        return n_features
    return n_clusters


def emit_messages(result):
    """The fit's messages (:class:`AgglomerationResult`), as warnings at the
    user's line."""
    for message in result.messages:
        warn_user(message)


@validate_params({"X": "no_validation", **constraints_of(
    "mask_img", "n_clusters", "n_iter", "threshold", "connectivity", "verbose", "linkage",
    "max_refine_iter")},
    prefer_skip_nested_validation=True)
def recursive_neighbor_agglomeration(X: ArrayLike, mask_img: Any = None, n_clusters: int = 2,
                                     n_iter: int = 10, threshold: float = 1e-7, *,
                                     connectivity: Any = None, verbose: int = 0,
                                     linkage: Literal["nilearn", "ward"] = "nilearn",
                                     max_refine_iter: int | Literal["auto"] = "auto",
                                     ) -> tuple[int, np.ndarray]:
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
    connectivity : sparse matrix, shape (n_features, n_features), or callable, optional
        See :class:`fastrena.ReNA`.
    verbose : int or bool, default=0
    linkage : {"nilearn", "ward"}, default="nilearn"
        See :class:`fastrena.ReNA`.
    max_refine_iter : int >= 0 or "auto", default="auto"
        Sweeps of boundary refinement after the merges; see
        :class:`fastrena.ReNA`.

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
    X = backend_of(X).check_data(X, check_values=False)
    graph = feature_space(mask_img, connectivity, X.shape[1], X.shape[0], data=X).graph
    k = effective_n_clusters(n_clusters, X.shape[1])
    result = agglomerate(X, graph, k, n_iter, threshold, verbose, check_values=True,
                         linkage=linkage, max_refine_iter=max_refine_iter)
    emit_messages(result)
    return result.n_clusters, result.labels
