"""Edge weights: squared distances between the signals of each edge's ends,
summed in float64 in a fixed order (:data:`SAMPLE_BLOCK`), so the bits do
not depend on the memory layout, the thread count or the chunking.
"""

import numpy as np
from numba import njit

from .compiling import inner, unsigned
from .lanes import add_squares_of_four
from .prefetch import prefetch_row
from .threads import run_tasks


#: Samples are summed in consecutive blocks of this many samples, from
#: sample 0; each block's partial sum runs over its samples in order, from
#: zero. The partials are then added along a fixed binary tree over the block
#: index (see :func:`_push_partial`), the same whatever the memory layout,
#: the thread count or the way the samples are split into chunks: a chunked
#: (Dask) pass whose chunks start at multiples of this size rebuilds exactly
#: the same float64 weights from the sums of whole subtrees
#: (``fastrena._chunked``).
SAMPLE_BLOCK = 64

#: Edges handled by one task of the sample-major weight kernel.
_EDGE_CHUNK = 4096


@inner
def tree_levels(n_samples):
    """Slots of the binary counter that adds the block partials of
    ``n_samples`` samples: the bit length of the number of blocks."""
    n_blocks = (n_samples + SAMPLE_BLOCK - 1) // SAMPLE_BLOCK
    levels = 0
    while n_blocks > 0:
        levels += 1
        n_blocks >>= 1
    return levels if levels > 1 else 1


@inner
def _push_partial(slots, block, value):
    """Add the partial of block number ``block`` to a binary counter.

    ``slots[j]`` holds, when bit j of the number of blocks pushed so far is
    set, the sum of the aligned run of 2**j blocks before the later slots'
    runs. Pushing block b merges it with the runs it completes, so every
    stored value is the sum of an aligned dyadic run of blocks, computed as
    (left half) + (right half). The total, :func:`_counter_total`, is then
    the binary tree sum over the blocks padded with zeros to a power of two.
    """
    j = 0
    while (block >> j) & 1:
        value = slots[j] + value
        j += 1
    slots[j] = value


@inner
def _counter_total(slots, n_blocks):
    """The tree sum held by a binary counter after ``n_blocks`` pushes:
    its runs added from the smallest (rightmost) to the largest."""
    total = 0.0
    first = True
    for j in range(slots.shape[0]):
        if (n_blocks >> j) & 1:
            if first:
                total = slots[j]
                first = False
            else:
                total = slots[j] + total
    return total


@njit(cache=True, nogil=True)
def _edge_weights_sample_major_tasks(X, u, v, out, t0, t1):
    """Tasks t0..t1 of :func:`edge_weights_sample_major`: task c is the
    edges ``c * _EDGE_CHUNK`` to ``(c + 1) * _EDGE_CHUNK``."""
    n_samples = X.shape[0]
    n_edges = u.shape[0]
    # Row k: edge k's binary counter.
    slots = np.empty((_EDGE_CHUNK, tree_levels(n_samples)), dtype=np.float64)
    part = np.empty(_EDGE_CHUNK, dtype=np.float64)
    for c in range(t0, t1):
        e0 = c * _EDGE_CHUNK
        m = n_edges - e0 if n_edges - e0 < _EDGE_CHUNK else _EDGE_CHUNK
        block = np.int64(0)
        for b0 in range(0, n_samples, SAMPLE_BLOCK):
            b1 = b0 + SAMPLE_BLOCK if b0 + SAMPLE_BLOCK < n_samples else n_samples
            for k in range(m):
                part[k] = 0.0
            s = b0
            # Four rows per sweep: the edge ends and the partial sum are
            # loaded once for four samples; the adds into ``p`` stay in
            # sample order, so the bits equal the one-row loop's.
            while s + 4 <= b1:
                # Unsigned indices (compiling.unsigned): 0.90-0.95x the
                # time of the first level's weights at 2 mm x 100 samples.
                r0, r1, r2, r3 = unsigned(s), unsigned(s + 1), unsigned(s + 2), unsigned(s + 3)
                for k in range(m):
                    a = unsigned(u[e0 + k])
                    b = unsigned(v[e0 + k])
                    d0 = np.float64(X[r0, a]) - np.float64(X[r0, b])
                    d1 = np.float64(X[r1, a]) - np.float64(X[r1, b])
                    d2 = np.float64(X[r2, a]) - np.float64(X[r2, b])
                    d3 = np.float64(X[r3, a]) - np.float64(X[r3, b])
                    p = part[k]
                    p += d0 * d0
                    p += d1 * d1
                    p += d2 * d2
                    p += d3 * d3
                    part[k] = p
                s += 4
            while s < b1:
                for k in range(m):
                    d = np.float64(X[s, u[e0 + k]]) - np.float64(X[s, v[e0 + k]])
                    part[k] += d * d
                s += 1
            # A slot is read only after this chunk wrote it (see
            # _push_partial): the previous chunk's values are never used.
            for k in range(m):
                _push_partial(slots[k], block, part[k])
            block += 1
        for k in range(m):
            out[e0 + k] = _counter_total(slots[k], block)


