"""ReNA.generate_report and ``fastrena report``: one self-contained HTML
page, valid, that a real browser (headless Chromium) loads without a
console error, with every section shown and a table that sorts.

The browser tests skip, saying why, only when no Chromium is installed
(Debian: ``apt-get install chromium``; ``.ci/run`` installs it on CI).
"""

import os
import re
import shutil
import struct
import subprocess
import sys
from collections import Counter
from html.parser import HTMLParser

import nibabel
import numpy as np
import pytest
from helpers import AFFINE, box_mask, call, grid_mesh, write_gifti_mesh
from scipy.ndimage import gaussian_filter

from fastrena import ReNA, __version__, metrics
from fastrena.layouts import SurfaceLayout
from fastrena.report import SECTIONS


# --------------------------------------------------------------------------
# fits and their reports
# --------------------------------------------------------------------------
def smooth_rows(rng, shape, n, sigma=1.2):
    return np.stack([gaussian_filter(rng.standard_normal(shape), sigma).ravel()
                     for _ in range(n)])


@pytest.fixture(scope="module")
def volume_fit():
    """A 2 mm NIfTI mask, 40 smooth samples, a fit to 24 with its tree."""
    mask = box_mask((12, 13, 10))
    X = smooth_rows(np.random.default_rng(1), mask.shape, 40)[:, mask.ravel()]
    rena = ReNA(nibabel.Nifti1Image(mask.astype(np.uint8), AFFINE), n_clusters=24,
                compute_full_tree=True).fit(X)
    return rena, X


@pytest.fixture(scope="module")
def volume_report(volume_fit):
    rena, X = volume_fit
    return rena.generate_report(X, title="A volume & its <parcels>")


@pytest.fixture(scope="module")
def surface_fit():
    """Two flat hemispheres (grids of 2 x 3 mm rectangles), 30 samples."""
    rng = np.random.default_rng(2)
    meshes = tuple((coords * np.array([1.0, 2.0, 3.0]), faces)
                   for coords, faces in (grid_mesh(12, 14, x=-20.0), grid_mesh(12, 14, x=20.0)))
    masks = tuple(np.ones(168, dtype=bool) for _ in meshes)
    X = np.hstack([smooth_rows(rng, (12, 14), 30) for _ in meshes])
    return ReNA(SurfaceLayout(masks, meshes), n_clusters=30).fit(X), X


# --------------------------------------------------------------------------
# the page itself
# --------------------------------------------------------------------------
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
        "source", "track", "wbr"}


