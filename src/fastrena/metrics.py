"""How good a parcellation is, parcel by parcel, as a pandas DataFrame.

:func:`parcel_metrics` gives one row per parcel: its size in features and
in mm^3 (voxels, from the mask's affine) or mm^2 (vertices: a vertex's
area is a third of its triangles' areas), its number of connected
components in the graph (1 for a ReNA cluster), and, given data, its
homogeneity (the mean Pearson correlation of its features with its mean
signal) next to that of a size-matched null parcel grown on the same
graph (:func:`null_regions`, as Gordon et al., Cerebral Cortex 26(1),
2016, compare parcels with random parcels of the same sizes).
:func:`split_half_reproducibility` is the adjusted Rand index of the
parcellations fitted on the two halves of the samples, and
:func:`compression_errors` the share of the signal lost to the parcels'
means.

Every quantity read from the data is one pass over it, linear in its
size, and a Dask array is read chunk by chunk with the in-memory values
bit for bit: sums over samples run over blocks of
:data:`fastrena._kernels.SAMPLE_BLOCK` samples combined in one binary tree
whatever the chunks (as :mod:`fastrena._chunked` sums edge weights).

pandas is imported when :func:`parcel_metrics` is called; nilearn, and so
the ``neuro`` extra, requires it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from sklearn.exceptions import NotFittedError

from ._colors import hex_colors
from ._interrupt import interrupt_unmasked
from ._kernels import SAMPLE_BLOCK
from ._validation import (check_finite, check_matrix_like, is_dask_array, transposed_hint,
                          where_not_finite)
from .arrays import cluster_means
from .errors import MissingDependencyError
from .grayordinates import GrayordinateLayout
from .layouts import SurfaceLayout, VolumeLayout

if TYPE_CHECKING:  # annotations only: not imported at run time
    from numpy.typing import ArrayLike
    from pandas import DataFrame
    from sklearn.base import BaseEstimator

    from .graphs import FeatureGraph
    from .layouts import Layout

__all__ = [
    "compression_errors",
    "feature_measures",
    "homogeneity",
    "null_regions",
    "parcel_components",
    "parcel_metrics",
    "split_half_reproducibility",
    "vertex_areas",
]


def _pandas():
    try:
        import pandas
    except ImportError as exc:
        raise MissingDependencyError("fastrena.metrics.parcel_metrics returns a pandas "
                                     "DataFrame: pip install pandas (or fastrena[neuro], "
                                     "whose nilearn requires it)") from exc
    return pandas


# --------------------------------------------------------------------------
# sizes and connectedness
# --------------------------------------------------------------------------
def vertex_areas(coordinates: ArrayLike, faces: ArrayLike) -> np.ndarray:
    """The area of each vertex of a triangle mesh: a third of the areas of
    the triangles it belongs to (so the vertices' areas add up to the
    mesh's).

    Examples
    --------
    >>> square = np.array([[0., 0, 0], [2, 0, 0], [0, 2, 0], [2, 2, 0]])
    >>> vertex_areas(square, np.array([[0, 1, 2], [1, 3, 2]])).round(3).tolist()
    [0.667, 1.333, 1.333, 0.667]
    """
    coordinates = np.asarray(coordinates, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    sides = np.cross(coordinates[faces[:, 1]] - coordinates[faces[:, 0]],
                     coordinates[faces[:, 2]] - coordinates[faces[:, 0]])
    area = 0.5 * np.sqrt((sides * sides).sum(axis=1))
    return np.bincount(faces.ravel(), weights=np.repeat(area / 3.0, 3),
                       minlength=coordinates.shape[0])


def _voxel_volume(affine):
    """|det| of the affine's 3 x 3 part, by cofactors: exact for the usual
    axis-aligned grids (np.linalg.det's LU gives 7.999999999999998 for 2 mm)."""
    a = np.asarray(affine, dtype=np.float64)[:3, :3]
    return float(abs(a[0, 0] * (a[1, 1] * a[2, 2] - a[1, 2] * a[2, 1])
                     - a[0, 1] * (a[1, 0] * a[2, 2] - a[1, 2] * a[2, 0])
                     + a[0, 2] * (a[1, 0] * a[2, 1] - a[1, 1] * a[2, 0])))


def feature_measures(layout: Layout) -> dict[str, np.ndarray | None]:
    """The physical size of each feature of ``layout``: ``{"volume_mm3":
    ..., "area_mm2": ...}``, each an array (n_features,) or None when no
    feature of the layout has that kind of size (NaN for a feature of the
    other kind: grayordinates mix vertices and voxels).

    A voxel's volume comes from the mask's affine (a bare array mask has
    the identity: one unit per voxel), a vertex's area from its mesh
    (:func:`vertex_areas`); features without a known geometry (a
    connectivity graph, a surface or CIFTI label file read without its
    meshes) have neither.
    """
    n = layout.n_features
    if isinstance(layout, VolumeLayout):
        return {"volume_mm3": np.full(n, _voxel_volume(layout.affine)), "area_mm2": None}
    if isinstance(layout, SurfaceLayout):
        if layout.meshes is None:
            return {"volume_mm3": None, "area_mm2": None}
        areas = [vertex_areas(c, f)[m] for (c, f), m in zip(layout.meshes, layout.masks)]
        return {"volume_mm3": None, "area_mm2": np.concatenate(areas)}
    if isinstance(layout, GrayordinateLayout):
        return _grayordinate_measures(layout)
    return {"volume_mm3": None, "area_mm2": None}


def _grayordinate_measures(layout):
    models = layout.brain_models
    volume = np.full(len(models), np.nan)
    area = np.full(len(models), np.nan)
    for name, part, structure in models.iter_structures():
        if structure.surface_mask.all():
            if name in layout.meshes:
                coordinates, faces = layout.meshes[name]
                area[part] = vertex_areas(coordinates, faces)[structure.vertex]
        else:
            volume[part] = _voxel_volume(models.affine)
    if layout.selected is not None:
        volume, area = volume[layout.selected], area[layout.selected]
    has_volume = bool(np.isfinite(volume).any())
    has_area = bool(models.surface_mask.any())
    return {"volume_mm3": volume if has_volume else None, "area_mm2": area if has_area else None}


def parcel_components(labels: ArrayLike, graph: FeatureGraph,
                      n_clusters: int | None = None) -> np.ndarray:
    """The number of connected components of each parcel in ``graph``
    (a ``FeatureGraph``): 1 for a connected parcel, as every ReNA cluster.

    Examples
    --------
    >>> from fastrena import chain_graph
    >>> parcel_components(np.array([0, 0, 1, 0, 1]), chain_graph(5)).tolist()
    [2, 2]
    """
    labels = np.asarray(labels, dtype=np.int64)
    n = labels.shape[0]
    n_clusters = int(labels.max()) + 1 if n_clusters is None else int(n_clusters)
    inside = labels[graph.u] == labels[graph.v]
    within = sparse.coo_matrix((np.ones(int(inside.sum()), dtype=np.int8),
                                (graph.u[inside], graph.v[inside])), shape=(n, n))
    _, component = connected_components(within, directed=False)
    # Every component lies in one parcel (its edges join features of one).
    first = np.unique(component, return_index=True)[1]
    return np.bincount(labels[first], minlength=n_clusters)


# --------------------------------------------------------------------------
# sums over samples: blocks in one binary tree, whatever the chunks
# --------------------------------------------------------------------------
def _push(stack, run, merge):
    """Push ``run`` = (first block, n blocks, value) on ``stack``; two runs
    on top that are the halves of one aligned run become it."""
    stack.append(run)
    while len(stack) >= 2:
        (s1, n1, a), (s2, n2, b) = stack[-2], stack[-1]
        if n1 != n2 or s1 % (2 * n1) or s1 + n1 != s2:
            break
        stack[-2:] = [(s1, 2 * n1, merge(a, b))]


def _cover(rows, first_row, block_value, merge):
    """The aligned runs of blocks of ``rows`` (samples ``first_row``
    onwards, a multiple of SAMPLE_BLOCK), each run's value the tree of its
    blocks' values."""
    stack = []
    first = first_row // SAMPLE_BLOCK
    for b, start in enumerate(range(0, rows.shape[0], SAMPLE_BLOCK)):
        block = np.array(rows[start:start + SAMPLE_BLOCK], dtype=np.float64, order="C")
        _push(stack, (first + b, 1, block_value(block)), merge)
    return stack


def _merge_covers(merge, *covers):
    stack = []
    for cover in covers:
        for run in cover:
            _push(stack, run, merge)
    return stack


def _total(cover, merge):
    total = cover[-1][2]
    for _, _, value in reversed(cover[:-1]):
        total = merge(value, total)
    return total


def _tree_sum(X, block_value, merge):
    """``block_value`` of every block of SAMPLE_BLOCK samples of ``X``,
    merged in one fixed binary tree: the same bits in memory and for a
    Dask array, whatever its chunks (read once, chunk by chunk)."""
    if not is_dask_array(X):
        return _total(_cover(X, 0, block_value, merge), merge)
    import dask

    # Dask is installed: X is a Dask array. Chunks of whole rows starting
    # at multiples of SAMPLE_BLOCK, as the fit's weight pass reads them.
    from ._chunked import sample_aligned

    X = sample_aligned(X)
    starts = np.concatenate([[0], np.cumsum(X.chunks[0][:-1])]).astype(int)
    covers = [dask.delayed(_cover)(block, int(start), block_value, merge)
              for block, start in zip(X.to_delayed().ravel(), starts)]
    while len(covers) > 1:
        covers = [dask.delayed(_merge_covers)(merge, *covers[i:i + 8])
                  for i in range(0, len(covers), 8)]
    with interrupt_unmasked():
        return dask.delayed(_total)(covers[0], merge).compute()


@dataclass(frozen=True)
class _Moments:
    """Centred sums of the features and of their parcels' mean signals
    over some samples: counts, means, sums of squares and of products."""

    n: int
    mean_x: np.ndarray
    c_xx: np.ndarray
    c_xm: np.ndarray
    mean_m: np.ndarray
    c_mm: np.ndarray


@dataclass(frozen=True)
class _MomentsOf:
    """The block value and merge of the homogeneity pass, for the parcels
    ``labels`` (an object, so that Dask sends the labels once per task) of
    the block's columns, or of the columns ``columns`` of it (gathered a
    block at a time: overlapping regions, :func:`null_regions`)."""

    labels: np.ndarray
    sizes: np.ndarray
    columns: np.ndarray | None = None

    def __call__(self, block):
        if self.columns is not None:
            block = block[:, self.columns]
        means = cluster_means(block, self.labels, self.sizes)
        mean_x, mean_m = block.mean(axis=0), means.mean(axis=0)
        block -= mean_x
        means -= mean_m
        return _Moments(block.shape[0], mean_x, np.einsum("ij,ij->j", block, block),
                        np.einsum("ij,ij->j", block, means[:, self.labels]), mean_m,
                        np.einsum("ij,ij->j", means, means))

    def merge(self, a, b):
        """Chan, Golub and LeVeque's pairwise update: centred sums of the
        samples of ``a`` then ``b``, without the cancellation of raw sums
        (BOLD series sit on a baseline hundreds of times their spread)."""
        n = a.n + b.n
        weight = a.n * b.n / n
        dx, dm = b.mean_x - a.mean_x, b.mean_m - a.mean_m
        return _Moments(n, a.mean_x + dx * (b.n / n), a.c_xx + b.c_xx + dx * dx * weight,
                        a.c_xm + b.c_xm + dx * dm[self.labels] * weight,
                        a.mean_m + dm * (b.n / n), a.c_mm + b.c_mm + dm * dm * weight)


def _check_data(X, n_features):
    """X validated, of ``n_features`` columns (any number if None)."""
    check_matrix_like(X)
    if not is_dask_array(X):
        X = np.asarray(X)
    if X.ndim != 2 or (n_features is not None and X.shape[1] != n_features):
        hint = transposed_hint(n_features, X.shape[0]) if X.ndim == 2 else ""
        raise ValueError(f"X has shape {tuple(X.shape)} but the parcellation has "
                         f"{n_features} features; X must be (n_samples, {n_features}){hint}")
    if X.shape[0] < 1:
        raise ValueError("X has 0 samples; give at least 1")
    if not is_dask_array(X) and not np.isfinite(X).all():
        raise ValueError(f"X contains NaN or infinity {where_not_finite(X)}")
    return X


def feature_correlations(X, labels, n_clusters=None, columns=None):
    """Pearson correlation of each feature of ``X`` (n_samples, n_features)
    with its parcel's mean signal, over the samples; NaN where it is not
    defined (a constant feature, or a constant parcel mean). With
    ``columns``, entry j is X's feature ``columns[j]`` in parcel
    ``labels[j]`` (parcels may then share features). One pass over ``X``."""
    labels = np.asarray(labels, dtype=np.int64)
    if columns is not None:
        columns = np.asarray(columns, dtype=np.int64)
    X = _check_data(X, labels.shape[0] if columns is None else None)
    n_clusters = int(labels.max()) + 1 if n_clusters is None else int(n_clusters)
    # An empty parcel has no mean: divide by 1.
    sizes = np.maximum(np.bincount(labels, minlength=n_clusters), 1).astype(np.float64)
    moments = _MomentsOf(labels, sizes, columns)
    total = _tree_sum(X, moments, moments.merge)
    if not (np.isfinite(total.c_xx).all() and np.isfinite(total.c_mm).all()):
        raise ValueError("X contains NaN or infinity")
    denominator = np.sqrt(total.c_xx * total.c_mm[labels])
    # No variation, no correlation: NaN, without NumPy's warning.
    out = np.full(labels.shape[0], np.nan)
    np.divide(total.c_xm, denominator, out=out, where=denominator > 0)
    return np.clip(out, -1.0, 1.0, out=out)


def homogeneity(X: ArrayLike, labels: ArrayLike, n_clusters: int | None = None,
                columns: ArrayLike | None = None) -> np.ndarray:
    """Each parcel's homogeneity: the mean, over its features, of their
    Pearson correlation with the parcel's mean signal
    (:func:`feature_correlations`; features where it is undefined are
    left out, NaN when all are). 1 when every feature follows the mean.
    ``labels``: the parcel of each feature of X, or with ``columns`` of
    each of X's features ``columns`` (regions that may overlap, as
    :func:`null_regions` returns them).

    Examples
    --------
    >>> X = np.array([[0., 1, 5, 5], [1, 2, 5, 6], [2, 2, 5, 7]])
    >>> homogeneity(X, np.array([0, 0, 1, 1])).round(3).tolist()
    [0.963, 1.0]
    """
    labels = np.asarray(labels, dtype=np.int64)
    n_clusters = int(labels.max()) + 1 if n_clusters is None else int(n_clusters)
    r = feature_correlations(X, labels, n_clusters, columns)
    defined = np.isfinite(r)
    total = np.bincount(labels[defined], weights=r[defined], minlength=n_clusters)
    count = np.bincount(labels[defined], minlength=n_clusters)
    out = np.full(n_clusters, np.nan)
    np.divide(total, count, out=out, where=count > 0)
    return out


@dataclass(frozen=True)
class _ErrorsOf:
    """Block value of :func:`compression_errors`: per labelling, the sum of
    squares lost to the parcel means; last, the spread about each
    sample's mean."""

    labelings: tuple

    def __call__(self, block):
        out = np.empty(len(self.labelings) + 1)
        for i, (labels, sizes) in enumerate(self.labelings):
            lost = block - cluster_means(block, labels, sizes)[:, labels]
            out[i] = np.einsum("ij,ij->", lost, lost)
        centred = block - block.mean(axis=1, keepdims=True)
        out[-1] = np.einsum("ij,ij->", centred, centred)
        return out

    @staticmethod
    def merge(a, b):
        return a + b


def compression_errors(X: ArrayLike, labelings: Sequence[ArrayLike]) -> np.ndarray:
    """``||X - R|| / ||X - X's row means||`` for each labelling (R: each
    feature's parcel mean), as :func:`fastrena.plotting.relative_error`
    defines it, all in one pass over ``X``.

    Examples
    --------
    >>> X = np.array([[0., 0, 2, 2], [1, 3, 1, 3]])
    >>> compression_errors(X, [[0, 0, 1, 1], [0, 1, 2, 3]]).tolist()
    [0.7071067811865476, 0.0]
    """
    labelings = [np.asarray(labels, dtype=np.int64) for labels in labelings]
    X = _check_data(X, labelings[0].shape[0])
    value = _ErrorsOf(tuple((labels, np.bincount(labels).astype(np.float64))
                            for labels in labelings))
    sums = _tree_sum(X, value, value.merge)
    if sums[-1] == 0:  # every sample constant: nothing is lost but rounding
        return np.zeros(len(labelings))
    return np.sqrt(sums[:-1] / sums[-1])


# --------------------------------------------------------------------------
# the null: random connected parcels of the same sizes
# --------------------------------------------------------------------------
def null_regions(labels: ArrayLike, graph: FeatureGraph,
                 random_state: int | np.random.Generator | None = 0
                 ) -> tuple[np.ndarray, np.ndarray]:
    """For each parcel of ``labels``, a random connected region of the same
    size grown on ``graph``: the null against which its homogeneity is
    judged.

    Each region grows from a random feature by breadth-first search (so
    it is compact, as real parcels are, not stringy) until it has its
    parcel's size, on the whole graph: the regions are drawn apart and may
    overlap (one null per parcel, not a second parcellation). Grown one
    after the other as a tiling, the last parcels filled whatever holes
    the others left: 17 % of the null parcels of a 3 mm brain at K = 1,000
    stopped smaller, a tenth of them at one feature (homogeneous by
    definition). A region is smaller only when its seed's connected
    component is.

    Returns
    -------
    features, parcel : ndarray of int64
        The regions' features, one after the other (parcel 0's first),
        and the parcel each belongs to: parcel c's region is
        ``features[parcel == c]``.

    Examples
    --------
    >>> from fastrena import chain_graph
    >>> features, parcel = null_regions(np.array([0, 0, 0, 1, 1, 2]), chain_graph(6))
    >>> np.bincount(parcel).tolist()
    [3, 2, 1]
    """
    labels = np.asarray(labels, dtype=np.int64)
    n = labels.shape[0]
    sizes = np.bincount(labels)
    rng = np.random.default_rng(random_state)
    # The graph's own neighbour lists (each node's in increasing order).
    indptr, indices, _ = graph.neighbour_lists()
    indptr, indices = indptr.tolist(), indices.tolist()
    seeds = rng.integers(0, n, sizes.shape[0]).tolist() if n else []
    # A feature's mark: the last region that reached it (no clearing).
    reached = [-1] * n
    features, parcel = [], []
    for c, seed in enumerate(seeds):
        target = int(sizes[c])
        if target == 0:
            continue
        reached[seed] = c
        members, queue = [seed], deque([seed])
        while queue and len(members) < target:
            node = queue.popleft()
            for neighbour in indices[indptr[node]:indptr[node + 1]]:
                if reached[neighbour] != c:
                    reached[neighbour] = c
                    members.append(neighbour)
                    queue.append(neighbour)
                    if len(members) == target:
                        break
        features += members
        parcel += [c] * len(members)
    return np.asarray(features, dtype=np.int64), np.asarray(parcel, dtype=np.int64)


# --------------------------------------------------------------------------
# the table, and split halves
# --------------------------------------------------------------------------
def _parcellation_of(parcellation, layout):
    """(labels 0..K-1, layout) of a fitted ReNA or of labels with a layout."""
    if hasattr(parcellation, "labels_") and hasattr(parcellation, "layout_"):
        return np.asarray(parcellation.labels_, dtype=np.int64), parcellation.layout_
    if hasattr(parcellation, "get_params"):
        raise NotFittedError(f"this {type(parcellation).__name__} is not fitted; fit it first")
    labels = np.asarray(parcellation)
    if layout is None:
        raise ValueError("parcellation is an array of labels: give its layout too "
                         "(layout=rena.layout_, or a layout of fastrena.layouts)")
    if (labels.ndim != 1 or labels.shape[0] != layout.n_features
            or not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0):
        raise ValueError(f"parcellation must be labels 0..K-1, one per feature of the "
                         f"layout ({layout.n_features}), got an array of shape "
                         f"{labels.shape} and dtype {labels.dtype}")
    return labels.astype(np.int64), layout


def parcel_metrics(parcellation: BaseEstimator | ArrayLike, X: ArrayLike | None = None, *,
                   layout: Layout | None = None, values: ArrayLike | None = None,
                   names: Sequence[str] | None = None, colors: Sequence[str] | None = None,
                   random_state: int | np.random.Generator | None = 0) -> DataFrame:
    """One row per parcel: its size, connectedness and, given ``X``, its
    homogeneity against a size-matched null.

    Parameters
    ----------
    parcellation : fitted ReNA, or ndarray of int (n_features,)
        A fitted estimator (its ``labels_`` on its ``layout_``), or labels
        0..K-1 with ``layout``.
    X : ndarray or dask array (n_samples, n_features), optional
        Data to score the parcels on (the fit's, or held-out scans).
    layout : fastrena layout, optional
        The features' layout (graph and geometry) when ``parcellation``
        is an array.
    values, names, colors : sequences of length K, optional
        Each parcel's label value (default 1..K), name (default
        ``label_<value>``) and colour (default the pictures' colours,
        ``#rrggbb``), as the ``dseg.tsv`` lookup table has them.
    random_state : int, numpy Generator or None, default=0
        Seeds the null parcels (:func:`null_regions`).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``index`` (the label value), with columns ``name``,
        ``color``, ``n_features``, ``volume_mm3`` and/or ``area_mm2``
        (where the layout has a geometry, :func:`feature_measures`),
        ``n_components`` (connected components in the graph, 1 expected)
        and, with ``X``: ``homogeneity`` (:func:`homogeneity`),
        ``null_homogeneity`` (that of a random connected region of the
        same size, :func:`null_regions`) and ``null_n_features`` (its size:
        the parcel's, unless the graph's component it grew in is smaller).

    Examples
    --------
    >>> from fastrena import ReNA
    >>> X = np.repeat([[0., 0, 0, 1, 1, 1]], 3, axis=0) + np.arange(18).reshape(3, 6)
    >>> rena = ReNA(np.ones((2, 3), dtype=bool), n_clusters=2).fit(X)
    >>> table = parcel_metrics(rena, X)
    >>> table[["name", "n_features", "n_components", "homogeneity"]]
              name  n_features  n_components  homogeneity
    index                                                
    1      label_1           3             1          1.0
    2      label_2           3             1          1.0
    """
    pandas = _pandas()
    labels, layout = _parcellation_of(parcellation, layout)
    n_clusters = int(labels.max()) + 1
    values = np.arange(1, n_clusters + 1) if values is None else np.asarray(values)
    columns = {
        "name": list(names) if names is not None else [f"label_{int(v)}" for v in values],
        "color": list(colors) if colors is not None else hex_colors(n_clusters),
        "n_features": np.bincount(labels, minlength=n_clusters),
    }
    for column, per_feature in feature_measures(layout).items():
        if per_feature is not None:
            columns[column] = np.bincount(labels, weights=per_feature, minlength=n_clusters)
    graph = layout.graph
    columns["n_components"] = parcel_components(labels, graph, n_clusters)
    if X is not None:
        columns["homogeneity"] = homogeneity(X, labels, n_clusters)
        features, region = null_regions(labels, graph, random_state)
        columns["null_homogeneity"] = homogeneity(X, region, n_clusters, columns=features)
        columns["null_n_features"] = np.bincount(region, minlength=n_clusters)
    table = pandas.DataFrame(columns, index=pandas.Index(values, name="index"))
    return table


def split_half_reproducibility(estimator: BaseEstimator, X: ArrayLike) -> float:
    """The adjusted Rand index of the parcellations ``estimator`` (fitted
    or not; cloned, so left as it is) fits on the first and on the second
    half of the samples of ``X``: 1 when both halves give the same parcels,
    about 0 when they agree no more than chance.

    The halves are contiguous, not interleaved: neighbouring scans of a
    run are correlated, and interleaved halves would share that noise.

    Examples
    --------
    >>> from fastrena import ReNA
    >>> X = np.repeat([[0., 0, 0, 5, 5, 5]], 4, axis=0) + np.arange(4)[:, None]
    >>> float(split_half_reproducibility(ReNA(n_clusters=2), X))
    1.0
    """
    from sklearn.base import clone
    from sklearn.metrics import adjusted_rand_score

    if not is_dask_array(X):
        # Checked whole, so that an error names X's own samples, not a
        # half's.
        check_matrix_like(X)
        X = np.asarray(X)
        if X.ndim == 2:
            check_finite(X)
    n = X.shape[0]
    if n < 2:
        raise ValueError(f"X has {n} sample; split-half reproducibility needs at least 2 "
                         "(one per half)")
    half = n // 2
    labels = []
    for rows in (slice(0, half), slice(half, n)):
        copy = clone(estimator)
        if "compute_full_tree" in copy.get_params():
            # labels_ is the same without the tree, which costs time.
            copy.set_params(compute_full_tree=False)
        labels.append(np.asarray(copy.fit(X[rows]).labels_))
    return float(adjusted_rand_score(labels[0], labels[1]))
