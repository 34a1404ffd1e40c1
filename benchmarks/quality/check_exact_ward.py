"""Checks the exact Ward reference (exact_ward.py) against scikit-learn:

    python benchmarks/quality/check_exact_ward.py                # ~25 min, one core
    python benchmarks/quality/check_exact_ward.py --store        # and cache Ward's labels

First the small random graphs of ``exact_ward.random_checks`` (whole trees
against ``sklearn.cluster.ward_tree``), then the real cases at 3 mm and the
motor maps: per (case, K) scikit-learn's ``FeatureAgglomeration(linkage=
"ward", connectivity=A)`` and ``exact_ward.ward_labels``, each timed once
(the reference after numba's compile), their ``relative_error``, whether the
partitions are the same, and the largest cluster. ``--store``: scikit-learn's
labels of the tissue cases go into the real suite's Ward cache
(``real_suite.WardCache``) where it has none, so that they are not fitted
again. ``--json PATH`` writes every figure. Never asserts: it measures.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import exact_ward  # noqa: E402
import real_cases  # noqa: E402
from real_suite import WardCache, n_clusters_for, relative_error, sklearn_fit  # noqa: E402

MAKERS = [lambda: real_cases.mni("T1", 3), lambda: real_cases.mni("GM", 3),
          lambda: real_cases.mni("WM", 3, group="tissue"), real_cases.motor_map,
          lambda: real_cases.mni("CSF", 3, group="tissue"), real_cases.motor_map_thresholded,
          lambda: real_cases.brain_mask(3)]


def say(message):
    print(message, flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", action="store_true",
                        help="cache scikit-learn's labels of the tissue cases")
    parser.add_argument("--json", type=Path, help="write the figures there")
    parser.add_argument("--no-random", action="store_true", help="skip the random graphs")
    args = parser.parse_args(argv)
    out = {"random": [], "cases": []}
    if not args.no_random:
        start = time.perf_counter()
        rows = exact_ward.random_checks()
        out["random"] = [dict(zip(("n", "edges", "samples", "levels", "k", "same_partition",
                                   "error_difference", "same_tree", "distance_gap"),
                                  [v if isinstance(v, (bool, float)) else int(v) for v in row]))
                         for row in rows]
        say(f"random graphs: {sum(r[5] for r in rows)}/{len(rows)} same partitions, "
            f"whole trees identical: {all(r[7] for r in rows)}, largest relative error "
            f"difference {max(r[6] for r in rows):.2e}, largest distance gap "
            f"{max(r[8] for r in rows):.1e} ({time.perf_counter() - start:.0f} s)")
    cache = WardCache() if args.store else None
    exact_ward.ward_labels(np.arange(3.0)[None], np.eye(3, k=1), 2)   # compile / load
    for make in MAKERS:
        case = make()
        for fraction in case.fractions:
            k = n_clusters_for(fraction, case.X.shape[1])
            theirs, sk_seconds, messages = sklearn_fit(case, k)
            start = time.perf_counter()
            ours = exact_ward.ward_labels(case.X, case.A, k)
            ex_seconds = time.perf_counter() - start
            e_sk, e_ex = relative_error(case.X, theirs), relative_error(case.X, ours)
            row = {"case": case.name, "n": int(case.X.shape[1]), "fraction": fraction, "k": k,
                   "sklearn_error": e_sk, "exact_error": e_ex,
                   "abs_difference": abs(e_ex - e_sk),
                   "relative_difference": abs(e_ex - e_sk) / e_sk if e_sk > 0 else
                   (0.0 if e_ex == 0 else float("inf")),
                   "same_partition": bool(exact_ward.same_partition(ours, theirs)),
                   "sklearn_largest": int(np.bincount(theirs).max()),
                   "exact_largest": int(np.bincount(ours).max()),
                   "sklearn_seconds": sk_seconds, "exact_seconds": ex_seconds,
                   "sklearn_warnings": messages}
            out["cases"].append(row)
            stored = ""
            if cache is not None and case.group == "tissue" and cache.cached(case, k)[0] is None:
                cache.store(case, k, theirs, sk_seconds, "sklearn")
                stored = ", stored"
            say(f"{case.name} K={k}: sklearn {e_sk:.10f} ({sk_seconds:.1f} s), exact "
                f"{e_ex:.10f} ({ex_seconds:.2f} s), |diff| {row['abs_difference']:.1e}, same "
                f"partition {row['same_partition']}, largest {row['sklearn_largest']} / "
                f"{row['exact_largest']}{stored}")
    if out["cases"]:
        say(f"real cases: {sum(r['same_partition'] for r in out['cases'])}/{len(out['cases'])} "
            f"same partitions, largest |error difference| "
            f"{max(r['abs_difference'] for r in out['cases']):.1e} (relative "
            f"{max(r['relative_difference'] for r in out['cases']):.1e}); scikit-learn "
            f"{sum(r['sklearn_seconds'] for r in out['cases']):.0f} s, exact "
            f"{sum(r['exact_seconds'] for r in out['cases']):.1f} s in all")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
