"""The command line (and fastrena.io) when the world misbehaves.

A folder that refuses new files, a disk that fills up in the middle of a
write, damaged input files, Ctrl-C during the fit: each must end with one
line on stderr (``fastrena CMD: error: ...`` naming the file and what went
wrong, exit 1; ``fastrena CMD: interrupted``, exit 130), no traceback, and
no file of the failed run left behind, neither an output nor a temporary
file; files that were there before are untouched.

Failures of the file system are simulated by patching the calls that create
and write files, at the lowest level fastrena and its writers (nibabel,
numpy, matplotlib/Pillow) use; one test uses a real, tiny tmpfs when this
machine lets us mount one.
"""

import builtins
import errno
import fcntl
import io
import os
import platform
import pty
import re
import signal
import struct
import subprocess
import termios
import threading
import time
import tty
from pathlib import Path

import nibabel
import numpy as np
import pytest
from helpers import box_mask, masked_volumes, write_gifti_data, write_nifti
from helpers import FASTRENA, PARCELLATE, call, folder_state

from fastrena import files, parcellations, reading
from fastrena import io as fio
from fastrena.io import InputError

NO_SPACE = (errno.ENOSPC, "No space left on device")
READ_ONLY = (errno.EROFS, "Read-only file system")
DENIED = (errno.EACCES, "Permission denied")
# Bytes a full disk still takes of an output before failing.
ROOM = 32


@pytest.fixture
def work(volumes):
    """The ``volumes`` files plus a label image, a reduced array (6 scans x 4
    clusters) and an empty folder ``ro`` for the outputs that will fail."""
    folder, mask, _ = volumes
    labels = np.zeros(mask.shape, np.int16)
    labels[mask] = np.arange(mask.sum()) % 4 + 1
    write_nifti(folder / "labels.nii.gz", labels)
    np.save(folder / "red.npy", np.arange(24, dtype=np.float32).reshape(6, 4))
    (folder / "ro").mkdir()
    return folder


def one_error_line(err, command):
    """The message of the single ``fastrena CMD: error: ...`` line of ``err``."""
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    prefix = f"fastrena {command}: error: "
    assert err.startswith(prefix), err
    return err[len(prefix):-1]


# --------------------------------------------------------------------------
# 1. an output folder that does not accept new files
# --------------------------------------------------------------------------
def refuse_new_files(monkeypatch, folder, error, names=""):
    """``os.open`` (what fastrena creates its probe and temporary files
    with) fails with ``error`` = (errno, text) for a new file in ``folder``
    whose name matches the regular expression ``names`` (default: every new
    file). Returns the names refused."""
    real_open = os.open
    folder = folder.resolve()
    refused = []

    def fake_open(path, flags, *args, **kwargs):
        name = Path(os.fsdecode(path))
        if flags & os.O_CREAT and name.resolve().parent == folder \
                and re.search(names, name.name):
            refused.append(name.name)
            raise OSError(*error)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", fake_open)
    return refused


def no_heavy_work(monkeypatch):
    """Reading the images, fitting, reducing or reading an array fails the test."""
    def forbidden(*args, **kwargs):
        pytest.fail("the work started although an output cannot be written")

    # Patched where the command line looks them up when it runs.
    for module, name in ((reading, "read_images"), (parcellations, "fit_layout"),
                         (files, "load_array")):
        monkeypatch.setattr(module, name, forbidden)
    monkeypatch.setattr(parcellations.Parcellation, "reduce", forbidden)


REDUCE = ["reduce", "run1.nii.gz", "run2.nii", "--labels", "labels.nii.gz"]
EXPAND = ["expand", "red.npy", "--labels", "labels.nii.gz"]
IN_READ_ONLY_FOLDER = [
    pytest.param([*PARCELLATE, "-o", "ro/l.nii.gz"], "ro/l.nii.gz", id="parcellate-labels"),
    pytest.param([*PARCELLATE, "-o", "l.nii.gz", "--reduced", "r.npy", "--plot", "ro/p.png"],
                 "ro/p.png", id="parcellate-plot"),
    pytest.param([*PARCELLATE, "-o", "l.nii.gz", "--reduced", "ro/r.npy"], "ro/r.npy",
                 id="parcellate-reduced"),
    pytest.param([*REDUCE, "-o", "ro/r.csv"], "ro/r.csv", id="reduce"),
    pytest.param([*EXPAND, "-o", "ro/e.nii.gz"], "ro/e.nii.gz", id="expand"),
]


@pytest.mark.parametrize("error", [DENIED, READ_ONLY], ids=["EACCES", "EROFS"])
@pytest.mark.parametrize("args, output", IN_READ_ONLY_FOLDER)
def test_a_read_only_output_folder_is_refused_before_any_work(work, capsys, monkeypatch,
                                                              args, output, error):
    """Permissions do not tell (we are root): fastrena tries to create a file
    in each output folder first, and says which folder refused and why."""
    before = folder_state(work)
    refused = refuse_new_files(monkeypatch, work / "ro", error)
    no_heavy_work(monkeypatch)
    code, out, err = call(capsys, *args)
    assert (code, out) == (1, "")
    assert one_error_line(err, args[0]) == f"output folder 'ro' is not writable ({error[1]})"
    assert [name.startswith(".fastrena-probe-") for name in refused] == [True]
    assert folder_state(work) == before


@pytest.mark.parametrize("error", [DENIED, READ_ONLY], ids=["EACCES", "EROFS"])
@pytest.mark.parametrize("args, output", IN_READ_ONLY_FOLDER)
def test_a_folder_that_turns_read_only_during_the_run(work, capsys, monkeypatch, args, output,
                                                      error):
    """The temporary file cannot be created after the up-front check passed:
    the message names the output (not its temporary name) and the outputs
    this run already wrote are removed."""
    before = folder_state(work)
    refused = refuse_new_files(monkeypatch, work / "ro", error, names=r"\.tmp-")
    code, out, err = call(capsys, *args, "-q")
    assert (code, out) == (1, "")
    assert one_error_line(err, args[0]) == f"cannot write output '{output}' ({error[1]})"
    assert len(refused) == 1 and refused[0].endswith(".tmp-" + Path(output).name)
    assert folder_state(work) == before


