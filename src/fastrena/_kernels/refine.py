"""Boundary refinement of a partition: Hartigan's single-feature moves
between graph-adjacent clusters, each accepted only when it lowers the
within-cluster sum of squares, keeps its source cluster non-empty and
provably connected
(:func:`fastrena._kernels.connectivity.removal_outcome`); a feature whose
move would cut one piece off its cluster moves with that piece when that
lowers the sum of squares (:func:`fastrena._kernels.moves.piece_gain`).

One sweep visits each feature once: a move changes two clusters' means,
which the next feature's decision reads, so a sweep is sequential by
nature, except between features whose clusters cannot meet. A sweep
therefore deals the clusters to blocks (their number fixed by the number
of features alone), visits each block's features in index order on a
thread of its own when no neighbour lies in another block's cluster, and
the rest after, in index order, on one thread (see
:func:`refine_partition`): the same moves on every thread count.
Every sum over samples runs in float64 in one fixed order (eight
lanes of samples for the distances, see :mod:`.lanes`), whatever the
memory layout of X or the machine, so C and F arrays (and a Dask array
gathered into memory) give the same bits.
"""

import numpy as np
from numba import njit

from .._interrupt import call_deferring_sigint
from .compiling import filled, unsigned
from .connectivity import CONNECTED, ONE_PIECE, PIECE_FIRST, removal_outcome, search_state
from .exchange import exchanged
from .lanes import padded
from .layout import mapped_in_order
from .moves import distance, join_cost, move_piece, piece_gain, squares
from .partition_sums import cluster_sums_into, coarse_between_sum, cut_explains_more
from .prefetch import prefetch_row
from .threads import PARALLEL_GRAIN, run_tasks

#: A sweep asks for the signal of the feature this many turns ahead of the
#: one it decides (:func:`fastrena._kernels.prefetch.prefetch_row`; only
#: its block's features, or in the second phase the waiting ones), when X
#: is feature-major: features are visited in index order, but with so much
#: work between two rows that the hardware did not fetch the next in
#: time (the loads of a feature's samples were the sweep's most sampled
#: instructions). At 2 mm with 100 float32 samples, K = N/50: 3 sweeps
#: 0.90-0.92x their time at 8 ahead, the same at 16; asking for every
#: feature's row, waiting or not, made the second phase 1.5x slower.
_ROWS_AHEAD = 8

def _n_blocks(n_features):
    """Blocks of a sweep's first phase, from the number of features alone
    (never from the threads): 1 below 2**12 features (a sweep is then the
    plain one: it takes under half a millisecond), 2 below 2**20, 4
    beyond; :func:`refine_partition` keeps one block when the first deal
    would leave most features waiting. Few and large: each feature
    beside another block's cluster waits for the second phase (at 2 mm
    with 100 samples, K = N/50, 2 blocks leave 5 % of the features to it;
    when a block was a run of consecutive features owning the clusters
    inside it alone, 2 blocks left 11 %, 7 blocks 63 %). Up to
    2026-12-06, 1 below 2**16: fsaverage5's 20,484 vertices (two
    hemispheres, which two blocks split with no feature waiting) took
    0.62-0.67x the time on two blocks, with the same labels."""
    if n_features < 1 << 12:
        return 1
    return 2 if n_features < 1 << 20 else 4


@njit(cache=True)
def _owners(labels, sizes, n_blocks):
    """Each cluster's block, and each block's span: its first feature and
    one past its last (where its task reads). Clusters in order of their
    first feature are dealt to the blocks in runs of about equal numbers
    of features: cluster c goes to block ``m * n_blocks // n_features``,
    m the features of the clusters before it."""
    n_features = labels.shape[0]
    owner = filled(np.empty(sizes.shape[0], dtype=np.int64), np.int64(-1))
    span = np.zeros((n_blocks, 2), dtype=np.int64)
    before = 0
    for i in range(n_features):
        c = labels[i]
        if owner[c] < 0:
            t = before * n_blocks // n_features
            if span[t, 1] == 0:
                # Block t's first cluster.
                span[t, 0] = i
            owner[c] = t
            before += sizes[c]
        span[owner[c], 1] = i + 1
    return owner, span


