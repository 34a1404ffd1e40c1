"""
Parcellate grayordinates (CIFTI-2)
==================================

Grayordinates are HCP's features: the cortex's vertices on both
hemispheres' meshes and the voxels of subcortical structures, in one
CIFTI-2 file. ReNA joins vertices along the mesh's triangles and voxels
along the grid, never one structure to another. Here we make a small
dense CIFTI-2 image in memory from nilearn's bundled fsaverage5 maps and
MNI152 template (two spheres standing for the thalami), then parcellate it.
"""

import matplotlib.pyplot as plt
import numpy as np
from nibabel import cifti2
from nilearn.datasets import (load_fsaverage, load_fsaverage_data,
                              load_mni152_brain_mask, load_mni152_template)
from nilearn.plotting import plot_surf_roi
from scipy.ndimage import gaussian_filter

from fastrena import ReNA
from fastrena.io import grayordinate_layout

pial = load_fsaverage("fsaverage5")["pial"]
n_vertices = pial.parts["left"].n_vertices
mask_img = load_mni152_brain_mask(resolution=2)
template = load_mni152_template(resolution=2)

# Two 10 mm spheres of brain voxels at the thalami's MNI coordinates.
ijk = np.indices(mask_img.shape).reshape(3, -1).T
xyz = ijk @ mask_img.affine[:3, :3].T + mask_img.affine[:3, 3]
in_brain = mask_img.get_fdata().ravel() > 0
spheres = {name: (in_brain & (np.linalg.norm(xyz - centre, axis=1) < 10)).reshape(mask_img.shape)
           for name, centre in (("thalamus_left", (-12, -18, 8)),
                                ("thalamus_right", (12, -18, 8)))}
axis = (cifti2.BrainModelAxis.from_surface(np.arange(n_vertices), n_vertices, "CortexLeft")
        + cifti2.BrainModelAxis.from_surface(np.arange(n_vertices), n_vertices, "CortexRight")
        + cifti2.BrainModelAxis.from_mask(spheres["thalamus_left"], "thalamus_left",
                                          mask_img.affine)
        + cifti2.BrainModelAxis.from_mask(spheres["thalamus_right"], "thalamus_right",
                                          mask_img.affine))

# %%
# Three samples: the cortical maps (z-scored) beside smoothed template
# intensities in the spheres, in the file's column order (left cortex,
# right cortex, then the voxels in the order of each sphere's mask).

rng = np.random.default_rng(0)
rows = []
for kind in ("sulcal", "curvature", "thickness"):
    surface = load_fsaverage_data(mesh_type="pial", data_type=kind)
    cortex = np.concatenate([surface.data.parts["left"], surface.data.parts["right"]])
    volume = gaussian_filter(template.get_fdata() + 20 * rng.standard_normal(template.shape), 2)
    voxels = np.concatenate([volume[spheres[name]] for name in ("thalamus_left",
                                                                "thalamus_right")])
    row = np.concatenate([cortex, voxels])
    rows.append((row - row.mean()) / row.std())
X = np.stack(rows)
dense = cifti2.Cifti2Image(X.astype(np.float32),
                           header=(cifti2.SeriesAxis(0, 1, X.shape[0]), axis))

layout = grayordinate_layout(dense, pial)  # the meshes of its surfaces
rena = ReNA(layout, n_clusters=800).fit(X)
print(X.shape[1], "grayordinates,", rena.n_clusters_, "parcels")
for name, part in (("left cortex", slice(0, n_vertices)),
                   ("right cortex", slice(n_vertices, 2 * n_vertices)),
                   ("thalami", slice(2 * n_vertices, None))):
    print(f"{name}: {np.unique(rena.labels_[part]).size} parcels")

# %%
# The left cortex's parcels; ``fastrena.io.labels_to_img(rena)`` would give
# the ``.dlabel.nii`` file, ``fastrena parcellate`` does it all from files.

plot_surf_roi(load_fsaverage("fsaverage5")["inflated"].parts["left"],
              rena.labels_[:n_vertices] + 1, hemi="left", view="lateral", cmap="tab20",
              title="ReNA parcels on grayordinates (left cortex)")
plt.show()