def test_an_output_that_cannot_be_removed_is_named(work, capsys, monkeypatch):
    """The folder turns read-only after the label image was written: the
    picture cannot be created and the label image cannot be removed. Still
    one line and exit 1, saying so, rather than a traceback of the clean-up."""
    before = folder_state(work)
    refuse_new_files(monkeypatch, work / "ro", READ_ONLY, names=r"\.tmp-p\.png$")
    real_unlink = os.unlink

    def fake_unlink(path, *args, **kwargs):
        if Path(os.fsdecode(path)).name == "l.nii.gz":
            raise OSError(*READ_ONLY)
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", fake_unlink)
    code, out, err = call(capsys, *PARCELLATE, "-o", "ro/l.nii.gz", "--plot", "ro/p.png", "-q")
    assert (code, out) == (1, "")
    assert one_error_line(err, "parcellate") == (
        "cannot write output 'ro/p.png' (Read-only file system); could not remove "
        "'ro/l.nii.gz' (Read-only file system), written before the error")
    after = folder_state(work)
    assert set(after) - set(before) == {Path("ro/l.nii.gz")}
    assert set(before) - set(after) == set()


# --------------------------------------------------------------------------
# 2. a disk that fills up in the middle of a write
# --------------------------------------------------------------------------
class FillingDisk:
    """Put the temporary file of the output named ``name`` on a disk with
    ``room`` bytes left (``ROOM`` by default): writes past them are short,
    then fail with ``error()`` (ENOSPC by default), as a filling disk does.

    Every opener the writers use is patched: ``open`` (numpy.save, Pillow,
    gzip inside nibabel), nibabel's default opener and numpy's text-file
    opener (savetxt), which keep their own reference to ``open``. The file
    objects are real (io.FileIO under the usual buffered/text layers), so
    the writers see nothing unusual until the disk is full.
    ``sizes_at_failure`` proves the failure hit mid-write.
    """

    def __init__(self, monkeypatch, name, error=lambda: OSError(*NO_SPACE), room=ROOM):
        self.name = name
        self.sizes_at_failure = []
        disk = self

        class File(io.FileIO):
            def write(self, data):
                data = memoryview(data).cast("B")
                fits = room - self.tell()
                if len(data) <= fits:
                    return super().write(data)
                if fits > 0:
                    return super().write(data[:fits])
                disk.sizes_at_failure.append(os.fstat(self.fileno()).st_size)
                raise error()

        real_open = builtins.open

        def fake_open(file, mode="r", buffering=-1, encoding=None, errors=None, newline=None,
                      closefd=True, opener=None):
            if not (isinstance(file, (str, os.PathLike)) and set(mode) & set("wxa+")
                    and os.fspath(file).endswith(".tmp-" + self.name)):
                return real_open(file, mode, buffering, encoding, errors, newline, closefd,
                                 opener)
            raw = File(file, mode.replace("b", "").replace("t", ""))
            buffered = io.BufferedRandom(raw) if "+" in mode else io.BufferedWriter(raw)
            if "b" in mode:
                return buffered
            return io.TextIOWrapper(buffered, encoding=encoding or "utf-8", errors=errors,
                                    newline=newline)

        from nibabel.openers import ImageOpener, Opener
        from numpy.lib import _datasource

        monkeypatch.setattr(builtins, "open", fake_open)
        for opener_class in (Opener, ImageOpener):
            monkeypatch.setitem(opener_class.compress_ext_map, None,
                                (fake_open, ("mode", "buffering")))
        monkeypatch.setitem(_datasource._file_openers._file_openers, None, fake_open)


def label_gifti_files(folder):
    """lh/rh GIfTI label files of 3 clusters over the ``surfaces`` meshes."""
    write_gifti_data(folder / "lh.label.gii", np.arange(30) % 3 + 1)
    write_gifti_data(folder / "rh.label.gii", np.arange(24) % 3 + 1)
    np.save(folder / "red3.npy", np.ones((2, 3), np.float32))


SURFACE = ["--mesh", "lh.pial.gii", "--mesh", "rh.pial.gii", "lh.run1.func.gii",
           "rh.run1.func.gii", "-k", 3]
DISK_FULL_CASES = [
    pytest.param([*PARCELLATE, "-o", "l.nii.gz"], "l.nii.gz", id="nifti-gz-labels"),
    pytest.param([*PARCELLATE, "-o", "l.nii"], "l.nii", id="nifti-labels"),
    pytest.param([*PARCELLATE, "-o", "l.nii.gz", "--reduced", "r.npy"], "r.npy",
                 id="second-output-npy"),
    pytest.param([*PARCELLATE, "-o", "l.nii.gz", "--reduced", "r.csv"], "r.csv",
                 id="second-output-csv"),
    pytest.param([*PARCELLATE, "-o", "l.nii.gz", "--reduced", "r.tsv", "--plot", "p.png"],
                 "p.png", id="third-output-png"),
    pytest.param(["parcellate", *SURFACE, "-o", "lh.l.label.gii", "-o", "rh.l.label.gii"],
                 "rh.l.label.gii", id="second-gifti-labels"),
    pytest.param([*REDUCE, "-o", "r.tsv"], "r.tsv", id="reduce-tsv"),
    pytest.param([*EXPAND, "-o", "e.nii.gz"], "e.nii.gz", id="expand-nifti"),
    pytest.param(["expand", "red3.npy", "--labels", "lh.label.gii", "--labels", "rh.label.gii",
                  "-o", "lh.e.func.gii", "-o", "rh.e.func.gii"], "lh.e.func.gii",
                 id="expand-gifti"),
]