class WellFormed(HTMLParser):
    """Python's html.parser, made strict: every element closed in order,
    no end tag for a void element, ids unique, images with alt text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.problems, self.ids, self.doctype = [], [], Counter(), None

    def handle_decl(self, decl):
        self.doctype = decl

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids[attrs["id"]] += 1
        if tag == "img" and not attrs.get("alt"):
            self.problems.append(f"<img> without alt at {self.getpos()}")
        if tag not in VOID:
            self.stack.append((tag, self.getpos()))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.problems.append(f"<{tag}/> is not a void element at {self.getpos()}")
            self.stack.pop()

    def handle_endtag(self, tag):
        if tag in VOID:
            self.problems.append(f"</{tag}> ends a void element at {self.getpos()}")
        elif not self.stack or self.stack[-1][0] != tag:
            open_tag = self.stack[-1] if self.stack else None
            self.problems.append(f"</{tag}> at {self.getpos()} closes {open_tag}")
        else:
            self.stack.pop()


def html_problems(text):
    parser = WellFormed()
    parser.feed(text)
    parser.close()
    problems = list(parser.problems)
    problems += [f"<{tag}> opened at {pos} never closed" for tag, pos in parser.stack]
    problems += [f"id '{i}' used {n} times" for i, n in parser.ids.items() if n > 1]
    if parser.doctype != "DOCTYPE html":
        problems.append(f"doctype {parser.doctype!r}")
    return problems


def test_the_validator_finds_what_is_wrong():
    assert html_problems("<!DOCTYPE html><p><b>x</p></b><img src=a><br></br>"
                         "<i id=a></i><i id=a></i><div>") == [
        # </p> over an open <b> (the </b> after it then closes the <b>).
        "</p> at (1, 22) closes ('b', (1, 18))", "<img> without alt at (1, 30)",
        "</br> ends a void element at (1, 45)", "<p> opened at (1, 15) never closed",
        "<div> opened at (1, 74) never closed",
        "id 'a' used 2 times"]


def test_the_page_is_well_formed_and_strict_html5(volume_report):
    text = volume_report.get_html()
    assert html_problems(text) == []
    html5lib = pytest.importorskip("html5lib", reason="html5lib is not installed: the "
                                                      "strict HTML5 parse is skipped")
    html5lib.HTMLParser(strict=True).parse(text)   # raises on any parse error


def test_the_page_needs_nothing_from_outside(volume_report):
    text = volume_report.get_html()
    # Every src and href is inline data or a link within the page.
    references = re.findall(r"""\b(?:src|href)\s*=\s*["']?([^"'\s>]*)""", text)
    assert references and all(r.startswith(("data:image/png;base64,", "#"))
                               for r in references), references
    assert not re.search(r"https?://|@import|@font-face|url\(|<link|<iframe|<object", text)
    assert text.count("<script>") == 1 and "<script src" not in text
    # Escaped where the user's words go in.
    assert "<title>A volume &amp; its &lt;parcels&gt;</title>" in text


def test_every_section_is_there_with_its_numbers(volume_fit, volume_report):
    rena, X = volume_fit
    text = volume_report.get_html()
    for name, heading in SECTIONS:
        assert f'<section id="{name}"><h2>{heading}</h2>' in text
    assert text.count("<img ") == 4     # parcels, sizes, curve, homogeneity
    assert "<td>K asked (<code>n_clusters</code>)</td><td>24</td>" in text
    assert "<td>K obtained (parcels)</td><td>24</td>" in text
    assert f"<td>Fit time</td><td>{rena.fit_time_:.2f} s</td>" in text
    ari = metrics.split_half_reproducibility(rena, X)
    assert f"Split-half reproducibility: <strong>{ari:.3f}</strong>" in text
    table = metrics.parcel_metrics(rena, X)
    for value, row in table.iterrows():
        assert (f'<tr id="parcel-{value}"><td data-sort="{value}">{value}</td>'
                f'<td data-sort="{row["name"]}"><span class="swatch" style="background:'
                f'{row["color"]}" title="{row["color"]}"></span>{row["name"]}</td>'
                f'<td data-sort="{float(row["n_features"])!r}">{row["n_features"]}</td>'
                f'<td data-sort="{row["volume_mm3"]!r}">{row["volume_mm3"]:.1f}</td>') in text
        # The null parcel's size beside its homogeneity (a null hemmed in
        # stops smaller, and is more homogeneous by itself).
        assert (f'<td data-sort="{float(row["null_n_features"])!r}">'
                f'{row["null_n_features"]}</td></tr>') in text
    assert ('<th data-type="number" data-column="null_n_features" tabindex="0">null size '
            '(voxels)</th></tr>') in text
    # The fit's parameters, and the versions.
    assert "<td>linkage</td><td><code>&#x27;nilearn&#x27;</code></td>" in text
    # fastrena's version comes from git tags (0.1.1.dev3+g1234abc between them).
    assert re.search(r"Versions: Python [\d.]+, fastrena "
                     + re.escape(__version__) + ", numpy", text)


def test_without_data_or_tree_the_page_says_what_to_give(volume_fit):
    rena, X = volume_fit
    text = rena.generate_report().get_html()
    assert "Give the data (<code>X</code>, or images to <code>fastrena report</code>)" in text
    assert "homogeneity</th>" not in text and text.count("<img ") == 2
    flat = ReNA(rena.mask_img_, n_clusters=24).fit(X)
    error = metrics.compression_errors(X, [flat.labels_])[0]
    assert (f"Compression error at K = 24: <strong>{error:.3f}</strong>"
            in flat.generate_report(X, split_half=False).get_html())


def test_notebook_html_save_and_browser(volume_report, tmp_path, monkeypatch):
    fragment = volume_report._repr_html_()
    assert fragment.startswith('<div class="fastrena-report">') and "<html" not in fragment
    assert fragment in volume_report.get_html()
    path = tmp_path / "report.html"
    assert volume_report.save_as_html(path) == path
    assert path.read_text(encoding="utf-8") == volume_report.get_html()
    with pytest.raises(FileExistsError, match=f"^output '{path}' already exists; force=True "
                                              "overwrites it$"):
        volume_report.save_as_html(path)
    volume_report.save_as_html(path, force=True)
    opened = []
    monkeypatch.setattr("webbrowser.open", opened.append)
    shown = volume_report.open_in_browser()
    assert opened == [f"file://{shown}"]
    with open(shown, encoding="utf-8") as page:
        assert page.read() == volume_report.get_html()
    os.remove(shown)


def test_a_surface_report_has_areas_and_views(surface_fit):
    rena, X = surface_fit
    text = rena.generate_report(X, split_half=False).get_html()
    assert "area (mm²)" in text and "volume (mm³)" not in text
    assert "seen from the side (lateral)" in text
    assert "Split-half reproducibility was not computed." in text


# --------------------------------------------------------------------------
# a real browser
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("Chromium is not installed (Debian: apt-get install chromium): the "
                "report is not checked in a browser")


def browse(chromium, page, folder, *options):
    """Run headless Chromium on ``page`` (a file): (its stdout, its console
    messages). Its own profile, so that parallel runs never share one."""
    done = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--user-data-dir={folder / 'profile'}", "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=10000", "--host-resolver-rules=MAP * ~NOTFOUND",
         *options, page.as_uri()], capture_output=True, text=True, timeout=180)
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return done.stdout, console


