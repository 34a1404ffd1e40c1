"""Numba kernels: pure functions over arrays, no Python objects inside.

By domain: :mod:`.weights` (edge weights), :mod:`.means` (cluster means
and expansion), :mod:`.merges` (one level's choice of edges, components,
the exact-K rule), :mod:`.ward`, :mod:`.ward_edges`, :mod:`.round_end`,
:mod:`.ward_greedy` and :mod:`.ward_costs` (``linkage="ward"``: a round's
choice, its new graph, its end in memory, Ward's greedy order to finish,
and its costs), :mod:`.graph` (the
reduced graph, and a graph's neighbour lists), :mod:`.refine` (boundary refinement after the merges,
:mod:`.connectivity`, its test of what a feature's removal does to its
cluster, :mod:`.moves`, the cost of moving features, and
:mod:`.exchange`, its merges of refined clusters in Ward's order, and
:mod:`.partition_sums`, a partition's sums and sums of squares),
:mod:`.checks` (scans of the data), :mod:`.layout` (copies into
another memory layout), :mod:`.prefetch` (asking for rows ahead of
use); :mod:`.compiling` says how they are compiled (and why indices read from
arrays go through ``compiling.unsigned``), :mod:`.caching`
where they are kept (and what happens when no folder takes them), and
:mod:`.threads` how they run in parallel. Python code uses them through
this package, ``_kernels.name``.

Every parallel loop here gives each output element to exactly one thread and
sums in a fixed order, so results are bit-identical whatever the thread
count. No ``fastmath``: reassociating the sums would change tie decisions.
"""

from .._interrupt import guard_module
from .caching import kernel_caches

# numba picks each kernel's cache when its decorator runs, that is while
# these modules are imported: each gets fastrena's (see .caching), which
# reads a read-only cache and lets the import succeed with no writable one.
with kernel_caches():
    from . import (checks, compiling, connectivity, exchange, graph, layout, means, merges,
                   moves, partition_sums, refine, round_end, ward, ward_costs, ward_edges,
                   ward_greedy, ward_heap, weights)
from .checks import all_finite, row_max_abs
from .connectivity import CONNECTIVITY_BUDGET
from .graph import neighbour_lists, reduce_edges
from .layout import feature_major_copy, mapped_in_order, restore_rows
from .means import (ROWS_FEATURE_MAJOR, ROWS_SAMPLE_MAJOR, cluster_means_feature_major,
                    cluster_sums_divided_into, expand_clusters, members_by_cluster,
                    merge_rows_in_place)
from .merges import (NO_KEY, connected_components, nearest_neighbor_edges,
                     order_by_height, strictly_increasing, tree_children,
                     union_in_order)
from .moves import RELATIVE_MARGIN
from .refine import first_appearance, refine_partition
from .round_end import RoundBuffers, ward_round_end
from .ward import record_merges, ward_choice
from .ward_edges import carry_weights, reduced_edges_carrying
from .ward_greedy import greedy_ward
from .weights import SAMPLE_BLOCK, edge_weights_feature_major, edge_weights_sample_major

__all__ = [
    "CONNECTIVITY_BUDGET", "NO_KEY", "RELATIVE_MARGIN", "ROWS_FEATURE_MAJOR", "ROWS_SAMPLE_MAJOR",
    "SAMPLE_BLOCK", "all_finite", "carry_weights", "cluster_means_feature_major",
    "cluster_sums_divided_into", "connected_components", "edge_weights_feature_major",
    "edge_weights_sample_major", "expand_clusters", "feature_major_copy", "first_appearance",
    "greedy_ward", "mapped_in_order", "members_by_cluster", "merge_rows_in_place",
    "nearest_neighbor_edges", "neighbour_lists", "record_merges", "reduce_edges",
    "order_by_height", "RoundBuffers",
    "reduced_edges_carrying", "refine_partition", "restore_rows", "row_max_abs",
    "strictly_increasing",
    "tree_children", "union_in_order", "ward_choice", "ward_round_end",
]

# Python code gets the kernels wrapped so that a Ctrl-C arriving while one
# runs raises its KeyboardInterrupt after the call, not inside numba's
# boxing of the returned arrays (a SystemError or a segmentation fault): see
# fastrena._interrupt. Jitted code calling a kernel still gets the dispatcher.
for _module in (__name__, checks.__name__, compiling.__name__, connectivity.__name__,
                exchange.__name__, graph.__name__,
                layout.__name__, means.__name__,
                merges.__name__, moves.__name__, partition_sums.__name__, refine.__name__,
                round_end.__name__,
                ward.__name__,
                ward_costs.__name__, ward_edges.__name__, ward_greedy.__name__, ward_heap.__name__,
                weights.__name__):
    guard_module(_module)
del _module
