"""``linkage="ward"`` fit time over the default linkage's (issue 13, point 3:
target <= 3x at 2 mm x 100 samples).

    python benchmarks/ward_speed.py                 # ~2 min on 2 cores
    python benchmarks/ward_speed.py --repeats 7
    python benchmarks/ward_speed.py --resolution 1 --dtypes float32   # 1 mm, ~6 min

nilearn's MNI152 2 mm brain mask (235,375 voxels; ``--resolution 1``: the
1 mm mask, 1,882,989 voxels), 100 samples of smooth noise (sigma = 2
voxels), float32 and float64, K = N/100, N/50 and N/20:
``ReNA(mask, n_clusters=K, linkage=...)`` for both linkages, and the
``"ward"`` fit without its boundary refinement (``max_refine_iter=0``:
the merges alone, shown without a target), the runs alternated round
after round after one warm-up each (median of ``--repeats`` rounds).
Prints one table and writes
``results/ward_speed.json`` (``ward_speed_1mm.json`` at 1 mm).
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

TARGET = 3.0
FRACTIONS = (0.01, 0.02, 0.05)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5,
                        help="alternated rounds per comparison (default: 5)")
    parser.add_argument("--resolution", type=int, choices=(1, 2), default=2,
                        help="the MNI152 mask's resolution in mm (default: 2)")
    parser.add_argument("--dtypes", default="float32,float64",
                        help="comma-separated dtypes of X (default: float32,float64)")
    parser.add_argument("--out", default=str(HERE / "results"),
                        help="folder for ward_speed.json (default: benchmarks/results)")
    args = parser.parse_args(argv)
    from fastrena import ReNA

    load_before = warn_if_busy()
    start = time.perf_counter()
    mask_img, mask = mni_mask(args.resolution)
    rows = []
    for dtype in [np.dtype(name) for name in args.dtypes.split(",")]:
        X = smooth_signals(mask, 100, dtype=dtype)
        for fraction in FRACTIONS:
            k = int(round(fraction * X.shape[1]))

            def fit(linkage, k=k, X=X, **kwargs):
                return lambda: ReNA(mask_img, n_clusters=k, linkage=linkage, **kwargs).fit(X)

            funcs = {"default": fit("nilearn"), "ward": fit("ward"),
                     "unrefined": fit("ward", max_refine_iter=0)}
            for func in funcs.values():
                func()
            runs = alternate(funcs, args.repeats)
            ratio = runs["ward"]["median"] / runs["default"]["median"]
            unrefined = runs["unrefined"]["median"] / runs["default"]["median"]
            rows.append({"dtype": np.dtype(dtype).name, "K": k, "ratio": ratio,
                         "unrefined_ratio": unrefined, "target": TARGET, "runs": runs})
            print(f"{np.dtype(dtype).name} K={k}: ward {runs['ward']['median']:.3f} s / "
                  f"default {runs['default']['median']:.3f} s = {ratio:.2f} "
                  f"(unrefined {runs['unrefined']['median']:.3f} s: {unrefined:.2f})", flush=True)
    print()
    print("| dtype | K | ward / default fit time | target | status | ward unrefined / default |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        status = "PASS" if row["ratio"] <= TARGET else "FAIL"
        print(f"| {row['dtype']} | {row['K']} | {row['ratio']:.2f} | <= {TARGET:g} | {status} "
              f"| {row['unrefined_ratio']:.2f} |")
    name = "ward_speed.json" if args.resolution == 2 else f"ward_speed_{args.resolution}mm.json"
    save_result(args.out, name, start, load_before, repeats=args.repeats,
                resolution_mm=args.resolution, rows=rows)


if __name__ == "__main__":
    main()
