"""The methods compared, each reduced to the same output dimension K.

Clustering methods return labels (one per feature); the reduced signal is
then the cluster mean of the noisy data and its reconstruction gives each
feature its cluster's mean. Sparse random projection has no labels: its
reconstruction is the least-norm signal with the same projection.
"""

import time
import warnings

import numpy as np
from scipy import sparse
from scipy.linalg import cho_factor, cho_solve


def _fastrena(case, k, **params):
    from fastrena import ReNA

    graph = {"mask_img": case.mask} if case.mask is not None else {"connectivity": case.A}
    return ReNA(n_clusters=k, **graph, **params).fit(case.noisy).labels_


def _nilearn(case, k):
    from nilearn.regions import ReNA

    with warnings.catch_warnings():
        # nilearn's own divide-by-zero and deprecation chatter, not ours
        warnings.simplefilter("ignore")
        return ReNA(case.mask_img, n_clusters=k).fit(case.noisy).labels_


def _linkage(kind):
    def fit(case, k):
        from sklearn.cluster import FeatureAgglomeration

        return FeatureAgglomeration(n_clusters=k, linkage=kind,
                                    connectivity=case.A).fit(case.noisy).labels_
    return fit


def slic_labels(noisy, mask, k, compactness=None):
    """SLIC on the grid, samples as channels. ``compactness`` defaults to
    sqrt(n_samples): the typical distance between two noisy unit-variance
    signals grows as the square root of the number of channels, so this
    keeps colour and space in balance whatever the number of samples."""
    from skimage.segmentation import slic

    image = np.zeros(mask.shape + (noisy.shape[0],))
    image[mask] = noisy.T
    if compactness is None:
        compactness = float(np.sqrt(noisy.shape[0]))
    seg = slic(image, n_segments=k, compactness=compactness, mask=mask, channel_axis=-1,
               start_label=1, enforce_connectivity=True, convert2lab=False)
    return np.unique(seg[mask], return_inverse=True)[1].ravel()


def _slic(case, k):
    return slic_labels(case.noisy, case.mask, k)


def grid_labels(mask, k):
    """Average pooling on cubic (square) blocks, the block side chosen so
    that the number of blocks touching the mask is closest to ``k``."""
    coords = np.nonzero(mask)
    best = None
    for side in range(1, max(mask.shape) + 1):
        cells = np.ravel_multi_index(tuple(c // side for c in coords),
                                     tuple(-(-s // side) for s in mask.shape))
        labels = np.unique(cells, return_inverse=True)[1].ravel()
        n = int(labels.max()) + 1
        if best is None or abs(n - k) < abs(best[0] - k):
            best = (n, labels)
        if n < k:
            break
    return best[1]


def _grid(case, k):
    return grid_labels(case.mask, k)


def random_projection_reconstruction(noisy, k, seed=0):
    """Least-norm reconstruction from a sparse random projection to ``k``
    dimensions: ``P^T (P P^T)^-1 P x``. ``P P^T`` is solved directly up to
    6,000 dimensions, by conjugate gradients (it is well conditioned) above."""
    from sklearn.random_projection import SparseRandomProjection

    P = SparseRandomProjection(n_components=k, random_state=seed).fit(noisy).components_
    P = sparse.csr_matrix(P)
    Y = np.asarray(P @ noisy.T)                      # (k, n_samples)
    if k <= 6000:
        Z = cho_solve(cho_factor((P @ P.T).toarray()), Y)
    else:
        Z = _block_cg(lambda Z: P @ (P.T @ Z), Y)
    return np.asarray((P.T @ Z).T)


def _block_cg(apply, B, tol=1e-8, max_iter=500):
    """Conjugate gradients for a symmetric positive definite operator, on
    every column of B at once (each column keeps its own step sizes)."""
    X = np.zeros_like(B)
    R = B.copy()
    D = R.copy()
    rr = (R * R).sum(axis=0)
    stop = tol ** 2 * rr
    for _ in range(max_iter):
        if np.all(rr <= stop):
            break
        AD = apply(D)
        alpha = rr / np.maximum((D * AD).sum(axis=0), np.finfo(float).tiny)
        X += alpha * D
        R -= alpha * AD
        rr_new = (R * R).sum(axis=0)
        D = R + (rr_new / np.maximum(rr, np.finfo(float).tiny)) * D
        rr = rr_new
    return X


#: name -> (labels function, whether it needs a grid mask, a NIfTI mask)
CLUSTERINGS = {
    "fastrena": (lambda c, k: _fastrena(c, k), False, False),
    "fastrena ward": (lambda c, k: _fastrena(c, k, linkage="ward"), False, False),
    "fastrena ward n_iter=30": (lambda c, k: _fastrena(c, k, linkage="ward", n_iter=30),
                                False, False),
    "nilearn": (_nilearn, False, True),
    "Ward": (_linkage("ward"), False, False),
    "average": (_linkage("average"), False, False),
    "single": (_linkage("single"), False, False),
    "SLIC": (_slic, True, False),
    "grid": (_grid, True, False),
}

RANDOM_PROJECTION = "random projection"


def applicable(name, case):
    if name == RANDOM_PROJECTION:
        return True
    _, needs_grid, needs_nifti = CLUSTERINGS[name]
    return (case.mask is not None or not needs_grid) and (
        case.mask_img is not None or not needs_nifti)


def timed_labels(name, case, k):
    fit = CLUSTERINGS[name][0]
    start = time.perf_counter()
    labels = fit(case, k)
    return np.asarray(labels, dtype=np.int64), time.perf_counter() - start
