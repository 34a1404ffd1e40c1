"""Ctrl-C (SIGINT) at random instants of a fit, a transform, ``fastrena
reduce`` and a Dask fit: always a clean stop (issue 14).

Before the fix, a SIGINT that came while a numba kernel ran was handled
inside numba's boxing of the kernel's returned arrays, which ignores
errors: ``SystemError: CPUDispatcher(...) returned a result with an
exception set``, or a tuple holding NULL and a segmentation fault (see
``fastrena._interrupt`` for the mechanism and the fix).

The tests run the real work in subprocesses and send them SIGINT at seeded
random instants spread over one run of the work, and check every one:

* from Python, one process repeats the work until the ``KeyboardInterrupt``,
  catches it, then fits again and must get the labels of an uninterrupted
  fit (and, after transforms, the same values), over and over;
* from the command line, each run is a fork of one process that has
  imported ``fastrena.cli``, so that dozens of runs fit in seconds (the fork
  then loads the kernels from numba's cache and does all the work itself,
  as the console script does). Each must exit 130 with exactly one line on
  stderr, ``fastrena CMD: interrupted``, and leave its output folder empty.
  The fork leaves with ``os._exit`` once ``main`` has returned, skipping
  the interpreter's teardown (half a second a run).
"""

import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from helpers import write_nifti

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs POSIX signals and fork")

#: An ellipsoid of 628,208 voxels: a fit of 2 samples takes about 0.3 s on
#: 2 cores, long enough to be interrupted anywhere in it.
SHAPE = (100, 120, 100)
N_CLUSTERS = 1000

_ELLIPSOID = '''
import numpy as np

def ellipsoid(shape):
    grid = np.ogrid[tuple(slice(0, s) for s in shape)]
    return sum(((x - (s - 1) / 2) / (s / 2)) ** 2 for x, s in zip(grid, shape)) <= 1
'''

# The Python side. Commands on stdin: "go MODE" repeats MODE's work until
# KeyboardInterrupt (after saying "started"), then fits again and says
# "caught <runs completed> same|different"; "time MODE" says how long one
# run of the work takes. Modes: "fit" (2 samples in memory), "transform"
# (16 samples), "dask" (a Dask array of 80 samples in chunks of 64).
_PYTHON_CHILD = _ELLIPSOID + '''
import signal
import sys
import time

# Python's own SIGINT handler, whatever the parent left (a background job
# may have SIGINT ignored).
signal.signal(signal.SIGINT, signal.default_int_handler)
# Every thread's stack on stderr at SIGUSR1: what Child.close shows of a
# child that hangs, before killing it.
import faulthandler
faulthandler.register(signal.SIGUSR1, all_threads=True)

import dask.array as da

from fastrena import ReNA

n_clusters = int(sys.argv[1])
mask = ellipsoid(tuple(int(s) for s in sys.argv[2:5]))
X = np.random.default_rng(0).standard_normal((80, int(mask.sum())), dtype=np.float32)
data = {"fit": np.ascontiguousarray(X[:2]), "transform": np.ascontiguousarray(X[:16]),
        "dask": da.from_array(X, chunks=(64, -1))}


def fit(mode):
    return ReNA(mask_img=mask, n_clusters=n_clusters).fit(data[mode])


fitted = {mode: fit(mode) for mode in data}
reduced = fitted["transform"].transform(data["transform"])
work = {"fit": lambda: fit("fit"),
        "transform": lambda: fitted["transform"].transform(data["transform"]),
        "dask": lambda: fit("dask")}
for line in sys.stdin:
    command, mode = line.split()
    if command == "time":
        work[mode]()
        start = time.perf_counter()
        work[mode]()
        print("took", time.perf_counter() - start, flush=True)
        continue
    done = 0
    try:
        print("started", flush=True)
        while True:
            work[mode]()
            done += 1
    except KeyboardInterrupt:
        pass
    # The process goes on: a new fit gives the uninterrupted labels.
    same = np.array_equal(fit(mode).labels_, fitted[mode].labels_)
    if mode == "transform":
        same = same and np.array_equal(work[mode](), reduced)
    print("caught", done, "same" if same else "different", flush=True)
'''

