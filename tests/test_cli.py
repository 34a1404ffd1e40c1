"""The ``fastrena`` command line, end to end.

The installed console script runs in a subprocess for the round trips, the
demo and a few error paths (one line on stderr, no traceback); the other
error paths call ``fastrena.cli.main`` in this process, which is the same
code without the cost of a new interpreter per case.
"""

import re
import struct
import subprocess
import sys
from pathlib import Path

import nibabel
import numpy as np
import pytest
from helpers import (AFFINE, FASTRENA, PARCELLATE, call, folder_state, grid_mesh,
                     write_gifti_data, write_nifti)
from scipy import sparse

from fastrena import ReNA
from fastrena._colors import cluster_colors
from fastrena.cli import main
from fastrena.errors import MissingDependencyError


def run(*args, cwd):
    """The console script in a subprocess: (exit code, stdout, stderr)."""
    done = subprocess.run([str(FASTRENA), *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=300)
    return done.returncode, done.stdout, done.stderr


def png_size(path):
    head = Path(path).read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def cluster_means(data, labels):
    """(n_scans, K) means of ``data`` (..., n_scans) over each label 1..K,
    by numpy alone."""
    k = int(labels.max())
    return np.stack([[data[..., t][labels == c].mean(dtype=np.float64)
                      for c in range(1, k + 1)] for t in range(data.shape[-1])])


# --------------------------------------------------------------------------
# help
# --------------------------------------------------------------------------
def test_console_script_is_installed_and_lists_subcommands(tmp_path):
    code, out, err = run("--help", cwd=tmp_path)
    assert (code, err) == (0, "")
    assert out.startswith("usage: fastrena [-h] [--version] SUBCOMMAND ...")
    for command in ("parcellate", "reduce", "expand", "report", "demo"):
        assert re.search(rf"^    {command}\s+\w", out, re.MULTILINE), command
    # No argument at all: the same help, as a bad command line is answered
    # (on stderr, exit code 2).
    assert run(cwd=tmp_path) == (2, "", out)


@pytest.mark.parametrize("command, options", [
    ("parcellate", ["--mask", "--mesh", "--n-clusters", "--output", "--n-iter", "--threshold",
                    "--scaling", "--memory", "--memory-level", "--connectivity", "--verbose",
                    "--dtype", "--reduced", "--plot", "--bg-img", "--dask", "--scheduler",
                    "--volumes-per-chunk", "--force", "--quiet"]),
    ("reduce", ["--labels", "--output", "--scaling", "--dtype", "--dask", "--scheduler",
                "--volumes-per-chunk", "--force", "--quiet"]),
    ("expand", ["--labels", "--output", "--scaling", "--dtype", "--force", "--quiet"]),
    ("report", ["--labels", "--mesh", "--output", "--title", "--no-split-half",
                "--random-state", "--dtype", "--force", "--quiet"]),
    ("demo", ["--out", "--samples", "--n-clusters", "--surface-clusters", "--force",
              "--quiet"]),
])
def test_every_subcommand_has_help(capsys, command, options):
    code, out, err = call(capsys, command, "--help")
    assert (code, err) == (0, "")
    assert out.startswith(f"usage: fastrena {command} ")
    for option in options:
        assert option in out, option


def test_version(capsys):
    # The version comes from git tags (setuptools-scm): the installed
    # distribution's, whatever it is on this checkout.
    from importlib.metadata import version

    assert call(capsys, "--version") == (0, f"fastrena {version('fastrena')}\n", "")


# --------------------------------------------------------------------------
# round trips through the console script
# --------------------------------------------------------------------------
def test_volume_round_trip(volumes):
    folder, mask, data = volumes
    code, out, err = run("parcellate", "run1.nii.gz", "run2.nii", "--mask", "mask.nii.gz",
                         "-k", 12, "-o", "labels.nii.gz", "--reduced", "fit.npy",
                         "--plot", "labels.png", cwd=folder)
    assert (code, err) == (0, "")
    assert re.fullmatch(
        r"12 clusters of 210 voxels from 6 scans \(read in \d+\.\d\d s, fit in \d+\.\d\d s\)\n"
        r"wrote labels.nii.gz \(0 = background, clusters 1..12\)\n"
        r"wrote labels.tsv \(lookup table: index, name, color, size\)\n"
        r"wrote fit.npy \(6 x 12 cluster means\)\n"
        r"wrote labels.png\n", out)
    labels_img = nibabel.load(folder / "labels.nii.gz")
    labels = np.asarray(labels_img.dataobj)
    # The lookup table: BIDS dseg.tsv columns, the pictures' colours, sizes.
    table = (folder / "labels.tsv").read_text().splitlines()
    assert table[0] == "index\tname\tcolor\tsize" and len(table) == 13
    colors = cluster_colors(12)
    for line in table[1:]:
        index, name, color, size = line.split("\t")
        assert name == f"label_{index}"
        rgb = [int(color[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        np.testing.assert_allclose(rgb, colors[int(index) - 1], atol=0.5 / 255)
        assert int(size) == np.count_nonzero(labels == int(index))
    np.testing.assert_array_equal(labels_img.affine, AFFINE)
    np.testing.assert_array_equal(labels[~mask], 0)
    assert sorted(np.unique(labels[mask])) == list(range(1, 13))
    assert png_size(folder / "labels.png") == (1200, 440)

    code, out, err = run("reduce", "run1.nii.gz", "run2.nii", "--labels", "labels.nii.gz",
                         "-o", "reduced.csv", cwd=folder)
    assert (code, err) == (0, "")
    assert re.fullmatch(r"wrote reduced.csv: 6 scans x 12 clusters \(\d+\.\d\d s\)\n", out)
    reduced = np.loadtxt(folder / "reduced.csv", delimiter=",", skiprows=1)
    header = (folder / "reduced.csv").read_text().splitlines()[0]
    assert header == ",".join(f"label_{c}" for c in range(1, 13))
    np.testing.assert_allclose(reduced, cluster_means(data, labels), rtol=1e-6)
    np.testing.assert_array_equal(reduced.astype(np.float32), np.load(folder / "fit.npy"))

    code, out, err = run("expand", "reduced.csv", "--labels", "labels.nii.gz",
                         "-o", "expanded.nii.gz", cwd=folder)
    assert (code, err) == (0, "")
    assert out == "wrote expanded.nii.gz (6 scans, 12 clusters)\n"
    expanded = nibabel.load(folder / "expanded.nii.gz")
    np.testing.assert_array_equal(expanded.affine, AFFINE)
    values = np.asarray(expanded.dataobj)
    assert values.shape == (8, 9, 7, 6) and values.dtype == np.float32
    # Every voxel gets its cluster's mean back (the float32 the .csv holds
    # to 9 digits); outside the mask, 0.
    np.testing.assert_array_equal(values[mask],
                                  reduced[:, labels[mask] - 1].T.astype(np.float32))
    np.testing.assert_array_equal(values[~mask], 0)


def test_surface_round_trip(surfaces):
    folder, data, left_mask = surfaces
    groups = ["lh.run1.func.gii", "rh.run1.func.gii", "lh.run2.func.gii", "rh.run2.func.gii"]
    code, out, err = run("parcellate", *groups, "--mesh", "lh.pial.gii", "--mesh",
                         "rh.pial.gii", "--mask", "lh.mask.gii", "--mask", "rh.mask.gii",
                         "-k", 7, "-o", "lh.label.gii", "-o", "rh.label.gii",
                         "--plot", "surface.png", cwd=folder)
    assert (code, err) == (0, "")
    assert out.startswith("7 clusters of 48 vertices from 4 scans ")
    assert "wrote lh.label.gii, rh.label.gii (0 = background, clusters 1..7)\n" in out
    # 16 inches wide, as high as the views of these meshes need.
    assert png_size(folder / "surface.png") == (1600, 347)
    labels = {h: np.asarray(nibabel.load(folder / f"{h}.label.gii").darrays[0].data)
              for h in ("lh", "rh")}
    np.testing.assert_array_equal(labels["lh"][~left_mask], 0)
    assert sorted(np.unique(np.concatenate([labels["lh"][left_mask], labels["rh"]]))) == \
        list(range(1, 8))
    # One lookup table per label file, listing the clusters in that file.
    assert "wrote lh.tsv, rh.tsv (lookup table: index, name, color, size)\n" in out
    for hemi in ("lh", "rh"):
        rows = [line.split("\t") for line in (folder / f"{hemi}.tsv").read_text().splitlines()]
        present = np.unique(labels[hemi][labels[hemi] != 0])
        assert [int(row[0]) for row in rows[1:]] == present.tolist()
        assert [int(row[3]) for row in rows[1:]] == [
            int(np.count_nonzero(labels[hemi] == v)) for v in present]

    code, out, err = run("reduce", *groups, "--labels", "lh.label.gii", "--labels",
                         "rh.label.gii", "-o", "reduced.tsv", cwd=folder)
    assert (code, err) == (0, "")
    reduced = np.loadtxt(folder / "reduced.tsv", delimiter="\t", skiprows=1)
    both = np.concatenate([data["lh"], data["rh"]])
    all_labels = np.concatenate([labels["lh"], labels["rh"]])
    np.testing.assert_allclose(reduced, cluster_means(both, all_labels), rtol=1e-6)
    # A volume among surface labels was called a GIfTI file ("1 GIfTI data
    # files for 2 meshes").
    nibabel.save(nibabel.Nifti1Image(np.zeros((2, 2, 2, 2), np.float32), np.eye(4)),
                 folder / "run.nii.gz")
    code, out, err = run("reduce", "run.nii.gz", "--labels", "lh.label.gii", "--labels",
                         "rh.label.gii", "-o", "volume.npy", cwd=folder)
    assert (code, out) == (1, "")
    assert err == ("fastrena reduce: error: image 'run.nii.gz' is a NIfTI file, but the labels "
                   "or meshes are surfaces (2 parts): give one GIfTI data file per mesh for "
                   "each scan group\n")

    code, out, err = run("expand", "reduced.tsv", "--labels", "lh.label.gii", "--labels",
                         "rh.label.gii", "-o", "lh.back.func.gii", "-o", "rh.back.func.gii",
                         cwd=folder)
    assert (code, err) == (0, "")
    for hemi in ("lh", "rh"):
        back = np.column_stack([d.data for d in
                                nibabel.load(folder / f"{hemi}.back.func.gii").darrays])
        inside = labels[hemi] != 0
        np.testing.assert_array_equal(back[inside],
                                      reduced[:, labels[hemi][inside] - 1].T.astype(np.float32))
        np.testing.assert_array_equal(back[~inside], 0)


@pytest.mark.parametrize("args, message", [
    (["parcellate", "nope.nii.gz", "--mask", "mask.nii.gz", "-k", 3, "-o", "out.nii.gz"],
     "image: no such file: 'nope.nii.gz'"),
    (["parcellate", "notes.nii.gz", "--mask", "mask.nii.gz", "-k", 3, "-o", "out.nii.gz"],
     "image: 'notes.nii.gz' is not a NIfTI or GIfTI image (File notes.nii.gz is not a "
     "gzip file)"),
    (["reduce", "run1.nii.gz", "--labels", "small.nii.gz", "-o", "out.npy"],
     "image 'run1.nii.gz' has shape (8, 9, 7) but the label image has shape (8, 9, 6); they "
     "must be on the same grid"),
    # An earlier run's output is there (without --force) and an input is
    # misspelt: the input is what to fix first.
    (["report", "run9.nii.gz", "--labels", "labels.nii.gz", "-o", "old.html"],
     "image: no such file: 'run9.nii.gz'"),
    (["report", "run1.nii.gz", "--labels", "nolabels.nii.gz", "-o", "old.html"],
     "labels: no such file: 'nolabels.nii.gz'"),
    (["parcellate", "run9.nii.gz", "--mask", "mask.nii.gz", "-k", 3, "-o", "old.nii.gz"],
     "image: no such file: 'run9.nii.gz'"),
    (["parcellate", "run1.nii.gz", "--mask", "nomask.nii.gz", "-k", 3, "-o", "old.nii.gz"],
     "mask: no such file: 'nomask.nii.gz'"),
    (["reduce", "run9.nii.gz", "--labels", "labels.nii.gz", "-o", "old.npy"],
     "image: no such file: 'run9.nii.gz'"),
    (["expand", "none.npy", "--labels", "labels.nii.gz", "-o", "old.nii.gz"],
     "array: no such file: 'none.npy'"),
])
def test_errors_are_one_line_without_traceback(volumes, args, message):
    folder = volumes[0]
    (folder / "notes.nii.gz").write_text("not an image")
    write_nifti(folder / "small.nii.gz", np.ones((8, 9, 6), np.int16))
    write_nifti(folder / "labels.nii.gz", np.ones((8, 9, 7), np.int16))
    for name in ("old.html", "old.nii.gz", "old.npy"):
        (folder / name).write_text("an earlier run's")
    before = folder_state(folder)
    code, out, err = run(*args, cwd=folder)
    assert (code, out) == (1, "")
    assert err == f"fastrena {args[0]}: error: {message}\n"
    assert folder_state(folder) == before


def test_demo(tmp_path):
    code, out, err = run("demo", "--out", "demo", "--samples", 2, "-k", 300,
                         "--surface-clusters", 40, cwd=tmp_path)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert re.fullmatch(r"volume: 2 synthetic smooth scans x 235375 voxels of the MNI152 2 mm "
                        r"brain mask \(2 MB float32\), made in \d+\.\d s", lines[0])
    assert lines[2].startswith("  fit: 300 clusters in ")
    assert lines[5].startswith("surface: fsaverage5 sulcal depth, curvature and thickness "
                               "on 20484 vertices: 40 clusters in ")
    assert lines[7].startswith("wrote 10 files to demo/: labels.nii.gz, labels.tsv, "
                               "parcellation.png")
    assert re.fullmatch(r"done in \d+\.\d s\. Next, on your own data:", lines[8])
    demo = tmp_path / "demo"
    assert png_size(demo / "parcellation.png") == (1200, 440)
    assert png_size(demo / "cluster_sizes.png") == (640, 420)
    assert png_size(demo / "compression_error.png") == (640, 420)
    # 16 inches wide, as high as the inflated fsaverage5's views need.
    assert png_size(demo / "surface_parcellation.png") == (1600, 344)
    labels = np.asarray(nibabel.load(demo / "labels.nii.gz").dataobj)
    assert labels.shape == (99, 117, 95) and labels.max() == 300
    assert np.count_nonzero(labels) == 235375
    left = nibabel.load(demo / "fsaverage5_labels_left.label.gii").darrays[0].data
    right = nibabel.load(demo / "fsaverage5_labels_right.label.gii").darrays[0].data
    assert left.shape == right.shape == (10242,)
    assert sorted(np.unique(np.concatenate([left, right]))) == list(range(1, 41))


def test_demo_refuses_to_overwrite_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "cluster_sizes.png").write_bytes(b"mine")
    code, out, err = call(capsys, "demo", "--out", "demo")
    assert (code, out) == (1, "")
    assert err == ("fastrena demo: error: output 'demo/cluster_sizes.png' already exists; "
                   "--force overwrites it\n")
    assert folder_state(tmp_path) == {Path("demo/cluster_sizes.png"): b"mine"}


def test_demo_out_must_be_a_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("")
    assert call(capsys, "demo", "--out", "afile") == (
        1, "", "fastrena demo: error: --out 'afile' is a file, not a folder\n")


# --------------------------------------------------------------------------
# every error path, in process
# --------------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["parcellate", "run1.nii.gz", "--mask", "nomask.nii.gz", "-k", 4, "-o", "l.nii.gz"],
     "mask: no such file: 'nomask.nii.gz'"),
    (["parcellate", "flat.nii.gz", "--mask", "mask.nii.gz", "-k", 4, "-o", "l.nii.gz"],
     "image 'flat.nii.gz' must be a 3-D or 4-D image, got shape (8, 9)"),
    (["parcellate", "run1.nii.gz", "--mask", "small.nii.gz", "-k", 4, "-o", "l.nii.gz"],
     "image 'run1.nii.gz' has shape (8, 9, 7) but the mask has shape (8, 9, 6); they must be "
     "on the same grid"),
    (["parcellate", "shifted.nii.gz", "--mask", "mask.nii.gz", "-k", 4, "-o", "l.nii.gz"],
     "image 'shifted.nii.gz' has an affine that differs from the mask's (by up to 2 mm); "
     "they must be on the same grid"),
    (["parcellate", "run1.nii.gz", "--mask", "flat.nii.gz", "-k", 4, "-o", "l.nii.gz"],
     "mask 'flat.nii.gz' must be a 3-D image, got shape (8, 9)"),
    ([*PARCELLATE, "-o", "nodir/l.nii.gz"], "output folder 'nodir' does not exist"),
    ([*PARCELLATE, "-o", "run2.nii/l.nii.gz"], "output folder 'run2.nii' does not exist"),
    ([*PARCELLATE, "-o", "/proc/l.nii.gz"],
     "output folder '/proc' is not writable (No such file or directory)"),
    ([*PARCELLATE, "-o", "existing.nii.gz"],
     "output 'existing.nii.gz' already exists; --force overwrites it"),
    ([*PARCELLATE, "-o", "l.nii.gz", "--plot", "existing.png"],
     "output 'existing.png' already exists; --force overwrites it"),
    ([*PARCELLATE, "-o", "run2.nii", "--force"],
     "output 'run2.nii' is also an input; inputs are never overwritten, choose another name"),
    ([*PARCELLATE, "-o", "l.png"], "output 'l.png' must end with .nii or .nii.gz"),
    ([*PARCELLATE, "-o", "a.nii.gz", "-o", "b.nii.gz"],
     "-o/--output: give one label image, got 2 files"),
    ([*PARCELLATE, "-o", "l.nii.gz", "--reduced", "r.txt"],
     "array 'r.txt': unknown format '.txt'; use .npy, .csv, .tsv"),
    ([*PARCELLATE, "-o", "l.nii.gz", "--plot", "p.xyz"],
     "--plot 'p.xyz': unknown picture format 'xyz'; use one of "),
    ([*PARCELLATE, "-o", "l.nii.gz", "--bg-img", "mask.nii.gz"],
     "--bg-img is only used with --plot"),
    ([*PARCELLATE, "-o", "l.nii.gz", "--plot", "p.png", "--bg-img", "none.nii.gz"],
     "--bg-img: no such file: 'none.nii.gz'"),
    ([*PARCELLATE, "-o", "l.nii.gz", "--scaling"], "--scaling is only used with --reduced"),
    ([*PARCELLATE, "-o", "l.nii.gz", "--connectivity", "none.npz"],
     "--connectivity: no such file: 'none.npz'"),
    ([*PARCELLATE, "-o", "l.nii.gz", "--connectivity", "mask.nii.gz"],
     "--connectivity 'mask.nii.gz' is not a scipy.sparse .npz file ("),
    (["parcellate", "lh.func.gii", "--mask", "mask.nii.gz", "-k", 4, "-o", "l.nii.gz"],
     "image 'lh.func.gii' is a GIfTI surface file: give its mesh files with --mesh"),
    # Said before the outputs are checked: GIfTI data without --mesh was
    # told to write NIfTI labels.
    (["parcellate", "lh.func.gii", "-k", 4, "-o", "l.label.gii"],
     "image 'lh.func.gii' is a GIfTI surface file: give its mesh files with --mesh"),
    (["parcellate", "lh.func.gii", "-k", 4, "-o", "a.label.gii", "-o", "b.label.gii"],
     "image 'lh.func.gii' is a GIfTI surface file: give its mesh files with --mesh"),
    (["reduce", "run1.nii.gz", "--labels", "labels.nii.gz", "-o", "r.txt"],
     "array 'r.txt': unknown format '.txt'; use .npy, .csv, .tsv"),
    (["reduce", "run1.nii.gz", "--labels", "run1.nii.gz", "-o", "r.npy"],
     "labels 'run1.nii.gz' must be a 3-D image, got shape (8, 9, 7, 5)"),
    (["reduce", "run1.nii.gz", "--labels", "nolabels.nii.gz", "-o", "r.npy"],
     "labels: no such file: 'nolabels.nii.gz'"),
    (["reduce", "lh.func.gii", "--labels", "labels.nii.gz", "-o", "r.npy"],
     "image 'lh.func.gii' is a GIfTI surface file: reduce it with GIfTI label files "
     "(--labels)"),
    (["expand", "wide.npy", "--labels", "labels.nii.gz", "-o", "e.nii.gz"],
     "array 'wide.npy' has shape (2, 5) but the labels have 4 clusters; it needs 4 columns"),
    (["expand", "none.npy", "--labels", "labels.nii.gz", "-o", "e.nii.gz"],
     "array: no such file: 'none.npy'"),
    (["expand", "wide.npy", "--labels", "labels.nii.gz", "-o", "e.gii"],
     "output 'e.gii' must end with .nii or .nii.gz"),
    (["expand", "wide.npy", "--labels", "labels.nii.gz", "-o", "labels.nii.gz", "--force"],
     "output 'labels.nii.gz' is also an input; inputs are never overwritten, choose another "
     "name"),
    ([*PARCELLATE, "-o", "l.nii.gz", "--scheduler", "threads"],
     "--scheduler is only used with --dask"),
    ([*PARCELLATE, "-o", "l.nii.gz", "--volumes-per-chunk", "2"],
     "--volumes-per-chunk is only used with --dask"),
    (["reduce", "run1.nii.gz", "--labels", "labels.nii.gz", "-o", "r.npy", "--scheduler",
      "threads"], "--scheduler is only used with --dask"),
    ([*PARCELLATE, "-o", "l.nii.gz", "--dask", "--scheduler", "nonsense://host:1"],
     "cannot reach a Dask scheduler at 'nonsense://host:1' (unknown address scheme "
     "'nonsense'"),
    (["reduce", "run1.nii.gz", "--labels", "labels.nii.gz", "-o", "r.npy", "--dask",
      "--scheduler", "nonsense://host:1"],
     "cannot reach a Dask scheduler at 'nonsense://host:1'"),
    # A misspelt local scheduler: at once, without a minute's wait at exit.
    ([*PARCELLATE, "-o", "l.nii.gz", "--dask", "--scheduler", "proceses"],
     "scheduler 'proceses' is neither a local scheduler (threads, processes, synchronous) nor "
     "the address of a Dask scheduler (tcp://host:port)"),
    (["parcellate", "nan.nii", "--mask", "mask.nii.gz", "-k", 4, "-o", "l.nii.gz", "--dask"],
     "image 'nan.nii' has NaN or infinite values inside the mask (volume 1, at 1 voxel): give "
     "a mask that leaves them out, or none (a mask computed from the images leaves out every "
     "voxel that is not finite)"),
])
def test_error_paths(volumes, capsys, args, message):
    folder, mask, data = volumes
    write_nifti(folder / "flat.nii.gz", data[:, :, 0, 0])
    write_nifti(folder / "small.nii.gz", np.ones((8, 9, 6), np.uint8))
    shifted = AFFINE.copy()
    shifted[1, 3] += 2.0
    write_nifti(folder / "shifted.nii.gz", data, affine=shifted)
    labels = np.zeros(mask.shape, np.int16)
    labels[mask] = np.arange(mask.sum()) % 4 + 1
    write_nifti(folder / "labels.nii.gz", labels)
    write_gifti_data(folder / "lh.func.gii", np.zeros(5))
    nan = data[..., :2].copy()
    nan[3, 3, 3, 1] = np.nan
    write_nifti(folder / "nan.nii", nan)
    np.save(folder / "wide.npy", np.zeros((2, 5)))
    (folder / "existing.nii.gz").write_bytes(b"someone's file")
    (folder / "existing.png").write_bytes(b"someone's picture")
    before = folder_state(folder)
    code, out, err = call(capsys, *args)
    assert (code, out) == (1, "")
    assert err.startswith(f"fastrena {args[0]}: error: {message}")
    assert err.endswith("\n") and err.count("\n") == 1
    assert folder_state(folder) == before


