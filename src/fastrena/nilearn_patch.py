"""Make nilearn use fastrena's ReNA: :func:`patch_nilearn`,
:func:`unpatch_nilearn`, and the context manager :func:`nilearn_patched`.

nilearn binds its ReNA class by name where it uses it:
``nilearn.regions.parcellations`` (``Parcellations(method="rena")``) and
``nilearn.decoding.decoder`` (FREM's clustering step) each hold their own
reference, so replacing ``nilearn.regions.ReNA`` alone changes nothing.
The patch replaces every one of these references (and the public ones, so
that ``from nilearn.regions import ReNA`` after patching gets fastrena's),
remembers what was there, and puts it back on unpatching. Like
scikit-learn-intelex's ``patch_sklearn``: explicit, reversible, and
global to the process (threads included), so patch before building
nilearn objects and unpatch when done.

Example
-------
>>> import fastrena
>>> fastrena.patch_nilearn()              # doctest: +SKIP
>>> from nilearn.regions import Parcellations
>>> Parcellations(method="rena", n_parcels=100).fit(imgs)  # doctest: +SKIP
>>> fastrena.unpatch_nilearn()            # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import MissingDependencyError
from .estimator import ReNA

__all__ = ["PATCHED_NAMES", "is_nilearn_patched", "nilearn_patched", "patch_nilearn",
           "unpatch_nilearn"]

#: The modules of nilearn that hold a reference to its ReNA class, as
#: ``module.ReNA``.
PATCHED_NAMES = (
    "nilearn.regions.rena_clustering",
    "nilearn.regions",
    "nilearn.regions.parcellations",
    "nilearn.decoding.decoder",
)

# module name -> the class that was there before patching
_originals = {}


def _modules():
    try:
        return [importlib.import_module(name) for name in PATCHED_NAMES]
    except ImportError as exc:
        raise MissingDependencyError(
            "patch_nilearn needs nilearn: pip install fastrena[neuro]") from exc


def patch_nilearn() -> None:
    """Make nilearn's Parcellations, FREM and ``nilearn.regions.ReNA`` use
    :class:`fastrena.ReNA`. Patching twice is the same as once."""
    for module in _modules():
        if module.__name__ not in _originals:
            _originals[module.__name__] = module.ReNA
        module.ReNA = ReNA


def unpatch_nilearn() -> None:
    """Put nilearn's own ReNA back everywhere :func:`patch_nilearn` replaced
    it (nothing happens if nilearn is not patched)."""
    for module in _modules():
        if module.__name__ in _originals:
            module.ReNA = _originals.pop(module.__name__)


def is_nilearn_patched() -> bool:
    """Whether nilearn currently uses fastrena's ReNA everywhere."""
    return all(module.ReNA is ReNA for module in _modules())


@contextmanager
def nilearn_patched() -> Iterator[None]:
    """nilearn uses fastrena's ReNA inside the ``with`` block only (as it
    was before the block: patched or not, afterwards)."""
    was_patched = is_nilearn_patched()
    patch_nilearn()
    try:
        yield
    finally:
        if not was_patched:
            unpatch_nilearn()
