"""The benchmark suite: every target of spec/benchmarks.md, measured in one run.

    python benchmarks/run.py --quick     # < 2 minutes, smaller masks, for every change
    python benchmarks/run.py --full      # the real sizes, 11-13 minutes

Generates the data sets once (``case.py prepare``), then runs every case in
its own fresh process (``case.py``), one at a time: the machine has 2 cores
and the big peers need ~8 GB, and a fresh process is what makes each peak
RSS mean something. Prints the targets table (measured value, target,
PASS/FAIL), writes ``results/results.json`` (every run of every case) and
``results/scaling.png``. Never asserts: a missed target is a FAIL row.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

#: Data sets generated up front: (resolution mm, samples, dtype, kind).
#: Scaling cases and smaller-S cases use the first rows of the S=400 sets.
#: Cases: name -> case.py arguments. Quick runs the same figures on 3-4 mm masks.
TIERS = {
    "quick": {
        "datasets": [(4, 400, "float64", "smooth"), (3, 400, "float64", "smooth")],
        "cases": {
            "fit_nilearn": "fit --peer nilearn --res 3 --samples 400 --clusters 5000 --inner 3",
            "fit_ward": "fit --peer ward --res 4 --samples 100 --clusters 5000 --inner 3",
            "transform": "transform --res 3 --samples 400 --clusters N/10 --inner 3",
            "memory": "memory --res 3 --samples 400 --clusters 5000",
            "threads": "threads --res 3 --samples 400 --clusters 5000 --repeats 5",
            "scaling_4mm": "scaling --res 4 --clusters N/10 --nilearn-max 200 --ward-max 50 --inner 3",
            "scaling_3mm": "scaling --res 3 --clusters N/10 --nilearn-max 100 --inner 3",
        },
    },
    "full": {
        "datasets": [(4, 400, "float64", "smooth"), (3, 400, "float64", "smooth"),
                     (2, 400, "float64", "smooth"), (1, 100, "float32", "smooth"),
                     (2, 4800, "float32", "mixed")],
        "cases": {
            "fit_nilearn": "fit --peer nilearn --res 2 --samples 400 --clusters 5000 --repeats 5 --inner 3",
            "fit_ward": "fit --peer ward --res 2 --samples 100 --clusters 5000 --repeats 5 --inner 3",
            "transform": "transform --res 2 --samples 400 --clusters N/10 --repeats 5 --inner 3",
            "memory": "memory --res 2 --samples 400 --clusters 5000",
            "fit_1mm": "fit-only --res 1 --samples 100 --dtype float32 --clusters 5000",
            "fit_4800": "fit-only --res 2 --samples 4800 --dtype float32 --kind mixed --clusters 5000",
            "threads": "threads --res 2 --samples 400 --clusters 5000 --repeats 7",
            "scaling_4mm": "scaling --res 4 --clusters N/10 --nilearn-max 400 --ward-max 400 --inner 3",
            "scaling_3mm": "scaling --res 3 --clusters N/10 --nilearn-max 400 --ward-max 100 --inner 3",
            "scaling_2mm": "scaling --res 2 --clusters N/10 --nilearn-max 200 --ward-max 100 --inner 3",
        },
    },
}


# ---------------------------------------------------------------- running cases
def run_case(name, arguments, cache):
    """One case in a fresh process; its JSON result, or {"error": ...}."""
    command = [sys.executable, str(HERE / "case.py"), *arguments.split(),
               "--cache", str(cache), "--json"]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        result = {"error": proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"],
                  "returncode": proc.returncode}
    else:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["load_average_1min"] = os.getloadavg()[0]  # this case's own load is ~1-2
    print(f"  [{seconds:6.1f} s, load {result['load_average_1min']:.1f}] {name}: "
          f"{'ERROR ' + str(result['error']) if 'error' in result else 'done'}",
          file=sys.stderr, flush=True)
    return result


def run_tier(tier, cache):
    """Prepare the tier's data sets, then run its cases one after another."""
    for res, samples, dtype, kind in tier["datasets"]:
        run_case(f"prepare {res} mm S={samples} {dtype} {kind}",
                 f"prepare --res {res} --samples {samples} --dtype {dtype} --kind {kind}", cache)
    return {name: run_case(name, arguments, cache) for name, arguments in tier["cases"].items()}


