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

:func:`add_squares_of_four` sums the other way round: the squared
differences of four edges' rows, each edge's sum one plain chain in sample
order (the edge weights' order, :mod:`.weights`), the four chains one
vector: rows read four samples at a time and transposed in registers.
"""

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic

from .compiling import inner

__all__ = ["LANES", "ZERO_LANES", "add_squared_differences", "add_squares_of_four",
           "lanes_total", "padded"]

#: Samples in a block: one to each lane.
LANES = 8

#: The lanes of an empty sum.
ZERO_LANES = (0.0,) * LANES

_WIDTH = 4


def _contiguous_float64(ty):
    return isinstance(ty, types.Array) and ty.ndim == 1 and ty.dtype == types.float64 and (
        ty.layout == "C")


def _vector_of(builder, packed, first):
    """Items ``first`` to ``first + 3`` of the tuple value ``packed`` (of
    float64) as one vector of four doubles (code generation)."""
    value = ir.Constant(ir.VectorType(ir.DoubleType(), _WIDTH), ir.Undefined)
    for k in range(_WIDTH):
        value = builder.insert_element(value, builder.extract_value(packed, first + k),
                                       ir.Constant(ir.IntType(32), k))
    return value


def _with_vector(builder, packed, first, value):
    """The tuple value ``packed`` with items ``first`` to ``first + 3`` taken
    from the vector ``value`` (code generation)."""
    for k in range(_WIDTH):
        packed = builder.insert_value(
            packed, builder.extract_element(value, ir.Constant(ir.IntType(32), k)), first + k)
    return packed


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
        halves = [cgutils.alloca_once_value(builder, _vector_of(builder, packed, h * _WIDTH))
                  for h in range(LANES // _WIDTH)]
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
            out = _with_vector(builder, out, h * _WIDTH, builder.load(total))
        return out

    return signature, codegen


#: Positions that transpose four vectors of four (two rounds of shuffles).
_PAIRS_LOW = (0, 4, 2, 6)
_PAIRS_HIGH = (1, 5, 3, 7)
_HALVES_FIRST = (0, 1, 4, 5)
_HALVES_SECOND = (2, 3, 6, 7)


@intrinsic
def add_squares_of_four(typingctx, sums, XT, ends_a, ends_b, s0, s1):
    """``sums[k] += (XT[ends_a[k], s] - XT[ends_b[k], s])**2`` for
    ``s = s0, s0 + 1, ..., s1 - 1`` in that order, for each of four edges
    k; returns the new sums. ``sums``: a tuple of four float64; ``XT``: a
    2-D float32 or float64 array whose rows are contiguous (C-ordered, or
    any layout whose second stride is the item size: not checked, callers
    make sure); ``ends_a``, ``ends_b``: tuples of four row indices (not
    checked); ``s1 - s0`` a multiple of four (not checked).

    The same bits as the scalar loop ``d = float64(a[s]) - float64(b[s]);
    p += d * d``: values widened exactly, plain IEEE operations lane by lane
    (no fused multiply-add), each edge's adds in sample order. Each step
    reads four samples of the eight rows as vectors, squares the four
    differences, transposes them (so that one vector holds one sample of
    the four edges) and adds the four samples in order. The scalar loop
    read each value on its own: at 2 mm x 100 samples on one thread, the
    first round's 0.69 M weights took 38 ms (float64) and 25 ms (float32)
    against 32 and 20 ms this way."""
    if not (isinstance(sums, types.UniTuple) and sums.count == _WIDTH
            and sums.dtype == types.float64):
        raise TypingError("sums must be a tuple of four float64")
    if not (isinstance(XT, types.Array) and XT.ndim == 2 and XT.layout in "CA"
            and XT.dtype in (types.float32, types.float64)):
        raise TypingError("XT must be a 2-D float32 or float64 array")
    for ends in (ends_a, ends_b):
        if not (isinstance(ends, types.UniTuple) and ends.count == _WIDTH
                and isinstance(ends.dtype, types.Integer)):
            raise TypingError("ends_a and ends_b must be tuples of four integers")
    signature = sums(sums, XT, ends_a, ends_b, types.int64, types.int64)

    def codegen(context, builder, sig, args):
        packed, xt_value, a_value, b_value, start, stop = args
        xt_type = sig.args[1]
        values = context.make_array(xt_type)(context, builder, value=xt_value)
        item = context.get_data_type(xt_type.dtype)
        double = ir.DoubleType()
        read = ir.VectorType(item, _WIDTH)
        vector = ir.VectorType(double, _WIDTH)
        i32 = ir.IntType(32)
        i64 = ir.IntType(64)
        align = context.get_abi_sizeof(item)

        def row_starts(ends_value, ends_type):
            starts = []
            for k in range(_WIDTH):
                row = context.cast(builder, builder.extract_value(ends_value, k), ends_type.dtype,
                                   types.intp)
                starts.append(cgutils.get_item_pointer(context, builder, xt_type, values,
                                                       [row, ir.Constant(i64, 0)],
                                                       wraparound=False))
            return starts

        starts_a = row_starts(a_value, sig.args[2])
        starts_b = row_starts(b_value, sig.args[3])
        total = cgutils.alloca_once_value(builder, _vector_of(builder, packed, 0))

        def mask(positions):
            return ir.Constant(ir.VectorType(i32, _WIDTH), list(positions))

        with cgutils.for_range_slice(builder, start, stop, ir.Constant(i64, _WIDTH)) as (s, _):
            squares = []
            for k in range(_WIDTH):
                pair = []
                for row in (starts_a[k], starts_b[k]):
                    at = builder.bitcast(builder.gep(row, [s]), read.as_pointer())
                    x = builder.load(at, align=align)
                    pair.append(builder.fpext(x, vector) if xt_type.dtype == types.float32 else x)
                d = builder.fsub(pair[0], pair[1])
                squares.append(builder.fmul(d, d))
            low01 = builder.shuffle_vector(squares[0], squares[1], mask(_PAIRS_LOW))
            high01 = builder.shuffle_vector(squares[0], squares[1], mask(_PAIRS_HIGH))
            low23 = builder.shuffle_vector(squares[2], squares[3], mask(_PAIRS_LOW))
            high23 = builder.shuffle_vector(squares[2], squares[3], mask(_PAIRS_HIGH))
            # Sample j of the step, for the four edges: in sample order.
            columns = (builder.shuffle_vector(low01, low23, mask(_HALVES_FIRST)),
                       builder.shuffle_vector(high01, high23, mask(_HALVES_FIRST)),
                       builder.shuffle_vector(low01, low23, mask(_HALVES_SECOND)),
                       builder.shuffle_vector(high01, high23, mask(_HALVES_SECOND)))
            value = builder.load(total)
            for column in columns:
                value = builder.fadd(value, column)
            builder.store(value, total)
        out = cgutils.get_null_value(context.get_value_type(sig.return_type))
        return _with_vector(builder, out, 0, builder.load(total))

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