#: Appended to a copy of the page: sorts the table as a reader's clicks
#: would, and records how many pictures the browser decoded.
CLICKS = """<script>
window.addEventListener("load", function () {
  function click(column) { document.querySelector('th[data-column="' + column + '"]').click(); }
  function order() {
    return Array.prototype.map.call(document.querySelectorAll("table.parcels tbody tr"),
                                    function (row) { return row.id.slice(7); }).join(",");
  }
  click("n_features"); click("n_features");
  document.body.setAttribute("data-by-size", order());
  click("name");
  document.body.setAttribute("data-by-name", order());
  click("homogeneity");
  var broken = Array.prototype.filter.call(document.images, function (img) {
    return !img.complete || img.naturalWidth === 0; }).length;
  document.body.setAttribute("data-images", document.images.length + "/" + broken);
});
</script>"""


def test_chromium_catches_console_errors(chromium, tmp_path):
    # The check below can fail: a page with an error is caught.
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><title>x</title><script>missing();</script>")
    _, console = browse(chromium, page, tmp_path, "--dump-dom")
    assert len(console) == 1 and "Uncaught ReferenceError: missing is not defined" in console[0]


def test_chromium_shows_every_section_and_sorts_the_table(chromium, volume_report,
                                                          volume_fit, tmp_path):
    rena, _ = volume_fit
    page = tmp_path / "report.html"
    page.write_text(volume_report.get_html().replace("</body>", CLICKS + "\n</body>"),
                    encoding="utf-8")
    dom, console = browse(chromium, page, tmp_path, "--dump-dom")
    assert console == []
    assert 'data-images="4/0"' in dom           # all four pictures decoded
    for name, heading in SECTIONS:
        assert f'<section id="{name}"><h2>{heading}</h2>' in dom
    # Two clicks on "size": largest first, equal sizes in label order (a
    # stable sort); "name": alphabetical (label_10 before label_2); then
    # "homogeneity", ascending: the order the rows are left in.
    by_size = sorted(range(1, 25), key=lambda v: -rena.sizes_[v - 1])
    assert f'data-by-size="{",".join(map(str, by_size))}"' in dom
    by_name = sorted(range(1, 25), key=lambda v: f"label_{v}")
    assert f'data-by-name="{",".join(map(str, by_name))}"' in dom
    table = metrics.parcel_metrics(rena, volume_fit[1])
    rows = [int(v) for v in re.findall(r'<tr id="parcel-(\d+)">', dom)]
    assert rows == table["homogeneity"].sort_values(kind="stable").index.tolist()
    assert re.search(r'<th data-type="number" data-column="homogeneity" tabindex="0" '
                     r'aria-sort="ascending">', dom)
    assert len(re.findall(r"<th [^>]*aria-sort=", dom)) == 1   # the other headings cleared


