"""Out-of-core benchmark: a ReNA fit on a Dask array read from a Zarr store.

    python benchmarks/dask_scale.py                 # ~15-25 min, needs ~20 GB in --data's disk
    python benchmarks/dask_scale.py --samples 2400 --ratio-samples 1200   # a small try-out

Steps, each in a fresh process (so each peak RSS is its own):

1. ``prepare``: write 2 mm x ``--samples`` float32 signals (the mixed smooth
   fields of ``data.py``) to an uncompressed Zarr store, ``--rows-per-chunk``
   rows per chunk, block by block (never the whole array in memory), under a
   temporary name renamed at the end; kept for later runs with ``--data``.
2. ``big``: ``ReNA(mask, n_clusters=5000).fit(from_zarr(store))`` on Dask's
   threaded scheduler, then one read of the whole store
   (``from_zarr(store).sum(axis=0)``, the one-pass floor) on the same
   scheduler; peak RSS of the process (target: < 4 GB for 18.8 GB of data).
3. ``ratio``: the first ``--ratio-samples`` rows, small enough for memory:
   the in-memory fit (rows read into a NumPy array), the Dask fit of the
   same rows from the store, and the Dask fit of the in-memory array split
   into chunks, alternated round by round (median of ``--repeats``);
   labels must be identical.
4. ``distributed``: the same rows from the store on a ``LocalCluster`` of 2
   worker processes x 1 thread, alternated with the in-memory fit.
5. ``processes``: the same rows from the store, each linkage, on Dask's
   local processes scheduler (each fit starting its own pool of workers)
   alternated with its threads; labels must be identical, and the
   in-memory fit's.

Prints a table and writes ``results/dask.json``. The store is written once
and then read from the page cache as far as memory allows: with 24 GB of
RAM most of an 18.8 GB store can stay cached, so "one read" is a mix of
disk and memory speed, measured in the same state as the fit.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from case import alternate, peak_rss_mb, rss_mb  # noqa: E402
from data import mixed_smooth_blocks, mni_mask  # noqa: E402

MB = 1e6


def store_path(data, n_samples):
    return Path(data) / f"mni2mm_mixed_S{n_samples}_float32.zarr"


# ---------------------------------------------------------------- cases
def case_prepare(args):
    """Write the Zarr store (if missing), block by block."""
    import zarr

    path = store_path(args.data, args.samples)
    if not path.exists():
        _, mask = mni_mask(2)
        tmp = path.with_name(path.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        z = zarr.create_array(tmp, shape=(args.samples, int(mask.sum())),
                              chunks=(args.rows_per_chunk, int(mask.sum())),
                              dtype="float32", compressors=None, fill_value=0.0)
        # whole chunks per write: no read-modify-write of partial chunks
        for start, rows in mixed_smooth_blocks(mask, args.samples, dtype=np.float32,
                                               block=2 * args.rows_per_chunk):
            z[start:start + rows.shape[0]] = rows
        tmp.rename(path)
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return {"path": str(path), "MB": size / MB}


def _fit(mask_img, k):
    from fastrena import ReNA
    return lambda X: ReNA(mask_img, n_clusters=k).fit(X)


def _warm_up(mask_img, k, X):
    """Compile the kernels (numba cache) and touch the Dask code paths on
    the first rows, so the timed fits pay for neither."""
    _fit(mask_img, k)(np.asarray(X[:2]))
    _fit(mask_img, k)(X[:128])


def case_big(args):
    """The whole store, out of core: fit time, one read, peak RSS."""
    from fastrena.dask import from_zarr, use_scheduler

    mask_img, _ = mni_mask(2)
    path = store_path(args.data, args.samples)
    X = from_zarr(path)
    with use_scheduler("threads"):
        _warm_up(mask_img, args.clusters, X)
        rss_before = rss_mb()
        fitted = {}
        funcs = {"dask fit": lambda: fitted.update(rena=_fit(mask_img, args.clusters)(X)),
                 "one read": lambda: X.sum(axis=0, dtype=np.float64).compute()}
        seconds = alternate(funcs, args.big_repeats)
    rena = fitted["rena"]
    return {"S": X.shape[0], "N": X.shape[1], "K": args.clusters, "X_MB": X.nbytes / MB,
            "chunks": [int(X.chunks[0][0]), len(X.chunks[0])], "seconds": seconds,
            "rss_before_MB": rss_before, "peak_rss_MB": peak_rss_mb(),
            "n_clusters_": int(rena.n_clusters_),
            "label_sizes": _size_summary(rena.labels_)}


def _size_summary(labels):
    sizes = np.bincount(labels)
    return {"largest": int(sizes.max()), "mean": float(sizes.mean()),
            "singletons": int((sizes == 1).sum())}


def _in_memory_rows(path, n_samples):
    import zarr
    return zarr.open_array(path, mode="r")[:n_samples]


def case_ratio(args):
    """In memory vs Dask (from the store, and from the in-memory array)."""
    import dask.array as da

    from fastrena.dask import from_zarr, use_scheduler

    mask_img, _ = mni_mask(2)
    path = store_path(args.data, args.samples)
    X_mem = _in_memory_rows(path, args.ratio_samples)
    X_zarr = from_zarr(path)[:args.ratio_samples]
    X_split = da.from_array(X_mem, chunks=(X_zarr.chunks[0][0], -1))
    fit = _fit(mask_img, args.clusters)
    labels = {}

    def run(name, X):
        return lambda: labels.update({name: fit(X).labels_})

    with use_scheduler("threads"):
        _warm_up(mask_img, args.clusters, X_zarr)
        funcs = {"in memory": run("in memory", X_mem),
                 "dask, from zarr": run("dask, from zarr", X_zarr),
                 "dask, from memory": run("dask, from memory", X_split),
                 "one pass": lambda: X_mem.sum(axis=0)}
        seconds = alternate(funcs, args.repeats)
    return {"S": X_mem.shape[0], "N": X_mem.shape[1], "K": args.clusters,
            "X_MB": X_mem.nbytes / MB, "seconds": seconds,
            "labels_identical": _all_equal(labels), "peak_rss_MB": peak_rss_mb()}


def _all_equal(labels):
    first = next(iter(labels.values()))
    return all(np.array_equal(first, other) for other in labels.values())


def case_distributed(args):
    """The store's first rows on a local cluster of 2 worker processes."""
    from distributed import Client, LocalCluster

    from fastrena.dask import from_zarr

    mask_img, _ = mni_mask(2)
    path = store_path(args.data, args.samples)
    X_mem = _in_memory_rows(path, args.ratio_samples)
    X_zarr = from_zarr(path)[:args.ratio_samples]
    fit = _fit(mask_img, args.clusters)
    labels = {}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      memory_limit="6GiB", dashboard_address=None) as cluster, \
            Client(cluster) as client:
        _fit(mask_img, args.clusters)(X_mem[:2])
        client.run(_warm_up, mask_img, args.clusters, X_mem[:128])  # each worker's JIT
        funcs = {"in memory": lambda: labels.update({"in memory": fit(X_mem).labels_}),
                 "distributed, from zarr": lambda: labels.update(
                     {"distributed": fit(X_zarr).labels_})}
        seconds = alternate(funcs, args.repeats)
    return {"S": X_mem.shape[0], "N": X_mem.shape[1], "K": args.clusters,
            "X_MB": X_mem.nbytes / MB, "seconds": seconds, "workers": "2 processes x 1 thread",
            "labels_identical": _all_equal(labels), "peak_rss_MB": peak_rss_mb()}


