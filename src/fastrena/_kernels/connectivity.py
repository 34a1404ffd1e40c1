"""What removing one feature does to its cluster's connectivity: a
bounded search from the feature's neighbours inside it, which the boundary
refinement (:mod:`.refine`) runs before it moves the feature out, alone
or with the one piece of the cluster it would cut off.
"""

import numpy as np
from numba import njit

from .compiling import leaf, unsigned
from .merges import find_root

__all__ = ["CONNECTIVITY_BUDGET", "CONNECTED", "ONE_PIECE", "PIECE_FIRST", "UNKNOWN",
           "removal_outcome", "search_state"]

#: Adjacency slots a connectivity test may read beyond the moved
#: feature's own list (see :func:`removal_outcome`). Past it the move is
#: skipped, which is always safe. Measured on fsaverage5's sulcal depth
#: after ``"ward"`` at K = 205 (3 sweeps; error over the unrefined fit's):
#: 16 slots 0.939, 64 slots 0.851, 256 slots 0.847, unbounded 0.845; at
#: K = 2,048, 256 slots and unbounded both 0.959 (measured with a search
#: from one neighbour; the joint search answers more tests within it).
CONNECTIVITY_BUDGET = 256

#: :func:`removal_outcome`: the cluster stays connected without the feature.
CONNECTED = 1
#: :func:`removal_outcome`: without the feature the cluster falls into
#: exactly two pieces; the search returns the smaller (on equal sizes,
#: the one holding the smaller feature number), found whole.
ONE_PIECE = 2
#: :func:`removal_outcome`: not proved either way within the budget, or
#: more than two pieces.
UNKNOWN = 0
#: :func:`removal_outcome`: a piece smaller than the rest of the cluster
#: was found whole while the rest is not yet known to be one piece; the
#: search is paused (its state kept) so that the caller may first ask
#: whether moving that piece would gain at all, and resume it only then.
PIECE_FIRST = 3

#: Slots of a paused search's state (:func:`search_state`).
_STATE = 8


@njit(cache=True)
def search_state():
    """A paused search's state for :func:`removal_outcome` (``state[7]``
    is 1 while paused)."""
    return np.zeros(_STATE, dtype=np.int64)


@njit(cache=True, inline="always")
def _group_size_and_first(queue, end, parent, origin, root):
    """How many of the nodes ``queue[:end]`` are in group ``root``, and the
    smallest of them."""
    count = 0
    first = -1
    for q in range(end):
        node = queue[q]
        if find_root(parent, origin[node]) == root:
            count += 1
            first = node if first < 0 or node < first else first
    return count, first