#: The first deal's waiting features are counted among every
#: ``_WAIT_SAMPLE``-th feature: the count only decides whether more than
#: half of them wait, and a sample of thousands tells that.
_WAIT_SAMPLE = 8


@njit(cache=True)
def _first_deal(indptr, indices, labels, sizes, n_blocks, owner, span, waiting):
    """The first sweep's deal (:func:`_owners`) into ``owner`` and
    ``span``, and ``waiting``: among the features ``0, s, 2 s, ...`` (s
    = :data:`_WAIT_SAMPLE`), the number examined and the number that
    would wait for the second phase (a neighbour in another block's
    cluster)."""
    dealt, spans = _owners(labels, sizes, n_blocks)
    # Copied in loops: an array's slice assignment compiles numba's
    # message for mismatched shapes (1.3 s and 1.0 s of a first fit
    # here, see .compiling).
    for c in range(owner.shape[0]):
        owner[c] = dealt[c]
    for t in range(span.shape[0]):
        span[t, 0] = spans[t, 0]
        span[t, 1] = spans[t, 1]
    examined = 0
    waits = 0
    for i in range(0, labels.shape[0], _WAIT_SAMPLE):
        examined += 1
        t = owner[labels[i]]
        for k in range(indptr[i], indptr[i + 1]):
            if owner[labels[indices[k]]] != t:
                waits += 1
                break
    waiting[0] = examined
    waiting[1] = waits


@njit(cache=True)
def _sweep_range(X, offset, scale, indptr, indices, labels, sizes, sums, visited, origin, seen,
                 owner, later, queue, x, piece, sources, state, sweep, budget, margin, lo, hi,
                 block):
    """The turns of features lo..hi-1 in a sweep (see
    :func:`refine_partition`), in index order; returns the moves.

    With ``block >= 0``, the features of the range whose cluster is
    ``block``'s (by ``owner``), except those with a neighbour in another
    block's cluster: those are flagged in ``later``. With ``block < 0``,
    the features flagged in ``later`` alone. A turn's marks in
    ``visited`` and ``seen`` are ``sweep * n_features + i``: a number no
    other turn uses (``origin``: the connectivity test's groups, read where
    ``visited`` marks a node); ``x`` (padded(n_samples),
    zeros past n_samples): the feature's signal; ``piece`` (2,
    padded(n_samples)): :func:`fastrena._kernels.moves.piece_gain`'s
    scratch; ``state``: a paused connectivity test's
    (:func:`fastrena._kernels.connectivity.search_state`). (One loop, not a
    function called per feature: numba's inlining of such a function made
    the sweeps 1.45x slower.)"""
    n_samples, n_features = X.shape
    count = 0
    # Rows of the features: C-ordered when X is feature-major (otherwise
    # prefetch_row asks for nothing).
    rows = X.T
    # Indices through compiling.unsigned: i (from lo), the adjacency's
    # slots and the labels read from arrays.
    for i in range(lo, hi):
        ui = unsigned(i)
        # A hint, which changes no result (see _ROWS_AHEAD). The label read
        # for it may be another block's, being written: only the hint
        # depends on it.
        j = i + _ROWS_AHEAD
        if j < hi:
            uj = unsigned(j)
            if later[uj] if block < 0 else owner[unsigned(labels[uj])] == block:
                prefetch_row(rows, j)
        a = labels[ui]
        ua = unsigned(a)
        if block < 0:
            if not later[ui]:
                continue
        elif owner[ua] != block:
            # Another block's feature (its label changes only between
            # that block's clusters: the test reads the same either way).
            continue
        stamp = sweep * n_features + i
        n_a = sizes[ua]
        if n_a < 2:
            continue
        boundary = False
        elsewhere = False
        # Without branches: on a border, which neighbours lie in another
        # cluster follows no pattern a branch predictor learns (the
        # refinement 0.93x its time on the T1 and motor maps, 0.98x on
        # fsaverage5, 1.00x at 2 mm x 100 samples; the same moves).
        for k in range(indptr[ui], indptr[ui + unsigned(1)]):
            c = labels[unsigned(indices[unsigned(k)])]
            other = c != a
            boundary |= other
            # A neighbour in another block's cluster stays in one of
            # that block's clusters, whatever that block's thread does
            # (and never moves: it has a neighbour here, i).
            elsewhere |= other & (owner[unsigned(c)] != block)
        if not boundary:
            continue
        elsewhere &= block >= 0
        if elsewhere:
            later[ui] = True
            continue
        for s in range(n_samples):
            x[s] = (X[s, ui] - offset[s]) * scale
        d_a = distance(x, sums, a, n_a)
        leave = n_a / (n_a - 1.0) * d_a
        # The cheapest candidate, the first met on a tie; it moves i if it
        # beats the bar, leave minus the margin. The margin's scale (a
        # second sum over the samples) is only needed when the candidate
        # beats leave itself: the bar is never above it.
        best = -1
        best_cost = leave
        for k in range(indptr[ui], indptr[ui + unsigned(1)]):
            b = labels[unsigned(indices[unsigned(k)])]
            ub = unsigned(b)
            if b == a or seen[ub] == stamp:
                continue
            seen[ub] = stamp
            join = join_cost(x, sums, b, sizes[ub])
            if join < best_cost:
                best_cost = join
                best = b
        if best < 0:
            continue
        bar = leave - margin * n_a / (n_a - 1.0) * (d_a + squares(x, sums, a, n_a))
        if not best_cost < bar:
            continue
        outcome, cut, end = removal_outcome(i, a, n_a, labels, indptr, indices, visited,
                                            origin, queue, sources, stamp, budget, state)
        if outcome == ONE_PIECE or outcome == PIECE_FIRST:
            m = piece_gain(X, offset, scale, sizes, sums, queue, sources, origin, x, piece, a,
                           best, cut, end, margin)
            if m > 0 and outcome == PIECE_FIRST:
                # The rest of the search, now that the piece would gain.
                outcome, cut, end = removal_outcome(i, a, n_a, labels, indptr, indices,
                                                    visited, origin, queue, sources, stamp,
                                                    budget, state)
            state[7] = 0
            if m > 0 and outcome == ONE_PIECE:
                move_piece(labels, sizes, sums, queue, sources, origin, piece, i, a, best,
                           cut, end, m)
                count += m
            continue
        if outcome != CONNECTED:
            continue
        for s in range(n_samples):
            sums[a, s] -= x[s]
            sums[best, s] += x[s]
        sizes[a] -= 1
        sizes[best] += 1
        labels[i] = best
        count += 1
    return count