def edge_weights_sample_major(X, u, v):
    """Squared distances along edges for X of shape (n_samples, n_nodes).

    Suited to C-ordered X. Each task takes a contiguous run of edges, whose
    ends sit close together, through the blocks of samples in order; block
    partials go into one binary counter per edge (see
    :data:`SAMPLE_BLOCK`).
    """
    out = np.empty(u.shape[0], dtype=np.float64)
    n_chunks = (u.shape[0] + _EDGE_CHUNK - 1) // _EDGE_CHUNK
    run_tasks(_edge_weights_sample_major_tasks, n_chunks, (X, u, v, out),
              u.shape[0] * X.shape[0])
    return out


#: Edges handled by one task of the feature-major weight kernel (each task
#: allocates its binary counters once).
_EDGES_PER_TASK = 4096


@inner
def _edge_end(ends, k, rows):
    """The row of XT holding edge k's end: ``ends[k]``, or its ``rows``."""
    return ends[k] if rows is None else rows[ends[k]]


#: The feature-major kernels ask for the rows of the edges this many
#: edges ahead of those they sum (:func:`fastrena._kernels.prefetch.prefetch_row`)
#: when they reach them through ``rows`` or ``edges``: a later round's
#: edges join merged nodes whose rows lie anywhere in the signals, and
#: each new row was a wait on memory. On the second round's 0.44 M edges
#: at 2 mm with 100 float64 samples, one thread: 98-118 ns an edge
#: without, 75 ns at 8 or 16 edges ahead, 82-85 ns at 32 (4: no gain).
#: Edges read in order over rows in order (a first round, the default
#: linkage's levels) ask for nothing: there the hints only cost (the
#: default fit at 3 mm x 400 samples, alternated with the code before
#: them: 1.03-1.06x its time with them, 0.98-0.99x without).
_AHEAD = 12


@inner
def _prefetch_edges(XT, u, v, rows, edges, f0, f1):
    """Ask for the rows of the edges ``f0 <= f < f1`` (of ``edges``, if not
    None) to be loaded, when ``rows`` or ``edges`` is given (numba
    compiles the None cases apart): a hint, which changes no result."""
    if rows is None and edges is None:
        return
    for f in range(f0, f1):
        g = f if edges is None else edges[f]
        prefetch_row(XT, _edge_end(u, g, rows))
        prefetch_row(XT, _edge_end(v, g, rows))