def case_processes(args):
    """The store's first rows on Dask's local processes scheduler against
    its threads, each linkage: one fit per ``dask.config.set(scheduler=...)``
    block, so each processes fit starts (and shuts down) its own pool of
    workers, as a lone fit in a script does."""
    import dask

    from fastrena import ReNA
    from fastrena.dask import from_zarr

    mask_img, _ = mni_mask(2)
    path = store_path(args.data, args.samples)
    X_mem = _in_memory_rows(path, args.ratio_samples)
    X_zarr = from_zarr(path)[:args.ratio_samples]
    labels = {}
    refined = set()

    def run(linkage, scheduler):
        def fit():
            with dask.config.set(scheduler=scheduler):
                rena = ReNA(mask_img, n_clusters=args.clusters, linkage=linkage).fit(X_zarr)
            labels[f"{linkage}, {scheduler}"] = rena.labels_
            if rena.n_refine_iter_:
                refined.add(linkage)
        return fit

    _warm_up(mask_img, args.clusters, X_zarr)
    funcs = {f"{linkage}, {scheduler}": run(linkage, scheduler)
             for linkage in ("nilearn", "ward") for scheduler in ("threads", "processes")}
    seconds = alternate(funcs, args.repeats)
    for linkage in ("nilearn", "ward"):
        # A Dask X beyond fastrena.refine-limit is not refined (the fit
        # warns): the in-memory reference is then the unrefined fit.
        labels[f"{linkage}, in memory"] = ReNA(
            mask_img, n_clusters=args.clusters, linkage=linkage,
            max_refine_iter="auto" if linkage in refined else 0).fit(X_mem).labels_
    same = {linkage: _all_equal({k: v for k, v in labels.items() if k.startswith(linkage)})
            for linkage in ("nilearn", "ward")}
    return {"S": X_mem.shape[0], "N": X_mem.shape[1], "K": args.clusters,
            "X_MB": X_mem.nbytes / MB, "seconds": seconds, "labels_identical": same,
            "ward_refined": "ward" in refined, "peak_rss_MB": peak_rss_mb()}


