"""fastrena.plotting: pictures drawn headless, checked as real images."""

import struct
import sys

import matplotlib.colors
import matplotlib.image
import nibabel
import numpy as np
import pytest
from helpers import AFFINE, grid_mesh, write_nifti

from fastrena import ReNA, plotting
from fastrena._colors import cluster_colors


def png_size(path):
    """(width, height) from a PNG file's signature and IHDR chunk."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def colour_present(pixels, rgb):
    """Whether some pixel has exactly the 8-bit colour of ``rgb`` (in [0, 1])."""
    target = np.round(np.asarray(rgb) * 255)
    return bool(np.all(np.round(pixels[..., :3] * 255) == target, axis=-1).any())


@pytest.fixture(autouse=True)
def no_figure_left():
    """Figures drawn without output_file are pyplot's: closed after each test."""
    yield
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.fixture
def two_halves(tmp_path):
    """A label image: left half of a box cluster 1, right half cluster 2."""
    labels = np.zeros((10, 8, 6), np.int16)
    labels[1:5, 1:7, 1:5] = 1
    labels[5:9, 1:7, 1:5] = 2
    return write_nifti(tmp_path / "labels.nii.gz", labels)


def test_plot_parcellation_over_the_mask(two_halves, tmp_path):
    out = tmp_path / "p.png"
    figure = plotting.plot_parcellation(two_halves, output_file=out)
    assert png_size(out) == (1200, 440)
    pixels = matplotlib.image.imread(out)
    colours = cluster_colors(2)
    assert colour_present(pixels, colours[0]) and colour_present(pixels, colours[1])
    # The cuts go through the labelled voxel nearest to the centre of mass
    # (which lies between voxels here, half a voxel away).
    assert [ax.get_title() for ax in figure.axes] == [
        "sagittal, x = -2 mm", "coronal, y = -6 mm", "axial, z = -4 mm"]


def test_plot_parcellation_crops_the_slices_to_the_labels(tmp_path):
    """Labels in a corner of a large grid: each slice shows them and a rim
    of two voxels, at equal scale, the three panels as wide as the figure
    (12 inches, less 4 gaps of 0.08) at one height."""
    labels = np.zeros((40, 40, 40), np.int16)
    labels[8:12, 20:26, 30:32] = 1
    # Voxel centres at x = -10 + 2 i, y = -12 + 2 j, z = -8 + 2 k mm:
    # x 6..12, y 28..38, z 52..54; a voxel's half and the rim add 5 mm.
    figure = plotting.plot_parcellation(write_nifti(tmp_path / "c.nii.gz", labels))
    x, y, z = (1.0, 17.0), (23.0, 43.0), (47.0, 59.0)
    assert [(ax.get_xlim(), ax.get_ylim()) for ax in figure.axes] == [(y, z), (x, z), (x, y)]
    aspects = [20 / 12, 16 / 12, 16 / 20]
    height = (12 - 4 * 0.08) / sum(aspects)
    assert [ax.get_position().height * 4.4 for ax in figure.axes] == pytest.approx([height] * 3)
    assert [ax.get_position().width * 12 for ax in figure.axes] == \
        pytest.approx([a * height for a in aspects])


def test_plot_parcellation_over_an_anatomical_image_on_another_grid(two_halves, tmp_path):
    # A finer grid (1 mm) over the same field of view, a bright cube.
    fine = np.diag([1.0, 1.0, 1.0, 1.0])
    fine[:3, 3] = AFFINE[:3, 3] - 0.5
    anatomy = np.zeros((20, 16, 12), np.float32)
    anatomy[4:16, 4:12, 3:9] = 100.0
    bg = write_nifti(tmp_path / "t1.nii.gz", anatomy, affine=fine)
    out = tmp_path / "p.png"
    plotting.plot_parcellation(two_halves, bg, cut_coords=(0.0, -4.0, -2.0), output_file=out,
                               figsize=(6, 2.5), dpi=80)
    assert png_size(out) == (480, 200)
    pixels = matplotlib.image.imread(out)
    # The anatomy shows in grey outside the clusters; over them, colours blend.
    assert colour_present(pixels, (1.0, 1.0, 1.0))
    assert not colour_present(pixels, cluster_colors(2)[0])


