"""Benchmark data (offline): nilearn's bundled MNI152 masks, smooth signals."""

import numpy as np
from scipy.ndimage import gaussian_filter


def mni_mask(resolution):
    """(mask_img, boolean mask array) of nilearn's bundled MNI152 brain mask."""
    from nilearn.datasets import load_mni152_brain_mask

    img = load_mni152_brain_mask(resolution=resolution)
    return img, np.asarray(img.dataobj) != 0


def smooth_signals(mask, n_samples, dtype=np.float64, sigma=2.0, seed=0):
    """(n_samples, n_voxels): white noise smoothed over the mask's grid."""
    rng = np.random.default_rng(seed)
    X = np.empty((n_samples, int(mask.sum())), dtype=dtype)
    for s in range(n_samples):
        X[s] = gaussian_filter(rng.standard_normal(mask.shape), sigma)[mask]
    return X
