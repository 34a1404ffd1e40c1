"""Cluster means and sums, and their expansion back to features. Each
cluster (or row block) is owned by one task; sums run in feature order.
"""

import numpy as np
from numba import njit

from .compiling import filled, inner, inner_leaf, unsigned
from .prefetch import prefetch_row
from .threads import run_tasks


#: Rows of X reduced together by one parallel task. Sample-major X: four
#: rows give four independent chains of adds into the accumulator, which
#: hides the store-to-load latency of consecutive same-cluster features.
#: Feature-major X: eight float64 rows of one feature share a cache line.
ROWS_SAMPLE_MAJOR = 4
ROWS_FEATURE_MAJOR = 8


@njit(cache=True)
def members_by_cluster(labels, n_clusters):
    """(order, start): features of cluster c are order[start[c]:start[c+1]],
    in increasing order (a stable counting sort of ``labels``)."""
    start = filled(np.empty(n_clusters + 1, dtype=np.int64), np.int64(0))
    for i in range(labels.shape[0]):
        start[labels[i] + 1] += 1
    for c in range(n_clusters):
        start[c + 1] += start[c]
    fill = np.empty(n_clusters, dtype=np.int64)
    for c in range(n_clusters):
        fill[c] = start[c]
    order = np.empty(labels.shape[0], dtype=np.int64)
    for i in range(labels.shape[0]):
        order[fill[labels[i]]] = i
        fill[labels[i]] += 1
    return order, start


@njit(cache=True, inline="always")
def _cluster_mean_into(XT, order, start, c, divisor, weights, acc, out_row, rows=None):
    """``out_row = sum of XT[i] (times weights[i]) over the members i of
    cluster c / divisor``: members added in increasing order in float64,
    from zero. With ``rows``, member i's signal is row ``rows[i]`` of XT
    (its weight still ``weights[i]``). With ``weights``, a lone member's
    row is copied exactly (``w * x / w`` can be off by an ulp), so its edge
    weights can be carried over (see :func:`fastrena._kernels.carry_weights`).
    The whole sum is taken before ``out_row`` is written, which may be one
    of the members' rows. Returns how many results are not finite."""
    n_samples = XT.shape[1]
    n_bad = 0
    if weights is not None and start[c + 1] - start[c] == 1:
        row = order[start[c]]
        if rows is not None:
            row = rows[row]
        for s in range(n_samples):
            x = XT[row, s]
            out_row[s] = x
            n_bad += (x - x) != 0
        return n_bad
    for s in range(n_samples):
        acc[s] = 0.0
    for k in range(start[c], start[c + 1]):
        i = order[k]
        row = i if rows is None else rows[i]
        if weights is None:
            for s in range(n_samples):
                acc[s] += XT[row, s]
        else:
            wr = weights[i]
            for s in range(n_samples):
                acc[s] += wr * XT[row, s]
    for s in range(n_samples):
        x = acc[s] / divisor
        out_row[s] = x
        n_bad += (x - x) != 0
    return n_bad


#: Clusters averaged by one task of :func:`cluster_means_feature_major`.
_CLUSTERS_PER_TASK = 256


@njit(cache=True, nogil=True)
def _cluster_means_feature_major_tasks(XT, order, start, divisors, outT, weights, bad, t0, t1):
    """Tasks t0..t1 of :func:`cluster_means_feature_major`: task t is the
    clusters ``t * _CLUSTERS_PER_TASK`` to ``(t + 1) * _CLUSTERS_PER_TASK``;
    ``bad[t]`` says whether one of its results is not finite."""
    n_clusters = divisors.shape[0]
    acc = np.empty(XT.shape[1], dtype=np.float64)
    for t in range(t0, t1):
        n_bad = 0
        c1 = _CLUSTERS_PER_TASK * (t + 1)
        for c in range(_CLUSTERS_PER_TASK * t, c1 if c1 < n_clusters else n_clusters):
            n_bad += _cluster_mean_into(XT, order, start, c, divisors[c], weights, acc,
                                        outT[c])
        bad[t] = n_bad != 0


