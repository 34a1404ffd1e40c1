"""The boundary refinement's time against the ``"ward"`` fit's (issue 26,
target: at most 0.3x).

    python benchmarks/refine_speed.py             # ~3 min on 2 cores
    python benchmarks/refine_speed.py --repeats 9
    python benchmarks/refine_speed.py --small --repeats 25   # ~2 min

Cases: nilearn's MNI152 T1 and grey-matter maps at 2 mm (one sample,
235,375 voxels), fsaverage5's sulcal depth (20,484 vertices), and the 2 mm
brain mask with 100 smooth samples (``data.smooth_signals``, float32); K/N
= 0.02 and 0.05. For each: ``ReNA(linkage="ward", max_refine_iter=0).fit``
and ``fastrena.refine.refined_fit_labels(X, graph, labels, K,
REFINE_ITER_WARD, ward_cut=tree.labels_at)``: what ``ReNA(linkage="ward")``
runs by default after its merges (one sweep on the merge tree's cut at
``exchange_count(K, N)`` more clusters, the exchange, one last sweep),
with the cut's time, on X
validated by the fit: ``refine_labels`` adds that validation; given, as
the fit gives it, the rounds' own copy of X with the rows they wrote over
flagged, ``arrays.WrittenCopy``, taken from a fit), alternated round after
round (``case.alternate``); the ratio of the medians, and of the minima
(the runs least disturbed by other processes). Alternated with them, the
default fit, which refines: what the refinement adds to a fit, over the
unrefined fit's time ("in the fit", medians). Writes
``results/refine_speed.json``.

``--small``: the real-data suite's smaller fits instead (the motor map,
T1 at 3 mm, fsaverage5's thickness, the cell photo, the faces, the digits,
the ramp and the quantized fields, on the suite's graphs; K at least 2),
where the refinement's fixed costs weigh most; writes
``results/refine_speed_small.json``.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "quality"))
from case import alternate, save_result, warn_if_busy  # noqa: E402


def cases():
    from nilearn import datasets

    from data import mni_mask, smooth_signals

    mask = np.asarray(datasets.load_mni152_brain_mask(resolution=2).dataobj) != 0
    t1 = datasets.load_mni152_template(resolution=2).get_fdata()
    gm = datasets.load_mni152_gm_template(resolution=2).get_fdata()
    yield "MNI T1 2 mm", t1[mask][None], {"mask_img": mask}
    yield "MNI GM 2 mm", gm[mask][None], {"mask_img": mask}
    import real_cases

    surf = real_cases.fsaverage5("sulcal")
    yield "fsaverage5 sulcal", surf.X, {"connectivity": surf.A}
    _, mask2 = mni_mask(2)
    yield ("MNI 2 mm, 100 smooth samples (float32)",
           smooth_signals(mask2, 100, dtype=np.float32), {"mask_img": mask2})


def small_cases():
    """The real-data suite's smaller fits (``--small``): where the
    refinement's fixed costs weigh most."""
    import real_cases

    for make in (real_cases.motor_map, lambda: real_cases.mni("T1", 3),
                 lambda: real_cases.fsaverage5("thickness"), lambda: real_cases.image("cell"),
                 real_cases.lfw_subset, real_cases.digits, real_cases.ramp,
                 real_cases.quantized):
        case = make()
        yield case.name, np.asarray(case.X), {"connectivity": case.A}


def main(argv=None):
    from fastrena import ReNA, agglomeration
    from fastrena.refine import REFINE_ITER_WARD, refined_fit_labels

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--small", action="store_true",
                        help="the real-data suite's smaller fits instead (use more repeats)")
    args = parser.parse_args(argv)
    load_before = warn_if_busy()
    start = time.perf_counter()
    rows = []
    print(f"| case | K/N | ward fit (median, min) | refine, {REFINE_ITER_WARD} sweeps (median, min) | "
          "ratio of medians | ratio of minima | in the fit | load |")
    print("|---|---|---|---|---|---|---|---|")
    for name, X, graph in (small_cases() if args.small else cases()):
        for fraction in (0.02, 0.05):
            k = max(2, int(round(fraction * X.shape[1])))
            # The fit's rounds leave their feature-major copy of X to the
            # refinement (fastrena.agglomeration): the one a fit hands over
            # here, with the rows its rounds wrote over flagged
            # (arrays.WrittenCopy: the refinement copies those again).
            handed = []

            def keep(*args, spare=None, **kwargs):
                handed.append(spare)
                return refined_fit_labels(*args, spare=spare, **kwargs)

            agglomeration.refined_fit_labels = keep
            try:
                ReNA(n_clusters=k, linkage="ward", **graph).fit(X)
            finally:
                agglomeration.refined_fit_labels = refined_fit_labels
            spare = handed[0]
            fit = ReNA(n_clusters=k, linkage="ward", max_refine_iter=0, compute_full_tree=True,
                       **graph).fit(X)
            tree, g = fit.tree_, fit.layout_.graph
            n = fit.n_clusters_

            def refine():
                return refined_fit_labels(X, g, fit.labels_, n, REFINE_ITER_WARD,
                                          ward_cut=tree.labels_at, spare=spare)

            refine()   # compiled out of the times
            times = alternate({
                "fit": lambda: ReNA(n_clusters=k, linkage="ward", max_refine_iter=0,
                                    **graph).fit(X),
                "refine": refine,
                "refined fit": lambda: ReNA(n_clusters=k, linkage="ward", **graph).fit(X)},
                args.repeats)
            fit_t, ref_t = times["fit"], times["refine"]
            row = {"case": name, "fraction": fraction, "k": k,
                   "fit_median": fit_t["median"], "fit_min": min(fit_t["runs"]),
                   "refine_median": ref_t["median"], "refine_min": min(ref_t["runs"])}
            row["ratio_medians"] = row["refine_median"] / row["fit_median"]
            row["ratio_minima"] = row["refine_min"] / row["fit_min"]
            row["refined_fit_median"] = times["refined fit"]["median"]
            row["in_fit"] = row["refined_fit_median"] / row["fit_median"] - 1.0
            import os

            row["load"] = os.getloadavg()[0]
            rows.append(row)
            print(f"| {name} | {fraction} | {row['fit_median']:.3f} s, {row['fit_min']:.3f} s "
                  f"| {row['refine_median']:.3f} s, {row['refine_min']:.3f} s | "
                  f"{row['ratio_medians']:.2f} | {row['ratio_minima']:.2f} | "
                  f"{row['in_fit']:.2f} | {row['load']:.1f} |", flush=True)
    save_result(HERE / "results", "refine_speed_small.json" if args.small else "refine_speed.json",
                start, load_before,
                settings={"refine_iter": REFINE_ITER_WARD, "repeats": args.repeats}, rows=rows)


if __name__ == "__main__":
    main()
