"""How the kernels are compiled, and the habits that keep a first call short.

A fit in a fresh environment (an empty numba cache: a new container, a new
Dask worker without a shared cache) compiles every kernel it calls, for
each dtype of X. Most of that time is numba lowering and LLVM compiling
code, so it grows with the code and with the number of functions:

* a kernel called only by other kernels is compiled as :data:`inner`,
  without the wrappers that let Python call it (about 30 ms each);
* kernels allocate with ``np.empty`` of an int64 or float64 array only
  (or take their arrays from the Python caller), 1-D unless 2-D indexing
  measured faster (the sample-major kernels' accumulators: 8-13 % slower
  flattened): every other numpy allocation signature (``np.zeros``,
  ``np.full``, ``np.arange``, other dtypes) compiles a numpy function of
  its own, 40-150 ms each in a fresh process;
* ``min``/``max`` of two values are written as conditional expressions
  (each builtin signature compiles a function too), and slices are filled
  by loops rather than slice assignment;
* a constant passed to an :data:`inner` kernel is given its type
  (``np.int64(0)``): numba compiles a kernel once per literal value it is
  called with otherwise.
"""

import numpy as np
from numba import njit

__all__ = ["filled", "inner", "int_range"]

#: The decorator of kernels called only from compiled code. numba would
#: crash the process if Python called one: read from a kernel module, it
#: comes as a ``fastrena._interrupt.CompiledOnlyKernel``, which raises a
#: TypeError instead.
inner = njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)


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