def cluster_means_feature_major(XT, order, start, divisors, outT, weights=None):
    """``outT[c, s] = sum of XT[i, s] over the members i of c / divisors[c]``,
    each term multiplied by ``weights[i]`` if given (see
    :func:`_cluster_mean_into`).

    Feature-major twin of :func:`cluster_sums_divided_into`: members are
    added in increasing feature order in float64, so the bits are the same;
    the adds run along contiguous sample rows and vectorise. Returns
    whether every result is finite. (``weights=None`` compiles without the
    multiply.)
    """
    n_tasks = (divisors.shape[0] + _CLUSTERS_PER_TASK - 1) // _CLUSTERS_PER_TASK
    bad = np.zeros(n_tasks, dtype=np.bool_)
    run_tasks(_cluster_means_feature_major_tasks, n_tasks,
              (XT, order, start, divisors, outT, weights, bad), XT.size)
    return not bad.any()


#: :func:`merge_rows_between` asks for the rows of the cluster this many
#: clusters ahead of the one it merges (:func:`fastrena._kernels.prefetch.prefetch_row`).
_AHEAD = 4


@inner_leaf
def _prefetch_members(XT, rows, order, start, c):
    """Ask for the rows of cluster c's members when it has several (a
    hint, which changes no result)."""
    if start[c + 1] - start[c] > 1:
        for k in range(start[c], start[c + 1]):
            prefetch_row(XT, rows[order[k]])


@inner_leaf
def merge_rows_between(XT, rows, order, start, c0, c1, divisors, weights, new_rows, written,
                       acc):
    """:func:`merge_rows_in_place` of the clusters ``c0 <= c < c1`` alone
    (``order``, ``start``: :func:`members_by_cluster` of the nodes'
    labels), on the calling thread: its tasks, and a caller that runs
    other work beside it (the same bits). Their rows go into ``new_rows``,
    and those written (a mean of several members) are flagged in
    ``written`` (one flag a row of XT); returns whether each of their new
    means is finite. ``acc``: float64 scratch of XT's width (a
    :data:`fastrena._kernels.compiling.inner_leaf` kernel allocates
    nothing)."""
    n_bad = 0
    for c in range(c0, c0 + _AHEAD if c0 + _AHEAD < c1 else c1):
        _prefetch_members(XT, rows, order, start, c)
    for c in range(c0, c1):
        if c + _AHEAD < c1:
            _prefetch_members(XT, rows, order, start, c + _AHEAD)
        first = rows[order[start[c]]]
        if start[c + 1] - start[c] > 1:
            n_bad += _cluster_mean_into(XT, order, start, c, divisors[c], weights, acc,
                                        XT[first], rows)
            written[first] = True
        new_rows[c] = first
    return n_bad == 0


@njit(cache=True, nogil=True)
def _merge_rows_tasks(XT, rows, order, start, divisors, weights, new_rows, bad, written, t0,
                      t1):
    """Tasks t0..t1 of :func:`merge_rows_in_place`: task t is the clusters
    ``t * _CLUSTERS_PER_TASK`` to ``(t + 1) * _CLUSTERS_PER_TASK``."""
    n_clusters = divisors.shape[0]
    acc = np.empty(XT.shape[1], dtype=np.float64)
    for t in range(t0, t1):
        c1 = _CLUSTERS_PER_TASK * (t + 1)
        bad[t] = not merge_rows_between(XT, rows, order, start, _CLUSTERS_PER_TASK * t,
                                        c1 if c1 < n_clusters else n_clusters, divisors,
                                        weights, new_rows, written, acc)


