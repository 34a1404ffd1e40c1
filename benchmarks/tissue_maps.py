"""The ``"ward"`` linkage on real maps with large flat regions and hubs
(issue 25, point 2), with the check that every merge was made at its Ward
cost.

    python benchmarks/tissue_maps.py            # ~15 min once Ward's labels are cached
    python benchmarks/tissue_maps.py --quick    # the 3 mm maps, the motor map, the 3 mm mask

The cases are the real suite's tissue group (``quality/real_cases.py``:
nilearn's MNI152 WM, GM and CSF-like maps at 3, 2 and 1 mm, the motor map
thresholded at |z| < 3, the brain mask as a 0/1 image at 3 and 2 mm), and
Ward's labels its cache (``quality/real_suite.WardCache``: scikit-learn's
up to 150,000 features, the exact reference ``quality/exact_ward.py``
above). ``quality/run.py --real`` compares every method on them; this
script adds, for the ``"ward"`` linkage and the default, the fit time
(best of 2) and, for ``"ward"``, the largest deviation of a recorded merge
cost from its replay on the data (``fastrena.ward.replayed_costs``, over
the cost's rounding scale: 0 up to rounding). K/N = 0.02 and 0.05. Each
linkage without its boundary refinement (``max_refine_iter=0``) and
refined after it (``fastrena.refine.refine_labels``, 2 sweeps, after
``"ward"`` from its merge tree's finer cut with the exchange; timed apart:
what ``ReNA(linkage="ward")`` does by default; issue 26).
Writes ``results/tissue_maps.md`` and ``results/tissue_maps.json``
(``--quick``: ``results/tissue_maps_quick.md`` and ``.json``).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "quality"))
import real_cases  # noqa: E402
from real_suite import WardCache, n_clusters_for, relative_error  # noqa: E402

RESULTS = HERE / "results"


#: Sweeps of the refined fits (fastrena.refine.REFINE_ITER_WARD).
REFINE_ITER = 2


def refine_fit(case, labels, cut_at=None):
    """(refined labels, seconds (best of 2)) of ``refine_labels`` after a fit;
    with ``cut_at`` (a ``"ward"`` fit's ``labels_at``), from its finer cut
    with the exchange, as the fit refines."""
    from fastrena.graphs import lattice_graph
    from fastrena.refine import exchange_count, refine_labels

    graph = lattice_graph(case.mask)
    n = int(labels.max()) + 1
    times = []
    for _ in range(2):
        start = time.perf_counter()
        if cut_at is not None and n >= 2:
            refined = refine_labels(case.X, graph,
                                    cut_at(n + exchange_count(n, case.X.shape[1])),
                                    REFINE_ITER, n_clusters=n)
        else:
            refined = refine_labels(case.X, graph, labels, REFINE_ITER)
        times.append(time.perf_counter() - start)
    return refined, min(times)


def fastrena_fit(case, k, linkage):
    """(labels, seconds (best of 2), worst cost deviation over its scale,
    the merge tree's ``labels_at`` for ``"ward"``), without the boundary
    refinement."""
    from fastrena import ReNA, agglomeration, ward

    made = []

    class Recording(ward.WardMerges):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    times = []
    for _ in range(2):
        start = time.perf_counter()
        original = agglomeration.WardMerges
        agglomeration.WardMerges = Recording
        try:
            fit = ReNA(case.mask, n_clusters=k, linkage=linkage, max_refine_iter=0,
                       compute_full_tree=linkage == "ward").fit(case.X)
            labels = fit.labels_
        finally:
            agglomeration.WardMerges = original
        times.append(time.perf_counter() - start)
    deviation = None
    if linkage == "ward":
        merges = made[-1]
        first, second = np.concatenate(merges.first), np.concatenate(merges.second)
        costs = np.concatenate(merges.costs)
        true, scale = ward.replayed_costs(case.X, first, second)
        deviation = float(np.max(np.abs(costs - true) / np.maximum(scale, 1e-300)))
    return labels, min(times), deviation, fit.labels_at if linkage == "ward" else None


def measure(case, cache):
    out = {"n_features": int(case.X.shape[1]), "distinct_values": int(np.unique(case.X).size),
           "fractions": {}}
    for fraction in case.fractions:
        k = n_clusters_for(fraction, case.X.shape[1])
        row = {"k": k}
        labels, seconds, cached, _ = cache.labels(case, k)
        row["Ward"] = {"error": relative_error(case.X, labels), "seconds": seconds,
                       "cached": cached, "largest": int(np.bincount(labels).max())}
        for name, linkage in (("ward", "ward"), ("default", "nilearn")):
            labels, seconds, deviation, cut_at = fastrena_fit(case, k, linkage)
            refined, refine_seconds = refine_fit(case, labels, cut_at)
            for method, found in ((name, labels), (name + " refined", refined)):
                figures = {"error": relative_error(case.X, found), "seconds": seconds,
                           "largest": int(np.bincount(found).max())}
                if found is refined:
                    figures["refine_seconds"] = refine_seconds
                if deviation is not None:
                    figures["cost_deviation"] = deviation
                # Ward's error is 0 where K covers every flat region (the
                # binary mask): 1 when the fit is exact too.
                ward_error = row["Ward"]["error"]
                figures["error_over_ward"] = (
                    figures["error"] / ward_error if ward_error > 0
                    else 1.0 if figures["error"] == 0 else np.inf)
                figures["largest_over_ward"] = figures["largest"] / row["Ward"]["largest"]
                row[method] = figures
        out["fractions"][str(fraction)] = row
        print(f"{case.name} K={k}: " + ", ".join(
            f"{m} {row[m]['error']:.4f}" + (f" ({row[m]['error_over_ward']:.3f}x, largest "
                                             f"{row[m]['largest_over_ward']:.2f}x)"
                                             if m != "Ward" else "")
            for m in row if m != "k"), flush=True)
    return out


def markdown(results, command, started):
    lines = [f"# `\"ward\"` on tissue, thresholded and binary maps", "",
             f"`{command}`, {time.strftime('%Y-%m-%d %H:%M', time.localtime(started))}. Error "
             "`||X - R|| / ||X - X's row means||` over scikit-learn Ward's (same graph, same K); "
             "largest cluster over Ward's largest; cost check: the largest deviation of a "
             "recorded merge cost from its replayed Ward cost, over the cost's rounding scale "
             "(0 up to rounding).", "",
             "`ward` and `default`: without the boundary refinement (`max_refine_iter=0`); "
             "`+ refine`: refined after them (2 sweeps, after `ward` with the exchange: "
             "`ReNA(linkage=\"ward\")`'s default); "
             "`refine / fit`: the refinement's time over the unrefined fit's.", "",
             "| case | N | K/N | Ward's error | ward / Ward | ward + refine / Ward | largest / "
             "Ward's (refined) | default / Ward | default + refine / Ward | ward fit (s) | "
             "refine / fit | Ward fit (s) | cost check |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, case in results.items():
        for fraction, row in case["fractions"].items():
            ward, default = row["ward"], row["default"]
            ward_r, default_r = row["ward refined"], row["default refined"]
            share = f"{ward_r['refine_seconds'] / ward['seconds']:.2f}"
            cells = [f"{row['Ward']['error']:.4f}", f"{ward['error_over_ward']:.3f}",
                     f"{ward_r['error_over_ward']:.3f}",
                     f"{ward['largest_over_ward']:.2f} ({ward_r['largest_over_ward']:.2f})",
                     f"{default['error_over_ward']:.3f}",
                     f"{default_r['error_over_ward']:.3f}",
                     f"{ward['seconds']:.2f}", share,
                     f"{row['Ward']['seconds']:.1f}" + (" (cached)" if row["Ward"]["cached"]
                                                        else "")]
            lines.append(f"| {name} | {case['n_features']:,} | {fraction} | " + " | ".join(cells)
                         + f" | {ward['cost_deviation']:.1e} |")
    rows = [row for case in results.values() for row in case["fractions"].values()]
    ratios = [row["ward"]["error_over_ward"] for row in rows]
    refined = [row["ward refined"]["error_over_ward"] for row in rows]
    lines += ["", f"ward / Ward over {len(ratios)} fits: median {np.median(ratios):.3f}, "
                  f"worst {max(ratios):.3f}; largest cluster / Ward's largest at most "
                  f"{max(row['ward']['largest_over_ward'] for row in rows):.2f}.",
              "", f"ward + refine / Ward over {len(refined)} fits: median "
                  f"{np.median(refined):.3f}, worst {max(refined):.3f}."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="the 3 mm maps, the motor map and the 3 mm mask only")
    args = parser.parse_args(argv)
    started = time.time()
    cache = WardCache()
    results = {}
    for case in real_cases.iter_tissue_cases():
        if args.quick and any(f"{r} mm" in case.name for r in (2, 1)):
            continue
        results[case.name] = measure(case, cache)
    command = "python benchmarks/tissue_maps.py" + (" --quick" if args.quick else "")
    stem = "tissue_maps_quick" if args.quick else "tissue_maps"
    (RESULTS / f"{stem}.md").write_text(markdown(results, command, started))
    (RESULTS / f"{stem}.json").write_text(json.dumps(results, indent=1))
    print(markdown(results, command, started))
    print(f"wrote {RESULTS / (stem + '.md')}")


if __name__ == "__main__":
    main()
