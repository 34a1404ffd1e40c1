"""One benchmark case, alone in this process.

    python benchmarks/case.py <case> [--res 2] [--samples 400] [--clusters 5000]
                              [--dtype float64] [--repeats 3] [--cache DIR] [--json]

Cases: prepare (generate and save a data set), fit (fastrena vs --peer),
transform (vs nilearn), memory, fit-only, threads, scaling.

``run.py`` starts every case in a fresh process, so that its peak RSS
(``ru_maxrss``) belongs to that case alone and no case inherits another's heap.
Every time is the median of ``--repeats`` runs after one warm-up call (numba
JIT); fastrena and its peers alternate run by run, so that changes in machine
load hit all of them alike. The one-pass floor ``X.sum(axis=0)`` is timed in
the same loop. Prints one JSON object (indented unless ``--json``).
"""

import argparse
import json
import resource
import statistics
import sys
import time
import warnings
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))
from data import load_signals, make_dataset  # noqa: E402

MB = 1e6  # decimal megabytes, as in the targets ("X = 0.75 GB")


# ---------------------------------------------------------------- measuring
def timed(func):
    """Seconds taken by ``func()``."""
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def alternate(funcs, repeats, inner=None):
    """Run ``funcs`` (name -> callable) in turn, ``repeats`` rounds; returns
    name -> {"median": s, "runs": [s, ...]}. Interleaving, rather than all
    runs of one then all of the other, is what makes the ratios fair on a
    shared, noisy machine.

    ``inner`` (name -> count) runs the cheap ones several times per round: a
    15 s peer run averages a burst of load from other processes away, a
    0.3 s run does not, so the cheap side needs more runs for an equally
    steady median."""
    runs = {name: [] for name in funcs}
    for _ in range(repeats):
        for name, func in funcs.items():
            runs[name] += [timed(func) for _ in range((inner or {}).get(name, 1))]
    return {name: {"median": statistics.median(r), "runs": r} for name, r in runs.items()}


def warn_if_busy():
    """The load average now, with a warning when other processes share the
    cores (the timings will then be noisy)."""
    import os

    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"warning: load average {load:.1f} before starting: other processes "
              "share the cores, timings will be noisy")
    return load


def save_result(folder, name, start, load_before, **fields):
    """Write ``folder/name`` (JSON): date, wall time since ``start``, load
    averages, and ``fields``; say so."""
    import os

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    result = {"date": time.strftime("%Y-%m-%d %H:%M:%S"),
              "wall_seconds": time.perf_counter() - start,
              "load_average_before": load_before, "load_average_after": os.getloadavg()[0],
              **fields}
    (out / name).write_text(json.dumps(result, indent=1))
    print(f"\n{time.perf_counter() - start:.0f} s; wrote {out / name}")


def cheap(args, *names):
    """``inner`` for :func:`alternate`: ``--inner`` runs per round of each name."""
    return {name: args.inner for name in names}


def rss_mb():
    """Current resident set size of this process (MB)."""
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024 / MB  # the kernel's "kB" are KiB