@leaf
def removal_outcome(i, a, n_a, labels, indptr, indices, visited, origin, queue, sources, stamp,
                    budget, state):
    """What cluster ``a`` (``n_a`` features) becomes without feature
    ``i``: ``(outcome, piece, end)``, outcome :data:`CONNECTED`,
    :data:`ONE_PIECE` or :data:`UNKNOWN`, each proved.

    Local and bounded: the neighbours of i inside a are searched from,
    reading at most ``budget`` adjacency slots. Any path of a through i
    enters and leaves it by two of those neighbours, so if they are
    connected without i, every path can go around it (CONNECTED; one
    neighbour or none, i a leaf of a, needs no search).

    One breadth-first search from all the neighbours at once, each node
    reached labelled with the neighbour it came from; two searches that
    meet join (a union-find over the neighbours, in ``sources``: row 0
    the parents, row 1 each group's nodes still queued). Connected as
    soon as one group is left. A group with nothing left to visit is a
    whole piece of a without i, which no other group can meet: once the
    others have joined into one (the rest of a, connected: every node of
    a reaches i through one of its neighbours), ONE_PIECE with that piece
    if it is the smaller, else once the rest has run out too (the smaller
    of the two; on equal sizes the one holding the smaller feature
    number); UNKNOWN when a third piece runs out or the budget is spent.
    A search from one neighbour alone read all of the larger side before
    giving up, and met its goals only at a path's full length.
    ``visited`` holds ``stamp`` for this test's nodes (a new stamp per
    test: nothing to clear), ``origin`` their neighbour. With ONE_PIECE,
    the piece is the nodes ``queue[:end]`` whose group,
    ``find_root(sources[0], origin[node])``, is ``piece``.

    PIECE_FIRST: the first piece found whole is the smaller but the other
    neighbours have not joined yet. The search pauses in ``state`` (its
    counters; the arrays as they are) and returns that piece; called
    again with the same arguments and ``state`` it goes on, and ends
    with ONE_PIECE (that piece) or UNKNOWN. The caller, which asks
    whether moving the piece would gain before it pays for the rest of
    the search (a tenth of the adjacency reads on the T1 map at 2 mm),
    may instead drop it: the move is then skipped, as it would be after
    the search. ``state[7]`` must be 0 for a new test."""
    parent = sources[0]
    live = sources[1]
    if state[7] == 1:
        # Resumed where it paused: after a group ran out.
        head, tail, reads, groups = state[0], state[1], state[2], state[3]
        cut, cut_size, cut_first = state[4], state[5], state[6]
        state[7] = 0
    else:
        n_goal = 0
        for k in range(indptr[i], indptr[i + 1]):
            j = indices[k]
            if labels[j] == a:
                visited[j] = stamp
                origin[j] = n_goal
                parent[n_goal] = n_goal
                live[n_goal] = 1
                queue[n_goal] = j
                n_goal += 1
        if n_goal <= 1:
            return CONNECTED, -1, 0
        head, tail, reads, groups = 0, n_goal, 0, n_goal
        # The first group found whole (a piece cut off), its size and its
        # smallest feature: none yet.
        cut, cut_size, cut_first = -1, 0, -1
    # The search's indices through compiling.unsigned.
    while head < tail:
        x = unsigned(queue[unsigned(head)])
        head += 1
        rx = find_root(parent, origin[x])
        urx = unsigned(rx)
        live[urx] -= 1
        for k in range(indptr[x], indptr[x + unsigned(1)]):
            reads += 1
            if reads > budget:
                return UNKNOWN, -1, 0
            m = indices[unsigned(k)]
            um = unsigned(m)
            if m == i or labels[um] != a:
                continue
            if visited[um] == stamp:
                rm = find_root(parent, origin[um])
                if rm != rx:
                    parent[unsigned(rm)] = rx
                    live[urx] += live[unsigned(rm)]
                    groups -= 1
                    if groups == 1:
                        return CONNECTED, -1, 0
                    if groups == 2 and cut >= 0 and 2 * cut_size < n_a - 1:
                        # The rest has joined, and the piece is the
                        # smaller (else the rest is, once it runs out).
                        return ONE_PIECE, cut, tail
                continue
            visited[um] = stamp
            origin[um] = rx
            queue[unsigned(tail)] = m
            tail += 1
            live[urx] += 1
        if live[urx] == 0:
            size, first = _group_size_and_first(queue, tail, parent, origin, rx)
            if cut >= 0:
                if groups != 2:
                    # A third piece.
                    return UNKNOWN, -1, 0
                # Both pieces whole: the smaller, or the one holding the
                # smaller feature.
                if size < cut_size or (size == cut_size and first < cut_first):
                    return ONE_PIECE, rx, tail
                return ONE_PIECE, cut, tail
            cut, cut_size, cut_first = rx, size, first
            if 2 * cut_size < n_a - 1:
                if groups == 2:
                    return ONE_PIECE, cut, tail
                # Paused: the caller asks first whether the piece gains.
                state[0], state[1], state[2], state[3] = head, tail, reads, groups
                state[4], state[5], state[6], state[7] = cut, cut_size, cut_first, 1
                return PIECE_FIRST, cut, tail
    return UNKNOWN, -1, 0
