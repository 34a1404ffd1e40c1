"""fastrena: fast Recursive Neighbor Agglomeration (ReNA) on any feature graph.

``from fastrena import ReNA`` replaces ``from nilearn.regions import ReNA``.

The names below are imported on first use (PEP 562), so that the command
line (``fastrena --help``) starts without loading numba and scikit-learn.
"""

import importlib
from importlib import metadata

try:
    # The installed distribution's version, which setuptools-scm derived
    # from git tags at install time: one source for the number.
    __version__ = metadata.version(__name__)
except metadata.PackageNotFoundError:  # source tree on sys.path, never installed
    __version__ = "0+unknown"

#: Each public name and the module that defines it.
_HOMES = {
    "FeatureGraph": "graphs",
    "ReNA": "estimator",
    "adjacency_graph": "graphs",
    "agglomerate": "agglomeration",
    "chain_graph": "graphs",
    "graph_from_edges": "graphs",
    "is_nilearn_patched": "nilearn_patch",
    "lattice_graph": "graphs",
    "mesh_graph": "graphs",
    "nilearn_patched": "nilearn_patch",
    "patch_nilearn": "nilearn_patch",
    "recursive_neighbor_agglomeration": "agglomeration",
    "show_versions": "versions",
    "surface_graph": "graphs",
    "to_linkage_matrix": "estimator",
    "unpatch_nilearn": "nilearn_patch",
}

__all__ = sorted(_HOMES)


def __getattr__(name):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'fastrena' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_HOMES))