CASES = {"prepare": case_prepare, "big": case_big, "ratio": case_ratio,
         "distributed": case_distributed, "processes": case_processes}


# ---------------------------------------------------------------- driver
def run_case(name, args):
    """``name`` in a fresh process; its JSON result, or {"error": ...}."""
    command = [sys.executable, __file__, "--case", name, "--data", str(args.data),
               "--samples", str(args.samples), "--ratio-samples", str(args.ratio_samples),
               "--rows-per-chunk", str(args.rows_per_chunk), "--clusters", str(args.clusters),
               "--repeats", str(args.repeats), "--big-repeats", str(args.big_repeats)]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, timeout=3 * 3600)
    if proc.returncode != 0:
        result = {"error": proc.stderr.strip().splitlines()[-3:] or [f"exit {proc.returncode}"]}
    else:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["case_seconds"] = time.perf_counter() - start
    result["load_average_1min"] = os.getloadavg()[0]
    print(f"  [{result['case_seconds']:7.1f} s] {name}: "
          f"{'ERROR ' + str(result['error']) if 'error' in result else 'done'}",
          file=sys.stderr, flush=True)
    return result


def med(result, name):
    return result["seconds"][name]["median"]


def summary(results, max_peak_gb):
    """Markdown rows: figure, measured, target/comment."""
    rows = []
    big, ratio, dist = (results.get(c, {}) for c in ("big", "ratio", "distributed"))
    if "seconds" in big:
        peak = big["peak_rss_MB"] / 1000
        rows.append((f"out-of-core fit, 2 mm, S={big['S']}, float32 (X {big['X_MB'] / 1000:.1f} GB)",
                     f"{med(big, 'dask fit'):.0f} s, peak RSS {peak:.2f} GB, "
                     f"n_clusters_={big['n_clusters_']}",
                     f"peak RSS < {max_peak_gb} GB: {'PASS' if peak < max_peak_gb else 'FAIL'}"))
        rows.append(("out-of-core fit time / one read of the store",
                     f"{med(big, 'dask fit') / med(big, 'one read'):.2f}",
                     f"one read: {med(big, 'one read'):.0f} s"))
    if "seconds" in ratio:
        base = med(ratio, "in memory")
        for name in ("dask, from zarr", "dask, from memory"):
            rows.append((f"{name} / in memory, S={ratio['S']}",
                         f"{med(ratio, name) / base:.2f}",
                         f"in memory {base:.2f} s; labels identical: {ratio['labels_identical']}"))
        if "seconds" in big:
            per_sample = (med(big, "dask fit") / big["S"]) / (base / ratio["S"])
            rows.append((f"out-of-core S={big['S']} / in-memory S={ratio['S']}, per sample",
                         f"{per_sample:.2f}", "time per sample"))
    if "seconds" in dist:
        rows.append((f"distributed (2 worker processes), from zarr / in memory, S={dist['S']}",
                     f"{med(dist, 'distributed, from zarr') / med(dist, 'in memory'):.2f}",
                     f"labels identical: {dist['labels_identical']}"))
    procs = results.get("processes", {})
    if "seconds" in procs:
        for linkage in ("nilearn", "ward"):
            threads = med(procs, f"{linkage}, threads")
            rows.append((f"{linkage} linkage, processes / threads scheduler, from zarr, "
                         f"S={procs['S']}",
                         f"{med(procs, f'{linkage}, processes') / threads:.2f}",
                         f"threads {threads:.2f} s; labels identical (and in memory): "
                         f"{procs['labels_identical'][linkage]}"))
    for name, r in results.items():
        if "error" in r:
            rows.append((name, "ERROR", " ".join(r["error"])))
    lines = ["| figure | measured | target / note |", "|---|---|---|"]
    return "\n".join(lines + [f"| {a} | {b} | {c} |" for a, b, c in rows])


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=CASES, help="run one step in this process")
    parser.add_argument("--data", default=None,
                        help="folder that keeps the Zarr store (default: a temporary one, removed)")
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--ratio-samples", type=int, default=4800)
    parser.add_argument("--rows-per-chunk", type=int, default=128)
    parser.add_argument("--clusters", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3, help="rounds of the ratio cases")
    parser.add_argument("--big-repeats", type=int, default=1, help="rounds of the big case")
    parser.add_argument("--skip", default="", help="comma-separated steps not to run")
    parser.add_argument("--max-peak-gb", type=float, default=4.0)
    parser.add_argument("--out", default=str(HERE / "results"))
    return parser.parse_args(argv)


