"""
Choose the number of clusters with the report
=============================================

How many clusters? Fewer compress more and lose more of the signal. One
fit with ``compute_full_tree=True`` holds every scale, so the compression
error against K costs no further fit; ``generate_report`` draws that
curve beside the parcels' sizes, their homogeneity against size-matched
random parcels and the split-half reproducibility, in one self-contained
HTML page.
"""

import matplotlib.pyplot as plt
import numpy as np
from scipy.ndimage import gaussian_filter

from fastrena import ReNA
from fastrena.metrics import parcel_metrics
from fastrena.plotting import relative_error

# 40 smooth random volumes in a 24 x 24 x 18 box.
mask = np.zeros((26, 26, 20), dtype=bool)
mask[1:-1, 1:-1, 1:-1] = True
rng = np.random.default_rng(0)
X = np.stack([gaussian_filter(rng.standard_normal(mask.shape), 2)[mask] for _ in range(40)])

rena = ReNA(mask, n_clusters=1000, compute_full_tree=True).fit(X)

# %%
# The error of every scale, read from the one merge tree.

ks = [25, 50, 100, 200, 400, 800, 1600, 3200]
errors = [relative_error(X, rena.inverse_transform(rena.transform(X, n_clusters=k)))
          for k in ks]
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.semilogx(ks, errors, "o-")
ax.set_xlabel("K (clusters)")
ax.set_ylabel("relative compression error")
fig.tight_layout()

# %%
# Per-parcel metrics of the chosen scale as a table (pandas), and the
# report: ``report.save_as_html("report.html")`` writes it, a notebook
# shows it.

table = parcel_metrics(rena, X)
print(table[["n_features", "n_components", "homogeneity", "null_homogeneity"]].describe())
report = rena.generate_report(X, title="1,000 ReNA parcels")
print(len(report.get_html()), "characters of self-contained HTML")
plt.show()
