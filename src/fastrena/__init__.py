"""fastrena: fast Recursive Neighbor Agglomeration (ReNA) on any feature graph.

``from fastrena import ReNA`` replaces ``from nilearn.regions import ReNA``.
"""

from .agglomeration import agglomerate, recursive_neighbor_agglomeration
from .estimator import ReNA
from .graphs import (
    FeatureGraph,
    adjacency_graph,
    chain_graph,
    graph_from_edges,
    lattice_graph,
    mesh_graph,
    surface_graph,
)
from .nilearn_patch import is_nilearn_patched, nilearn_patched, patch_nilearn, unpatch_nilearn

__version__ = "0.1.0"

__all__ = [
    "FeatureGraph",
    "ReNA",
    "adjacency_graph",
    "agglomerate",
    "chain_graph",
    "graph_from_edges",
    "is_nilearn_patched",
    "lattice_graph",
    "mesh_graph",
    "nilearn_patched",
    "patch_nilearn",
    "recursive_neighbor_agglomeration",
    "surface_graph",
    "unpatch_nilearn",
]
