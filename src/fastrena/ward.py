"""The ``"ward"`` linkage: rounds of disjoint pairs of nearest neighbours
on Ward's cost (:data:`WARD_PAIR_SLACK`) and Ward's greedy order to finish,
their merges recorded with heights.

:func:`fastrena.agglomeration.agglomerate` runs the levels and reduces the
graph and the signals; :class:`WardMerges` decides each round's merges and
keeps them; the ``n_clusters`` partition is the cut of their merge tree
(:func:`fastrena.tree.ward_tree`).

The invariant: **every merge is made at its current Ward cost**, the
increase of the within-cluster sum of squares that merging the two
clusters causes at that moment, on their true means and sizes. A round's
merges are disjoint pairs (each costs what its edge costs) and edges of
cost 0 (identical means, any order: recorded in passes of pairs, so that
the cut splits a flat region into clusters of similar sizes, as Ward's
order does); the greedy
finish re-costs every heap entry whose ends changed since it was pushed
before it merges them. No work budget ever lets a merge through on a cost
it no longer has: the budgets below bound work by changing *which* exact
merges are made, and allocations grow with what is pushed, never with a
budget. :func:`replayed_costs` recomputes the costs from the data, which
the tests compare with those recorded (``WardMerges.costs``) on stars,
chains, ties, plateaus and real tissue, thresholded and binary maps. The
one exception is stated at :data:`WARD_WORK_BUDGET` (signals too large
to hold in memory, past the rounds' budget).
"""

import numpy as np

from . import _kernels

__all__ = ["WARD_GREEDY_BYTES", "WARD_GREEDY_SWITCH", "WARD_PAIR_SLACK", "WARD_WORK_BUDGET",
           "WardMerges", "replayed_costs"]

#: A round merges disjoint pairs: each node's nearest neighbour (its
#: cheapest merge) when that neighbour's nearest is the node itself (a
#: mutual pair), and also when the neighbour's own nearest merge is taken
#: elsewhere (its nearest chose another) and merging the two costs less
#: than ``1 + WARD_PAIR_SLACK`` times it (the neighbour takes the cheapest
#: such node; :func:`fastrena._kernels.ward_choice`). Every pair is then
#: one side's cheapest merge and costs less than that factor times the
#: other side's cheapest (a "good" edge, as approximate agglomerative
#: clustering calls it), made at its exact current cost. Mutual pairs
#: alone merged 15-26 % of the nodes a round: where a node's nearest
#: neighbour prefers a third node (chains, as cluster sizes grow apart)
#: they left it for a later round, 55 rounds a fit at 2 mm x 100 samples
#: (35 with this slack, merging 26-37 %).
#: Measured on the real-data suite and its tissue group (58 fits), error
#: over Ward's, median, unrefined / refined: mutual pairs alone 1.0000 /
#: 0.9540, slack 0.1 1.0002 / 0.9543, 0.3 1.0007 / 0.9558 (each case's
#: refined error within -0.7 % and +1.4 % of the mutual rounds'); the
#: merges' time at 0.3: 0.67-0.77x at 2 mm x 100 samples and 0.49-0.57x
#: on the MNI T1 2 mm map (0.1: 0.75-0.80x and 0.78-0.84x); 0.6 took
#: 0.93x the time of 0.3 at 2 mm x 100 samples but cost 0.6-2.5 % of the
#: unrefined error on the T1 map.
WARD_PAIR_SLACK = 0.3

#: A ``"ward"`` round whose pairs would merge fewer than this
#: fraction of the nodes hands the rest to Ward's greedy order instead
#: (:func:`fastrena._kernels.greedy_ward`): the graph is small by then, and
#: where nearest neighbours chain (a big cluster whose many small
#: neighbours all choose it) rounds would merge a pair or two each.
WARD_GREEDY_SWITCH = 0.1

#: The greedy finish holds the graph's signals in memory (float64): only
#: below this size, whatever the backend (a Dask fit reads them from its
#: store), so that a Dask fit and an in-memory fit take the same path.
WARD_GREEDY_BYTES = 2 ** 31

