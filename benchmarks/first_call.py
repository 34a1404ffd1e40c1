"""The first call (issue 18, point 4): compilation in a fresh environment,
a warm start, and the command line's start.

    python benchmarks/first_call.py               # ~3 min on 2 cores
    python benchmarks/first_call.py --repeats 5

Every figure is measured in a fresh Python process (median of
``--repeats``), with ``NUMBA_CACHE_DIR`` pointed at a folder of this run:

* **cold compile**: an empty cache folder each time. The process imports
  fastrena, then fits ``ReNA(mask_img, n_clusters=50)`` (default linkage) on
  a float64 X, then on a float32 X (20^3 mask, 50 samples); each fit's
  compile time is its first fit's time minus a second fit's. Target: float64
  and float32 together <= 3 s. Then the same for ``linkage="ward"`` (its
  rounds, greedy order and refinement), float64 alone in a fresh process
  with its own empty cache: no target, a figure the docs quote.
* **warm start**: the cache filled (by ``fastrena warm``); the time from
  the end of ``from fastrena import ReNA`` to the end of the first float64
  fit. Target <= 0.3 s.
* **fastrena --help** and **an argument error** (``-k 0``): the wall time
  of the command, process start included. Target <= 0.5 s each.

Prints one table and writes ``results/first_call.json``.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from case import save_result, warn_if_busy  # noqa: E402

# The fits timed in a fresh process; prints a JSON object.
FITS = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import nibabel as nib
from fastrena import ReNA
imported = time.perf_counter()
mask = np.ones((20, 20, 20), dtype=np.uint8)
img = nib.Nifti1Image(mask, np.eye(4))
rng = np.random.default_rng(0)
out = {"import": imported - t0}
linkage = sys.argv[2] if len(sys.argv) > 2 else "nilearn"
for dtype in sys.argv[1].split(","):
    X = rng.standard_normal((50, mask.size)).astype(dtype)
    times = []
    for _ in range(2):
        start = time.perf_counter()
        ReNA(img, n_clusters=50, linkage=linkage).fit(X)
        times.append(time.perf_counter() - start)
    out[dtype] = times
print(json.dumps(out))
"""

TARGETS = {"cold compile, float64 + float32 (s)": 3.0, "warm start to a fit's end (s)": 0.3,
           "fastrena --help (s)": 0.5, "fastrena argument error (s)": 0.5}


def run_fits(cache, dtypes, linkage="nilearn"):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    done = subprocess.run([sys.executable, "-c", FITS, dtypes, linkage], env=env, check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def wall(command, cache):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    start = time.perf_counter()
    subprocess.run(command, env=env, capture_output=True)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3,
                        help="fresh processes per figure (default: 3)")
    parser.add_argument("--out", default=str(HERE / "results"),
                        help="folder for first_call.json (default: benchmarks/results)")
    args = parser.parse_args(argv)
    load_before = warn_if_busy()
    start = time.perf_counter()
    fastrena = str(Path(sys.executable).with_name("fastrena"))
    runs = {name: [] for name in TARGETS}
    runs["cold compile, float64 (s)"] = []
    runs["cold compile, float32 (s)"] = []
    runs["cold compile, \"ward\", float64 (s)"] = []
    runs["import fastrena's estimator (s)"] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            cold = run_fits(Path(tmp) / f"cold{i}", "float64,float32")
            f64 = cold["float64"][0] - cold["float64"][1]
            f32 = cold["float32"][0] - cold["float32"][1]
            runs["cold compile, float64 (s)"].append(f64)
            runs["cold compile, float32 (s)"].append(f32)
            runs["cold compile, float64 + float32 (s)"].append(f64 + f32)
            ward = run_fits(Path(tmp) / f"ward{i}", "float64", "ward")["float64"]
            runs["cold compile, \"ward\", float64 (s)"].append(ward[0] - ward[1])
        warm_cache = Path(tmp) / "warm"
        subprocess.run([fastrena, "warm", "--quiet"], check=True,
                       env=dict(os.environ, NUMBA_CACHE_DIR=str(warm_cache)))
        for _ in range(args.repeats):
            warm = run_fits(warm_cache, "float64")
            runs["warm start to a fit's end (s)"].append(warm["float64"][0])
            runs["import fastrena's estimator (s)"].append(warm["import"])
            runs["fastrena --help (s)"].append(wall([fastrena, "--help"], warm_cache))
            runs["fastrena argument error (s)"].append(
                wall([fastrena, "parcellate", "in.nii.gz", "-k", "0", "-o", "out.nii.gz"],
                     warm_cache))
    rows = []
    print("| figure | median | runs | target | status |")
    print("|---|---|---|---|---|")
    for name, values in runs.items():
        median = statistics.median(values)
        target = TARGETS.get(name)
        status = "" if target is None else ("PASS" if median <= target else "FAIL")
        rows.append({"figure": name, "median": median, "runs": values, "target": target})
        shown = ", ".join(f"{v:.2f}" for v in values)
        print(f"| {name} | {median:.2f} | {shown} | "
              f"{'' if target is None else f'<= {target:g}'} | {status} |")
    save_result(args.out, "first_call.json", start, load_before,
                repeats=args.repeats, rows=rows)


if __name__ == "__main__":
    main()
