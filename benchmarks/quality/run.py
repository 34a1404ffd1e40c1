"""Quality benchmark: ReNA (fastrena, both linkages; nilearn) against Ward,
average and single linkage, SLIC, grid downsampling and sparse random
projection, on the paper's kind of evidence. Offline, one command:

    python benchmarks/quality/run.py            # ~20 min on 2 cores
    python benchmarks/quality/run.py --quick    # ~3 min: MNI 3 mm and digits
    python benchmarks/quality/run.py --real     # only the real-data suite (real_suite.py)
    python benchmarks/quality/run.py --real --quick  # its images, digits, ramp, quantized

Writes ``benchmarks/results/quality.md`` (tables), ``benchmarks/results/
quality/*.png`` (figures) and ``benchmarks/results/quality/quality.json``
(every number); the full run then runs the real-data suite
(``real_suite.py``: ``results/quality_real.md``). Never asserts: it measures.
"""

import argparse
import datetime
import json
import platform
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import cases  # noqa: E402
import peers  # noqa: E402
import scores  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "results"
FRACTIONS = (0.02, 0.05, 0.1, 0.2)
#: One average-linkage fit took 96 s at 3 mm (70k features, K/N = 0.05) on
#: this machine, and grows faster than linearly: it is run on graphs up to
#: this size, and on MNI 3 mm at K/N = 0.05 only.
AVERAGE_MAX_FEATURES = 25_000
#: Random projection's reconstruction solves P P^T directly up to this K.
RANDOM_PROJECTION_MAX_K = 6000
#: scikit-image's slic (0.26) took 1.1 GB at 3 mm but was killed for
#: using all 24 GB of this machine at 2 mm (235k voxels x 100 channels).
SLIC_MAX_FEATURES = 100_000

START = time.perf_counter()


def say(message):
    print(f"[{time.perf_counter() - START:7.1f} s] {message}", flush=True)


def n_clusters_for(fraction, n_features):
    return max(2, int(round(fraction * n_features)))


def skip_reason(name, case, fraction, k):
    if name == "average" and case.clean.shape[1] > AVERAGE_MAX_FEATURES and not (
            case.name == "MNI 3 mm" and fraction == 0.05):
        return "time (one fit: 96 s at 3 mm)"
    if name == "SLIC" and case.clean.shape[1] > SLIC_MAX_FEATURES:
        return "memory (over 24 GB at 2 mm)"
    if name == peers.RANDOM_PROJECTION and k > RANDOM_PROJECTION_MAX_K:
        return f"time (K > {RANDOM_PROJECTION_MAX_K})"
    return None


def measure_case(case, fractions, methods):
    """{method: {fraction: figures}} on one case."""
    out = {}
    for name in methods:
        if not peers.applicable(name, case):
            continue
        out[name] = {}
        for fraction in fractions:
            k = n_clusters_for(fraction, case.clean.shape[1])
            reason = skip_reason(name, case, fraction, k)
            if reason:
                out[name][fraction] = {"skipped": reason}
                continue
            if name == peers.RANDOM_PROJECTION:
                start = time.perf_counter()
                recon = peers.random_projection_reconstruction(case.noisy, k)
                figures = {"seconds": time.perf_counter() - start, "n_clusters": k}
            else:
                labels, seconds = peers.timed_labels(name, case, k)
                recon = scores.cluster_reconstruction(case.noisy, labels)
                figures = {"seconds": seconds, **scores.size_figures(labels)}
            figures["error"] = scores.relative_error(case.clean, recon)
            out[name][fraction] = figures
        say(f"{case.name}: {name} done")
    for name in out:
        for fraction, figures in out[name].items():
            ward = out.get("Ward", {}).get(fraction, {})
            if "error" in figures and "error" in ward:
                figures["error_over_ward"] = figures["error"] / ward["error"]
    return out


def exact_k_rates(n_seeds, fractions, methods):
    """Share of seeds (MNI 4 mm, S = 20, new fields and noise per seed)
    where each method returns exactly K clusters."""
    hits = {name: {f: 0 for f in fractions} for name in methods}
    for seed in range(n_seeds):
        case = cases.mni(4, n_samples=20, seed=seed)
        for name in methods:
            for fraction in fractions:
                k = n_clusters_for(fraction, case.clean.shape[1])
                labels, _ = peers.timed_labels(name, case, k)
                hits[name][fraction] += int(labels.max() + 1 == k)
        say(f"exact K: seed {seed} done")
    return {name: {f: h / n_seeds for f, h in row.items()} for name, row in hits.items()}