def test_chromium_screenshots_the_page(chromium, volume_report, surface_fit, tmp_path):
    for name, report in (("volume", volume_report),
                         ("surface", surface_fit[0].generate_report(surface_fit[1],
                                                                    split_half=False))):
        page = tmp_path / f"{name}.html"
        report.save_as_html(page)
        shot = tmp_path / f"{name}.png"
        _, console = browse(chromium, page, tmp_path, f"--screenshot={shot}",
                            "--window-size=1200,4000")
        assert console == []
        head = shot.read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", head[16:24]) == (1200, 4000)


# --------------------------------------------------------------------------
# fastrena report
# --------------------------------------------------------------------------
def test_fastrena_report_of_a_volume_uses_the_lookup_table(volumes, capsys):
    folder, _, _ = volumes
    assert call(capsys, "parcellate", "run1.nii.gz", "run2.nii", "--mask", "mask.nii.gz",
                "-k", 6, "-o", "labels.nii.gz")[0] == 0
    table = (folder / "labels.tsv").read_text().splitlines()
    table[1] = "1\tmotor cortex\t#123abc\t" + table[1].split("\t")[3]
    (folder / "labels.tsv").write_text("\n".join(table) + "\n")
    code, out, err = call(capsys, "report", "run1.nii.gz", "run2.nii", "--labels",
                          "labels.nii.gz", "-o", "report.html")
    assert (code, err) == (0, "")
    assert re.fullmatch(r"wrote report\.html \(6 parcels, scored on 6 scans; [\d.]+ s\)\n", out)
    text = (folder / "report.html").read_text(encoding="utf-8")
    assert ('<span class="swatch" style="background:#123abc" title="#123abc"></span>'
            'motor cortex</td>') in text
    assert "names and colours: labels.tsv" in text and html_problems(text) == []
    # Never over a file without --force.
    code, _, err = call(capsys, "report", "--labels", "labels.nii.gz", "-o", "report.html")
    assert code == 1 and err == ("fastrena report: error: output 'report.html' already "
                                 "exists; --force overwrites it\n")


def test_fastrena_report_of_surfaces_needs_the_meshes(surfaces, capsys):
    folder, _, _ = surfaces
    assert call(capsys, "parcellate", "lh.run1.func.gii", "rh.run1.func.gii", "--mesh",
                "lh.pial.gii", "--mesh", "rh.pial.gii", "-k", 5, "-o", "lh.label.gii", "-o",
                "rh.label.gii")[0] == 0
    labels = ["--labels", "lh.label.gii", "--labels", "rh.label.gii"]
    code, _, err = call(capsys, "report", *labels, "-o", "report.html")
    assert code == 1 and err == ("fastrena report: error: --mesh: GIfTI label files need "
                                 "their meshes, one per label file (2), for the graph, the "
                                 "areas and the pictures; got 0\n")
    code, _, err = call(capsys, "report", "lh.run1.func.gii", "rh.run1.func.gii", *labels,
                        "--mesh", "lh.pial.gii", "--mesh", "rh.pial.gii", "-o", "s.html")
    assert (code, err) == (0, "")
    text = (folder / "s.html").read_text(encoding="utf-8")
    assert "area (mm²)" in text and "Split-half reproducibility: <strong>" in text


