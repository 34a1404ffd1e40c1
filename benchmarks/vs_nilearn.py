"""fastrena vs nilearn ReNA: fit and transform time ratios on one case.

    python benchmarks/vs_nilearn.py [--resolution 2] [--samples 100] [--clusters 5000] [--repeats 3]

Both estimators run on the same data in the same process, alternated, after
a warm-up; each figure is the median of ``--repeats`` runs. Prints ratios
(nilearn time / fastrena time), not absolute times, as the figures to quote.
"""

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data import mni_mask, smooth_signals  # noqa: E402


def timed(func):
    start = time.perf_counter()
    out = func()
    return time.perf_counter() - start, out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=2)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--clusters", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from nilearn.regions import ReNA as NilearnReNA
    from sklearn.metrics import adjusted_rand_score

    from fastrena import ReNA

    mask_img, mask = mni_mask(args.resolution)
    X = smooth_signals(mask, args.samples)
    print(f"case: MNI {args.resolution} mm, N={X.shape[1]}, S={X.shape[0]}, "
          f"K={args.clusters}, float64 ({X.nbytes / 1e9:.2f} GB)")
    ReNA(mask_img, n_clusters=args.clusters).fit(X[:2]).transform(X[:2])  # JIT warm-up

    times = {key: [] for key in ("fr_fit", "nl_fit", "fr_tr", "nl_tr", "pass")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(args.repeats):
            t, fr = timed(lambda: ReNA(mask_img, n_clusters=args.clusters).fit(X))
            times["fr_fit"].append(t)
            t, nl = timed(lambda: NilearnReNA(mask_img, n_clusters=args.clusters).fit(X))
            times["nl_fit"].append(t)
            times["fr_tr"].append(timed(lambda: fr.transform(X))[0])
            times["nl_tr"].append(timed(lambda: nl.transform(X))[0])
            times["pass"].append(timed(lambda: X.sum(axis=0))[0])
    med = {key: statistics.median(val) for key, val in times.items()}
    err = [np.linalg.norm(X - e.inverse_transform(e.transform(X))) / np.linalg.norm(X)
           for e in (fr, nl)]
    print(f"fit:       nilearn / fastrena = {med['nl_fit'] / med['fr_fit']:7.1f}x"
          f"   (fastrena fit / one pass = {med['fr_fit'] / med['pass']:.1f})")
    print(f"transform: nilearn / fastrena = {med['nl_tr'] / med['fr_tr']:7.1f}x"
          f"   (fastrena transform / one pass = {med['fr_tr'] / med['pass']:.1f})")
    print(f"labels: ARI(fastrena, nilearn) = {adjusted_rand_score(fr.labels_, nl.labels_):.4f}; "
          f"relative error ratio fastrena / nilearn = {err[0] / err[1]:.4f}; "
          f"n_clusters_ {fr.n_clusters_} vs {nl.n_clusters_}")


if __name__ == "__main__":
    main()