def downstream(fractions):
    """Cross-validated accuracy on the motor-map task, raw and reduced."""
    from fastrena import ReNA
    from nilearn.regions import ReNA as NilearnReNA
    from sklearn.cluster import FeatureAgglomeration
    from sklearn.random_projection import SparseRandomProjection

    X, y, mask_img, mask = cases.motor_task(amplitude=0.8)
    A = cases._grid_adjacency(mask)
    out = {"raw": scores.cv_accuracy(None, X, y)}
    reducers = {
        "fastrena": lambda k: ReNA(mask, n_clusters=k),
        "fastrena ward": lambda k: ReNA(mask, n_clusters=k, linkage="ward"),
        "nilearn": lambda k: NilearnReNA(mask_img, n_clusters=k),
        "Ward": lambda k: FeatureAgglomeration(n_clusters=k, connectivity=A),
        "grid": lambda k: scores.GridPooling(mask, k),
        "random projection": lambda k: SparseRandomProjection(k, random_state=0),
    }
    for name, make in reducers.items():
        out[name] = {}
        for fraction in fractions:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # nilearn's 0/0
                out[name][fraction] = scores.cv_accuracy(
                    make(n_clusters_for(fraction, X.shape[1])), X, y)
        say(f"downstream: {name} done")
    return out


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------


def _cell(figures, key, fmt):
    if figures is None:
        return "n/a"
    if "skipped" in figures:
        return "skipped"
    return format(figures[key], fmt)


def markdown(results, header):
    lines = [header, ""]
    fractions = results["fractions"]
    head = "| method | " + " | ".join(f"K/N={f}" for f in fractions) + " |"
    rule = "|---|" + "---|" * len(fractions)
    lines += ["## Error to the clean signal, as a ratio to Ward's", "",
              "`||clean - reconstruction(noisy)|| / ||clean||` over Ward's (same "
              "connectivity). Below 1: closer to the clean signal than Ward.", ""]
    for case, table in results["cases"].items():
        ward = table.get("Ward", {})
        lines += [f"### {case}", "", "Ward's error: " + ", ".join(
            f"{ward[f]['error']:.4f}" for f in fractions if f in ward), "", head, rule]
        for name, row in table.items():
            lines.append(f"| {name} | " + " | ".join(
                _cell(row.get(f), "error_over_ward", ".3f") for f in fractions) + " |")
        lines += ["", "Largest cluster / mean size (% singletons):", "", head, rule]
        for name, row in table.items():
            if name == peers.RANDOM_PROJECTION:
                continue
            lines.append(f"| {name} | " + " | ".join(
                "skipped" if "skipped" in row[f] else
                f"{row[f]['largest_over_mean']:.1f} ({row[f]['singletons_pct']:.0f} %)"
                for f in fractions) + " |")
        lines += ["", "Fit time, seconds:", "", head, rule]
        for name, row in table.items():
            lines.append(f"| {name} | " + " | ".join(
                _cell(row.get(f), "seconds", ".2f") for f in fractions) + " |")
        lines.append("")
    rates = results["exact_k"]
    lines += ["## Exact-K rate", "",
              f"Share of {results['exact_k_seeds']} seeds (MNI 4 mm, 20 samples, new "
              "fields and noise each seed) giving exactly K clusters.", "", head, rule]
    for name, row in rates.items():
        lines.append(f"| {name} | " + " | ".join(f"{row[f]:.2f}" for f in fractions) + " |")
    down = results["downstream"]
    dfr = results["downstream_fractions"]
    lines += ["", "## Downstream: motor-map classification", "",
              "5-fold stratified accuracy of an l2 logistic regression (C=1, standardised "
              "features) on 200 MNI 3 mm scans: smooth noise, plus 0.8 x nilearn's "
              f"motor activation map for half of them. Raw features: {down['raw']:.3f}.",
              "", "| reducer | " + " | ".join(f"K/N={f}" for f in dfr) + " |",
              "|---|" + "---|" * len(dfr)]
    for name, row in down.items():
        if name != "raw":
            lines.append(f"| {name} | " + " | ".join(f"{row[f]:.3f}" for f in dfr) + " |")
    return "\n".join(lines) + "\n"


def figures(results, folder):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    fractions = results["fractions"]
    names = sorted({n for t in results["cases"].values() for n in t})
    colors = {n: plt.cm.tab10(i % 10) for i, n in enumerate(names)}
    for key, ylabel, fname, log in [
            ("error_over_ward", "error / Ward's error", "error_vs_k.png", False),
            ("largest_over_mean", "largest cluster / mean size", "cluster_sizes.png", True),
            ("seconds", "fit time (s)", "fit_time.png", True)]:
        n = len(results["cases"])
        n_cols = min(n, 3)
        n_rows = -(-n // n_cols)
        fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.2 * n_cols, 3.4 * n_rows + 0.8),
                                 squeeze=False)
        for ax in axes.ravel()[n:]:
            ax.set_visible(False)
        for ax, (case, table) in zip(axes.ravel(), results["cases"].items()):
            for name, row in table.items():
                xs = [f for f in fractions if key in row.get(f, {})]
                if xs:
                    ax.plot(xs, [row[f][key] for f in xs], "o-", label=name,
                            color=colors[name])
            ax.set_xscale("log")
            if log:
                ax.set_yscale("log")
            if key == "error_over_ward":
                ax.set_ylim(0.5, 1.5)  # single linkage etc. run off the top
                ax.axhline(1.0, color="k", lw=0.5)
            ax.set_title(case)
            ax.set_xlabel("K / N")
            ax.set_xticks(fractions, [str(f) for f in fractions])
            ax.xaxis.set_minor_formatter(NullFormatter())
        for row in axes:
            row[0].set_ylabel(ylabel)
        handles = {}
        for ax in axes.ravel():  # every method, whichever panel has it
            for h, label in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(label, h)
        fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=5,
                   fontsize=8)
        fig.tight_layout(rect=(0, 0.8 / (3.4 * n_rows + 0.8), 1, 1))
        fig.savefig(folder / fname, dpi=90)
        plt.close(fig)
    down = results["downstream"]
    fig, ax = plt.subplots(figsize=(5, 3.6))
    dfr = results["downstream_fractions"]
    for name, row in down.items():
        if name != "raw":
            ax.plot(dfr, [row[f] for f in dfr], "o-", label=name)
    ax.axhline(down["raw"], color="k", ls="--", label="raw features")
    ax.set_xscale("log")
    ax.set_xticks(dfr, [str(f) for f in dfr])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("K / N")
    ax.set_ylabel("CV accuracy")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(folder / "downstream.png", dpi=90)
    plt.close(fig)


