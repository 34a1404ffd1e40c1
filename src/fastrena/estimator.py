"""``fastrena.ReNA``: the scikit-learn estimator, a thin shell over
:func:`fastrena.agglomeration.agglomerate`."""

from __future__ import annotations

import contextvars
import os
import time
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from joblib import Memory
from sklearn import get_config
from sklearn.cluster import FeatureAgglomeration
from sklearn.utils import check_array
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted, check_memory

from ._progress import LEVEL_CALLBACK, STEP_CALLBACK
from ._validation import (FLOAT_DTYPES, check_matrix_like, check_positive_int,
                          constraints_of, is_dask_array)
from .agglomeration import agglomerate, effective_n_clusters, emit_messages
from .backends import backend_of
from .errors import warn_user
from .layouts import feature_space
from .report import make_report

if TYPE_CHECKING:  # annotations only: numpy.typing is not loaded at run time
    from numpy.typing import ArrayLike

    from .report import Report

__all__ = ["ReNA", "to_linkage_matrix"]



def _memory(memory, memory_level, X):
    """The joblib ``Memory`` a fit caches in (nilearn's ``memory_``): one
    without a location (no caching) unless ``memory`` is set, ``memory_level``
    >= 1 and X is an array."""
    if memory_level < 1 or memory is None:
        # Before check_memory: joblib creates the cache folder on sight.
        return Memory(location=None, verbose=0)
    if is_dask_array(X):
        # joblib would hash the task graph (file names), not the data: a
        # changed file would give a stale fit. Hashing the data would read it.
        warn_user("memory is not used when X is a dask array (its values cannot be hashed "
                  "without reading them all): this fit is not cached")
        return Memory(location=None, verbose=0)
    if isinstance(memory, os.PathLike):
        memory = os.fspath(memory)
    return check_memory(memory)


def to_linkage_matrix(rena: ReNA) -> np.ndarray:
    """scipy's linkage matrix of a ReNA fitted with ``compute_full_tree=True``:
    ``scipy.cluster.hierarchy.fcluster(Z, k, criterion="maxclust")`` gives
    the partitions of :meth:`ReNA.labels_at` (numbered from 1, in another
    order) and ``dendrogram(Z)`` draws the tree.

    Heights: the default linkage's merges are at ``level - 1 + r / (m + 1)``
    (the r-th of the m merges of a level, in the exact-K order), the
    ``"ward"`` linkage's at their Ward cost raised to the heights beneath;
    ties become the next float above (heights strictly increase). A graph
    of several components has its roots joined last, 1, 2, ... above the
    highest merge. See :meth:`fastrena.tree.MergeTree.linkage_matrix`.
    """
    check_is_fitted(rena, "labels_")
    if not hasattr(rena, "tree_"):
        raise NotFittedError(f"this {type(rena).__name__} was fitted without its merge "
                             "tree; fit it with compute_full_tree=True")
    return rena.tree_.linkage_matrix()


def _cached(memory):
    """``agglomerate``, cached in ``memory`` if it has a location
    (``verbose``, ``on_level`` and ``on_step`` are not part of the key)."""
    if getattr(memory, "location", None) is None:
        return agglomerate
    return memory.cache(agglomerate, ignore=["verbose", "on_level", "on_step"])


#: The width of the columns scikit-learn's ``set_output`` is about to name,
#: when ``transform(X, n_clusters=k)`` returns another scale than
#: ``n_clusters_``: ``(id(estimator), k)``, set by ``transform`` only when
#: its output is wrapped and read at once by the wrapper's call of
#: ``get_feature_names_out`` (which named ``n_clusters_`` columns: pandas
#: then failed on the length).
_NAMED_WIDTH = contextvars.ContextVar("fastrena_named_width", default=None)


