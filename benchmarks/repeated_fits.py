"""Many fits on one graph (issue 30, point 3): 25 bootstrap fits of one
``ReNA(linkage="ward")`` with fastrena's graph cache, against the same 25
fits with the cache off (each pays for its graph, as one fit alone does).

    python benchmarks/repeated_fits.py              # ~5 min on 2 cores
    python benchmarks/repeated_fits.py --res 3 --repeats 1

nilearn's bundled MNI152 brain mask (2 mm: 235,375 voxels), 100 smooth
samples (``data.smooth_signals``, sigma 2 voxels). Each round draws 25
bootstraps (hidimstat's ensembles: ``bootstrap_frac=0.3``, 30 of the 100
samples without replacement) and fits a ``clone`` of the estimator on each
(hidimstat clones it: a deep copy of the mask or matrix), for the graph
given as the mask image and as ``grid_to_graph``'s connectivity matrix
(hidimstat's way). "cache on" clears the cache first, so its first fit
builds the graph; "cache off" is ``GRAPH_CACHE.max_bytes = 0``. The two
alternate round after round; the figure is the median of ``--repeats``
rounds, and the ratio the cached total over the uncached one. Every
cached fit's labels are checked against the uncached fit of the same
bootstrap. Since a fit's time on a shared machine varies by more than
the graph costs, the graph step alone is timed too: the estimator's
``feature_space(...).graph`` (what every fit starts with) on a miss and on
a hit, median of 25 each. Writes ``results/repeated_fits.json``.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from case import alternate, save_result, warn_if_busy  # noqa: E402
from data import mni_mask, smooth_signals  # noqa: E402

N_BOOTSTRAPS = 25
FRACTION = 0.3


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--res", type=int, default=2, help="mask resolution in mm (default: 2)")
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3, help="alternated rounds (default: 3)")
    parser.add_argument("--out", default=str(HERE / "results"))
    args = parser.parse_args(argv)
    from sklearn.base import clone
    from sklearn.feature_extraction.image import grid_to_graph

    from fastrena import ReNA
    from fastrena.graphs import GRAPH_CACHE
    from fastrena.layouts import feature_space

    load_before = warn_if_busy()
    start = time.perf_counter()
    img, mask = mni_mask(args.res)
    X = smooth_signals(mask, args.samples)
    rng = np.random.default_rng(0)
    size = int(round(FRACTION * args.samples))
    bootstraps = [rng.choice(args.samples, size, replace=False) for _ in range(N_BOOTSTRAPS)]
    estimators = {
        "mask image": ReNA(img, n_clusters=args.clusters, linkage="ward"),
        "connectivity": ReNA(n_clusters=args.clusters, linkage="ward",
                             connectivity=grid_to_graph(*mask.shape, mask=mask)),
    }
    max_bytes = GRAPH_CACHE.max_bytes

    def fits(estimator, cached):
        GRAPH_CACHE.clear()
        GRAPH_CACHE.max_bytes = max_bytes if cached else 0
        try:
            return [clone(estimator).fit(X[rows]).labels_ for rows in bootstraps]
        finally:
            GRAPH_CACHE.max_bytes = max_bytes

    rows = []
    for name, estimator in estimators.items():
        estimator.fit(X[bootstraps[0]])   # numba's first calls
        on, off = fits(estimator, True), fits(estimator, False)
        assert all(np.array_equal(a, b) for a, b in zip(on, off)), "labels differ"
        times = alternate({"cache on": lambda e=estimator: fits(e, True),
                           "cache off": lambda e=estimator: fits(e, False)}, args.repeats)
        t_on, t_off = times["cache on"]["median"], times["cache off"]["median"]

        def graph_step(e=estimator):
            return feature_space(clone(e).mask_img, clone(e).connectivity, X.shape[1]).graph

        GRAPH_CACHE.clear()
        graph_step()
        hit = alternate({"hit": graph_step}, 25)["hit"]["median"]
        GRAPH_CACHE.max_bytes = 0
        miss = alternate({"miss": graph_step}, 25)["miss"]["median"]
        GRAPH_CACHE.max_bytes = max_bytes
        rows.append({"graph given as": name, "cache_on_seconds": t_on,
                     "cache_off_seconds": t_off, "ratio": t_on / t_off, "runs": times,
                     "graph_step_miss_seconds": miss, "graph_step_hit_seconds": hit,
                     "one_fit_seconds": t_off / N_BOOTSTRAPS})
        print(f"{name}: the graph step {1000 * miss:.0f} ms built, {1000 * hit:.0f} ms "
              f"from the cache; one fit {t_off / N_BOOTSTRAPS:.2f} s", flush=True)
        print(f"{name}: {N_BOOTSTRAPS} bootstrap fits {t_on:.2f} s with the cache, "
              f"{t_off:.2f} s without (25 x one fit): ratio {t_on / t_off:.3f}, "
              f"{(t_off - t_on) / (N_BOOTSTRAPS - 1) * 1000:.0f} ms saved per fit after "
              "the first", flush=True)
    save_result(args.out, "repeated_fits.json", start, load_before,
                settings={"resolution_mm": args.res, "n_samples": args.samples,
                          "bootstrap_samples": size, "n_bootstraps": N_BOOTSTRAPS,
                          "n_clusters": args.clusters, "n_features": int(mask.sum()),
                          "repeats": args.repeats},
                rows=rows)


if __name__ == "__main__":
    main()