# The command line side: a server that forks one process per run of
# ``fastrena.cli.main``; each run's stdout and stderr go to files. Replies
# "pid <pid>" at the start of a run and "status <exit status>" at its end.
_CLI_SERVER = '''
import faulthandler
import json
import os
import signal
import sys
import time
import traceback
import warnings

signal.signal(signal.SIGINT, signal.default_int_handler)
# Python >= 3.12 warns about fork() with threads running (NumPy's BLAS
# threads, idle: they are not copied, and BLAS resets itself in the fork).
warnings.filterwarnings("ignore", message=".*fork", category=DeprecationWarning)

from fastrena.cli import main

#: Exit statuses of a run that did not end by main returning a code.
ESCAPED, OUTSIDE, CRASHED, LOST = 200, 201, 202, 203


def run(argv, signalled, ready):
    """main(argv)'s exit code. Writes to the pipe ``ready`` just before
    main starts. If main finishes before the SIGINT the test sends
    (``signalled``), wait for it: that it arrives proves it was not lost
    inside main."""
    try:
        os.write(ready, b"!")
        code = main(argv)
        deadline = time.monotonic() + 10
        while code == 0 and signalled:
            if time.monotonic() > deadline:
                return LOST
            time.sleep(0.005)
    except KeyboardInterrupt as exc:
        # Raised inside main (a failure), or here, outside main.
        frames = []
        tb = exc.__traceback__
        while tb is not None:
            frames.append(tb.tb_frame.f_code)
            tb = tb.tb_next
        traceback.print_exc()
        return ESCAPED if main.__code__ in frames else OUTSIDE
    except BaseException:
        traceback.print_exc()
        return CRASHED
    return code


for line in sys.stdin:
    request = json.loads(line)
    ready, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        # A run stuck for a minute shows where each thread is, and ends.
        faulthandler.dump_traceback_later(60, exit=True)
        for fd, name in ((1, "stdout"), (2, "stderr")):
            os.dup2(os.open(request[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
        os.chdir(request["cwd"])
        start = time.perf_counter()
        status = run(request["argv"], request["signalled"], ready_w)
        with open(request["stdout"] + ".time", "w") as f:
            f.write(str(time.perf_counter() - start))
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    os.close(ready_w)
    os.read(ready, 1)  # the run is about to call main
    os.close(ready)
    print("pid", pid, flush=True)
    print("status", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
'''
#: What the statuses of ``_CLI_SERVER``'s runs mean.
STATUSES = {200: "KeyboardInterrupt escaped from main", 201: "SIGINT handled outside main",
            202: "an exception other than KeyboardInterrupt escaped from main",
            203: "main returned 0 although SIGINT came while it ran",
            -11: "segmentation fault"}
OUTSIDE = 201


