"""Copies of a signal array into another memory layout, tile by tile,
rows permuted in place, and a new array's pages mapped before threads
write it (:func:`mapped_in_order`).

Why not numpy: ``np.ascontiguousarray(X.T)`` of a C-ordered (100, 235,375)
float32 array took 0.08 s, a fifth of the boundary refinement that needs
the copy; walking the array in square tiles keeps both the rows read and
the rows written in cache, on every thread. Values are copied (or widened
to float64, exactly), never summed: the same bits on every thread count.
"""

import numpy as np
from numba import njit

from .._interrupt import call_deferring_sigint
from .compiling import inner, unsigned
from .threads import run_tasks

#: Bytes between the writes of :func:`mapped_in_order`: a page of memory
#: (4 KiB; a larger page is mapped by its first write).
PAGE_BYTES = 4096

#: Pages :func:`mapped_in_order` maps in one task: 16 MiB.
_PAGES_PER_TASK = 4096


@njit(cache=True, nogil=True)
def _map_pages_tasks(flat, t0, t1):
    """Tasks t0..t1 of :func:`mapped_in_order`: task t writes a zero into
    the first byte of each page of its share of ``flat`` (the array's
    bytes), in order."""
    n_pages = (flat.shape[0] + PAGE_BYTES - 1) // PAGE_BYTES
    for t in range(t0, t1):
        p1 = (t + 1) * _PAGES_PER_TASK
        for p in range(t * _PAGES_PER_TASK, p1 if p1 < n_pages else n_pages):
            flat[p * PAGE_BYTES] = 0


