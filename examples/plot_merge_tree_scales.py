"""
Every scale from one merge tree
===============================

``compute_full_tree=True`` keeps every merge of one fit: any number of
clusters is then read from it (``labels_at``, ``transform(X,
n_clusters=...)``), nested in the coarser ones, without fitting again.
With the default linkage, ``labels_at(k)`` is exactly the ``labels_`` of
a fit to ``k``.
"""

import matplotlib.pyplot as plt
import numpy as np
from skimage import data
from skimage.transform import downscale_local_mean

from fastrena import ReNA

image = downscale_local_mean(data.camera().astype(np.float64), (4, 4))
X = image.reshape(1, -1)
mask = np.ones(image.shape, dtype=bool)

rena = ReNA(mask, n_clusters=2048, compute_full_tree=True).fit(X)

# %%
# Read four scales from the one fit; check one of them against a fit of
# its own.

scales = (32, 128, 512, 2048)
fig, axes = plt.subplots(1, len(scales), figsize=(12, 3.4))
for ax, k in zip(axes, scales):
    X_k = rena.transform(X, n_clusters=k)
    ax.imshow(rena.inverse_transform(X_k).reshape(image.shape), cmap="gray")
    ax.set_title(f"{k} clusters")
    ax.axis("off")
fig.tight_layout()

own_fit = ReNA(mask, n_clusters=128).fit(X)
print("labels_at(128) is a fit to 128:", np.array_equal(rena.labels_at(128), own_fit.labels_))

# %%
# Each scale is nested in the coarser ones: every cluster at 512 lies in
# exactly one cluster at 128.

pairs = np.unique(np.column_stack([rena.labels_at(512), rena.labels_at(128)]), axis=0)
print("clusters at 512:", pairs.shape[0], "each in one of 128:",
      np.unique(pairs[:, 0]).size == pairs.shape[0])
plt.show()