#: Signals too large for the greedy finish (beyond :data:`WARD_GREEDY_BYTES`
#: when pairs become few) leave the rounds to go on: a round merges
#: only disjoint pairs, which may be one pair a round on a chain, so
#: their work (edges swept) is bounded by this many times the first
#: round's; past it, a round merges every node with its nearest
#: neighbour, which at least halves every component that has an edge. Those
#: merges are the one place where a merge's recorded cost may differ from
#: its Ward cost at that moment (a node absorbing several neighbours at
#: once). Whenever the signals fit, the rounds have no budget: they hand
#: over to the greedy finish, which has none either.
WARD_WORK_BUDGET = 32

class WardMerges:
    """The merges of the ``"ward"`` linkage, to the end (one cluster per
    connected component).

    Every round merges disjoint pairs of nearest neighbours for Ward's
    merge cost (the increase of the within-cluster sum of squares), on the
    true cluster means (mutual pairs, and the near-mutual ones of
    :data:`WARD_PAIR_SLACK`); when they would merge fewer than
    :data:`WARD_GREEDY_SWITCH` of the nodes, Ward's greedy order finishes
    on the graph left (:func:`fastrena._kernels.greedy_ward`). Each merge
    is recorded with a height: its cost, raised to the heights of the
    merges beneath it. A partition into K clusters is the one left by the
    ``n_features - K`` lowest merges (the merge tree's cut,
    :func:`fastrena.tree.ward_tree`): a region whose merges are cheap
    (flat) ends in few clusters, a region of detail in many, as with
    Ward's own greedy order, although every round merges everywhere at
    once. A fit runs the merges to the end whatever its ``n_clusters``, so
    that its partition is the tree's cut: a fit to K and the merge tree's
    scale K (``labels_at``) are one partition. (Stopping earlier, once no
    edge left was cheaper than the cut's highest merge, saved up to a
    quarter of a single map's fit, but Ward's inversions then made the two
    differ.)
    """

    def __init__(self, n_nodes, n_edges):
        self.n_features = n_nodes
        self.sizes = np.ones(n_nodes)
        self.rep = np.arange(n_nodes, dtype=np.int64)
        self.height = np.zeros(n_nodes)
        # Each batch of merges in the order made: their two features,
        # heights and costs (Ward's cost when each was made).
        self.first, self.second, self.heights, self.costs = [], [], [], []
        self.budget = WARD_WORK_BUDGET * n_edges
        self.work = 0

    def merge(self, n, u, v, w, threshold, F, rows=None):
        """One round on the squared distances ``w`` between the ends of the
        edges ``(u, v)``: (labels of the new nodes, their number); or, when
        pairs have become too few, Ward's greedy order to the end
        on this graph (:func:`fastrena._kernels.greedy_ward`), and
        (None, 0). Node i's signal is ``F[:, i]``, or
        ``F[:, rows[i]]`` with ``rows``. (The chunked backend's round:
        :meth:`step` also reduces the graph.)"""
        result = self._choose(n, u, v, w, threshold, F, rows)
        return (None, 0) if result is None else result[:2]

    def _choose(self, n, u, v, w, threshold, F, rows):
        """The round's merges, recorded (:func:`fastrena._kernels.ward_choice`):
        ``(labels, n_new, count)``; or None once Ward's greedy order has
        finished on this graph instead."""
        self.work += u.shape[0]
        fits = 8 * n * F.shape[0] <= WARD_GREEDY_BYTES
        mutual = fits or self.work <= self.budget
        greedy_below = WARD_GREEDY_SWITCH * n if fits else -1.0
        # Ties of Ward's cost are broken by the edge priority alone (noise
        # on the costs): first-sample noise measured worse on tied data
        # (ramp 1.27x Ward's error against 1.23x).
        n_new, step, merges, sizes, count = _kernels.ward_choice(
            n, u, v, w, self.sizes, self.rep, self.height, threshold, mutual, greedy_below,
            slack=WARD_PAIR_SLACK)
        if fits and n - n_new < greedy_below:
            self._greedy(u, v, F, rows)
            return None
        first, second, heights, costs, self.rep, self.height = merges
        self._record(first, second, heights, costs)
        # The old sizes weight the old nodes' means into the new ones.
        self.sizes_before = self.sizes
        self.sizes = sizes
        return step, int(n_new), count

    def step(self, n, u, v, w, threshold, F, rows=None, in_place=False, buffers=None,
             written=None):
        """:meth:`merge`, the new sizes, the reduced graph and the weights
        carried over to it, in kernel calls that give the same merges, the
        same bits (:func:`fastrena._kernels.ward_choice`, then
        :func:`fastrena._kernels.reduced_edges_carrying`). Returns
        ``(labels, n_new, (new_u, new_v, new_w, todo))``, ``new_w`` holding
        the carried weights, except at the new edges ``todo``, whose weights
        are to be computed (what is there is meaningless); or None when
        Ward's greedy order has finished on this graph.

        With ``in_place`` (``F`` feature-major, node i's signal its row
        ``rows[i]``, which ``fastrena.arrays.reduce_signals_in_place`` may
        overwrite), the merged nodes' signals are also written in place,
        beside the graph's reduction (:func:`fastrena._kernels.ward_round_end`,
        the same bits), and the new nodes' rows come fourth; ``buffers``
        (:class:`fastrena._kernels.RoundBuffers`), if given, holds the new
        graph (valid until the round after next); ``written``, if given (a
        flag a row of ``F.T``), gets the rows written in place flagged."""
        result = self._choose(n, u, v, w, threshold, F, rows)
        if result is None:
            return None
        step, n_new, count = result
        if in_place:
            *edges, new_rows = _kernels.ward_round_end(u, v, w, step, n_new, count, F.T, rows,
                                                       self.sizes_before, self.sizes, buffers,
                                                       written)
            return step, n_new, tuple(edges), new_rows
        return step, n_new, _kernels.reduced_edges_carrying(u, v, w, step, n_new, count)

    def _greedy(self, u, v, F, rows):
        """Ward's greedy order to the end on this graph."""
        # A copy: the greedy order overwrites it, and F may be X itself.
        M = _node_major_float64(F, rows)
        *merges, work = _kernels.greedy_ward(M, self.sizes.copy(), u, v, self.rep,
                                             self.height.copy(), np.int64(M.shape[0]))
        self.work += int(work)
        self._record(*merges)

    def _record(self, first, second, heights, costs):
        """Keep a batch of merges: their two features, heights and costs."""
        self.first.append(first)
        self.second.append(second)
        self.heights.append(heights)
        self.costs.append(costs)


