"""Sums and sums of squares of a partition of X's features, read as the
boundary refinement reads them: each sample minus ``offset``, times
``scale`` (:mod:`.refine`). The clusters' sums (:func:`cluster_sums_into`),
what their means explain (:func:`between_sum`, :func:`coarse_between_sum`),
the within-cluster sum of squares itself (:func:`within_sum`), and the
refinement's last check (:func:`cut_explains_more`): is the merge tree's
cut better than the refined partition? Every sum in one fixed order,
whatever X's layout: the same bits.
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
#: both.
EXPLAINED_BAND = 1e-6

#: Within-cluster sums of squares closer than this fraction of the cut's
#: are a tie, which the refined partition wins: rounding does not choose.
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


@njit(cache=True)
def within_sum(X, offset, scale, sample_major, labels, n_clusters):
    """The within-cluster sum of squares of the partition ``labels``
    (``n_clusters`` clusters) of X read as the refinement reads it, from
    X itself: the clusters' means, then each sample's squared deviations
    added in feature order, the samples' totals in sample order (the same
    bits for either layout). Two passes over X."""
    n_samples, n_features = X.shape
    means = np.zeros((n_clusters, n_samples))
    cluster_sums_into(X, offset, scale, labels, sample_major, means, 0, n_clusters)
    sizes = np.zeros(n_clusters)
    for i in range(n_features):
        sizes[labels[i]] += 1.0
    for c in range(n_clusters):
        for s in range(n_samples):
            means[c, s] = means[c, s] / sizes[c]
    per_sample = np.zeros(n_samples)
    if sample_major:
        for s in range(n_samples):
            for i in range(n_features):
                d = (X[s, i] - offset[s]) * scale - means[labels[i], s]
                per_sample[s] += d * d
    else:
        for i in range(n_features):
            c = labels[i]
            for s in range(n_samples):
                d = (X[s, i] - offset[s]) * scale - means[c, s]
                per_sample[s] += d * d
    total = 0.0
    for s in range(n_samples):
        total += per_sample[s]
    return total


def cut_explains_more(X, offset, scale, sample_major, labels, n_clusters, sums, sizes, cut,
                      n_cut, explained):
    """Whether the partition ``cut`` (``n_cut`` clusters, explaining
    ``explained``: :func:`coarse_between_sum`) has a lower within-cluster
    sum of squares than ``labels`` (``n_clusters``, with their ``sums``
    and ``sizes``) beyond rounding: decided on the explained sums when
    they differ by more than :data:`EXPLAINED_BAND`, else on
    :func:`within_sum` of both, a :data:`TIE` going to ``labels``."""
    refined = call_deferring_sigint(between_sum, (sums, sizes), {})
    band = EXPLAINED_BAND * max(abs(refined), abs(explained))
    if refined < explained - band:
        return True
    if refined > explained + band:
        return False
    args = (X, offset, scale, sample_major)
    mine = call_deferring_sigint(within_sum, (*args, labels, np.int64(n_clusters)), {})
    theirs = call_deferring_sigint(within_sum, (*args, cut, np.int64(n_cut)), {})
    return mine - theirs > TIE * theirs
