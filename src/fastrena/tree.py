"""ReNA's merge tree: every scale from one fit.

Each level of ReNA merges groups of the previous level's nodes, and the
exact-K rule adds a level's kept edges one at a time in a fixed order
(largest index gap first). Read as a sequence of binary merges, a level's
kept edges in that order, level after level, the fit is a binary tree
whose first ``n_features - k`` merges give the k-cluster partition a fit to
k returns (with the default linkage, and enough levels for that fit to
reach k). :class:`LevelRecorder` records it during a fit;
:class:`MergeTree` answers every scale and gives scikit-learn's
``children_`` and scipy's linkage matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import _kernels

if TYPE_CHECKING:  # annotations only: numpy.typing is not loaded at run time
    from numpy.typing import NDArray

__all__ = ["LevelRecorder", "MergeTree"]


@dataclass(frozen=True, eq=False)
class MergeTree:
    """Binary merges of features in order: merge i joins the clusters of
    features ``first[i]`` and ``second[i]`` at height ``heights[i]``
    (non-decreasing). One tree per connected component of the graph:
    ``n_leaves - n_merges`` roots.

    Heights: with the default linkage, ``level - 1 + r / (m + 1)`` for the
    r-th of the m merges of a level (the level, and the merge's rank in the
    exact-K order within it); with ``linkage="ward"``, Ward's merge cost
    (the increase of the within-cluster sum of squares) raised to the
    heights beneath it.
    """

    n_leaves: int
    first: NDArray[np.int64]
    second: NDArray[np.int64]
    heights: NDArray[np.float64]
    level_sizes: tuple[int, ...] = ()

    @property
    def n_merges(self) -> int:
        return int(self.first.shape[0])

    @property
    def n_roots(self) -> int:
        """Connected components of the graph (one tree each)."""
        return self.n_leaves - self.n_merges

    def labels_at(self, n_clusters: int) -> tuple[NDArray[np.int64], int]:
        """The partition left by the first ``n_leaves - n_clusters`` merges
        (fewer clusters than roots are not reachable: one per component),
        labels numbered in order of first appearance; and its number of
        clusters."""
        n_clusters = min(max(int(n_clusters), 1), self.n_leaves)
        labels, n = _kernels.union_in_order(self.n_leaves, self.first, self.second,
                                            np.arange(self.n_merges, dtype=np.int64),
                                            n_clusters)
        return labels, int(n)

    def fit_labels(self, n_clusters: int, n_iter: int) -> tuple[NDArray[np.int64], int]:
        """The labels a fit to ``n_clusters`` with at most ``n_iter`` levels
        gives (the default linkage's levels are recorded in
        ``level_sizes``, the nodes left after each): :meth:`labels_at`,
        unless ``n_iter`` levels leave more clusters, where the fit stops."""
        target = int(n_clusters)
        if len(self.level_sizes) > int(n_iter):
            target = max(target, int(self.level_sizes[int(n_iter) - 1]))
        return self.labels_at(target)

    def children(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """scikit-learn's ``children_`` (leaves 0..n_leaves-1, merge i makes
        node n_leaves + i; smaller child first) and each merge's size."""
        return _kernels.tree_children(self.n_leaves, self.first, self.second)

    def linkage_matrix(self) -> NDArray[np.float64]:
        """scipy's linkage matrix ``Z`` (n_leaves - 1, 4): children, height,
        size. Heights are made strictly increasing (a tie becomes the next
        float above), so that ``fcluster(Z, k, criterion="maxclust")`` cuts
        exactly where :meth:`labels_at` does. A graph of several components
        has one tree each: their roots are joined last, in order of their
        first feature, at heights above every merge (1, 2, ... above the
        highest); ``maxclust`` below the number of components cuts into
        those joins, which are no merge of the fit (:meth:`labels_at` keeps
        one cluster per component there)."""
        children, counts = self.children()
        heights = _kernels.strictly_increasing(np.asarray(self.heights, dtype=np.float64))
        roots = self._roots(children)
        top = float(heights[-1]) if heights.shape[0] else 0.0
        rows = [np.column_stack([children, heights, counts]).astype(np.float64)]
        node, size = roots[0]
        for i, (other, other_size) in enumerate(roots[1:]):
            size += other_size
            rows.append(np.array([[min(node, other), max(node, other), top + i + 1, size]],
                                 dtype=np.float64))
            node = self.n_leaves + self.n_merges + i
        return np.concatenate(rows)

    def _roots(self, children):
        """(tree node, size) of each component's root, in order of the
        component's first feature: climbing from that feature through its
        ancestors (each tree once, so linear in all)."""
        labels, n = self.labels_at(1)
        sizes = np.bincount(labels, minlength=n)
        parent = np.full(self.n_leaves + self.n_merges, -1, dtype=np.int64)
        parent[children[:, 0]] = np.arange(self.n_merges) + self.n_leaves
        parent[children[:, 1]] = np.arange(self.n_merges) + self.n_leaves
        roots = []
        for c, node in enumerate(np.unique(labels, return_index=True)[1]):
            while parent[node] >= 0:
                node = parent[node]
            roots.append((int(node), int(sizes[c])))
        return roots


class LevelRecorder:
    """Records the default linkage's levels as binary merges (see the
    module docstring): a level's kept edges in the exact-K order (largest
    index gap first, ties in edge order), each that joins two parts."""

    def __init__(self, n_features):
        self.n_features = n_features
        self.rep = np.arange(n_features, dtype=np.int64)
        self.height = np.zeros(n_features)
        self.first, self.second, self.heights = [], [], []
        self.level_sizes = []

    def record(self, level, u, v, keep, step, n_new):
        """Level ``level`` (1, 2, ...) kept edges ``keep`` of ``(u, v)``,
        which made the nodes ``step`` (``n_new`` of them)."""
        kept = np.flatnonzero(keep)
        order = kept[np.argsort(u[kept] - v[kept], kind="stable")]
        heights = level - 1 + np.arange(1, order.shape[0] + 1) / (order.shape[0] + 1)
        # The heights as costs of the kept edges (others are not read).
        cost = np.zeros(u.shape[0])
        cost[order] = heights
        first, second, heights, _, self.rep, self.height = _kernels.record_merges(
            u, v, order, step, n_new, cost, self.rep, self.height)
        self.first.append(first)
        self.second.append(second)
        self.heights.append(heights)
        self.level_sizes.append(int(n_new))

    def tree(self):
        return _tree(self.n_features, self.first, self.second, self.heights,
                     level_sizes=self.level_sizes)


def _tree(n_features, first, second, heights, by_height=False, level_sizes=()):
    """A :class:`MergeTree` of batches of merges, in recording order or,
    ``by_height``, sorted by height (ties in recording order)."""
    empty = np.zeros(0, dtype=np.int64)
    first = np.concatenate(first) if first else empty
    second = np.concatenate(second) if second else empty
    heights = np.concatenate(heights) if heights else np.zeros(0)
    if by_height:
        # Heights are costs (>= 0) raised to those beneath them.
        order = _kernels.order_by_height(heights)
        first, second, heights = first[order], second[order], heights[order]
    return MergeTree(n_features, first, second, heights, tuple(level_sizes))


def ward_tree(ward):
    """The merge tree of a finished :class:`fastrena.ward.WardMerges`: its
    merges sorted by height (ties in recording order), as its cut takes
    them."""
    return _tree(ward.n_features, ward.first, ward.second, ward.heights, by_height=True)
