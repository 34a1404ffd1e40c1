"""Where users run Ward today (issue 30, point 2): scikit-learn's Ward and
fastrena's ``linkage="ward"`` in three whole pipelines, in one run.

    python benchmarks/ward_pipelines.py                 # ~15 min on 2 cores
    python benchmarks/ward_pipelines.py --quick         # 3 mm only, 1 seed
    python benchmarks/ward_pipelines.py --only hidimstat

Offline data only: nilearn's bundled MNI152 brain mask, and smooth random
signals over it (``data.smooth_signals``, sigma 2 voxels) for images.

* **nilearn** ``Parcellations(method="ward", n_parcels=1000)`` on one 4-D
  image of ``--scans`` smooth volumes over the MNI mask at 3 mm and 2 mm:
  scikit-learn's Ward (nilearn as shipped), then fastrena's
  (``fastrena.nilearn_patched(ward=True)``). Error: ``||X - R|| / ||X - X's
  row means||`` of the image's masked data X and R its parcel means (the
  package's compression error), and the ratio of fastrena's to Ward's.
* **hidimstat** ``EnsembleImportance(ClusterImportance(DesparsifiedLasso(
  LassoCV), clustering), n_repeats=25)`` (its default 25 bootstraps of 30 %
  of the samples, each clustered and inferred on anew) and the deprecated
  ``EnCluDL(DesparsifiedLasso(LassoCV), clustering, n_bootstraps=25)`` (the
  published ensemble: each bootstrap's 30 % clustered, every sample used
  for inference) on hidimstat's spatial simulation
  as in ``hidimstat_inference.py`` (20^3 voxels, 200 samples, K = 400,
  the grid's ``connectivity``), ``fdr_selection(fdr=0.1,
  two_tailed_test=True)``: FDP beyond 3 voxels of the true regions, power,
  over ``--seeds`` seeds; the clustering is scikit-learn's
  ``FeatureAgglomeration(linkage="ward")`` or ``ReNA(linkage="ward")``.
* **fmralign** 0.0.6 (if importable) pairwise alignment:
  ``get_labels(img, masker, n_pieces=150, clustering="ward")`` then
  ``PiecewiseAlignment(method=Procrustes(), labels=labels)`` (the engine of
  its ``PairwiseAlignment``, whose method lookup builds every method and
  so needs torch even for procrustes) between two synthetic subjects at
  3 mm (the second a smoothed, noisy copy of the first). fmralign's Ward
  is nilearn's ``Parcellations``: fastrena's runs through
  ``nilearn_patched(ward=True)``.

For each: the whole pipeline's time and the clustering's share of it (every
clustering ``fit`` is timed by a subclass that adds up its seconds). One run
of each pipeline per configuration (they take minutes); read the load
average printed with them. Writes ``results/ward_pipelines.json``.
"""

import argparse
import statistics
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from case import save_result, warn_if_busy  # noqa: E402
from data import mni_mask, smooth_signals  # noqa: E402

SECONDS = []   # every timed clustering fit of the pipeline being run


@contextmanager
def timing_fits(module, name):
    """``module.name`` (a clustering class) replaced by a subclass whose
    ``fit`` adds its seconds to :data:`SECONDS`, inside the block."""
    cls = getattr(module, name)

    class Timed(cls):
        def fit(self, X, y=None):
            start = time.perf_counter()
            try:
                return super().fit(X, y)
            finally:
                SECONDS.append(time.perf_counter() - start)

    Timed.__name__ = Timed.__qualname__ = cls.__name__
    setattr(module, name, Timed)
    try:
        yield
    finally:
        setattr(module, name, cls)


def timed_pipeline(run):
    """(result of ``run()``, its seconds, the seconds of its clustering fits)."""
    SECONDS.clear()
    start = time.perf_counter()
    with warnings.catch_warnings():
        # nilearn's FutureWarnings and LassoCV's convergence warnings, the
        # same whichever Ward runs.
        warnings.simplefilter("ignore")
        result = run()
    return result, time.perf_counter() - start, sum(SECONDS)


def compression_error(X, labels):
    """``||X - R|| / ||X - X's row means||``, R the parcel means of X."""
    from scipy import sparse

    n = labels.shape[0]
    members = sparse.csr_matrix((np.ones(n), (np.arange(n), labels)))
    sizes = np.asarray(members.sum(axis=0)).ravel()
    means = (members.T @ X.T).T / sizes
    lost = ((X - means[:, labels]) ** 2).sum()
    spread = ((X - X.mean(axis=1, keepdims=True)) ** 2).sum()
    return float(np.sqrt(lost / spread))


