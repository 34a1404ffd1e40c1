"""Ward's merge costs between nodes of known means: one edge's
(:func:`ward_cost`, inlined into the greedy order's merge loop) and a whole
graph's on threads (:func:`ward_costs`), the same bits either way."""

import numpy as np
from numba import njit

from .compiling import unsigned
from .lanes import lanes_total
from .threads import PARALLEL_GRAIN, run_tasks
from .ward import merge_cost


@njit(cache=True, inline="always")
def ward_cost(M, sizes, a, b):
    """Ward's cost of merging nodes a and b: the squared distance of
    their means in eight lanes (lane j the samples ``s = j (mod 8)`` of the
    first multiple of eight, in sample order, the lanes added by
    :func:`fastrena._kernels.lanes.lanes_total`), then the samples
    left over one after the other: one fixed order, the same bits on every
    machine and thread. Below eight samples the lanes stay 0.0 and the sum
    is the plain chain in sample order. One chain of 100 adds waited on
    each add: the exchange's greedy order on 14,122 clusters of 100
    samples (2 mm mask, K/N = 0.05) 17 -> 11 ms, its first costs 4.6 ->
    2.9 ms (the same merges on those clusters)."""
    n = M.shape[1]
    blocks = n - n % 8
    l0 = l1 = l2 = l3 = l4 = l5 = l6 = l7 = 0.0
    ua = unsigned(a)
    ub = unsigned(b)
    for s in range(0, blocks, 8):
        us = unsigned(s)
        d0 = M[ua, us] - M[ub, us]
        d1 = M[ua, us + 1] - M[ub, us + 1]
        d2 = M[ua, us + 2] - M[ub, us + 2]
        d3 = M[ua, us + 3] - M[ub, us + 3]
        d4 = M[ua, us + 4] - M[ub, us + 4]
        d5 = M[ua, us + 5] - M[ub, us + 5]
        d6 = M[ua, us + 6] - M[ub, us + 6]
        d7 = M[ua, us + 7] - M[ub, us + 7]
        l0 += d0 * d0
        l1 += d1 * d1
        l2 += d2 * d2
        l3 += d3 * d3
        l4 += d4 * d4
        l5 += d5 * d5
        l6 += d6 * d6
        l7 += d7 * d7
    d = lanes_total((l0, l1, l2, l3, l4, l5, l6, l7))
    for s in range(blocks, n):
        us = unsigned(s)
        x = M[ua, us] - M[ub, us]
        d += x * x
    return merge_cost(d, sizes[a], sizes[b])


@njit(cache=True, nogil=True)
def _cost_tasks(M, sizes, u, v, keys, per_task, t0, t1):
    """Tasks t0..t1 of :func:`ward_costs`: task t the run of ``per_task``
    edges from ``t * per_task`` (each edge's cost is its own output: the
    same bits on any thread)."""
    n_edges = u.shape[0]
    for t in range(t0, t1):
        for e in range(t * per_task, min((t + 1) * per_task, n_edges)):
            keys[e] = ward_cost(M, sizes, u[e], v[e])


def ward_costs(M, sizes, u, v):
    """The Ward costs of the edges ``u``, ``v`` between nodes of means
    ``M`` and sizes ``sizes`` (float64), on threads (each edge's cost is
    its own output: the same bits whatever the threads)."""
    n_edges = u.shape[0]
    costs = np.empty(n_edges, dtype=np.float64)
    # Runs of about a grain's work each.
    per_task = max(1, PARALLEL_GRAIN // max(1, M.shape[1]))
    run_tasks(_cost_tasks, -(-n_edges // per_task),
              (M, sizes, u, v, costs, np.int64(per_task)), n_edges * M.shape[1])
    return costs