def main(argv=None):
    args = parse(argv)
    if args.case:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nilearn's deprecations
            print(json.dumps(CASES[args.case](args)))
        return
    start = time.perf_counter()
    keep = args.data is not None
    args.data = Path(args.data or tempfile.mkdtemp(prefix="fastrena-dask-bench-"))
    args.data.mkdir(parents=True, exist_ok=True)
    print(f"fastrena dask benchmark (store in {args.data})", file=sys.stderr)
    skip = set(filter(None, args.skip.split(",")))
    try:
        results = {name: run_case(name, args) for name in CASES if name not in skip}
    finally:
        if not keep:
            shutil.rmtree(args.data, ignore_errors=True)
    from run import provenance
    report = {"date": time.strftime("%Y-%m-%d %H:%M:%S"),
              "wall_seconds": time.perf_counter() - start,
              "provenance": {**provenance(), "dask": _version("dask"), "zarr": _version("zarr")},
              "table": summary(results, args.max_peak_gb), "cases": results}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "dask.json").write_text(json.dumps(report, indent=1))
    print(report["table"])
    print(f"\n{report['wall_seconds']:.0f} s; wrote {out / 'dask.json'}")


def _version(package):
    from importlib.metadata import version
    return version(package)


if __name__ == "__main__":
    main()