def test_surface_error_paths(surfaces, capsys):
    folder = surfaces[0]
    base = ["parcellate", "--mesh", "lh.pial.gii", "--mesh", "rh.pial.gii", "-k", 3]
    before = folder_state(folder)
    cases = [
        ([*base, "lh.run1.func.gii", "-o", "a.gii", "-o", "b.gii"],
         "1 GIfTI data files for 2 meshes: give one file per mesh for each scan group, in "
         "the order of the meshes"),
        ([*base, "lh.run1.func.gii", "rh.run1.func.gii", "-o", "a.gii"],
         "-o/--output: 1 files for 2 meshes; give one label file per mesh"),
        ([*base, "lh.run1.func.gii", "rh.run1.func.gii", "-o", "a.nii.gz", "-o", "b.gii"],
         "output 'a.nii.gz' must end with .gii"),
        ([*base, "lh.run1.func.gii", "rh.run1.func.gii", "-o", "a.gii", "-o", "./a.gii"],
         "the same output file is given twice: a.gii, a.gii"),
        ([*base, "rh.run1.func.gii", "lh.run1.func.gii", "-o", "a.gii", "-o", "b.gii"],
         "image 'rh.run1.func.gii' has 24 vertices but the mesh has 30"),
        ([*base, "lh.pial.gii", "rh.run1.func.gii", "-o", "a.gii", "-o", "b.gii"],
         "image 'lh.pial.gii' is a GIfTI mesh, not data on a mesh"),
        ([*base, "lh.run1.func.gii", "rh.run2.func.gii", "-o", "a.gii", "-o", "b.gii"],
         "image 'lh.run1.func.gii' and image 'rh.run2.func.gii': parts have different "
         "numbers of scans ([3, 1])"),
        (["parcellate", "lh.run1.func.gii", "--mesh", "lh.run1.func.gii", "-k", 3, "-o",
          "a.gii"],
         "mesh 'lh.run1.func.gii' is not a GIfTI mesh (it needs a NIFTI_INTENT_POINTSET and "
         "a NIFTI_INTENT_TRIANGLE array)"),
        ([*base, "--mask", "lh.mask.gii", "lh.run1.func.gii", "rh.run1.func.gii", "-o", "a.gii",
          "-o", "b.gii"],
         "1 mask file(s) for 2 mesh(es); give one mask per mesh"),
    ]
    for args, message in cases:
        code, out, err = call(capsys, *args)
        assert (code, out, err) == (1, "", f"fastrena parcellate: error: {message}\n")
    assert folder_state(folder) == before


