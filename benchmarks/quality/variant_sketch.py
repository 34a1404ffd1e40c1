"""Exploration for issue 6 (not the quality benchmark yet): size-aware ReNA
rules against Ward, on the spec's quality data (S=100 smooth fields, sigma 4
voxels, unit variance, plus unit white noise; error of the noisy data's
cluster means to the clean signal, as a ratio to Ward's).

    python benchmarks/quality/variant_sketch.py 3    # or 2 (2 mm: ~3 min, Ward dominates)

Every level recomputes the true (feature-weighted) means from X and merges
by Ward's cost n_a n_b / (n_a + n_b) ||mean_a - mean_b||^2; "mutual" keeps
only reciprocal nearest neighbours (pairs), switched on once the number of
nodes is below ``mutual_below * K``; the last level merges smallest
merged size first. A plain-Python sketch to choose the rule; the real
variant belongs in the numba kernels.
"""
import sys, time
import numpy as np
from scipy.ndimage import gaussian_filter
from nilearn.datasets import load_mni152_brain_mask
from sklearn.cluster import FeatureAgglomeration
from sklearn.feature_extraction.image import grid_to_graph
from fastrena import ReNA
from fastrena import _kernels
from fastrena.agglomeration import edge_weights, cluster_means
from fastrena.graphs import lattice_graph

res = int(sys.argv[1]) if len(sys.argv) > 1 else 3
img = load_mni152_brain_mask(resolution=res)
mask = np.asarray(img.dataobj) != 0
rng = np.random.default_rng(0)
S = 100
clean = np.empty((S, mask.sum()))
for s in range(S):
    f = gaussian_filter(rng.standard_normal(mask.shape), 4)
    clean[s] = f[mask]
clean /= clean.std()
noisy = clean + rng.standard_normal(clean.shape)
N = mask.sum()
graph = lattice_graph(mask)

def err(labels, k):
    sizes = np.bincount(labels, minlength=k).astype(float)
    means = cluster_means(noisy, labels, sizes)
    return np.linalg.norm(clean - means[:, labels]) / np.linalg.norm(clean), sizes.max() / sizes.mean()

def uf_find(p, a):
    while p[a] != a:
        p[a] = p[p[a]]; a = p[a]
    return a

def variant(X, k, last_order="size", n_iter=20, weight_rule="ward", mutual=False, mutual_below=np.inf):
    levels = 0
    n = N; u, v = graph.u, graph.v
    labels = np.arange(N)
    while n > k and u.size:
        sizes = np.bincount(labels, minlength=n).astype(float)
        F = cluster_means(X, labels, sizes)          # true, feature-weighted means
        d = edge_weights(F, u, v)
        if weight_rule == "ward":
            w = d * sizes[u] * sizes[v] / (sizes[u] + sizes[v])
        else:
            w = d
        if mutual and n <= mutual_below * k:
            m = np.full(n, np.inf); np.minimum.at(m, u, w); np.minimum.at(m, v, w)
            keep = (w <= m[u]) & (w <= m[v])
        else:
            keep = _kernels.nearest_neighbor_edges(n, u, v, w, 1e-7)
        step, n_new = _kernels.connected_components(n, u, v, keep)
        if n_new < k:
            ku, kv, kw = u[keep], v[keep], w[keep]
            if last_order == "size":
                key = (sizes[ku] + sizes[kv], kw)
            elif last_order == "cost":
                key = (kw,)
            order = np.lexsort(key[::-1])
            p = np.arange(n); m = n
            for e in order:
                a, b = uf_find(p, ku[e]), uf_find(p, kv[e])
                if a != b:
                    p[max(a, b)] = min(a, b); m -= 1
                    if m == k: break
            roots = np.array([uf_find(p, i) for i in range(n)])
            _, step = np.unique(roots, return_inverse=True)
            n_new = m
        labels = step[labels]; levels += 1
        u, v = _kernels.reduce_edges(u, v, step, n_new)
        n = n_new
    return labels, n, levels

conn = grid_to_graph(*mask.shape, mask=mask)
for frac in (0.05, 0.1):
    k = int(frac * N)
    t = time.perf_counter(); ward = FeatureAgglomeration(k, connectivity=conn).fit(noisy); tw = time.perf_counter() - t
    ew, gw = err(ward.labels_, k)
    t = time.perf_counter(); r = ReNA(img, n_clusters=k).fit(noisy); tr = time.perf_counter() - t
    er, gr = err(r.labels_, k)
    print(f"K/N={frac} K={k}: ward err {ew:.4f} (largest/mean {gw:.1f}, {tw:.1f}s); rena {er/ew:.3f} ({gr:.1f}, {tr:.2f}s)", flush=True)
    for name, kw in [("nn", {}), ("mutual all", dict(mutual=True)), ("mutual below 4K", dict(mutual=True, mutual_below=4)),
                     ("mutual below 16K", dict(mutual=True, mutual_below=16)), ("mutual below 8K", dict(mutual=True, mutual_below=8)), ("mutual below 32K", dict(mutual=True, mutual_below=32))]:
            t = time.perf_counter(); lab, n, lv = variant(noisy, k, "size", **kw); tv = time.perf_counter() - t
            ev, gv = err(lab, n)
            print(f"   {name}: n={n} levels {lv} ratio {ev/ew:.3f} largest/mean {gv:.1f} {tv:.2f}s", flush=True)
