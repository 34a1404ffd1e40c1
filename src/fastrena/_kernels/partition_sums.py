"""Sums and sums of squares of a partition of X's features, as the
boundary refinement reads X (times ``scale``, a power of two; the sums
each sample minus ``offset`` too: :mod:`.refine`). The clusters' sums
(:func:`cluster_sums_into`), what their means explain
(:func:`between_sum`, :func:`coarse_between_sum`), the within-cluster sum
of squares itself (:func:`within_sum`), and the refinement's last check
(:func:`cut_explains_more`): is the merge tree's cut to be kept over the
refined partition? Every sum in one fixed order, whatever X's layout: the
same bits.
"""

import numpy as np
from numba import njit

from .._interrupt import call_deferring_sigint

#: The explained sums of two partitions (each ``sum_c ||S_c||^2 / n_c``,
#: near the total sum of squares when the clusters explain most of it)
#: decide between them only when they differ by more than this fraction of
#: the larger: their rounding (sums kept up to date move by move) is far
#: below it, but the within-cluster sums they differ by may be far below
#: the total (a cut whose within-cluster sum is 86 in a total of 1.5e25:
#: the difference is rounding). Closer, :func:`within_sum` is computed for
#: both. (A bound: the explained sums kept move by move were within
#: 1.2e-14 of exact on 27,000 and 1e6 features with common offsets up to
#: 1e9, by a review.)
EXPLAINED_BAND = 1e-6

#: The refined partition is kept only when its within-cluster sum of
#: squares is below the cut's by more than this fraction of it: a tie, or
#: a gain at the level of rounding, keeps the cut (never worse than it).
TIE = 1e-12


@njit(cache=True)
def cluster_sums_into(X, offset, scale, labels, sample_major, sums, c0, c1):
    """``sums`` (K, S' >= S, zeros) of the clusters ``c0 <= c < c1``: each
    one's features minus ``offset`` times ``scale``, added in feature
    order from zero (the loop nest follows X's layout; the order of each
    sum does not)."""
    n_samples, n_features = X.shape
    if sample_major:
        for s in range(n_samples):
            for i in range(n_features):
                c = labels[i]
                if c0 <= c < c1:
                    sums[c, s] += (X[s, i] - offset[s]) * scale
    else:
        for i in range(n_features):
            c = labels[i]
            if c0 <= c < c1:
                for s in range(n_samples):
                    sums[c, s] += (X[s, i] - offset[s]) * scale


@njit(cache=True)
def between_sum(sums, sizes):
    """``sum_c ||sums[c]||^2 / sizes[c]``: the part of the total sum of
    squares the clusters' means explain (the within-cluster sum of squares
    is the data's sum of squares minus it), in one fixed order."""
    total = 0.0
    for c in range(sums.shape[0]):
        if sizes[c] > 0:
            square = 0.0
            for s in range(sums.shape[1]):
                square += sums[c, s] * sums[c, s]
            total += square / sizes[c]
    return total


@njit(cache=True)
def coarse_between_sum(sums, sizes, labels, coarse, n_coarse):
    """:func:`between_sum` of the partition ``coarse`` (``n_coarse``
    clusters), from the sums and sizes of the finer partition ``labels``
    nested in it; NaN when it is not nested (a cluster of ``labels`` met
    two of ``coarse``). Each coarse cluster's sum is added up from its
    finer clusters' rows in increasing order, in one row of scratch (an
    array of every coarse cluster's sums took 5 ms at 14,000 clusters of
    100 samples, most of it new pages)."""
    n_fine = sums.shape[0]
    to = np.full(n_fine, -1, dtype=np.int64)
    for i in range(labels.shape[0]):
        c = labels[i]
        if to[c] < 0:
            to[c] = coarse[i]
        elif to[c] != coarse[i]:
            return np.nan
    # The finer clusters grouped by coarse cluster (a counting sort).
    start = np.zeros(n_coarse + 1, dtype=np.int64)
    for c in range(n_fine):
        if to[c] >= 0:
            start[to[c] + 1] += 1
    for k in range(n_coarse):
        start[k + 1] += start[k]
    members = np.empty(start[n_coarse], dtype=np.int64)
    fill = start[:-1].copy()
    for c in range(n_fine):
        if to[c] >= 0:
            members[fill[to[c]]] = c
            fill[to[c]] += 1
    row = np.empty(sums.shape[1])
    total = 0.0
    for k in range(n_coarse):
        if start[k + 1] == start[k]:
            continue
        size = 0
        row[:] = 0.0
        for m in range(start[k], start[k + 1]):
            c = members[m]
            size += sizes[c]
            for s in range(sums.shape[1]):
                row[s] += sums[c, s]
        square = 0.0
        for s in range(sums.shape[1]):
            square += row[s] * row[s]
        total += square / size
    return total


