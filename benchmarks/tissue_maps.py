"""The ``"ward"`` linkage on real maps with large flat regions and hubs
(issue 25, point 2): tissue probability maps, a thresholded statistical
map and a binary mask, against scikit-learn's Ward.

    python benchmarks/tissue_maps.py            # ~60 min the first time, ~3 min once cached
    python benchmarks/tissue_maps.py --quick    # the 3 mm maps only

Cases (one sample each, nilearn's bundled files, offline):

* ``WM``, ``GM``, ``CSF`` at 3 mm, ``WM`` and ``CSF`` at 2 mm (GM at 2 mm
  is in the real-data suite; ``--two-mm WM`` for WM alone):
  ``load_mni152_wm_template``,
  ``load_mni152_gm_template`` (resolution r), and 1 - GM - WM clipped at 0,
  inside ``load_mni152_brain_mask(resolution=r)``; 6-connected voxels.
* ``motor thresholded``: nilearn's motor activation map on its own grid,
  its nonzero voxels, with |z| < 3 set to 0.
* ``mask 3 mm``: the 3 mm brain mask as a 0/1 image over its bounding box
  (every voxel of the box a feature).
* at 1 mm (WM, GM, CSF, 1,882,989 voxels) scikit-learn's Ward cannot run
  here (hours): fastrena's fits are timed and checked, with the default
  linkage beside them.

K/N = 0.02 and 0.05. Each fastrena linkage without its boundary
refinement (``max_refine_iter=0``) and refined after it (3 sweeps,
``fastrena.refine.refine_labels``, timed apart: what
``ReNA(linkage="ward")`` does by default; issue 26). For each fit: the error ``||X - R|| / ||X - X's row
means||`` (R each feature's cluster mean) over Ward's, the largest
cluster over Ward's largest, the fit time, and the check that every merge
was made at its Ward cost (``fastrena.ward.replayed_costs`` on the merges
in the order made: the largest deviation over the cost's rounding scale).
Ward's labels are cached in ``results/quality/ward_cache_tissue.npz``.
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
from real_cases import RealCase, grid_adjacency  # noqa: E402
from real_suite import WardCache, n_clusters_for, relative_error  # noqa: E402

RESULTS = HERE / "results"
FRACTIONS = (0.02, 0.05)


def _grid(name, values, mask):
    return RealCase(name, values[mask][None].astype(np.float64), grid_adjacency(mask), "tissue",
                    FRACTIONS, mask, "")


def tissue(kind, resolution):
    from nilearn import datasets

    mask = np.asarray(datasets.load_mni152_brain_mask(resolution=resolution).dataobj) != 0
    gm = datasets.load_mni152_gm_template(resolution=resolution).get_fdata()
    wm = datasets.load_mni152_wm_template(resolution=resolution).get_fdata()
    values = {"WM": wm, "GM": gm, "CSF": np.clip(1 - gm - wm, 0, None)}[kind]
    return _grid(f"{kind} {resolution} mm", values, mask)


def motor_thresholded():
    from nilearn.datasets import load_sample_motor_activation_image
    from nilearn.image import load_img

    z = load_img(load_sample_motor_activation_image()).get_fdata()
    mask = np.isfinite(z) & (z != 0)
    return _grid("motor thresholded", np.where(np.abs(z) < 3, 0.0, z), mask)


def binary_mask(resolution):
    from nilearn.datasets import load_mni152_brain_mask

    brain = np.asarray(load_mni152_brain_mask(resolution=resolution).dataobj) != 0
    box = tuple(slice(i.min(), i.max() + 1) for i in np.nonzero(brain))
    inside = brain[box]
    return _grid(f"mask {resolution} mm", inside.astype(np.float64),
                 np.ones(inside.shape, dtype=bool))


#: Sweeps of the refined fits (fastrena.refine.REFINE_ITER_WARD).
REFINE_ITER = 3


def refine_fit(case, labels):
    """(refined labels, seconds (best of 2)) of ``refine_labels`` after a fit."""
    from fastrena.graphs import lattice_graph
    from fastrena.refine import refine_labels

    graph = lattice_graph(case.mask)
    times = []
    for _ in range(2):
        start = time.perf_counter()
        refined = refine_labels(case.X, graph, labels, REFINE_ITER)
        times.append(time.perf_counter() - start)
    return refined, min(times)


def fastrena_fit(case, k, linkage):
    """(labels, seconds (best of 2), worst cost deviation over its scale),
    without the boundary refinement."""
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
            labels = ReNA(case.mask, n_clusters=k, linkage=linkage,
                          max_refine_iter=0).fit(case.X).labels_
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
    return labels, min(times), deviation


def measure(case, cache, with_ward):
    out = {"n_features": int(case.X.shape[1]), "distinct_values": int(np.unique(case.X).size),
           "fractions": {}}
    for fraction in FRACTIONS:
        k = n_clusters_for(fraction, case.X.shape[1])
        row = {"k": k}
        if with_ward:
            labels, seconds, cached, _ = cache.labels(case, k)
            row["Ward"] = {"error": relative_error(case.X, labels), "seconds": seconds,
                           "cached": cached, "largest": int(np.bincount(labels).max())}
        for name, linkage in (("ward", "ward"), ("default", "nilearn")):
            labels, seconds, deviation = fastrena_fit(case, k, linkage)
            refined, refine_seconds = refine_fit(case, labels)
            for method, found in ((name, labels), (name + " refined", refined)):
                figures = {"error": relative_error(case.X, found), "seconds": seconds,
                           "largest": int(np.bincount(found).max())}
                if found is refined:
                    figures["refine_seconds"] = refine_seconds
                if deviation is not None:
                    figures["cost_deviation"] = deviation
                if with_ward:
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
                                             if m != "Ward" and with_ward else "")
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
             "`+ refine`: refined after them (3 sweeps; `ReNA(linkage=\"ward\")`'s default); "
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
            if "Ward" in row:
                cells = [f"{row['Ward']['error']:.4f}", f"{ward['error_over_ward']:.3f}",
                         f"{ward_r['error_over_ward']:.3f}",
                         f"{ward['largest_over_ward']:.2f} ({ward_r['largest_over_ward']:.2f})",
                         f"{default['error_over_ward']:.3f}",
                         f"{default_r['error_over_ward']:.3f}",
                         f"{ward['seconds']:.2f}", share,
                         f"{row['Ward']['seconds']:.1f}" + (" (cached)" if row["Ward"]["cached"]
                                                            else "")]
            else:
                cells = ["n/a", f"(error {ward['error']:.4f})",
                         f"(error {ward_r['error']:.4f})",
                         f"(largest {ward['largest']}, {ward_r['largest']})",
                         f"(error {default['error']:.4f})", f"(error {default_r['error']:.4f})",
                         f"{ward['seconds']:.2f}", share, "n/a"]
            lines.append(f"| {name} | {case['n_features']:,} | {fraction} | " + " | ".join(cells)
                         + f" | {ward['cost_deviation']:.1e} |")
    ratios = [row["ward"]["error_over_ward"] for case in results.values()
              for row in case["fractions"].values() if "Ward" in row]
    if ratios:
        lines += ["", f"ward / Ward over {len(ratios)} fits: median {np.median(ratios):.3f}, "
                      f"worst {max(ratios):.3f}; largest cluster / Ward's largest at most "
                      f"{max(row['ward']['largest_over_ward'] for case in results.values() for row in case['fractions'].values() if 'Ward' in row):.2f}."]
        refined = [row["ward refined"]["error_over_ward"] for case in results.values()
                   for row in case["fractions"].values() if "Ward" in row]
        lines += ["", f"ward + refine / Ward over {len(refined)} fits: median "
                      f"{np.median(refined):.3f}, worst {max(refined):.3f}."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the 3 mm maps only")
    parser.add_argument("--two-mm", default="WM,CSF",
                        help="the 2 mm maps to run, comma-separated (default: WM,CSF)")
    args = parser.parse_args(argv)
    started = time.time()
    cache = WardCache(RESULTS / "quality" / "ward_cache_tissue.npz")
    makers = [lambda k=k: tissue(k, 3) for k in ("WM", "GM", "CSF")]
    makers += [motor_thresholded, lambda: binary_mask(3)]
    if not args.quick:
        # GM at 2 mm is in the real-data suite (quality/real_suite.py);
        # scikit-learn's Ward on WM 2 mm did not end within 50 min (14 GB).
        makers += [lambda k=k: tissue(k, 2) for k in args.two_mm.split(",") if k]
    results = {}
    for make in makers:
        case = make()
        results[case.name] = measure(case, cache, True)
    if not args.quick:
        for kind in ("WM", "GM", "CSF"):
            case = tissue(kind, 1)
            results[case.name] = measure(case, cache, False)
    command = "python benchmarks/tissue_maps.py" + (" --quick" if args.quick else
                                                    f" --two-mm {args.two_mm}")
    stem = "tissue_maps_quick" if args.quick else "tissue_maps"
    (RESULTS / f"{stem}.md").write_text(markdown(results, command, started))
    (RESULTS / f"{stem}.json").write_text(json.dumps(results, indent=1))
    print(markdown(results, command, started))
    print(f"wrote {RESULTS / (stem + '.md')}")


if __name__ == "__main__":
    main()
