"""The parallel loops of the kernels: a serial kernel over a range of tasks,
called on a few threads at once.

Why not numba's ``parallel=True``: compiling a ``prange`` loop (numba's
parfor passes and the gufunc wrapper around it) took 1.4-2.4 s per kernel
and dtype, 11 of the 15 s that a first fit in a fresh environment spent
compiling. A serial kernel compiled with ``nogil=True`` runs the same loop
body, compiles in a fraction of that, and releases the GIL, so a few Python
threads run its ranges side by side.

Determinism: a kernel run here owns, in each task, the outputs of that task
alone, and computes them by the same code in the same order whichever
thread runs it; how the tasks are split between threads (by the thread
count, ``numba.get_num_threads()``) cannot change a bit of the result.
"""

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as _wait_all

import numba

from .._interrupt import call_deferring_sigint

__all__ = ["PARALLEL_GRAIN", "run_tasks"]

#: Element operations below which one more thread does not pay for itself:
#: handing a range to a pool thread and waiting for it costs about 50 us,
#: the time of some 10**5 element operations.
PARALLEL_GRAIN = 1 << 17

_pool = None
_pool_lock = threading.Lock()


def _thread_pool():
    """The pool of helper threads (one fewer than numba's thread maximum:
    the calling thread runs a range itself), made on first use."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max(1, numba.config.NUMBA_NUM_THREADS - 1),
                                       thread_name_prefix="fastrena")
        return _pool


def _forget_pool():
    # A forked child has the pool object but not its threads.
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


class _Range:
    """``kernel(*args)`` run at most once, by a pool thread or by the
    caller, whichever comes first; the other waits until it is done."""

    __slots__ = ("kernel", "args", "lock")

    def __init__(self, kernel, args):
        self.kernel, self.args = kernel, args
        self.lock = threading.Lock()

    def run(self):
        with self.lock:
            kernel, args = self.kernel, self.args
            self.cancel()
            if kernel is not None:
                kernel(*args)

    def cancel(self):
        # The arrays are let go too: a range left in the pool's queue (see
        # _run_split) must not keep them until a thread takes it.
        self.kernel = self.args = None


def _run_split(kernel, bounds, args):
    ranges = [_Range(kernel, (*args, bounds[i], bounds[i + 1]))
              for i in range(1, len(bounds) - 1)]
    futures, left = [], []
    for task_range in ranges:
        try:
            futures.append(_thread_pool().submit(task_range.run))
        except RuntimeError:
            # "can't start new thread" (a memory limit: each thread needs
            # its stack; or the interpreter is shutting down): this thread
            # runs the range. The pool may have queued it before failing to
            # start a thread for it: a thread that takes it later finds it
            # done.
            left.append(task_range)
    try:
        kernel(*args, bounds[0], bounds[1])
        for task_range in left:
            task_range.run()
    finally:
        # No thread may still write into the outputs once this returns,
        # even when the caller's range raised: a range left is done or
        # waited for, and never started afterwards.
        for task_range in left:
            with task_range.lock:
                task_range.cancel()
        _wait_all(futures)
    for future in futures:
        future.result()


def run_tasks(kernel, n_tasks, args, work):
    """``kernel(*args, t0, t1)`` on contiguous ranges ``[t0, t1)`` covering
    the tasks ``0 .. n_tasks - 1``: one range per thread, up to
    ``numba.get_num_threads()`` threads and one per :data:`PARALLEL_GRAIN`
    of ``work`` (the call's element operations), the calling thread taking
    the first, and any range no thread can be started for. ``kernel`` is a
    ``nogil`` numba kernel writing its results into arrays of ``args``. A
    Ctrl-C meanwhile is handled once every range has finished (see
    :func:`fastrena._interrupt.call_deferring_sigint`)."""
    # numba's thread count is asked only when the work could use more than
    # one (the call costs a few microseconds: a small refinement makes
    # a dozen of these calls).
    n_threads = min(n_tasks, 1 + work // PARALLEL_GRAIN)
    if n_threads > 1:
        n_threads = min(n_threads, numba.get_num_threads())
    if n_threads <= 1:
        call_deferring_sigint(kernel, (*args, 0, n_tasks), {})
        return
    bounds = [n_tasks * i // n_threads for i in range(n_threads + 1)]
    call_deferring_sigint(_run_split, (kernel, bounds, args), {})
