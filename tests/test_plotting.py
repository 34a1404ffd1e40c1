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


def test_plot_surface_parcellation(tmp_path):
    left, right = grid_mesh(6, 8, x=-20.0), grid_mesh(6, 8, x=20.0)
    labels = [np.repeat([1, 2], 24), np.repeat([0, 3], 24)]
    out = tmp_path / "s.png"
    figure = plotting.plot_surface_parcellation([left, right], labels, output_file=out, dpi=50)
    assert png_size(out) == (800, 160)
    assert [ax.get_title() for ax in figure.axes] == [
        "left lateral", "left medial", "right lateral", "right medial"]
    pixels = matplotlib.image.imread(out)[..., :3]
    not_white = np.any(pixels < 0.99, axis=-1).mean()
    assert not_white > 0.2


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
    # The volume row shares the surfaces' white background: white titles vanished.
    coords, faces = grid_mesh(3, 3, x=-10.0)
    figure = plotting.plot_grayordinate_parcellation(
        [(coords, faces)], [np.arange(9) % 2 + 1], nibabel.load(two_halves))
    slices = [ax for ax in figure.axes if ax.get_title().startswith(("sagittal", "coronal",
                                                                       "axial"))]
    assert len(slices) == 3
    assert all(matplotlib.colors.to_hex(ax.title.get_color()) == "#000000" for ax in slices)
    assert matplotlib.colors.to_hex(figure.get_facecolor()) == "#ffffff"


def test_cluster_size_ticks_are_plain_sizes_and_whole_counts():
    figure = plotting.plot_cluster_sizes(np.array([2, 3, 3, 5, 8, 13, 21, 28]))
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "3", "6", "10", "17", "28"]
    assert all(t.get_text() == "" for t in ax.get_xticklabels(minor=True))
    assert all(float(v).is_integer() for v in ax.get_yticks())
