"""The cost of moving features between clusters, Hartigan's test exact
for one move (:func:`join_cost`, :func:`distance`, the margin
:data:`RELATIVE_MARGIN`), and the move of a feature with the piece of its
cluster it holds (:func:`piece_gain`, :func:`move_piece`): the boundary
refinement's (:mod:`.refine`) decisions, on rows zero-padded to a
multiple of eight samples and sums over samples in the fixed order of
:mod:`.lanes`.
"""

from numba import njit

from .compiling import inner_leaf
from .lanes import LANES, ZERO_LANES, add_squared_differences, lanes_total
from .merges import find_root

__all__ = ["RELATIVE_MARGIN", "distance", "join_cost", "move_piece", "piece_gain", "squares"]

#: A move is made only when its gain exceeds this fraction of
#: ``n_a / (n_a - 1) (||x - mu_a||^2 + ||x||^2 + ||mu_a||^2)``: the
#: squared distances are computed from means rounded to about
#: ``n_a * 2**-53`` of ``|mu_a|``, so on a plateau they would be rounding
#: noise (~1e-33 for values 0.3 before the first feature's values were
#: subtracted), which must not move features around.
#: Gains within this margin of zero never move a feature back and forth,
#: and a move decided on rounded values cannot raise the true sum of
#: squares. Scaled by the squares, it keeps the labels of ``X * 2**k``
#: and ``-X``.
RELATIVE_MARGIN = 2.0 ** -30


@njit(cache=True, inline="always")
def distance(x, sums, c, size):
    """``||x - sums[c] * (1 / size)||^2`` in the order of
    :func:`fastrena._kernels.lanes.lanes_total`: eight lanes of samples
    (x and the rows of sums zero-padded to a multiple of eight). One
    division per cluster, not per sample (measured slower per sample on
    100 samples)."""
    lanes = add_squared_differences(ZERO_LANES, x, sums[c], 1.0 / size, 0, x.shape[0] // LANES)
    return lanes_total(lanes)


@njit(cache=True, inline="always")
def join_cost(x, sums, c, size):
    """``size / (size + 1) * ||x - sums[c] / size||^2``: what adding x to
    cluster c costs. Computed in full: stopping once a partial sum passed
    the candidate to beat (as when the sums were scalar lanes), with a
    look every 8, 32 or 64 samples, made the sweeps 1.5x, 1.11x and
    1.07-1.09x slower at 2 mm x 100 and 400 samples: a look costs more
    than the blocks it saves."""
    return size / (size + 1.0) * distance(x, sums, c, size)


@njit(cache=True, inline="always")
def squares(x, sums, c, size):
    """``||x||^2 + ||mu||^2`` for ``mu = sums[c] / size``: the scale of the
    rounding of :func:`distance`, in four scalar lanes (lane j the samples
    ``s = j (mod 4)`` in order) added as ``(q0 + q1) + (q2 + q3)``. Taken
    only when a move is possible. The rows are padded to a multiple of
    eight samples (zeros: they add +0.0)."""
    inv = 1.0 / size
    q0 = q1 = q2 = q3 = 0.0
    for j in range(x.shape[0] // 4):
        s = 4 * j
        m0 = sums[c, s] * inv
        m1 = sums[c, s + 1] * inv
        m2 = sums[c, s + 2] * inv
        m3 = sums[c, s + 3] * inv
        q0 += x[s] * x[s] + m0 * m0
        q1 += x[s + 1] * x[s + 1] + m1 * m1
        q2 += x[s + 2] * x[s + 2] + m2 * m2
        q3 += x[s + 3] * x[s + 3] + m3 * m3
    return (q0 + q1) + (q2 + q3)


@inner_leaf
def piece_gain(X, offset, scale, sizes, sums, queue, sources, origin, x, piece, a, b, cut, end,
               margin):
    """Whether moving feature i (its signal in ``x``) to cluster b together
    with the piece of its cluster a that its removal cuts off (the nodes
    ``queue[:end]`` of group ``cut``:
    :func:`fastrena._kernels.connectivity.removal_outcome`) lowers the
    within-cluster sum of squares by more than a single move's margin
    (:data:`RELATIVE_MARGIN`): the features it would move (the piece's
    size plus one), or 0. Leaves the set's sum in ``piece[0]`` for
    :func:`move_piece`.

    Moving a set S of m features of mean mu_S from a (n_a features) to b
    (n_b) changes the sum of squares by ``n_b m / (n_b + m) ||mu_S -
    mu_b||^2 - n_a m / (n_a - m) ||mu_S - mu_a||^2`` (the single move's
    test is m = 1). S's sum, in ``piece[0]``: x, then the piece's signals
    in the search's order; its mean in ``piece[1]``. A single move that
    would gain is refused when i holds a piece of a to the rest (a
    peninsula of a cluster behind one feature): single moves alone left
    it there. Called for those tests only, not inlined (see
    :func:`fastrena._kernels.refine._sweep_range`)."""
    n_samples = X.shape[0]
    parent = sources[0]
    total = piece[0]
    mean = piece[1]
    for s in range(total.shape[0]):
        total[s] = x[s]
    m = 1
    for q in range(end):
        node = queue[q]
        if find_root(parent, origin[node]) == cut:
            m += 1
            for s in range(n_samples):
                total[s] += (X[s, node] - offset[s]) * scale
    n_a = sizes[a]
    n_b = sizes[b]
    inv = 1.0 / m
    for s in range(total.shape[0]):
        mean[s] = total[s] * inv
    d_a = distance(mean, sums, a, n_a)
    factor = n_a * m / (n_a - m)
    leave = factor * d_a
    join = n_b * m / (n_b + m) * distance(mean, sums, b, n_b)
    if not join < leave - margin * factor * (d_a + squares(mean, sums, a, n_a)):
        return 0
    return m


@inner_leaf
def move_piece(labels, sizes, sums, queue, sources, origin, piece, i, a, b, cut, end, m):
    """Move feature i and the piece ``cut`` of ``queue[:end]`` (m features
    in all, their sum in ``piece[0]``: :func:`piece_gain`) from cluster a
    to b."""
    parent = sources[0]
    total = piece[0]
    for s in range(sums.shape[1]):
        sums[a, s] -= total[s]
        sums[b, s] += total[s]
    sizes[a] -= m
    sizes[b] += m
    labels[i] = b
    for q in range(end):
        node = queue[q]
        if find_root(parent, origin[node]) == cut:
            labels[node] = b