@njit(cache=True, nogil=True)
def _block_tasks(X, offset, scale, indptr, indices, labels, sizes, sums, visited, origin, seen,
                 owner, span, later, moved, n_sources, sweep, budget, margin, t0, t1):
    """Tasks t0..t1 of a sweep's first phase: task t takes the features of
    block t's clusters (:func:`_owners`; they lie in ``span[t]``), counts
    its moves in ``moved[t]`` and flags in ``later`` those left for the
    second phase. Its turns touch only block t's clusters and their
    features (a search inside a cluster stays in it), and their own
    scratch."""
    n_samples, n_features = X.shape
    x = np.zeros(padded(n_samples))
    piece = np.zeros((2, padded(n_samples)))
    sources = np.empty((2, n_sources), dtype=np.int64)
    state = search_state()
    # A search queues at most a cluster's features.
    queue = np.empty(n_features, dtype=np.int64)
    for t in range(t0, t1):
        moved[t] = _sweep_range(X, offset, scale, indptr, indices, labels, sizes, sums, visited,
                                origin, seen, owner, later, queue, x, piece, sources, state,
                                sweep, budget, margin, span[t, 0], span[t, 1], np.int64(t))


@njit(cache=True, nogil=True)
def _start_tasks(X, offset, scale, labels, sample_major, indptr, indices, sums, sizes, deal,
                 split, t0, t1):
    """Tasks t0..t1 of a refinement's start, side by side: task 0, with
    more than one block (``deal``: the blocks, the clusters' owners, their
    spans and the waiting features' count, see :func:`_first_deal`), the
    first sweep's deal, then the clusters below ``split``; task 1 the
    clusters from ``split`` on. A cluster's sum
    (:func:`.partition_sums.cluster_sums_into`) is one task's: the same
    bits whatever the split. ``sizes``: the clusters' numbers of features,
    read by both. Each task writes its own outputs only."""
    n_clusters = sizes.shape[0]
    for t in range(t0, t1):
        if t == 0:
            n_blocks, owner, span, waiting = deal
            if n_blocks > 1:
                _first_deal(indptr, indices, labels, sizes, n_blocks, owner, span, waiting)
            c0, c1 = 0, split
        else:
            c0, c1 = split, n_clusters
        cluster_sums_into(X, offset, scale, labels, sample_major, sums, c0, c1)


