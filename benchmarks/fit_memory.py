"""Memory of an in-memory fit on top of X, for each linkage (issue 27, item 5).

    python benchmarks/fit_memory.py                  # ~2 min on 2 cores, ~2 GB of RAM
    python benchmarks/fit_memory.py --samples 100 --linkages ward

Each linkage in a fresh process: fastrena is warmed up on 2 rows (the
kernels' memory is in the baseline), X is drawn straight into a new float32
array (white noise, ``--samples`` x the first ``--features`` voxels of
nilearn's MNI152 2 mm brain mask in C order; no temporaries), the resident
set size is noted, one ``ReNA(mask, n_clusters=K, linkage=...).fit(X)``
runs, and its extra memory is the process's peak RSS (``ru_maxrss``) minus
that RSS, in MB and as a fraction of ``X.nbytes``. Peak RSS, not
tracemalloc: the kernels' arrays are allocated by numba, which tracemalloc
does not see. Prints a table; writes ``results/fit_memory.json``.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from case import peak_rss_mb, rss_mb  # noqa: E402
from data import mni_mask  # noqa: E402

MB = 1e6


def cut_mask(n_features):
    """The first ``n_features`` voxels of the MNI152 2 mm brain mask (C order)."""
    import nibabel

    mask_img, mask = mni_mask(2)
    flat = mask.ravel().copy()
    inside = np.flatnonzero(flat)
    if n_features > inside.shape[0]:
        raise SystemExit(f"--features: at most {inside.shape[0]} voxels in the mask")
    flat[inside[n_features:]] = False
    cut = flat.reshape(mask.shape)
    return nibabel.Nifti1Image(cut.astype(np.uint8), mask_img.affine), cut


def case(args):
    """One linkage's fit, in this (fresh) process."""
    from fastrena import ReNA

    mask_img, mask = cut_mask(args.features)
    rng = np.random.default_rng(0)
    def fit(X):
        return ReNA(mask_img, n_clusters=args.clusters, linkage=args.case).fit(X)

    fit(rng.standard_normal((2, args.features), dtype=np.float32))
    X = rng.standard_normal((args.samples, args.features), dtype=np.float32)
    rss_loaded, peak_before = rss_mb(), peak_rss_mb()
    start = time.perf_counter()
    rena = fit(X)
    seconds = time.perf_counter() - start
    peak = peak_rss_mb()
    return {"linkage": args.case, "S": args.samples, "N": args.features, "K": args.clusters,
            "X_MB": X.nbytes / MB, "rss_loaded_MB": rss_loaded,
            "peak_before_fit_MB": peak_before,
            "peak_rss_MB": peak, "extra_MB": peak - rss_loaded,
            "extra_fraction_of_X": (peak - rss_loaded) / (X.nbytes / MB),
            "peak_masked": peak <= peak_before, "fit_seconds": seconds,
            "n_clusters_": int(rena.n_clusters_)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", help="run one linkage in this process")
    parser.add_argument("--samples", type=int, default=600)
    parser.add_argument("--features", type=int, default=188_914)
    parser.add_argument("--clusters", type=int, default=2000)
    parser.add_argument("--linkages", default="nilearn,ward")
    parser.add_argument("--out", default=str(HERE / "results"))
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(case(args)))
        return
    results = []
    for linkage in args.linkages.split(","):
        load = os.getloadavg()[0]
        done = subprocess.run([sys.executable, __file__, "--case", linkage,
                               "--samples", str(args.samples), "--features", str(args.features),
                               "--clusters", str(args.clusters)],
                              capture_output=True, text=True, check=True)
        results.append({**json.loads(done.stdout.strip().splitlines()[-1]),
                        "load_average_1min": load})
    print("| linkage | X | extra memory of the fit (peak RSS - RSS with X) | fit |")
    print("|---|---|---|---|")
    for r in results:
        bound = "<= " if r["peak_masked"] else ""
        print(f"| {r['linkage']} | {r['S']} x {r['N']} float32, {r['X_MB']:.0f} MB | "
              f"{bound}{r['extra_MB']:.0f} MB = {bound}{r['extra_fraction_of_X']:.2f} x X | "
              f"{r['fit_seconds']:.1f} s, K={r['n_clusters_']} |")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "fit_memory.json").write_text(json.dumps(
        {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "results": results}, indent=1))


if __name__ == "__main__":
    main()
