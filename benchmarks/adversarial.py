"""Adversarial shapes: tied values and hubs, where a cost that grows with a
node's degree would show (issue 14, point 2).

    python benchmarks/adversarial.py                   # all cases, ~3-6 min on 2 cores
    python benchmarks/adversarial.py --cases star,noise --repeats 5

Three cases, each a ratio of times measured in this one process, the
compared runs alternated round after round (median of ``--repeats``
rounds, after one warm-up run of each):

* ``field``: one smooth field (white noise smoothed with sigma = 2 voxels)
  on nilearn's MNI152 1 mm brain mask (1,882,989 voxels), against the same
  field rounded to 5 levels; ``ReNA(mask, n_clusters=5000).fit(x)`` with
  the default linkage, and with ``linkage="ward", n_iter=30``. Target:
  rounded / unrounded <= 2 in both.
* ``star``: a star of 300,000 leaves and a chain of 300,000 edges (300,001
  nodes each, one random sample), against a smooth field on a full cube
  of 47^3 voxels (304,842 edges; white noise smoothed with sigma = 2
  voxels), the edges given as a COO matrix in shuffled order,
  ``ReNA(connectivity=..., n_clusters=1000).fit(x)`` for both linkages:
  times per edge. Targets (issue 25): star / grid and chain / grid <= 2;
  star / chain is shown beside them.
* ``noise``: Gaussian white noise rounded to 5 levels on full cubes of
  60^3 to 150^3 voxels (216,000 to 3,375,000), one sample: the time of
  the first level alone (``agglomerate(..., n_iter=1)`` on a graph built
  beforehand), against the same noise unrounded (target <= 2 at each
  size), and its time per voxel at the largest size over the smallest
  (linear: 1; target <= 2, the unrounded noise's shown beside it, as
  caches alone make it grow a little).

Prints one table and writes ``results/adversarial.json`` (every run; the
rows of the cases not run are kept from the file, each row saying when
it was ``measured``).
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from case import alternate  # noqa: E402
from data import mni_mask, smooth_signals  # noqa: E402

LEVELS = 5
FIELD_CLUSTERS = 5000
STAR_LEAVES = 300_000
STAR_CLUSTERS = 1000
GRID_SIDE = 47
NOISE_SIDES = (60, 90, 120, 150)


def rounded(X, levels=LEVELS):
    """``X`` quantized to ``levels`` equally spaced values between its
    minimum and its maximum (in X's dtype)."""
    low, high = float(X.min()), float(X.max())
    steps = np.round((X - low) / (high - low) * (levels - 1))
    return (low + steps * ((high - low) / (levels - 1))).astype(X.dtype)


def compare(funcs, repeats):
    """One warm-up call of each, then :func:`case.alternate`."""
    for func in funcs.values():
        func()
    return alternate(funcs, repeats)


def case_field(repeats):
    from fastrena import ReNA

    mask_img, mask = mni_mask(1)
    x = smooth_signals(mask, 1, dtype=np.float32)
    x_rounded = rounded(x)
    rows = []
    for linkage, params in (("nilearn", {}), ("ward", {"n_iter": 30})):
        def fit(X, linkage=linkage, params=params):
            return lambda: ReNA(mask_img, n_clusters=FIELD_CLUSTERS, linkage=linkage,
                                **params).fit(X)

        runs = compare({"unrounded": fit(x), "rounded": fit(x_rounded)}, repeats)
        ratio = runs["rounded"]["median"] / runs["unrounded"]["median"]
        rows.append({"case": "field", "linkage": linkage, "N": int(x.shape[1]),
                     "ratio": ratio, "target": 2.0, "runs": runs,
                     "figure": f"1 mm field rounded / unrounded, linkage={linkage}"
                               + (", n_iter=30" if params else ""),
                     "detail": f"{runs['rounded']['median']:.2f} s / "
                               f"{runs['unrounded']['median']:.2f} s"})
    return rows


def shuffled_coo(n_nodes, u, v, seed):
    """The edges as a COO adjacency matrix, entries in random order."""
    from scipy import sparse

    order = np.random.default_rng(seed).permutation(u.shape[0])
    return sparse.coo_matrix((np.ones(u.shape[0]), (u[order], v[order])),
                             shape=(n_nodes, n_nodes))


def case_star(repeats):
    from scipy.ndimage import gaussian_filter

    from fastrena import ReNA
    from fastrena.graphs import lattice_graph

    n = STAR_LEAVES + 1
    leaves = np.arange(1, n)
    graphs = {"star": shuffled_coo(n, np.zeros(STAR_LEAVES, dtype=np.int64), leaves, 1),
              "chain": shuffled_coo(n, leaves - 1, leaves, 2)}
    x = np.random.default_rng(0).standard_normal((1, n))
    signals = {"star": x, "chain": x}
    # A smooth field on a cube with as many edges (47^3 voxels: 304,842).
    side = GRID_SIDE
    cube = lattice_graph(np.ones((side,) * 3, dtype=bool))
    graphs["grid"] = shuffled_coo(side ** 3, cube.u, cube.v, 3)
    field = gaussian_filter(np.random.default_rng(0).standard_normal((side,) * 3), 2.0)
    signals["grid"] = field.reshape(1, -1)
    n_edges = {name: graph.nnz for name, graph in graphs.items()}
    rows = []
    for linkage in ("nilearn", "ward"):
        def fit(name, linkage=linkage):
            return lambda: ReNA(n_clusters=STAR_CLUSTERS, connectivity=graphs[name],
                                linkage=linkage).fit(signals[name])

        runs = compare({name: fit(name) for name in graphs}, repeats)
        per_edge = {name: runs[name]["median"] / n_edges[name] * 1e9 for name in runs}
        for shape, against, target in (("star", "grid", 2.0), ("chain", "grid", 2.0),
                                       ("star", "chain", None)):
            rows.append({"case": "star", "linkage": linkage, "N": n,
                         "ratio": per_edge[shape] / per_edge[against], "target": target,
                         "runs": runs, "n_edges": n_edges,
                         "figure": f"{shape} / {against} per edge, {n_edges[shape]:,} / "
                                   f"{n_edges[against]:,} edges, linkage={linkage}",
                         "detail": f"{per_edge[shape]:.0f} ns / {per_edge[against]:.0f} ns "
                                   "per edge"})
    return rows


def case_noise(repeats):
    from fastrena.agglomeration import agglomerate
    from fastrena.graphs import lattice_graph

    rows = []
    first = None  # time per voxel at the smallest size
    for side in NOISE_SIDES:
        graph = lattice_graph(np.ones((side,) * 3, dtype=bool))
        n = graph.n_nodes
        x = np.random.default_rng(side).standard_normal((1, n)).astype(np.float32)
        x_rounded = rounded(x)

        def first_level(X):
            return lambda: agglomerate(X, graph, n // 10, n_iter=1)

        runs = compare({"unrounded": first_level(x), "rounded": first_level(x_rounded)},
                       repeats)
        per_voxel = {name: runs[name]["median"] / n * 1e9 for name in runs}
        first = first or per_voxel
        rows.append({"case": "noise", "N": n, "runs": runs,
                     "ratio": runs["rounded"]["median"] / runs["unrounded"]["median"],
                     "target": 2.0, "per_voxel_ns": per_voxel,
                     "figure": f"noise rounded / unrounded, first level, {side}^3 = {n:,} "
                               "voxels",
                     "detail": f"{runs['rounded']['median']:.3f} s / "
                               f"{runs['unrounded']['median']:.3f} s "
                               f"({per_voxel['rounded']:.0f} / "
                               f"{per_voxel['unrounded']:.0f} ns per voxel)"})
    growth = {name: per_voxel[name] / first[name] for name in per_voxel}
    rows.append({"case": "noise", "N": n, "ratio": growth["rounded"], "target": 2.0,
                 "figure": f"rounded noise, first level, time per voxel at {n:,} / at "
                           f"{NOISE_SIDES[0] ** 3:,} voxels",
                 "detail": f"unrounded: {growth['unrounded']:.2f} (caches: the working set "
                           "outgrows them)"})
    return rows


CASES = {"field": case_field, "star": case_star, "noise": case_noise}


def status(row):
    if row["target"] is None:
        return "-"
    return "PASS" if row["ratio"] <= row["target"] else "FAIL"


def kept_rows(path, names):
    """The rows of the cases not in ``names`` that ``path`` holds from an
    earlier run, each with the date it was measured (``measured``): a run
    of some cases keeps the others' figures rather than dropping them."""
    try:
        previous = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return []
    return [dict(row, measured=row.get("measured", previous.get("date")))
            for row in previous.get("rows", []) if row.get("case") not in names]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES),
                        help=f"comma-separated, from {', '.join(CASES)} (default: all)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="alternated rounds per comparison, at least 3 (default: 3)")
    parser.add_argument("--out", default=str(HERE / "results"),
                        help="folder for adversarial.json (default: benchmarks/results)")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.cases.split(",") if name.strip()]
    unknown = [name for name in names if name not in CASES]
    if unknown or args.repeats < 3:
        parser.error(f"--cases: unknown {', '.join(unknown)}" if unknown
                     else f"--repeats must be at least 3, got {args.repeats}")
    load_before = os.getloadavg()[0]
    if load_before > 0.5:
        print(f"warning: load average {load_before:.1f} before starting: other processes "
              "share the cores, timings will be noisy", file=sys.stderr)
    start = time.perf_counter()
    rows = []
    for name in names:
        print(f"running {name}...", file=sys.stderr, flush=True)
        rows += CASES[name](args.repeats)
    print("| figure | ratio | detail (medians) | target | status |")
    print("|---|---|---|---|---|")
    for row in rows:
        target = "-" if row["target"] is None else f"<= {row['target']:g}"
        print(f"| {row['figure']} | {row['ratio']:.2f} | {row['detail']} | {target} | "
              f"{status(row)} |")
    wall = time.perf_counter() - start
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from run import provenance

    date = time.strftime("%Y-%m-%d %H:%M:%S")
    report = {"date": date, "wall_seconds": wall,
              "load_average_before": load_before, "load_average_after": os.getloadavg()[0],
              "repeats": args.repeats, "provenance": provenance(),
              "rows": [dict(row, measured=date) for row in rows]
              + kept_rows(out / "adversarial.json", names)}
    (out / "adversarial.json").write_text(json.dumps(report, indent=1))
    print(f"\n{wall:.0f} s; wrote {out / 'adversarial.json'}")


if __name__ == "__main__":
    main()
