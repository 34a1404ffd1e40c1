"""The merge tree (issue 17, point 6): every scale from one fit.

    python benchmarks/tree_speed.py              # ~3 min on 2 cores (Ward's tree: ~1 min)
    python benchmarks/tree_speed.py --repeats 7

nilearn's MNI152 2 mm brain mask (235,375 voxels), 100 samples of smooth
noise (sigma = 2 voxels), float32, default linkage:

* ``ReNA(mask, n_clusters=100, compute_full_tree=True)`` over
  ``ReNA(mask, n_clusters=100)`` (fit times, alternated, median of
  ``--repeats``): target <= 1.3;
* scikit-learn's ``FeatureAgglomeration(n_clusters=100, linkage="ward",
  compute_full_tree=True)`` with the mask's grid connectivity (built
  outside the timing; one run) over the full-tree fit: target >= 50;
* 20 scales (K = 100 to 20,000, log-spaced): ``labels_at`` of one tree
  (fit included) against 20 separate fits, and whether each scale equals
  its own fit.

Prints one table and writes ``results/tree_speed.json``.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from case import alternate, save_result, warn_if_busy  # noqa: E402
from data import mni_mask, smooth_signals  # noqa: E402

SCALES = np.unique(np.round(np.geomspace(100, 20_000, 20)).astype(int))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5,
                        help="alternated rounds per comparison (default: 5)")
    parser.add_argument("--skip-ward", action="store_true",
                        help="do not run scikit-learn's Ward tree (about a minute)")
    parser.add_argument("--out", default=str(HERE / "results"),
                        help="folder for tree_speed.json (default: benchmarks/results)")
    args = parser.parse_args(argv)
    from sklearn.cluster import FeatureAgglomeration
    from sklearn.feature_extraction.image import grid_to_graph

    from fastrena import ReNA

    load_before = warn_if_busy()
    start = time.perf_counter()
    mask_img, mask = mni_mask(2)
    X = smooth_signals(mask, 100, dtype=np.float32)
    funcs = {
        "fit K=100": lambda: ReNA(mask_img, n_clusters=100).fit(X),
        "full tree": lambda: ReNA(mask_img, n_clusters=100, compute_full_tree=True).fit(X),
    }
    for func in funcs.values():
        func()
    runs = alternate(funcs, args.repeats)
    tree_s, fit_s = runs["full tree"]["median"], runs["fit K=100"]["median"]
    rows = [{"figure": "full tree / fit to K=100", "value": tree_s / fit_s, "target": "<= 1.3",
             "pass": tree_s / fit_s <= 1.3, "runs": runs}]
    print(f"full tree {tree_s:.3f} s, fit K=100 {fit_s:.3f} s", flush=True)

    if not args.skip_ward:
        connectivity = grid_to_graph(*mask.shape, mask=mask)
        ward_start = time.perf_counter()
        FeatureAgglomeration(n_clusters=100, linkage="ward", connectivity=connectivity,
                             compute_full_tree=True).fit(X)
        ward_s = time.perf_counter() - ward_start
        rows.append({"figure": "scikit-learn Ward full tree / fastrena full tree",
                     "value": ward_s / tree_s, "target": ">= 50", "pass": ward_s / tree_s >= 50,
                     "ward_seconds": ward_s})
        print(f"scikit-learn Ward's full tree {ward_s:.1f} s", flush=True)

    tree_start = time.perf_counter()
    rena = ReNA(mask_img, n_clusters=100, compute_full_tree=True, n_iter=100).fit(X)
    from_tree = [rena.labels_at(int(k)) for k in SCALES]
    one_tree_s = time.perf_counter() - tree_start
    separate_start = time.perf_counter()
    separate = [ReNA(mask_img, n_clusters=int(k), n_iter=100).fit(X).labels_ for k in SCALES]
    separate_s = time.perf_counter() - separate_start
    equal = sum(bool(np.array_equal(a, b)) for a, b in zip(from_tree, separate))
    rows.append({"figure": f"{len(SCALES)} scales: separate fits / one tree",
                 "value": separate_s / one_tree_s, "target": "", "pass": None,
                 "one_tree_seconds": one_tree_s, "separate_seconds": separate_s,
                 "scales_equal_to_their_fit": equal, "scales": SCALES.tolist()})
    print(f"{len(SCALES)} scales: one tree {one_tree_s:.2f} s, separate fits "
          f"{separate_s:.2f} s; {equal}/{len(SCALES)} equal to their own fit", flush=True)

    print()
    print("| figure | measured | target | status |")
    print("|---|---|---|---|")
    for row in rows:
        status = "" if row["pass"] is None else ("PASS" if row["pass"] else "FAIL")
        print(f"| {row['figure']} | {row['value']:.2f} | {row['target']} | {status} |")
    save_result(args.out, "tree_speed.json", start, load_before,
                repeats=args.repeats, rows=rows)


if __name__ == "__main__":
    main()
