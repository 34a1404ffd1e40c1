"""Boundary refinement: after the merges, move single features between
neighbouring clusters while that lowers the within-cluster sum of squares.

Agglomeration is greedy: once two clusters merge they never give a
feature back, so a feature merged early into the wrong side of a border
stays there. A sweep visits every feature (in index order) on the border
of its cluster ``a`` (``n_a >= 2``) and moves it to the graph-adjacent
cluster ``b`` that gains most, when (Hartigan's test, exact for one move)

    n_b / (n_b + 1) ||x - mu_b||^2  <  n_a / (n_a - 1) ||x - mu_a||^2,

the two sides being what adding ``x`` to ``b`` costs and what removing it
from ``a`` saves; the sum of squares falls by their difference. A move
never empties a cluster (so K is kept) and never disconnects one: ``b``
stays connected since ``x`` touches it, and ``a`` only when the test of
:func:`fastrena._kernels.refine_partition` proves it (the neighbours of
``x`` inside ``a`` reach one another without ``x``, in a breadth-first
search from all of them at once that reads at most
:data:`fastrena._kernels.CONNECTIVITY_BUDGET` adjacency slots; any path of
``a`` through ``x`` can then go around it). Skipping a
move is always safe, so every accepted move is provably safe and each
test is bounded: a sweep reads each feature's adjacency list once, the
signals of the border features and of their candidate clusters' means,
and at most the budget per test: ``O((n_features + n_edges) n_samples)``
whatever the degrees (a star's centre is tested once a sweep, its leaves
in O(1); on a chain, a feature inside its cluster is a cut vertex, found
within the budget).

**Pieces.** A feature that would gain by moving but holds a piece of its
cluster to the rest (a peninsula behind one feature: the search finds
that piece whole, and the other neighbours joined) moves with the piece
when moving them all lowers the sum of squares, by the same test for a
set of m features (``n_b m / (n_b + m) ||mu_S - mu_b||^2`` against
``n_a m / (n_a - m) ||mu_S - mu_a||^2``): a keeps the rest, connected,
and b gains the piece through the feature. The piece is what the search
read, within the budget, so a test still reads at most the budget's
slots and the piece's signals. On the 3 mm MNI tissue maps this lowers
the refined error by a further 0.5-0.8 % (grey matter at K/N = 0.05:
0.9550 -> 0.9496 of the unrefined fit's), fsaverage5 0.3 %, photos
0-0.2 %.

**The exchange.** Single moves stop at a local optimum that a greedy
merge order left: after the moves, some neighbouring clusters hold nearly
the same mean (merging them would cost little) while others still hold a
split that would gain much, and no single feature's move trades one for
the other. So after ``linkage="ward"`` the refinement starts from the
merge tree's cut at :data:`EXCHANGE_FRACTION` more clusters
(:func:`exchange_count`), refines those, then merges them back to
``n_clusters`` in Ward's greedy order on their current means and sizes
(:func:`fastrena._kernels.exchange.exchanged`: every merge at its current
Ward cost, ties to the smaller cluster numbers), and refines the result
with its last sweep: the clusters the tree's last merges spent go where
they lower the sum of squares most. Merged clusters are neighbours, so
they stay connected, and K is exact (at least one cluster per connected
component). The greedy merges may still end above the tree's own cut
at K (105 of 3,000 fits on small random grids of integers did, by up to
a few per cent; none of the real maps measured): the cut's sum of
squares is read from the finer cut's sums as the refinement starts, and
the cut is returned unless the refined partition's is lower by more
than 1e-12 of it (:func:`fastrena._kernels.partition_sums.cut_explains_more`;
a tie keeps the cut), so a refined fit is never worse than the unrefined
one. It costs the clusters' graph (linear in the edges) and
Ward's greedy order on it, ``O(K log K)`` cost updates of n_samples each;
on the 3 mm MNI maps it lowers the error of three plain sweeps by 0.4-1 %
in about their time (fsaverage5 1.6-3.4 %; see :data:`REFINE_ITER_WARD`).
:func:`refine_labels` runs it when given ``n_clusters``.

Determinism: features in index order within blocks of clusters whose
number depends on the number of features alone (two from 2**12
features, four from 2**20; the clusters dealt to them in order of their
first feature; one block when that deal would leave more than half of
the features waiting, a count made on the labels and the graph alone),
each block on a thread of its own for the features with
no neighbour in another block's cluster, the others after, in index
order (so the same moves on every thread count); every sum over samples
in float64 in one fixed order (eight interleaved lanes of samples,
added in a fixed tree, as vector operations of plain IEEE adds and
multiplies: :mod:`fastrena._kernels.lanes`), from each sample minus its first feature's
value (so ``X + c`` and ``-X`` read the same differences), scaled by an
exact power of two (so ``X * 2**k`` gives the same labels, and squares
cannot overflow). A
Dask array is gathered into memory first (copied, never summed), so the
labels are the in-memory fit's whatever the chunking or the cluster.
"""

