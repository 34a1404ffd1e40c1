"""Whether a cluster stays connected without one of its features: a
bounded search from the feature's neighbours inside it, which the boundary
refinement (:mod:`.refine`) runs before it moves the feature out.
"""

from numba import njit

from .compiling import unsigned
from .merges import find_root

__all__ = ["CONNECTIVITY_BUDGET", "stays_connected"]

#: Adjacency slots a connectivity test may read beyond the moved
#: feature's own list (see :func:`stays_connected`). Past it the move is
#: skipped, which is always safe. Measured on fsaverage5's sulcal depth
#: after ``"ward"`` at K = 205 (3 sweeps; error over the unrefined fit's):
#: 16 slots 0.939, 64 slots 0.851, 256 slots 0.847, unbounded 0.845; at
#: K = 2,048, 256 slots and unbounded both 0.959 (measured with a search
#: from one neighbour; the joint search answers more tests within it).
CONNECTIVITY_BUDGET = 256


@njit(cache=True)
def stays_connected(i, a, labels, indptr, indices, visited, origin, queue, sources, stamp,
                     budget):
    """Whether cluster ``a`` stays connected without feature ``i``: True
    only when it provably does.

    Sufficient and local: the neighbours of i inside a must reach one
    another through a search of a without i, reading at most ``budget``
    adjacency slots. Any path of a through i enters and leaves it by two
    of those neighbours, so if they are connected without i, every path
    can go around it; one neighbour or none (i a leaf of a) needs no
    search. The search giving up (budget spent) or finding the neighbours
    truly separated answers False: the move is skipped.

    One breadth-first search from all the neighbours at once, each node
    reached labelled with the neighbour it came from; two searches that
    meet join (a union-find over the neighbours, in ``sources``: row 0
    the parents, row 1 each group's nodes still queued). Connected as
    soon as one group is left; separated as soon as a group has nothing
    left to visit (a piece of a without i that holds some of the
    neighbours, not all). A search from one neighbour alone read all of
    the larger side before giving up, and met its goals only at a path's
    full length. ``visited`` holds ``stamp`` for this test's nodes (a new
    stamp per test: nothing to clear), ``origin`` their neighbour."""
    parent = sources[0]
    live = sources[1]
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
        return True
    groups = n_goal
    head = 0
    tail = n_goal
    reads = 0
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
                return False
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
                        return True
                continue
            visited[um] = stamp
            origin[um] = rx
            queue[unsigned(tail)] = m
            tail += 1
            live[urx] += 1
        if live[urx] == 0:
            return False
    return False