def test_bad_command_lines_exit_2_with_usage(volumes, capsys):
    code, out, err = call(capsys, *PARCELLATE[:-2], "-k", 0, "-o", "l.nii.gz")
    assert (code, out) == (2, "")
    assert err.startswith("usage: fastrena parcellate ")
    assert err.endswith("fastrena parcellate: error: argument -k/--n-clusters: must be an "
                        "integer >= 1, got '0'\n")
    code, _, err = call(capsys, *PARCELLATE, "-o", "l.nii.gz", "--threshold", 1)
    assert code == 2
    assert err.endswith("argument --threshold: must be a number in [0, 1), got '1'\n")
    code, _, err = call(capsys, "reduce", "run1.nii.gz", "-o", "r.npy")
    assert code == 2
    assert err.endswith("the following arguments are required: --labels\n")


def test_a_failure_after_the_first_output_removes_the_new_files(volumes, capsys, monkeypatch):
    from fastrena import plotting

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(plotting, "plot_parcellation", disk_full)
    folder = volumes[0]
    (folder / "old.npy").write_bytes(b"kept")
    before = folder_state(folder)
    code, out, err = call(capsys, *PARCELLATE, "-o", "l.nii.gz", "--reduced", "old.npy",
                          "--plot", "p.png", "--force")
    assert code == 1
    assert err == "fastrena parcellate: error: [Errno 28] No space left on device\n"
    # The new label image is gone; the file --force replaced stays replaced.
    after = folder_state(folder)
    assert Path("l.nii.gz") not in after
    assert set(after) == set(before)
    assert after[Path("old.npy")] != b"kept"


