"""Boundary refinement (issue 26) on cortical surface data the real-data
suite does not hold, against scikit-learn's Ward.

    python benchmarks/refine_surfaces.py      # ~5-10 min on 2 cores (Ward's fits)

Cases, fsaverage5 pial mesh, both hemispheres, triangle sides (20,484
vertices), nilearn's bundled files (offline):

* ``sulcal``, ``curvature``, ``thickness`` at K/N = 0.01 and 0.1 (the
  suite has them at 0.02 and 0.05);
* ``3 maps``: the three as one 3-sample X, each z-scored (the user
  guide's surface example, docs/usage.md), K/N = 0.02 and 0.05;
* ``motor on surface`` and ``GM on surface``: nilearn's motor activation
  map and the MNI152 grey-matter template projected onto the pial mesh
  (``nilearn.surface.vol_to_surf``), K/N = 0.02 and 0.05.

For each: the error ``||X - R|| / ||X - X's row means||`` over Ward's
(``FeatureAgglomeration(linkage="ward", connectivity=A)``), of fastrena's
``"ward"`` and default linkages without refinement (``max_refine_iter=0``)
and refined after them (``fastrena.refine.refine_labels``, 2 sweeps, after
``"ward"`` from its merge tree's cut at ``exchange_count(K, N)`` more
clusters with ``n_clusters=K``: the exchange, as the fit refines; timed
apart), and the refinement's time over the fit's. Writes
``results/refine_surfaces.md`` and ``.json``.
"""

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "quality"))
from real_cases import mesh_adjacency  # noqa: E402
from real_suite import n_clusters_for, relative_error  # noqa: E402

RESULTS = HERE / "results"
REFINE_ITER = 2


def fsaverage5_mesh():
    from nilearn.datasets import load_fsaverage

    mesh = load_fsaverage("fsaverage5")["pial"]
    faces, offset = [], 0
    for hemi in ("left", "right"):
        faces.append(np.asarray(mesh.parts[hemi].faces) + offset)
        offset += np.asarray(mesh.parts[hemi].coordinates).shape[0]
    return mesh, mesh_adjacency(np.concatenate(faces), offset)


def fsaverage5_map(data_type):
    from nilearn.datasets import load_fsaverage_data

    surf = load_fsaverage_data(mesh="fsaverage5", mesh_type="pial", data_type=data_type)
    return np.concatenate([np.asarray(surf.data.parts[h], dtype=np.float64).ravel()
                           for h in ("left", "right")])


def projected(mesh, img):
    from nilearn.surface import vol_to_surf

    return np.concatenate([np.asarray(vol_to_surf(img, mesh.parts[h]), dtype=np.float64)
                           for h in ("left", "right")])


def cases():
    from nilearn.datasets import load_mni152_gm_template, load_sample_motor_activation_image

    mesh, A = fsaverage5_mesh()
    maps = {t: fsaverage5_map(t) for t in ("sulcal", "curvature", "thickness")}
    for name, values in maps.items():
        yield f"fsaverage5 {name}", values[None], A, (0.01, 0.1)
    stacked = np.stack([(m - m.mean()) / m.std() for m in maps.values()])
    yield "fsaverage5 3 maps (z-scored)", stacked, A, (0.02, 0.05)
    motor = np.nan_to_num(projected(mesh, load_sample_motor_activation_image()))
    yield "motor map on fsaverage5", motor[None], A, (0.02, 0.05)
    gm = projected(mesh, load_mni152_gm_template(resolution=2))
    yield "MNI GM on fsaverage5", gm[None], A, (0.02, 0.05)


def best_of(n, fit):
    times, out = [], None
    for _ in range(n):
        start = time.perf_counter()
        out = fit()
        times.append(time.perf_counter() - start)
    return out, min(times)