@pytest.mark.parametrize("args, output", DISK_FULL_CASES)
def test_disk_full_in_the_middle_of_a_write(work, surfaces, capsys, monkeypatch, args, output):
    """ENOSPC after part of an output went to its temporary file: the message
    names the output, the temporary file is gone, and so are the outputs
    this run wrote before; every file that was there is untouched."""
    label_gifti_files(work)
    before = folder_state(work)
    disk = FillingDisk(monkeypatch, output)
    code, out, err = call(capsys, *args, "-q")
    assert (code, out) == (1, "")
    assert one_error_line(err, args[0]) == f"cannot write output '{output}' (No space left on " \
                                           "device)"
    assert disk.sizes_at_failure and set(disk.sizes_at_failure) == {ROOM}
    assert folder_state(work) == before


# The header of a .npy file (128 bytes) fits, its data does not.
NPY_ROOM = 200
NPY_DATA_CASES = [
    pytest.param([*PARCELLATE, "-o", "l.nii.gz", "--reduced", "r.npy"], id="parcellate"),
    pytest.param([*PARCELLATE, "--dask", "-o", "l.nii.gz", "--reduced", "r.npy"],
                 id="parcellate-dask"),
    pytest.param([*REDUCE, "-o", "r.npy"], id="reduce"),
    pytest.param([*REDUCE, "--dask", "-o", "r.npy"], id="reduce-dask"),
]


@pytest.mark.parametrize("args", NPY_DATA_CASES)
def test_disk_full_in_the_data_of_an_npy_output(work, capsys, monkeypatch, args):
    """A .npy output whose header was written and whose data does not fit
    (issue 27, point 2): on a real disk the message used to be numpy's
    "N requested and M written" (ndarray.tofile, which wrote past this
    mock: no errno, no file name); it names the output and the cause like
    every other format, and nothing is left."""
    before = folder_state(work)
    disk = FillingDisk(monkeypatch, "r.npy", room=NPY_ROOM)
    code, out, err = call(capsys, *args, "-q")
    assert (code, out) == (1, "")
    assert one_error_line(err, args[0]) == "cannot write output 'r.npy' (No space left on " \
                                           "device)"
    assert set(disk.sizes_at_failure) == {NPY_ROOM}
    assert folder_state(work) == before


def test_npy_outputs_are_written_as_named(tmp_path):
    """An upper-case .NPY name: numpy's np.save appended ".npy" to the
    temporary name, so the output was left empty and a hidden file behind."""
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    fio.save_array(array, tmp_path / "R.NPY")
    assert [p.name for p in tmp_path.iterdir()] == ["R.NPY"]
    np.testing.assert_array_equal(np.load(tmp_path / "R.NPY"), array)


def test_a_failed_run_never_says_it_wrote_what_it_removed(work, capsys, monkeypatch):
    """Without --quiet, the 'wrote' lines are printed once every output is
    written: a run that fails on its last output removed the earlier ones
    and does not claim them."""
    FillingDisk(monkeypatch, "p.png")
    code, out, err = call(capsys, *PARCELLATE, "-o", "l.nii.gz", "--reduced", "r.npy",
                          "--plot", "p.png")
    assert code == 1 and "wrote" not in out
    assert out.startswith("4 clusters of ")  # what was done before the failure
    assert one_error_line(err, "parcellate") == ("cannot write output 'p.png' (No space "
                                                 "left on device)")


def test_a_failed_replacement_keeps_the_existing_file(work, capsys, monkeypatch):
    """With --force the old file is replaced only by a complete new one: the
    disk filling up while its replacement is written leaves it as it was."""
    (work / "old.npy").write_bytes(b"the previous run's array")
    before = folder_state(work)
    disk = FillingDisk(monkeypatch, "old.npy")
    code, out, err = call(capsys, *PARCELLATE, "-o", "l.nii.gz", "--reduced", "old.npy",
                          "--force", "-q")
    assert (code, out) == (1, "")
    assert one_error_line(err, "parcellate") == ("cannot write output 'old.npy' (No space left "
                                                 "on device)")
    assert set(disk.sizes_at_failure) == {ROOM}
    assert folder_state(work) == before


def test_ctrl_c_in_the_middle_of_a_write(work, capsys, monkeypatch):
    """Interrupted while the reduced array is half written, after the label
    image: exit 130, the one 'interrupted' line, and nothing of the run
    left (label image and temporary array both gone)."""
    before = folder_state(work)
    disk = FillingDisk(monkeypatch, "r.npy", error=KeyboardInterrupt)
    code, out, err = call(capsys, *PARCELLATE, "-o", "l.nii.gz", "--reduced", "r.npy",
                          "--plot", "p.png", "-q")
    assert (code, out, err) == (130, "", "fastrena parcellate: interrupted\n")
    assert set(disk.sizes_at_failure) == {ROOM}
    assert folder_state(work) == before


@pytest.mark.parametrize("save, name, room", [
    (lambda path: fio.save_img(nibabel.Nifti1Image(np.ones((4, 4, 4), np.int32), np.eye(4)),
                               path), "labels.nii.gz", ROOM),
    (lambda path: fio.save_array(np.ones((5, 3)), path, columns=["a", "b", "c"]), "x.csv",
     ROOM),
    (lambda path: fio.save_array(np.ones((50, 3)), path), "x.npy", NPY_ROOM),
])
def test_python_writers_name_the_output_when_the_disk_is_full(tmp_path, monkeypatch, save,
                                                             name, room):
    """fastrena.io raises an OSError that keeps errno ENOSPC and names the
    output (not its temporary file), and leaves no file."""
    disk = FillingDisk(monkeypatch, name, room=room)
    with pytest.raises(OSError) as raised:
        save(tmp_path / name)
    assert raised.value.errno == errno.ENOSPC
    assert str(raised.value) == f"cannot write output '{tmp_path / name}' (No space left on " \
                                "device)"
    assert set(disk.sizes_at_failure) == {room}
    assert list(tmp_path.iterdir()) == []