@njit(cache=True, nogil=True)
def _four_edge_tasks(XT, u, v, out, rows, edges, t0, t1):
    """Tasks t0..t1 of :func:`edge_weights_feature_major`: task t is the
    edges ``t * _EDGES_PER_TASK`` to ``(t + 1) * _EDGES_PER_TASK`` (of
    ``edges``, if not None: the indices of the edges to compute, their
    weights written at those indices of ``out``). Node i's signal is row i
    of XT, or row ``rows[i]`` (if not None). numba compiles the None cases
    apart, without the indirection.

    Four edges at a time, side by side in one vector
    (:func:`fastrena._kernels.lanes.add_squares_of_four`), four samples a
    step; each edge's block partial is its own chain of adds in sample
    order, then pushed to its binary counter: the bits of one edge after
    the other. Four edges, not more: at 2 mm x 100 samples on two threads,
    8 and 16 edges a step (more rows read at once) took 1.4x and 1.8x the
    time of four on the first round's edges (float64), which took
    0.79x the time of the scalar kernels before (float32 0.71x; edges
    of merged nodes, through ``rows`` and ``edges``: 0.86x and 0.74x)."""
    n_samples = XT.shape[1]
    n_edges = u.shape[0] if edges is None else edges.shape[0]
    # Row i: the binary counter of the group's edge i.
    slots = np.empty((4, tree_levels(n_samples)), dtype=np.float64)
    for t in range(t0, t1):
        e = t * _EDGES_PER_TASK
        end = e + _EDGES_PER_TASK if e + _EDGES_PER_TASK < n_edges else n_edges
        _prefetch_edges(XT, u, v, rows, edges, e, e + _AHEAD if e + _AHEAD < end else end)
        while e < end:
            # The rows of the group _AHEAD edges on.
            f0 = e + _AHEAD
            _prefetch_edges(XT, u, v, rows, edges, f0 if f0 < end else end,
                            f0 + 4 if f0 + 4 < end else end)
            # The last group of a task may have fewer than four edges: it
            # repeats its last edge, whose results are written once.
            last = end - 1
            e0 = e
            e1 = e + 1 if e + 1 < last else last
            e2 = e + 2 if e + 2 < last else last
            e3 = e + 3 if e + 3 < last else last
            if edges is not None:
                e0, e1, e2, e3 = edges[e0], edges[e1], edges[e2], edges[e3]
            ends_a = (_edge_end(u, e0, rows), _edge_end(u, e1, rows), _edge_end(u, e2, rows),
                      _edge_end(u, e3, rows))
            ends_b = (_edge_end(v, e0, rows), _edge_end(v, e1, rows), _edge_end(v, e2, rows),
                      _edge_end(v, e3, rows))
            block = np.int64(0)
            for b0 in range(0, n_samples, SAMPLE_BLOCK):
                b1 = b0 + SAMPLE_BLOCK if b0 + SAMPLE_BLOCK < n_samples else n_samples
                # Whole steps of four samples, then the block's last ones
                # one by one, still in sample order.
                b4 = b0 + (b1 - b0) // 4 * 4
                p0, p1, p2, p3 = add_squares_of_four((0.0, 0.0, 0.0, 0.0), XT, ends_a, ends_b,
                                                     b0, b4)
                for s in range(b4, b1):
                    us = unsigned(s)  # from b4 >= 0: see compiling.unsigned
                    d0 = np.float64(XT[ends_a[0], us]) - np.float64(XT[ends_b[0], us])
                    d1 = np.float64(XT[ends_a[1], us]) - np.float64(XT[ends_b[1], us])
                    d2 = np.float64(XT[ends_a[2], us]) - np.float64(XT[ends_b[2], us])
                    d3 = np.float64(XT[ends_a[3], us]) - np.float64(XT[ends_b[3], us])
                    p0 += d0 * d0
                    p1 += d1 * d1
                    p2 += d2 * d2
                    p3 += d3 * d3
                _push_partial(slots[0], block, p0)
                _push_partial(slots[1], block, p1)
                _push_partial(slots[2], block, p2)
                _push_partial(slots[3], block, p3)
                block += 1
            out[e0] = _counter_total(slots[0], block)
            out[e1] = _counter_total(slots[1], block)
            out[e2] = _counter_total(slots[2], block)
            out[e3] = _counter_total(slots[3], block)
            e += 4


def edge_weights_feature_major(XT, u, v, rows=None, edges=None, out=None):
    """Squared distances along edges for XT of shape (n_nodes, n_samples).

    Same summation order as :func:`edge_weights_sample_major` (hence the same
    bits). Each node's samples are contiguous (rows of XT that are not are
    copied first); four edges advance together, their sums one vector
    (:func:`_four_edge_tasks`).
    With ``rows``, node i's signal is ``XT[rows[i]]``; with ``edges`` (and
    ``out``), only the weights of those edges are computed, into ``out``
    at their indices (what ``out[edges] = ...(XT, rows[u[edges]],
    rows[v[edges]])`` gives, without the gathered copies).
    """
    if out is None:
        out = np.empty(u.shape[0], dtype=np.float64)
    if XT.shape[1] > 1 and XT.strides[1] != XT.itemsize:
        # The kernel reads each row's samples as vectors.
        XT = np.ascontiguousarray(XT)
    n_edges = u.shape[0] if edges is None else edges.shape[0]
    n_tasks = (n_edges + _EDGES_PER_TASK - 1) // _EDGES_PER_TASK
    run_tasks(_four_edge_tasks, n_tasks, (XT, u, v, out, rows, edges), n_edges * XT.shape[1])
    return out
