"""The quality benchmark's data (all offline): clean signals, their noisy
copy, and the feature graph, for each case.

Every case is a :class:`Case`: ``clean`` and ``noisy`` (n_samples,
n_features) float64, the graph as a symmetric scipy adjacency ``A`` (used by
scikit-learn's linkages and, as ``connectivity=``, by fastrena where there is
no mask), and for grid data the boolean ``mask`` (used by ReNA, SLIC and grid
downsampling). Noise is white, of unit variance, added to clean signals
scaled to unit variance: the spec's setting (``../shared/spec/benchmarks.md``).
"""

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.ndimage import gaussian_filter
from sklearn.feature_extraction.image import grid_to_graph


@dataclass
class Case:
    name: str
    clean: np.ndarray
    noisy: np.ndarray
    A: sparse.csr_matrix
    mask: np.ndarray = None       # grid cases only
    mask_img: object = None       # MNI cases: the NIfTI mask nilearn's ReNA needs


def _with_noise(clean, seed):
    clean = clean / clean.std()
    rng = np.random.default_rng(seed + 1000)
    return clean, clean + rng.standard_normal(clean.shape)


def _grid_adjacency(mask):
    shape = mask.shape + (1,) * (3 - mask.ndim)
    return sparse.csr_matrix(grid_to_graph(*shape, mask=mask.reshape(shape)))


def mni(resolution, n_samples=100, seed=0, sigma=4.0):
    """The spec's quality data: smooth fields (sigma 4 voxels) in nilearn's
    MNI152 brain mask, unit variance, plus unit white noise. Seed 0 gives
    ``variant_sketch.py``'s data exactly."""
    from nilearn.datasets import load_mni152_brain_mask

    img = load_mni152_brain_mask(resolution=resolution)
    mask = np.asarray(img.dataobj) != 0
    rng = np.random.default_rng(seed)
    clean = np.empty((n_samples, int(mask.sum())))
    for s in range(n_samples):
        clean[s] = gaussian_filter(rng.standard_normal(mask.shape), sigma)[mask]
    clean /= clean.std()
    noisy = clean + rng.standard_normal(clean.shape)
    return Case(f"MNI {resolution} mm", clean, noisy, _grid_adjacency(mask), mask, img)


def mesh_adjacency(faces, n_vertices):
    """Triangle sides as a symmetric 0/1 adjacency."""
    i = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2]])
    j = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0]])
    A = sparse.coo_matrix((np.ones(i.shape[0]), (i, j)), shape=(n_vertices, n_vertices))
    A = ((A + A.T) > 0).astype(np.float64).tocsr()
    A.setdiag(0)
    A.eliminate_zeros()
    A.sort_indices()
    return A


def fsaverage5(n_samples=100, seed=0, steps=30):
    """fsaverage5 (both hemispheres, 20,484 vertices): white noise diffused
    along the pial mesh by ``steps`` rounds of neighbour averaging (a smooth
    field on the cortex, of a few mesh edges' width), plus unit noise."""
    from nilearn.datasets import load_fsaverage

    pial = load_fsaverage("fsaverage5")["pial"]
    blocks, offset = [], 0
    for hemi in ("left", "right"):
        faces = np.asarray(pial.parts[hemi].faces) + offset
        offset += np.asarray(pial.parts[hemi].coordinates).shape[0]
        blocks.append(faces)
    A = mesh_adjacency(np.concatenate(blocks), offset)
    averaging = sparse.diags(1.0 / (np.asarray(A.sum(axis=1)).ravel() + 1)) @ (
        A + sparse.identity(offset))
    rng = np.random.default_rng(seed)
    field = rng.standard_normal((offset, n_samples))
    for _ in range(steps):
        field = averaging @ field
    clean, noisy = _with_noise(field.T.copy(), seed)
    return Case("fsaverage5", clean, noisy, A)


def _pooled(image, factor):
    h, w = (s // factor * factor for s in image.shape[:2])
    image = image[:h, :w]
    return image.reshape(h // factor, factor, w // factor, factor, *image.shape[2:]).mean(
        axis=(1, 3))


def camera(n_samples=20, seed=0):
    """scikit-image's ``camera`` (pooled 2x to 256 x 256): every clean sample
    is the image, each noisy sample has its own noise, so cluster means
    average the noise away where the image is flat."""
    from skimage import data

    image = _pooled(data.camera().astype(np.float64), 2)
    mask = np.ones(image.shape, dtype=bool)
    clean = np.repeat(image.reshape(1, -1), n_samples, axis=0)
    clean = clean - clean.mean()
    clean, noisy = _with_noise(clean, seed)
    return Case("camera", clean, noisy, _grid_adjacency(mask), mask)


def china(seed=0):
    """scikit-learn's ``china.jpg`` (pooled 2x to 213 x 320): its three colour
    channels are the samples."""
    from sklearn.datasets import load_sample_image

    image = _pooled(load_sample_image("china.jpg").astype(np.float64), 2)
    mask = np.ones(image.shape[:2], dtype=bool)
    clean = image.reshape(-1, 3).T
    clean = clean - clean.mean(axis=1, keepdims=True)
    clean, noisy = _with_noise(clean, seed)
    return Case("china", clean, noisy, _grid_adjacency(mask), mask)


def digits(seed=0):
    """scikit-learn's digits: 1,797 samples on an 8 x 8 pixel grid."""
    from sklearn.datasets import load_digits

    X = load_digits().data.astype(np.float64)
    mask = np.ones((8, 8), dtype=bool)
    clean, noisy = _with_noise(X - X.mean(), seed)
    return Case("digits", clean, noisy, _grid_adjacency(mask), mask)


def motor_task(n_samples=200, amplitude=0.25, seed=0, sigma=2.0):
    """A classification task on the MNI 3 mm mask from nilearn's bundled
    motor activation map: class 1 scans = smooth noise + ``amplitude`` x the
    map (scaled to unit peak), class 0 = smooth noise alone. Returns
    (X, y, mask_img, mask)."""
    from nilearn.datasets import load_mni152_brain_mask, load_sample_motor_activation_image
    from nilearn.image import resample_to_img

    img = load_mni152_brain_mask(resolution=3)
    mask = np.asarray(img.dataobj) != 0
    motor = resample_to_img(load_sample_motor_activation_image(), img,
                            interpolation="continuous", force_resample=True,
                            copy_header=True)
    pattern = np.nan_to_num(np.asarray(motor.dataobj, dtype=np.float64))[mask]
    pattern /= np.abs(pattern).max()
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n_samples // 2)
    X = np.empty((n_samples, int(mask.sum())))
    for s in range(n_samples):
        field = gaussian_filter(rng.standard_normal(mask.shape), sigma)[mask]
        X[s] = field / field.std() + amplitude * y[s] * pattern
    return X, y, img, mask