def row(pipeline, setting, name, seconds, clustering, **figures):
    share = clustering / seconds
    print(f"| {pipeline} | {setting} | {name} | {seconds:.1f} s | {clustering:.1f} s "
          f"({100 * share:.0f} %) | " + ", ".join(f"{k} {v:.4g}" for k, v in figures.items())
          + " |", flush=True)
    return {"pipeline": pipeline, "setting": setting, "clustering": name,
            "total_seconds": seconds, "clustering_seconds": clustering,
            "clustering_share": share, **figures}


# ------------------------------------------------------------------ nilearn
def smooth_image(res, n_scans, seed=0):
    import nibabel

    mask_img, mask = mni_mask(res)
    X = smooth_signals(mask, n_scans, np.float32, seed=seed)
    data = np.zeros(mask.shape + (n_scans,), np.float32)
    data[mask] = X.T
    return nibabel.Nifti1Image(data, mask_img.affine), mask_img, mask, X


def nilearn_rows(resolutions, n_scans, n_parcels):
    import nilearn.regions.parcellations as parcellations
    from nilearn.regions import Parcellations

    import fastrena

    rows = []
    for res in resolutions:
        img, mask_img, mask, X = smooth_image(res, n_scans)
        errors = {}
        for name, ward in (("scikit-learn Ward", False), ('fastrena linkage="ward"', True)):
            with fastrena.nilearn_patched(ward=ward), timing_fits(parcellations,
                                                                  "AgglomerativeClustering"):
                fitted, seconds, clustering = timed_pipeline(
                    lambda: Parcellations(method="ward", n_parcels=n_parcels, mask=mask_img,
                                          verbose=0).fit(img))
            labels = np.asarray(fitted.labels_img_.dataobj)[mask].astype(np.int64) - 1
            errors[name] = compression_error(X, labels)
            rows.append(row("nilearn Parcellations", f"MNI {res} mm ({int(mask.sum())} voxels)"
                            f", {n_scans} scans, {n_parcels} parcels", name, seconds,
                            clustering, error=errors[name],
                            error_vs_ward=errors[name] / errors["scikit-learn Ward"]))
    return rows


# ---------------------------------------------------------------- hidimstat
def hidimstat_rows(seeds):
    from hidimstat import (ClusterImportance, DesparsifiedLasso, EnCluDL,
                           EnsembleImportance)
    from sklearn.cluster import FeatureAgglomeration
    from sklearn.feature_extraction.image import grid_to_graph
    from sklearn.linear_model import LassoCV

    import hidimstat_inference as h
    from fastrena import ReNA

    connectivity = grid_to_graph(*h.SHAPE)

    def lasso():
        return DesparsifiedLasso(estimator=LassoCV(max_iter=1000, tol=1e-4, eps=0.01,
                                                   fit_intercept=False))

    # hidimstat 0.4's two ensembles of 25: EnsembleImportance (its API)
    # fits clustering and inference on each 30 % bootstrap; EnCluDL
    # (deprecated, the published algorithm) clusters each 30 % bootstrap
    # and infers on all the samples.
    ensembles = {
        "EnsembleImportance": lambda clustering, seed: EnsembleImportance(
            ClusterImportance(vim=lasso(), clustering=clustering), n_repeats=25,
            random_state=seed),
        "EnCluDL": lambda clustering, seed: EnCluDL(lasso(), clustering, n_bootstraps=25,
                                                    random_state=seed),
    }
    rows = []
    # Where timing_fits swaps the class for its timed subclass.
    classes = SimpleNamespace(FeatureAgglomeration=FeatureAgglomeration, ReNA=ReNA)
    for ensemble_name, make in ensembles.items():
        setting = (f"{h.SHAPE[0]}^3 voxels, {h.N_SAMPLES} samples, K = {h.N_CLUSTERS}, "
                   f"25 bootstraps, {seeds} seeds")
        for name, cls_name in (("scikit-learn Ward", "FeatureAgglomeration"),
                               ('fastrena linkage="ward"', "ReNA")):
            runs = []
            with timing_fits(classes, cls_name):
                cls = getattr(classes, cls_name)
                for seed in range(seeds):
                    X, y, support = h.simulate(seed)
                    ensemble = make(cls(n_clusters=h.N_CLUSTERS, connectivity=connectivity,
                                        linkage="ward"), seed)

                    def run():
                        ensemble.fit(X, y)
                        ensemble.importance(X, y)
                        return ensemble.fdr_selection(fdr=h.FDR, two_tailed_test=True)

                    selected, seconds, clustering_seconds = timed_pipeline(run)
                    fdp, power = h.relaxed_fdp_power(np.asarray(selected).astype(bool),
                                                     support)
                    runs.append((seconds, clustering_seconds, fdp, power))
            rows.append(row(f"hidimstat {ensemble_name}", setting, name,
                            statistics.mean(r[0] for r in runs),
                            statistics.mean(r[1] for r in runs),
                            fdp=statistics.mean(r[2] for r in runs),
                            seeds_fdp_over=sum(r[2] > h.FDR for r in runs),
                            power=statistics.mean(r[3] for r in runs)))
    return rows


