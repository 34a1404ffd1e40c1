"""Work claimed from a shared counter: threads running one kernel's tasks
side by side take the next piece of a common list of pieces as each
becomes free (:func:`claim`), so that none waits idle while the other
still has pieces left, whatever the machine makes each piece cost.

Determinism: a claim decides only *which thread* does a piece, never what
the piece computes nor where it writes. A kernel that claims pieces must
own each piece's outputs alone, as every task of
:func:`fastrena._kernels.threads.run_tasks` does: the results are then the
same bits on any number of threads and whichever thread claims what.
"""

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

__all__ = ["claim"]


@intrinsic
def claim(typingctx, counter):
    """``counter[0] += 1`` as one atomic operation, returning the value
    before: each call, on any thread, gets a number no other call gets
    (0, 1, 2, ... in the order the calls reach the counter). ``counter``:
    a C-contiguous 1-D int64 array. Compiled code only (a numba
    intrinsic)."""
    if not (isinstance(counter, types.Array) and counter.ndim == 1
            and counter.dtype == types.int64 and counter.layout == "C"):
        return None

    def codegen(context, builder, signature, args):
        values = context.make_array(signature.args[0])(context, builder, args[0])
        one = ir.Constant(ir.IntType(64), 1)
        # Sequentially consistent: what a thread wrote before its claim
        # is seen by the next claim's thread (the pieces themselves are
        # disjoint; this only orders the counter).
        return builder.atomic_rmw("add", values.data, one, "seq_cst")

    return types.int64(counter), codegen