def test_fastrena_report_refuses_other_names(volumes, capsys):
    code, _, err = call(capsys, "report", "--labels", "mask.nii.gz", "-o", "report.txt")
    assert code == 1 and err == ("fastrena report: error: -o/--output 'report.txt': a "
                                 "report is an HTML page; name it with .html\n")
    # Inputs are checked to exist first (the missing one named), then used.
    code, _, err = call(capsys, "report", "--labels", "mask.nii.gz", "--mesh", "m.gii",
                        "-o", "r.html")
    assert code == 1 and err == "fastrena report: error: mesh: no such file: 'm.gii'\n"
    (volumes[0] / "m.gii").write_text("a mesh")
    code, _, err = call(capsys, "report", "--labels", "mask.nii.gz", "--mesh", "m.gii",
                        "-o", "r.html")
    assert code == 1 and err == ("fastrena report: error: --mesh is only used with surface "
                                 "(GIfTI) or CIFTI-2 labels\n")


# --------------------------------------------------------------------------
# grayordinates: surfaces and voxels in one report
# --------------------------------------------------------------------------
def write_cifti(folder, rng):
    """lh/rh.surf.gii (10 x 10 grids; their first row left out, as a
    medial wall) and run.dtseries.nii (20 rows) on them and a 4 x 4 x 3
    subcortical box of 2 mm voxels: 212 grayordinates."""
    from nibabel import cifti2

    models = []
    for hemi, x, name in (("lh", -30.0, "CortexLeft"), ("rh", 30.0, "CortexRight")):
        coords, faces = grid_mesh(10, 10, x=x)
        write_gifti_mesh(folder / f"{hemi}.surf.gii", coords, faces)
        models.append(cifti2.BrainModelAxis.from_surface(np.arange(10, 100), 100, name))
    box = np.zeros((8, 8, 8), dtype=bool)
    box[2:6, 2:6, 2:5] = True
    models.append(cifti2.BrainModelAxis.from_mask(box, "thalamus_left", AFFINE))
    axis = models[0] + models[1] + models[2]
    data = rng.standard_normal((20, len(axis))).astype(np.float32)
    img = cifti2.Cifti2Image(data, header=(cifti2.SeriesAxis(0, 0.72, 20), axis))
    img.to_filename(str(folder / "run.dtseries.nii"))
    return data


def test_a_grayordinate_report_has_areas_volumes_and_both_pictures(tmp_path, capsys,
                                                                   monkeypatch):
    from fastrena.io import grayordinate_layout, images_to_array

    monkeypatch.chdir(tmp_path)
    write_cifti(tmp_path, np.random.default_rng(5))
    layout = grayordinate_layout("run.dtseries.nii", ["lh.surf.gii", "rh.surf.gii"])
    X = images_to_array(["run.dtseries.nii"], layout)
    rena = ReNA(layout, n_clusters=12).fit(X)
    table = metrics.parcel_metrics(rena, X)
    # A parcel is either on a surface (an area) or in the box (a volume).
    surface = table["area_mm2"].notna().to_numpy()
    assert (surface != table["volume_mm3"].notna().to_numpy()).all()
    in_box = rena.labels_[180:]
    assert table["volume_mm3"].iloc[np.unique(in_box)].tolist() == (
        8.0 * np.bincount(in_box)[np.unique(in_box)]).tolist()
    # The grids' squares are 1 mm^2, each vertex a third of its triangles'.
    assert table["area_mm2"].sum() == pytest.approx(
        2 * metrics.vertex_areas(*grid_mesh(10, 10))[10:].sum())
    text = rena.generate_report(X, split_half=False).get_html()
    assert "Top: each cortical surface seen from the side" in text
    assert html_problems(text) == []
    # The command line: the dense label file and its meshes.
    assert call(capsys, "parcellate", "run.dtseries.nii", "--mesh", "lh.surf.gii", "--mesh",
                "rh.surf.gii", "-k", 12, "-o", "parc.dlabel.nii")[0] == 0
    code, out, err = call(capsys, "report", "run.dtseries.nii", "--labels", "parc.dlabel.nii",
                          "--mesh", "lh.surf.gii", "--mesh", "rh.surf.gii", "-o", "g.html")
    assert (code, err) == (0, "") and out.startswith("wrote g.html (12 parcels, scored on 20 "
                                                     "scans;")
    text = (tmp_path / "g.html").read_text(encoding="utf-8")
    assert "area (mm²)" in text and "volume (mm³)" in text and "Top: each cortical" in text