#: Samples :func:`within_sum` takes at a time: one sweep of the features
#: per block, with three arrays of the clusters by this many samples.
_WITHIN_BLOCK = 8


@njit(cache=True)
def within_sum(X, scale, labels, n_clusters):
    """The within-cluster sum of squares of the partition ``labels``
    (``n_clusters`` non-empty clusters) of ``X * scale``, from X itself:
    each value taken relative to its cluster's first feature (exact
    between values within a factor 2 of each other, where a common offset
    would round the spread away), the cluster's mean of those, then the
    squared deviations with the two-pass correction
    (``sum r^2 - (sum r)^2 / n``). Samples in blocks of
    :data:`_WITHIN_BLOCK`, features in index order within each: every
    cluster's sums add in feature order whatever X's layout (the same
    bits). Two passes over X."""
    n_samples, n_features = X.shape
    first = np.full(n_clusters, -1, dtype=np.int64)
    sizes = np.zeros(n_clusters)
    for i in range(n_features):
        c = labels[i]
        if first[c] < 0:
            first[c] = i
        sizes[c] += 1.0
    means = np.empty((n_clusters, _WITHIN_BLOCK))
    squares = np.empty((n_clusters, _WITHIN_BLOCK))
    residuals = np.empty((n_clusters, _WITHIN_BLOCK))
    total = 0.0
    for s0 in range(0, n_samples, _WITHIN_BLOCK):
        s1 = min(s0 + _WITHIN_BLOCK, n_samples)
        means[:] = 0.0
        squares[:] = 0.0
        residuals[:] = 0.0
        for i in range(n_features):
            c = labels[i]
            p = first[c]
            for s in range(s0, s1):
                means[c, s - s0] += X[s, i] * scale - X[s, p] * scale
        for c in range(n_clusters):
            for j in range(s1 - s0):
                means[c, j] = means[c, j] / sizes[c]
        for i in range(n_features):
            c = labels[i]
            p = first[c]
            for s in range(s0, s1):
                r = (X[s, i] * scale - X[s, p] * scale) - means[c, s - s0]
                squares[c, s - s0] += r * r
                residuals[c, s - s0] += r
        for c in range(n_clusters):
            for j in range(s1 - s0):
                total += squares[c, j] - residuals[c, j] * residuals[c, j] / sizes[c]
    return total


def cut_explains_more(X, scale, labels, n_clusters, sums, sizes, cut, n_cut, explained):
    """Whether the partition ``cut`` (``n_cut`` clusters, explaining
    ``explained``: :func:`coarse_between_sum`) is to be kept over
    ``labels`` (``n_clusters``, with their ``sums`` and ``sizes``): unless
    ``labels``' within-cluster sum of squares is lower by more than
    :data:`TIE` of the cut's. Decided on the explained sums when they
    differ by more than :data:`EXPLAINED_BAND`, else on :func:`within_sum`
    of both from X; the cut also when those are not finite."""
    refined = call_deferring_sigint(between_sum, (sums, sizes), {})
    band = EXPLAINED_BAND * max(abs(refined), abs(explained))
    if refined < explained - band:
        return True
    if refined > explained + band:
        return False
    mine = call_deferring_sigint(within_sum, (X, scale, labels, np.int64(n_clusters)), {})
    theirs = call_deferring_sigint(within_sum, (X, scale, cut, np.int64(n_cut)), {})
    if not (np.isfinite(mine) and np.isfinite(theirs)):
        return True
    return mine - theirs >= -TIE * theirs
