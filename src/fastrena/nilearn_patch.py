"""Make nilearn use fastrena: :func:`patch_nilearn`, :func:`unpatch_nilearn`,
and the context manager :func:`nilearn_patched`.

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

``patch_nilearn(ward=True)`` also makes ``Parcellations(method="ward")``
fit with ``ReNA(linkage="ward")``. nilearn 0.14.1 builds that Ward as
scikit-learn's ``AgglomerativeClustering(linkage="ward",
connectivity=grid_to_graph(mask))`` and fits it on the transposed data
(voxels as samples); the patch replaces only the name
``AgglomerativeClustering`` in ``nilearn.regions.parcellations``, with
:class:`WardAgglomeration`, a subclass that fits the ward linkage on that
same connectivity with fastrena and leaves every other linkage
(``"complete"``, ``"average"``) to scikit-learn. The labels are not
scikit-learn's (a few merges differ, so the partition does); the error of
the parcellation is Ward's (see docs/nilearn.md).

Example
-------
>>> import fastrena
>>> fastrena.patch_nilearn(ward=True)     # doctest: +SKIP
>>> from nilearn.regions import Parcellations
>>> Parcellations(method="ward", n_parcels=100).fit(imgs)  # doctest: +SKIP
>>> fastrena.unpatch_nilearn()            # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from sklearn.cluster import AgglomerativeClustering
from sklearn.utils.validation import validate_data

from .errors import MissingDependencyError
from .estimator import ReNA

__all__ = ["PATCHED_NAMES", "WARD_NAMES", "WardAgglomeration", "is_nilearn_patched",
           "nilearn_patched", "patch_nilearn", "unpatch_nilearn"]

#: The modules of nilearn that hold a reference to its ReNA class, as
#: ``module.ReNA``.
PATCHED_NAMES = (
    "nilearn.regions.rena_clustering",
    "nilearn.regions",
    "nilearn.regions.parcellations",
    "nilearn.decoding.decoder",
)

#: The references ``patch_nilearn(ward=True)`` replaces, as (module, name):
#: only the one ``Parcellations`` builds its Ward from, so that nothing
#: else in the process (scikit-learn itself, other nilearn modules) changes.
WARD_NAMES = (("nilearn.regions.parcellations", "AgglomerativeClustering"),)


class WardAgglomeration(AgglomerativeClustering):
    """scikit-learn's ``AgglomerativeClustering`` whose ward linkage on a
    connectivity graph is fitted by :class:`fastrena.ReNA`
    (``linkage="ward"``): what ``patch_nilearn(ward=True)`` puts in place
    of it in ``nilearn.regions.parcellations``.

    Same parameters as scikit-learn's. With ``linkage="ward"``, a sparse
    ``connectivity`` (or array), ``n_clusters`` set, no
    ``distance_threshold`` and ``compute_distances=False``, the samples of
    ``X`` (nilearn's voxels) are clustered by ``ReNA(connectivity=
    connectivity, n_clusters=n_clusters, linkage="ward", memory=memory)``
    on ``X.T``; anything else is scikit-learn's own fit.

    The partition is not scikit-learn's merge for merge (fastrena merges
    mutual and near-mutual nearest pairs in rounds, then finishes in Ward's
    greedy order; see :mod:`fastrena.ward`): its merges reach scikit-learn's
    Ward error, and the boundary refinement that follows them by default
    goes below it (see docs/choosing.md). A graph of more connected components than
    ``n_clusters`` gives one cluster per component (scikit-learn joins the
    components and reaches ``n_clusters``, with a warning).

    Attributes
    ----------
    labels_ : ndarray of int64, shape (n_samples,)
    n_clusters_ : int
    n_leaves_ : int
    n_features_in_ : int
    children_, n_connected_components_ : ndarray, int
        Only with ``compute_full_tree=True`` (fastrena's merge tree, in
        scikit-learn's form); scikit-learn's partial tree is not built.
    """

    def _fastrena_fits(self):
        """Whether fastrena fits this configuration (the rest is scikit-learn's)."""
        return (self.linkage == "ward" and self.n_clusters is not None
                and self.distance_threshold is None and not self.compute_distances
                and self.metric in ("euclidean", "l2")
                and self.connectivity is not None and not callable(self.connectivity))

    def fit(self, X, y=None):
        """Cluster the samples (rows) of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        if not self._fastrena_fits():
            return super().fit(X, y)
        self._validate_params()
        X = validate_data(self, X, ensure_min_samples=2)
        n_samples = X.shape[0]
        if self.n_clusters > n_samples:
            # scikit-learn's ward_tree refuses it too (fastrena's ReNA would
            # warn and return one cluster per sample).
            raise ValueError(f"n_clusters={self.n_clusters} is larger than the number of "
                             f"samples to cluster ({n_samples})")
        full_tree = self.compute_full_tree is True
        rena = ReNA(n_clusters=self.n_clusters, memory=self.memory,
                    connectivity=self.connectivity, linkage="ward",
                    compute_full_tree=full_tree).fit(X.T)
        self.labels_ = rena.labels_
        self.n_clusters_ = rena.n_clusters_
        self.n_leaves_ = n_samples
        for name in ("children_", "n_connected_components_", "distances_"):
            self.__dict__.pop(name, None)  # a previous fit's
        if full_tree:
            self.children_ = rena.children_
            self.n_connected_components_ = rena.n_connected_components_
        return self

    def fit_predict(self, X, y=None):
        """Fit and return ``labels_``."""
        return self.fit(X, y).labels_


# (module name, attribute) -> what was there before patching
_originals = {}


def _import(name):
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise MissingDependencyError(
            "patch_nilearn needs nilearn: pip install fastrena[neuro]") from exc


def _references(ward):
    """(module name, attribute, replacement) of every reference to patch."""
    refs = [(name, "ReNA", ReNA) for name in PATCHED_NAMES]
    if ward:
        refs += [(name, attr, WardAgglomeration) for name, attr in WARD_NAMES]
    return refs


def patch_nilearn(ward: bool = False) -> None:
    """Make nilearn's Parcellations, FREM and ``nilearn.regions.ReNA`` use
    :class:`fastrena.ReNA`. Patching twice is the same as once.

    Parameters
    ----------
    ward : bool, default=False
        Also fit ``Parcellations(method="ward")`` with
        ``ReNA(linkage="ward")`` on nilearn's own mask graph (see
        :class:`WardAgglomeration`): Ward's error, not scikit-learn's
        labels. ``False`` leaves nilearn's Ward as it is (patched or not
        by an earlier call).
    """
    if not isinstance(ward, (bool, np.bool_)):
        raise TypeError(f"ward must be True or False, got ward={ward!r}")
    for name, attr, replacement in _references(bool(ward)):
        module = _import(name)
        if (name, attr) not in _originals:
            _originals[name, attr] = getattr(module, attr)
        setattr(module, attr, replacement)


def unpatch_nilearn() -> None:
    """Put back everything :func:`patch_nilearn` replaced (nilearn's ReNA,
    and its scikit-learn Ward if ``ward=True`` was patched); nothing
    happens if nilearn is not patched."""
    for name, attr in list(_originals):
        setattr(_import(name), attr, _originals.pop((name, attr)))


def is_nilearn_patched(ward: bool = False) -> bool:
    """Whether nilearn currently uses fastrena's ReNA everywhere (and, with
    ``ward=True``, fastrena's Ward in ``Parcellations`` too)."""
    return all(getattr(_import(name), attr) is replacement
               for name, attr, replacement in _references(ward))


@contextmanager
def nilearn_patched(ward: bool = False) -> Iterator[None]:
    """nilearn uses fastrena's ReNA (and with ``ward=True`` its Ward in
    ``Parcellations``) inside the ``with`` block only: afterwards, each
    reference is as it was before the block, patched or not."""
    before = set(_originals)
    patch_nilearn(ward=ward)
    try:
        yield
    finally:
        for key in set(_originals) - before:
            setattr(_import(key[0]), key[1], _originals.pop(key))
