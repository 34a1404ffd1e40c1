"""Sums of squared differences in eight lanes, written as vector
operations.

A sum over samples added one after the other waits on each add (four
cycles each), and numba never splits it (that would reassociate: no
``fastmath`` here). Eight partial sums, lane j adding the samples
``s = j (mod 8)`` in sample order, are independent chains; numba leaves
LLVM's vectoriser of straight-line code off, so eight scalar lanes in
numba code still run one add at a time. :func:`add_squared_differences`
emits them as two vectors of four doubles: plain IEEE adds and multiplies
lane by lane (no fused multiply-add, no reordering), so the bits are the
eight scalar sums' on every machine, whatever its vector width. On 100
samples a distance took 21-25 ns against 35-39 ns in four scalar lanes.

Arrays are read in blocks of eight samples: callers pad them with zeros
to a multiple of :data:`LANES` (a zero difference adds +0.0, which leaves
a sum of squares unchanged, bit for bit).
"""

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic

from .compiling import inner

__all__ = ["LANES", "ZERO_LANES", "add_squared_differences", "lanes_total", "padded"]

#: Samples in a block: one to each lane.
LANES = 8

#: The lanes of an empty sum.
ZERO_LANES = (0.0,) * LANES

_WIDTH = 4


def _contiguous_float64(ty):
    return isinstance(ty, types.Array) and ty.ndim == 1 and ty.dtype == types.float64 and (
        ty.layout == "C")


@intrinsic
def add_squared_differences(typingctx, lanes, x, row, inv, q0, q1):
    """``lanes[j] += (x[s] - row[s] * inv)**2`` for the samples
    ``s = 8 q + j`` of the blocks ``q0 <= q < q1``, in order of q; returns
    the new lanes. ``lanes``: a tuple of eight float64; ``x``, ``row``:
    C-contiguous 1-D float64 arrays of at least ``8 q1`` values (not
    checked: callers size them); ``inv``: float64."""
    if not (isinstance(lanes, types.UniTuple) and lanes.count == LANES
            and lanes.dtype == types.float64):
        raise TypingError("lanes must be a tuple of eight float64")
    if not (_contiguous_float64(x) and _contiguous_float64(row)):
        raise TypingError("x and row must be C-contiguous 1-D float64 arrays")
    signature = lanes(lanes, x, row, types.float64, types.int64, types.int64)

    def codegen(context, builder, sig, args):
        packed, x_value, row_value, inv_value, start, stop = args
        x_array = context.make_array(sig.args[1])(context, builder, value=x_value)
        row_array = context.make_array(sig.args[2])(context, builder, value=row_value)
        double = ir.DoubleType()
        vector = ir.VectorType(double, _WIDTH)
        pointer = vector.as_pointer()
        i32 = ir.IntType(32)
        i64 = ir.IntType(64)
        scale = ir.Constant(vector, ir.Undefined)
        for k in range(_WIDTH):
            scale = builder.insert_element(scale, inv_value, ir.Constant(i32, k))
        halves = []
        for h in range(LANES // _WIDTH):
            value = ir.Constant(vector, ir.Undefined)
            for k in range(_WIDTH):
                lane = builder.extract_value(packed, h * _WIDTH + k)
                value = builder.insert_element(value, lane, ir.Constant(i32, k))
            halves.append(cgutils.alloca_once_value(builder, value))
        with cgutils.for_range_slice(builder, start, stop, ir.Constant(i64, 1)) as (q, _):
            base = builder.mul(q, ir.Constant(i64, LANES))
            for h, total in enumerate(halves):
                at = builder.add(base, ir.Constant(i64, h * _WIDTH))
                xs = builder.load(builder.bitcast(builder.gep(x_array.data, [at]), pointer),
                                  align=8)
                rs = builder.load(builder.bitcast(builder.gep(row_array.data, [at]), pointer),
                                  align=8)
                d = builder.fsub(xs, builder.fmul(rs, scale))
                builder.store(builder.fadd(builder.load(total), builder.fmul(d, d)), total)
        out = cgutils.get_null_value(context.get_value_type(sig.return_type))
        for h, total in enumerate(halves):
            value = builder.load(total)
            for k in range(_WIDTH):
                lane = builder.extract_element(value, ir.Constant(i32, k))
                out = builder.insert_value(out, lane, h * _WIDTH + k)
        return out

    return signature, codegen


@inner
def lanes_total(lanes):
    """The lanes' total in a fixed tree:
    ``((l0 + l4) + (l1 + l5)) + ((l2 + l6) + (l3 + l7))``."""
    return (((lanes[0] + lanes[4]) + (lanes[1] + lanes[5]))
            + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7])))


@njit(cache=True)
def padded(n_samples):
    """``n_samples`` rounded up to a multiple of :data:`LANES`: the length
    of the zero-padded rows :func:`add_squared_differences` reads."""
    return (n_samples + LANES - 1) // LANES * LANES
