"""ReNA on Dask arrays (``fastrena._chunked``): the same labels, weights and
outputs as in memory, bit for bit, whatever the chunks and the local
scheduler; data read at most twice; reduced signals spilled to disk and
cleaned up; validation without reading. A real ``dask.distributed``
cluster is in ``test_distributed.py``."""

import errno
import io
import multiprocessing
import os
import re
import shutil
import signal
import threading
import time
import warnings
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.ndimage import gaussian_filter

from fastrena import ReNA, recursive_neighbor_agglomeration
from fastrena._chunked import (aligned_rows, chunk_cover, cover_total,
                               merge_covers, sample_aligned)
from fastrena import _chunked
from fastrena._kernels import SAMPLE_BLOCK
from fastrena.agglomeration import edge_weights
from fastrena.graphs import lattice_graph


def smooth_problem(n_samples=150, shape=(14, 13, 12), dtype=np.float32, seed=0):
    """A ball-ish 3-D mask and smooth signals on it (many levels, no ties)."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape).astype(float)
    centre = (np.array(shape, dtype=float) - 1) / 2
    mask = (((grid - centre[:, None, None, None]) / centre[:, None, None, None]) ** 2
            ).sum(0) <= 1.1
    X = np.stack([gaussian_filter(rng.standard_normal(shape), 1.5)[mask]
                  for _ in range(n_samples)]).astype(dtype)
    return mask, X


@pytest.fixture(scope="module")
def problem():
    mask, X = smooth_problem()
    ref = ReNA(mask, n_clusters=40).fit(X)
    return mask, X, ref


def split_rows(n, cuts):
    """Chunk sizes along samples from sorted cut points."""
    edges = [0, *sorted(set(c for c in cuts if 0 < c < n)), n]
    return tuple(b - a for a, b in zip(edges, edges[1:]))


# --------------------------------------------------------------------------
# the weight pass: the kernel's tree sum, rebuilt from chunks
# --------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(n_samples=st.integers(1, 700), n_nodes=st.integers(2, 25),
       n_edges=st.integers(1, 60), float32=st.booleans(), fortran=st.booleans(),
       cuts=st.lists(st.integers(1, 11), max_size=6), seed=st.integers(0, 2**16))
def test_chunked_weights_are_the_kernel_bits(n_samples, n_nodes, n_edges, float32, fortran,
                                             cuts, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_nodes)) * rng.uniform(1e-3, 1e3, n_nodes)
    X = X.astype(np.float32 if float32 else np.float64)
    if fortran:
        X = np.asfortranarray(X)
    u = rng.integers(0, n_nodes, n_edges)
    v = rng.integers(0, n_nodes, n_edges)
    chunks = split_rows(n_samples, [c * SAMPLE_BLOCK for c in cuts])
    Xd = da.from_array(X, chunks=(chunks, n_nodes))
    with dask.config.set(scheduler="synchronous"):
        chunked = _chunked.edge_weights(Xd, u, v)
    assert chunked.dtype == np.float64
    np.testing.assert_array_equal(chunked, edge_weights(X, u, v))


@settings(max_examples=60, deadline=None)
@given(n_blocks=st.integers(1, 40), data=st.data())
def test_covers_merge_to_the_tree_sum_in_any_grouping(n_blocks, data):
    """Chunk covers merged along any tree of consecutive groups (what a Dask
    tree reduction does) give the in-memory tree sum."""
    rng = np.random.default_rng(n_blocks)
    n_samples = SAMPLE_BLOCK * n_blocks - data.draw(st.integers(0, SAMPLE_BLOCK - 1))
    X = rng.standard_normal((n_samples, 6))
    u, v = np.array([0, 1, 2, 0, 4]), np.array([1, 2, 3, 5, 5])
    cuts = data.draw(st.lists(st.integers(1, n_blocks), max_size=8))
    bounds = [0, *sorted(set(c * SAMPLE_BLOCK for c in cuts if c < n_blocks)), n_samples]
    covers = [chunk_cover(X[a:b], a, u, v) for a, b in zip(bounds, bounds[1:])]
    while len(covers) > 1:
        group = data.draw(st.integers(2, 4))
        covers = [merge_covers(*covers[i:i + group]) for i in range(0, len(covers), group)]
    cover = merge_covers(*covers)
    sizes = [n for _, n, _ in cover]
    assert sizes == sorted(sizes, reverse=True)  # the binary form of n_blocks
    assert sum(sizes) == n_blocks
    np.testing.assert_array_equal(cover_total(cover), edge_weights(X, u, v))


def test_chunk_cover_splits_into_aligned_power_of_two_runs():
    X = np.zeros((7 * SAMPLE_BLOCK - 5, 2))
    u, v = np.array([0]), np.array([1])
    assert [(s, n) for s, n, _ in chunk_cover(X, 0, u, v)] == [(0, 4), (4, 2), (6, 1)]
    X = np.zeros((6 * SAMPLE_BLOCK, 2))
    assert [(s, n) for s, n, _ in chunk_cover(X, 3 * SAMPLE_BLOCK, u, v)] == [
        (3, 1), (4, 4), (8, 1)]


def test_chunk_cover_refuses_a_misaligned_chunk():
    with pytest.raises(ValueError, match="starts at sample 10, not a multiple of 64"):
        chunk_cover(np.zeros((64, 2)), 10, np.array([0]), np.array([1]))


def test_cover_total_refuses_a_cover_that_misses_the_first_samples():
    X = np.zeros((128, 2))
    cover = chunk_cover(X, 64, np.array([0]), np.array([1]))
    with pytest.raises(ValueError, match="do not cover the samples from the first one"):
        cover_total(cover)


# --------------------------------------------------------------------------
# fit: the in-memory labels, whatever the chunks and the scheduler
# --------------------------------------------------------------------------
CHUNKINGS = {
    "aligned": (64, -1),
    "one chunk": (-1, -1),
    "unaligned, rechunked": (50, -1),
    "features split": (128, 300),
    "uneven": ((64, 23, 63), -1),
}


@pytest.mark.parametrize("chunks", CHUNKINGS.values(), ids=CHUNKINGS.keys())
@pytest.mark.parametrize("scheduler", ["threads", "synchronous"])
def test_fit_gives_the_in_memory_labels(problem, chunks, scheduler):
    mask, X, ref = problem
    with dask.config.set(scheduler=scheduler):
        rena = ReNA(mask, n_clusters=40).fit(da.from_array(X, chunks=chunks))
    np.testing.assert_array_equal(rena.labels_, ref.labels_)
    assert rena.n_clusters_ == ref.n_clusters_ == 40
    np.testing.assert_array_equal(rena.sizes_, ref.sizes_)
    assert rena.n_features_in_ == X.shape[1]


def test_fit_on_the_processes_scheduler(problem):
    mask, X, ref = problem
    with dask.config.set(scheduler="processes", num_workers=2):
        rena = ReNA(mask, n_clusters=40).fit(da.from_array(X, chunks=(64, -1)))
    np.testing.assert_array_equal(rena.labels_, ref.labels_)
    assert multiprocessing.active_children() == []  # the fit's pool is shut down


@pytest.mark.parametrize("limit", ["2GiB", 0])
@pytest.mark.parametrize("linkage", ["nilearn", "ward"])
def test_processes_scheduler_gives_the_threads_and_in_memory_labels(problem, tmp_path,
                                                                   linkage, limit):
    """Issue 27 item 3: one pool of workers per fit, each chunk's pass one
    task; levels held in memory or spilled to files. The labels of threads,
    processes and memory are one, and nothing is left: no worker process, no
    file."""
    mask, X, ref = problem
    if linkage == "ward":
        ref = ReNA(mask, n_clusters=40, linkage="ward").fit(X)
    X_lazy = da.from_array(X, chunks=(64, -1))
    labels = {}
    for scheduler in ("threads", "processes"):
        config = {"scheduler": scheduler, "num_workers": 2, "fastrena.in-memory-limit": limit,
                  "temporary-directory": str(tmp_path)}
        with dask.config.set(config):
            labels[scheduler] = ReNA(mask, n_clusters=40, linkage=linkage).fit(X_lazy).labels_
        assert multiprocessing.active_children() == []
        assert list(tmp_path.iterdir()) == []
    np.testing.assert_array_equal(labels["processes"], ref.labels_)
    np.testing.assert_array_equal(labels["threads"], ref.labels_)


def test_use_scheduler_processes_keeps_one_pool_for_its_block(problem):
    from fastrena.dask import use_scheduler

    mask, X, ref = problem
    X_lazy = da.from_array(X, chunks=(64, -1))
    with dask.config.set(num_workers=2), use_scheduler("processes"):
        pool = dask.config.get("pool")
        rena = ReNA(mask, n_clusters=40).fit(X_lazy)
        workers = {p.pid for p in multiprocessing.active_children()}
        X_red = rena.transform(X_lazy).compute()
        assert dask.config.get("pool") is pool
        assert {p.pid for p in multiprocessing.active_children()} == workers != set()
    assert dask.config.get("pool", None) is None
    assert multiprocessing.active_children() == []
    np.testing.assert_array_equal(rena.labels_, ref.labels_)
    np.testing.assert_array_equal(X_red, ref.transform(X))


def test_a_failed_fit_on_processes_leaves_no_worker_and_no_file(tmp_path):
    mask, X = smooth_problem(n_samples=200, shape=(8, 8, 8), dtype=np.float64)
    X[150, 5] = np.nan
    config = {"scheduler": "processes", "num_workers": 2, "fastrena.in-memory-limit": 0,
              "temporary-directory": str(tmp_path)}
    with dask.config.set(config), pytest.raises(ValueError, match="Input X contains NaN"):
        ReNA(mask, n_clusters=4).fit(da.from_array(X, chunks=(64, -1)))
    assert multiprocessing.active_children() == []
    assert list(tmp_path.iterdir()) == []


CTRL_C_ON_PROCESSES = """
import json, multiprocessing, os, sys, threading, time
import dask, dask.array as da, numpy as np
from fastrena import ReNA