class ReNA(FeatureAgglomeration):
    """Recursive Neighbor Agglomeration (ReNA) of the features of ``X``.

    A drop-in replacement for ``nilearn.regions.ReNA``: same parameters
    (names, order, defaults), methods and fitted attributes, on any feature
    graph (3-D mask, surface, 2-D image, sparse adjacency, 1-D chain). It
    merges, level after level, every cluster with its nearest neighbour on
    the graph, until ``n_clusters`` remain (Hoyos-Idrobo et al., IEEE TPAMI
    41(3), 2019).

    Parameters
    ----------
    mask_img : str, pathlib.Path, nibabel image, ndarray, SurfaceImage, fitted masker or None, default=None
        Defines the graph over the features: a NIfTI mask (path or image;
        in-mask voxels in C order, 6-connectivity), a 2-D or 3-D boolean
        array (4- or 6-connectivity), a nilearn ``SurfaceImage`` mask (mesh
        triangle sides; parts concatenated), or a fitted ``NiftiMasker`` /
        ``SurfaceMasker`` (its ``mask_img_``). With neither ``mask_img`` nor
        ``connectivity``, features form a 1-D chain (feature i next to
        i + 1), as in nilearn, not scikit-learn's unstructured
        ``FeatureAgglomeration()``: for voxels, pass the mask or the grid's
        ``connectivity`` (as hidimstat's clustered inference does).
    n_clusters : int, default=2
        Number of clusters to find (at least 1).
    scaling : bool, default=False
        If True, ``transform`` multiplies each cluster mean by the square root
        of its size, preserving the l2 norm of piecewise-constant signals.
    n_iter : int, default=10
        Maximum number of agglomeration levels of the ``"nilearn"``
        linkage. ``linkage="ward"`` does not use it (see ``linkage``).
    threshold : float in [0, 1), default=1e-7
        Relative tolerance under which a node's edges tie for its nearest
        neighbour. A node merges along one of its tied edges, chosen as
        infinitesimal noise would choose (default: noise on the first
        sample, then a fixed pseudo-random priority of the edge;
        ``"ward"``: the priority): keeping them all would let quantized
        data (plateaus, ramps) merge whole in one level. Edges of weight 0 (identical signals) are
        all merged, which costs nothing.
    memory : None, str, path or joblib.Memory, default=None
        Caches the fit.
    memory_level : int, default=1
        0 disables caching even when ``memory`` is set.
    verbose : int, default=0
        1 or more prints one line per level (``linkage="ward"``: one per
        round, then one for the cut).
    connectivity : sparse matrix of shape (n_features, n_features) or callable, default=None
        Explicit feature graph (any stored nonzero off the diagonal is an
        edge); exclusive with ``mask_img``. A callable makes it from the
        data at fit, called on ``X.T`` (one row per feature) as
        scikit-learn's ``FeatureAgglomeration`` calls it (for example
        ``functools.partial(kneighbors_graph, n_neighbors=6)``); the graph
        made is kept (``layout_.graph``) for ``transform``.
    linkage : {"nilearn", "ward"}, default="nilearn"
        How neighbouring clusters are compared. ``"nilearn"``: nilearn's
        ReNA, same labels (squared distance between the means of the
        previous level's nodes; exact ``n_clusters`` by largest index gap
        first). ``"ward"``: Ward's merge cost ``n_a n_b / (n_a + n_b) *
        ||mean_a - mean_b||^2`` on true cluster means. Each round merges
        disjoint pairs everywhere at once: mutual nearest neighbours, and
        a node with the neighbour it is nearest to when that neighbour's
        own nearest merge went elsewhere and this one costs at most 1.3
        times it (:data:`fastrena.ward.WARD_PAIR_SLACK`); once pairs
        become rare, the rest runs in Ward's greedy order on the
        (by then small) graph left. Every merge is recorded with its cost,
        and the ``n_clusters`` partition is the one the ``n_features -
        n_clusters`` cheapest merges make, as in Ward's own order: flat
        regions end in few clusters, detailed ones in many. It reaches
        scikit-learn's Ward error on real images, anatomy and surfaces (see
        docs/choosing.md) at a fraction of its time. Every merge is made at its
        Ward cost at that moment (no budget trades that for speed; see
        :mod:`fastrena.ward`). It takes the rounds it needs, so ``n_iter``
        does not apply to it.
    compute_full_tree : bool, default=False
        Also build the whole merge tree (scikit-learn's name): the levels
        run until one cluster per connected component is left and every
        merge is kept, so that any scale is read from one fit
        (:meth:`labels_at`, ``transform(X, n_clusters=k)``,
        :func:`fastrena.to_linkage_matrix`). ``labels_`` is unchanged: the
        ``n_clusters`` partition a fit without the tree gives (``n_iter``
        included). With the default linkage, ``labels_at(k)`` equals
        ``ReNA(..., n_clusters=k).fit(X).labels_`` for every k that
        ``n_iter`` levels reach (``labels_at`` reads the whole tree). With
        ``linkage="ward"``, for every k (a ``"ward"`` fit always runs its
        merges to the end and takes the tree's cut), before refinement:
        ``labels_at(k)`` is the tree's cut, except ``labels_at(n_clusters_)``,
        which is ``labels_`` (refined; see ``max_refine_iter``).
    max_refine_iter : int >= 0 or "auto", default="auto"
        Maximum sweeps of boundary refinement after the merges (fewer when
        a sweep moves nothing; 0 turns it off). Each sweep moves single
        features on a cluster's border to a neighbouring cluster whenever
        that lowers the within-cluster sum of squares (Hartigan's test),
        never emptying or disconnecting a cluster, so ``n_clusters_`` and
        connectivity are kept (:mod:`fastrena.refine`). After
        ``linkage="ward"`` with 2 sweeps or more, the first sweeps refine
        the merge tree's cut at a fifth more clusters, which Ward's greedy
        order then merges back to ``n_clusters`` before the last sweep (the
        exchange); unless that ends with a within-cluster sum of squares
        lower than the tree's own cut's (by more than 1e-12 of it), the cut
        is kept: refining never leaves a worse partition. ``"auto"``: 2
        sweeps with ``linkage="ward"`` (error
        0.93-0.95x scikit-learn Ward's in median on docs/choosing.md's
        real-data suite, for about 0.2-0.5x the fit's time) and 0 with the
        default linkage, whose labels stay nilearn's. Refinement holds X
        in memory: a Dask array larger than the Dask setting
        ``fastrena.refine-limit`` (2 GiB) is not refined (a warning says
        so). The name and the ``"auto"`` follow scikit-learn's
        ``max_iter`` (iterations, stopping earlier once converged) and
        ``KMeans(n_init="auto")`` (a count that depends on another
        parameter).

    Attributes
    ----------
    labels_ : ndarray of int64, shape (n_features,)
        Cluster of each feature, numbered in order of first appearance.
    n_clusters_ : int
        Number of clusters found.
    sizes_ : ndarray of int64, shape (``n_clusters_``,)
        Number of features in each cluster.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` has string column names.
    mask_img_ : nibabel image, ndarray, SurfaceImage or None
        The mask used.
    layout_ : VolumeLayout, SurfaceLayout or GraphLayout
        The feature space: the graph, and how images are read and written
        (see :mod:`fastrena.layouts`). ``mask_img`` may itself be a layout.
    memory_ : joblib.Memory
        Where the fit was cached (no location: not cached), as nilearn's.
    children_ : ndarray of int64, shape (``n_features - n_connected_components_``, 2)
        With ``compute_full_tree``: scikit-learn's ``children_``, the merges
        in order (leaves 0..n_features-1, merge i makes node n_features + i).
    n_leaves_ : int
        With ``compute_full_tree``: the number of features.
    n_connected_components_ : int
        With ``compute_full_tree``: components of the graph (tree roots).
    tree_ : fastrena.tree.MergeTree
        With ``compute_full_tree``: the merges as pairs of features, with
        their heights.
    fit_time_ : float
        Seconds the last ``fit`` took (reading a cached fit back, with
        ``memory``), as :meth:`generate_report` shows it.
    n_refine_iter_ : int
        Sweeps of boundary refinement run (0 when ``max_refine_iter`` is 0),
        also when the merge tree's cut was kept instead of their result
        (see ``max_refine_iter``).

    Examples
    --------
    >>> import numpy as np
    >>> from fastrena import ReNA
    >>> mask = np.ones((4, 4), dtype=bool)
    >>> X = np.repeat([[0., 0., 1., 1.]], 4, axis=0).ravel()[None, :]
    >>> rena = ReNA(mask, n_clusters=2).fit(X)
    >>> rena.labels_.reshape(4, 4)
    array([[0, 0, 1, 1],
           [0, 0, 1, 1],
           [0, 0, 1, 1],
           [0, 0, 1, 1]])
    >>> rena.transform(X)
    array([[0., 1.]])
    """

    # The package's one vocabulary (fastrena._validation.PARAMETERS).
    _parameter_constraints: dict = constraints_of(
        "mask_img", "n_clusters", "scaling", "n_iter", "threshold", "memory", "memory_level",
        "verbose", "connectivity", "linkage", "compute_full_tree", "max_refine_iter")

    def __init__(self, mask_img: Any = None, n_clusters: int = 2, scaling: bool = False,
                 n_iter: int = 10, threshold: float = 1e-7,
                 memory: str | os.PathLike | Memory | None = None, memory_level: int = 1,
                 verbose: int = 0, *, connectivity: Any = None,
                 linkage: Literal["nilearn", "ward"] = "nilearn",
                 compute_full_tree: bool = False,
                 max_refine_iter: int | Literal["auto"] = "auto") -> None:
        self.mask_img = mask_img
        self.n_clusters = n_clusters
        self.scaling = scaling
        self.n_iter = n_iter
        self.threshold = threshold
        self.memory = memory
        self.memory_level = memory_level
        self.verbose = verbose
        self.connectivity = connectivity
        self.linkage = linkage
        self.compute_full_tree = compute_full_tree
        self.max_refine_iter = max_refine_iter

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.sparse = False
        return tags

    def fit(self, X: ArrayLike, y: object = None) -> ReNA:
        """Cluster the features of ``X``.

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)
            Any number of samples >= 1. A Dask array (chunked along
            samples; chunks of features are merged) is read twice, chunk by
            chunk, on whatever scheduler Dask is set to use, and gives the
            labels of the in-memory fit of the same values.
        y : ignored

        Returns
        -------
        self
        """
        self._validate_params()
        start = time.perf_counter()
        n_clusters, n_iter = int(self.n_clusters), int(self.n_iter)
        X = backend_of(X).check_data(X, self, reset=True, check_values=False)
        self.layout_ = feature_space(self.mask_img, self.connectivity, X.shape[1],
                                     X.shape[0], data=X)
        self.mask_img_ = self.layout_.mask_img_
        graph = self.layout_.graph
        k = effective_n_clusters(n_clusters, X.shape[1])
        self.memory_ = _memory(self.memory, self.memory_level, X)
        run = _cached(self.memory_)
        result = run(X, graph, k, n_iter, float(self.threshold), int(self.verbose),
                     on_level=LEVEL_CALLBACK.get(), check_values=True,
                     linkage=self.linkage, on_step=STEP_CALLBACK.get(),
                     full_tree=bool(self.compute_full_tree),
                     max_refine_iter=self.max_refine_iter)
        emit_messages(result)
        self.labels_ = result.labels
        self.n_clusters_ = result.n_clusters
        self.sizes_ = np.bincount(result.labels, minlength=result.n_clusters)
        self.n_refine_iter_ = result.refine_iter
        self._n_features_out = self.n_clusters_
        for name in ("tree_", "children_", "n_leaves_", "n_connected_components_"):
            self.__dict__.pop(name, None)  # a previous fit's tree
        if result.tree is not None:
            self.tree_ = result.tree
            self.children_ = result.tree.children()[0]
            self.n_leaves_ = result.tree.n_leaves
            self.n_connected_components_ = result.tree.n_roots
        self.fit_time_ = time.perf_counter() - start
        return self

    def generate_report(self, X: ArrayLike | None = None, *, title: str | None = None,
                        split_half: bool = True, random_state: int | None = 0) -> Report:
        """A report of the fit, for readers who have never heard of ReNA:
        parameters and versions, K asked and obtained, pictures of the
        parcels, their sizes, the compression error against K (from the
        merge tree, with ``compute_full_tree=True``) and, given ``X``, the
        metrics of :func:`fastrena.metrics.parcel_metrics`.

        Parameters
        ----------
        X : array-like or dask array (n_samples, n_features), optional
            Data to score the parcels on (the fit's, or other scans of the
            same features). Without it, the report has no homogeneity,
            reproducibility or compression error.
        title : str, optional
        split_half : bool, default=True
            With ``X``, also fit clones of this estimator on the first and
            second half of its samples, and report how alike their parcels
            are (:func:`fastrena.metrics.split_half_reproducibility`).
        random_state : int, default=0
            Seeds the random null parcels of the homogeneity.

        Returns
        -------
        fastrena.report.Report
            Shown by a notebook; ``save_as_html(path)``,
            ``open_in_browser()``.

        Examples
        --------
        >>> import numpy as np
        >>> from fastrena import ReNA
        >>> X = np.random.default_rng(0).standard_normal((6, 64))
        >>> rena = ReNA(np.ones((8, 8), dtype=bool), n_clusters=8).fit(X)
        >>> report = rena.generate_report(X)
        >>> "Split-half reproducibility" in report.get_html()
        True
        """
        check_is_fitted(self, "labels_")
        if X is not None and not is_dask_array(X):
            X = check_array(X, dtype=list(FLOAT_DTYPES), input_name="X")
        return make_report(self.labels_, self.layout_, X, fit=self, title=title,
                           split_half=split_half, random_state=random_state)

    def labels_at(self, n_clusters: int) -> np.ndarray:
        """The partition into ``n_clusters`` clusters, read from the merge
        tree (``compute_full_tree=True``), numbered as ``labels_`` is: in
        order of first appearance. Fewer clusters than connected components
        give one per component, more than the features one per feature
        (each with the warning a fit to that many gives).
        It reads the whole tree: ``n_iter`` does not stop it (``labels_``
        keeps a fit's own stop).

        The scales are the tree's cuts, nested in one another. The boundary
        refinement (``max_refine_iter``) moves features across them, so it
        is not applied here: ``labels_at(n_clusters_)`` is ``labels_``
        (refined), any other scale the tree's cut. For a refined scale
        (what a fit to k gives), refine a cut of the tree: after
        ``linkage="ward"`` the one at ``m =
        fastrena.refine.exchange_count(k, n_features)`` more clusters,
        merged back by the exchange, ``fastrena.refine.refine_labels(X,
        rena.layout_.graph, rena.tree_.labels_at(k + m)[0], n_clusters=k)``
        (``tree_.labels_at``: the cut even at ``n_clusters_``), or the cut
        at k, ``rena.tree_.labels_at(k)[0]``, unless the refined one's
        ``fastrena.refine.within_cluster_sse`` is lower by more than 1e-12
        of it; after the
        default linkage fitted with ``max_refine_iter=m``,
        ``refine_labels(X, rena.layout_.graph, rena.labels_at(k),
        max_iter=m)``."""
        return self._labels_at(n_clusters)

    def _labels_at(self, n_clusters):
        """:meth:`labels_at` (its warnings at the user's line, whichever
        method called it)."""
        check_is_fitted(self, "labels_")
        if not hasattr(self, "tree_"):
            raise NotFittedError(f"this {type(self).__name__} was fitted without its merge "
                                 "tree; fit it with compute_full_tree=True to read other "
                                 "scales")
        # More than one cluster per feature: warned as fit warns.
        n_clusters = effective_n_clusters(check_positive_int(n_clusters, "n_clusters"),
                                          self.labels_.shape[0])
        labels, n = self.tree_.labels_at(n_clusters)
        if n > n_clusters:
            # The tree ends with one cluster per component: as fit warns.
            warn_user(f"The feature graph has {n} connected components, more than "
                      f"n_clusters={n_clusters}: clusters never span two components, so "
                      f"{n} clusters are returned")
        if n == self.n_clusters_ and getattr(self, "n_refine_iter_", 0) > 0:
            # The refined partition is the fit's own scale.
            return self.labels_
        return labels

    def _scale(self, n_clusters):
        """(labels, sizes) of ``labels_``, or of another scale of the tree."""
        if n_clusters is None or (not hasattr(self, "tree_")
                                  and n_clusters == self.n_clusters_):
            return self.labels_, self.sizes_
        labels = self._labels_at(n_clusters)
        return labels, np.bincount(labels)

    def get_feature_names_out(self, input_features: ArrayLike | None = None) -> np.ndarray:
        """Names of the output columns, ``rena0``, ``rena1``... (scikit-learn's
        convention): one per cluster of ``labels_``, or of the scale that
        ``transform(X, n_clusters=k)`` has just returned in a pandas or
        polars container (``set_output``)."""
        pending = _NAMED_WIDTH.get()
        if pending is not None and pending[0] == id(self) and input_features is None:
            _NAMED_WIDTH.set(None)
            return np.asarray([f"{type(self).__name__.lower()}{i}" for i in range(pending[1])],
                              dtype=object)
        return super().get_feature_names_out(input_features)

    def _output_is_wrapped(self):
        """Whether scikit-learn's ``set_output`` wraps this estimator's
        ``transform`` (its own setting, else the global one): the rule of
        ``sklearn.utils._set_output``, which keeps the setting in
        ``_sklearn_output_config``."""
        config = getattr(self, "_sklearn_output_config", {}).get("transform")
        return (config or get_config()["transform_output"]) != "default"

    def fit_predict(self, X: ArrayLike, y: object = None) -> np.ndarray:
        """Fit and return ``labels_`` (the cluster of each *feature*)."""
        return self.fit(X, y).labels_

    def _divisors(self, scaled, sizes=None):
        sizes = (self.sizes_ if sizes is None else sizes).astype(np.float64)
        return np.sqrt(sizes) if scaled else sizes

    def transform(self, X: ArrayLike, n_clusters: int | None = None) -> Any:
        """Cluster means of ``X``, shape (``n_samples, n_clusters_``) (or
        (n_samples, n_clusters): another scale of the merge tree, see
        :meth:`labels_at`).

        With ``scaling=True`` each mean is multiplied by the square root of
        its cluster size. One pass over ``X``; float32 stays float32. A Dask
        ``X`` gives a lazy Dask array, chunked as ``X`` along samples (or as
        ``fit`` rechunks it if its features are split); NaN or infinity
        raise when it is computed.
        """
        check_is_fitted(self, "labels_")
        _NAMED_WIDTH.set(None)
        labels, sizes = self._scale(n_clusters)
        backend = backend_of(X)
        X = backend.check_data(X, self, reset=False, check_values=False)
        means = backend.means_of(X, labels, self._divisors(self.scaling, sizes))
        if sizes.shape[0] != self.n_clusters_ and self._output_is_wrapped():
            _NAMED_WIDTH.set((id(self), int(sizes.shape[0])))
        return means

    def inverse_transform(self, X_red: ArrayLike, n_clusters: int | None = None) -> Any:
        """Give every feature its cluster's value, shape (n_samples, n_features)
        (clusters of the scale ``n_clusters`` of the merge tree, if given).

        ``inverse_transform(transform(X))`` is the orthogonal projection of
        ``X`` onto signals constant on each cluster. NaN and infinity are
        copied like any value (as scikit-learn's ``FeatureAgglomeration``
        does: a cluster's NaN p-value becomes its features'). Fitted with the merge
        tree, ``n_clusters`` may be left out for another scale: the width
        of ``X_red`` names it (``inverse_transform(transform(X,
        n_clusters=100))``). A Dask ``X_red`` gives a lazy Dask array.
        """
        check_is_fitted(self, "labels_")
        if is_dask_array(X_red):
            return self._lazy_inverse_transform(X_red, n_clusters)
        check_matrix_like(X_red, "X_red", allow_1d=True,
                          expected="(n_samples, n_clusters), one column per cluster, "
                                   "or one such row",
                          advice="X_red is what transform(X) returns")
        # NaN and infinity are copied to their clusters' features, as
        # scikit-learn's FeatureAgglomeration does: nothing is computed
        # from them (hidimstat maps a cluster's NaN p-value back so).
        X_red = check_array(X_red, dtype=list(FLOAT_DTYPES), ensure_2d=False,
                            ensure_all_finite=False, input_name="X_red")
        one_d = X_red.ndim == 1
        X_red = np.atleast_2d(X_red)
        n_clusters = self._scale_of_width(X_red, n_clusters)
        labels, sizes = self._scale(n_clusters)
        self._check_reduced_width(X_red, sizes.shape[0], n_clusters)
        divisors = np.sqrt(sizes) if self.scaling else None
        out = backend_of(X_red).expand_clusters(X_red, labels, divisors)
        return out[0] if one_d else out

    def _scale_of_width(self, X_red, n_clusters):
        """``n_clusters``, or, when it is not given, the scale of the merge
        tree that has as many clusters as ``X_red`` has columns (every
        count from one per connected component to one per feature is one);
        None for ``labels_``'s own scale, or when the width names none."""
        width = X_red.shape[-1] if X_red.ndim == 2 else None
        if (n_clusters is not None or not hasattr(self, "tree_")
                or not isinstance(width, (int, np.integer)) or width == self.n_clusters_):
            return n_clusters
        if self.tree_.n_roots <= width <= self.tree_.n_leaves:
            return int(width)
        return None

    def _check_reduced_width(self, X_red, width, n_clusters=None):
        if X_red.ndim == 2 and X_red.shape[1] == width:
            return
        given = X_red.shape[-1]
        if n_clusters is not None:
            fix = f"{width} clusters at n_clusters={n_clusters}; they must be equal"
        elif hasattr(self, "tree_"):
            # Any width the tree has would have been read as its scale.
            fix = (f"n_clusters_={self.n_clusters_}, and the scales of its merge tree "
                   f"have {self.tree_.n_roots} to {self.tree_.n_leaves} clusters; give X_red "
                   "one column per cluster of one of them")
        else:
            fix = (f"n_clusters_={self.n_clusters_}; they must be equal (for X_red from "
                   f"transform(X, n_clusters={given}), fit with compute_full_tree=True and "
                   f"pass n_clusters={given} to inverse_transform too)")
        raise ValueError(f"X_red has {given} columns but this ReNA has {fix}")

    def _lazy_inverse_transform(self, X_red, n_clusters):
        backend = backend_of(X_red)
        one_d = X_red.ndim == 1
        if one_d:
            X_red = X_red[None, :]
        X_red = backend.check_data(X_red, check_values=False, input_name="X_red")
        n_clusters = self._scale_of_width(X_red, n_clusters)
        labels, sizes = self._scale(n_clusters)
        self._check_reduced_width(X_red, sizes.shape[0], n_clusters)
        divisors = np.sqrt(sizes) if self.scaling else None
        out = backend.expand_clusters(X_red, labels, divisors)
        return out[0] if one_d else out
