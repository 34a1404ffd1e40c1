"""The ``"ward"`` linkage on pictures the real-data suite does not hold,
against scikit-learn's Ward (issues 25 and 26: real data the project was
not tuned on).

    python benchmarks/unseen_images.py            # ~20 s on 2 cores (Ward's fits)
    python benchmarks/unseen_images.py --images astronaut,horse

Every picture bundled with scikit-image (no download) that is not in the
suite (``quality/real_cases.IMAGES``), each pixel's channels as samples
(one for grey pictures, three for colour, RGBA's alpha dropped), every
k-th pixel to at most 128 a side (as the suite does), 4-connected grid,
K/N = 0.02 and 0.05. For each fit: the error ``||X - R|| / ||X - X's row
means||`` over Ward's (``AgglomerativeClustering(linkage="ward",
connectivity=A)``), of ``ReNA(linkage="ward")`` without refinement
(``max_refine_iter=0``) and with it (the default), and of the default
linkage; the largest cluster over Ward's largest. Where Ward's error is 0
(a binary picture with K above its flat regions) a ratio is 1 if the
error is 0 too, else inf. Writes ``results/unseen_images.md`` and
``.json``.
"""

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "quality"))
from case import save_result, warn_if_busy  # noqa: E402
from real_cases import IMAGES, MAX_SIDE, grid_adjacency  # noqa: E402
from real_suite import error_ratio, n_clusters_for, relative_error  # noqa: E402

RESULTS = HERE / "results"
FRACTIONS = (0.02, 0.05)
#: scikit-image's bundled pictures outside the suite (those needing a
#: download, pooch, are left out: the benchmark runs offline).
PICTURES = ("astronaut", "binary_blobs", "brick", "checkerboard", "chelsea", "clock",
            "coffee", "colorwheel", "grass", "gravel", "horse", "hubble_deep_field",
            "immunohistochemistry", "logo", "moon", "retina", "rocket", "text")
METHODS = {"ward": {"linkage": "ward", "max_refine_iter": 0},
           "ward refined": {"linkage": "ward"},
           "default": {}}


def picture(name):
    """(X (n_samples, n_pixels) float64, adjacency, description)."""
    from skimage import data

    img = np.asarray(getattr(data, name)())
    if img.ndim == 3 and img.shape[-1] == 4:
        img = img[..., :3]
    step = -(-max(img.shape[:2]) // MAX_SIDE)
    small = np.asarray(img[::step, ::step], dtype=np.float64)
    if small.ndim == 2:
        small = small[..., None]
    X = np.ascontiguousarray(np.moveaxis(small, -1, 0).reshape(small.shape[-1], -1))
    mask = np.ones(small.shape[:2], dtype=bool)
    return X, grid_adjacency(mask), (f"{img.shape[0]}x{img.shape[1]} {img.dtype}, every "
                                    f"{step} -> {small.shape[0]}x{small.shape[1]}")


def measure(name):
    from sklearn.cluster import AgglomerativeClustering

    from fastrena import ReNA

    X, A, how = picture(name)
    rows = []
    for fraction in FRACTIONS:
        k = n_clusters_for(fraction, X.shape[1])
        start = time.perf_counter()
        ward = AgglomerativeClustering(n_clusters=k, connectivity=A,
                                       linkage="ward").fit(X.T).labels_
        row = {"picture": name, "source": how, "samples": X.shape[0], "N": X.shape[1],
               "fraction": fraction, "k": k, "ward_seconds": time.perf_counter() - start,
               "Ward_error": relative_error(X, ward),
               "Ward_largest": int(np.bincount(ward).max())}
        for method, params in METHODS.items():
            with warnings.catch_warnings():
                # The default linkage may warn about ties; not measured here.
                warnings.simplefilter("ignore")
                labels = ReNA(n_clusters=k, connectivity=A, **params).fit(X).labels_
            row[method] = {
                "error_over_ward": error_ratio(relative_error(X, labels), row["Ward_error"]),
                "largest_over_ward": float(np.bincount(labels).max() / row["Ward_largest"])}
        rows.append(row)
    return rows


def summary(rows, method):
    errors = [r[method]["error_over_ward"] for r in rows]
    largest = [r[method]["largest_over_ward"] for r in rows]
    worst = rows[int(np.argmax(errors))]
    big = rows[int(np.argmax(largest))]
    return (f"`{method}` over {len(rows)} fits: error / Ward's median {np.median(errors):.3f}, "
            f"worst {max(errors):.3f} ({worst['picture']}, K/N = {worst['fraction']}); "
            f"largest cluster / Ward's at most {max(largest):.2f} ({big['picture']}, "
            f"K/N = {big['fraction']}).")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default=",".join(PICTURES),
                        help="comma-separated scikit-image picture names")
    args = parser.parse_args(argv)
    names = [n for n in args.images.split(",") if n]
    held = sorted(set(names) & set(IMAGES))
    if held:
        parser.error(f"--images: {', '.join(held)} already in the real-data suite")
    load_before = warn_if_busy()
    start = time.perf_counter()
    lines = ["# `\"ward\"` on pictures the real-data suite does not hold", "",
             f"`python benchmarks/unseen_images.py`, {time.strftime('%Y-%m-%d %H:%M')}. "
             "Error `||X - R|| / ||X - X's row means||` over scikit-learn Ward's (same "
             "4-connected grid, same K); largest cluster over Ward's largest. `ward`: "
             "`ReNA(linkage=\"ward\", max_refine_iter=0)`; `ward refined`: "
             "`ReNA(linkage=\"ward\")` (its default refinement); `default`: the default "
             "linkage.", "",
             "| picture | samples | N | K/N | Ward's error | ward | ward refined | default | "
             "largest / Ward's: ward, refined, default |",
             "|---|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines[-2:]), flush=True)
    rows = []
    for name in names:
        for row in measure(name):
            rows.append(row)
            line = (f"| {name} | {row['samples']} | {row['N']:,} | {row['fraction']} | "
                    f"{row['Ward_error']:.4f} | "
                    + " | ".join(f"{row[m]['error_over_ward']:.3f}" for m in METHODS)
                    + " | " + ", ".join(f"{row[m]['largest_over_ward']:.2f}" for m in METHODS)
                    + " |")
            lines.append(line)
            print(line, flush=True)
    lines += [""] + [summary(rows, m) for m in METHODS]
    print("\n".join(lines[-3:]))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "unseen_images.md").write_text("\n".join(lines) + "\n")
    save_result(RESULTS, "unseen_images.json", start, load_before,
                settings={"fractions": FRACTIONS, "max_side": MAX_SIDE}, rows=rows)


if __name__ == "__main__":
    main()