def merge_rows_in_place(XT, rows, order, start, divisors, weights, n_merged):
    """:func:`cluster_means_feature_major` of the signals of nodes kept as
    rows of ``XT`` (node i's signal is ``XT[rows[i]]``), written over XT:
    the mean of a cluster of several members replaces its first member's
    row, which becomes the cluster's; a lone member's row is left as it is
    (the copy the other kernels make of it, bit for bit). Returns the
    clusters' rows and whether every new mean is finite.

    Only merged rows are read and written (``n_merged`` of them, for the
    work estimate), so a ``"ward"`` round that merges a fifth of the nodes
    moves a fifth of the signals, not all of them. Each cluster writes its
    first member's row, read by no other cluster, so the tasks run in any
    order on any number of threads with the same bits.
    """
    # (The rows written, which the kernel flags: unused here.)
    written = np.zeros(XT.shape[0], dtype=np.bool_)
    n_clusters = divisors.shape[0]
    n_tasks = (n_clusters + _CLUSTERS_PER_TASK - 1) // _CLUSTERS_PER_TASK
    bad = np.zeros(n_tasks, dtype=np.bool_)
    new_rows = np.empty(n_clusters, dtype=np.int64)
    run_tasks(_merge_rows_tasks, n_tasks,
              (XT, rows, order, start, divisors, weights, new_rows, bad, written),
              n_merged * XT.shape[1])
    return new_rows, not bad.any()


@njit(cache=True, nogil=True)
def _cluster_sums_divided_tasks(X, labels, divisors, out, rows_per_task, weights, bad, t0, t1):
    """Tasks t0..t1 of :func:`cluster_sums_divided_into`: task t is the
    rows ``t * rows_per_task`` to ``(t + 1) * rows_per_task``; ``bad[t]``
    says whether one of its results is not finite."""
    n_samples, n_features = X.shape
    n_clusters = divisors.shape[0]
    acc = np.empty((n_clusters, rows_per_task), dtype=np.float64)
    for blk in range(t0, t1):
        s0 = blk * rows_per_task
        r = n_samples - s0 if n_samples - s0 < rows_per_task else rows_per_task
        # Cluster-major accumulator: one feature's adds for the block's
        # rows land in one cache line, and labels mostly increase along
        # the features, so the accumulator is walked nearly in order.
        acc[:, :r] = 0.0
        # Indices through compiling.unsigned (a label read from an array,
        # rows from s0).
        for i in range(n_features):
            c = unsigned(labels[i])
            if weights is None:
                for j in range(r):
                    acc[c, j] += X[unsigned(s0 + j), i]
            else:
                wi = weights[i]
                for j in range(r):
                    acc[c, j] += wi * X[unsigned(s0 + j), i]
        # Cluster-outer writes: contiguous when ``out`` is feature-major.
        n_bad = 0
        for c in range(n_clusters):
            for j in range(r):
                x = acc[c, j] / divisors[c]
                out[unsigned(s0 + j), c] = x
                n_bad += (x - x) != 0
        bad[blk] = n_bad != 0


def cluster_sums_divided_into(X, labels, divisors, out, rows_per_task, weights=None):
    """``out[s, c] = (sum of X[s, i] over i with labels[i] == c) / divisors[c]``,
    each term multiplied by ``weights[i]`` if given.

    With ``divisors`` the cluster sizes this is the cluster mean; with their
    square roots, the l2-preserving scaled mean. Sums run in float64 in
    increasing feature order. Each task owns a block of rows. Returns
    whether every result is finite (NaN or infinity in X always makes its
    cluster's result non-finite, so True proves X finite).
    """
    n_blocks = (X.shape[0] + rows_per_task - 1) // rows_per_task
    bad = np.zeros(n_blocks, dtype=np.bool_)
    run_tasks(_cluster_sums_divided_tasks, n_blocks,
              (X, labels, divisors, out, rows_per_task, weights, bad),
              X.shape[0] * (X.shape[1] + divisors.shape[0]))
    return not bad.any()


@njit(cache=True, nogil=True)
def _expand_clusters_tasks(X_red, labels, out, t0, t1):
    """Rows (samples) t0..t1 of :func:`expand_clusters`."""
    n_features = out.shape[1]
    for s in range(t0, t1):
        for i in range(n_features):
            out[s, i] = X_red[s, labels[i]]


def expand_clusters(X_red, labels, out):
    """``out[s, i] = X_red[s, labels[i]]``, one row per task."""
    run_tasks(_expand_clusters_tasks, out.shape[0], (X_red, labels, out), out.size)