@njit(cache=True)
def _start_split(sizes):
    """The first cluster of the start's task 1 (:func:`_start_tasks`), for
    clusters of ``sizes`` features: each task sums the clusters of about
    half of the features, in cluster order: the first cluster whose
    features and those before it are more than half of them. (Only
    balances the two tasks: the results do not depend on it. Compiled: in
    numpy, three calls of some microseconds each, on data the refinement
    has just pushed out of the caches.)"""
    half = sizes.sum() // 2
    before = 0
    for c in range(sizes.shape[0]):
        before += sizes[c]
        if before > half:
            return c
    return sizes.shape[0]


def refine_partition(X, offset, scale, sample_major, u, v, neighbours, labels, n_clusters,
                     max_sweeps, budget, margin, n_final=None, baseline=None):
    """Up to ``max_sweeps`` sweeps of single-feature moves (see the module
    docstring), on ``labels`` in place.

    With ``n_final < n_clusters``, the first ``max_sweeps - 1`` sweeps
    (fewer if one moves nothing) refine these ``n_clusters``,
    :func:`fastrena._kernels.exchange.exchanged` merges them to ``n_final``
    in Ward's greedy order, and one last sweep (if ``max_sweeps >= 1``)
    refines those. With ``baseline`` too (``n_final`` clusters in which
    ``labels`` are nested: the merge tree's cut the fit would return
    unrefined), the result is ``baseline`` itself unless the refined
    within-cluster sum of squares is lower than its own by more than 1e-12
    of it (:func:`fastrena._kernels.partition_sums.cut_explains_more`; the moves
    only lower it, but the exchange's greedy merges might not make up for
    the cut's): refining never leaves a worse partition than not refining.

    Feature i of cluster a (``n_a >= 2``) moves to the neighbouring
    cluster b (a cluster of one of its graph neighbours) of smallest
    ``n_b / (n_b + 1) ||x_i - mu_b||^2`` when that is below
    ``n_a / (n_a - 1) ||x_i - mu_a||^2`` by more than ``margin`` times
    ``n_a / (n_a - 1) (||x_i - mu_a||^2 + ||x_i||^2 + ||mu_a||^2)`` (the sum
    of squares then falls by the difference; see
    :data:`fastrena._kernels.moves.RELATIVE_MARGIN`)
    and a stays connected
    (:func:`fastrena._kernels.connectivity.removal_outcome`); b stays connected
    since i touches it. When i's removal would cut exactly one piece off a
    (the rest staying connected), i moves to b with that piece if the
    piece's move lowers the sum of squares by more than the margin
    (:func:`fastrena._kernels.moves.piece_gain`,
    :func:`fastrena._kernels.moves.move_piece`).
    Ties between candidates go to the first met in i's adjacency list.
    Stops after a sweep that moves nothing.

    A sweep runs in two phases (:func:`_n_blocks`): the clusters are dealt
    to blocks as the sweep starts (:func:`_owners`: in order of their
    first feature, runs of about equal numbers of features), a number of
    blocks fixed by the number of features alone; each block's features
    are visited in index order, on a thread of their own, except those
    with a neighbour in another block's cluster (a block reads and writes
    only its own clusters' means, sizes and members, and moves features
    between them alone: no thread can see another's moves, so the split
    between threads cannot change a bit); then the features left out are
    visited in index order. With one block (fewer than 2**12 features,
    see :func:`_n_blocks`) this is the plain sweep in index order; so it
    is when the first sweep's deal would leave more than half of the
    features waiting (among every :data:`_WAIT_SAMPLE`-th, see
    :func:`_first_deal`): a surface numbered by subdivision level (each
    fsaverage hemisphere) scatters the clusters of a block, and there two
    blocks took 1.14-1.22x the plain sweep's time.

    Parameters
    ----------
    X : 2-D array (n_samples, n_features), float32 or float64, any layout
    offset : float64 array (n_samples,)
        Subtracted from each sample as it is read: the first feature's
        values, so that ``X + c`` (c exact) and a plateau read as exact
        zeros, and the margin's squares do not depend on a shift.
    scale : float
        A power of two X - offset is multiplied by as it is read (exact):
        the caller's choice that keeps squares and sums of squares in
        range.
    sample_major : bool
        Whether X's samples are its outer (slow) axis: only the loop nest
        of the sums follows it.
    u, v : int64 arrays
        The graph's edges (each once; its nodes are the features): the
        exchange's clusters' graph is made from them.
    neighbours : tuple
        The same graph as neighbour lists, ``(indptr, indices,
        max_degree)`` (:func:`fastrena._kernels.graph.neighbour_lists`,
        kept by :meth:`fastrena.graphs.FeatureGraph.neighbour_lists`),
        ``indices`` in 32 bits when the features' numbers fit.
    labels : int64 array (n_features,), values in [0, n_clusters)
    n_clusters, max_sweeps, budget : int
    margin : float

    Returns
    -------
    sweeps : int
        Sweeps run (below ``max_sweeps``: the last one moved nothing, or,
        with the exchange, the first phase stopped early on a sweep that
        moved nothing and the last sweep followed the exchange).
    moves : int64 array (sweeps,)
        Features moved in each sweep.
    n_clusters : int
        The clusters in ``labels``: ``n_final`` if given and reachable.
    kept_baseline : bool
        Whether ``labels`` are ``baseline``, kept over the refined
        partition.
    """
    n_samples, n_features = X.shape
    moves = np.zeros(max_sweeps, dtype=np.int64)
    exchange = n_final is not None and n_final < n_clusters
    if (max_sweeps == 0 and not exchange) or n_features == 0:
        return 0, moves, n_clusters, False
    # The labels worked on in the neighbours' width, 32 bits when the
    # features' numbers fit (the labels copied back at the end): the
    # connectivity tests' and the sweeps' most frequent waits were loads of
    # these two (T1 at 2 mm, K = N/50: 3 sweeps 0.94x their time; at 2 mm
    # x 100 float32 samples, with _ROWS_AHEAD, 0.84x).
    indptr, indices, max_degree = neighbours
    given = labels
    labels = given.astype(indices.dtype)
    # Its pages mapped here, in order, rather than by the start's two
    # tasks at once: at 1 mm x 100 samples, K = N/20 (94 MB of sums), whole
    # fits 0.94-0.97x their time; 0.97x at 2 mm, 0.99-1.01x at 1 mm with
    # K = N/50 and N/100.
    sums = mapped_in_order(np.zeros((n_clusters, padded(n_samples))))
    # Each cluster's features: the start's two tasks and the sweeps read
    # them (the sweeps keep them up to date).
    sizes = np.bincount(labels, minlength=n_clusters).astype(np.int64, copy=False)
    n_blocks = _n_blocks(n_features)
    deal = (np.int64(n_blocks), np.empty(n_clusters, dtype=np.int64),
            np.zeros((n_blocks, 2), dtype=np.int64), np.zeros(2, dtype=np.int64))
    # The first deal beside the clusters' sums, on two threads. (Work: the
    # sums' reads of X and the deal's of the labels; a small input runs
    # both on the calling thread.)
    split = np.int64(_start_split(sizes))
    run_tasks(_start_tasks, 2, (X, offset, scale, labels, sample_major, indptr, indices, sums,
                                sizes, deal, split),
              n_samples * n_features + 2 * n_features)
    # What the baseline's clusters explain (its sums are those of the
    # clusters nested in it): the refined partition must explain more.
    explained = np.nan
    if exchange and baseline is not None:
        explained = call_deferring_sigint(
            coarse_between_sum, (sums, sizes, labels, baseline, np.int64(n_final)), {})
    # A connectivity test's marks (``origin``: read only at the nodes a
    # test has marked in ``visited``) and a turn's candidates.
    visited = np.full(n_features, -1, dtype=np.int64)
    origin = np.empty(n_features, dtype=np.int64)
    seen = np.full(n_clusters, -1, dtype=np.int64)
    # Blocks pay only when most features can go on their own threads: with
    # more than half of them waiting for the second phase (a surface
    # whose vertices are numbered by subdivision level scatters each
    # block's clusters: 61 % of one fsaverage5 hemisphere's), the sweeps
    # stay the plain one.
    if n_blocks > 1 and 2 * deal[3][1] > deal[3][0]:
        n_blocks = 1
    first = (deal[1], deal[2]) if n_blocks > 1 else None
    queue = np.empty(n_features, dtype=np.int64)
    x = np.zeros(padded(n_samples))
    piece = np.zeros((2, padded(n_samples)))
    state = search_state()
    # A connectivity test's neighbours: at most a feature's degree.
    n_sources = max(1, max_degree)
    sources = np.empty((2, n_sources), dtype=np.int64)
    later = np.empty(n_features, dtype=np.bool_)
    phase_end = max(max_sweeps - 1, 0) if exchange else max_sweeps
    sweeps = 0
    stalled = False
    while True:
        if sweeps == phase_end or stalled:
            if not exchange:
                break
            # The exchange, then one last sweep (the sweep numbers, which
            # mark visits, go on increasing).
            exchange = stalled = False
            sums, sizes, n_clusters = exchanged(labels, sums, sizes, u, v, n_samples, n_final)
            first = None
            phase_end = min(sweeps + 1, max_sweeps)
            continue
        sweep = np.int64(sweeps)
        if first is not None:
            owner, span = first
            first = None
        elif n_blocks > 1:
            owner, span = call_deferring_sigint(_owners, (labels, sizes, np.int64(n_blocks)), {})
        else:
            # One block owns every cluster and spans every feature (what
            # _owners deals; a small refinement's sweeps need no call).
            owner = np.zeros(n_clusters, dtype=np.int64)
            span = np.array([[0, n_features]], dtype=np.int64)
        if n_blocks > 1:
            later[:] = False
        moved = np.zeros(n_blocks, dtype=np.int64)
        # One thread per block at most: each block's work is a sweep of
        # its features (run_tasks reads this work estimate so).
        run_tasks(_block_tasks, n_blocks,
                  (X, offset, scale, indptr, indices, labels, sizes, sums, visited, origin, seen,
                   owner, span, later, moved, np.int64(n_sources), sweep, budget, margin),
                  n_blocks * PARALLEL_GRAIN)
        total = int(moved.sum())
        # The second phase: with one block, which owns every cluster,
        # nothing waits for it.
        if n_blocks > 1:
            total += int(call_deferring_sigint(
                _sweep_range, (X, offset, scale, indptr, indices, labels, sizes, sums, visited,
                               origin, seen, owner, later, queue, x, piece, sources, state,
                               sweep, budget, margin, np.int64(0), np.int64(n_features),
                               np.int64(-1)), {}))
        moves[sweeps] = total
        sweeps += 1
        stalled = total == 0
    if explained == explained and cut_explains_more(X, scale, labels, n_clusters, sums, sizes,
                                                    baseline, n_final, explained):
        given[:] = baseline
        return sweeps, moves[:sweeps].copy(), n_final, True
    given[:] = labels
    return sweeps, moves[:sweeps].copy(), n_clusters, False


@njit(cache=True)
def first_appearance(labels, n_clusters):
    """``labels`` renumbered in order of first appearance (linear)."""
    new = filled(np.empty(n_clusters, dtype=np.int64), np.int64(-1))
    out = np.empty(labels.shape[0], dtype=np.int64)
    n = 0
    for i in range(labels.shape[0]):
        c = labels[i]
        if new[c] < 0:
            new[c] = n
            n += 1
        out[i] = new[c]
    return out
