"""The ``"ward"`` linkage: rounds of mutual nearest neighbours on Ward's
cost and Ward's greedy order to finish, their merges recorded with heights.

:func:`fastrena.agglomeration.agglomerate` runs the levels and reduces the
graph and the signals; :class:`WardMerges` decides each round's merges and
keeps them; the ``n_clusters`` partition is the cut of their merge tree
(:func:`fastrena.tree.ward_tree`).
"""

import numpy as np

from . import _kernels, arrays

__all__ = ["WARD_GREEDY_BYTES", "WARD_GREEDY_SWITCH", "WARD_WORK_BUDGET",
           "WardMerges"]

#: A ``"ward"`` round whose mutual pairs would merge fewer than this
#: fraction of the nodes hands the rest to Ward's greedy order instead
#: (:func:`fastrena._kernels.greedy_ward`): the graph is small by then, and
#: where nearest neighbours chain (a big cluster whose many small
#: neighbours all choose it) rounds would merge a pair or two each.
WARD_GREEDY_SWITCH = 0.1

#: The greedy finish holds the graph's signals in memory (float64): only
#: below this size, whatever the backend (a Dask fit reads them from its
#: store), so that a Dask fit and an in-memory fit take the same path.
WARD_GREEDY_BYTES = 2 ** 31

#: With ``linkage="ward"``, a round merges only mutual nearest neighbours,
#: which shrinks the graph by a factor of about 0.7-0.9 per round; the
#: rounds' work (edges swept), and the greedy finish's (neighbours
#: visited), is at most this many times the first round's (measured: 5-12
#: on real data). Past this budget, rounds merge every node with its
#: nearest neighbour, which at least halves every component that has an
#: edge, and the greedy finish stops re-costing merges, so the work stays
#: linear on any input.
WARD_WORK_BUDGET = 32

class WardMerges:
    """The merges of the ``"ward"`` linkage, and when they settle the cut
    that picks the ``n_clusters`` partition among them.

    Every round merges pairs of mutual nearest neighbours for Ward's merge
    cost (the increase of the within-cluster sum of squares), on the true
    cluster means; when they would merge fewer than
    :data:`WARD_GREEDY_SWITCH` of the nodes, Ward's greedy order finishes
    on the graph left (:func:`fastrena._kernels.greedy_ward`). Each merge
    is recorded with a height: its cost, raised to the heights of the
    merges beneath it. The partition is the one left
    by the ``n_features - n_clusters`` lowest merges (the merge tree's cut,
    :func:`fastrena.tree.ward_tree`):
    a region whose merges are cheap (flat) ends in few clusters, a region
    of detail in many, as with Ward's own greedy order, although every
    round merges everywhere at once. Rounds continue past ``n_clusters``
    nodes until the cut is settled (no edge left is cheaper than the
    highest merge the cut takes; see :meth:`settled`).
    """

    def __init__(self, n_nodes, n_clusters, n_edges):
        self.n_features = n_nodes
        self.n_clusters = n_clusters
        self.sizes = np.ones(n_nodes)
        self.rep = np.arange(n_nodes, dtype=np.int64)
        self.height = np.zeros(n_nodes)
        self.first, self.second, self.heights = [], [], []
        self.budget = WARD_WORK_BUDGET * n_edges
        self.work = 0
        self.next_check = n_clusters

    def settled(self, n, cost):
        """Whether further rounds cannot change the cut: every edge left
        costs at least the highest merge the cut takes (later merges cost
        at least that much, up to Ward's inversions). Checked when the
        nodes first fall to ``n_clusters`` and then each time they halve,
        so the checks cost O(n_features log n_clusters) in all."""
        if n > self.next_check:
            return False
        self.next_check = n // 2
        n_taken = self.n_features - self.n_clusters
        if n_taken <= 0:
            return True
        heights = np.concatenate(self.heights)
        if heights.shape[0] < n_taken:
            return False
        highest = np.partition(heights, n_taken - 1)[n_taken - 1]
        return bool(cost.min() >= highest)

    def merge(self, n, u, v, w, threshold, F, rows=None):
        """One round on the squared distances ``w`` between the ends of the
        edges ``(u, v)``: (labels of the new nodes, their number); or, when
        mutual pairs have become too few, Ward's greedy order to the end
        on this graph (:func:`fastrena._kernels.greedy_ward`), and
        (None, 0); or, when further rounds cannot change the cut (see
        :meth:`settled`), (None, -1). Node i's signal is ``F[:, i]``, or
        ``F[:, rows[i]]`` with ``rows``."""
        self.work += u.shape[0]
        mutual = self.work <= self.budget
        # Ties of Ward's cost are broken by the edge priority alone (noise
        # on the costs): first-sample noise measured worse on tied data
        # (ramp 1.27x Ward's error against 1.23x).
        cost, kept, step, n_new = _kernels.ward_round(n, u, v, w, self.sizes, threshold,
                                                      mutual)
        if self.settled(n, cost):
            return None, -1
        if (mutual and n - n_new < WARD_GREEDY_SWITCH * n
                and 8 * n * F.shape[0] <= WARD_GREEDY_BYTES):
            # A copy: the greedy order overwrites it, and F may be X itself.
            live = np.asarray(F) if rows is None else arrays.live_rows(F, rows)
            M = np.array(live.T, dtype=np.float64, order="C", copy=True)
            below = np.sort(np.concatenate(self.heights)) if self.heights else np.zeros(0)
            self._record(*_kernels.greedy_ward(
                M, self.sizes.copy(), u, v, self.rep, self.height.copy(),
                max(self.budget - self.work, 0), below, self.n_features - self.n_clusters))
            return None, 0
        first, second, heights, self.rep, self.height = _kernels.record_merges(
            u, v, kept, step, n_new, cost, self.rep, self.height)
        self._record(first, second, heights)
        # The old sizes weight the old nodes' means into the new ones.
        self.sizes_before = self.sizes
        self.sizes = np.bincount(step, weights=self.sizes, minlength=n_new)
        return step, int(n_new)

    def _record(self, first, second, heights):
        """Keep a batch of merges: their two features and heights."""
        self.first.append(first)
        self.second.append(second)
        self.heights.append(heights)
