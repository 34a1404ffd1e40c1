"""
Clustered inference with hidimstat
==================================

hidimstat's clustered inference groups correlated features before
testing them; it takes any scikit-learn ``FeatureAgglomeration``, and
fastrena's ``ReNA`` is one. Give it the grid (a mask): a ``ReNA()``
without a graph clusters a 1-D chain of features. ``linkage="ward"``
gives Ward's partition, and so Ward's error control, many times faster.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from hidimstat import ClusterImportance, DesparsifiedLasso
from scipy.ndimage import gaussian_filter
from sklearn.linear_model import LassoCV

from fastrena import ReNA

# 100 subjects' smooth maps on a 16^3 grid; a score driven by one region.
rng = np.random.default_rng(0)
mask = np.ones((16, 16, 16), dtype=bool)
X = gaussian_filter(rng.standard_normal((100, 16, 16, 16)), sigma=(0, 1, 1, 1)).reshape(100, -1)
region = np.zeros((16, 16, 16), dtype=bool)
region[2:6, 2:6, 2:6] = True
y = X[:, region.ravel()].sum(axis=1) + rng.standard_normal(100)

inference = ClusterImportance(
    vim=DesparsifiedLasso(estimator=LassoCV(fit_intercept=False)),
    clustering=ReNA(mask, n_clusters=200, linkage="ward"))
with warnings.catch_warnings():
    # hidimstat 0.4's ClusterImportance hands X and y to DesparsifiedLasso's
    # importance(), which warns that it uses neither: hidimstat's own.
    warnings.filterwarnings("ignore", "[Xy] won't be used", UserWarning)
    inference.fit_importance(X - X.mean(axis=0), y - y.mean())
selected = inference.fdr_selection(fdr=0.1, two_tailed_test=True).reshape(mask.shape)
print("selected voxels:", int(selected.sum()), "of which in the region:",
      int(selected[region].sum()), "/", int(region.sum()))

# %%
# A slice through the region: the truth and the selection.

fig, axes = plt.subplots(1, 2, figsize=(6, 3))
for ax, (title, image) in zip(axes, (("true region", region), ("selected", selected))):
    ax.imshow(image[:, :, 3], cmap="gray_r", vmin=0, vmax=1)
    ax.set_title(title)
    ax.axis("off")
fig.tight_layout()
plt.show()
