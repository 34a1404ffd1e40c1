"""The scaling figure: fit time against N, against S, and against N x S.

Three log-log panels from the scaling cases' points (all at K = N/10):
time vs N at a fixed S, time vs S on the largest mask, and fastrena's time
vs N x S with its least-squares slope (1 = linear in the size of X), the
one-pass floor drawn alongside for scale.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

STYLE = {
    "fastrena": dict(color="tab:blue", marker="o", lw=2),
    "nilearn": dict(color="tab:orange", marker="s"),
    "ward": dict(color="tab:green", marker="^"),
    "one-pass": dict(color="gray", marker=".", ls="--"),
}
LABEL = {"fastrena": "fastrena ReNA", "nilearn": "nilearn ReNA",
         "ward": "sklearn Ward (grid)", "one-pass": "one pass (X.sum(axis=0))"}


def _lines(ax, points, x_key, keep):
    """One line per method through the points that pass ``keep``."""
    for method, style in STYLE.items():
        sel = sorted((p[x_key], p["seconds"]) for p in points if p["method"] == method and keep(p))
        if sel:
            ax.plot(*zip(*sel), label=LABEL[method], **style)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)


def _ticks(axis, values, labels):
    """Label the measured sizes themselves (log axes spanning less than a
    decade otherwise get crowded or empty tick labels)."""
    axis.set_ticks(values, labels)
    axis.set_minor_formatter(NullFormatter())


def plot_scaling(points, slope, path, title):
    """Write the three panels to ``path`` (nothing to draw: no file)."""
    if not points:
        return
    fig, axes = plt.subplots(1, 3, figsize=(16, 5), constrained_layout=True)
    samples = sorted({p["S"] for p in points})
    s_fixed = 100 if 100 in samples else samples[len(samples) // 2]
    n_max = max(p["N"] for p in points)
    res_of = {p["N"]: p["res"] for p in points}

    _lines(axes[0], points, "N", lambda p: p["S"] == s_fixed)
    axes[0].set(xlabel="N (voxels in the mask)", ylabel="fit time (s)",
                title=f"fit time vs N, S = {s_fixed}")
    _ticks(axes[0].xaxis, sorted(res_of), [f"{n:,}\n{res_of[n]} mm" for n in sorted(res_of)])

    _lines(axes[1], points, "S", lambda p: p["N"] == n_max)
    axes[1].set(xlabel="S (samples)", ylabel="fit time (s)",
                title=f"fit time vs S, {res_of[n_max]} mm (N = {n_max:,})")
    _ticks(axes[1].xaxis, samples, [str(s) for s in samples])

    ax = axes[2]
    for method in ("fastrena", "one-pass"):
        sel = [p for p in points if p["method"] == method]
        ax.scatter([p["N"] * p["S"] for p in sel], [p["seconds"] for p in sel],
                   color=STYLE[method]["color"], marker=STYLE[method]["marker"],
                   label=LABEL[method])
    fast = [p for p in points if p["method"] == "fastrena"]
    x = np.array([p["N"] * p["S"] for p in fast], dtype=float)
    if slope is not None and len(fast) > 1:
        intercept = np.polyfit(np.log(x), np.log([p["seconds"] for p in fast]), 1)[1]
        grid = np.geomspace(x.min(), x.max(), 50)
        ax.plot(grid, np.exp(intercept) * grid ** slope, color="tab:blue", lw=1,
                label=f"fit: time ~ (N x S)^{slope:.2f}")
    ax.set(xscale="log", yscale="log", xlabel="N x S (entries of X)", ylabel="time (s)",
           title="fastrena fit time vs size of X (all masks, all S)")
    ax.grid(True, which="both", alpha=0.3)
    ax.xaxis.set_minor_formatter(NullFormatter())

    for ax in axes:
        ax.legend(fontsize=8)
    fig.suptitle(f"{title}  (K = N/10, float64, medians of alternated runs)", fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
