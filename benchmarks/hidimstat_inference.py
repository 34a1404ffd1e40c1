"""Clustered inference with hidimstat (issue 18, point 3): fastrena's ReNA
in place of scikit-learn's Ward in ``hidimstat.ClusterImportance``.

    python benchmarks/hidimstat_inference.py            # ~3 min on 2 cores
    python benchmarks/hidimstat_inference.py --seeds 3

hidimstat's own spatial simulation,
``multivariate_simulation_spatial(n_samples=200, shape=(20, 20, 20),
roi_size=4, signal_noise_ratio=10, smooth_X=1, seed=s)`` for s = 0..9:
five cubic regions of 4^3 voxels (320 of the 8,000) carry weights +-1.
X and y are centred, as in hidimstat's tests. Each clustering (K = 400,
6-connected grid graph) goes into ``ClusterImportance(vim=
DesparsifiedLasso(estimator=LassoCV(max_iter=1000, tol=1e-4, eps=0.01,
fit_intercept=False)), clustering=...)``; ``fit_importance`` then
``fdr_selection(fdr=0.1, two_tailed_test=True)`` select voxels.

``ReNA(linkage="ward")`` refines its clusters' boundaries after the merges
by default (issue 26); ``max_refine_iter=0`` is the tree's cut alone, and
``ReNA(max_refine_iter=3)`` the default linkage refined.

Figures per clustering, averaged over the seeds:

* **FDP beyond the tolerance**: selected voxels farther than 3 voxels
  (in each axis) from the true regions, over the selected voxels
  (hidimstat's tests relax the false-discovery proportion by such a
  spatial tolerance, 3 voxels; the nominal FDR is 0.1);
* **seeds with FDP > 0.1**;
* **power**: true-region voxels selected, over the 320;
* **agreement with Ward**: the adjusted Rand index of the clustering's
  partition against scikit-learn Ward's (1 = the same partition);
* **clustering fit time**: the clustering's ``fit(X)`` alone, the methods
  alternated round after round on seed 0's data (median of ``--repeats``).

Prints one table and writes ``results/hidimstat.json``.
"""

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from case import alternate, save_result, warn_if_busy  # noqa: E402

SHAPE = (20, 20, 20)
N_SAMPLES = 200
N_CLUSTERS = 400
ROI_SIZE = 4
SNR = 10.0
SMOOTH = 1.0
TOLERANCE = 3
FDR = 0.1


def clusterings(connectivity):
    """The clusterings compared: name -> unfitted estimator."""
    from sklearn.cluster import FeatureAgglomeration

    from fastrena import ReNA

    return {
        "scikit-learn Ward": FeatureAgglomeration(n_clusters=N_CLUSTERS,
                                                  connectivity=connectivity, linkage="ward"),
        # Refined after its merges by default (issue 26), and not.
        'fastrena ReNA(linkage="ward")': ReNA(n_clusters=N_CLUSTERS,
                                               connectivity=connectivity, linkage="ward"),
        'fastrena ReNA(linkage="ward", max_refine_iter=0)': ReNA(
            n_clusters=N_CLUSTERS, connectivity=connectivity, linkage="ward",
            max_refine_iter=0),
        "fastrena ReNA() (default)": ReNA(n_clusters=N_CLUSTERS, connectivity=connectivity),
        "fastrena ReNA(max_refine_iter=3)": ReNA(n_clusters=N_CLUSTERS,
                                                 connectivity=connectivity, max_refine_iter=3),
        "fastrena ReNA(), no graph: a 1-D chain": ReNA(n_clusters=N_CLUSTERS),
    }


def simulate(seed):
    from hidimstat._utils.scenario import multivariate_simulation_spatial

    X, y, beta, _ = multivariate_simulation_spatial(N_SAMPLES, SHAPE, roi_size=ROI_SIZE,
                                                    signal_noise_ratio=SNR, smooth_X=SMOOTH,
                                                    seed=seed)
    return X - X.mean(axis=0), y - y.mean(), beta != 0


