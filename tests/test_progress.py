"""Progress bars: on when the stream they draw on (stderr) is a terminal,
moving during the first level of a fit, with whole-number rates."""

import fcntl
import io
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import tty
from pathlib import Path

import numpy as np
import pytest
from helpers import box_mask, halving_chain, masked_volumes, write_nifti

from fastrena import ReNA
from fastrena._progress import fit_progress, progress_bar, stderr_is_terminal, whole_rate

FASTRENA = Path(sys.executable).parent / "fastrena"

#: One frame of the fit bar: percentage, count, total, rate, postfix.
FIT_FRAME = re.compile(r"fit: +(\d+)%\|[^|]*\| (\d+)/(\d+) \[[^,\]]*, ([^,\]]+)(?:, (.*))?\]")


class FakeTerminal(io.StringIO):
    """A stream that says it is a terminal and keeps what is written."""

    def isatty(self):
        return True


def frames(text):
    """The frames a bar drew (each starts with a carriage return)."""
    return [frame.strip() for frame in text.split("\r") if frame.strip()]


def test_stderr_is_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stderr", FakeTerminal())
    assert stderr_is_terminal()
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not stderr_is_terminal()
    closed = io.StringIO()
    closed.close()  # isatty() raises ValueError
    monkeypatch.setattr(sys, "stderr", closed)
    assert not stderr_is_terminal()
    monkeypatch.setattr(sys, "stderr", None)  # pythonw
    assert not stderr_is_terminal()


@pytest.mark.parametrize("n, elapsed, rate, expected", [
    (0, 0.0, None, "? merge/s"),
    (10, 2.0, None, "5 merge/s"),                # no smoothed rate yet: the mean
    (10, 2.0, 446756.26, "446756 merge/s"),      # the "446756.26merge/s"
    (10, 2.0, 0.3, "3 s/merge"),                 # slower than one a second
    (10, 2.0, 0.0, "? merge/s"),
])
def test_whole_rate(n, elapsed, rate, expected):
    assert whole_rate(n, 0, elapsed, rate, "merge") == expected


def test_bars_show_whole_rates(monkeypatch):
    stream = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", stream)
    bar = progress_bar(True, 1000, "reading images", "scan")
    for _ in range(4):
        bar.update(250)
        bar.refresh()
    bar.close()
    drawn = frames(stream.getvalue())
    assert drawn[0] == "reading images:   0%|          | 0/1000 [00:00<?, ? scan/s]"
    assert re.fullmatch(r"reading images: 100%\|#*\| 1000/1000 \[00:00<00:00, \d+ scan/s\]",
                        drawn[-1].replace("█", "#"))
    unknown = progress_bar(True, None, "computing", "scan")
    unknown.update(3)
    unknown.refresh()
    unknown.close()
    assert re.fullmatch(r"computing: 3 scan \[00:00, \d+ scan/s\]",
                        frames(stream.getvalue())[-1])


def test_fit_bar_moves_during_the_first_level(monkeypatch):
    # 4096 features on a chain, each level merging exactly pairs: level L
    # leaves 4096 / 2**L clusters, 10 levels down to K = 4.
    stream = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", stream)
    X = halving_chain(12)
    n, k = X.shape[1], 4
    with fit_progress(True, n, k):
        rena = ReNA(n_clusters=k).fit(X)
    assert rena.n_clusters_ == k
    drawn = [FIT_FRAME.fullmatch(frame) for frame in frames(stream.getvalue())]
    assert all(drawn), frames(stream.getvalue())
    shown = [(int(m[2]), m[5]) for m in drawn]
    assert {int(m[3]) for m in drawn} == {n - k}
    # Level 1 is announced at 0, moves by its 2048 merges once they are
    # decided, before the graph and the signals are reduced, then level 2
    # starts from there.
    assert shown[0] == (0, None)
    assert shown.index((0, "level 1: edge weights")) < shown.index((0, "level 1: merging")) \
        < shown.index((2048, "level 1: reducing the graph")) \
        < shown.index((2048, "level 1: reducing the signals")) \
        < shown.index((2048, "level 1, 2048 clusters")) \
        < shown.index((2048, "level 2: edge weights"))
    assert shown[-1] == (n - k, "level 10, 4 clusters")
    # Counts never go back, and the bar is redrawn a few times per level.
    assert [count for count, _ in shown] == sorted(count for count, _ in shown)
    assert len(shown) <= 6 * 10 + 2
    for match in drawn:
        assert re.fullmatch(r"(\?|\d+) merge/s|\d+ s/merge", match[4]), match[4]


@pytest.mark.parametrize("linkage", ["nilearn", "ward"])
def test_fit_bar_never_counts_past_its_total(monkeypatch, linkage):
    # Two fits under one bar (or a fit that merges below n_clusters and
    # cuts back): the bar stops full, at its total.
    stream = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", stream)
    X = halving_chain(8)
    n, k = X.shape[1], 4
    with fit_progress(True, n, k):
        for _ in range(2):
            ReNA(n_clusters=k, linkage=linkage).fit(X)
    counts = [int(m[2]) for m in map(FIT_FRAME.fullmatch, frames(stream.getvalue()))]
    assert counts[-1] == n - k and max(counts) == n - k


def test_fit_bar_off_draws_nothing(monkeypatch):
    stream = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", stream)
    with fit_progress(False, 4096, 4):
        ReNA(n_clusters=4).fit(halving_chain(12))
    assert stream.getvalue() == ""


@pytest.fixture
def run_files(tmp_path):
    mask = box_mask()
    write_nifti(tmp_path / "mask.nii.gz", mask.astype(np.uint8))
    write_nifti(tmp_path / "run1.nii.gz", masked_volumes(mask, 4))
    return tmp_path


def run_with_a_terminal_on(stream, folder, *args):
    """The console script with ``stream`` ("stdout" or "stderr") on a
    pseudo-terminal and the other one on a file: (text on the terminal,
    text in the file)."""
    master, slave = pty.openpty()
    tty.setraw(slave)  # no "\r" added before each "\n"
    # A new terminal is 0 columns wide, which leaves no room for a bar.
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    with open(folder / "file.txt", "w+") as file:
        streams = {"stdout": file, "stderr": file, stream: slave}
        process = subprocess.Popen([str(FASTRENA), *args], cwd=folder,
                                   stdin=subprocess.DEVNULL, **streams)
        os.close(slave)
        seen = bytearray()
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # every writer closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        assert process.wait(timeout=120) == 0
        os.close(master)
        file.seek(0)
        return seen.decode(errors="replace"), file.read()


PARCELLATE = ["parcellate", "run1.nii.gz", "--mask", "mask.nii.gz", "-k", "5"]


def test_cli_bars_follow_stderr_not_stdout(run_files):
    # 2>err.txt on a terminal: no bar frames in the file.
    terminal, file = run_with_a_terminal_on("stdout", run_files, *PARCELLATE, "-o", "a.nii.gz")
    assert terminal.startswith("5 clusters of 210 voxels from 4 scans")
    assert file == ""
    # >out.txt on a terminal: the bars still show on the terminal.
    terminal, file = run_with_a_terminal_on("stderr", run_files, *PARCELLATE, "-o", "b.nii.gz")
    assert file.startswith("5 clusters of 210 voxels from 4 scans")
    assert "\rreading images: " in terminal and "\rfit: " in terminal
    assert "205/205" in terminal and re.search(r"\d+ merge/s", terminal)
    assert not re.search(r"\d\.\d+ ?(merge|scan)/s", terminal)
