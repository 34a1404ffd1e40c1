"""Compile fastrena's kernels ahead of the first fit, and say where numba
keeps them.

numba compiles each kernel on its first call for each data type (a few
seconds in all), then keeps the machine code in its disk cache, which
later processes load in a fraction of a second. :func:`compile_kernels`
makes those first calls on tiny data, for float32 and float64, both
linkages, ``transform`` / ``inverse_transform`` and the rarer paths (data
in Fortran order, values so large they are rescaled, a NaN caught): run it
once when building a container image or a cluster's environment
(``fastrena warm``), so that no fit and no Dask worker pays the compilation.
A cache in a folder that is read-only later (the package's own folder in
an image run by another user) is still read: see
:mod:`fastrena._kernels.caching`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from . import _kernels
from .estimator import ReNA
from .graphs import graph_from_edges, lattice_graph

__all__ = ["CacheWarning", "cache_activity", "cache_dir", "compile_kernels"]

#: The warning that fastrena's compiled kernels cannot be kept (no writable
#: cache folder): once per process, naming the folders tried.
CacheWarning = _kernels.caching.CacheWarning


def cache_dir() -> str | None:
    """The folder where numba saves fastrena's newly compiled kernels (None
    if no folder is writable): the first writable of ``NUMBA_CACHE_DIR``
    (if set), ``__pycache__`` beside fastrena's source, numba's per-user
    cache folder. Kernels are also read from the others."""
    stats = getattr(_kernels.merges.nearest_neighbor_edges, "stats", None)
    return getattr(stats, "cache_path", None)


def cache_activity() -> dict[str, Any]:
    """What fastrena's kernel caches did in this process so far: a dict of
    the numbers of kernels ``loaded`` from a cache, ``compiled`` and
    ``saved``, the folders ``loaded_from`` and ``saved_to``, and
    ``not_saved``: why compiled kernels could not be kept (None if they
    could)."""
    return _kernels.caching.activity()


def compile_kernels() -> float:
    """Run every kernel once (compiling it, or loading it from numba's
    cache); returns the seconds it took."""
    start = time.perf_counter()
    mask = np.ones((4, 4, 5), dtype=bool)
    connectivity = lattice_graph(mask).to_adjacency()
    # A star: its nodes have few mutual nearest neighbours, so the "ward"
    # linkage hands it to Ward's greedy order (its own kernel).
    star = graph_from_edges(20, np.zeros(19, dtype=np.int64), np.arange(1, 20)).to_adjacency()
    rng = np.random.default_rng(0)
    for dtype in (np.float64, np.float32):
        X = rng.standard_normal((6, mask.sum())).astype(dtype)
        for linkage in ("nilearn", "ward"):
            for data in (X, np.asfortranarray(X), X * dtype(2.0 ** 1000 if dtype == np.float64
                                                          else 2.0 ** 100)):
                rena = ReNA(n_clusters=5, connectivity=connectivity, linkage=linkage,
                            scaling=True).fit(data)
                rena.inverse_transform(rena.transform(data))
        ReNA(n_clusters=3, connectivity=star, linkage="ward").fit(X[:, :20])
        # Samples longer than the short ones the refinement restores along
        # (fastrena._kernels.layout.restore_rows): its tiles.
        wide = np.ones((4, 4, 20), dtype=bool)
        ReNA(n_clusters=5, mask_img=wide, linkage="ward").fit(
            rng.standard_normal((3, wide.sum())).astype(dtype))
        # A flat region: the refinement's exchange merges identical means
        # first (their own kernel).
        ReNA(n_clusters=5, connectivity=connectivity, linkage="ward").fit(np.zeros_like(X))
        bad = X.copy()
        bad[0, 0] = np.nan
        try:
            ReNA(n_clusters=5, connectivity=connectivity).fit(bad)
        except ValueError:
            pass
    # The graph reduction's two halves and their merge, which only graphs
    # of PARALLEL_EDGES edges or more reach (a chain of that many): with
    # the fits' labels (int64) and the refinement's (int32).
    ends = np.arange(_kernels.graph.PARALLEL_EDGES + 1, dtype=np.int64)
    for labels_dtype in (np.int64, np.int32):
        _kernels.reduce_edges(ends[:-1], ends[1:], (ends // 4).astype(labels_dtype),
                              int(ends[-1]) // 4 + 1)
    return time.perf_counter() - start