# --------------------------------------------------------------------------
# options
# --------------------------------------------------------------------------
def test_parcellate_computes_the_mask_and_force_overwrites(volumes, capsys):
    folder, mask, _ = volumes
    args = ["parcellate", "run1.nii.gz", "run2.nii", "-o", "l.nii.gz"]
    code, out, err = call(capsys, *args, "-k", 5)
    assert (code, err) == (0, "")
    assert out.startswith("mask: 210 voxels computed from the images\n")
    labels = np.asarray(nibabel.load(folder / "l.nii.gz").dataobj)
    np.testing.assert_array_equal(labels != 0, mask)
    assert call(capsys, *args, "-k", 5)[0] == 1
    assert call(capsys, *args, "--force", "-k", 6)[0] == 0
    assert np.asarray(nibabel.load(folder / "l.nii.gz").dataobj).max() == 6


def test_progress_bars_on_a_terminal_and_quiet(volumes, capsys, monkeypatch):
    # Bars are drawn on stderr, so stderr being a terminal is what counts.
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    code, out, err = call(capsys, *PARCELLATE, "-o", "l.nii.gz")
    assert code == 0
    assert "reading images: " in err and "fit: " in err and "merge" in err
    code, out, err = call(capsys, "reduce", "run1.nii.gz", "--labels", "l.nii.gz",
                          "-o", "r.npy")
    assert code == 0 and "transforming: " in err
    assert call(capsys, *PARCELLATE, "-o", "q.nii.gz", "--quiet") == (0, "", "")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    code, out, err = call(capsys, *PARCELLATE, "-o", "n.nii.gz")
    assert (code, err) == (0, "") and out


def test_estimator_options_reach_renas(volumes, capsys):
    folder, mask, data = volumes
    X = np.stack([data[..., t][mask] for t in range(6)])
    n = int(mask.sum())
    chain = sparse.diags([np.ones(n - 1)], [1], shape=(n, n), format="csr")
    sparse.save_npz(folder / "chain.npz", chain)
    code, out, err = call(capsys, *PARCELLATE, "-o", "l.nii.gz", "--connectivity", "chain.npz",
                          "--n-iter", 8, "--threshold", 0.5, "--memory", "cache", "-v",
                          "--reduced", "r.npy", "--scaling")
    assert (code, err) == (0, "")
    reference = ReNA(n_clusters=4, connectivity=chain, n_iter=8, threshold=0.5,
                     scaling=True).fit(X)
    labels = np.asarray(nibabel.load(folder / "l.nii.gz").dataobj)
    np.testing.assert_array_equal(labels[mask], reference.labels_ + 1)
    np.testing.assert_array_equal(np.load(folder / "r.npy"),
                                  reference.transform(X.astype(np.float32)))
    assert "[fastrena] level 1: 210 -> " in out
    assert any((folder / "cache").rglob("*.pkl")) or any((folder / "cache").rglob("output*"))


