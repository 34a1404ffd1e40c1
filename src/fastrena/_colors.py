"""Distinct colours for clusters, shared by the GIfTI label tables and the
plots (no matplotlib needed)."""

import numpy as np

# Successive multiples of the golden ratio's fractional part are spread
# as evenly as possible around the hue circle, so clusters with close
# numbers (usually spatial neighbours: labels are numbered in order of
# first appearance) get far-apart hues.
_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0


def hsv_to_rgb(h, s, v):
    """Vectorised HSV -> RGB, all in [0, 1]; returns an array (..., 3)."""
    h = np.asarray(h, dtype=np.float64)
    s = np.broadcast_to(np.asarray(s, dtype=np.float64), h.shape)
    v = np.broadcast_to(np.asarray(v, dtype=np.float64), h.shape)
    sector = np.floor(h * 6.0)
    f = h * 6.0 - sector
    p = v * (1.0 - s)
    q = v * (1.0 - s * f)
    t = v * (1.0 - s * (1.0 - f))
    sector = sector.astype(np.int64) % 6
    # Per sector, which of (v, t, p, q) is red, green and blue.
    table = np.array([[0, 1, 2], [3, 0, 2], [2, 0, 1], [2, 3, 0], [1, 2, 0], [0, 2, 3]])
    choices = np.stack([v, t, p, q], axis=-1)
    return np.take_along_axis(choices, table[sector], axis=-1)


def cluster_colors(n_clusters):
    """RGB colours (n_clusters, 3) in [0, 1], distinct for nearby indices.

    Hue steps by the golden ratio; saturation and brightness alternate
    over two levels with different periods so that clusters whose hues
    come close again still differ.

    Examples
    --------
    >>> cluster_colors(3).round(3).tolist()
    [[0.95, 0.095, 0.095], [0.28, 0.432, 0.8], [0.406, 0.65, 0.065]]
    """
    i = np.arange(int(n_clusters))
    hue = (i * _GOLDEN) % 1.0
    saturation = np.array([0.9, 0.65])[i % 2]
    value = np.array([0.95, 0.8, 0.65])[i % 3]
    return hsv_to_rgb(hue, saturation, value)


def hex_colors(n_clusters):
    """:func:`cluster_colors` as ``#rrggbb`` strings, as the ``dseg.tsv``
    lookup tables write them.

    Examples
    --------
    >>> hex_colors(2)
    ['#f21818', '#476ecc']
    """
    rgb = np.round(cluster_colors(n_clusters) * 255).astype(int)
    return [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in rgb]