# --------------------------------------------------------------------------
# The mechanism, in this process (fast, deterministic)
# --------------------------------------------------------------------------
@pytest.fixture
def python_sigint_handler():
    """Python's own SIGINT handler during the test, whatever was there."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_python_code_gets_every_kernel_guarded_and_jitted_code_the_dispatchers():
    from numba.core.dispatcher import Dispatcher

    from fastrena import _kernels
    from fastrena._interrupt import SigintDeferringKernel

    names = [name for name, value in vars(_kernels).items() if isinstance(value, Dispatcher)]
    assert "connected_components" in names and "strictly_increasing" in names
    for name in names:
        assert isinstance(getattr(_kernels, name), SigintDeferringKernel), name
    # A wrapper set back (pytest's monkeypatch undoing) stores the dispatcher.
    wrapper = _kernels.strictly_increasing
    _kernels.strictly_increasing = wrapper
    assert vars(_kernels)["strictly_increasing"] is wrapper.dispatcher


def test_a_sigint_during_a_kernel_call_is_raised_once_it_returns(python_sigint_handler):
    from fastrena._interrupt import call_deferring_sigint

    done = []

    def kernel(value):
        signal.raise_signal(signal.SIGINT)  # its handler runs here: nothing raised
        done.append(value)
        return value

    with pytest.raises(KeyboardInterrupt):
        call_deferring_sigint(kernel, (7,), {})
    assert done == [7]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert call_deferring_sigint(lambda a, b=0: a + b, (1,), {"b": 2}) == 3


def test_an_interrupt_inside_dask_s_wait_comes_out_as_keyboard_interrupt(monkeypatch):
    """Ctrl-C landing in ``threading.Condition.wait`` just after it released
    its lock (what a Dask fit's main thread waits in): Python then raises
    ``RuntimeError: release unlocked lock`` from the ``with`` block around
    the wait (seen in a Ctrl-C of a Dask fit). The fit must raise the
    KeyboardInterrupt, and a later fit give the uninterrupted labels."""
    from concurrent.futures import ThreadPoolExecutor

    import dask
    import dask.array as da

    from fastrena import ReNA

    X = np.random.default_rng(0).standard_normal((70, 60))
    ref = ReNA(n_clusters=5).fit(X).labels_
    release_save = threading.Condition._release_save
    landed = []

    def interrupted_after_release(self):
        state = release_save(self)
        if threading.current_thread() is threading.main_thread() and not landed:
            landed.append(True)
            raise KeyboardInterrupt
        return state

    monkeypatch.setattr(threading.Condition, "_release_save", interrupted_after_release)
    # Its own pool: the interrupted wait leaves nothing behind in Dask's.
    with ThreadPoolExecutor(2) as pool, dask.config.set(scheduler="threads", pool=pool):
        Xd = da.from_array(X, chunks=(64, -1))
        with pytest.raises(KeyboardInterrupt) as caught:
            ReNA(n_clusters=5).fit(Xd)
        assert landed == [True]
        # What Python did there: the interrupt's own traceback is kept.
        assert any(frame.name == "interrupted_after_release"
                   for frame in traceback_frames(caught.value))
        monkeypatch.undo()
        np.testing.assert_array_equal(ReNA(n_clusters=5).fit(Xd).labels_, ref)


def test_an_error_without_an_interrupt_behind_it_is_left_alone():
    from fastrena._interrupt import interrupt_behind, interrupt_unmasked

    with pytest.raises(RuntimeError, match="release unlocked lock"):
        with interrupt_unmasked():
            raise RuntimeError("release unlocked lock")
    with pytest.raises(ValueError, match="while handling"):
        with interrupt_unmasked():
            try:
                raise OSError("first")
            except OSError:
                raise ValueError("while handling") from None
    # One raised while a KeyboardInterrupt unwound, however deep, is it.
    interrupt = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt) as caught:
        with interrupt_unmasked():
            try:
                try:
                    raise interrupt
                except KeyboardInterrupt:
                    raise OSError("clean-up")
            except OSError:
                raise RuntimeError("release unlocked lock")
    assert caught.value is interrupt
    assert interrupt_behind(None) is None
    # A cause counts too: a C extension's import cut by Ctrl-C raises
    # ``ImportError: initialization failed`` from the interrupt.
    cut = KeyboardInterrupt()
    try:
        raise ImportError("initialization failed") from cut
    except ImportError as exc:
        assert exc.__context__ is None and interrupt_behind(exc) is cut
    # A chain that loops ends.
    first, second = OSError("a"), OSError("b")
    first.__context__, second.__context__ = second, first
    assert interrupt_behind(first) is None


def traceback_frames(exc):
    import traceback

    return traceback.extract_tb(exc.__traceback__)


def test_interrupts_kept_raises_a_dropped_interrupt_at_the_next_safe_point(
        python_sigint_handler, capsys):
    from fastrena import _kernels
    from fastrena._interrupt import interrupts_kept

    class Finalized:
        def __del__(self):
            raise KeyboardInterrupt  # Python prints "Exception ignored in ..."

    hook = sys.unraisablehook
    reached = []
    with pytest.raises(KeyboardInterrupt):  # at the end of the block
        with interrupts_kept():
            Finalized()
            reached.append("end of the block")
    assert reached == ["end of the block"]
    with interrupts_kept():
        try:  # as C code that clears the error does
            signal.raise_signal(signal.SIGINT)
        except KeyboardInterrupt:
            pass
        with pytest.raises(KeyboardInterrupt):  # at the next kernel call
            _kernels.strictly_increasing(np.ones(2))
        assert _kernels.strictly_increasing(np.ones(1)) == 1  # raised once
    assert capsys.readouterr().err == ""
    assert sys.unraisablehook is hook
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# --------------------------------------------------------------------------
# Subprocesses interrupted at random instants
# --------------------------------------------------------------------------
class Child:
    """A Python subprocess spoken to by lines on stdin and stdout."""

    def __init__(self, code, *args):
        self.process = subprocess.Popen(
            [sys.executable, "-W", "error::RuntimeWarning", "-c", code, *map(str, args)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        self.lines = queue.Queue()
        self.stderr = []
        self.readers = [threading.Thread(target=self._read, args=(stream, sink), daemon=True)
                        for stream, sink in ((self.process.stdout, self.lines.put),
                                             (self.process.stderr, self.stderr.append))]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _read(stream, sink):
        for line in stream:
            sink(line)
        sink(None)

    def send(self, line):
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def expect(self, word, after="", timeout=120):
        """The next line of stdout, split; it must start with ``word``
        (else fail, saying what came ``after``)."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            line = f"(nothing in {timeout} s)"
        if line is None or line.split()[:1] != [word]:
            self.close()
            pytest.fail(f"{after}: expected {word!r}, got {line!r}; exit code "
                        f"{self.process.returncode}; stderr:\n{self.err()[-3000:]}")
        return line.split()

    def interrupt(self):
        self.process.send_signal(signal.SIGINT)

    def err(self):
        return "".join(s for s in self.stderr if s is not None)

    def close(self):
        """Close stdin, wait for the end; return (exit code, stderr). A
        child still running a minute later is asked for its threads'
        stacks (SIGUSR1, where it registered faulthandler), then killed:
        the stacks end up in stderr, in the failure's message."""
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.send_signal(signal.SIGUSR1)
                time.sleep(2)
                self.process.kill()
                self.process.wait()
        for reader in self.readers:
            reader.join(30)
        # Closed here, not left to the garbage collector: an unclosed pipe's
        # ResourceWarning would surface in whichever test runs then.
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        return self.process.returncode, self.err()


class Reused:
    """One subprocess for several tests, started again if a test ended it
    (a failure)."""

    def __init__(self, start):
        self.start = start
        self.child = None

    def get(self):
        if self.child is None or self.child.process.poll() is not None:
            self.child = self.start()
        return self.child

    def close(self):
        """Exit code and stderr of the last subprocess: 0 and nothing (no
        "Exception ignored" message, no warning) if all went well."""
        return self.child.close() if self.child is not None else (0, "")


@pytest.fixture(scope="module")
def python_child():
    """The process of the Python tests."""
    child = Reused(lambda: Child(_PYTHON_CHILD, N_CLUSTERS, *SHAPE))
    yield child.get
    assert child.close() == (0, "")


@pytest.mark.parametrize("mode, instants", [("fit", 16), ("transform", 16), ("dask", 12)])
def test_keyboard_interrupt_in_python_at_random_instants(python_child, mode, instants):
    """SIGINT at seeded random instants of repeated in-memory fits,
    transforms, or fits of a Dask array (two chunks, Dask's threads): each
    time a KeyboardInterrupt that the caller catches, after which the same
    process fits the uninterrupted labels (and transforms to the same
    values)."""
    child = python_child()
    child.send(f"time {mode}")
    duration = float(child.expect("took")[1])
    rng = random.Random(f"python {mode}")
    for i in range(instants):
        child.send(f"go {mode}")
        child.expect("started")
        delay = rng.uniform(0, duration)
        time.sleep(delay)
        child.interrupt()
        reply = child.expect("caught", f"SIGINT {delay:.3f} s into a {mode}")
        assert reply[2] == "same", f"instant {i} ({delay:.3f} s in): {reply}"


@pytest.fixture(scope="module")
def cli_inputs(tmp_path_factory):
    """A mask, a 4-D image of 2 volumes on it (uncompressed, read fast),
    and a label image of 500 clusters (for ``fastrena reduce``)."""
    folder = tmp_path_factory.mktemp("inputs")
    namespace = {}
    exec(_ELLIPSOID, namespace)
    mask = namespace["ellipsoid"](SHAPE)
    volumes = np.zeros(SHAPE + (2,), np.float32)
    volumes[mask] = np.random.default_rng(1).standard_normal((int(mask.sum()), 2))
    write_nifti(folder / "mask.nii.gz", mask.astype(np.uint8))
    write_nifti(folder / "scans.nii", volumes)
    labels = np.zeros(SHAPE, np.int16)
    labels[mask] = np.arange(mask.sum()) % 500 + 1
    write_nifti(folder / "labels.nii.gz", labels)
    return folder


class CliServer:
    """Runs ``fastrena.cli.main`` in forks of one process (``_CLI_SERVER``)."""

    def __init__(self, folder):
        self.server = Reused(lambda: Child(_CLI_SERVER))
        self.folder = folder
        self.runs = 0

    def run(self, argv, signal_after=None):
        """Run ``argv`` with its outputs in a new empty folder; if
        ``signal_after`` (seconds) is given, send SIGINT that long after
        main started. Returns
        (exit status, stdout, stderr, seconds in main, output folder)."""
        self.runs += 1
        out, logs = self.folder / f"run{self.runs}", self.folder / f"logs{self.runs}"
        out.mkdir()
        logs.mkdir()
        server = self.server.get()
        server.send(json.dumps({
            "argv": [str(a) for a in argv], "cwd": str(out), "signalled": signal_after is not None,
            "stdout": str(logs / "out"), "stderr": str(logs / "err")}))
        pid = int(server.expect("pid")[1])
        if signal_after is not None:
            time.sleep(signal_after)
            os.kill(pid, signal.SIGINT)
        status = int(server.expect("status", f"{argv[0]}, SIGINT {signal_after} s in")[1])
        stdout, stderr = ((logs / name).read_text() for name in ("out", "err"))
        timing = logs / "out.time"  # not written if the run crashed
        seconds = float(timing.read_text()) if timing.exists() else float("nan")
        return status, stdout, stderr, seconds, out


@pytest.fixture(scope="module")
def cli_server(tmp_path_factory):
    server = CliServer(tmp_path_factory.mktemp("runs"))
    yield server
    assert server.server.close() == (0, "")


@pytest.mark.parametrize("command, options, outputs, instants", [
    ("parcellate", [], ["labels.nii.gz", "labels.tsv"], 16),
    ("parcellate", ["--dask", "--reduced", "reduced.npy"],
     ["labels.nii.gz", "labels.tsv", "reduced.npy"], 10),
    ("reduce", [], ["reduced.csv"], 10),
], ids=["parcellate", "parcellate-dask-reduced", "reduce"])
def test_command_line_interrupted_at_random_instants(cli_server, cli_inputs, command, options,
                                                     outputs, instants):
    """SIGINT at seeded random instants of a run, from the start of main to
    90% of an uninterrupted run's time (mostly the fit; with ``--reduced``
    also the transform and a second output; for ``reduce``, reading and
    reducing 20 scans): each time exit code 130, ``fastrena CMD:
    interrupted`` alone on stderr, no output and no temporary file. A
    signal handled outside main (this run was faster, main had returned)
    does not count: another instant is drawn."""
    if command == "parcellate":
        argv = ["parcellate", cli_inputs / "scans.nii", "--mask", cli_inputs / "mask.nii.gz",
                "-k", N_CLUSTERS, "-o", "labels.nii.gz", *options]
    else:
        argv = ["reduce", *[cli_inputs / "scans.nii"] * 10, "--labels",
                cli_inputs / "labels.nii.gz", "-o", "reduced.csv", *options]
    # Uninterrupted runs succeed; the faster of two times the work.
    durations = []
    for _ in range(2):
        status, out, err, seconds, folder = cli_server.run(argv)
        assert (status, err) == (0, ""), out
        assert sorted(p.name for p in folder.iterdir()) == outputs
        durations.append(seconds)
    duration = min(durations)
    rng = random.Random(f"command line {command}")
    hits = outside = 0
    while hits < instants:
        delay = rng.uniform(0, 0.9 * duration)
        status, out, err, _, folder = cli_server.run(argv, signal_after=delay)
        if status == OUTSIDE and outside < instants:
            outside += 1
            continue
        where = f"{' '.join([command, *options])}, SIGINT {delay:.3f} s in"
        assert status == 130, \
            f"{where}: exit status {status} ({STATUSES.get(status, '?')}); stderr:\n{err}"
        assert err == f"fastrena {command}: interrupted\n", where
        assert "wrote" not in out, where
        assert list(folder.iterdir()) == [], where
        hits += 1


def test_ctrl_c_while_probing_an_output_folder_leaves_no_probe(tmp_path, monkeypatch):
    # check_output creates a probe file to try the folder for real, then
    # removes it: a SIGINT between the two is handled after the removal.
    from fastrena import files

    real_open = os.open

    def open_then_interrupt(*args, **kwargs):
        fd = real_open(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)
        return fd

    monkeypatch.setattr(os, "open", open_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        files.check_output(tmp_path / "labels.nii.gz")
    assert list(tmp_path.iterdir()) == []


def test_a_kernel_for_compiled_callers_only_raises_when_python_calls_it():
    # numba would crash the process: the guard says what happened instead.
    from numba.core.dispatcher import Dispatcher

    from fastrena import _kernels
    from fastrena._interrupt import CompiledOnlyKernel, SigintDeferringKernel
    from fastrena._kernels import compiling, merges

    n_inner = 0
    for module in (_kernels.checks, _kernels.compiling, _kernels.connectivity,
                   _kernels.exchange, _kernels.graph, _kernels.layout, _kernels.means,
                   _kernels.merges, _kernels.partition_sums, _kernels.refine,
                   _kernels.round_end, _kernels.ward, _kernels.ward_costs, _kernels.ward_edges,
                   _kernels.ward_greedy, _kernels.ward_heap, _kernels.weights):
        for name, value in vars(module).items():
            if isinstance(value, Dispatcher):
                read = getattr(module, name)
                if value.targetoptions.get("no_cpython_wrapper"):
                    assert type(read) is CompiledOnlyKernel, name
                    n_inner += 1
                else:
                    assert type(read) is SigintDeferringKernel, name
    assert n_inner >= 10
    for kernel, args in ((merges.find_root, (np.arange(3), 1)),
                         (compiling.int_range, (3,))):
        with pytest.raises(TypeError, match=r"^find_root is called by compiled kernels only"
                                            r"|^int_range is called by compiled kernels only"):
            kernel(*args)
    assert merges.connected_components(3, np.array([0]), np.array([1]),
                                       np.array([True]))[1] == 2