# ---------------------------------------------------------------- figures
def med(result, method):
    return result["seconds"][method]["median"]


def scaling_points(results):
    """Every (method, N, S, seconds) point of the tier's scaling cases."""
    return [p for name, r in results.items() if name.startswith("scaling") and "points" in r
            for p in r["points"]]


def scaling_slope(results):
    """Least-squares slope of log(fastrena fit time) against log(N x S)."""
    points = [p for p in scaling_points(results) if p["method"] == "fastrena"]
    if len(points) < 2:
        return None
    x = np.log([p["N"] * p["S"] for p in points])
    return float(np.polyfit(x, np.log([p["seconds"] for p in points]), 1)[0])


def at(result):
    """Where a figure was measured, e.g. "2 mm, S=400, K=5000, float64"."""
    return f"{result['res']} mm, S={result['S']}, K={result['K']}, {result['dtype']}"


def ratio_row(case, num, den, op, target):
    """A row whose figure is the ratio of two median times of one case."""
    def measure(results):
        r = results[case]
        value = med(r, num) / med(r, den)
        ok = value >= target if op == ">=" else value <= target
        return f"{value:.3g}", ok, at(r)
    return [case], f"{op} {target}", measure


def memory_row(results):
    r = results["memory"]
    limit = 0.5 * r["X_MB"] + 100
    bound = "<= " if r["peak_masked"] else ""
    text = (f"{bound}{r['extra_MB']:.0f} MB = {r['extra_fraction_of_X']:.2f} x X.nbytes "
            f"(X {r['X_MB']:.0f} MB, limit {limit:.0f} MB)")
    return text, r["extra_MB"] <= limit, at(r)


def big_fit_row(max_seconds, max_peak_gb=None):
    def measure(results, case):
        r = results[case]
        seconds, peak_gb = med(r, "fastrena"), r["peak_rss_MB"] / 1000
        ok = seconds <= max_seconds and (max_peak_gb is None or peak_gb <= max_peak_gb)
        return (f"{seconds:.2f} s, peak RSS {peak_gb:.1f} GB (X {r['X_MB'] / 1000:.2f} GB), "
                f"n_clusters_={r['n_clusters_']}"), ok, at(r)
    return measure


def slope_row(results):
    slope = scaling_slope(results)
    if slope is None:
        return "no scaling points", False, ""
    sizes = sorted({(p["res"], p["S"]) for p in scaling_points(results)})
    where = (f"{', '.join(sorted({f'{r} mm' for r, _ in sizes}))} x "
             f"S={','.join(str(s) for s in sorted({s for _, s in sizes}))}, K=N/10")
    return f"{slope:.2f}", slope <= 1.1, where


#: (figure, cases it needs, target text, measure(results) -> (text, ok, where)).
ROWS = [
    ("fit, nilearn time / fastrena time", *ratio_row("fit_nilearn", "nilearn", "fastrena", ">=", 30)),
    ("fit, Ward time / fastrena time", *ratio_row("fit_ward", "ward", "fastrena", ">=", 50)),
    ("fit time / one-pass time", *ratio_row("fit_nilearn", "fastrena", "one-pass", "<=", 10)),
    ("transform, nilearn time / fastrena time", *ratio_row("transform", "nilearn", "fastrena", ">=", 100)),
    ("transform time / one-pass time", *ratio_row("transform", "fastrena", "one-pass", "<=", 3)),
    ("fit peak RSS - RSS with X loaded", ["memory"], "<= 0.5 x X.nbytes + 100 MB", memory_row),
    ("1 mm, S=100, float32: fit", ["fit_1mm"], "completes, <= 30 s",
     lambda results: big_fit_row(30)(results, "fit_1mm")),
    ("2 mm, S=4800, float32: fit", ["fit_4800"], "completes in 24 GB, <= 60 s",
     lambda results: big_fit_row(60, 24)(results, "fit_4800")),
    ("threads: fit time on 2 threads / on 1", *ratio_row("threads", "2 threads", "1 thread", "<=", 0.65)),
    ("scaling: log-log slope of fit time vs N x S", ["scaling_4mm"], "<= 1.1", slope_row),
]


