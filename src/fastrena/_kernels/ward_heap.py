"""The 4-ary heap of :func:`fastrena._kernels.greedy_ward`'s merge loop
(:mod:`.ward_greedy`): entries of a cost and two nodes, ordered by (cost,
the nodes' numbers in the graph given), and its helpers, inlined into the
loop.
"""

import numpy as np
from numba import njit

from .compiling import inner, unsigned
from .ward_costs import ward_cost

__all__ = ["grown", "heap_push", "heapify", "move", "pop", "precedes", "precedes_all",
           "precedes_entry", "purged", "push_cost", "put", "sift_down"]


# The heap: a 4-ary min-heap in two arrays moved together, ``keys`` (the
# costs, float64) and ``rows`` (int32: the two nodes a and b, their
# numbers in the graph given, oa < ob, and their versions when pushed),
# ordered by (cost, oa, ob). The sorted list of the graph's edges has rows
# of the first four columns (its versions are all 0), so the same
# comparisons read both. (int32: node numbers and versions stay below the
# nodes' number, under 2**31, see greedy_ward; the greedy order 0.90-0.98x
# its time against int64 rows.) A node's four children are next to each
# other: their keys share a cache line, and a pop reads half the levels of
# a binary heap. Positions index the arrays through compiling.unsigned (a
# child's position, 4 i + 1, is not known non-negative to LLVM): the
# star's greedy order 0.88x its time.
#
# The helpers below are inlined into the merge loop (numba's
# ``inline="always"``): called as functions, each call passing the heap's
# arrays took and released a reference to them, two atomic operations of
# numba's runtime that took 40-45 % of the greedy order's time on the
# white-matter map (a profile: ``NRT_incref`` and ``NRT_decref`` first).
# An inlined helper that holds a loop still takes and releases them once
# per call (numba prunes the pair in loop-free code only): about a quarter
# of that map's greedy order in the same profile. Loop-free helpers with
# the loops written in the merge loop itself were slower (numba's inliner
# then added the pair at every exit of each helper). Since 2026-12-07 the
# merge loop is compiled without numba's runtime
# (fastrena._kernels.compiling.inner_leaf), which leaves none of those
# operations: the exchange's greedy order on the T1 map at 2 mm (K/N =
# 0.05) 5.6 against 7.4 ms.
_inlined = njit(cache=True, inline="always")


@_inlined
def precedes_entry(key, a, b, other_key, other_a, other_b):
    """Whether entry (key, a, b) goes strictly before (other_key, ...), the
    ends given by their numbers in the graph given."""
    if key != other_key:
        return key < other_key
    if a != other_a:
        return a < other_a
    return b < other_b


@_inlined
def precedes(key, a, b, keys, rows, j):
    """:func:`precedes_entry` against the heap's entry j, whose ends are
    read on a tie of the keys only (a heap entry's row is a cache line
    apart from its key: reading it at every comparison cost the star's
    greedy order 8-9 % of its time)."""
    uj = unsigned(j)
    other = keys[uj]
    if key != other:
        return key < other
    return precedes_entry(key, a, b, other, rows[uj, 2], rows[uj, 3])


@_inlined
def precedes_all(key, a, b, keys, rows, size):
    """Whether an entry (key, a, b) goes before every entry of the heap of
    ``size`` entries but its top (the top's children: one of them is the
    smallest of the rest)."""
    for c in range(1, 5 if size > 5 else size):
        if not precedes(key, a, b, keys, rows, c):
            return False
    return True


@_inlined
def put(keys, rows, i, key, a, b, va, vb, oa, ob):
    """Entry i of the heap's arrays: ``key``, the ends a and b, their
    numbers in the graph given oa and ob, their versions va and vb."""
    ui = unsigned(i)
    keys[ui] = key
    rows[ui, 0] = a
    rows[ui, 1] = b
    rows[ui, 2] = oa
    rows[ui, 3] = ob
    rows[ui, 4] = va
    rows[ui, 5] = vb


