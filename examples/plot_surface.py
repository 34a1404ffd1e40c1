"""
Parcellate a cortical surface
=============================

On a surface the graph is the mesh: each triangle's edges join its
vertices, and the two hemispheres are never joined. nilearn bundles the
fsaverage5 meshes and three maps on them (sulcal depth, curvature,
thickness); a ``SurfaceMasker`` gives both hemispheres' vertices as
features and serves as ReNA's mask.
"""

import matplotlib.pyplot as plt
import numpy as np
from nilearn.datasets import load_fsaverage, load_fsaverage_data
from nilearn.maskers import SurfaceMasker
from nilearn.plotting import plot_surf_roi

from fastrena import ReNA

maps = [load_fsaverage_data(mesh_type="pial", data_type=kind)
        for kind in ("sulcal", "curvature", "thickness")]
# standardize=None: the maps as they are (nilearn 0.14 warns that its
# default, False, is deprecated).
masker = SurfaceMasker(standardize=None).fit(maps[0])
# One row per map: X is (n_samples, n_features) = (3, 20484).
X = np.vstack([masker.transform(m) for m in maps])
X = (X - X.mean(axis=1, keepdims=True)) / X.std(axis=1, keepdims=True)

rena = ReNA(masker, n_clusters=500).fit(X)
print(rena.n_clusters_, "parcels on", X.shape[1], "vertices")

# %%
# The left hemisphere's parcels on its inflated mesh (the left
# hemisphere's vertices come first in the masker's order).

inflated = load_fsaverage("fsaverage5")["inflated"]
n_left = inflated.parts["left"].n_vertices
plot_surf_roi(inflated.parts["left"], rena.labels_[:n_left] + 1, hemi="left",
              view="lateral", cmap="tab20", title="500 ReNA parcels (left)")
plt.show()