def table(results, tier_name):
    """The rows as dicts: figure, target, measured, at, status."""
    rows = []
    for figure, cases, target, measure in ROWS:
        row = {"figure": figure, "target": target, "measured": "", "at": ""}
        missing = [c for c in cases if c not in results]
        errors = [c for c in cases if "error" in results.get(c, {})]
        if missing:
            row["status"] = f"not measured in --{tier_name}"
        elif errors:
            row["status"], row["measured"] = "ERROR", str(results[errors[0]]["error"])
        else:
            row["measured"], ok, row["at"] = measure(results)
            row["status"] = "PASS" if ok else "FAIL"
        rows.append(row)
    return rows


def markdown(rows):
    lines = ["| figure | measured at | measured | target | status |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['figure']} | {r['at']} | {r['measured']} | {r['target']} | {r['status']} |"
              for r in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------- provenance
def provenance():
    """Versions and the fastrena commit (and whether src/ had local edits)."""
    def git(*args):
        out = subprocess.run(["git", "-C", str(HERE.parent), *args], capture_output=True, text=True)
        return out.stdout.strip()
    return {"python": platform.python_version(), "cpus": len(os.sched_getaffinity(0)),
            "commit": git("rev-parse", "--short", "HEAD"),
            "src_modified": bool(git("status", "--porcelain", "src")),
            **{pkg: version(pkg) for pkg in ("numpy", "numba", "scikit-learn", "nilearn")}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    tier_arg = parser.add_mutually_exclusive_group(required=True)
    tier_arg.add_argument("--quick", action="store_const", const="quick", dest="tier")
    tier_arg.add_argument("--full", action="store_const", const="full", dest="tier")
    parser.add_argument("--data", default=None,
                        help="keep the generated data sets in this folder (default: a temporary one)")
    parser.add_argument("--out", default=str(RESULTS), help="folder for results.json and scaling.png")
    args = parser.parse_args()

    start = time.perf_counter()
    cache = Path(args.data or tempfile.mkdtemp(prefix="fastrena-bench-"))
    cache.mkdir(parents=True, exist_ok=True)
    print(f"fastrena benchmarks, --{args.tier} (data in {cache})", file=sys.stderr)
    load_before = os.getloadavg()[0]
    if load_before > 0.5:
        print(f"warning: load average {load_before:.1f} before starting: other processes "
              "share the cores, timings will be noisy", file=sys.stderr)
    try:
        results = run_tier(TIERS[args.tier], cache)
    finally:
        if args.data is None:
            shutil.rmtree(cache, ignore_errors=True)
    rows = table(results, args.tier)
    wall = time.perf_counter() - start

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"tier": args.tier, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
              "wall_seconds": wall, "load_average_before": load_before, "provenance": provenance(),
              "scaling_slope": scaling_slope(results), "table": rows, "cases": results}
    (out / "results.json").write_text(json.dumps(report, indent=1))
    from plot import plot_scaling
    plot_scaling(scaling_points(results), report["scaling_slope"], out / "scaling.png",
                 f"fastrena --{args.tier}, {report['date']}, commit {report['provenance']['commit']}")
    print(markdown(rows))
    if args.tier == "quick":
        print("\n(--quick measures on 3-4 mm masks: smaller cases than the targets', "
              "so the ratios to peers are lower than --full's; use it to spot changes.)")
    print(f"\n--{args.tier}: {wall:.0f} s; wrote {out / 'results.json'} and {out / 'scaling.png'}")


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()