#: Nodes whose signals :func:`_node_major_float64` converts at a time.
_GATHER_ROWS = 1024


def _node_major_float64(F, rows):
    """Node i's signal as row i of a new C-ordered float64 array: ``F[:, i]``,
    or ``F[:, rows[i]]`` with ``rows``. Gathered and converted a block of
    nodes at a time: gathering all the live rows first (in F's dtype) and
    converting them after held both copies at once, up to 1.5 times the
    float64 array on top of F."""
    if rows is None:
        return np.array(np.asarray(F).T, dtype=np.float64, order="C", copy=True)
    M = np.empty((rows.shape[0], F.shape[0]))
    nodes = F.T
    for start in range(0, rows.shape[0], _GATHER_ROWS):
        M[start:start + _GATHER_ROWS] = nodes[rows[start:start + _GATHER_ROWS]]
    return M


def replayed_costs(X, first, second):
    """Ward's cost of each merge when it is made, recomputed from ``X``
    (n_samples, n_features): the merges ``(first[i], second[i])`` (a
    feature of each side) are replayed in order on the features' true
    means, in float64, with numpy only. Also returns, for each merge, the
    scale of its rounding error (the cost's size factor times the two
    means' squared norms): what :class:`WardMerges` records as
    ``costs`` must match to within a small multiple of it."""
    X = np.asarray(X, dtype=np.float64)
    sums = np.array(X.T, copy=True)
    sizes = np.ones(X.shape[1])
    parent = np.arange(X.shape[1])

    def find(a):
        root = a
        while parent[root] != root:
            root = parent[root]
        while parent[a] != root:
            parent[a], a = root, parent[a]
        return root

    costs = np.empty(len(first))
    scales = np.empty(len(first))
    for i, (a, b) in enumerate(zip(first, second)):
        a, b = find(int(a)), find(int(b))
        if a == b:
            raise ValueError(f"merge {i} joins features {first[i]} and {second[i]}, "
                             f"already in one cluster")
        ma, mb = sums[a] / sizes[a], sums[b] / sizes[b]
        factor = sizes[a] * sizes[b] / (sizes[a] + sizes[b])
        costs[i] = factor * float(((ma - mb) ** 2).sum())
        scales[i] = factor * float((ma ** 2).sum() + (mb ** 2).sum())
        parent[b] = a
        sums[a] += sums[b]
        sizes[a] += sizes[b]
    return costs, scales
