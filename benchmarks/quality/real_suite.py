"""The quality benchmark's real-data suite (issue 13, point 4): how well each
method's clusters approximate real data, as a ratio to scikit-learn's Ward.
Run through ``run.py``::

    python benchmarks/quality/run.py --real            # every case
    python benchmarks/quality/run.py --real --quick    # images, digits, stress cases

Error of a clustering with labels L on data X (n_samples, n_features), no
added noise: ``||X - R|| / ||X - X's row means||`` (Frobenius), R giving each
feature its cluster's mean (fastrena's ``inverse_transform(transform(X))``
with ``scaling=False``), shown as a ratio to Ward's error at the same K
(``FeatureAgglomeration(n_clusters=K, linkage="ward", connectivity=A)``, A
the case's graph).

Ward's labels are cached per (case, K) in ``results/quality/
ward_cache_real.npz`` (with the fit time of the run that computed them),
keyed by a hash of the case's data, graph, K and the reference that made
them: scikit-learn (its version) up to ``EXACT_WARD_ABOVE`` features, the
exact reference ``exact_ward.py`` (its version; the same merges as
scikit-learn's ``ward_tree``) above. A rerun after a change in fastrena
refits only fastrena, nilearn and grid. The tissue cases (real_cases.py)
get their own tables. Never asserts: it measures.
"""

import datetime
import hashlib
import json
import os
import platform
import re
import subprocess
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import sparse

import peers
import real_cases
from scores import size_figures

RESULTS = Path(__file__).resolve().parents[1] / "results"
CACHE = RESULTS / "quality" / "ward_cache_real.npz"
#: Ward's labels come from scikit-learn's FeatureAgglomeration up to this
#: many features, from exact_ward.py above. scikit-learn's ward_tree runs its
#: heap in Python over growing lists: 5-350 s per fit at 3 mm (69,765
#: voxels; WM and CSF, with their plateaus, the slowest), 620-660 s for MNI
#: GM 2 mm (235,375), over 50 min for WM 2 mm and hours at 1 mm (1.88 M) on
#: this machine, while exact_ward.py makes the same merges (whole trees
#: bit-identical on random graphs, the same partitions on every 3 mm case)
#: in 0.1-3 s at 3 mm and ~70 s at 1 mm. 150,000 keeps scikit-learn itself
#: on every image, surface, stress and 3 mm brain case (the 3 mm brain mask's
#: bounding box, 152,256 voxels, is just above). A scikit-learn entry already
#: in the cache is used whatever N (MNI T1 and GM 2 mm, brain mask 3 mm).
EXACT_WARD_ABOVE = 150_000
REPO = Path(__file__).resolve().parents[2]
JITTER = 1e-6
#: every fit but Ward's is repeated until this many seconds are spent, at
#: most REPEATS times, and the fastest time kept
REPEATS = 3
REPEAT_SECONDS = 0.3

#: method -> column title; "Ward" is the reference
METHODS = {
    "fastrena": "default",
    "fastrena refined": "default + refine",
    "fastrena ward": "ward, not refined",
    "fastrena ward refined": "ward (+ refine, its default)",
    "nilearn": "nilearn",
    "grid": "grid",
}
FASTRENA = ("fastrena", "fastrena refined", "fastrena ward", "fastrena ward refined")

#: Sweeps of the refined methods: fastrena.refine.REFINE_ITER_WARD, what
#: ReNA(linkage="ward") runs by default (after "ward", with the exchange).
REFINE_ITER = 2

START = time.perf_counter()


def say(message):
    print(f"[{time.perf_counter() - START:7.1f} s] {message}", flush=True)


def n_clusters_for(fraction, n_features):
    return max(2, int(round(fraction * n_features)))


# --------------------------------------------------------------------------
# measures
# --------------------------------------------------------------------------


def relative_error(X, labels):
    """``||X - cluster means|| / ||X - row means||``."""
    n = int(labels.max()) + 1
    sizes = np.bincount(labels, minlength=n).astype(np.float64)
    means = np.zeros((X.shape[0], n))
    np.add.at(means.T, labels, X.T)
    residual = X - (means / sizes)[:, labels]
    centred = X - X.mean(axis=1, keepdims=True)
    return float(np.linalg.norm(residual) / np.linalg.norm(centred))