def selection(clustering, X, y):
    from hidimstat import ClusterImportance, DesparsifiedLasso
    from sklearn.base import clone
    from sklearn.linear_model import LassoCV

    lasso = LassoCV(max_iter=1000, tol=1e-4, eps=0.01, fit_intercept=False)
    inference = ClusterImportance(vim=DesparsifiedLasso(estimator=lasso),
                                  clustering=clone(clustering))
    with warnings.catch_warnings():
        # LassoCV's convergence warnings, the same for every clustering.
        warnings.simplefilter("ignore")
        inference.fit_importance(X, y)
    selected = inference.fdr_selection(fdr=FDR, two_tailed_test=True).astype(bool)
    return selected, inference.clustering_.labels_


def relaxed_fdp_power(selected, support):
    from scipy import ndimage

    cube = np.ones((2 * TOLERANCE + 1,) * 3, dtype=bool)
    near = ndimage.binary_dilation(support.reshape(SHAPE), cube).ravel()
    n_selected = int(selected.sum())
    fdp = float((selected & ~near).sum() / n_selected) if n_selected else 0.0
    return fdp, float((selected & support).sum() / support.sum())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="simulations (default: 10)")
    parser.add_argument("--repeats", type=int, default=7,
                        help="alternated rounds for the fit times (default: 7)")
    parser.add_argument("--out", default=str(HERE / "results"),
                        help="folder for hidimstat.json (default: benchmarks/results)")
    args = parser.parse_args(argv)
    from sklearn.feature_extraction.image import grid_to_graph
    from sklearn.metrics import adjusted_rand_score

    load_before = warn_if_busy()
    start = time.perf_counter()
    methods = clusterings(grid_to_graph(*SHAPE))
    per_seed = {name: [] for name in methods}
    for seed in range(args.seeds):
        X, y, support = simulate(seed)
        ward_labels = None
        for name, clustering in methods.items():
            selected, labels = selection(clustering, X, y)
            ward_labels = labels if ward_labels is None else ward_labels
            fdp, power = relaxed_fdp_power(selected, support)
            per_seed[name].append({"seed": seed, "fdp": fdp, "power": power,
                                   "ari_to_ward": adjusted_rand_score(ward_labels, labels)})
        print(f"seed {seed}: " + ", ".join(
            f"{name.split(' ')[0]} fdp {runs[-1]['fdp']:.3f} power {runs[-1]['power']:.3f}"
            for name, runs in per_seed.items()), flush=True)
    X, _, _ = simulate(0)
    for clustering in methods.values():  # numba's first calls
        clustering.fit(X)
    times = alternate({name: (lambda c=c: c.fit(X)) for name, c in methods.items()},
                      args.repeats)
    ward_time = times["scikit-learn Ward"]["median"]
    rows = []
    print()
    print(f"| clustering (K = {N_CLUSTERS}) | FDP beyond {TOLERANCE} voxels | "
          f"seeds with FDP > {FDR:g} | power | partition vs Ward's (ARI) | clustering fit | "
          "Ward's time / this |")
    print("|---|---|---|---|---|---|---|")
    for name, runs in per_seed.items():
        fdp = statistics.mean(r["fdp"] for r in runs)
        over = sum(r["fdp"] > FDR for r in runs)
        power = statistics.mean(r["power"] for r in runs)
        seconds = times[name]["median"]
        ari = statistics.mean(r["ari_to_ward"] for r in runs)
        rows.append({"clustering": name, "mean_fdp": fdp, "seeds_fdp_over": over,
                     "mean_power": power, "mean_ari_to_ward": ari, "fit_seconds": seconds,
                     "runs": runs, "fit_runs": times[name]})
        print(f"| {name} | {fdp:.3f} | {over} / {len(runs)} | {power:.3f} | {ari:.3f} | "
              f"{1000 * seconds:.1f} ms | {ward_time / seconds:.0f}x |")
    save_result(args.out, "hidimstat.json", start, load_before,
                settings={"shape": SHAPE, "n_samples": N_SAMPLES, "n_clusters": N_CLUSTERS,
                          "roi_size": ROI_SIZE, "signal_noise_ratio": SNR,
                          "smooth_X": SMOOTH, "tolerance": TOLERANCE, "fdr": FDR,
                          "seeds": args.seeds},
                rows=rows)


if __name__ == "__main__":
    main()