def mapped_in_order(out):
    """``out``, a new contiguous array, with its memory mapped: a zero
    byte written per page, in order (an array of zeros stays so; other
    values of an empty one stay meaningless), each thread in order
    through its half. The system maps and clears a new array's pages
    when they are first written, and two threads writing fresh pages at
    once in the order of a copy's tiles paid far more for that than one
    thread walking them in order first (see ``fastrena.arrays``'s
    feature-major copy and the refinement's clusters' sums); two threads
    each walking its half in order paid less still: 188 MB (the copy of
    2 mm x 100 float64 samples) mapped in 12-20 ms (median 14 ms) against
    20-24 ms (median 23.5 ms) on one thread, on an AMD EPYC. An array of
    at most one task's pages (16 MiB) is mapped by this thread alone."""
    flat = out.reshape(-1, order="A").view(np.uint8)
    n_tasks = (flat.shape[0] + _PAGES_PER_TASK * PAGE_BYTES - 1) // (_PAGES_PER_TASK * PAGE_BYTES)
    # Work: a page's clearing as some hundreds of element operations.
    run_tasks(_map_pages_tasks, n_tasks, (flat,), flat.shape[0] // 16)
    return out


#: Tiles of :func:`feature_major_copy`: 16 features (a task's rows of the
#: output) by 128 samples, written a row of the output at a time (each
#: feature's run of samples contiguous), read across X's rows (a column of
#: the tile: one value of each of 128 cache lines, which stay in the
#: first-level cache for the tile's next features). The other loop order
#: (X's rows read along, the output written across) depends on the
#: machine: 21-24 ms on one for a (100, 235,375) float64 copy on two
#: threads at 16 x 64, but 70 ms on an AMD EPYC (2 MB second-level
#: cache), where it needed 4 features a tile (23-25 ms); this order took
#: 19-24 ms there at 16 x 128 (float32 15 ms, and 16-27 ms at 20, 400 and
#: 1,000 samples), and 19-30 ms at 8-64 features by 64-256 samples.
_TILE_FEATURES = 16
_TILE_SAMPLES = 128


@njit(cache=True, nogil=True)
def _feature_major_tasks(X, out, largest, bad, t0, t1):
    """Tasks t0..t1 of :func:`feature_major_copy`: task t writes rows
    ``t * _TILE_FEATURES`` to ``(t + 1) * _TILE_FEATURES`` of ``out`` (its
    features), ``_TILE_SAMPLES`` samples at a time, their largest
    magnitude in ``largest[t]`` (NaN ignored) and in ``bad[t]`` how many
    are NaN or infinite."""
    n_samples, n_features = X.shape
    for t in range(t0, t1):
        top = 0.0
        n_bad = 0
        i0 = t * _TILE_FEATURES
        i1 = i0 + _TILE_FEATURES if i0 + _TILE_FEATURES < n_features else n_features
        for s0 in range(0, n_samples, _TILE_SAMPLES):
            s1 = s0 + _TILE_SAMPLES if s0 + _TILE_SAMPLES < n_samples else n_samples
            # Each output row's run of samples written along, X read down
            # a column of the tile (see _TILE_FEATURES). The indices are
            # unsigned (loops from s0, i0: compiling.unsigned): float32
            # (100, 235,375) on two threads 39 ms signed, 15 ms unsigned;
            # float64 22 and 18 ms.
            for i in range(i0, i1):
                ui = unsigned(i)
                for s in range(s0, s1):
                    us = unsigned(s)
                    out[ui, us] = X[us, ui]
                # Then read back along the row just written (in the
                # first-level cache): checked in the copy loop, the
                # comparisons kept it from running ahead (2.2x the time).
                for s in range(s0, s1):
                    x = out[ui, unsigned(s)]
                    a = abs(x)
                    top = a if a > top else top
                    n_bad += (x - x) != 0
        largest[t] = top
        bad[t] = n_bad


@inner
def _flagged(written, i0, i1, rows):
    """The rows ``i0 <= i < i1`` flagged in ``written``, in order, into the
    start of ``rows``; returns how many."""
    n_rows = 0
    for i in range(i0, i1):
        rows[n_rows] = i
        n_rows += written[i]
    return n_rows


@njit(cache=True, nogil=True)
def _restore_tasks(X, out, written, t0, t1):
    """Tasks t0..t1 of :func:`restore_rows`, the tiles of
    :func:`_feature_major_tasks`: the rows of task t's features flagged in
    ``written``, listed first (the copy loops then run over those alone,
    with no flag read inside them), unchecked."""
    n_samples, n_features = X.shape
    rows = np.empty(_TILE_FEATURES, dtype=np.int64)
    for t in range(t0, t1):
        i0 = t * _TILE_FEATURES
        i1 = i0 + _TILE_FEATURES if i0 + _TILE_FEATURES < n_features else n_features
        n_rows = _flagged(written, i0, i1, rows)
        for s0 in range(0, n_samples, _TILE_SAMPLES):
            s1 = s0 + _TILE_SAMPLES if s0 + _TILE_SAMPLES < n_samples else n_samples
            for r in range(n_rows):
                ui = unsigned(rows[r])
                for s in range(s0, s1):
                    us = unsigned(s)
                    out[ui, us] = X[us, ui]


def feature_major_copy(X, dtype, out=None):
    """``X`` (n_samples, n_features), any layout, copied into a new
    C-ordered (n_features, n_samples) array of ``dtype`` (X's, or wider),
    or into ``out``, such an array the caller no longer needs: row i holds
    feature i's samples. Also returns, read on the way, X's
    largest magnitude (NaN ignored, 0.0 for an empty X) and whether every
    value is finite."""
    if out is None:
        out = np.empty((X.shape[1], X.shape[0]), dtype=dtype)
    n_tasks = (X.shape[1] + _TILE_FEATURES - 1) // _TILE_FEATURES
    largest = np.zeros(max(n_tasks, 1), dtype=np.float64)
    bad = np.zeros(max(n_tasks, 1), dtype=np.int64)
    run_tasks(_feature_major_tasks, n_tasks, (X, out, largest, bad), X.shape[0] * X.shape[1])
    # A maximum and a count: the same whatever the tasks' split.
    return out, float(largest.max()), not bad.any()


def restore_rows(X, out, written):
    """Rows ``i`` of ``out`` (a C-ordered (n_features, n_samples) array of
    X's dtype: :func:`feature_major_copy`'s) flagged in ``written`` copied
    again from X (n_samples, n_features), any layout; the others left as
    they are. At 2 mm x 100 samples with half of the rows flagged, 11 ms
    (float32) and 19-21 ms (float64) against the whole copy's 27-31 and
    34-36 ms: X is read as much, half as much written, and nothing
    checked. X's rows of at most :data:`_SHORT_ROW_BYTES` are read along,
    one task (:func:`_restore_along_rows`)."""
    if X.shape[1] * X.itemsize <= _SHORT_ROW_BYTES and X.strides[1] == X.itemsize:
        call_deferring_sigint(_restore_along_rows, (X, out, written), {})
        return
    n_tasks = (X.shape[1] + _TILE_FEATURES - 1) // _TILE_FEATURES
    run_tasks(_restore_tasks, n_tasks, (X, out, written), X.shape[0] * X.shape[1])


#: X's rows (samples) of at most this many bytes are restored along
#: (:func:`_restore_along_rows`): sklearn's digits (1,797 samples of 64
#: float64 features, 29 rows flagged after a ``"ward"`` fit's rounds),
#: 78 us against the tiles' 104 us from a cold cache, 33 against 45 us
#: from a warm one; on 200 samples of 1,850 features the tiles' order was
#: faster (448 against 536 us).
_SHORT_ROW_BYTES = 1024


@njit(cache=True)
def _restore_along_rows(X, out, written):
    """:func:`restore_rows` on this thread, X read along its rows: each
    sample's values in order, one cache line after the other, written
    into the flagged rows of ``out`` (a stream each)."""
    n_samples, n_features = X.shape
    rows = np.empty(n_features, dtype=np.int64)
    n_rows = _flagged(written, 0, n_features, rows)
    for s in range(n_samples):
        us = unsigned(s)
        for r in range(n_rows):
            ui = unsigned(rows[r])
            out[ui, us] = X[us, ui]


@njit(cache=True)
def permute_rows(M, source):
    """Row i of M becomes its row ``source[i]``, in place (cycle by cycle,
    one row held aside)."""
    n, width = M.shape
    done = np.zeros(n, dtype=np.bool_)
    held = np.empty(width, dtype=M.dtype)
    # Rows copied in loops: a row's assignment compiles numba's message
    # for mismatched shapes (see .compiling).
    for start in range(n):
        if done[start] or source[start] == start:
            continue
        for s in range(width):
            held[s] = M[start, s]
        i = start
        while True:
            done[i] = True
            j = source[i]
            if j == start:
                for s in range(width):
                    M[i, s] = held[s]
                break
            for s in range(width):
                M[i, s] = M[j, s]
            i = j
