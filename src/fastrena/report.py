"""The report of a parcellation: one self-contained HTML page.

:func:`make_report` gathers what a reader needs to judge a parcellation,
in words for someone who has never heard of ReNA: the parameters and
versions, K asked and obtained, the pictures of the parcels (slices,
surface views, or both), their sizes (a histogram and a sortable table
with the ``dseg.tsv`` names and colours), the compression error against
K when the fit kept its merge tree, and the metrics of
:mod:`fastrena.metrics`. ``ReNA.generate_report`` and ``fastrena report``
make one.

The page needs nothing outside itself: every figure is a base64 PNG in
the page, the styles are in the page, and the one script (sorting the
table) is inline. No font, script or picture is fetched from a network.
"""

import base64
import html
import io
import os
import platform
import tempfile
import webbrowser
from importlib import metadata

import numpy as np

from . import metrics
from ._colors import cluster_colors, hex_colors
from ._pictures import (matplotlib_canvas, plot_cluster_sizes, plot_compression_curve,
                        plot_grayordinate_parcellation, plot_parcellation,
                        plot_surface_parcellation)
from .files import write_atomically
from .grayordinates import GrayordinateLayout
from .layouts import SurfaceLayout, VolumeLayout

__all__ = ["Report", "make_report"]

#: Sections of every report, in order: (id, heading). Tests check each shows.
SECTIONS = (
    ("summary", "Summary"),
    ("parameters", "Parameters and versions"),
    ("parcellation", "The parcellation"),
    ("sizes", "Parcel sizes"),
    ("compression", "Compression error against K"),
    ("quality", "Homogeneity and reproducibility"),
    ("parcels", "Every parcel"),
)

#: The distributions whose versions the report lists.
PACKAGES = ("fastrena", "numpy", "scipy", "scikit-learn", "numba", "nibabel", "nilearn",
            "matplotlib", "pandas", "dask")

#: Scales of the compression curve read from a merge tree (at most).
CURVE_POINTS = 9


class Report:
    """A parcellation's report: an HTML page.

    In a notebook the report shows itself (``_repr_html_``);
    :meth:`save_as_html` writes the page, :meth:`open_in_browser` shows it
    in the default web browser.
    """

    def __init__(self, body, title):
        self._body = body
        self.title = title

    def _repr_html_(self):
        # A notebook cell holds a fragment: the page's body, its styles
        # scoped to the report's own class so the notebook keeps its look.
        return self._body

    def get_html(self):
        """The whole page, as a string."""
        return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                f"<title>{html.escape(self.title)}</title>\n</head>\n<body>\n{self._body}\n"
                "</body>\n</html>\n")

    def __str__(self):
        return self.get_html()

    def save_as_html(self, path, *, force=False):
        """Write the page to ``path`` (atomically; an existing file only
        with ``force``). Returns the path."""
        text = self.get_html().encode("utf-8")

        def write(tmp):
            with open(tmp, "wb") as file:
                file.write(text)

        write_atomically(path, write, force)
        return path

    def open_in_browser(self):
        """Write the page to a temporary file and open it in the default
        web browser. Returns the file's path (left for the browser to read)."""
        handle, path = tempfile.mkstemp(prefix="fastrena-report-", suffix=".html")
        with os.fdopen(handle, "wb") as file:
            file.write(self.get_html().encode("utf-8"))
        webbrowser.open(f"file://{path}")
        return path