if __name__ == "__main__":
    rng = np.random.default_rng(0)
    X = rng.standard_normal((640, 20000)).astype(np.float32)
    workers = set()

    def announce():
        while not multiprocessing.active_children():
            time.sleep(0.01)
        workers.update(p.pid for p in multiprocessing.active_children())
        print("workers", flush=True)

    threading.Thread(target=announce, daemon=True).start()
    config = {"scheduler": "processes", "num_workers": 2, "fastrena.in-memory-limit": 0,
              "temporary-directory": sys.argv[1]}
    try:
        with dask.config.set(config):
            for _ in range(100):  # until interrupted
                ReNA(n_clusters=10).fit(da.from_array(X, chunks=(64, -1)))
    except KeyboardInterrupt:
        print(json.dumps({"workers": sorted(workers),
                          "left": [p.pid for p in multiprocessing.active_children()],
                          "files": os.listdir(sys.argv[1])}), flush=True)
"""


def test_ctrl_c_on_processes_leaves_no_worker_and_no_file(tmp_path):
    """SIGINT to the whole process group, as a terminal's Ctrl-C: the
    workers ignore it (no traceback of theirs), the fit stops with
    KeyboardInterrupt, its pool shut down and its files removed."""
    import json
    import subprocess
    import sys

    script = tmp_path / "fit.py"
    script.write_text(CTRL_C_ON_PROCESSES)
    spill = tmp_path / "spill"
    spill.mkdir()
    proc = subprocess.Popen([sys.executable, str(script), str(spill)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        assert proc.stdout.readline() == "workers\n"
        time.sleep(1.0)  # well into a fit's passes
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    report = json.loads(out.strip().splitlines()[-1])
    assert report["workers"] and report["left"] == [] and report["files"] == []
    assert "Traceback" not in err, err
    for pid in report["workers"]:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert list(spill.iterdir()) == []


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int16, np.bool_])
@pytest.mark.parametrize("n_samples", [1, 64, 200])
def test_dtypes_and_sample_counts(dtype, n_samples):
    mask, X = smooth_problem(n_samples=n_samples, shape=(7, 8, 6), seed=n_samples)
    X = (X * 5).astype(dtype) if dtype not in (np.float32, np.float64) else X.astype(dtype)
    ref = ReNA(mask, n_clusters=9).fit(X)
    rena = ReNA(mask, n_clusters=9).fit(da.from_array(X, chunks=(64, -1)))
    np.testing.assert_array_equal(rena.labels_, ref.labels_)


def test_function_and_warnings_match_in_memory():
    """The same n_iter and components warnings, word for word."""
    mask = np.zeros((6, 6), dtype=bool)
    mask[:2] = True
    mask[4:, 3:] = True
    X = np.random.default_rng(1).standard_normal((70, int(mask.sum())))
    for params in (dict(n_clusters=1), dict(n_clusters=3, n_iter=1)):
        with warnings.catch_warnings(record=True) as mem:
            warnings.simplefilter("always")
            ref = recursive_neighbor_agglomeration(X, mask, **params)
        with warnings.catch_warnings(record=True) as lazy:
            warnings.simplefilter("always")
            got = recursive_neighbor_agglomeration(da.from_array(X, chunks=(64, -1)), mask,
                                                   **params)
        assert got[0] == ref[0]
        np.testing.assert_array_equal(got[1], ref[1])
        assert [str(w.message) for w in lazy] == [str(w.message) for w in mem] != []


def test_overflowing_values_behave_as_in_memory():
    """Finite values whose squares overflow are valid input: both paths
    rescale them by the same power of two, and the labels agree (with
    those of the unscaled data, see tests/test_numerics.py)."""
    mask, X = smooth_problem(n_samples=70, shape=(6, 7, 5), dtype=np.float64, seed=3)
    X = X * 1e160
    ref = ReNA(mask, n_clusters=5).fit(X)
    rena = ReNA(mask, n_clusters=5).fit(da.from_array(X, chunks=(64, -1)))
    np.testing.assert_array_equal(rena.labels_, ref.labels_)


# --------------------------------------------------------------------------
# reading the data at most twice; spilling; cleaning up
# --------------------------------------------------------------------------
class ChunkReads:
    """A dask array whose chunk tasks count how often each chunk is read."""

    def __init__(self, X, rows):
        self.X = X
        self.counts = {}
        self.lock = threading.Lock()
        starts = range(0, X.shape[0], rows)
        parts = [da.from_delayed(dask.delayed(self.read)(s, min(s + rows, X.shape[0])),
                                 shape=(min(s + rows, X.shape[0]) - s, X.shape[1]),
                                 dtype=X.dtype) for s in starts]
        self.array = da.concatenate(parts, axis=0)

    def read(self, start, stop):
        with self.lock:
            self.counts[start] = self.counts.get(start, 0) + 1
        return self.X[start:stop].copy()


@pytest.fixture(scope="module")
def tied_problem(problem):
    """The same data rounded to a few levels: most edges tie, and the
    first sample (which breaks ties) must come from the weight pass."""
    mask, X, _ = problem
    X = np.round(X / X.std() * 2).astype(X.dtype)
    return mask, X, ReNA(mask, n_clusters=40).fit(X)


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("limit", ["2GiB", 0])
@pytest.mark.parametrize("rows", [64, 100])
def test_fit_reads_each_chunk_at_most_twice(problem, tied_problem, tied, limit, rows,
                                            tmp_path):
    mask, X, ref = tied_problem if tied else problem
    source = ChunkReads(X, rows)
    config = {"fastrena.in-memory-limit": limit, "temporary-directory": str(tmp_path)}
    with dask.config.set(config):
        rena = ReNA(mask, n_clusters=40, verbose=0).fit(source.array)
    np.testing.assert_array_equal(rena.labels_, ref.labels_)
    assert sorted(source.counts) == list(range(0, X.shape[0], rows))
    assert set(source.counts.values()) == {2}


@pytest.mark.parametrize("limit", [0, "1 B", 10_000])
def test_spilled_levels_give_the_same_labels_and_leave_no_file(problem, tmp_path, limit):
    mask, X, ref = problem
    seen = []

    def on_level(level, n_before, n_after):
        seen.append(sorted(p.name for p in tmp_path.rglob("*.npy")))

    config = {"fastrena.in-memory-limit": limit, "temporary-directory": str(tmp_path)}
    with dask.config.set(config):
        from fastrena.agglomeration import agglomerate

        result = agglomerate(da.from_array(X, chunks=(64, -1)), lattice_graph(mask), 40,
                             on_level=on_level)
    np.testing.assert_array_equal(result.labels, ref.labels_)
    # One file per chunk of samples for each level kept on disk (150 rows: 3
    # chunks), only the current level's, and nothing once the fit is done.
    assert seen[0] == ["chunk0.npy", "chunk1.npy", "chunk2.npy"]
    assert all(len(files) in (0, 3) for files in seen)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_fit_leaves_no_file(tmp_path):
    mask, X = smooth_problem(n_samples=100, shape=(8, 8, 8), dtype=np.float64)
    X[70, 5] = np.nan
    config = {"fastrena.in-memory-limit": 0, "temporary-directory": str(tmp_path)}
    with dask.config.set(config), pytest.raises(ValueError, match="Input X contains NaN"):
        ReNA(mask, n_clusters=4).fit(da.from_array(X, chunks=(64, -1)))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("how", ["SIGINT", "raised"])
def test_ctrl_c_while_the_spilled_files_are_removed(tmp_path, monkeypatch, how):
    """Ctrl-C in the middle of removing the spilled levels at the end of a
    fit (issue 27, point 4): the removal finishes, then the interrupt comes
    out of the fit. ``SIGINT``: the signal arrives after part of the folder
    is gone (its handler used to raise there, leaving the rest); ``raised``:
    the removal itself raises KeyboardInterrupt once, and is done again."""
    mask, X = smooth_problem(n_samples=100, shape=(8, 8, 8), dtype=np.float64)
    real_rmtree = shutil.rmtree
    calls = []

    def interrupted_rmtree(path, *args, **kwargs):
        calls.append(os.path.basename(path))
        if os.path.basename(path).startswith("fastrena-") and len(calls) == 1 + sum(
                not name.startswith("fastrena-") for name in calls):
            spilled = sorted(Path(path).rglob("*.npy"))
            assert spilled  # the last level's files are still there
            spilled[0].unlink()
            if how == "SIGINT":
                signal.raise_signal(signal.SIGINT)
                time.sleep(0.01)  # Python code: the handler runs here
            else:
                raise KeyboardInterrupt
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", interrupted_rmtree)
    config = {"fastrena.in-memory-limit": 0, "temporary-directory": str(tmp_path)}
    with dask.config.set(config), pytest.raises(KeyboardInterrupt):
        ReNA(mask, n_clusters=4).fit(da.from_array(X, chunks=(64, -1)))
    assert any(name.startswith("fastrena-") for name in calls)
    assert list(tmp_path.iterdir()) == []


def test_a_full_temporary_disk_names_the_spilled_file(tmp_path, monkeypatch):
    """The temporary folder fills up while a level is spilled: the error
    names the file, keeps ENOSPC and says what to change, where numpy's
    own said "6400 requested and 4096 written"; nothing is left."""
    class FullDisk(io.FileIO):
        def write(self, data):
            if self.tell() + len(memoryview(data)) > 200:
                raise OSError(errno.ENOSPC, "No space left on device")
            return super().write(data)

    def full_disk_open(path, mode="r", *args, **kwargs):
        assert mode == "wb"
        return io.BufferedWriter(FullDisk(path, "w"))

    monkeypatch.setattr(_chunked, "open", full_disk_open, raising=False)
    mask, X = smooth_problem(n_samples=100, shape=(8, 8, 8), dtype=np.float64)
    config = {"fastrena.in-memory-limit": 0, "temporary-directory": str(tmp_path),
              "scheduler": "synchronous"}
    with dask.config.set(config), pytest.raises(OSError) as raised:
        ReNA(mask, n_clusters=4).fit(da.from_array(X, chunks=(64, -1)))
    assert raised.value.errno == errno.ENOSPC
    assert re.fullmatch(
        f"cannot write reduced signals to the temporary file '{re.escape(str(tmp_path))}"
        r"/fastrena-\w+/level1/chunk\d\.npy' \(No space left on device\); set Dask's "
        "temporary-directory to a folder with room, or raise fastrena.in-memory-limit to "
        "keep them in memory", str(raised.value)), str(raised.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("params", [
    dict(n_clusters=2, n_iter=10),    # checked through the first level's means
    dict(n_clusters=2, n_iter=1),     # one level, no reduction: a scan pass
    dict(n_clusters=500, n_iter=10),  # K >= N, no level: a scan pass
])
def test_fit_rejects_non_finite_values_on_every_path(bad, params):
    X = np.random.default_rng(5).random((90, 100))
    X[70, 41] = bad
    message = "Input X contains NaN" if np.isnan(bad) else "Input X contains infinity"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        rena = ReNA(**params)
        with pytest.raises(ValueError, match=message) as raised:
            rena.fit(da.from_array(X, chunks=(64, -1)))
    assert not hasattr(rena, "labels_")
    # A block's rows are not X's: no position (it would name sample 6 of
    # the second block).
    assert "first at" not in str(raised.value)
    # In memory, the same fit says where.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(ValueError, match=message + r".* \(first at sample 70, feature 41: "
                           + ("nan" if np.isnan(bad) else "inf") + r"; 1 such values in 1 of "
                           r"90 samples and 1 of 100 features\)$"):
            ReNA(**params).fit(X)


def test_memory_is_not_used_for_dask_arrays(problem, tmp_path):
    mask, X, ref = problem
    with pytest.warns(UserWarning, match="memory is not used when X is a dask array"):
        rena = ReNA(mask, n_clusters=40, memory=str(tmp_path)).fit(
            da.from_array(X, chunks=(64, -1)))
    np.testing.assert_array_equal(rena.labels_, ref.labels_)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------
# lazy transform and inverse_transform
# --------------------------------------------------------------------------
@pytest.mark.parametrize("scaling", [False, True])
@pytest.mark.parametrize("chunks", [(64, -1), (50, 200)])
def test_transform_and_inverse_are_lazy_and_exact(problem, scaling, chunks):
    mask, X, _ = problem
    ref = ReNA(mask, n_clusters=40, scaling=scaling).fit(X)
    Xd = da.from_array(X, chunks=chunks)
    X_red = ref.transform(Xd)
    assert isinstance(X_red, da.Array)
    # chunked as X along samples; features split: as the fit rechunks X
    assert X_red.chunks == (sample_aligned(Xd).chunks[0], (40,))
    assert X_red.dtype == X.dtype
    np.testing.assert_array_equal(X_red.compute(), ref.transform(X))
    back = ref.inverse_transform(X_red)
    assert isinstance(back, da.Array) and back.shape == X.shape
    np.testing.assert_array_equal(back.compute(), ref.inverse_transform(ref.transform(X)))
    one = ref.inverse_transform(X_red[0])
    assert one.shape == (X.shape[1],)
    np.testing.assert_array_equal(one.compute(), ref.inverse_transform(ref.transform(X)[0]))


@pytest.mark.parametrize("bad", [np.nan, -np.inf])
def test_lazy_transform_raises_when_computed(problem, bad):
    mask, X, ref = problem
    Y = X.copy()
    Y[100, 7] = bad
    lazy = ref.transform(da.from_array(Y, chunks=(64, -1)))  # no error yet
    message = "Input X contains NaN" if np.isnan(bad) else "Input X contains infinity"
    with pytest.raises(ValueError, match=message) as raised:
        lazy.compute()
    assert "first at" not in str(raised.value)
    # In memory: where (sample 100, feature 7).
    with pytest.raises(ValueError, match=r"\(first at sample 100, feature 7: "
                       + ("nan" if np.isnan(bad) else "-inf") + r"; 1 such values in 1 of "
                       + f"{X.shape[0]} samples and 1 of {X.shape[1]} features" + r"\)$"):
        ref.transform(Y)


def test_transform_checks_widths(problem):
    mask, X, ref = problem
    with pytest.raises(ValueError, match=f"X has 10 features, but ReNA is expecting "
                                         f"{X.shape[1]} features"):
        ref.transform(da.zeros((3, 10), chunks=(3, 10)))
    with pytest.raises(ValueError, match="X_red has 7 columns but this ReNA has "
                                         "n_clusters_=40"):
        ref.inverse_transform(da.zeros((3, 7), chunks=(3, 7)))


# --------------------------------------------------------------------------
# validation without reading
# --------------------------------------------------------------------------
@pytest.mark.parametrize("X, message", [
    (da.zeros(5, chunks=5), r"Expected a 2-D dask array X .*got 1-D with shape \(5,\)"),
    (da.zeros((2, 3, 4), chunks=2), "got 3-D with shape"),
    (da.zeros((4, 3), dtype=complex, chunks=2),
     r"Complex data not supported: X has dtype complex128; pass real signals, such as "
     r"X\.real or np\.abs\(X\)"),
    (da.from_array(np.array([["a", "b"]]), chunks=1), "X must hold real numbers, got a "
                                                       "dask array of dtype <U1"),
    (da.zeros((0, 3), chunks=2), r"Found array with 0 sample\(s\) \(shape=\(0, 3\)\) while "
                                 "a minimum of 1 is required by ReNA"),
    (da.zeros((3, 0), chunks=2), r"Found array with 0 feature\(s\)"),
])
def test_bad_dask_input_is_named(X, message):
    with pytest.raises(ValueError, match=message):
        ReNA().fit(X)


def test_unknown_chunk_sizes_are_refused():
    X = da.from_array(np.arange(12.0).reshape(6, 2), chunks=3)
    X = X[X[:, 0] > 2]
    with pytest.raises(ValueError, match=r"X has unknown chunk sizes; call "
                                         r"X.compute_chunk_sizes\(\) first"):
        ReNA().fit(X)


def test_validation_reads_nothing(problem):
    mask, X, _ = problem
    source = ChunkReads(X, 64)
    with pytest.raises(ValueError, match="mask_img has 10 in-mask voxels/vertices but X "
                                         f"has {X.shape[1]} features"):
        ReNA(np.ones((2, 5), dtype=bool)).fit(source.array)
    assert source.counts == {}


def test_rechunking_rules():
    X = da.zeros((300, 1000), chunks=(64, 1000))
    assert sample_aligned(X) is X
    X = da.zeros((300, 1000), chunks=((64, 128, 108), 1000))
    assert sample_aligned(X) is X
    aligned = sample_aligned(da.zeros((300, 1000), chunks=(100, 250)))
    assert aligned.chunks[1] == (1000,)
    assert all(r % SAMPLE_BLOCK == 0 for r in aligned.chunks[0][:-1])
    with dask.config.set({"array.chunk-size": "1MiB"}):
        # 1 MiB of float64 rows of 1000 features: 131 rows -> 128
        assert aligned_rows(1000, np.float64) == 128
        assert aligned_rows(10**6, np.float64) == SAMPLE_BLOCK  # never fewer
        assert aligned_rows(1000, np.float32, nbytes=8 * 2**20) == 2048


def test_in_memory_limit_default_and_store_location(tmp_path):
    from fastrena._chunked import DEFAULT_IN_MEMORY_LIMIT, SignalStore

    assert SignalStore().limit == 2 * 2**30 == dask.utils.parse_bytes(DEFAULT_IN_MEMORY_LIMIT)
    with dask.config.set({"fastrena.in-memory-limit": "5 MB"}):
        assert SignalStore().limit == 5_000_000
    with SignalStore(directory=str(tmp_path)) as store:
        folder = store._new_folder()
        assert os.path.dirname(os.path.dirname(folder)) == str(tmp_path)
    assert list(tmp_path.iterdir()) == []
