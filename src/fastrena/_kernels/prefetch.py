"""A hint to the processor: start loading a row of an array into cache.

Kernels that read rows of a large array in an order the hardware cannot
guess (a ``"ward"`` round's edges between merged nodes, whose rows lie
anywhere in the signals) wait for memory at each new row; the hardware
prefetcher follows a row once it has started, not the jump to the next.
:func:`prefetch_row` asks for a row's cache lines some work ahead of its
use. It is a hint (LLVM's ``llvm.prefetch``): it reads and writes nothing
a kernel sees, never faults (an address out of range is ignored), and
cannot change a result, only when the data arrive.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["prefetch_row"]

#: Bytes of a cache line (64 on x86-64 and most ARM cores; a wrong guess
#: only asks for some lines twice or leaves some to the hardware).
_LINE = 64


@intrinsic
def prefetch_row(typingctx, array, row):
    """Ask for every cache line of ``array[row]`` (a 2-D array) to be
    loaded for reading, kept in every cache level; nothing unless the
    array is C-ordered (its rows contiguous). Compiled code only (a numba
    intrinsic)."""
    if not (isinstance(array, types.Array) and array.ndim == 2
            and isinstance(row, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        if array_type.layout != "C":
            return context.get_dummy_value()
        values = context.make_array(array_type)(context, builder, args[0])
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        zero = context.get_constant(types.intp, 0)
        start = cgutils.get_item_pointer(context, builder, array_type, values, [index, zero],
                                         wraparound=False)
        byte_ptr = ir.IntType(8).as_pointer()
        start = builder.bitcast(start, byte_ptr)
        item = context.get_abi_sizeof(context.get_data_type(array_type.dtype))
        n_bytes = builder.mul(builder.extract_value(values.shape, 1),
                              context.get_constant(types.intp, item))
        hint_type = ir.FunctionType(ir.VoidType(), [byte_ptr] + [ir.IntType(32)] * 3)
        hint = cgutils.get_or_insert_function(builder.module, hint_type, "llvm.prefetch.p0i8")
        # (address, 0 = read, 3 = keep in every level, 1 = data cache)
        flags = [ir.Constant(ir.IntType(32), value) for value in (0, 3, 1)]
        step = context.get_constant(types.intp, _LINE)
        with cgutils.for_range_slice(builder, zero, n_bytes, step) as (offset, _):
            builder.call(hint, [builder.gep(start, [offset])] + flags)
        return context.get_dummy_value()

    return types.void(array, row), codegen

