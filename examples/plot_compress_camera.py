"""
Compress a 2-D image
====================

ReNA groups neighbouring pixels of similar value; replacing each pixel by
its cluster's mean compresses the image with few visible losses. The pixel
grid is the graph: a 2-D boolean mask gives its 4-connected lattice, and
one sample (the image itself) is enough to fit.
"""

import matplotlib.pyplot as plt
import numpy as np
from skimage import data
from skimage.transform import downscale_local_mean

from fastrena import ReNA

# scikit-image's camera man, bundled with it; halved to 256 x 256 pixels.
image = downscale_local_mean(data.camera().astype(np.float64), (2, 2))
X = image.reshape(1, -1)
mask = np.ones(image.shape, dtype=bool)

# %%
# Fit at three numbers of clusters and reconstruct the image from the
# cluster means (``transform`` then ``inverse_transform``).

fig, axes = plt.subplots(1, 4, figsize=(12, 3.4))
axes[0].imshow(image, cmap="gray")
axes[0].set_title(f"original: {image.size} pixels")
for ax, n_clusters in zip(axes[1:], (256, 1024, 4096)):
    rena = ReNA(mask, n_clusters=n_clusters).fit(X)
    compressed = rena.inverse_transform(rena.transform(X)).reshape(image.shape)
    error = np.linalg.norm(image - compressed) / np.linalg.norm(image - image.mean())
    ax.imshow(compressed, cmap="gray")
    ax.set_title(f"{rena.n_clusters_} clusters: error {error:.2f}")
for ax in axes:
    ax.axis("off")
fig.tight_layout()
plt.show()
