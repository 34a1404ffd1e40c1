"""Dask's local ``processes`` scheduler, made fit for ReNA's passes.

Dask starts a pool of spawned worker processes for each ``compute`` and
shuts it down after; :func:`worker_pool` keeps one for a whole fit (or a
``fastrena.dask.use_scheduler("processes")`` block). The scheduler sends
every task's inputs from this process to a worker and its result back, so
``fastrena._chunked`` makes each chunk's pass one task that computes the
chunk itself (:class:`ChunkGraph`).

Only imported when a Dask array is given: Dask is an optional dependency.
"""

import os
import signal
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

import dask
import dask.multiprocessing
from dask.local import get_sync
from dask.optimization import cull
from dask.system import CPU_COUNT

from ._interrupt import finish_despite_sigint

__all__ = ["ChunkGraph", "computed_then", "on_processes", "worker_pool"]


def on_processes():
    """Whether computations go to Dask's local processes scheduler."""
    return dask.base.get_scheduler() is dask.multiprocessing.get


class ChunkGraph:
    """The tasks that compute one chunk, and its key: an opaque argument of a
    task (Dask looks into neither), computed inside that task."""

    def __init__(self, graph, key):
        self.graph = cull(graph, [key])[0]
        self.key = key

    def compute(self):
        return get_sync(self.graph, self.key)


def computed_then(func, chunk, *args):
    """``func`` of the chunk computed from its graph (a task made by
    ``fastrena._chunked._chunk_calls``)."""
    return func(chunk.compute(), *args)


@contextmanager
def worker_pool():
    """Within the block, Dask's local ``processes`` scheduler (when it is
    the one in use and no ``pool`` is configured) computes on one pool of
    worker processes, shut down when the block ends, normally, on an error
    or on Ctrl-C: no worker is left running.

    Why: without a ``pool``, Dask starts a pool of spawned processes for
    each ``compute`` and shuts it down after, and each new worker imports
    fastrena, numba and scikit-learn again (about 2 s) and loads the
    kernels again; a fit computes several times per level, so a small fit
    took 25 to 190 times its time on threads. Yields the pool, or None when
    there is nothing to do (another scheduler, or a pool already set, such
    as the one :func:`fastrena.dask.use_scheduler` keeps for its block)."""
    if not on_processes() or dask.config.get("pool", None) is not None:
        yield None
        return
    n_workers = dask.config.get("num_workers", None) or CPU_COUNT
    pool = _process_pool(n_workers)
    try:
        _start_workers(pool, n_workers)
        # The pool runs Dask's multiprocessing.initializer itself: unset
        # here, or Dask would warn that it ignores it for a given pool.
        with dask.config.set({"pool": pool, "multiprocessing.initializer": None}):
            yield pool
    finally:
        # Tasks not yet started are dropped; those running finish (one
        # chunk's pass each), then every worker has exited and is joined.
        # A Ctrl-C meanwhile is raised after: cut short, the shutdown would
        # leave the workers behind.
        finish_despite_sigint(pool.shutdown, wait=True, cancel_futures=True)


def _process_pool(n_workers):
    """A pool of worker processes as Dask's processes scheduler makes one
    for each ``compute``: ``n_workers`` (Dask's ``num_workers``, default
    one per core), Dask's ``multiprocessing.context`` (default spawn) and
    its worker initializer, plus :func:`_start_worker`."""
    if os.environ.get("PYTHONHASHSEED") in (None, "0"):
        # As Dask does before starting its pools: workers inherit the
        # environment, and a fixed seed gives them all the same str hashes
        # (which Dask's bags rely on, for work in a use_scheduler block).
        os.environ["PYTHONHASHSEED"] = "6640"
    # No process is started yet: the pool starts them with its first tasks.
    user_initializer = dask.config.get("multiprocessing.initializer", None)
    return ProcessPoolExecutor(n_workers, mp_context=dask.multiprocessing.get_context(),
                               initializer=_start_worker, initargs=(user_initializer,))


def _start_workers(pool, n_workers):
    """Start every worker of ``pool`` now, with SIGINT blocked in this
    thread: they inherit the blocked signal (through fork and exec alike)
    until :func:`_start_worker` ignores it, so a Ctrl-C while one is still
    importing cannot kill it. Here it stays pending, and comes when
    unblocked (the caller then shuts the pool down)."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        for _ in range(n_workers):
            pool.submit(int)  # a no-op: the pool starts a worker per task
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def _start_worker(user_initializer):
    """Set up a worker process of :func:`_process_pool`. It ignores SIGINT:
    Ctrl-C in a terminal reaches every process of the foreground group,
    and a worker it interrupted would die with a traceback of its own (or
    return a KeyboardInterrupt as a task's error); the parent handles the
    interrupt alone and shuts the pool down."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Ignored first: one that came while the worker started is dropped.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    dask.multiprocessing.initialize_worker_process(user_initializer)