import math

import numpy as np
from sklearn.utils._param_validation import validate_params

from . import _kernels, arrays
from ._validation import PARAMETERS, constraints_of
from .backends import backend_of
from .graphs import FeatureGraph, adjacency_graph

__all__ = ["EXCHANGE_FRACTION", "REFINE_ITER_WARD", "exchange_count", "refine_labels", "refined",
           "refined_fit_labels", "refine_iter_for", "within_cluster_sse"]

#: Sweeps that ``max_refine_iter="auto"`` runs after ``linkage="ward"``:
#: one on the merge tree's finer cut, the exchange, one on the clusters
#: it leaves. Most of the single moves' gain comes in the first sweep (on
#: fsaverage5's sulcal depth at K = 2,048, 0.964, 0.960 and 0.959 of the
#: unrefined error after 1, 2 and 3 sweeps, 0.959 at convergence), and the
#: exchange gains more than further sweeps: on the 3 mm MNI maps (T1, GM,
#: WM, CSF-like) 0.990-0.996 of the error of 3 plain sweeps at K/N = 0.02
#: and 0.05 in about their time, fsaverage5 0.966-0.984, the motor map
#: 0.977-0.980 (3 sweeps with it: 0.2-0.7 % lower still, for a third more
#: time).
REFINE_ITER_WARD = 2


#: The exchange re-forms this fraction of the clusters: the refinement of
#: a ``"ward"`` fit starts from the merge tree's cut at that many more
#: clusters and merges them back (see the module docstring).
EXCHANGE_FRACTION = 0.2


def exchange_count(n_clusters, n_features):
    """How many more clusters the refinement of a merge tree's cut at
    ``n_clusters`` starts from: :data:`EXCHANGE_FRACTION` of them, rounded
    up, at most the features left."""
    return max(0, min(math.ceil(EXCHANGE_FRACTION * n_clusters), n_features - n_clusters))


def refine_iter_for(max_refine_iter, linkage):
    """The sweeps a fit runs: ``max_refine_iter``, or for ``"auto"``
    :data:`REFINE_ITER_WARD` after ``linkage="ward"`` and 0 (none) after
    the default linkage, whose labels are nilearn's."""
    if max_refine_iter == "auto":
        return REFINE_ITER_WARD if linkage == "ward" else 0
    return int(max_refine_iter)


def refined(X, graph, labels, n_clusters, max_iter, name="max_refine_iter", spare=None,
            n_final=None, baseline=None):
    """The refinement of ``labels`` (``n_clusters`` of them) on validated
    input: ``X`` (n_samples, n_features) float32 or float64, any layout,
    or a Dask array; ``graph`` a :class:`fastrena.graphs.FeatureGraph`.
    ``spare``: an array the caller no longer needs, which may take the
    feature-major copy of X, or a :class:`fastrena.arrays.WrittenCopy` of X
    (see :func:`fastrena.arrays.feature_major_copy`).
    ``n_final``: None, or fewer clusters than ``n_clusters``: the exchange
    then merges the refined clusters to ``n_final`` before the last sweep
    (see the module docstring). ``baseline``: with ``n_final``, a partition
    into ``n_final`` clusters in which ``labels`` are nested, returned
    instead unless the refined one's sum of squares is lower by more than
    1e-12 of it
    (:func:`fastrena._kernels.refine_partition`).

    Returns ``(labels, sweeps, moves, message, kept_baseline)``: new
    labels numbered in order of first appearance (``labels`` is not
    modified), the sweeps run, the features moved by each, why nothing was
    done (a Dask array larger than ``fastrena.refine-limit``, in words
    naming the parameter ``name``) or None, and whether the labels are
    ``baseline``'s, kept over the refined partition.
    """
    none = np.zeros(0, dtype=np.int64)
    if n_final is None or n_final >= n_clusters:
        n_final = n_clusters
    if n_final == n_clusters and (max_iter == 0 or graph.n_edges == 0 or n_clusters < 2):
        return labels, 0, none, None, False
    backend = backend_of(X)
    data = backend.gathered(X)
    if data is None:
        return labels, 0, none, (
            f"{name}={max_iter}: X (a Dask array of {X.nbytes / 2 ** 30:.1f} GiB) "
            f"is larger than the Dask setting fastrena.refine-limit, so the clusters' "
            f"boundaries were not refined (raise the limit to refine them, or pass "
            f"{name}=0 to silence this)"), False
    # Each sample minus its first feature's value: X + c (c exact) and -X
    # read the same differences, a plateau reads exact zeros. Then scaled
    # by a power of two (exact: the labels of X * 2**k are X's, and no
    # square overflows), from the largest difference's bound.
    if data.shape[0] > 1 and not arrays.is_feature_major(data):
        # A feature-major copy, in X's dtype (X's size again, for the
        # refinement's time): a sweep reads each border feature's samples
        # together. Read in place from a C array, a column's samples lie
        # in as many cache lines: on the 2 mm mask with 100 samples the
        # sweeps took 0.7x the fit. Values are copied, not summed: the
        # same bits. The copy finds X's largest magnitude on the way.
        data, largest, _ = arrays.feature_major_copy(data, spare)
    else:
        largest = arrays.max_abs(data)
    # Read from the copy, where the first feature's samples are contiguous
    # (X's column: a cache line per sample, which the start reads again).
    offset = np.array(data[:, 0], dtype=np.float64)
    # The differences are bounded by twice X's largest magnitude (the
    # offset is one of X's columns): the exponent one below X's own (no
    # need to read the offset again, and 2 * largest may overflow). It is
    # clamped to float64's normal range: subnormal data (1e-310) would ask
    # for 2**1030, which overflows; 2**1000 already lifts it far from
    # underflow, and any power of two stays exact.
    exponent = min(max(arrays.unit_exponent(largest) - 1, -1000), 1000)
    scale = math.ldexp(1.0, exponent)
    out = np.array(labels, dtype=np.int64, copy=True)
    sample_major = not arrays.is_feature_major(data)
    sweeps, moves, n, kept = _kernels.refine_partition(
        data, offset, scale, sample_major, graph.u, graph.v, graph.neighbour_lists(), out,
        np.int64(n_clusters), np.int64(max_iter), np.int64(_kernels.CONNECTIVITY_BUDGET),
        _kernels.RELATIVE_MARGIN, np.int64(n_final),
        None if baseline is None else np.asarray(baseline, dtype=np.int64))
    return _kernels.first_appearance(out, np.int64(n)), int(sweeps), moves, None, bool(kept)