def measure(X, A, k):
    from sklearn.cluster import FeatureAgglomeration

    from fastrena import ReNA
    from fastrena.refine import exchange_count, refine_labels

    start = time.perf_counter()
    ward = FeatureAgglomeration(n_clusters=k, linkage="ward", connectivity=A).fit(X).labels_
    row = {"k": k, "Ward": {"error": relative_error(X, ward),
                            "seconds": time.perf_counter() - start}}
    for name, linkage in (("ward", "ward"), ("default", "nilearn")):
        exchange = linkage == "ward"
        rena, seconds = best_of(3, lambda: ReNA(n_clusters=k, connectivity=A, linkage=linkage,
                                                max_refine_iter=0,
                                                compute_full_tree=exchange).fit(X))
        n = rena.n_clusters_
        if exchange:
            start_labels = rena.labels_at(n + exchange_count(n, X.shape[1]))
            refined, refine_seconds = best_of(3, lambda: refine_labels(
                X, rena.layout_.graph, start_labels, REFINE_ITER, n_clusters=n))
        else:
            refined, refine_seconds = best_of(3, lambda: refine_labels(
                X, rena.layout_.graph, rena.labels_, REFINE_ITER))
        for method, labels in ((name, rena.labels_), (name + " refined", refined)):
            error = relative_error(X, labels)
            row[method] = {"error": error, "error_over_ward": error / row["Ward"]["error"],
                           "seconds": seconds, "n_clusters": int(labels.max()) + 1}
        row[name + " refined"]["refine_seconds"] = refine_seconds
    return row


def markdown(results, started, load):
    lines = ["# Boundary refinement on surface data outside the real suite", "",
             f"`python benchmarks/refine_surfaces.py`, "
             f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(started))}, load average "
             f"{load[0]:.1f} at the start, {load[1]:.1f} at the end (2 cores). Error / "
             "scikit-learn Ward's error, same graph and K; `refine / fit`: the "
             "refinement's time (2 sweeps, after `ward` with the exchange) over the "
             "unrefined fit's (best of 3 each).", "",
             "| case | K/N | K | Ward's error | ward | ward + refine | refine / ward fit | "
             "default | default + refine | refine / default fit |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, rows in results.items():
        for fraction, row in rows.items():
            w, wr, d, dr = (row[m] for m in ("ward", "ward refined", "default",
                                             "default refined"))
            lines.append(
                f"| {name} | {fraction} | {row['k']:,} | {row['Ward']['error']:.4f} | "
                f"{w['error_over_ward']:.3f} | {wr['error_over_ward']:.3f} | "
                f"{wr['refine_seconds'] / w['seconds']:.2f} | {d['error_over_ward']:.3f} | "
                f"{dr['error_over_ward']:.3f} | {dr['refine_seconds'] / d['seconds']:.2f} |")
    ratios = [row["ward refined"]["error_over_ward"] for rows in results.values()
              for row in rows.values()]
    plain = [row["ward"]["error_over_ward"] for rows in results.values()
             for row in rows.values()]
    lines += ["", f"ward + refine / Ward over {len(ratios)} fits: median "
                  f"{np.median(ratios):.3f}, worst {max(ratios):.3f} (without refinement: "
                  f"median {np.median(plain):.3f}, worst {max(plain):.3f})."]
    return "\n".join(lines) + "\n"


def main():
    from fastrena import ReNA

    started = time.time()
    load_start = os.getloadavg()[0]
    # numba compiles (or loads its cache) once per process: out of the times.
    ReNA(np.ones((6, 6), dtype=bool), n_clusters=4, linkage="ward").fit(
        np.random.default_rng(0).standard_normal((1, 36)))
    results = {}
    for name, X, A, fractions in cases():
        results[name] = {}
        for fraction in fractions:
            k = n_clusters_for(fraction, X.shape[1])
            row = measure(X, A, k)
            results[name][str(fraction)] = row
            print(f"{name} K={k}: " + ", ".join(
                f"{m} {row[m]['error_over_ward']:.3f}" for m in row if m not in ("k", "Ward")),
                flush=True)
    text = markdown(results, started, (load_start, os.getloadavg()[0]))
    (RESULTS / "refine_surfaces.md").write_text(text)
    (RESULTS / "refine_surfaces.json").write_text(json.dumps(results, indent=1))
    print(text)


if __name__ == "__main__":
    main()