def test_linkage_ward_reaches_renas(volumes, capsys):
    folder, mask, data = volumes
    X = np.stack([data[..., t][mask] for t in range(6)]).astype(np.float32)
    code, out, err = call(capsys, *PARCELLATE, "-o", "l.nii.gz", "--linkage", "ward",
                          "--n-iter", 20)
    assert (code, err) == (0, "")
    reference = ReNA(mask, n_clusters=4, n_iter=20, linkage="ward").fit(X)
    default = ReNA(mask, n_clusters=4, n_iter=20).fit(X)
    assert not np.array_equal(reference.labels_, default.labels_)
    labels = np.asarray(nibabel.load(folder / "l.nii.gz").dataobj)
    np.testing.assert_array_equal(labels[mask], reference.labels_ + 1)
    code, out, err = call(capsys, *PARCELLATE, "-o", "m.nii.gz", "--linkage", "average")
    assert code == 2
    assert "argument --linkage: invalid choice: 'average' (choose from" in err


def test_warnings_are_one_line(volumes, capsys):
    code, out, err = call(capsys, *PARCELLATE[:-1], 500, "-o", "l.nii.gz")
    assert code == 0
    assert err == ("fastrena parcellate: warning: -k/--n-clusters 500 is larger than the "
                   "number of voxels (210); making 210 clusters\n")


# --------------------------------------------------------------------------
# issue 28, item 3: --n-iter and --linkage ward
# --------------------------------------------------------------------------
def test_help_says_n_iter_does_not_apply_to_ward(capsys):
    code, out, err = call(capsys, "parcellate", "--help")
    assert (code, err) == (0, "")
    text = " ".join(out.split())
    assert ("--n-iter N maximum number of agglomeration levels of the default linkage "
            "(default: 10); not used with --linkage ward, which runs its merges to the end "
            "and takes the cut") in text
    assert ("ward: every merge made at Ward's cost (on the true cluster means) at that "
            "moment, the merges run to the end and the K clusters taken from the cut; error "
            "close to Ward clustering's; --n-iter does not apply to it") in text
    assert ("-v, --verbose print one line per agglomeration level (ReNA's verbose); with "
            "--linkage ward, one per round, then the cut") in text


def test_ward_takes_no_n_iter(volumes, capsys):
    folder = volumes[0]
    for n_iter, output in ((1, "one.nii.gz"), (10, "ten.nii.gz")):
        code, out, err = call(capsys, *PARCELLATE, "-o", output, "--linkage", "ward",
                              "--n-iter", n_iter, "-v")
        assert (code, err) == (0, "")
        # Rounds until one node is left, then the cut (not "level" lines).
        assert "[fastrena] round 1: 210 -> " in out and "[fastrena] level" not in out
        assert "[fastrena] cut: the 206 lowest of 209 merges leave 4 clusters\n" in out
    np.testing.assert_array_equal(np.asarray(nibabel.load(folder / "one.nii.gz").dataobj),
                                  np.asarray(nibabel.load(folder / "ten.nii.gz").dataobj))