# ----------------------------------------------------------------- fmralign
def fmralign_rows(res, n_scans, n_pieces):
    try:
        from fmralign.embeddings.parcellation import get_labels
        from fmralign.methods import Procrustes
        from fmralign.methods.piecewise import PiecewiseAlignment
    except ImportError as exc:
        print(f"fmralign skipped: {exc} (see benchmarks/README.md for how to install it)")
        return []
    import nibabel
    import nilearn.regions.parcellations as parcellations
    from nilearn.maskers import NiftiMasker
    from scipy.ndimage import gaussian_filter

    import fastrena

    source, mask_img, mask, _ = smooth_image(res, n_scans, seed=1)
    rng = np.random.default_rng(2)
    data = gaussian_filter(np.asarray(source.dataobj), (1, 1, 1, 0))
    data += 0.3 * data.std() * rng.standard_normal(data.shape).astype(np.float32)
    target = nibabel.Nifti1Image(data * mask[..., None], mask_img.affine)
    masker = NiftiMasker(mask_img).fit()
    X, Y = masker.transform(source), masker.transform(target)
    rows = []
    for name, ward in (("scikit-learn Ward", False), ('fastrena linkage="ward"', True)):
        def run():
            labels = get_labels(source, masker, n_pieces=n_pieces, clustering="ward")
            aligner = PiecewiseAlignment(method=Procrustes(), labels=labels).fit(X, Y)
            residual = np.linalg.norm(aligner.transform(X) - Y) / np.linalg.norm(Y)
            return labels, residual

        with fastrena.nilearn_patched(ward=ward), timing_fits(parcellations,
                                                              "AgglomerativeClustering"):
            (labels, residual), seconds, clustering = timed_pipeline(run)
        rows.append(row("fmralign PairwiseAlignment", f"MNI {res} mm ({int(mask.sum())} "
                        f"voxels), {n_scans} scans, {n_pieces} pieces, procrustes", name,
                        seconds, clustering, aligned_residual=float(residual)))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 mm only, one seed")
    parser.add_argument("--only", choices=["nilearn", "hidimstat", "fmralign"])
    parser.add_argument("--scans", type=int, default=100)
    parser.add_argument("--parcels", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default=str(HERE / "results"))
    args = parser.parse_args(argv)
    from sklearn.feature_extraction.image import grid_to_graph

    from fastrena import ReNA

    load_before = warn_if_busy()
    start = time.perf_counter()
    # numba's first calls, outside every timing.
    mask = np.ones((6, 6, 6), bool)
    ReNA(n_clusters=10, connectivity=grid_to_graph(6, 6, 6), linkage="ward").fit(
        np.random.default_rng(0).standard_normal((5, mask.sum())))
    print("| pipeline | setting | clustering | total | clustering (share) | figures |")
    print("|---|---|---|---|---|---|")
    rows = []
    if args.only in (None, "nilearn"):
        rows += nilearn_rows([3] if args.quick else [3, 2], args.scans, args.parcels)
    if args.only in (None, "hidimstat"):
        rows += hidimstat_rows(1 if args.quick else args.seeds)
    if args.only in (None, "fmralign"):
        rows += fmralign_rows(3, args.scans, 150)
    name = "ward_pipelines_quick.json" if args.quick else "ward_pipelines.json"
    save_result(args.out, name, start, load_before,
                settings={"scans": args.scans, "parcels": args.parcels, "seeds": args.seeds,
                          "quick": args.quick, "only": args.only}, rows=rows)


if __name__ == "__main__":
    main()