def test_plot_parcellation_rejects_empty_labels(tmp_path):
    path = write_nifti(tmp_path / "z.nii.gz", np.zeros((3, 3, 3), np.int16))
    with pytest.raises(ValueError, match="^labels_img has no nonzero label$"):
        plotting.plot_parcellation(path)


def test_plot_parcellation_never_overwrites(two_halves, tmp_path):
    out = tmp_path / "p.png"
    out.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match=f"^output '{out}' already exists; force=True "
                                              "overwrites it$"):
        plotting.plot_parcellation(two_halves, output_file=out)
    assert out.read_bytes() == b"keep me"
    plotting.plot_parcellation(two_halves, output_file=out, force=True)
    assert png_size(out) == (1200, 440)


def axes_pixels(figure, ax):
    """The RGB pixels (8-bit) of ``ax`` in the rendered ``figure``, top row first."""
    figure.canvas.draw()
    image = np.asarray(figure.canvas.buffer_rgba())[..., :3]
    box = ax.get_window_extent()
    height = image.shape[0]
    return image[height - int(box.y1):height - int(box.y0), int(box.x0):int(box.x1)]


def test_plot_surface_parcellation(tmp_path):
    """Each view is the mesh seen along x, filling its panel (7 x 5 mm
    grids: panels 1.4 times as wide as high), the panels filling the
    figure's width; anterior (y) on the left of a left lateral view, on
    the right of a right lateral one."""
    left, right = grid_mesh(6, 8, x=-20.0), grid_mesh(6, 8, x=20.0)
    # Left hemisphere: cluster 1 at the back (y < 3.5), 2 at the front.
    labels = [np.where(left[0][:, 1] < 3.5, 1, 2), np.repeat([0, 3], 24)]
    out = tmp_path / "s.png"
    figure = plotting.plot_surface_parcellation([left, right], labels, output_file=out, dpi=50)
    # 16 inches wide; one row of 4 panels: (16 - 5 gaps of 0.08) / (4 x 1.4)
    # = 2.786 inches high, under 0.5 + 0.3 inches of titles: 179 pixels.
    assert png_size(out) == (800, 179)
    assert [ax.get_title() for ax in figure.axes] == [
        "left lateral", "left medial", "right lateral", "right medial"]
    assert [ax.get_xlim() for ax in figure.axes] == [(-7, 0), (0, 7), (0, 7), (-7, 0)]
    assert all(ax.get_ylim() == (0, 5) for ax in figure.axes)
    widths = [ax.get_position().width for ax in figure.axes]
    assert sum(widths) == pytest.approx(15.6 / 16)
    assert [ax.get_position().height for ax in figure.axes] == \
        pytest.approx([15.6 / 5.6 / (0.8 + 15.6 / 5.6)] * 4)
    # Flat meshes face the camera: every face is drawn in its exact colour.
    back, front = (np.round(c * 255) for c in cluster_colors(3)[:2])
    lateral, medial = (axes_pixels(figure, ax) for ax in figure.axes[:2])
    middle = lateral.shape[0] // 2
    for view, (first, second) in ((lateral, (front, back)), (medial, (back, front))):
        width = view.shape[1]
        assert (view[middle, width // 8] == first).all()
        assert (view[middle, width - width // 8] == second).all()


def test_figures_to_show_are_pyplots_and_written_ones_are_not(two_halves, tmp_path):
    """Without output_file the figure is pyplot's (plt.show() shows it);
    with it, pyplot holds no new figure (as nilearn, which closes it)."""
    from matplotlib import pyplot

    pyplot.close("all")
    shown = plotting.plot_parcellation(two_halves)
    assert pyplot.get_fignums() == [shown.number]
    assert pyplot.gcf() is shown
    for draw in (lambda out: plotting.plot_parcellation(two_halves, output_file=out),
                 lambda out: plotting.plot_cluster_sizes([1, 2, 5], output_file=out),
                 lambda out: plotting.plot_compression_curve([1, 2], [0.5, 0.2],
                                                             output_file=out),
                 lambda out: plotting.plot_surface_parcellation(
                     [grid_mesh(3, 3)], [np.ones(9)], output_file=out)):
        written = draw(tmp_path / "w.png")
        assert pyplot.get_fignums() == [shown.number]
        assert written.canvas.get_renderer() is not None  # drawn on the Agg canvas
        (tmp_path / "w.png").unlink()
    pyplot.close("all")


def test_the_drawing_below_never_uses_pyplot(two_halves, tmp_path):
    """fastrena._pictures (the report's pictures) draws on the Agg canvas
    even without output_file; a public picture that fails leaves no
    figure in pyplot."""
    from matplotlib import pyplot
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from fastrena import _pictures

    pyplot.close("all")
    for figure in (_pictures.plot_parcellation(two_halves),
                   _pictures.plot_cluster_sizes([1, 2, 5]),
                   _pictures.plot_compression_curve([1, 2], [0.5, 0.2]),
                   _pictures.plot_surface_parcellation([grid_mesh(3, 3)], [np.ones(9)]),
                   _pictures.plot_grayordinate_parcellation(
                       [grid_mesh(3, 3)], [np.ones(9)], nibabel.load(two_halves),
                       bg_img=None)):
        assert type(figure.canvas) is FigureCanvasAgg
    assert pyplot.get_fignums() == []
    with pytest.raises(ValueError, match="^labels_img has no nonzero label$"):
        plotting.plot_parcellation(nibabel.Nifti1Image(np.zeros((3, 3, 3), np.int16), AFFINE))
    assert pyplot.get_fignums() == []
    with pytest.raises(TypeError, match="unexpected keyword argument 'figure'"):
        plotting.plot_cluster_sizes([1, 2], figure=None)


def test_plot_surface_parcellation_checks_sizes():
    with pytest.raises(ValueError, match="^a label array has 3 values but its mesh has 4 "
                                         "vertices$"):
        plotting.plot_surface_parcellation([grid_mesh(2, 2)], [np.ones(3)])
    with pytest.raises(ValueError, match="^1 meshes but 2 label arrays; give one label array "
                                         "per mesh$"):
        plotting.plot_surface_parcellation([grid_mesh(2, 2)], [np.ones(4), np.ones(4)])


def test_plot_cluster_sizes(tmp_path):
    out = tmp_path / "h.png"
    figure = plotting.plot_cluster_sizes([1, 3, 3, 40, 200], output_file=out)
    assert png_size(out) == (640, 420)
    ax = figure.axes[0]
    assert ax.get_title() == "5 clusters, largest 200 voxels"
    assert ax.get_legend().get_texts()[0].get_text() == "median 3"
    assert ax.get_xscale() == "log"
    with pytest.raises(ValueError, match=r"^sizes must be a non-empty 1-D array of positive "
                                         r"counts, got shape \(0,\)$"):
        plotting.plot_cluster_sizes([])


def centred_error(X, X_hat):
    """The benchmarks' error by numpy alone: ||X - R|| / ||X - X's row means||."""
    return np.linalg.norm(X - X_hat) / np.linalg.norm(X - X.mean(axis=1, keepdims=True))


def test_compression_errors_and_curve(tmp_path):
    X = np.random.default_rng(0).standard_normal((3, 40))
    errors = plotting.compression_errors(X, [1, 10, 40])
    for k, error in zip([1, 10, 40], errors):
        rena = ReNA(n_clusters=k).fit(X)
        X_hat = rena.inverse_transform(rena.transform(X))
        np.testing.assert_allclose(error, centred_error(X, X_hat), rtol=1e-12, atol=0)
    # One cluster over the chain leaves the row means: all of the variation lost.
    np.testing.assert_allclose(errors[0], 1.0, rtol=1e-12)
    assert errors[-1] == 0.0 and errors[0] > errors[1] > 0
    out = tmp_path / "c.png"
    figure = plotting.plot_compression_curve([1, 10, 40], errors, output_file=out)
    assert png_size(out) == (640, 420)
    np.testing.assert_array_equal(figure.axes[0].lines[0].get_ydata(), errors)
    assert figure.axes[0].get_ylabel() == "relative error ||X - R|| / ||X - X's row means||"
    with pytest.raises(ValueError, match=r"^n_clusters and errors must be 1-D of one length, "
                                         r"got shapes \(2,\) and \(3,\)$"):
        plotting.plot_compression_curve([1, 2], errors)


def test_compression_errors_ignore_a_baseline():
    """Issue 28: smooth signals on a baseline of 1000, as BOLD scans have
    one. Divided by ||X||, every K read below 0.0003; centred on each
    scan's mean, the curve runs from 1 to 0 and K = 100 of 400 features
    keeps about two thirds of the variation."""
    from scipy.ndimage import gaussian_filter1d

    signal = gaussian_filter1d(np.random.default_rng(0).standard_normal((4, 400)), 4.0,
                               axis=1)
    X = signal + 1000.0
    ks = [1, 4, 20, 100, 400]
    errors = plotting.compression_errors(X, ks)
    for k, error in zip(ks, errors):
        rena = ReNA(n_clusters=k).fit(X)
        X_hat = rena.inverse_transform(rena.transform(X))
        np.testing.assert_allclose(error, centred_error(X, X_hat), rtol=1e-12, atol=0)
        # The old definition, flat near 0 whatever K.
        assert np.linalg.norm(X - X_hat) / np.linalg.norm(X) < 3e-4
    np.testing.assert_allclose(errors, [1.0, 0.924816, 0.647691, 0.358591, 0.0], atol=1e-6)
    # The baseline changes nothing: the same fits on the signal alone.
    np.testing.assert_allclose(plotting.compression_errors(signal, ks), errors, atol=1e-9)


def test_relative_error_of_float32_data_is_accumulated_in_float64():
    X = np.array([[1000.0, 1001.0, 1003.0, 1004.0]], dtype=np.float32)
    R = np.array([[1000.5, 1000.5, 1003.5, 1003.5]], dtype=np.float32)
    # ||(-.5, .5, -.5, .5)|| / ||(-2, -1, 1, 2)|| = 1 / sqrt(10)
    assert plotting.relative_error(X, R) == pytest.approx(1 / np.sqrt(10), rel=1e-15)


def test_compression_errors_of_zero_data():
    np.testing.assert_array_equal(plotting.compression_errors(np.zeros((2, 6)), [1, 3]),
                                  [0.0, 0.0])


def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"^fastrena.plotting needs matplotlib: pip install "
                                          r"fastrena\[neuro\]$"):
        plotting.plot_cluster_sizes([1, 2])


def test_plots_accept_nibabel_images():
    img = nibabel.Nifti1Image(np.arange(27, dtype=np.int16).reshape(3, 3, 3), AFFINE)
    figure = plotting.plot_parcellation(img)
    assert figure.texts[0].get_text() == "26 clusters"


def test_grayordinate_slices_are_titled_in_black_on_white(two_halves):
    # The volume row shares the surfaces' white background: white titles
    # vanished; black whatever matplotlib's style.
    coords, faces = grid_mesh(3, 3, x=-10.0)
    with matplotlib.rc_context({"text.color": "white", "axes.titlecolor": "white"}):
        figure = plotting.plot_grayordinate_parcellation(
            [(coords, faces)], [np.arange(9) % 2 + 1], nibabel.load(two_halves))
    # The volume row: an axial slice through each of the labels' 4 levels
    # (z = -6 to 0 mm), under the row's title.
    slices = [ax for ax in figure.axes if ax.get_title().startswith("z = ")]
    assert len(slices) == 4
    assert all(matplotlib.colors.to_hex(ax.title.get_color()) == "#000000" for ax in slices)
    assert figure.texts[1].get_text().startswith("volume structures, axial slices")
    assert matplotlib.colors.to_hex(figure.texts[1].get_color()) == "#000000"
    assert matplotlib.colors.to_hex(figure.get_facecolor()) == "#ffffff"


def test_cluster_size_ticks_are_plain_sizes_and_whole_counts():
    figure = plotting.plot_cluster_sizes(np.array([2, 3, 3, 5, 8, 13, 21, 28]))
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "3", "6", "10", "17", "28"]
    assert all(t.get_text() == "" for t in ax.get_xticklabels(minor=True))
    assert all(float(v).is_integer() for v in ax.get_yticks())