def test_ward_scales_below_the_components_blame_them_alone(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mask = np.zeros((8, 4, 4), dtype=bool)
    mask[1:3, 1:3, 1:3] = mask[5:7, 1:3, 1:3] = True  # two cubes of 8 voxels, apart
    data = np.random.default_rng(2).standard_normal(mask.shape + (3,)).astype(np.float32)
    write_nifti(tmp_path / "mask.nii.gz", mask.astype(np.uint8))
    write_nifti(tmp_path / "run.nii.gz", data)
    code, out, err = call(capsys, "parcellate", "run.nii.gz", "--mask", "mask.nii.gz", "-k", 1,
                          "-k", 3, "--linkage", "ward", "--n-iter", 1, "-o", "l{k}.nii.gz")
    assert code == 0
    assert err == ("fastrena parcellate: warning: -k 1: 2 clusters (the graph's connected "
                   "components do not allow fewer)\n")


# --------------------------------------------------------------------------
# issue 28, item 2: a mask among the images (--mask forgotten)
# --------------------------------------------------------------------------
MASK_READ_AS_SCAN = ("fastrena parcellate: warning: image 'mask.nii.gz' may be a mask rather "
                     "than scans: {reasons}. It is read as 1 of the 6 scans; if it is a mask, give "
                     "it with --mask, not among the images\n")
BINARY = ("every value it has inside the mask is 0 or 1, where the other images have other "
          "values")
UINT8 = "its data type uint8 is not theirs (float32)"
ONE_VOLUME = "it has one volume where every other image has several"


def test_a_forgotten_mask_among_the_images_warns(volumes, capsys):
    """The issue's command: the mask read as one more scan, no --mask."""
    folder, mask, data = volumes
    code, out, err = call(capsys, "parcellate", "run1.nii.gz", "mask.nii.gz", "-k", 4, "-o",
                          "new.nii.gz")
    assert code == 0
    assert err == MASK_READ_AS_SCAN.format(reasons="; ".join([BINARY, UINT8, ONE_VOLUME]))
    assert "from 6 scans" in out


def test_a_mask_among_a_3d_and_a_4d_run_warns_of_it_alone(volumes, capsys):
    # run2.nii is 3-D beside the 4-D run1.nii.gz, as runs may be: not a mask.
    code, out, err = call(capsys, "parcellate", "run1.nii.gz", "run2.nii", "mask.nii.gz",
                          "--mask", "mask.nii.gz", "-k", 4, "-o", "l.nii.gz")
    assert code == 0
    assert err == ("fastrena parcellate: warning: image 'mask.nii.gz' may be a mask rather "
                   f"than scans: {BINARY}; {UINT8}. It is read as 1 of the 7 scans; if it is "
                   "a mask, give it with --mask, not among the images\n")


def test_a_float_mask_among_the_images_warns_by_its_values(volumes, capsys):
    folder, mask, data = volumes
    write_nifti(folder / "mask.nii.gz", mask.astype(np.float32))
    code, out, err = call(capsys, "parcellate", "run1.nii.gz", "mask.nii.gz", "--mask",
                          "mask.nii.gz", "-k", 4, "-o", "l.nii.gz")
    assert code == 0
    assert err == MASK_READ_AS_SCAN.format(reasons=f"{BINARY}; {ONE_VOLUME}")


def test_with_dask_a_mask_among_the_images_warns_from_its_header(volumes, capsys):
    # The values are read later, by the fit: the header's type and shape say it.
    code, out, err = call(capsys, "parcellate", "run1.nii.gz", "mask.nii.gz", "--mask",
                          "mask.nii.gz", "-k", 4, "-o", "l.nii.gz", "--dask")
    assert code == 0
    assert err == MASK_READ_AS_SCAN.format(reasons=f"{UINT8}; {ONE_VOLUME}")


def test_an_anatomical_image_among_the_runs_warns_from_its_header(volumes, capsys):
    folder, mask, data = volumes
    # Not 0 and 1, but of its own type and alone in one volume: a T1, say.
    write_nifti(folder / "T1.nii.gz", (100 + 50 * data[..., 5]).astype(np.int16))
    code, out, err = call(capsys, "parcellate", "run1.nii.gz", "T1.nii.gz", "--mask",
                          "mask.nii.gz", "-k", 4, "-o", "l.nii.gz")
    assert code == 0
    assert err == ("fastrena parcellate: warning: image 'T1.nii.gz' may be a mask rather than "
                   f"scans: its data type int16 is not theirs (float32); {ONE_VOLUME}. It is "
                   "read as 1 of the 6 scans; if it is a mask, give it with --mask, not among "
                   "the images\n")


def test_images_alike_or_all_binary_do_not_warn(volumes, capsys):
    folder, mask, data = volumes
    # Another type alone (runs saved by two tools) or one volume alone (the
    # fixture's 3-D run2.nii): runs as they come.
    write_nifti(folder / "run3.nii.gz", data[..., 3:].astype(np.float64))
    code, out, err = call(capsys, "parcellate", "run1.nii.gz", "run2.nii", "run3.nii.gz",
                          "--mask", "mask.nii.gz", "-k", 4, "-o", "a.nii.gz")
    assert (code, err) == (0, "")
    assert "from 9 scans" in out
    # Binary maps only (thresholded maps, say): nothing stands apart.
    rng = np.random.default_rng(1)
    for name in ("b1.nii.gz", "b2.nii.gz"):
        write_nifti(folder / name, (rng.random(mask.shape) < 0.5).astype(np.float32))
    code, out, err = call(capsys, "parcellate", "b1.nii.gz", "b2.nii.gz", "--mask",
                          "mask.nii.gz", "-k", 4, "-o", "b.nii.gz")
    assert (code, err) == (0, "")


def test_a_mask_among_the_images_warns_in_python_too(volumes):
    from fastrena.io import images_to_array

    with pytest.warns(UserWarning) as caught:
        X = images_to_array(["run1.nii.gz", "mask.nii.gz"], "mask.nii.gz")
    assert X.shape == (6, 210)
    assert [str(w.message) for w in caught] == [
        f"image 'mask.nii.gz' may be a mask rather than scans: {BINARY}; {UINT8}; "
        f"{ONE_VOLUME}. It is read as 1 of the 6 scans; if it is a mask, give it as mask_img, "
        "not among the images"]


# --------------------------------------------------------------------------
# issue 28, item 7: hemispheres in the wrong order
# --------------------------------------------------------------------------
def write_named_gifti(path, arrays, side):
    """A GIfTI file of ``arrays`` (GiftiDataArray) that names its hemisphere
    in its metadata, as FreeSurfer's and HCP's files do (``side`` None: no
    name)."""
    meta = nibabel.gifti.GiftiMetaData({"AnatomicalStructurePrimary": side} if side else {})
    nibabel.gifti.GiftiImage(meta=meta, darrays=arrays).to_filename(str(path))


@pytest.fixture
def hemispheres(tmp_path, monkeypatch):
    """lh/rh meshes of 30 vertices each (as fsaverage's hemispheres, of one
    size: swapped files are not caught by their sizes), named or not
    (lh.pial.gii / lh.anon.gii), masks and two scan groups of data files,
    named."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(5)
    for hemi, side, x in (("lh", "CortexLeft", -20.0), ("rh", "CortexRight", 20.0)):
        coords, faces = grid_mesh(5, 6, x=x)
        mesh = [nibabel.gifti.GiftiDataArray(coords.astype(np.float32),
                                             intent="NIFTI_INTENT_POINTSET"),
                nibabel.gifti.GiftiDataArray(faces.astype(np.int32),
                                             intent="NIFTI_INTENT_TRIANGLE")]
        write_named_gifti(tmp_path / f"{hemi}.pial.gii", mesh, side)
        write_named_gifti(tmp_path / f"{hemi}.anon.gii", mesh, None)
        write_named_gifti(tmp_path / f"{hemi}.mask.gii",
                          [nibabel.gifti.GiftiDataArray(np.ones(30, np.float32))], side)
        for run in (1, 2):
            columns = rng.standard_normal((2, 30)).astype(np.float32)
            write_named_gifti(tmp_path / f"{hemi}.run{run}.func.gii",
                              [nibabel.gifti.GiftiDataArray(c) for c in columns], side)
    return tmp_path


MESHES = ["--mesh", "lh.pial.gii", "--mesh", "rh.pial.gii"]
IN_ORDER = ["lh.run1.func.gii", "rh.run1.func.gii", "lh.run2.func.gii", "rh.run2.func.gii"]


def test_hemispheres_in_the_meshes_order_run(hemispheres, capsys):
    code, out, err = call(capsys, "parcellate", *IN_ORDER, *MESHES, "--mask", "lh.mask.gii",
                          "--mask", "rh.mask.gii", "-k", 6, "-o", "lh.label.gii", "-o",
                          "rh.label.gii")
    assert (code, err) == (0, "")
    assert out.startswith("6 clusters of 60 vertices from 4 scans ")


@pytest.mark.parametrize("images, meshes, masks, message", [
    # The case: right-hemisphere files first, meshes lh then rh.
    (["rh.run1.func.gii", "lh.run1.func.gii"], MESHES, [],
     "image 'rh.run1.func.gii' is on CortexRight but mesh 'lh.pial.gii', part 1 of 2, is on "
     "CortexLeft; give each scan group's files in this order: CortexLeft, CortexRight"),
    # The second scan group swapped.
    (["lh.run1.func.gii", "rh.run1.func.gii", "rh.run2.func.gii", "lh.run2.func.gii"],
     MESHES, [],
     "image 'rh.run2.func.gii' is on CortexRight but mesh 'lh.pial.gii', part 1 of 2, is on "
     "CortexLeft; give each scan group's files in this order: CortexLeft, CortexRight"),
    # The meshes swapped, the data in order.
    (IN_ORDER, ["--mesh", "rh.pial.gii", "--mesh", "lh.pial.gii"], [],
     "image 'lh.run1.func.gii' is on CortexLeft but mesh 'rh.pial.gii', part 1 of 2, is on "
     "CortexRight; give each scan group's files in this order: CortexRight, CortexLeft"),
    # The masks swapped.
    (IN_ORDER, MESHES, ["--mask", "rh.mask.gii", "--mask", "lh.mask.gii"],
     "mask 'rh.mask.gii' is on CortexRight but mesh 'lh.pial.gii', part 1 of 2, is on "
     "CortexLeft; give the masks in this order: CortexLeft, CortexRight"),
    # Meshes that name nothing: the masks name the hemispheres.
    (["lh.run1.func.gii", "rh.run1.func.gii", "rh.run2.func.gii", "lh.run2.func.gii"],
     ["--mesh", "lh.anon.gii", "--mesh", "rh.anon.gii"],
     ["--mask", "lh.mask.gii", "--mask", "rh.mask.gii"],
     "image 'rh.run2.func.gii' is on CortexRight but mask 'lh.mask.gii', part 1 of 2, is on "
     "CortexLeft; give each scan group's files in this order: CortexLeft, CortexRight"),
])
def test_hemispheres_out_of_order_are_refused(hemispheres, capsys, images, meshes, masks,
                                              message):
    before = folder_state(hemispheres)
    code, out, err = call(capsys, "parcellate", *images, *meshes, *masks, "-k", 6,
                          "-o", "a.label.gii", "-o", "b.label.gii")
    assert (code, out) == (1, "")
    assert err == f"fastrena parcellate: error: {message}\n"
    assert folder_state(hemispheres) == before


def test_unnamed_meshes_leave_the_order_to_the_user(hemispheres, capsys):
    # Nothing names the meshes' hemispheres: nothing to check the data against.
    code, out, err = call(capsys, "parcellate", "rh.run1.func.gii", "lh.run1.func.gii",
                          "--mesh", "lh.anon.gii", "--mesh", "rh.anon.gii", "-k", 6,
                          "-o", "a.label.gii", "-o", "b.label.gii")
    assert (code, err) == (0, "")


def test_reduce_checks_the_data_against_named_label_files(hemispheres, capsys):
    for hemi, side in (("lh", "CortexLeft"), ("rh", "CortexRight")):
        labels = (np.arange(30) // 10 + 1).astype(np.int32)
        write_named_gifti(hemispheres / f"{hemi}.label.gii",
                          [nibabel.gifti.GiftiDataArray(labels)], side)
    labels = ["--labels", "lh.label.gii", "--labels", "rh.label.gii"]
    code, out, err = call(capsys, "reduce", *IN_ORDER, *labels, "-o", "r.npy")
    assert (code, err) == (0, "")
    code, out, err = call(capsys, "reduce", "rh.run1.func.gii", "lh.run1.func.gii", *labels,
                          "-o", "s.npy")
    assert (code, out) == (1, "")
    assert err == ("fastrena reduce: error: image 'rh.run1.func.gii' is on CortexRight but "
                   "labels 'lh.label.gii', part 1 of 2, is on CortexLeft; give each scan "
                   "group's files in this order: CortexLeft, CortexRight\n")


def write_two_cluster_labels(volumes):
    """labels.nii.gz in the volumes' folder: the mask is cluster 1 but for
    voxel (2, 2, 2), cluster 2. Returns the folder."""
    folder, mask, _ = volumes
    labels = np.zeros(mask.shape, np.int16)
    labels[mask] = 1
    labels[2, 2, 2] = 2
    write_nifti(folder / "labels.nii.gz", labels)
    return folder


def test_expand_a_single_row_gives_a_3d_image(volumes, capsys):
    folder = write_two_cluster_labels(volumes)
    np.save(folder / "one.npy", np.array([1.5, -2.0], np.float32))
    code, out, err = call(capsys, "expand", "one.npy", "--labels", "labels.nii.gz",
                          "-o", "one.nii.gz", "--scaling")
    assert (code, out, err) == (0, "wrote one.nii.gz (1 scan, 2 clusters)\n", "")
    values = np.asarray(nibabel.load(folder / "one.nii.gz").dataobj)
    assert values.shape == (8, 9, 7) and values.dtype == np.float32
    assert values[2, 2, 2] == -2.0
    assert values[3, 3, 3] == np.float32(1.5 / np.sqrt(209))


# --------------------------------------------------------------------------
# --dask: lazy reading, the same files as without it
# --------------------------------------------------------------------------
@pytest.mark.parametrize("options", [
    ["--dask"],
    ["--dask", "--volumes-per-chunk", "2", "--scheduler", "synchronous"],
    ["--dask", "--scheduler", "processes"],
])
def test_dask_gives_the_same_files(volumes, capsys, options):
    folder, mask, data = volumes
    common = ["run1.nii.gz", "run2.nii", "--mask", "mask.nii.gz", "-k", 12]
    assert call(capsys, "parcellate", *common, "-o", "ref.nii.gz", "--reduced", "ref.npy",
                "-q")[0] == 0
    code, out, err = call(capsys, "parcellate", *common, "-o", "lazy.nii.gz", "--reduced",
                          "lazy.npy", *options)
    assert (code, err) == (0, "")
    assert re.match(r"12 clusters of 210 voxels from 6 scans \(read lazily, by the fit, "
                    r"fit in \d+\.\d\d s\)\n", out)
    np.testing.assert_array_equal(np.asarray(nibabel.load(folder / "lazy.nii.gz").dataobj),
                                  np.asarray(nibabel.load(folder / "ref.nii.gz").dataobj))
    np.testing.assert_array_equal(np.load(folder / "lazy.npy"), np.load(folder / "ref.npy"))

    assert call(capsys, "reduce", "run2.nii", "run1.nii.gz", "--labels", "ref.nii.gz", "-o",
                "ref2.npy", "--scaling")[0] == 0
    code, out, err = call(capsys, "reduce", "run2.nii", "run1.nii.gz", "--labels",
                          "ref.nii.gz", "-o", "lazy2.npy", "--scaling", *options)
    assert (code, err) == (0, "")
    assert re.fullmatch(r"wrote lazy2.npy: 6 scans x 12 clusters \(\d+\.\d\d s\)\n", out)
    np.testing.assert_array_equal(np.load(folder / "lazy2.npy"), np.load(folder / "ref2.npy"))


def test_dask_on_surfaces(surfaces, capsys):
    folder, data, left_mask = surfaces
    groups = ["lh.run1.func.gii", "rh.run1.func.gii", "lh.run2.func.gii", "rh.run2.func.gii"]
    meshes = ["--mesh", "lh.pial.gii", "--mesh", "rh.pial.gii"]
    for name, extra in (("ref", []), ("lazy", ["--dask"])):
        code, out, err = call(capsys, "parcellate", *groups, *meshes, "-k", 7, "-o",
                              f"lh.{name}.label.gii", "-o", f"rh.{name}.label.gii", *extra)
        assert (code, err) == (0, "")
    for hemi in ("lh", "rh"):
        np.testing.assert_array_equal(
            nibabel.load(folder / f"{hemi}.lazy.label.gii").darrays[0].data,
            nibabel.load(folder / f"{hemi}.ref.label.gii").darrays[0].data)


# --------------------------------------------------------------------------
# issue 14: what a failed demo leaves, expand's dtype, summary wording
# --------------------------------------------------------------------------
@pytest.mark.parametrize("failure, code", [(KeyboardInterrupt, 130), (OSError, 1)],
                         ids=["interrupted", "failed"])
def test_a_stopped_demo_leaves_no_folder_it_made(tmp_path, capsys, monkeypatch, failure,
                                                  code):
    import fastrena._demo

    def stop(out, **kwargs):
        (out / "labels.nii.gz").write_bytes(b"half")
        raise failure("stopped")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(fastrena._demo, "run_demo", stop)
    assert call(capsys, "demo", "--out", "new/demo")[0] == code
    assert list(tmp_path.iterdir()) == []
    # A folder that was there stays, with what it held.
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("kept")
    assert call(capsys, "demo", "--out", "mine")[0] == code
    assert call(capsys, "demo", "--out", "mine/demo")[0] == code
    assert folder_state(tmp_path) == {Path("mine/notes.txt"): b"kept"}


def test_expand_writes_the_same_dtype_from_every_array_format(volumes, capsys):
    folder = write_two_cluster_labels(volumes)
    reduced = np.array([[1.5, -2.0], [0.25, 3.375]], np.float32)  # exact in any format
    np.save(folder / "r32.npy", reduced)
    np.save(folder / "r64.npy", reduced.astype(np.float64))
    np.savetxt(folder / "r.csv", reduced, fmt="%.9g", delimiter=",", header="a,b",
               comments="")
    for array, dtype, option in [("r32.npy", np.float32, []), ("r64.npy", np.float32, []),
                                 ("r.csv", np.float32, []),
                                 ("r.csv", np.float64, ["--dtype", "float64"]),
                                 ("r32.npy", np.float64, ["--dtype", "float64"])]:
        out_name = f"{array}.{np.dtype(dtype).name}.nii.gz"
        code, out, err = call(capsys, "expand", array, "--labels", "labels.nii.gz",
                              "-o", out_name, *option)
        assert (code, err) == (0, "")
        image = nibabel.load(folder / out_name)
        values = np.asarray(image.dataobj)
        assert values.dtype == dtype and image.get_data_dtype() == dtype, array
        assert values.shape == (8, 9, 7, 2)
        np.testing.assert_array_equal(values[2, 2, 2], reduced[:, 1].astype(dtype))
        np.testing.assert_array_equal(values[3, 3, 3], reduced[:, 0].astype(dtype))


def test_expand_refuses_values_beyond_float32_unless_float64(volumes, capsys):
    folder, mask, _ = volumes
    labels = np.zeros(mask.shape, np.int16)
    labels[mask] = 1
    write_nifti(folder / "labels.nii.gz", labels)
    (folder / "big.csv").write_text("label_1\n-3e300\n")
    before = folder_state(folder)
    assert call(capsys, "expand", "big.csv", "--labels", "labels.nii.gz", "-o", "big.nii.gz") \
        == (1, "", "fastrena expand: error: array 'big.csv' holds values up to 3e+300, "
                   "beyond float32's range; give --dtype float64\n")
    assert folder_state(folder) == before
    code, out, err = call(capsys, "expand", "big.csv", "--labels", "labels.nii.gz",
                          "-o", "big.nii.gz", "--dtype", "float64")
    assert (code, err) == (0, "")
    assert np.asarray(nibabel.load(folder / "big.nii.gz").dataobj)[3, 3, 3] == -3e300


def test_summaries_say_one_scan_and_one_cluster(volumes, capsys):
    code, out, err = call(capsys, "parcellate", "run2.nii", "--mask", "mask.nii.gz", "-k", 1,
                          "-o", "one.nii.gz", "--reduced", "one.npy")
    assert (code, err) == (0, "")
    assert re.fullmatch(r"1 cluster of 210 voxels from 1 scan \(read in \d+\.\d\d s, fit in "
                        r"\d+\.\d\d s\)\n"
                        r"wrote one.nii.gz \(0 = background, cluster 1\)\n"
            r"wrote one.tsv \(lookup table: index, name, color, size\)\n"
                        r"wrote one.npy \(1 x 1 cluster means\)\n", out)
    code, out, err = call(capsys, "reduce", "run2.nii", "--labels", "one.nii.gz",
                          "-o", "r.npy")
    assert (code, err) == (0, "")
    assert re.fullmatch(r"wrote r.npy: 1 scan x 1 cluster \(\d+\.\d\d s\)\n", out)
    code, out, err = call(capsys, "expand", "r.npy", "--labels", "one.nii.gz",
                          "-o", "back.nii.gz")
    assert (code, out, err) == (0, "wrote back.nii.gz (1 scan, 1 cluster)\n", "")


def test_label_image_on_another_grid_is_named_as_such(volumes, capsys):
    folder, mask, _ = volumes
    write_nifti(folder / "shifted.nii.gz", mask.astype(np.int16), affine=AFFINE + 1.0)
    code, out, err = call(capsys, "reduce", "run1.nii.gz", "--labels", "shifted.nii.gz",
                          "-o", "r.npy")
    assert (code, out) == (1, "")
    assert err == ("fastrena reduce: error: image 'run1.nii.gz' has an affine that differs "
                   "from the label image's (by up to 1 mm); they must be on the same grid\n")


@pytest.mark.parametrize("error, one_line", [
    (MissingDependencyError("fastrena.dask needs Dask: pip install 'fastrena[dask]'"), True),
    (FileNotFoundError("no such file: 'a.nii'"), True),
    (ValueError("Input X contains NaN"), True),
    (TypeError("unsupported operand type(s)"), False),      # a bug: traceback
    (ImportError("cannot import name 'x' from 'y'"), False),  # a bug: traceback
])
def test_only_the_users_errors_become_one_line(monkeypatch, capsys, error, one_line):
    from fastrena.cli import demo

    def fail(args, session):
        raise error

    monkeypatch.setattr(demo, "run", fail)
    if one_line:
        assert main(["demo"]) == 1
        err = capsys.readouterr().err
        assert err == f"fastrena demo: error: {error}\n"
    else:
        with pytest.raises(type(error)):
            main(["demo"])


def test_several_refined_scales_are_fits_to_them(volumes, capsys):
    """``--linkage ward`` refines its clusters' boundaries by default: with
    ``-k`` repeated each scale is refined as a fit to it is (labels and
    --reduced); ``--max-refine-iter 0`` gives the tree's nested cuts; a bad
    value is named."""
    folder, mask, data = volumes
    runs = ["run1.nii.gz", "run2.nii", "--mask", "mask.nii.gz", "--linkage", "ward"]
    code, out, err = call(capsys, "parcellate", *runs, "-k", 40, "-k", 12, "-o",
                          "w_{k}.nii.gz", "--reduced", "w_{k}.npy", "-q")
    assert (code, err) == (0, "")
    for k in (12, 40):
        labels = np.asarray(nibabel.load(folder / f"w_{k}.nii.gz").dataobj)
        assert call(capsys, "parcellate", *runs, "-k", k, "-o", f"one_{k}.nii.gz",
                    "--reduced", f"one_{k}.npy", "-q")[0] == 0
        np.testing.assert_array_equal(np.asarray(nibabel.load(folder / f"one_{k}.nii.gz")
                                                 .dataobj), labels)
        np.testing.assert_allclose(np.load(folder / f"w_{k}.npy"),
                                   np.load(folder / f"one_{k}.npy"), rtol=1e-6)
        assert call(capsys, "parcellate", *runs, "-k", k, "--max-refine-iter", 0, "-o",
                    f"cut_{k}.nii.gz", "-q")[0] == 0
    cuts = [np.asarray(nibabel.load(folder / f"cut_{k}.nii.gz").dataobj)[mask]
            for k in (12, 40)]
    # The refinement moved something, at each scale.
    for k, cut in zip((12, 40), cuts):
        assert not np.array_equal(np.asarray(nibabel.load(folder / f"w_{k}.nii.gz")
                                             .dataobj)[mask], cut)
    pairs = np.unique(np.column_stack([cuts[1], cuts[0]]), axis=0)
    assert np.unique(pairs[:, 0]).shape[0] == pairs.shape[0]
    code, out, err = call(capsys, "parcellate", *runs, "-k", 5, "--max-refine-iter", "-1",
                          "-o", "bad.nii.gz")
    assert code == 2
    assert "argument --max-refine-iter: must be an integer >= 0 or 'auto', got '-1'" in err


def test_several_scales_from_one_fit(volumes, surfaces, capsys):
    """``-k`` repeated: one fit with its merge tree, one label image, lookup
    table and --reduced per scale, named with {k}; the scales are nested
    and each is what a fit to it gives (enough levels for it)."""
    folder, mask, data = volumes
    code, out, err = call(capsys, "parcellate", "run1.nii.gz", "run2.nii", "--mask",
                          "mask.nii.gz", "-k", 40, "-k", 5, "-k", 12, "-o",
                          "labels_res-{k}_dseg.nii.gz", "--reduced", "means_{k}.npy")
    assert (code, err) == (0, "")
    assert out.startswith("5, 12, 40 clusters (nested scales, one fit) of 210 voxels from "
                          "6 scans ")
    labels = {}
    for k in (5, 12, 40):
        labels[k] = np.asarray(nibabel.load(folder / f"labels_res-{k}_dseg.nii.gz").dataobj)
        assert sorted(np.unique(labels[k][mask])) == list(range(1, k + 1))
        assert len((folder / f"labels_res-{k}_dseg.tsv").read_text().splitlines()) == k + 1
        assert np.load(folder / f"means_{k}.npy").shape == (6, k)
        single = folder / f"single_{k}.nii.gz"
        assert call(capsys, "parcellate", "run1.nii.gz", "run2.nii", "--mask", "mask.nii.gz",
                    "-k", k, "--n-iter", 100, "-o", single, "-q")[0] == 0
        np.testing.assert_array_equal(np.asarray(nibabel.load(single).dataobj), labels[k])
    for coarse, fine in ((5, 12), (12, 40)):
        pairs = np.unique(np.column_stack([labels[fine][mask], labels[coarse][mask]]), axis=0)
        assert np.unique(pairs[:, 0]).shape[0] == pairs.shape[0]
    code, out, err = call(capsys, "parcellate", "run1.nii.gz", "--mask", "mask.nii.gz",
                          "-k", 5, "-k", 12, "-o", "labels.nii.gz")
    assert (code, out) == (1, "")
    assert err == ("fastrena parcellate: error: -o/--output 'labels.nii.gz': with several -k, "
                   "name each output with {k}, replaced by each K (e.g. "
                   "labels_res-{k}_dseg.nii.gz)\n")
    assert not (folder / "labels.nii.gz").exists()
    # GIfTI label pairs, named the same way.
    code, out, err = call(capsys, "parcellate", "lh.run1.func.gii", "rh.run1.func.gii",
                          "--mesh", "lh.pial.gii", "--mesh", "rh.pial.gii", "-k", 3, "-k", 9,
                          "-o", "lh_{k}.label.gii", "-o", "rh_{k}.label.gii", "-q")
    assert (code, err) == (0, "")
    for k in (3, 9):
        values = np.concatenate([nibabel.load(folder / f"{h}_{k}.label.gii").darrays[0].data
                                 for h in ("lh", "rh")])
        assert sorted(np.unique(values)) == list(range(1, k + 1))
        assert (folder / f"lh_{k}.tsv").exists() and (folder / f"rh_{k}.tsv").exists()
