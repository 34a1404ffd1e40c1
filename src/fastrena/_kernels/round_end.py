"""The end of an in-memory ``"ward"`` round: its new graph and its merged
signals side by side (:func:`ward_round_end`), into memory the rounds
reuse (:class:`RoundBuffers`).
"""

import numpy as np
from numba import njit

from .._interrupt import call_deferring_sigint
from . import threads
from .claims import claim
from .means import members_by_cluster, merge_rows_between
from .ward_edges import edge_buffers, reduced_edges_into, sort_scratch


class RoundBuffers:
    """The arrays a fit's rounds reduce their graphs into, reused from
    round to round (all as long as the first round's edges, which no later
    graph exceeds): two sets of :func:`edge_buffers`, taken in turn (a
    round reads the set the round before wrote, and writes the other),
    and :func:`sort_scratch`. A round's new graph is thus valid until the
    round after next reduces its own. (New arrays each round, the sort's
    from numba in pages of 4 KB, took 128,000-160,000 page faults a fit at
    1 mm x 100 float32 samples, 0.36-0.54 s of system time; 70,000-75,000
    and 0.24-0.33 s with these. Unrefined fits in fresh processes: 0.93-0.96x
    their time at 1 mm, 245-263 ms against 263-266 ms at 2 mm with float64
    samples; the same labels.)"""

    def __init__(self, n_edges):
        self.n_edges = n_edges
        self.scratch = sort_scratch(n_edges)
        self._sets = []
        self._turn = 0

    def outputs(self, n_edges):
        """The next set of :func:`edge_buffers`, for ``n_edges`` old edges
        at most."""
        if n_edges > self.n_edges:
            raise ValueError(f"{n_edges} edges exceed the buffers' {self.n_edges}")
        if len(self._sets) < 2:
            self._sets.append(edge_buffers(self.n_edges))
        out = self._sets[self._turn]
        self._turn = 1 - self._turn
        return out


#: New nodes whose signals a task of :func:`ward_round_end` merges at a
#: time, the next such piece claimed by whichever task is free
#: (:func:`fastrena._kernels.claims.claim`): the task that reduces the
#: graph joins the other once it is done. Before, that task took a fixed
#: share of the merges, set by how long the reduction took against them
#: on one machine, and one thread waited for the other on another: on an
#: AMD EPYC at 2 mm x 100 samples, the first round's two tasks took 17
#: and 20 ms (float64), 19 and 13 ms (float32), the second's 40 and 13
#: ms; a float64 fit's round ends took 0.84x their time with the pieces
#: claimed (88 against 104 ms, median of 7 fits, 5 alternated processes;
#: float32 1.02x). A piece is some hundreds of microseconds of merges at
#: most; claiming it, one atomic add.
_MERGED_PER_CLAIM = 256


@njit(cache=True, nogil=True)
def _round_end_tasks(u, v, w, step, n_new, count, new_u, new_v, new_w, todo, scratch, n_out, XT,
                     rows, sizes, new_sizes, new_rows, written, order, start, claimed, t0, t1):
    """Tasks t0..t1 of :func:`ward_round_end`: task 0 reduces the graph
    (into ``new_u``, ``new_v``, ``new_w``, ``todo``; their lengths in
    ``n_out``); then each task merges the signals of the new nodes in
    place, :data:`_MERGED_PER_CLAIM` at a time, the next piece claimed
    from ``claimed`` (the new nodes' rows in ``new_rows``, the rows
    written flagged in ``written``). Each piece's outputs are its own:
    the same bits whichever task merges it."""
    acc = np.empty(XT.shape[1], dtype=np.float64)
    for t in range(t0, t1):
        if t == 0:
            n_out[0], n_out[1] = reduced_edges_into(u, v, w, step, n_new, count, new_u,
                                                    new_v, new_w, todo, scratch)
        while True:
            c0 = claim(claimed) * _MERGED_PER_CLAIM
            if c0 >= n_new:
                break
            c1 = c0 + _MERGED_PER_CLAIM if c0 + _MERGED_PER_CLAIM < n_new else n_new
            merge_rows_between(XT, rows, order, start, c0, c1, new_sizes, sizes, new_rows,
                               written, acc)


def ward_round_end(u, v, w, step, n_new, count, XT, rows, sizes, new_sizes, buffers=None,
                   written=None):
    """The end of an in-memory ``"ward"`` round once
    :func:`fastrena._kernels.ward.ward_choice` has decided it: the new graph
    with its carried weights (what
    :func:`fastrena._kernels.ward_edges.reduced_edges_carrying` returns),
    into ``buffers`` (:class:`RoundBuffers`) if given, else new arrays,
    and the signals merged in place (what
    ``fastrena.arrays.reduce_signals_in_place`` does: node i's signal is
    row ``rows[i]`` of ``XT``, ``sizes`` the old nodes' sizes, ``new_sizes``
    the new ones), side by side on two threads: one reduces the graph
    while the other merges the new nodes' signals, a piece at a time, the
    first joining it once the graph is done (:data:`_MERGED_PER_CLAIM`).
    No task reads what another writes, so the results are those of one
    after the other, bit for bit. ``written``, if given (a flag a row of XT), gets
    the rows written flagged. Returns ``(new_u, new_v, new_w, todo,
    new_rows)``."""
    n_edges = u.shape[0]
    if buffers is None:
        new_u, new_v, new_w, todo = edge_buffers(n_edges)
        scratch = sort_scratch(n_edges)
    else:
        new_u, new_v, new_w, todo = buffers.outputs(n_edges)
        scratch = buffers.scratch
    n_out = np.zeros(2, dtype=np.int64)
    new_rows = np.empty(n_new, dtype=np.int64)
    if written is None:
        written = np.zeros(XT.shape[0], dtype=np.bool_)
    # A kernel called from Python here is not behind the module's guard.
    order, start = call_deferring_sigint(members_by_cluster, (step, np.int64(n_new)), {})
    # Two tasks when there are two threads and each is worth one: the
    # sort's four passes over the edges, the merged nodes' signals read
    # and written (the late rounds of a fit are tiny).
    work = 2 * min(4 * n_edges, 2 * (step.shape[0] - n_new) * XT.shape[1])
    threads.run_tasks(_round_end_tasks, 2,
                      (u, v, w, step, np.int64(n_new), count, new_u, new_v, new_w, todo, scratch,
                       n_out, XT, rows, sizes, new_sizes, new_rows, written, order, start,
                       np.zeros(1, dtype=np.int64)),
                      work)
    n_edges, n_todo = int(n_out[0]), int(n_out[1])
    return new_u[:n_edges], new_v[:n_edges], new_w[:n_edges], todo[:n_todo], new_rows