def test_python_writers_keep_the_type_of_the_error(tmp_path, monkeypatch):
    """A refused temporary file is still a PermissionError (errno EACCES),
    whose message names the output."""
    refuse_new_files(monkeypatch, tmp_path, DENIED, names=r"\.tmp-")
    with pytest.raises(PermissionError) as raised:
        fio.save_array(np.zeros(3), tmp_path / "a.npy")
    assert raised.value.errno == errno.EACCES
    assert str(raised.value) == f"cannot write output '{tmp_path / 'a.npy'}' (Permission denied)"
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A real 64 KiB tmpfs at ``tmp_path/disk``, unmounted afterwards; skips
    when this machine does not let us mount one."""
    disk = tmp_path / "disk"
    disk.mkdir()
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)],
                                 capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot run mount: {exc}")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True, timeout=30)


def test_a_real_full_disk(volumes, tiny_tmpfs, capsys):
    """On a real tmpfs with two free pages: the label image fits, the picture
    (more than a page) does not. Exit 1 naming the picture, and the disk is
    left as it was: no label image, no temporary file, the same free space."""
    folder = volumes[0]

    def free_pages():
        return os.statvfs(tiny_tmpfs).f_bavail

    page = os.statvfs(tiny_tmpfs).f_frsize
    (tiny_tmpfs / "filler").write_bytes(b"x" * (free_pages() - 2) * page)
    before, free = folder_state(folder), free_pages()
    assert free == 2
    code, out, err = call(capsys, *PARCELLATE, "-o", "disk/l.nii.gz", "--plot", "disk/p.png",
                          "-q")
    assert (code, out) == (1, "")
    assert one_error_line(err, "parcellate") == ("cannot write output 'disk/p.png' (No space "
                                                 "left on device)")
    assert folder_state(folder) == before
    assert free_pages() == free


def test_a_real_full_disk_in_the_data_of_an_npy_output(volumes, tiny_tmpfs, capsys):
    """On a real tmpfs with one free page: the reduced array's header fits,
    its data (6 scans x 200 clusters, 4.8 kB) does not, and numpy's own
    write failed with "1200 requested and 992 written". The output and the
    cause are named; the disk is left as it was."""
    folder = volumes[0]

    def free_pages():
        return os.statvfs(tiny_tmpfs).f_bavail

    page = os.statvfs(tiny_tmpfs).f_frsize
    (tiny_tmpfs / "filler").write_bytes(b"x" * (free_pages() - 1) * page)
    before, free = folder_state(folder), free_pages()
    assert free == 1
    code, out, err = call(capsys, "parcellate", "run1.nii.gz", "run2.nii", "--mask",
                          "mask.nii.gz", "-k", 200, "-o", "l.nii.gz", "--reduced",
                          "disk/r.npy", "-q")
    assert (code, out) == (1, "")
    assert one_error_line(err, "parcellate") == ("cannot write output 'disk/r.npy' (No space "
                                                 "left on device)")
    assert folder_state(folder) == before
    assert free_pages() == free


# --------------------------------------------------------------------------
# 3. damaged input files
# --------------------------------------------------------------------------
def keep_first_bytes(path, n_bytes):
    path = Path(path)
    path.write_bytes(path.read_bytes()[:n_bytes])


def cut_in_half(path):
    """Keep the first half of a file's bytes (a gzip stream cut in half, an
    XML document cut in the middle...)."""
    keep_first_bytes(path, len(Path(path).read_bytes()) // 2)


def with_data_cut(path, data):
    """Write ``data`` as NIfTI to ``path`` and keep its first half, checking
    that its header still loads: only reading its data can fail."""
    write_nifti(path, data)
    cut_in_half(path)
    assert nibabel.load(path).shape == data.shape
    return path


@pytest.fixture
def damaged(work, surfaces):
    """Damaged copies of every kind of input, next to the good files of
    ``work`` and ``surfaces``."""
    folder = work
    rng = np.random.default_rng(7)
    noise = rng.random((12, 12, 12)).astype(np.float32) + 1  # incompressible: no 0
    (folder / "cut.nii.gz").write_bytes((folder / "run1.nii.gz").read_bytes())
    cut_in_half(folder / "cut.nii.gz")
    assert nibabel.load(folder / "cut.nii.gz").shape == (8, 9, 7, 5)
    (folder / "short.nii").write_bytes((folder / "run2.nii").read_bytes())
    keep_first_bytes(folder / "short.nii", 352 + 100)  # header + 100 of 2016 data bytes
    (folder / "empty.nii.gz").write_bytes(b"")
    (folder / "noise.nii.gz").write_bytes(rng.bytes(3000))
    # Any grid: masks, labels and anatomical images are read before the
    # images are compared with them.
    with_data_cut(folder / "cutmask.nii.gz", noise)
    with_data_cut(folder / "cutlabels.nii.gz", rng.integers(1, 1000, noise.shape, np.int32))
    with_data_cut(folder / "cutbg.nii.gz", noise)
    write_nifti(folder / "shortlabels.nii", rng.integers(1, 5, (8, 9, 7)).astype(np.int16))
    keep_first_bytes(folder / "shortlabels.nii", 352 + 200)
    label_gifti_files(folder)
    for good, bad in [("lh.run1.func.gii", "cut.func.gii"), ("lh.pial.gii", "cut.pial.gii"),
                      ("lh.mask.gii", "cutmask.gii"), ("lh.label.gii", "cut.label.gii")]:
        (folder / bad).write_bytes((folder / good).read_bytes())
        cut_in_half(folder / bad)
    array = (folder / "red.npy").read_bytes()
    assert len(array) == 128 + 96  # header, then 6 x 4 float32
    (folder / "cut.npy").write_bytes(array[:128 + 40])
    (folder / "headless.npy").write_bytes(array[:30])
    (folder / "empty.npy").write_bytes(b"")
    (folder / "cut.csv").write_text("label_1,label_2,label_3,label_4\n1,2,3,4\n5,6,")
    return folder


GZIP_CUT = r"\(Compressed file ended before the end-of-stream marker was reached\)"
NOT_AN_IMAGE = r"is not a NIfTI or GIfTI image \(.+\)"
MESHES = ["--mesh", "lh.pial.gii", "--mesh", "rh.pial.gii", "-k", 3, "-o", "a.gii", "-o", "b.gii"]
DAMAGED_CASES = [
    (["parcellate", "cut.nii.gz", "--mask", "mask.nii.gz"], rf"image 'cut\.nii\.gz': its data "
     rf"cannot be read {GZIP_CUT}"),
    (["parcellate", "run1.nii.gz", "cut.nii.gz"],  # the mask computed from the images
     rf"image 'cut\.nii\.gz': its data cannot be read {GZIP_CUT}"),
    (["parcellate", "short.nii", "--mask", "mask.nii.gz"],
     r"image 'short\.nii': its data cannot be read \(Expected 2016 bytes, got 100 bytes.*\)"),
    (["parcellate", "empty.nii.gz", "--mask", "mask.nii.gz"],
     rf"image: 'empty\.nii\.gz' {NOT_AN_IMAGE}"),
    (["parcellate", "noise.nii.gz", "--mask", "mask.nii.gz"],
     rf"image: 'noise\.nii\.gz' {NOT_AN_IMAGE}"),
    (["parcellate", "run1.nii.gz", "--mask", "cutmask.nii.gz"],
     rf"mask 'cutmask\.nii\.gz': its data cannot be read {GZIP_CUT}"),
    (["parcellate", "run1.nii.gz", "--mask", "empty.nii.gz"],
     rf"mask: 'empty\.nii\.gz' {NOT_AN_IMAGE}"),
    (["parcellate", "run1.nii.gz", "--mask", "mask.nii.gz", "--plot", "p.png", "--bg-img",
      "cutbg.nii.gz"], rf"--bg-img 'cutbg\.nii\.gz': its data cannot be read {GZIP_CUT}"),
    (["parcellate", "run1.nii.gz", "--mask", "mask.nii.gz", "--plot", "p.png", "--bg-img",
      "run1.nii.gz"], r"--bg-img 'run1\.nii\.gz' must be a 3-D image, got shape \(8, 9, 7, 5\)"),
    (["parcellate", "cut.func.gii", "rh.run1.func.gii", *MESHES],
     rf"image: 'cut\.func\.gii' {NOT_AN_IMAGE}"),
    (["parcellate", "lh.run1.func.gii", "rh.run1.func.gii", *MESHES[:1], "cut.pial.gii",
      *MESHES[2:]], rf"mesh: 'cut\.pial\.gii' {NOT_AN_IMAGE}"),
    (["parcellate", "lh.run1.func.gii", "rh.run1.func.gii", *MESHES, "--mask", "cutmask.gii",
      "--mask", "rh.mask.gii"], rf"mask: 'cutmask\.gii' {NOT_AN_IMAGE}"),
    (["reduce", "cut.nii.gz", "--labels", "labels.nii.gz"],
     rf"image 'cut\.nii\.gz': its data cannot be read {GZIP_CUT}"),
    (["reduce", "run1.nii.gz", "--labels", "cutlabels.nii.gz"],
     rf"labels 'cutlabels\.nii\.gz': its data cannot be read {GZIP_CUT}"),
    (["reduce", "run1.nii.gz", "--labels", "shortlabels.nii"],
     r"labels 'shortlabels\.nii': its data cannot be read \(Expected 1008 bytes, got 200 "
     r"bytes.*\)"),
    (["reduce", "lh.run1.func.gii", "rh.run1.func.gii", "--labels", "cut.label.gii", "--labels",
      "rh.label.gii"], rf"labels: 'cut\.label\.gii' {NOT_AN_IMAGE}"),
    (["expand", "cut.npy", "--labels", "labels.nii.gz"],
     r"array 'cut\.npy' cannot be read as \.npy \(Failed to read all data for array\..*\)"),
    (["expand", "headless.npy", "--labels", "labels.nii.gz"],
     r"array 'headless\.npy' cannot be read as \.npy \(.+\)"),
    (["expand", "empty.npy", "--labels", "labels.nii.gz"],
     r"array 'empty\.npy' cannot be read as \.npy \(.+\)"),
    (["expand", "cut.csv", "--labels", "labels.nii.gz"],
     r"array 'cut\.csv' cannot be read as \.csv \(.+\)"),
    (["expand", "red.npy", "--labels", "cutlabels.nii.gz"],
     rf"labels 'cutlabels\.nii\.gz': its data cannot be read {GZIP_CUT}"),
]


@pytest.mark.parametrize("args, message", DAMAGED_CASES,
                         ids=[f"{a[0]}-{i}" for i, (a, _) in enumerate(DAMAGED_CASES)])
def test_damaged_inputs_through_the_command_line(damaged, capsys, monkeypatch, args, message):
    """One line naming the damaged file and what is wrong with it, exit 1,
    no output, and (for parcellate) no fit: every input is read before it."""
    outputs = {"parcellate": ["-k", 3, "-o", "l.nii.gz"], "reduce": ["-o", "r.npy"],
               "expand": ["-o", "e.nii.gz"]}[args[0]]
    if "-o" in args:
        outputs = []
    monkeypatch.setattr(parcellations, "fit_layout",
                        lambda *a, **k: pytest.fail("the fit started"))
    before = folder_state(damaged)
    code, out, err = call(capsys, *args, *outputs)
    assert (code, out) == (1, "")
    assert re.fullmatch(message, one_error_line(err, args[0])), err
    assert folder_state(damaged) == before


def in_memory_fit(folder):
    return fio.fit_images(folder / "run1.nii.gz", folder / "mask.nii.gz", 3)


PYTHON_CASES = [
    (lambda f: fio.images_to_array(f / "cut.nii.gz", f / "mask.nii.gz"), "cut.nii.gz",
     rf"image '{{}}': its data cannot be read {GZIP_CUT}"),
    (lambda f: fio.fit_images(f / "short.nii", f / "mask.nii.gz", 3), "short.nii",
     r"image '{}': its data cannot be read \(Expected 2016 bytes, got 100 bytes.*\)"),
    (lambda f: fio.compute_mask([f / "run1.nii.gz", f / "cut.nii.gz"]), "cut.nii.gz",
     rf"image '{{}}': its data cannot be read {GZIP_CUT}"),
    (lambda f: fio.fit_images(f / "run1.nii.gz", f / "cutmask.nii.gz", 3), "cutmask.nii.gz",
     rf"mask_img '{{}}': its data cannot be read {GZIP_CUT}"),
    (lambda f: fio.transform_images(in_memory_fit(f), f / "cut.nii.gz"), "cut.nii.gz",
     rf"image '{{}}': its data cannot be read {GZIP_CUT}"),
    (lambda f: fio.load_parcellation(f / "cutlabels.nii.gz"), "cutlabels.nii.gz",
     rf"labels '{{}}': its data cannot be read {GZIP_CUT}"),
    (lambda f: fio.load_image(f / "noise.nii.gz"), "noise.nii.gz",
     rf"image: '{{}}' {NOT_AN_IMAGE}"),
    (lambda f: fio.load_image(f / "empty.nii.gz"), "empty.nii.gz",
     rf"image: '{{}}' {NOT_AN_IMAGE}"),
    (lambda f: fio.load_mesh(f / "cut.pial.gii"), "cut.pial.gii",
     rf"mesh: '{{}}' {NOT_AN_IMAGE}"),
    (lambda f: fio.surface_layout([f / "lh.pial.gii"], [f / "cutmask.gii"]), "cutmask.gii",
     rf"mask: '{{}}' {NOT_AN_IMAGE}"),
    (lambda f: fio.load_array(f / "cut.npy"), "cut.npy",
     r"array '{}' cannot be read as \.npy \(.+\)"),
    (lambda f: fio.load_array(f / "cut.csv"), "cut.csv",
     r"array '{}' cannot be read as \.csv \(.+\)"),
    (lambda f: fio.load_3d_volume(f / "cutbg.nii.gz", "bg_img"), "cutbg.nii.gz",
     rf"bg_img '{{}}': its data cannot be read {GZIP_CUT}"),
    (lambda f: fio.load_3d_volume(f / "run1.nii.gz"), "run1.nii.gz",
     r"image '{}' must be a 3-D image, got shape \(8, 9, 7, 5\)"),
]


@pytest.mark.parametrize("load, name, message", PYTHON_CASES,
                         ids=[f"{i}-{name}" for i, (_, name, _) in enumerate(PYTHON_CASES)])
def test_damaged_inputs_through_the_python_helpers(damaged, load, name, message):
    """fastrena.io raises InputError (a ValueError) whose message names the
    file as given, never a bare EOFError or a nibabel error without a name."""
    with pytest.raises(InputError) as raised:
        load(damaged)
    assert re.fullmatch(message.format(re.escape(str(damaged / name))), str(raised.value)), \
        str(raised.value)


# --------------------------------------------------------------------------
# 4. Ctrl-C in a terminal, during the work
# --------------------------------------------------------------------------
# The number of the write system call, to recognise a program blocked in
# write() in /proc/PID/syscall.
WRITE_SYSCALL = {"x86_64": 1, "aarch64": 64, "riscv64": 64, "ppc64le": 4, "s390x": 4}


class Terminal:
    """The console script run as in an interactive terminal: stdout and
    stderr on two pseudo-terminals (so its progress bars are on), their
    output collected as it comes.

    Output to a terminal can be suspended, as Ctrl-S does: the program then
    blocks at its next write to it. That pins it at a known point of its
    work, however fast or slow this machine is, before Ctrl-C (SIGINT).
    """

    def __init__(self, args, cwd, stop_stdout=False):
        self.masters, self.slaves, self.text = {}, {}, {}
        for stream in ("stdout", "stderr"):
            self.masters[stream], self.slaves[stream] = pty.openpty()
            tty.setraw(self.slaves[stream])  # no "\r" added before each "\n"
            # A new terminal is 0 columns wide, which leaves no room for a bar.
            fcntl.ioctl(self.slaves[stream], termios.TIOCSWINSZ,
                        struct.pack("HHHH", 24, 100, 0, 0))
            self.text[stream] = bytearray()
        if stop_stdout:
            termios.tcflow(self.slaves["stdout"], termios.TCOOFF)
        self.process = subprocess.Popen([str(FASTRENA), *map(str, args)], cwd=cwd,
                                        stdin=subprocess.DEVNULL, stdout=self.slaves["stdout"],
                                        stderr=self.slaves["stderr"])
        self.pumps = [threading.Thread(target=self._pump, args=(stream,), daemon=True)
                      for stream in self.masters]
        for thread in self.pumps:
            thread.start()

    def _pump(self, stream):
        while True:
            try:
                chunk = os.read(self.masters[stream], 65536)
            except OSError:  # EIO: every writer closed the terminal
                return
            if not chunk:
                return
            self.text[stream] += chunk

    def wait_until(self, condition, what, timeout=120):
        """Poll ``condition()`` until true; fail if the program ends first."""
        deadline = time.monotonic() + timeout
        while not condition():
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"never {what} (exit code {self.process.poll()}); stderr: "
                            f"{self.text['stderr'].decode(errors='replace')[-2000:]}")
            time.sleep(0.02)

    def blocked_writing(self, stream):
        """The program is blocked in write() to its stdout or stderr."""
        try:
            call = (Path("/proc") / str(self.process.pid) / "syscall").read_text().split()
        except OSError:
            return False
        number = WRITE_SYSCALL.get(platform.machine())
        return len(call) > 1 and call[1] == hex({"stdout": 1, "stderr": 2}[stream]) \
            and (number is None or call[0] == str(number))

    def stop(self, stream):
        termios.tcflow(self.slaves[stream], termios.TCOOFF)

    def interrupt(self, stream):
        """Ctrl-C, then let the output of ``stream`` flow again; wait for the
        end. Returns (exit code, stdout, stderr)."""
        try:
            self.process.send_signal(signal.SIGINT)
            termios.tcflow(self.slaves[stream], termios.TCOON)
            code = self.process.wait(timeout=120)
        finally:
            self.close()
        return code, *(self.text[s].decode(errors="replace") for s in ("stdout", "stderr"))

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for fd in self.slaves.values():  # the pumps then read what is left, then EIO
            os.close(fd)
        for thread in self.pumps:
            thread.join(30)
        for fd in self.masters.values():
            os.close(fd)
        self.slaves = self.masters = {}


@pytest.fixture
def terminal():
    """Make a :class:`Terminal`; whatever happens, close it at the end."""
    made = []

    def make(*args, **kwargs):
        try:
            Path("/proc/self/syscall").read_text()
        except OSError:
            pytest.skip("needs Linux's /proc/PID/syscall to see where the program waits")
        made.append(Terminal(*args, **kwargs))
        return made[-1]

    yield make
    for term in made:
        if term.masters:
            term.close()


@pytest.fixture
def large_run(tmp_path):
    """A 4-D image of 60 volumes of 40 x 48 x 40 voxels (18 MB; the fit takes
    a second or so), its mask, and a label image of 5 clusters."""
    mask = box_mask((40, 48, 40))
    write_nifti(tmp_path / "mask.nii.gz", mask.astype(np.uint8))
    write_nifti(tmp_path / "big.nii", masked_volumes(mask, 60))
    labels = np.zeros(mask.shape, np.int16)
    labels[mask] = np.arange(mask.sum()) % 5 + 1
    write_nifti(tmp_path / "labels.nii.gz", labels)
    return tmp_path


def assert_interrupted(err, command):
    """One 'interrupted' line, alone on its line of the terminal (the
    progress bar cleared before it), and no traceback. On a cold numba
    cache the line saying that numba compiles may come first (a fresh
    process with progress bars or -v): it is left out."""
    err = re.sub(r"[^\n]*\[fastrena\] compiling numba kernels[^\n]*\n", "", err, count=1)
    assert "Traceback" not in err
    assert err.endswith(f"\rfastrena {command}: interrupted\n"), err[-300:]
    assert err.count("\n") == 1, err


@pytest.mark.parametrize("dask", [[], ["--dask"]], ids=["in-memory", "dask"])
def test_ctrl_c_during_the_fit(large_run, terminal, dask):
    """SIGINT in the middle of the fit: with -v the fit prints a line per
    level on stdout, which is suspended, so the program waits inside the
    fit after its first level. Exit 130, and no label image, reduced array
    or temporary file, in memory or through Dask."""
    before = folder_state(large_run)
    term = terminal(["parcellate", "big.nii", "--mask", "mask.nii.gz", "-k", 5, "--linkage",
                     "ward", "--n-iter", 30, "-v", "-o", "labels_out.nii.gz", "--reduced",
                     "r.npy", *dask], cwd=large_run, stop_stdout=True)
    # Blocked at the first level's line, with the fit's progress bar up.
    term.wait_until(lambda: term.blocked_writing("stdout")
                    and b"\rfit: " in term.text["stderr"], "blocked inside the fit")
    code, out, err = term.interrupt("stdout")
    assert code == 130
    assert_interrupted(err, "parcellate")
    assert "clusters of" not in out  # the summary line after the fit
    assert folder_state(large_run) == before


def test_ctrl_c_during_reduce(large_run, terminal):
    """SIGINT in the middle of reading 30 x 60 scans: once the progress bar
    shows some done, stderr is suspended and the program waits at its next
    update. Exit 130 and no output or temporary file."""
    before = folder_state(large_run)
    term = terminal(["reduce", *["big.nii"] * 30, "--labels", "labels.nii.gz", "-o", "r.csv"],
                    cwd=large_run)
    progress = re.compile(rb"transforming: +\d+%\|[^|]*\| *[1-9]\d*/1800")
    term.wait_until(lambda: progress.search(term.text["stderr"]), "showed progress")
    term.stop("stderr")
    term.wait_until(lambda: term.blocked_writing("stderr"), "blocked updating its bar")
    code, out, err = term.interrupt("stderr")
    assert code == 130
    assert_interrupted(err, "reduce")
    assert out == ""
    assert folder_state(large_run) == before


# A Python module run at the console script's start (sitecustomize): an
# object kept in sys.modules, so freed by Python's teardown once SIGINT's
# handler is back to the default action (after the atexit functions),
# writes the file named by $TEARDOWN_MARKER and waits until the test
# removes it: the program is pinned inside its teardown.
TEARDOWN_PIN = """
import os, sys, time