@_inlined
def move(keys, rows, source, target):
    """Entry ``source`` of the heap's arrays copied to entry ``target``."""
    us = unsigned(source)
    ut = unsigned(target)
    keys[ut] = keys[us]
    for k in range(6):
        rows[ut, k] = rows[us, k]


@_inlined
def sift_down(keys, rows, i, last):
    """Move entry i down the heap of the first ``last`` entries to its place."""
    key = keys[i]
    a = rows[i, 0]
    b = rows[i, 1]
    oa = rows[i, 2]
    ob = rows[i, 3]
    va = rows[i, 4]
    vb = rows[i, 5]
    while True:
        child = 4 * i + 1
        if child >= last:
            break
        end = child + 4 if child + 4 < last else last
        # The first child in the heap's order (ends read on ties only).
        best = child
        ub = unsigned(best)
        best_key = keys[ub]
        for c in range(child + 1, end):
            uc = unsigned(c)
            k = keys[uc]
            if k < best_key or (k == best_key and precedes_entry(
                    k, rows[uc, 2], rows[uc, 3], best_key, rows[ub, 2], rows[ub, 3])):
                best = c
                ub = uc
                best_key = k
        if not (best_key < key or (best_key == key and precedes_entry(
                best_key, rows[ub, 2], rows[ub, 3], key, oa, ob))):
            break
        move(keys, rows, best, i)
        i = best
    put(keys, rows, i, key, a, b, va, vb, oa, ob)


@_inlined
def heap_push(keys, rows, size, key, a, b, va, vb, oa, ob):
    """Push (key, a, b) with the versions of a and b and their numbers in
    the graph given into a heap with room for it; returns its new size."""
    i = size
    while i > 0:
        parent = (i - 1) // 4
        if not precedes(key, oa, ob, keys, rows, parent):
            break
        move(keys, rows, parent, i)
        i = parent
    put(keys, rows, i, key, a, b, va, vb, oa, ob)
    return size + 1


@_inlined
def pop(keys, rows, size):
    """Remove the top of the heap of ``size`` entries; returns the new size."""
    size -= 1
    if size > 0:
        move(keys, rows, size, np.int64(0))
        sift_down(keys, rows, np.int64(0), size)
    return size


@_inlined
def heapify(keys, rows, size):
    """Floyd's construction of a heap of the first ``size`` entries: linear."""
    for i in range((size - 2) // 4, -1, -1):
        sift_down(keys, rows, np.int64(i), size)


@_inlined
def push_cost(keys, rows, size, M, sizes, version, a, c, orig):
    """Push the current cost of merging nodes a and c (in the increasing
    order of their numbers in the graph given, with their versions)."""
    oa = orig[a]
    oc = orig[c]
    lo = a if oa < oc else c
    hi = c if oa < oc else a
    return heap_push(keys, rows, size, ward_cost(M, sizes, lo, hi), lo, hi, version[lo],
                      version[hi], min(oa, oc), max(oa, oc))


@_inlined
def purged(keys, rows, size, parent, fresh):
    """The heap's entries that may still be merged (both ends alive, not
    replaced), as a heap again; returns the new size. What is kept keeps
    the same total order."""
    kept = np.int64(0)
    for i in range(size):
        a = rows[i, 0]
        b = rows[i, 1]
        if parent[a] == a and parent[b] == b and rows[i, 4] >= fresh[a] and rows[i, 5] >= fresh[b]:
            if kept != i:
                move(keys, rows, i, kept)
            kept += 1
    heapify(keys, rows, kept)
    return kept


@inner
def grown(keys, rows, size, room):
    """The heap's arrays copied into larger ones, with room for ``room``
    entries at least (and at least twice as many as before)."""
    capacity = 2 * keys.shape[0] + 16
    capacity = capacity if capacity > room else room
    larger_keys = np.empty(capacity, dtype=np.float64)
    larger_rows = np.empty((capacity, 6), dtype=np.int32)
    # In loops, not slice assignments (see .compiling: 0.5 s of a first
    # fit).
    for i in range(size):
        larger_keys[i] = keys[i]
        for j in range(6):
            larger_rows[i, j] = rows[i, j]
    return larger_keys, larger_rows
