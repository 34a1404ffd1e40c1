"""The first call (issue 18, point 4): the command line starts without numba
or scikit-learn, the package's names load on first use, ``fastrena warm``
leaves nothing for a fit to compile, and the threads that replace numba's
``parallel=True`` split the work without changing it.

Timings are in ``benchmarks/first_call.py``; these tests check the
behaviour the timings rest on.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import MAX_THREADS, num_threads
from numba import njit

import fastrena
from fastrena._kernels.claims import claim
from fastrena._kernels.threads import PARALLEL_GRAIN, run_tasks

HEAVY = ("numba", "sklearn", "scipy", "nibabel")


def run_python(code, env=None):
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv, code", [
    (["--help"], 0),
    (["parcellate", "--help"], 0),
    (["parcellate", "in.nii.gz", "-k", "0", "-o", "out.nii.gz"], 2),
    (["parcellate", "in.nii.gz", "--threshold", "1.5", "-o", "out.nii.gz"], 2),
    (["reduce", "in.nii.gz"], 2),
])
def test_the_command_line_answers_without_numba_or_scikit_learn(argv, code):
    out = run_python(
        "import contextlib, io, json, sys\n"
        "from fastrena.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), "
        "contextlib.redirect_stderr(io.StringIO()) as err:\n"
        f"    code = main({argv!r})\n"
        f"print(json.dumps([code, err.getvalue(), [m for m in {HEAVY!r} if m in sys.modules]]))")
    assert out[0] == code
    assert out[2] == []
    if "-k" in argv:
        assert "argument -k/--n-clusters: must be an integer >= 1, got '0'" in out[1]
    if "--threshold" in argv:
        assert "must be a number in [0, 1), got '1.5'" in out[1]


def test_the_package_names_load_on_first_use():
    out = run_python(
        "import json, sys\n"
        "import fastrena\n"
        "before = [m for m in ('numba', 'sklearn') if m in sys.modules]\n"
        "rena = fastrena.ReNA\n"
        "print(json.dumps([before, rena.__module__, 'numba' in sys.modules]))")
    assert out == [[], "fastrena.estimator", True]
    assert sorted(fastrena.__all__) == fastrena.__all__
    for name in fastrena.__all__:
        assert getattr(fastrena, name).__name__ == name
        assert name in dir(fastrena)
    with pytest.raises(AttributeError, match="module 'fastrena' has no attribute 'Rena'"):
        fastrena.Rena  # noqa: B018


def test_fastrena_warm_leaves_nothing_to_compile(warmed_cache):
    """After ``fastrena warm`` in an empty cache (the session's
    ``warmed_cache``, see conftest.py), fits of both types, both linkages,
    both memory orders, transforms, the greedy finish, few features (the
    refinement's copy restored along X's rows) and a graph large enough
    for the graph reduction's two halves load every kernel from the cache:
    numba counts no cache miss."""
    cache, done = warmed_cache
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"fastrena's kernels are compiled and cached in {cache}")
    out = run_python(
        "import gc, json\n"
        "import numpy as np\n"
        "from numba.core.dispatcher import Dispatcher\n"
        "from fastrena import ReNA, lattice_graph\n"
        "mask = np.ones((9, 10, 11), dtype=bool)\n"
        "connectivity = lattice_graph(mask).to_adjacency()\n"
        "rng = np.random.default_rng(1)\n"
        "for dtype in ('float32', 'float64'):\n"
        "    X = np.round(rng.standard_normal((70, mask.sum())), 1).astype(dtype)\n"
        "    for linkage in ('nilearn', 'ward'):\n"
        "        for data in (X, np.asfortranarray(X)):\n"
        "            for k in (3, 40, 500):\n"
        "                rena = ReNA(n_clusters=k, connectivity=connectivity,\n"
        "                            linkage=linkage).fit(data)\n"
        "                rena.inverse_transform(rena.transform(data))\n"
        # Few features: the refinement restores its copy of X along X's
        # rows (kernels.layout.restore_rows).
        "cube = lattice_graph(np.ones((4, 4, 4), dtype=bool)).to_adjacency()\n"
        "for dtype in ('float32', 'float64'):\n"
        "    ReNA(n_clusters=4, connectivity=cube, linkage='ward').fit(\n"
        "        rng.standard_normal((50, 64)).astype(dtype))\n"
        # A graph of 105,000 edges: the graph reduction's two halves, with
        # the levels' labels and the refinement's.
        "big = np.ones((30, 40, 30), dtype=bool)\n"
        "Xb = rng.standard_normal((3, big.sum())).astype('float32')\n"
        "for linkage in ('nilearn', 'ward'):\n"
        "    ReNA(n_clusters=700, mask_img=big, linkage=linkage).fit(Xb)\n"
        "kernels = [d for d in gc.get_objects() if isinstance(d, Dispatcher)\n"
        "           and d.py_func.__module__.startswith('fastrena')]\n"
        "print(json.dumps([sum(len(d.stats.cache_misses) for d in kernels),\n"
        "                  sum(len(d.stats.cache_hits) for d in kernels)]))", env=env)
    misses, hits = out
    assert misses == 0 and hits >= 10
    # Run again, it compiles nothing and does not say it did (issue 28, point 9).
    again = subprocess.run([sys.executable, "-m", "fastrena.cli", "warm"], env=env,
                           capture_output=True, text=True, timeout=600)
    assert (again.returncode, again.stderr) == (0, "")
    assert again.stdout.startswith(f"fastrena's kernels were already compiled, in the cache "
                                   f"in {cache}")


@njit(nogil=True)
def _count_tasks(out, fail_at, t0, t1):
    for t in range(t0, t1):
        if t == fail_at:
            raise ValueError("task failed")
        out[t] += 1


@pytest.mark.parametrize("n_threads", range(1, MAX_THREADS + 1))
@pytest.mark.parametrize("n_tasks", [0, 1, 2, 7, 1000])
def test_run_tasks_runs_every_task_once(n_tasks, n_threads):
    out = np.zeros(n_tasks, dtype=np.int64)
    with num_threads(n_threads):
        run_tasks(_count_tasks, n_tasks, (out, -1), 10 * PARALLEL_GRAIN)
    assert (out == 1).all()


@njit(nogil=True)
def _claim_all(counter, taken, t0, t1):
    for t in range(t0, t1):
        while True:
            k = claim(counter)
            if k >= taken.shape[0]:
                break
            taken[k] += t + 1


@pytest.mark.parametrize("n_threads", range(1, MAX_THREADS + 1))
def test_claims_hand_out_each_number_once(n_threads):
    """Two tasks claiming from one counter (on as many threads as there
    are) get every number below the end exactly once between them: each
    slot marked by one task (1 or 2, never 3 nor 0), and each task's last
    claim, past the end, counted too."""
    taken = np.zeros(200_000, dtype=np.int64)
    counter = np.zeros(1, dtype=np.int64)
    with num_threads(n_threads):
        run_tasks(_claim_all, 2, (counter, taken), 10 * PARALLEL_GRAIN)
    assert set(np.unique(taken).tolist()) <= {1, 2}
    assert counter[0] == taken.shape[0] + 2


def test_run_tasks_waits_for_every_range_before_raising():
    """A range that raises (here the last, run by a helper thread when
    there are two) raises in the caller, once every other range is done."""
    n_tasks = 1000
    out = np.zeros(n_tasks, dtype=np.int64)
    with num_threads(MAX_THREADS), pytest.raises(ValueError, match="task failed"):
        run_tasks(_count_tasks, n_tasks, (out, n_tasks - 1), 10 * PARALLEL_GRAIN)
    # Every task but the failing one ran: the other ranges finished.
    assert (out[:-1] == 1).all() and out[-1] == 0


def test_small_work_stays_on_the_calling_thread():
    """Below PARALLEL_GRAIN of work per thread, no helper thread is used."""
    import threading

    seen = []

    def kernel(out, t0, t1):
        seen.append((threading.current_thread() is threading.main_thread(), t0, t1))

    with num_threads(MAX_THREADS):
        run_tasks(kernel, 8, (None,), PARALLEL_GRAIN - 1)
    assert seen == [(True, 0, 8)]


def test_threads_that_cannot_start_leave_their_ranges_to_the_caller(monkeypatch):
    """Under a memory limit the pool's threads may not start ("RuntimeError:
    can't start new thread", which a fit used to raise, issue 27 point 5):
    the calling thread runs every range, once, and the labels are the same.
    Four threads are asked for whatever NUMBA_NUM_THREADS allows: none
    starts."""
    import threading

    import numba

    from fastrena._kernels import threads

    X = np.random.default_rng(4).standard_normal((40, 9000))
    expected = fastrena.ReNA(n_clusters=30).fit(X).labels_
    starts = []

    def cannot_start(thread):
        starts.append(thread.name)
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threads, "_pool", None)  # none started yet
    monkeypatch.setattr(threading.Thread, "start", cannot_start)
    monkeypatch.setattr(numba, "get_num_threads", lambda: 4)
    out = np.zeros(1000, dtype=np.int64)
    run_tasks(_count_tasks, 1000, (out, -1), 10 * PARALLEL_GRAIN)
    assert (out == 1).all()
    assert len(starts) == 3  # one per range but the caller's
    np.testing.assert_array_equal(fastrena.ReNA(n_clusters=30).fit(X).labels_, expected)
    assert len(starts) > 3


def test_an_import_broken_by_ctrl_c_is_an_interrupt(monkeypatch, capsys):
    """The subcommands import numba, scikit-learn and scipy when they start:
    a Ctrl-C then can come out of a C extension's initialisation as an
    ImportError caused by the KeyboardInterrupt. It is an interrupt (exit
    130), not a bug's traceback; an ImportError of its own is still a bug."""
    from fastrena.cli import main, warm

    def interrupted_import(args, session):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise ImportError("initialization failed") from exc

    monkeypatch.setattr(warm, "run", interrupted_import)
    assert main(["warm"]) == 130
    assert capsys.readouterr().err == "fastrena warm: interrupted\n"

    def broken_import(args, session):
        raise ImportError("initialization failed")

    monkeypatch.setattr(warm, "run", broken_import)
    with pytest.raises(ImportError, match="initialization failed"):
        main(["warm"])