def peak_rss_mb():
    """Peak resident set size of this process so far (MB; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB


# ---------------------------------------------------------------- estimators
def n_clusters(spec, n_features):
    """``--clusters``: an int, or "N/10" for a fixed compression ratio."""
    if str(spec).startswith("N/"):
        return n_features // int(spec[2:])
    return int(spec)


def fitter(method, mask_img, mask, k):
    """A function X -> fitted estimator, for fastrena or one of its peers.

    Ward gets its grid connectivity built once here, outside the timing, as
    the benchmark contract defines it; ReNA (both) builds its graph from the
    mask inside ``fit``, as users call it."""
    if method == "fastrena":
        from fastrena import ReNA
        return lambda X: ReNA(mask_img, n_clusters=k).fit(X)
    if method == "nilearn":
        from nilearn.regions import ReNA as NilearnReNA
        return lambda X: NilearnReNA(mask_img, n_clusters=k).fit(X)
    if method == "ward":
        from sklearn.cluster import FeatureAgglomeration
        from sklearn.feature_extraction.image import grid_to_graph
        connectivity = grid_to_graph(*mask.shape, mask=mask)
        return lambda X: FeatureAgglomeration(n_clusters=k, linkage="ward",
                                              connectivity=connectivity).fit(X)
    raise ValueError(method)


def warm_up(mask_img, k, X):
    """Compile (or load from numba's cache) fastrena's kernels for X's dtype,
    so that no timed run pays for the JIT."""
    from fastrena import ReNA
    ReNA(mask_img, n_clusters=k).fit(X[:2]).transform(X[:2])


def describe(args, X, k):
    """The case's size, repeated in every result for the table and the plot."""
    return {"res": args.res, "N": X.shape[1], "S": X.shape[0], "K": k,
            "dtype": X.dtype.name, "X_MB": X.nbytes / MB}


def load(args, n_samples=None):
    return load_signals(args.cache, args.res, n_samples or args.samples, args.dtype, args.kind)


# ---------------------------------------------------------------- cases
def case_prepare(args):
    """Generate one data set into the cache (outside any measured process)."""
    path = make_dataset(args.cache, args.res, args.samples, args.dtype, args.kind)
    return {"path": str(path), "MB": path.stat().st_size / MB}


def case_fit(args):
    """Fit time of fastrena vs ``--peer`` on the same X, plus the one pass."""
    mask_img, mask, X = load(args)
    k = n_clusters(args.clusters, X.shape[1])
    fits = {m: fitter(m, mask_img, mask, k) for m in ("fastrena", args.peer)}
    warm_up(mask_img, k, X)
    funcs = {m: (lambda f=f: f(X)) for m, f in fits.items()}
    funcs["one-pass"] = lambda: X.sum(axis=0)
    seconds = alternate(funcs, args.repeats, cheap(args, "fastrena", "one-pass"))
    return {**describe(args, X, k), "seconds": seconds, "peak_rss_MB": peak_rss_mb()}


def case_transform(args):
    """Transform time of fastrena vs nilearn, each fitted once on X."""
    mask_img, mask, X = load(args)
    k = n_clusters(args.clusters, X.shape[1])
    warm_up(mask_img, k, X)
    fitted = {m: fitter(m, mask_img, mask, k)(X) for m in ("fastrena", "nilearn")}
    fitted["fastrena"].transform(X[:2])
    funcs = {m: (lambda e=e: e.transform(X)) for m, e in fitted.items()}
    funcs["one-pass"] = lambda: X.sum(axis=0)
    seconds = alternate(funcs, args.repeats, cheap(args, "fastrena", "one-pass"))
    return {**describe(args, X, k), "seconds": seconds,
            "n_clusters_": {m: int(e.n_clusters_) for m, e in fitted.items()},
            "peak_rss_MB": peak_rss_mb()}


def case_memory(args):
    """Extra memory of one fastrena fit: peak RSS minus RSS with X loaded.

    The warm-up runs first on two rows (so the JIT's memory is in the
    baseline, not in the figure); X is then read straight into a fresh array
    (no temporaries), so the peak before the fit is X plus the baseline. If
    the fit's peak did not exceed that, ``peak_masked`` says so and the
    figure is only an upper bound."""
    mask_img, mask, X2 = load(args, 2)
    k = n_clusters(args.clusters, X2.shape[1])
    warm_up(mask_img, k, X2)
    del X2
    _, _, X = load(args)
    rss_loaded, peak_before = rss_mb(), peak_rss_mb()
    seconds = timed(lambda: fitter("fastrena", mask_img, mask, k)(X))
    peak = peak_rss_mb()
    extra = peak - rss_loaded
    return {**describe(args, X, k), "rss_loaded_MB": rss_loaded,
            "peak_before_fit_MB": peak_before, "peak_rss_MB": peak,
            "extra_MB": extra, "extra_fraction_of_X": extra / (X.nbytes / MB),
            "peak_masked": peak <= peak_before, "fit_seconds": seconds}


def case_fit_only(args):
    """fastrena alone on a case its peers cannot hold in memory: fit time
    and the whole process's peak RSS (X included)."""
    mask_img, mask, X = load(args)
    k = n_clusters(args.clusters, X.shape[1])
    warm_up(mask_img, k, X)
    fit, last = fitter("fastrena", mask_img, mask, k), {}
    funcs = {"fastrena": lambda: last.update(fitted=fit(X)),
             "one-pass": lambda: X.sum(axis=0)}
    return {**describe(args, X, k), "seconds": alternate(funcs, args.repeats),
            "n_clusters_": int(last["fitted"].n_clusters_), "peak_rss_MB": peak_rss_mb()}


def case_threads(args):
    """fastrena fit time on 2 numba threads vs 1, alternated in one process."""
    import numba
    mask_img, mask, X = load(args)
    k = n_clusters(args.clusters, X.shape[1])
    fit = fitter("fastrena", mask_img, mask, k)

    def on(n_threads):
        def run():
            numba.set_num_threads(n_threads)
            fit(X)
        return run

    funcs = {"1 thread": on(1), "2 threads": on(2)}
    warm_up(mask_img, k, X)
    for func in funcs.values():  # untimed: start each thread pool size once
        func()
    return {**describe(args, X, k), "seconds": alternate(funcs, args.repeats),
            "numba_max_threads": numba.config.NUMBA_NUM_THREADS}


def case_scaling(args):
    """Fit time against S at one mask size, for fastrena, the one pass and
    the peers up to the sample counts given by --nilearn-max / --ward-max."""
    mask_img, mask, X_all = load(args, max(args.samples_list))
    k = n_clusters(args.clusters, X_all.shape[1])
    peers_max = {"nilearn": args.nilearn_max, "ward": args.ward_max}
    fits = {m: fitter(m, mask_img, mask, k)
            for m in ("fastrena", *[p for p, s in peers_max.items() if s])}
    warm_up(mask_img, k, X_all)
    points = []
    for n_samples in args.samples_list:
        X = X_all[:n_samples]  # the first rows: C-contiguous, no copy
        funcs = {m: (lambda f=f: f(X)) for m, f in fits.items()
                 if peers_max.get(m, n_samples) >= n_samples}
        funcs["one-pass"] = lambda: X.sum(axis=0)
        for method, t in alternate(funcs, args.repeats, cheap(args, "fastrena", "one-pass")).items():
            points.append({"method": method, "res": args.res, "N": X.shape[1],
                           "S": n_samples, "K": k, "seconds": t["median"], "runs": t["runs"]})
    return {**describe(args, X_all, k), "points": points}


CASES = {"prepare": case_prepare, "fit": case_fit, "transform": case_transform,
         "memory": case_memory, "fit-only": case_fit_only, "threads": case_threads,
         "scaling": case_scaling}


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", choices=CASES)
    parser.add_argument("--res", type=int, default=2, help="MNI mask resolution (mm)")
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--samples-list", type=lambda s: [int(v) for v in s.split(",")],
                        default=[50, 100, 200, 400], help="scaling: sample counts")
    parser.add_argument("--clusters", default="5000", help='int, or "N/10"')
    parser.add_argument("--dtype", default="float64")
    parser.add_argument("--kind", default="smooth", choices=["smooth", "mixed"])
    parser.add_argument("--peer", default="nilearn", choices=["nilearn", "ward"])
    parser.add_argument("--nilearn-max", type=int, default=0,
                        help="scaling: largest S at which nilearn is timed (0: never)")
    parser.add_argument("--ward-max", type=int, default=0,
                        help="scaling: largest S at which Ward is timed (0: never)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds")
    parser.add_argument("--inner", type=int, default=1,
                        help="runs per round of fastrena and the one pass in fit, transform, scaling")
    parser.add_argument("--cache", default=None, help="folder of prepared data sets")
    parser.add_argument("--json", action="store_true", help="one line of JSON")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nilearn's and sklearn's deprecations
        start = time.perf_counter()
        result = CASES[args.case](args)
    result = {"case": args.case, **result, "wall_seconds": time.perf_counter() - start}
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
