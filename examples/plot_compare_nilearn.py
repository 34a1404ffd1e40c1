"""
Compare with nilearn's ReNA
===========================

``from fastrena import ReNA`` replaces ``from nilearn.regions import
ReNA``: the same parameters, the same ``labels_``, ``transform`` and
``inverse_transform``. Here both cluster the camera image's pixels; the
partitions differ in how ties are broken (fastrena's are deterministic,
see the design notes), so we compare what matters: the number of
clusters, the compression error and the fit time.
"""

import time

import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np
from nilearn.regions import ReNA as NilearnReNA
from skimage import data
from skimage.transform import downscale_local_mean

from fastrena import ReNA

image = downscale_local_mean(data.camera().astype(np.float64), (2, 2))
# nilearn's ReNA asks for two samples at least: the image and a copy with
# a little noise.
noisy = image + np.random.default_rng(0).normal(0, 5, image.shape)
X = np.stack([image.ravel(), noisy.ravel()])
# nilearn's ReNA takes a mask image: the picture's grid as a one-slice
# volume, which fastrena's ReNA takes too (its pixels are the features).
mask_img = nib.Nifti1Image(np.ones(image.shape + (1,), dtype=np.uint8), np.eye(4))

# %%
# Fit both on the same graph and the same number of clusters. fastrena's
# first fit in a process compiles its kernels (or loads them from numba's
# cache); the timing below is of a second fit.

results = {}
for name, estimator in (("fastrena", ReNA), ("nilearn", NilearnReNA)):
    rena = estimator(mask_img, n_clusters=1024)
    rena.fit(X)
    start = time.perf_counter()
    rena.fit(X)
    seconds = time.perf_counter() - start
    compressed = rena.inverse_transform(rena.transform(X))[0].reshape(image.shape)
    error = np.linalg.norm(image - compressed) / np.linalg.norm(image - image.mean())
    results[name] = (compressed, error, seconds, rena.n_clusters_)
    print(f"{name:>8}: {rena.n_clusters_} clusters, error {error:.3f}, {seconds:.3f} s")

fig, axes = plt.subplots(1, 2, figsize=(8, 4))
for ax, (name, (compressed, error, seconds, k)) in zip(axes, results.items()):
    ax.imshow(compressed, cmap="gray")
    ax.set_title(f"{name}: {k} clusters\nerror {error:.3f}, {seconds * 1000:.0f} ms")
    ax.axis("off")
fig.tight_layout()
plt.show()