def _float_keys(table):
    """JSON turned the K/N keys into strings: turn them back."""
    def key(k):
        try:
            return float(k)
        except ValueError:
            return k
    return {key(k): v for k, v in table.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="MNI 3 mm and digits, two K/N, 5 seeds: a smoke run")
    parser.add_argument("--replot", action="store_true",
                        help="only redraw the figures from the last run's quality.json")
    parser.add_argument("--real", action="store_true",
                        help="only the real-data suite (real_suite.py); with --quick: "
                        "images, digits, ramp and quantized")
    parser.add_argument("--max-features", type=int, default=None,
                        help="with --real: leave out cases with more features (the 1 mm "
                             "tissue maps have 1,882,989; on a loaded machine they take "
                             "most of the run)")
    args = parser.parse_args(argv)
    if args.real:
        import real_suite

        real_suite.run(quick=args.quick, command="python benchmarks/quality/run.py --real"
                       + (" --quick" if args.quick else "")
                       + (f" --max-features {args.max_features}" if args.max_features
                          else ""), max_features=args.max_features)
        return
    if args.replot:
        folder = RESULTS / ("quality-quick" if args.quick else "quality")
        figures(json.loads((folder / "quality.json").read_text(), object_hook=_float_keys),
                folder)
        return
    fractions = (0.05, 0.1) if args.quick else FRACTIONS
    makers = ([lambda: cases.mni(3), cases.digits] if args.quick else
              [lambda: cases.mni(3), lambda: cases.mni(2), cases.fsaverage5, cases.camera,
               cases.china, cases.digits])
    methods = list(peers.CLUSTERINGS) + [peers.RANDOM_PROJECTION]

    # numba compiles once per process: keep it out of the fit times
    warm = cases.digits()
    for name in ("fastrena", "fastrena ward"):
        for k in (2, 5, 20):  # exact-K cuts and mutual levels compile too
            peers.timed_labels(name, warm, k)

    results = {"fractions": list(fractions), "cases": {}}
    for make in makers:
        case = make()
        say(f"{case.name}: {case.clean.shape[0]} samples x {case.clean.shape[1]} features")
        results["cases"][case.name] = measure_case(case, fractions, methods)
    n_seeds = 5 if args.quick else 20
    results["exact_k_seeds"] = n_seeds
    results["exact_k"] = exact_k_rates(
        n_seeds, fractions, ["fastrena", "fastrena ward", "nilearn", "Ward", "single",
                             "SLIC"])
    results["downstream_fractions"] = [0.05] if args.quick else [0.02, 0.05, 0.1]
    results["downstream"] = downstream(results["downstream_fractions"])

    import fastrena
    import nilearn
    import sklearn
    import skimage

    minutes = (time.perf_counter() - START) / 60
    # --quick never overwrites the committed figures of a full run
    folder = RESULTS / ("quality-quick" if args.quick else "quality")
    header = (
        "# Quality benchmark\n\n"
        f"`python benchmarks/quality/run.py{' --quick' if args.quick else ''}`, "
        f"{datetime.date.today()}, {minutes:.1f} min on {platform.machine()} "
        f"({platform.python_version()}; fastrena {fastrena.__version__}, nilearn "
        f"{nilearn.__version__}, scikit-learn {sklearn.__version__}, scikit-image "
        f"{skimage.__version__}). Figures: `benchmarks/results/{folder.name}/*.png`. "
        "\"skipped\": not run for time (see `run.py`); \"n/a\": the method does not "
        "apply (nilearn's ReNA needs a NIfTI mask; SLIC and grid need a grid).")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "quality.json").write_text(json.dumps(results, indent=1, default=str))
    report = folder / "quality.md" if args.quick else RESULTS / "quality.md"
    report.write_text(markdown(results, header))
    figures(results, folder)
    say("done")
    if not args.quick:
        import real_suite

        real_suite.run(command="python benchmarks/quality/run.py")


if __name__ == "__main__":
    main()