def refined_fit_labels(X, graph, labels, n_clusters, max_iter, ward_cut=None,
                       name="max_refine_iter", spare=None):
    """The refinement a fit runs after its merges, on validated input (see
    :func:`refined`): ``labels`` (``n_clusters`` of them) refined by
    ``max_iter`` sweeps; with ``ward_cut`` (a ``"ward"`` merge tree's
    cuts: ``k -> (labels, n)``) and two sweeps or more, from its cut at
    :func:`exchange_count` more clusters, merged back to ``n_clusters`` by
    the exchange. Returns :func:`refined`'s tuple, with ``labels``
    themselves when X was not refined (its message says why)."""
    if (ward_cut is not None and max_iter >= 2 and n_clusters >= 2
            and graph.n_edges > 0):
        start, n_start = ward_cut(n_clusters + exchange_count(n_clusters, graph.n_nodes))
        # Never worse than the cut itself: the exchange's merges are
        # greedy (refined() keeps `labels` if they explain more).
        result = refined(X, graph, start, n_start, max_iter, name, spare, n_final=n_clusters,
                         baseline=labels)
    else:
        result = refined(X, graph, labels, n_clusters, max_iter, name, spare)
    return result if result[3] is None else (labels, *result[1:])


def within_cluster_sse(X, labels):
    """The within-cluster sum of squares of ``labels`` on ``X`` (n_samples,
    n_features): ``sum_i ||x_i - mu_{labels[i]}||^2`` over the features'
    columns, in float64 with numpy (a reference, not a fast path)."""
    X = np.asarray(X, dtype=np.float64)
    labels = np.asarray(labels)
    sizes = np.bincount(labels).astype(np.float64)
    sums = np.zeros((X.shape[0], sizes.shape[0]))
    for s in range(X.shape[0]):
        sums[s] = np.bincount(labels, weights=X[s], minlength=sizes.shape[0])
    means = sums / np.where(sizes > 0, sizes, 1.0)
    return float(((X - means[:, labels]) ** 2).sum())


@validate_params({"X": ["array-like"], "graph": [FeatureGraph, "sparse matrix"],
                  "labels": ["array-like"], **constraints_of("max_iter"),
                  "n_clusters": [None, *PARAMETERS["n_clusters"]],
                  "return_n_iter": ["boolean"]},
                 prefer_skip_nested_validation=True)
