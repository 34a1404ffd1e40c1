"""
Parcellate a brain volume
=========================

nilearn's MNI152 template at 2 mm is bundled with it (no download). We
make a few smooth "subjects" from it, parcellate the brain mask's voxels
into 1,000 clusters with fastrena's ReNA and show the parcels on the
template.
"""

import matplotlib.pyplot as plt
import numpy as np
from nilearn import datasets, image, plotting
from scipy.ndimage import gaussian_filter

from fastrena import ReNA

template = datasets.load_mni152_template(resolution=2)
mask_img = datasets.load_mni152_brain_mask(resolution=2)
mask = mask_img.get_fdata() > 0

# %%
# Eight samples: the template plus smooth noise, as stand-ins for scans.

rng = np.random.default_rng(0)
anatomy = template.get_fdata()
X = np.stack([gaussian_filter(anatomy + 40 * rng.standard_normal(anatomy.shape), 2)[mask]
              for _ in range(8)])
print("X:", X.shape, "(samples, voxels)")

rena = ReNA(mask_img, n_clusters=1000).fit(X)
print(rena.n_clusters_, "parcels")

# %%
# The labels, back in the template's space (numbered from 1, 0 outside
# the mask).

labels = np.zeros(mask.shape, dtype=np.int32)
labels[mask] = rena.labels_ + 1
labels_img = image.new_img_like(mask_img, labels)
plotting.plot_roi(labels_img, bg_img=template, cmap="tab20", colorbar=False,
                  title="1,000 ReNA parcels")
plt.show()