class _Pin:
    def __init__(self, marker):
        self.marker, self.os, self.time = marker, os, time

    def __del__(self):
        with open(self.marker, "w"):
            pass
        deadline = self.time.monotonic() + 120
        while self.os.path.exists(self.marker) and self.time.monotonic() < deadline:
            self.time.sleep(0.01)

sys.modules["_teardown_pin"] = _Pin(os.environ["TEARDOWN_MARKER"])
"""


@pytest.mark.parametrize("command, outputs", [
    (["parcellate", "big.nii", "--mask", "mask.nii.gz", "-k", 5, "-o", "l.nii.gz",
      "--reduced", "r.csv", "--plot", "p.png"], ["l.nii.gz", "l.tsv", "r.csv", "p.png"]),
    (["reduce", "big.nii", "--labels", "labels.nii.gz", "-o", "r.npy"], ["r.npy"]),
], ids=["parcellate", "reduce"])
def test_ctrl_c_after_the_last_output_keeps_the_outputs(large_run, tmp_path_factory, command,
                                                        outputs):
    """SIGINT while the console script tears Python down after its last
    "wrote" line (0.2-1 s of garbage collection with numba, scipy,
    scikit-learn and matplotlib loaded): the run succeeded, so exit 0,
    every line, every output complete. It used to die of the signal
    (status 130, no message, the outputs left)."""
    pin = tmp_path_factory.mktemp("pin")
    (pin / "sitecustomize.py").write_text(TEARDOWN_PIN)
    marker = pin / "in_teardown"
    env = {**os.environ, "TEARDOWN_MARKER": str(marker),
           "PYTHONPATH": os.pathsep.join([str(pin), *filter(None, [os.environ.get(
               "PYTHONPATH")])])}
    process = subprocess.Popen([str(FASTRENA), *map(str, command)], cwd=large_run, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "never reached its teardown"
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        time.sleep(0.2)  # a killed process would be gone by now
        marker.unlink()
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert (process.returncode, err) == (0, b"")
    assert [line.split(" ")[1].rstrip(":") for line in out.decode().splitlines()
            if line.startswith("wrote ")] == outputs
    for name in outputs:
        assert (large_run / name).stat().st_size > 0
    if command[0] == "reduce":
        assert np.load(large_run / "r.npy").shape == (60, 5)


def test_ctrl_c_while_the_written_files_are_reported(work, capsys, monkeypatch):
    """From Python, SIGINT while main prints the "wrote" lines (the outputs
    are committed): exit 0, every line, every output, no KeyboardInterrupt;
    SIGINT's handler is Python's again afterwards."""
    from fastrena.cli.common import Session

    report = Session.report

    def interrupted_report(self):
        os.kill(os.getpid(), signal.SIGINT)
        report(self)

    monkeypatch.setattr(Session, "report", interrupted_report)
    code, out, err = call(capsys, *PARCELLATE, "-o", "l.nii.gz", "--reduced", "r.npy")
    assert (code, err) == (0, "")
    assert [line.split(" ")[1] for line in out.splitlines()[1:]] == ["l.nii.gz", "l.tsv",
                                                                    "r.npy"]
    assert np.load(work / "r.npy").shape == (6, 4)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_while_a_failed_run_removes_its_outputs(work, capsys, monkeypatch):
    """A second Ctrl-C while a failed run removes what it wrote does not
    stop the removal, nor turn the error into a traceback."""
    from fastrena.cli.common import Session

    before = folder_state(work)
    remove = Session.remove_new_files

    def interrupted_removal(self):
        os.kill(os.getpid(), signal.SIGINT)
        return remove(self)

    monkeypatch.setattr(Session, "remove_new_files", interrupted_removal)
    FillingDisk(monkeypatch, "r.npy")
    code, out, err = call(capsys, *PARCELLATE, "-o", "l.nii.gz", "--reduced", "r.npy", "-q")
    assert (code, out) == (1, "")
    assert one_error_line(err, "parcellate") == ("cannot write output 'r.npy' (No space left "
                                                 "on device)")
    assert folder_state(work) == before
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# --------------------------------------------------------------------------
# 5. every estimator parameter's bad values, through the command line
# --------------------------------------------------------------------------
@pytest.mark.parametrize("options, message", [
    (["-k", "1.5"], "argument -k/--n-clusters: must be an integer >= 1, got '1.5'"),
    (["-k", "abc"], "argument -k/--n-clusters: must be an integer >= 1, got 'abc'"),
    (["-k", "-3"], "argument -k/--n-clusters: must be an integer >= 1, got '-3'"),
    (["-k", "4", "--n-iter", "0"], "argument --n-iter: must be an integer >= 1, got '0'"),
    (["-k", "4", "--n-iter", "2.5"], "argument --n-iter: must be an integer >= 1, got '2.5'"),
    (["-k", "4", "--threshold", "-0.1"],
     "argument --threshold: must be a number in [0, 1), got '-0.1'"),
    (["-k", "4", "--threshold", "nan"],
     "argument --threshold: must be a number in [0, 1), got 'nan'"),
    (["-k", "4", "--threshold", "abc"],
     "argument --threshold: must be a number in [0, 1), got 'abc'"),
    (["-k", "4", "--memory-level", "-1"],
     "argument --memory-level: must be an integer >= 0, got '-1'"),
    (["-k", "4", "--linkage", "foo"],
     "argument --linkage: invalid choice: 'foo' (choose from 'nilearn', 'ward')"),
])
def test_bad_parameter_values_exit_2_naming_the_option(volumes, capsys, options, message):
    before = folder_state(volumes[0])
    code, out, err = call(capsys, "parcellate", "run1.nii.gz", "--mask", "mask.nii.gz",
                          *options, "-o", "l.nii.gz")
    assert (code, out) == (2, "")
    assert err.startswith("usage: fastrena parcellate ")
    assert err.endswith(f"fastrena parcellate: error: {message}\n")
    assert folder_state(volumes[0]) == before


def test_bad_graphs_exit_1_giving_the_shapes(volumes, capsys):
    """The graph errors (docs/design.md, "Errors") reach the command line's one-line message:
    a connectivity that is not square or not N x N, an empty mask, a mask
    with two volumes."""
    from scipy import sparse

    folder, mask, _ = volumes
    n = int(mask.sum())
    sparse.save_npz(folder / "rect.npz", sparse.csr_matrix(np.ones((3, 4))))
    sparse.save_npz(folder / "small.npz", sparse.csr_matrix(np.ones((5, 5))))
    write_nifti(folder / "empty.nii.gz", np.zeros(mask.shape, np.uint8))
    write_nifti(folder / "two.nii.gz", np.stack([mask, mask], axis=-1).astype(np.uint8))
    before = folder_state(folder)
    for options, message in [
        # In voxels, not in the estimator's words ("X has N features").
        (["--connectivity", "rect.npz"], f"--connectivity 'rect.npz' has shape (3, 4) but "
                                         f"there are {n} voxels to cluster; it must be "
                                         f"({n}, {n})"),
        (["--connectivity", "small.npz"], f"--connectivity 'small.npz' has shape (5, 5) but "
                                          f"there are {n} voxels to cluster; it must be "
                                          f"({n}, {n})"),
        (["--mask", "empty.nii.gz"], f"mask 'empty.nii.gz' has no in-mask voxel (shape "
                                     f"{mask.shape}, all zero)"),
        (["--mask", "two.nii.gz"], f"mask 'two.nii.gz' must be a 3-D image, got shape "
                                   f"{(*mask.shape, 2)}"),
    ]:
        mask_option = [] if "--mask" in options else ["--mask", "mask.nii.gz"]
        code, out, err = call(capsys, "parcellate", "run1.nii.gz", *mask_option, *options,
                              "-k", 4, "-o", "l.nii.gz")
        assert (code, out) == (1, "")
        assert one_error_line(err, "parcellate") == message
        assert folder_state(folder) == before