# --------------------------------------------------------------------------
# what the page is made of
# --------------------------------------------------------------------------
def _png(figure):
    """A matplotlib figure as an inline ``data:`` PNG."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", facecolor=figure.get_facecolor())
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(figure, alt, caption):
    return (f"<figure><img src=\"{_png(figure)}\" alt=\"{html.escape(alt)}\">"
            f"<figcaption>{caption}</figcaption></figure>")


def _table(rows, header=None, css_class="facts"):
    head = ""
    if header:
        head = "<thead><tr>" + "".join(f"<th>{h}</th>" for h in header) + "</tr></thead>"
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table class=\"{css_class}\">{head}<tbody>{body}</tbody></table>"


def _number(value, digits=3):
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    return f"{float(value):.{digits}f}"


def _words(layout):
    """What a feature is, plural."""
    if isinstance(layout, VolumeLayout):
        return "voxels"
    if isinstance(layout, SurfaceLayout):
        return "vertices"
    if isinstance(layout, GrayordinateLayout):
        return "grayordinates"
    return "features"


def _versions():
    found = []
    for name in PACKAGES:
        try:
            found.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            found.append((name, "not installed"))
    return [("Python", platform.python_version()), *found]


# --------------------------------------------------------------------------
# the pictures
# --------------------------------------------------------------------------
def _parcellation_figure(layout, labels, values):
    """The parcels drawn for ``layout`` (and what the picture shows, in
    words), or (None, why not)."""
    label_values = np.asarray(values)[labels].astype(np.int32)
    if isinstance(layout, VolumeLayout):
        img = layout.to_img(label_values)
        return (plot_parcellation(img, figsize=(10.5, 3.8), dpi=90),
                "Three orthogonal slices through the middle of the parcels (sagittal: seen "
                "from the side; coronal: from the front; axial: from above), one colour per "
                "parcel on a dark background.")
    if isinstance(layout, SurfaceLayout) and layout.meshes is not None:
        return (plot_surface_parcellation(layout.meshes, layout.split(label_values), dpi=80),
                "Each hemisphere seen from the side (lateral) and from the middle of the "
                "brain (medial), one colour per parcel; grey vertices are outside the mask.")
    if isinstance(layout, GrayordinateLayout) and all(
            name in layout.meshes for name, _, m in layout.brain_models.iter_structures()
            if m.surface_mask.all()):
        meshes, parts, sides = layout.surface_parts(label_values)
        volume = layout.volume_img(label_values)
        anatomy = _template()
        rows = []
        if meshes:
            rows.append("each cortical surface seen from the side and from the middle of "
                        "the brain")
        if volume is not None:
            rows.append("axial slices through the subcortical parcels (seen from above, "
                        "left on the left), each voxel at its coordinates in mm"
                        + (" over the MNI152 template" if anatomy is not None else
                           " on a black background (nilearn, which holds the MNI152 "
                           "template, is not installed)"))
        shown = (f"Top: {rows[0]}; bottom: {rows[1]}." if len(rows) == 2
                 else f"{rows[0][0].upper()}{rows[0][1:]}.")
        return (plot_grayordinate_parcellation(meshes, parts, volume,
                                               sides=sides if None not in sides else None,
                                               volume_structures=layout.volume_structures(),
                                               bg_img=anatomy, dpi=80),
                f"{shown} A parcel has the same colour wherever it appears.")
    mask = getattr(layout, "mask_img_", None)
    if isinstance(mask, np.ndarray) and mask.ndim == 2:
        return (_image_figure(mask, label_values, len(values)),
                "The image's pixels, each coloured by its parcel.")
    return None, ("These features have no geometry to draw (a connectivity graph, or a "
                  "label file read without its meshes).")


def _template():
    """What the subcortical parcels are drawn over: nilearn's MNI152
    template ("MNI152", bundled with nilearn: no download), the space of
    HCP's and fMRIPrep's grayordinates; None without nilearn, which the
    report never needs."""
    try:
        import nilearn.datasets  # noqa: F401
    except ImportError:
        return None
    return "MNI152"


def _image_figure(mask, label_values, n_clusters):
    Figure, Canvas = matplotlib_canvas()
    figure = Figure(figsize=(5, 5 * mask.shape[0] / max(mask.shape[1], 1)), dpi=90)
    Canvas(figure)
    rgb = np.ones(mask.shape + (3,))
    colors = cluster_colors(n_clusters)
    rgb[mask != 0] = colors[np.searchsorted(np.unique(label_values), label_values)]
    ax = figure.add_subplot()
    ax.imshow(rgb, interpolation="nearest")
    ax.set_axis_off()
    figure.tight_layout()
    return figure


def _homogeneity_figure(table):
    """Each parcel's homogeneity against its size, and the null's."""
    Figure, Canvas = matplotlib_canvas()
    figure = Figure(figsize=(6.4, 4.2), dpi=90)
    Canvas(figure)
    ax = figure.add_subplot()
    ax.scatter(table["null_n_features"], table["null_homogeneity"], s=10, color="#9a9a9a",
               label="random parcels of the same sizes (null)")
    ax.scatter(table["n_features"], table["homogeneity"], s=10, color="#3b6fb6",
               label="this parcellation")
    ax.set_xscale("log")
    ax.set_xlabel("parcel size (features)")
    ax.set_ylabel("homogeneity (mean correlation with the parcel mean)", fontsize=9)
    both = table[["homogeneity", "null_homogeneity"]].to_numpy(dtype=np.float64)
    lowest = float(both[np.isfinite(both)].min()) if np.isfinite(both).any() else 0.0
    ax.set_ylim(min(0.0, lowest), 1.02)
    ax.legend(frameon=False, fontsize=8, loc="lower left")
    ax.grid(True, alpha=0.3)
    figure.tight_layout()
    return figure


# --------------------------------------------------------------------------
# the sections
# --------------------------------------------------------------------------
def _weighted(values, weights):
    values, weights = np.asarray(values, dtype=np.float64), np.asarray(weights, np.float64)
    keep = np.isfinite(values) & (weights > 0)
    return float(values[keep] @ weights[keep] / weights[keep].sum()) if keep.any() else None


def _summary(facts):
    return _table([(k, v) for k, v in facts])


def _parameters(fit, source):
    rows = []
    if fit is not None:
        for name, value in sorted(fit.get_params(deep=False).items()):
            shown = repr(value) if name != "mask_img" else repr(fit.layout_)
            rows.append((html.escape(name), f"<code>{html.escape(shown)}</code>"))
    else:
        rows.append(("labels", html.escape(source or "labels given")))
    versions = ", ".join(f"{html.escape(n)} {html.escape(v)}" for n, v in _versions())
    return (("<p>The settings the parcellation was made with, and the software that made "
             "it: with the same data and versions, the same parcels come out again.</p>"
             if fit is not None else
             "<p>This report was made from a label file: the settings of the fit that "
             "made it are not known.</p>")
            + _table(rows) + f"<p class=\"versions\">Versions: {versions}.</p>")


def _parcel_rows(table, words):
    """The sortable table's header and rows."""
    columns = [("index", "label value", "number"), ("name", "name", "text"),
               ("n_features", f"size ({words})", "number")]
    for column, heading in (("volume_mm3", "volume (mm³)"), ("area_mm2", "area (mm²)")):
        if column in table.columns:
            columns.append((column, heading, "number"))
    columns.append(("n_components", "connected pieces", "number"))
    # The null region's own size beside its homogeneity: smaller only when
    # the graph's component it grew in is (metrics.null_regions), and a
    # small region is more homogeneous by itself (one feature: 1).
    for column, heading in (("homogeneity", "homogeneity"),
                            ("null_homogeneity", "null homogeneity"),
                            ("null_n_features", f"null size ({words})")):
        if column in table.columns:
            columns.append((column, heading, "number"))
    head = "".join(f"<th data-type=\"{kind}\" data-column=\"{name}\" tabindex=\"0\">"
                   f"{html.escape(heading)}</th>" for name, heading, kind in columns)
    rows = []
    for index, row in zip(table.index, table.itertuples(index=False)):
        row = row._asdict()
        cells = []
        for name, _, kind in columns:
            if name == "index":
                cells.append(f"<td data-sort=\"{int(index)}\">{int(index)}</td>")
            elif name == "name":
                color = html.escape(str(row["color"]))
                cells.append(f"<td data-sort=\"{html.escape(str(row['name']))}\"><span "
                             f"class=\"swatch\" style=\"background:{color}\" title=\"{color}\">"
                             f"</span>{html.escape(str(row['name']))}</td>")
            else:
                value = row[name]
                number = float(value)
                sort = repr(number) if np.isfinite(number) else "NaN"
                counts = ("n_features", "n_components", "null_n_features")
                shown = _number(int(value) if name in counts
                                else number, 1 if name.endswith(("mm3", "mm2")) else 3)
                cells.append(f"<td data-sort=\"{sort}\">{shown}</td>")
        rows.append(f"<tr id=\"parcel-{int(index)}\">{''.join(cells)}</tr>")
    return (f"<table class=\"parcels fastrena-sortable\"><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _curve_scales(tree, n_clusters):
    """Up to CURVE_POINTS scales of the merge tree, spread on a log scale
    from one per component (at least 2) to every feature, with K."""
    low, high = max(tree.n_roots, 2), tree.n_leaves
    if high <= low:
        return [n_clusters]
    ks = np.unique(np.round(np.geomspace(low, high, CURVE_POINTS)).astype(int))
    return sorted(set(ks.tolist()) | {int(n_clusters)})


def _section(name, heading, content):
    return f"<section id=\"{name}\"><h2>{heading}</h2>{content}</section>"


def make_report(labels, layout, X=None, *, fit=None, template=None, values=None, names=None,
                colors=None, title=None, source=None, split_half=True, random_state=0):
    """The :class:`Report` of a parcellation.

    Parameters
    ----------
    labels : ndarray of int (n_features,)
        Parcels 0..K-1.
    layout : fastrena layout
        The features (graph and geometry), e.g. ``rena.layout_``.
    X : ndarray or dask array (n_samples, n_features), optional
        Data to score the parcels on; without it the report has no
        homogeneity, reproducibility or compression error.
    fit : fitted ReNA, optional
        The fit that made ``labels``: its parameters, K asked, fit time
        and merge tree are reported.
    template : estimator, optional
        What the split-half fits clone (default ``fit``); without either,
        no reproducibility.
    values, names, colors : sequences of length K, optional
        Each parcel's label value, name and colour (``dseg.tsv``); default
        1..K, ``label_<value>``, the pictures' colours.
    title : str, optional
    source : str, optional
        Where the labels came from (a file name), when there is no ``fit``.
    split_half : bool, default=True
        Compute the split-half reproducibility (two more fits).
    random_state : int, default=0
        Seeds the null parcels of the homogeneity.

    Returns
    -------
    Report
    """
    labels = np.asarray(labels, dtype=np.int64)
    n_clusters = int(labels.max()) + 1
    values = np.arange(1, n_clusters + 1) if values is None else np.asarray(values)
    colors = hex_colors(n_clusters) if colors is None else list(colors)
    table = metrics.parcel_metrics(labels, X, layout=layout, values=values, names=names,
                                   colors=colors, random_state=random_state)
    words = _words(layout)
    title = title or f"ReNA parcellation: {n_clusters:,} parcels of {layout.n_features:,} {words}"
    graph_components = layout.graph.n_connected_components()
    disconnected = int((table["n_components"] > 1).sum())
    template = fit if template is None else template
    ari = (metrics.split_half_reproducibility(template, X)
           if split_half and X is not None and template is not None and X.shape[0] >= 2
           else None)
    mean_h = _weighted(table["homogeneity"], table["n_features"]) if X is not None else None
    null_h = (_weighted(table["null_homogeneity"], table["null_n_features"])
              if X is not None else None)

    facts = []
    if fit is not None:
        facts.append(("K asked (<code>n_clusters</code>)", _number(int(fit.n_clusters))))
    facts += [("K obtained (parcels)", _number(n_clusters)),
              (f"{words.capitalize()}", _number(layout.n_features)),
              ("Connected components of the graph", _number(graph_components)
               + (" (no parcel can span two, so K is at least this)"
                  if graph_components > 1 else "")),
              ("Parcels in more than one piece", _number(disconnected)
               + (" (ReNA's parcels are connected: a label file made otherwise?)"
                  if disconnected else " (every parcel is connected, as expected)"))]
    if fit is not None and getattr(fit, "fit_time_", None) is not None:
        facts.append(("Fit time", f"{fit.fit_time_:.2f} s"))
    if X is not None:
        facts += [("Samples scored", _number(int(X.shape[0]))),
                  ("Mean homogeneity (null)", f"{_number(mean_h)} ({_number(null_h)})")]
    if ari is not None:
        facts.append(("Split-half reproducibility (adjusted Rand index)", _number(ari)))

    intro = (
        "<p class=\"intro\">ReNA (Recursive Neighbor Agglomeration; Hoyos-Idrobo et al., "
        "IEEE TPAMI 2019) summarises a signal measured on many neighbouring points "
        f"({words} here) by grouping neighbours whose signals are alike into K "
        "<em>parcels</em>: each parcel is a connected patch, and its mean signal stands for "
        "all its points. A good parcellation loses little of the signal (low compression "
        "error), has parcels whose points move together (high homogeneity, above that of "
        "random patches of the same sizes), and comes out nearly the same from two "
        "halves of the data (high reproducibility).</p>")
    sections = {"summary": intro + _summary(facts),
                "parameters": _parameters(fit, source)}

    figure, caption = _parcellation_figure(layout, labels, values)
    sections["parcellation"] = (_figure(figure, "the parcels", caption) if figure is not None
                                else f"<p>{caption}</p>")

    sizes = table["n_features"].to_numpy()
    size_text = (f"<p>How many {words} each parcel holds: median {np.median(sizes):g}, "
                 f"smallest {sizes.min():,}, largest {sizes.max():,}. ReNA merges neighbours "
                 "level after level, so sizes vary: flat regions of the signal end in large "
                 "parcels, detailed ones in small parcels.</p>")
    sections["sizes"] = size_text + _figure(
        plot_cluster_sizes(sizes, unit=words, dpi=90), "histogram of parcel sizes",
        "Number of parcels (vertical) of each size (horizontal, logarithmic); the red line "
        "is the median size.")

    tree = getattr(fit, "tree_", None) if fit is not None else None
    if X is not None and tree is not None:
        ks = _curve_scales(tree, n_clusters)
        errors = metrics.compression_errors(X, [tree.labels_at(k)[0] for k in ks])
        sections["compression"] = (
            "<p>Replacing each point's signal by its parcel's mean loses part of it; the "
            "share lost, ||X - R|| / ||X - X's row means|| (R: the parcel means; 0 is "
            "nothing lost, 1 is as bad as one parcel for everything), is drawn for scales "
            "read from this fit's merge tree. More parcels lose less; where the curve "
            "flattens, more parcels buy little.</p>" + _figure(
                plot_compression_curve(ks, errors, dpi=90), "compression error against K",
                f"Compression error for K from {ks[0]:,} to {ks[-1]:,}, from one fit."))
    elif X is not None:
        error = metrics.compression_errors(X, [labels])[0]
        sections["compression"] = (
            f"<p>Compression error at K = {n_clusters:,}: <strong>{error:.3f}</strong> "
            "(the share of the signal lost when each point takes its parcel's mean: 0 is "
            "nothing lost, 1 as bad as one parcel). Fit with "
            "<code>compute_full_tree=True</code> to see it for every K from one fit.</p>")
    else:
        sections["compression"] = ("<p>Give the data (<code>X</code>, or images to "
                                   "<code>fastrena report</code>) to see how much of the "
                                   "signal the parcels lose.</p>")

    if X is not None:
        reproducibility = (
            f"<p>Split-half reproducibility: <strong>{_number(ari)}</strong>, the adjusted "
            "Rand index of the parcellations fitted on the first and on the second half of "
            "the samples (1: the same parcels; 0: no more alike than chance).</p>"
            if ari is not None else "<p>Split-half reproducibility was not computed.</p>")
        sections["quality"] = (
            "<p>A parcel's <em>homogeneity</em> is the mean correlation of its points' "
            "signals with the parcel's mean signal: 1 when they all move together. "
            "Large parcels are naturally less homogeneous, so each parcel is compared with "
            "a random connected patch of the same size grown on the same graph (the "
            f"<em>null</em>). Mean homogeneity over all {words} (a parcel counts as many "
            f"times as it has {words}): <strong>{_number(mean_h)}</strong> against "
            f"<strong>{_number(null_h)}</strong> for the null.</p>" + reproducibility
            + (_figure(_homogeneity_figure(table), "homogeneity against parcel size",
                       "Each dot is a parcel (blue) or a random parcel of the same size "
                       "(grey): blue above grey means the parcels follow the signal.")
               if table["homogeneity"].notna().any() else
               "<p>No parcel's homogeneity is defined: the signals do not vary over the "
               "samples (one sample, or constant signals).</p>"))
    else:
        sections["quality"] = ("<p>Give the data to measure homogeneity and split-half "
                               "reproducibility.</p>")

    sections["parcels"] = (
        "<p>One row per parcel, with its label value, name and colour as in the "
        "<code>dseg.tsv</code> lookup table written beside the label file. Click a "
        "column's heading to sort by it (again to reverse).</p>" + _parcel_rows(table, words))

    body = (f"<div class=\"fastrena-report\"><style>{_STYLE}</style>"
            f"<h1>{html.escape(title)}</h1>"
            + "<nav>" + " · ".join(f"<a href=\"#{name}\">{heading}</a>"
                                  for name, heading in SECTIONS) + "</nav>"
            + "".join(_section(name, heading, sections[name]) for name, heading in SECTIONS)
            + f"<script>{_SCRIPT}</script></div>")
    return Report(body, title)


_STYLE = """
.fastrena-report { font-family: sans-serif; max-width: 1100px; margin: 0 auto;
  padding: 0 1em 3em; color: #1d1d1f; line-height: 1.45; }
.fastrena-report h1 { font-size: 1.6em; }
.fastrena-report h2 { border-bottom: 1px solid #ccc; padding-top: 0.6em; }
.fastrena-report figure { margin: 1em 0; }
.fastrena-report img { max-width: 100%; height: auto; }
.fastrena-report figcaption { color: #555; font-size: 0.9em; }
.fastrena-report table { border-collapse: collapse; margin: 0.5em 0; }
.fastrena-report td, .fastrena-report th { padding: 2px 10px; border-bottom: 1px solid #e4e4e4;
  text-align: left; }
.fastrena-report table.parcels td { text-align: right; font-variant-numeric: tabular-nums; }
.fastrena-report table.parcels th { cursor: pointer; background: #f2f2f5; position: sticky;
  top: 0; }
.fastrena-report th[aria-sort="ascending"]::after { content: " \\25B2"; }
.fastrena-report th[aria-sort="descending"]::after { content: " \\25BC"; }
.fastrena-report .swatch { display: inline-block; width: 0.9em; height: 0.9em;
  margin-right: 0.4em; vertical-align: middle; border: 1px solid #999; }
.fastrena-report .versions { color: #555; font-size: 0.9em; }
.fastrena-report nav { margin-bottom: 1em; }
"""

# Sorts a table.fastrena-sortable by the clicked column: numbers by the
# cells' data-sort values (NaN last either way), text alphabetically; a
# second click reverses. Rows keep their order among equals (a stable sort).
_SCRIPT = """
(function () {
  function key(cell) {
    var value = cell.getAttribute("data-sort");
    return value === null ? cell.textContent : value;
  }
  function sortRows(table, column, descending) {
    var body = table.tBodies[0];
    var numeric = table.tHead.rows[0].cells[column].getAttribute("data-type") === "number";
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[column]), y = key(b.cells[column]);
      if (numeric) {
        x = parseFloat(x); y = parseFloat(y);
        if (isNaN(x) || isNaN(y)) { return isNaN(x) - isNaN(y); }
        return descending ? y - x : x - y;
      }
      return descending ? y.localeCompare(x) : x.localeCompare(y);
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  var tables = document.querySelectorAll("table.fastrena-sortable");
  Array.prototype.forEach.call(tables, function (table) {
    if (table.getAttribute("data-sortable") === "on") { return; }
    table.setAttribute("data-sortable", "on");
    var headings = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(headings, function (heading, column) {
      function sort() {
        var descending = heading.getAttribute("aria-sort") === "ascending";
        Array.prototype.forEach.call(headings, function (other) {
          other.removeAttribute("aria-sort");
        });
        heading.setAttribute("aria-sort", descending ? "descending" : "ascending");
        sortRows(table, column, descending);
      }
      heading.addEventListener("click", sort);
      heading.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sort(); }
      });
    });
  });
})();
"""