def refine_labels(X, graph, labels, max_iter=REFINE_ITER_WARD, *, n_clusters=None,
                  return_n_iter=False):
    """Refine a partition of the features of ``X``: move single border
    features to a neighbouring cluster while that lowers the
    within-cluster sum of squares, keeping every cluster non-empty and
    connected (see the module docstring); with ``n_clusters``, merge the
    refined clusters down to that many in Ward's greedy order before the
    last sweep (the exchange).

    ``ReNA(linkage="ward")`` runs it after its merges by default
    (``max_refine_iter``), from its merge tree's cut at
    :func:`exchange_count` more clusters than it returns
    (``ReNA(..., compute_full_tree=True).tree_.labels_at(k +
    exchange_count(k, n_features))[0]``, refined with ``n_clusters=k``: the
    fit's labels, unless their within-cluster sum of squares is not below
    the cut's at k, which the fit then returns). This
    function refines any partition, for example another scale of a merge
    tree (``ReNA.labels_at``).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        float32 is read as it is; other real types become float64.
    graph : fastrena.graphs.FeatureGraph or sparse matrix of shape (n_features, n_features)
        The feature graph (a sparse adjacency: any stored nonzero off the
        diagonal is an edge).
    labels : array-like of int, shape (n_features,)
        Cluster of each feature, ``0..K-1``; each cluster connected in
        the graph (a disconnected one stays a partition with the same
        pieces, never more).
    max_iter : int >= 0, default=2
        Maximum number of sweeps; fewer when a sweep moves nothing. 0
        returns ``labels`` renumbered (merged to ``n_clusters`` if given).
    n_clusters : int >= 1, optional
        The clusters returned, at most those of ``labels``: the first
        ``max_iter - 1`` sweeps refine ``labels``, Ward's greedy order then
        merges the neighbouring clusters of smallest Ward cost (on their
        current means and sizes) until ``n_clusters`` are left (one per
        connected component of the graph at least), and the last sweep
        refines those. By default ``labels``' own number: no merge.
    return_n_iter : bool, default=False
        Also return the number of sweeps run (scikit-learn's
        ``k_means(..., return_n_iter=True)``).

    Returns
    -------
    labels : ndarray of int64, shape (n_features,)
        The same number of clusters (``n_clusters`` if given), numbered in
        order of first appearance.
    n_iter : int
        Sweeps run, with ``return_n_iter``.

    Examples
    --------
    A chain of four features cut in the wrong place: the third feature
    belongs with the fourth.

    >>> import numpy as np
    >>> from scipy import sparse
    >>> from fastrena.refine import refine_labels
    >>> X = np.array([[0.0, 0.1, 1.0, 1.1]])
    >>> chain = sparse.diags([np.ones(3), np.ones(3)], [-1, 1])
    >>> refine_labels(X, chain, [0, 0, 0, 1])
    array([0, 0, 1, 1])
    """
    X = backend_of(X).check_data(X)
    if not isinstance(graph, FeatureGraph):
        graph = adjacency_graph(graph)
    labels = np.asarray(labels)
    if labels.shape != (X.shape[1],) or labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be integers of shape ({X.shape[1]},), one per feature "
                         f"of X; got {labels.dtype} of shape {labels.shape}")
    if graph.n_nodes != X.shape[1]:
        raise ValueError(f"graph has {graph.n_nodes} nodes but X has {X.shape[1]} features")
    if labels.shape[0] and labels.min() < 0:
        raise ValueError(f"labels must be >= 0; got {int(labels.min())}")
    n_given = int(labels.max()) + 1 if labels.shape[0] else 0
    if labels.shape[0] and np.bincount(labels).min() == 0:
        # Renumbered first: the kernel's means divide by every size.
        labels = np.unique(labels, return_inverse=True)[1].reshape(-1)
        n_given = int(labels.max()) + 1
    merges = n_clusters is not None and n_clusters < n_given
    if n_clusters is not None and n_clusters > n_given:
        raise ValueError(f"n_clusters must be at most the {n_given} clusters of labels; "
                         f"got n_clusters={n_clusters}")
    if merges and graph.n_edges == 0:
        raise ValueError(f"n_clusters={n_clusters} asks for merges, but the graph has no "
                         f"edge: its {X.shape[1]} features cannot be merged")
    out, n_iter, _, message, _ = refined(X, graph, labels.astype(np.int64), n_given,
                                      int(max_iter), "max_iter", n_final=n_clusters)
    if message is not None:
        if merges:
            # Merging needs X in memory too: max_iter=0 would not help.
            raise ValueError(
                f"n_clusters={n_clusters}: X (a Dask array of {X.nbytes / 2 ** 30:.1f} GiB) "
                f"is larger than the Dask setting fastrena.refine-limit, so its clusters "
                f"cannot be merged and refined here (raise the limit)")
        raise ValueError(message)
    out = _kernels.first_appearance(np.asarray(out, dtype=np.int64),
                                    np.int64(max(n_given, 1)))
    return (out, n_iter) if return_n_iter else out