# --------------------------------------------------------------------------
# methods
# --------------------------------------------------------------------------


def nilearn_labels(case, k):
    """nilearn's ReNA on the case's grid, as a NIfTI mask (2-D grids get a
    third axis of length 1; features stay in C order)."""
    import nibabel as nib
    from nilearn.regions import ReNA

    mask = case.mask if case.mask.ndim == 3 else case.mask[..., None]
    img = nib.Nifti1Image(mask.astype(np.uint8), np.eye(4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nilearn's own 0/0 and deprecation chatter
        return ReNA(img, n_clusters=k).fit(case.X).labels_


def nilearn_skip(case):
    if case.mask is None:
        return "needs a grid mask"
    if case.X.shape[0] < 2:
        return "1 sample (nilearn's ReNA needs 2)"
    return None


def fit_labels(name, case, k, X=None):
    """(labels, seconds, warning messages). The fit is repeated until
    REPEAT_SECONDS are spent, at most REPEATS times, and the fastest time
    kept: the fits take
    milliseconds, and one burst of load from other processes (numba's
    threads waiting for a core) can multiply a single time by 100. Labels
    must not change between repeats."""
    X = case.X if X is None else X
    refine_times = []
    unrefined = []  # the refined fits' labels before refinement (the cut)
    if name in FASTRENA:
        from fastrena import ReNA
        from fastrena.refine import exchange_count, refine_labels

        linkage = "ward" if "ward" in name else "nilearn"
        graph = {"mask_img": case.mask} if case.mask is not None else {"connectivity": case.A}
        # After "ward", the refinement starts from the merge tree's finer
        # cut and merges back (the exchange): the tree is kept for it.
        exchange = linkage == "ward" and "refined" in name

        def fit():
            # The fit without refinement, then the refinement timed apart
            # (the labels of ReNA(..., max_refine_iter=REFINE_ITER): checked
            # once below).
            rena = ReNA(n_clusters=k, **graph, linkage=linkage, max_refine_iter=0,
                        compute_full_tree=exchange).fit(X)
            if "refined" not in name:
                return rena.labels_
            unrefined[:] = [rena.labels_]
            start = time.perf_counter()
            n = rena.n_clusters_
            if exchange and n >= 2:
                labels = refine_labels(
                    X, rena.layout_.graph,
                    rena.labels_at(n + exchange_count(n, X.shape[1])), REFINE_ITER,
                    n_clusters=n)
            else:
                labels = refine_labels(X, rena.layout_.graph, rena.labels_, REFINE_ITER)
            refine_times.append(time.perf_counter() - start)
            return labels
    elif name == "nilearn":
        def fit():
            return nilearn_labels(case, k)
    elif name == "grid":
        def fit():
            return peers.grid_labels(case.mask, k)
    else:
        raise ValueError(name)
    times, labels = [], None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for repeat in range(REPEATS):
            start = time.perf_counter()
            new = np.asarray(fit(), dtype=np.int64)
            times.append(time.perf_counter() - start)
            if labels is not None and not np.array_equal(new, labels):
                raise RuntimeError(f"{name} on {case.name}, K={k}: labels changed between "
                                   "two fits of the same data")
            labels = new
            if sum(times) >= REPEAT_SECONDS:
                break
    messages = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    if refine_times:
        from fastrena import ReNA

        graph = {"mask_img": case.mask} if case.mask is not None else {"connectivity": case.A}
        linkage = "ward" if "ward" in name else "nilearn"
        whole = ReNA(n_clusters=k, **graph, linkage=linkage,
                     max_refine_iter=REFINE_ITER).fit(X).labels_
        if not np.array_equal(whole, labels):
            # The fit returns the merge tree's cut at K unless the refined
            # partition's sum of squares is lower by more than 1e-12 of it
            # (a tie keeps the cut: the 0/1 brain mask, error 0 either way);
            # refine_labels alone does not compare. The sums here are
            # numpy's, rounded otherwise than the fit's: 2e-12, not 1e-12.
            from fastrena.refine import within_cluster_sse

            cut = unrefined[0]
            refined_sse, cut_sse = within_cluster_sse(X, labels), within_cluster_sse(X, cut)
            if not (np.array_equal(whole, cut) and refined_sse >= cut_sse * (1 - 2e-12)):
                raise RuntimeError(f"{name} on {case.name}, K={k}: refine_labels after the "
                                   "fit differs from ReNA(max_refine_iter=...)")
            labels = np.asarray(whole, dtype=np.int64)
        return labels, min(times), messages, min(refine_times)
    return labels, min(times), messages, None


class WardCache:
    """Ward's labels and fit time per (case, K, reference, hash of data and
    graph). Keys: ``{case}__K{K}__{reference}__{hash}``, reference
    "sklearn" or "exact" (exact_ward.py); keys of the older form
    ``{case}__K{K}__{hash}`` were all scikit-learn's and are read as such."""

    REFERENCES = ("sklearn", "exact")
    _LEGACY = re.compile(r"^(.+)__K(\d+)__([0-9a-f]{16})(__s)?$")

    def __init__(self, path=CACHE):
        self.path = Path(path)
        self.entries = {}
        if self.path.exists():
            with np.load(self.path) as stored:
                for key in stored.files:
                    legacy = self._LEGACY.match(key)
                    if legacy:
                        slug, k, digest, seconds = legacy.groups()
                        key_now = f"{slug}__K{k}__sklearn__{digest}{seconds or ''}"
                    else:
                        key_now = key
                    self.entries[key_now] = stored[key]
        self.hits = self.misses = 0
        self.last_reference = None
        self._exact_warm = False

    @staticmethod
    def reference_for(case):
        return "exact" if case.X.shape[1] > EXACT_WARD_ABOVE else "sklearn"

    @staticmethod
    def key(case, k, reference="sklearn"):
        import sklearn

        import exact_ward

        digest = hashlib.sha256()
        A = sparse.csr_matrix(case.A)
        A.sort_indices()
        for part in (np.ascontiguousarray(case.X, dtype=np.float64), A.indptr.astype(np.int64),
                     A.indices.astype(np.int64)):
            digest.update(str(part.shape).encode())
            digest.update(part.tobytes())
        made_by = {"sklearn": f"sklearn {sklearn.__version__}",
                   "exact": f"exact_ward v{exact_ward.VERSION}"}[reference]
        digest.update(f"ward K={k} {made_by}".encode())
        slug = re.sub(r"\W+", "_", case.name).strip("_")
        return f"{slug}__K{k}__{reference}__{digest.hexdigest()[:16]}"

    def cached(self, case, k):
        """(key, reference) of a cached entry for (case, K), scikit-learn's
        first, or (None, None)."""
        for reference in self.REFERENCES:
            key = self.key(case, k, reference)
            if key in self.entries:
                return key, reference
        return None, None

    def labels(self, case, k):
        """(labels, seconds of the fit that made them, cached?, messages);
        ``self.last_reference`` says which reference made them."""
        key, reference = self.cached(case, k)
        if key is not None:
            self.hits += 1
            self.last_reference = reference
            return self.entries[key].astype(np.int64), float(self.entries[key + "__s"]), True, []
        self.misses += 1
        reference = self.reference_for(case)
        if reference == "exact":
            labels, seconds, messages = self.exact_fit(case, k)
        else:
            labels, seconds, messages = sklearn_fit(case, k)
        self.store(case, k, labels, seconds, reference)
        return labels, seconds, False, messages

    def exact_fit(self, case, k):
        import exact_ward

        if not self._exact_warm:         # numba's compile or cache load: not timed
            path = sparse.diags([np.ones(2)], [1], shape=(3, 3), format="csr")
            exact_ward.ward_labels(np.arange(3.0)[None], path, 2)
            self._exact_warm = True
        start = time.perf_counter()
        labels = exact_ward.ward_labels(case.X, case.A, k)
        return labels, time.perf_counter() - start, []

    def store(self, case, k, labels, seconds, reference):
        """Cache labels made by ``reference`` ("sklearn" or "exact") and
        save; older entries for the same case name and K (other data) go."""
        key = self.key(case, k, reference)
        slug = key.split("__")[0]
        for old in [e for e in self.entries if e.split("__")[0] == slug
                    and e.split("__")[1] == f"K{k}" and not e.startswith(key)]:
            del self.entries[old]           # the same case and K with other data: stale
        self.entries[key] = np.asarray(labels).astype(np.int32)
        self.entries[key + "__s"] = np.array(float(seconds))
        self.last_reference = reference
        self.save()

    def save(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.stem + ".tmp.npz")
        np.savez_compressed(tmp, **self.entries)
        os.replace(tmp, self.path)


def sklearn_fit(case, k):
    """scikit-learn's Ward: (labels, seconds, warning messages)."""
    from sklearn.cluster import FeatureAgglomeration

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        labels = FeatureAgglomeration(n_clusters=k, linkage="ward",
                                      connectivity=case.A).fit(case.X).labels_
        seconds = time.perf_counter() - start
    messages = sorted({f"{w.category.__name__}: {str(w.message)[:160]}" for w in caught})
    return np.asarray(labels, dtype=np.int64), seconds, messages


def warm_up():
    """numba compiles (or loads from its cache) once per process: keep it
    out of the fit times. fastrena's own warm-up first (every kernel,
    the rarer paths too: on 2026-12-07 the ramp's refinement was timed at
    2.37 s, 54x its fit, for a first call that compiled the exchange's
    merges of identical means), then the suite's kinds of graphs."""
    from fastrena import ReNA
    from fastrena.warmup import compile_kernels

    compile_kernels()

    rng = np.random.default_rng(0)
    graphs = [{"mask_img": np.ones((8, 8), dtype=bool)},
              {"mask_img": np.ones((4, 4, 4), dtype=bool)},
              {"connectivity": real_cases.mesh_adjacency(
                  np.array([[i, i + 1, i + 2] for i in range(62)]), 64)}]
    for graph in graphs:
        for n_samples in (1, 3):
            X = np.round(rng.standard_normal((n_samples, 64)) * 2)
            for params in ({}, {"linkage": "ward"}, {"max_refine_iter": 3}):
                for k in (2, 5, 20):
                    ReNA(n_clusters=k, **graph, **params).fit(X)


def error_ratio(error, ward_error):
    """error / Ward's error; Ward's error is 0 where K covers every flat
    region (the binary masks): 1 if the error is 0 too, else inf."""
    if ward_error > 0:
        return error / ward_error
    return 1.0 if error == 0 else float("inf")


def measure_case(case, cache):
    """{"ward": {f: figures}, "methods": {name: {f: figures}}, ...} on one case."""
    n_features = case.X.shape[1]
    cache.last_reference = None
    out = {"group": case.group, "n_samples": int(case.X.shape[0]),
           "n_features": int(n_features), "source": case.source,
           "graph": ("grid mask " + "x".join(map(str, case.mask.shape))
                     if case.mask is not None else "adjacency"),
           "n_edges": int(case.A.nnz // 2),
           "distinct_values": int(np.unique(case.X).shape[0]),
           "fractions": list(case.fractions), "ward": {}, "methods": {}}
    for fraction in case.fractions:
        k = n_clusters_for(fraction, n_features)
        labels, seconds, cached, messages = cache.labels(case, k)
        ward = {"k": k, "seconds": seconds, "cached": cached,
                "reference": cache.last_reference,
                "error": relative_error(case.X, labels), **size_figures(labels),
                "largest": int(np.bincount(labels).max())}
        if messages:
            ward["warnings"] = messages
        out["ward"][fraction] = ward
    say(f"{case.name}: Ward done ({'cached' if all(w['cached'] for w in out['ward'].values()) else 'fitted'})")
    runs = [(name, name, None) for name in METHODS]
    if case.stress:
        rng = np.random.default_rng(0)
        runs.append(("fastrena jittered", "fastrena",
                     case.X + JITTER * rng.uniform(size=case.X.shape)))
    for label, name, X in runs:
        out["methods"][label] = {}
        skip = None
        if name == "nilearn":
            skip = nilearn_skip(case)
        elif name == "grid" and case.mask is None:
            skip = "not a grid"
        for fraction in case.fractions:
            k = n_clusters_for(fraction, n_features)
            if skip:
                out["methods"][label][fraction] = {"skipped": skip}
                continue
            labels, seconds, messages, refine_seconds = fit_labels(name, case, k, X)
            figures = {"k": k, "seconds": seconds, "error": relative_error(case.X, labels),
                       **size_figures(labels)}
            if refine_seconds is not None:
                figures["refine_seconds"] = refine_seconds
            figures["error_over_ward"] = error_ratio(figures["error"],
                                                     out["ward"][fraction]["error"])
            if messages:
                figures["warnings"] = messages
            out["methods"][label][fraction] = figures
    fastrena = out["methods"]["fastrena"]
    if "fastrena jittered" in out["methods"]:
        for fraction, figures in out["methods"]["fastrena jittered"].items():
            figures["plain_over_jittered"] = (fastrena[fraction]["error"] / figures["error"])
    say(f"{case.name}: done")
    return out


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------


def _code_state():
    def git(*args):
        try:
            return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True,
                                  text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    commit = git("rev-parse", "--short", "HEAD")
    diff = git("diff", "HEAD", "--", "src/fastrena")
    state = {"commit": commit, "src_fastrena_modified": bool(diff)}
    if diff:
        state["src_fastrena_diff_sha256"] = hashlib.sha256(diff.encode()).hexdigest()[:12]
    return state


#: groups with their own tables, out of the real-data tables and summary
OWN_TABLES = ("stress", "tissue")


def _section(case):
    return case["group"] if case["group"] in OWN_TABLES else "real"


def _fractions(results, section):
    return sorted({f for c in results["cases"].values() if _section(c) == section
                   for f in c["fractions"]})


def _rows(results, section):
    for name, case in results["cases"].items():
        if _section(case) == section:
            for fraction in case["fractions"]:
                yield name, case, fraction


def _ratio_cell(figures):
    if "skipped" in figures:
        return "n/a"
    if not np.isfinite(figures["error_over_ward"]):
        return f"inf (error {figures['error']:.4f})"
    mark = "" if figures["n_clusters"] == figures["k"] else f" (K={figures['n_clusters']})"
    return f"{figures['error_over_ward']:.3f}{mark}"


def _size_cell(figures):
    if "skipped" in figures:
        return "n/a"
    return f"{figures['largest_over_mean']:.1f} ({figures['singletons_pct']:.0f} %)"


def _time_cell(figures):
    if "skipped" in figures:
        return "n/a"
    return f"{figures['seconds']:.3f}" + (" (cached)" if figures.get("cached") else "")


def summary(results):
    """Per method and K/N over the real-data cases: n, median and worst
    ratio (and the worst case's name)."""
    out = {}
    for method in METHODS:
        out[method] = {}
        for fraction in _fractions(results, "real"):
            ratios = [(case["methods"][method][fraction]["error_over_ward"], name)
                      for name, case, f in _rows(results, "real") if f == fraction
                      and "error_over_ward" in case["methods"][method][fraction]]
            if ratios:
                worst = max(ratios)
                out[method][fraction] = {"n": len(ratios),
                                         "median": float(np.median([r for r, _ in ratios])),
                                         "worst": worst[0], "worst_case": worst[1]}
    return out


def total_times(results):
    """Fit seconds summed over every (real-data case, K) where the method ran."""
    totals = {}
    for method in list(METHODS) + ["Ward"]:
        seconds = [(case["ward"] if method == "Ward" else case["methods"][method])[f].get(
            "seconds") for _, case, f in _rows(results, "real")]
        seconds = [s for s in seconds if s is not None]
        totals[method] = {"seconds": float(sum(seconds)), "n_fits": len(seconds)}
    return totals


def markdown(results):
    meta = results["meta"]
    code = meta["code"]
    lines = [
        "# Quality benchmark: real data", "",
        f"`{meta['command']}`, {meta['date']}, {meta['minutes']:.1f} min "
        f"({meta['ward_fits']} Ward fits, {meta['ward_cached']} from the cache) on "
        f"{meta['machine']} (load average {meta['load_average_1min']['start']:.1f} at the "
        f"start, {meta['load_average_1min']['end']:.1f} at the end); fastrena {meta['versions']['fastrena']} at commit "
        f"{code['commit']}" + (f" with uncommitted changes in src/fastrena (diff sha256 "
                               f"{code['src_fastrena_diff_sha256']})"
                               if code["src_fastrena_modified"] else "") + ", " +
        ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if k != "fastrena") + ".",
        "",
        "Error: `||X - R|| / ||X - X's row means||` (Frobenius), X the data itself "
        "(no added noise), R each feature's cluster mean (`inverse_transform(transform(X))`); "
        "shown as a ratio to scikit-learn Ward's error at the same K "
        "(`FeatureAgglomeration(n_clusters=K, linkage=\"ward\", connectivity=A)`, same graph). "
        "Below 1: closer to the data than Ward. Methods: `default` = `fastrena.ReNA(...)`, "
        "`ward` = `ReNA(..., linkage=\"ward\")` (n_iter=10), `ward n_iter=30`, `nilearn` = "
        "`nilearn.regions.ReNA` (only where there are >= 2 samples), `grid` = grid "
        "downsampling (square/cubic blocks, the side giving the block count closest to K; "
        "its own count in brackets where it differs from K). \"n/a\": the method does not "
        "apply. Ward's fit times marked \"(cached)\" are from the run that computed the "
        "cached labels.", "",
        "## Cases", "",
        "| case | samples | features | graph | distinct values | data |", "|---|---|---|---|---|---|"]
    for name, case in results["cases"].items():
        lines.append(f"| {name} | {case['n_samples']} | {case['n_features']:,} | "
                     f"{case['graph']}, {case['n_edges']:,} edges | "
                     f"{case['distinct_values']:,} | {case['source']} |")
    titles = [METHODS[m] for m in METHODS]
    lines += ["", "## Error / Ward's error (real data)", "",
              "| case | K/N | K | Ward's error | " + " | ".join(titles) + " |",
              "|---|---|---|---|" + "---|" * len(titles)]
    for name, case, f in _rows(results, "real"):
        ward = case["ward"][f]
        lines.append(f"| {name} | {f} | {ward['k']:,} | {ward['error']:.4f} | " + " | ".join(
            _ratio_cell(case["methods"][m][f]) for m in METHODS) + " |")
    lines += ["", "Summary over the real-data cases (stress and tissue cases excluded): median / "
              "worst ratio (worst case), n cases:", "",
              "| method | " + " | ".join(f"K/N={f}" for f in _fractions(results, "real")) + " |",
              "|---|" + "---|" * len(_fractions(results, "real"))]
    for method, row in results["summary"].items():
        lines.append(f"| {METHODS[method]} | " + " | ".join(
            (f"{row[f]['median']:.3f} / {row[f]['worst']:.3f} ({row[f]['worst_case']}), "
             f"n={row[f]['n']}") if f in row else "n/a"
            for f in _fractions(results, "real")) + " |")
    lines += ["", "## Largest cluster / mean size (% singletons), real data", "",
              "| case | K/N | Ward | " + " | ".join(titles) + " |",
              "|---|---|---|" + "---|" * len(titles)]
    for name, case, f in _rows(results, "real"):
        lines.append(f"| {name} | {f} | {_size_cell(case['ward'][f])} | " + " | ".join(
            _size_cell(case["methods"][m][f]) for m in METHODS) + " |")
    lines += ["", "## Fit time, seconds, real data", "",
              f"Fastest of up to {REPEATS} fits (repeated until {REPEAT_SECONDS:g} s "
              "is spent), Ward's excepted (one fit).", "",
              "| case | K/N | Ward | " + " | ".join(titles) + " |",
              "|---|---|---|" + "---|" * len(titles)]
    for name, case, f in _rows(results, "real"):
        lines.append(f"| {name} | {f} | {_time_cell(case['ward'][f])} | " + " | ".join(
            _time_cell(case["methods"][m][f]) for m in METHODS) + " |")
    totals = results["total_seconds"]
    ward = totals["Ward"]["seconds"]
    lines += ["", "Total fit time over the real-data suite (every case and K/N where the "
              "method ran): " + "; ".join(
                  f"{'Ward' if m == 'Ward' else METHODS[m]} {t['seconds']:.2f} s "
                  f"({t['n_fits']} fits)" for m, t in totals.items()) +
              (f". Ward / fastrena ward not refined: "
               f"{ward / totals['fastrena ward']['seconds']:.0f}x, "
               f"Ward / ward + refine: "
               f"{ward / totals['fastrena ward refined']['seconds']:.0f}x "
               "(same fits: nilearn and grid cover fewer cases)."
               if totals["fastrena ward"]["seconds"] > 0 else ".")]
    lines += ["", "## Refinement: time and error", "",
              f"`refine_labels(X, graph, labels, {REFINE_ITER})` after the fit without "
              "refinement (after `\"ward\"`: from the merge tree's cut at "
              "`exchange_count(K, N)` more clusters, with `n_clusters=K`: the exchange), "
              "the labels of `ReNA(..., max_refine_iter="
              f"{REFINE_ITER})` (checked): its time over the fit's (fastest of the "
              "repeats each), and the error of the refined labels over the unrefined "
              "fit's.", "",
              "| case | K/N | ward: refine time / fit time | ward: error refined / not | "
              "default: refine time / fit time | default: error refined / not |",
              "|---|---|---|---|---|---|"]
    for section in ("real", "stress", "tissue"):
        for name, case, f in _rows(results, section):
            cells = []
            for plain, refined in (("fastrena ward", "fastrena ward refined"),
                                   ("fastrena", "fastrena refined")):
                a, b = case["methods"][plain][f], case["methods"][refined][f]
                cells.append(f"{b['refine_seconds'] / a['seconds']:.2f}")
                cells.append(f"{b['error'] / a['error']:.3f}" if a["error"] > 0 else "n/a")
            lines.append(f"| {name} | {f} | " + " | ".join(cells) + " |")
    stress = [(n, c, f) for n, c, f in _rows(results, "stress")]
    if stress:
        cols = list(METHODS)
        lines += ["", "## Stress cases: ties (ramp, quantized), K = N/50", "",
                  "Error / Ward's error. `default jittered`: the default linkage on the same "
                  f"data plus {JITTER:g} x uniform [0, 1) noise (seed 0), its error measured "
                  "on the data itself; `default / jittered` is the default's error over "
                  "that (issue 13's target: <= 1.2; for `ward`: <= 1.10 x Ward's error).", "",
                  "| case | K | Ward's error | " + " | ".join(METHODS[m] for m in cols) +
                  " | default jittered | default / jittered |",
                  "|---|---|---|" + "---|" * (len(cols) + 2)]
        for name, case, f in stress:
            jit = case["methods"]["fastrena jittered"][f]
            lines.append(f"| {name} | {case['ward'][f]['k']:,} | {case['ward'][f]['error']:.4f} | "
                         + " | ".join(_ratio_cell(case["methods"][m][f]) for m in cols) +
                         f" | {_ratio_cell(jit)} | {jit['plain_over_jittered']:.3f} |")
        for title, cell in (("Largest cluster / mean size (% singletons):", _size_cell),
                            ("Fit time, seconds:", _time_cell)):
            lines += ["", title, "",
                      "| case | Ward | " + " | ".join(METHODS[m] for m in cols) +
                      " | default jittered |", "|---|---|" + "---|" * (len(cols) + 1)]
            for name, case, f in stress:
                lines.append(f"| {name} | {cell(case['ward'][f])} | " + " | ".join(
                    cell(case["methods"][m][f]) for m in cols + ["fastrena jittered"]) + " |")
    tissue = list(_rows(results, "tissue"))
    if tissue:
        lines += ["", "## Tissue cases: large flat regions and hubs", "",
                  "Real maps with plateaus (tissue probabilities at 0 or 1, a thresholded "
                  "statistical map, a binary mask: see real_cases.py), one sample each. "
                  "Ward's labels: scikit-learn's (`sklearn`) up to "
                  f"{EXACT_WARD_ABOVE:,} features, above that the exact reference "
                  "`exact_ward.py` (`exact`: the same merges). Error / Ward's error; where "
                  "Ward's error is 0 (K covers every flat region) a method's ratio is 1 if "
                  "its error is 0 too, else inf.", "",
                  "| case | N | K/N | K | Ward | Ward's error | Ward's largest | " +
                  " | ".join(titles) + " |", "|---|---|---|---|---|---|---|" + "---|" * len(titles)]
        for name, case, f in tissue:
            ward = case["ward"][f]
            lines.append(f"| {name} | {case['n_features']:,} | {f} | {ward['k']:,} | "
                         f"{ward.get('reference') or 'sklearn'} | {ward['error']:.4f} | "
                         f"{ward['largest']:,} | " + " | ".join(
                             _ratio_cell(case["methods"][m][f]) for m in METHODS) + " |")
        for title, cell in (("Largest cluster / mean size (% singletons):", _size_cell),
                            ("Fit time, seconds (Ward: one fit):", _time_cell)):
            lines += ["", title, "", "| case | K/N | Ward | " + " | ".join(titles) + " |",
                      "|---|---|---|" + "---|" * len(titles)]
            for name, case, f in tissue:
                lines.append(f"| {name} | {f} | {cell(case['ward'][f])} | " + " | ".join(
                    cell(case["methods"][m][f]) for m in METHODS) + " |")
    notes = []
    for name, case in results["cases"].items():
        for f, ward in case["ward"].items():
            for message in ward.get("warnings", []):
                notes.append(f"{name}, K/N={f}, Ward: {message}")
        for method, row in case["methods"].items():
            for f, figures in row.items():
                for message in figures.get("warnings", []):
                    notes.append(f"{name}, K/N={f}, {method}: {message}")
    if notes:
        lines += ["", "## Warnings raised during the fits", ""] + [
            f"* {n}" for n in sorted(set(notes))]
    return "\n".join(lines) + "\n"


def run(quick=False, command="python benchmarks/quality/run.py --real", max_features=None):
    """Measure every case, write the report and JSON, print the report."""
    import fastrena
    import nilearn
    import sklearn
    import skimage

    start = time.perf_counter()
    code = _code_state()        # the code this process imports, not the code at the end
    load_start = os.getloadavg()
    say("warming up fastrena (numba)")
    warm_up()
    cache = WardCache()
    results = {"cases": {}}
    for case in real_cases.iter_real_cases(quick=quick):
        if max_features is not None and case.X.shape[1] > max_features:
            say(f"{case.name}: left out ({case.X.shape[1]:,} features > --max-features)")
            continue
        say(f"{case.name}: {case.X.shape[0]} samples x {case.X.shape[1]} features")
        # the tissue group repeats MNI GM 3 and 2 mm of the brain group
        name = case.name if case.name not in results["cases"] else f"{case.name} ({case.group})"
        results["cases"][name] = measure_case(case, cache)
    results["summary"] = summary(results)
    results["total_seconds"] = total_times(results)
    results["meta"] = {
        "command": command, "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "minutes": (time.perf_counter() - start) / 60,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "ward_fits": cache.hits + cache.misses, "ward_cached": cache.hits,
        "code": code,
        "load_average_1min": {"start": load_start[0], "end": os.getloadavg()[0]},
        "versions": {"fastrena": fastrena.__version__, "python": platform.python_version(),
                     "numpy": np.__version__, "scikit-learn": sklearn.__version__,
                     "nilearn": nilearn.__version__, "scikit-image": skimage.__version__},
    }
    if quick:
        folder = RESULTS / "quality-quick"
        report, data = folder / "quality_real.md", folder / "quality_real.json"
    else:
        report, data = RESULTS / "quality_real.md", RESULTS / "quality" / "quality_real.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_text(json.dumps(results, indent=1, default=str))
    text = markdown(results)
    report.write_text(text)
    print(text, flush=True)
    say(f"wrote {report.relative_to(REPO)} and {data.relative_to(REPO)}")
    return results
