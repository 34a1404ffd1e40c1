"""How the kernels are compiled, and the habits that keep a first call short.

A fit in a fresh environment (an empty numba cache: a new container, a new
Dask worker without a shared cache) compiles every kernel it calls, for
each dtype of X. Most of that time is numba lowering and LLVM compiling
code, so it grows with the code and with the number of functions and
signatures:

* a kernel called only by other kernels is compiled as :data:`inner`,
  without the wrappers that let Python call it (about 30 ms each);
* every numpy function used inside a kernel (``np.zeros``, ``np.full``,
  ``np.arange``, ``np.empty`` of each dtype and dimension, ``min``/``max``
  of two values, slice assignment) compiles a function of its own per
  signature, 30-150 ms each in a fresh process. The kernels of the default
  linkage allocate with ``np.empty`` of int64 and float64 and
  :func:`filled`/:func:`int_range`, and write ``min``/``max`` of two
  values as conditional expressions, except where the numpy form measured
  faster: the 2-D accumulators of the sample-major kernels (8-13 % slower
  flattened; the sums' slice fill, 1 % of ``transform``) and
  ``reduce_edges`` (2-4 %). Ward's greedy order, which runs
  on small graphs only, keeps its numpy calls; an array assigned to a slice
  (``a[:] = b``, ``M[i] = M[j]``) compiles numba's message for mismatched
  shapes and its string formatting besides (2.3 s of a first ``"ward"``
  fit for two such copies): copies are written as loops;
* numba compiles a jitted function once per literal integer it is called
  with (``f(x, 0)`` and ``f(x, 1)`` are two compiles, each apart from
  ``f(x, n)``): constants passed to a kernel, and counters started at a
  constant and passed on, are given their type (``np.int64(0)``);
* numba turns a negative signed index into one from the end (``a[-1]``),
  a test and an add at every access unless LLVM proves the index
  non-negative, which it cannot for an index read from an array (an edge's
  ends, a node's label) or a loop started elsewhere than 0 (a tile, a run
  of edges). In the innermost loops such an index goes through
  :func:`unsigned` (0.4x the feature-major copy's time on float32, 0.8x
  the float64 edge weights' and the graph reduction's).
"""

import numpy as np
from numba import njit

__all__ = ["filled", "inner", "inner_leaf", "int_range", "leaf", "unsigned"]

#: The decorator of kernels called only from compiled code. numba would
#: crash the process if Python called one: read from a kernel module, it
#: comes as a ``fastrena._interrupt.CompiledOnlyKernel``, which raises a
#: TypeError instead.
inner = njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)

#: The decorator of kernels that other kernels call in their loops and
#: that allocate nothing: compiled without numba's runtime (its option
#: ``_nrt=False``; numba refuses to compile such a kernel if it
#: allocates). With the runtime, a kernel takes a reference to each array
#: it is given as it starts and releases it at each exit, two atomic
#: operations per array and call, which numba prunes only in code without
#: loops (inlining it, ``inline="always"``, keeps them at each call); when
#: two threads pass the same arrays, the counts' cache line moves between
#: the cores. In the refinement's connectivity tests (nine arrays a call),
#: its pieces' moves, Ward's greedy order and its rounds' merged means,
#: those two operations (``NRT_incref``, ``NRT_decref``) were 5-8 % of a
#: profile's samples: on the motor map and the T1 map at 2 mm (the
#: refinement), and in a ``"ward"`` fit at 2 mm x 100 samples. Without
#: them, the same code and the same results: the refinement 0.92-0.95x
#: its time on the T1, motor and fsaverage5 maps, the ``"ward"`` fit
#: 0.92-0.95x on the T1 and motor maps (1.00x at 2 mm x 100 samples, where
#: the merged means' loop waits on memory either way). :data:`inner_leaf`:
#: the same, for kernels called only from compiled code (as
#: :data:`inner`).
leaf = njit(cache=True, _nrt=False)
inner_leaf = njit(cache=True, _nrt=False, no_cpython_wrapper=True, no_cfunc_wrapper=True)


@inner
def filled(out, value):
    """``out`` (1-D) with every element set to ``value`` (``np.full``:
    ``filled(np.empty(n, dtype=np.int64), np.int64(-1))``)."""
    for i in range(out.shape[0]):
        out[i] = value
    return out


@inner
def int_range(n):
    """``np.arange(n)`` (int64)."""
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        out[i] = i
    return out


@njit(cache=True, inline="always")
def unsigned(i):
    """The index ``i`` (never negative) as an unsigned integer, which numba
    uses as it is, without the test for an index from the end (see the
    module's docstring). Only in an index: numba's arithmetic of an
    unsigned and a signed integer gives a float."""
    return np.uint64(i)