def test_the_grayordinate_picture_needs_neither_nilearn_nor_pyplot(tmp_path, monkeypatch):
    """The subcortical parcels are drawn over nilearn's MNI152 template;
    without nilearn, on black, and the caption says so. The report makes
    no figure through pyplot."""
    from matplotlib import pyplot

    from fastrena.io import grayordinate_layout, images_to_array

    monkeypatch.chdir(tmp_path)
    write_cifti(tmp_path, np.random.default_rng(5))
    layout = grayordinate_layout("run.dtseries.nii", ["lh.surf.gii", "rh.surf.gii"])
    X = images_to_array(["run.dtseries.nii"], layout)
    rena = ReNA(layout, n_clusters=12).fit(X)
    pyplot.close("all")
    caption = ("bottom: axial slices through the subcortical parcels (seen from above, left "
               "on the left), each voxel at its coordinates in mm {} A parcel has the same "
               "colour wherever it appears.</figcaption>")
    text = rena.generate_report(X, split_half=False).get_html()
    assert caption.format("over the MNI152 template.") in text
    assert pyplot.get_fignums() == []
    monkeypatch.setitem(sys.modules, "nilearn", None)
    monkeypatch.setitem(sys.modules, "nilearn.datasets", None)
    text = rena.generate_report(X, split_half=False).get_html()
    assert caption.format("on a black background (nilearn, which holds the MNI152 template, "
                          "is not installed).") in text
    assert html_problems(text) == []
    assert pyplot.get_fignums() == []


def test_a_dask_array_gives_the_same_page(volume_fit):
    import dask
    import dask.array as da

    rena, X = volume_fit
    with dask.config.set(scheduler="synchronous"):
        lazy = rena.generate_report(da.from_array(X, chunks=(7, 300))).get_html()
    assert lazy == rena.generate_report(X).get_html()


def test_one_sample_scores_without_a_warning(volume_fit):
    rena, X = volume_fit
    text = rena.generate_report(X[:1]).get_html()   # RuntimeWarnings are errors here
    assert "Split-half reproducibility was not computed." in text
    # One sample has no variation to correlate: homogeneity is not defined.
    assert "<td>Mean homogeneity (null)</td><td>n/a (n/a)</td>" in text
    assert "No parcel's homogeneity is defined: the signals do not vary" in text
    assert html_problems(text) == []


def test_fastrena_report_names_a_bad_lookup_table(volumes, capsys):
    folder, _, _ = volumes
    assert call(capsys, "parcellate", "run1.nii.gz", "--mask", "mask.nii.gz", "-k", 3, "-o",
                "labels.nii.gz")[0] == 0
    (folder / "labels.tsv").write_text("value\tname\n1\ta\n")
    code, _, err = call(capsys, "report", "--labels", "labels.nii.gz", "-o", "r.html")
    assert code == 1 and err == ("fastrena report: error: lookup table 'labels.tsv' has no "
                                 "'index' column (a dseg.tsv has index, name and color)\n")
    (folder / "labels.tsv").write_text("index\tname\tcolor\none\ta\t#000000\n")
    code, _, err = call(capsys, "report", "--labels", "labels.nii.gz", "-o", "r.html")
    assert code == 1 and err == ("fastrena report: error: lookup table 'labels.tsv': index "
                                 "'one' is not an integer\n")
    assert not (folder / "r.html").exists()
    # A colour that is not #rrggbb never reaches the page's styles.
    (folder / "labels.tsv").write_text("index\tname\tcolor\n2\tvisual\tred;x:y\n")
    assert call(capsys, "report", "--labels", "labels.nii.gz", "-o", "r.html")[0] == 0
    text = (folder / "r.html").read_text(encoding="utf-8")
    assert "red;x:y" not in text and "</span>visual</td>" in text
