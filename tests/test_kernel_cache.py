"""Where the compiled kernels are kept (issue 27, point 1): a read-only
install with no writable cache folder imports, fits and runs the command
line, with one warning saying where a cache could go; a cache compiled into
a folder that is read-only now is read; ``fastrena warm`` says what it did.

The read-only cases run in subprocesses on a copy of the package where
every cache folder (the package's ``__pycache__``, ``NUMBA_CACHE_DIR``, the
home's ``.cache``) is read-only. Tests run as root, which ignores file
permissions: the subprocess then drops root's permission overrides
(``CAP_DAC_OVERRIDE``, ``CAP_DAC_READ_SEARCH``, ``CAP_FOWNER``) before it
starts Python, rather than switch to ``nobody``, who may not reach the
interpreter (here it lives under /root, which no other user may enter).
They skip, saying why, when that cannot be done.
"""

import errno
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numba import njit
from numba.core.caching import FunctionCache

import fastrena
from fastrena._kernels import caching
from fastrena.warmup import CacheWarning

# Run by the subprocess before Python proper: drops root's permission
# overrides from the capability bounding set (prctl PR_CAPBSET_DROP), which
# the program exec'd next then lacks, and execs it.
DROP_OVERRIDES = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
for capability in (1, 2, 3):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
    if libc.prctl(24, capability, 0, 0, 0) != 0:
        print(os.strerror(ctypes.get_errno()), file=sys.stderr)
        sys.exit(77)
os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
"""

# A small fit, its warnings and what the kernel caches did, as JSON.
FIT = """
import json, warnings
import numpy as np
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    from fastrena import ReNA
    X = np.random.default_rng(3).standard_normal((6, 300))
    labels = ReNA(n_clusters=7).fit(X).labels_
import fastrena
from fastrena._kernels import caching
print(json.dumps({"file": fastrena.__file__, "labels": labels.tolist(),
                  "warnings": [[w.category.__name__, str(w.message)] for w in caught],
                  "activity": caching.activity()}))
"""


def read_only(*folders):
    """Make every folder under ``folders`` read-only (files too)."""
    for folder in folders:
        for path in [folder, *Path(folder).rglob("*")]:
            mode = path.stat().st_mode
            path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def writable(*folders):
    for folder in folders:
        for path in [folder, *Path(folder).rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


class Install:
    """A copy of the fastrena package (no compiled kernels) in ``site``, an
    empty ``cache`` for NUMBA_CACHE_DIR and an empty ``home``."""

    def __init__(self, root):
        self.root = root
        self.site, self.cache, self.home = root / "site", root / "cache", root / "home"
        self.kernels_cache = self.site / "fastrena" / "_kernels" / "__pycache__"
        shutil.copytree(Path(fastrena.__file__).parent, self.site / "fastrena",
                        ignore=shutil.ignore_patterns("__pycache__"))
        self.cache.mkdir()
        self.home.mkdir()

    def env(self, cache_dir):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("NUMBA_CACHE", "XDG_")) and k != "PYTHONPATH"}
        env.update(HOME=str(self.home), PYTHONPATH=str(self.site),
                   PYTHONDONTWRITEBYTECODE="1",
                   NUMBA_NUM_THREADS=os.environ.get("NUMBA_NUM_THREADS", "1"))
        if cache_dir:
            env["NUMBA_CACHE_DIR"] = str(self.cache)
        return env

    def run(self, args, restricted=True, cwd=None, cache_dir=True):
        """``python args...`` on this copy; ``restricted``: with every
        folder of the copy read-only, as a user who cannot override that;
        ``cache_dir``: with NUMBA_CACHE_DIR set to ``cache``."""
        command = [sys.executable, *args]
        if restricted:
            read_only(self.site, self.cache, self.home)
            if os.geteuid() == 0:
                command = [sys.executable, "-c", DROP_OVERRIDES, *args]
        try:
            done = subprocess.run(command, env=self.env(cache_dir), cwd=cwd, capture_output=True,
                                  text=True, timeout=600)
        finally:
            if restricted:
                writable(self.site, self.cache, self.home)
        if done.returncode == 77 and restricted and os.geteuid() == 0:
            pytest.skip("cannot drop root's permission overrides here (prctl "
                        f"PR_CAPBSET_DROP: {done.stderr.strip()})")
        return done

    def fit(self, restricted=True, cache_dir=True):
        done = self.run(["-c", FIT], restricted, cache_dir=cache_dir)
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout.strip().splitlines()[-1])
        assert out["file"] == str(self.site / "fastrena" / "__init__.py")
        return out, done.stderr


@pytest.fixture(scope="module")
def install(tmp_path_factory):
    install = Install(tmp_path_factory.mktemp("read-only-install"))
    probe = install.run(["-c", f"open({str(install.cache / 'probe')!r}, 'w')"])
    if probe.returncode == 0:
        pytest.skip("a read-only folder accepts new files for this user: nothing to test")
    assert "PermissionError" in probe.stderr, probe.stderr
    return install


def expected_labels():
    X = np.random.default_rng(3).standard_normal((6, 300))
    return fastrena.ReNA(n_clusters=7).fit(X).labels_.tolist()


def test_no_writable_cache_compiles_with_one_warning(install):
    """NUMBA_CACHE_DIR, the package's __pycache__ and the home all read-only:
    the import used to raise ``RuntimeError: cannot cache function
    '_row_max_abs_tasks': no locator available``. Now the fit runs, gives
    the usual labels, and one warning names the folder tried and why (with
    NUMBA_CACHE_DIR set, it alone is the cache, as for numba)."""
    out, stderr = install.fit()
    assert out["labels"] == expected_labels()
    assert len(out["warnings"]) == 1, out["warnings"]
    category, message = out["warnings"][0]
    assert category == "CacheWarning"
    assert message == (
        "fastrena's compiled kernels cannot be cached: no folder is writable "
        f"(NUMBA_CACHE_DIR '{install.cache}': Permission denied); "
        "each new process compiles them again (a few seconds, about 20 s more for the "
        "\"ward\" linkage): set NUMBA_CACHE_DIR to a "
        "writable folder to keep them")
    activity = out["activity"]
    assert activity["compiled"] > 0 and activity["saved"] == activity["loaded"] == 0
    assert stderr == ""
    assert not install.kernels_cache.exists() and list(install.cache.iterdir()) == []


def test_the_command_line_without_writable_cache(install, volumes):
    """``fastrena parcellate`` used to print numba's 26-line traceback; now
    it writes its outputs, with the warning as one line on stderr."""
    folder = volumes[0]
    done = install.run(["-m", "fastrena.cli", "parcellate", "run1.nii.gz", "run2.nii",
                        "--mask", "mask.nii.gz", "-k", "4", "-o", "labels.nii.gz", "-q"],
                       cwd=folder)
    assert (done.returncode, done.stdout) == (0, ""), done.stderr
    assert done.stderr.startswith("fastrena parcellate: warning: fastrena's compiled kernels "
                                  "cannot be cached: no folder is writable (NUMBA_CACHE_DIR")
    assert done.stderr.endswith("set NUMBA_CACHE_DIR to a writable folder to keep them\n")
    assert done.stderr.count("\n") == 1
    assert (folder / "labels.nii.gz").is_file()


def test_a_read_only_compiled_cache_is_read(install):
    """Kernels compiled into the package's __pycache__ (as ``fastrena warm``
    does when an image is built), read-only now with nothing else writable:
    numba alone ignored them and compiled again. Now every kernel is loaded,
    nothing is compiled, nothing warns."""
    # Without NUMBA_CACHE_DIR, into the package's __pycache__.
    built, stderr = install.fit(restricted=False, cache_dir=False)
    assert built["activity"]["saved_to"] == [str(install.kernels_cache)], stderr
    assert built["warnings"] == []
    try:
        # NUMBA_CACHE_DIR unset: when set, it alone is the cache.
        out, stderr = install.fit(cache_dir=False)
    finally:
        shutil.rmtree(install.kernels_cache)
    assert out["labels"] == expected_labels()
    assert out["warnings"] == [] and stderr == ""
    activity = out["activity"]
    # Kernels called by kernels come inside their callers: fewer loads than compiles.
    assert activity["compiled"] == 0 and activity["loaded"] > 0
    assert activity["loaded_from"] == [str(install.kernels_cache)]


# --------------------------------------------------------------------------
# the cache object itself, in this process
# --------------------------------------------------------------------------
class FakeLayer:
    """A numba cache of one folder: ``entries`` to load, and what saving does."""

    def __init__(self, path, entries=(), load_error=None, save_error=None):
        self.cache_path = str(path)
        self.entries = dict(entries)
        self.load_error, self.save_error = load_error, save_error
        self.saved = []

    def load_overload(self, sig, target_context):
        if self.load_error is not None:
            raise self.load_error
        return self.entries.get(sig)

    def save_overload(self, sig, data):
        if self.save_error is not None:
            raise self.save_error
        self.saved.append(sig)

    def flush(self):
        pass


@pytest.fixture
def fresh_activity(monkeypatch):
    """The kernel caches' record of this process, empty for the test."""
    monkeypatch.setattr(caching, "_activity", caching._Activity())
    monkeypatch.setattr(caching, "_writable", {})


def test_loads_from_the_first_folder_that_holds_the_kernel(tmp_path, fresh_activity):
    """An unreadable or damaged folder is passed over (compiling is right;
    numba would fail the call), the next one that holds the kernel serves."""
    broken = FakeLayer(tmp_path / "a", load_error=EOFError("Ran out of input"))
    empty = FakeLayer(tmp_path / "b")
    holding = FakeLayer(tmp_path / "c", entries={"sig": "compiled"})
    cache = caching.KernelCache(None, [broken, empty, holding])
    assert cache.cache_path == str(tmp_path / "a")  # the first writable one
    assert cache.load_overload("sig", None) == "compiled"
    assert cache.load_overload("other", None) is None
    assert caching.activity()["loaded_from"] == [str(tmp_path / "c")]


def test_a_failed_save_warns_once_and_keeps_the_kernel(tmp_path, fresh_activity):
    """The disk fills up after the import: the kernel is still used (numba
    would raise from the first call), one warning names the folder and the
    cause, and nothing more is tried in that folder."""
    full = FakeLayer(tmp_path, save_error=OSError(errno.ENOSPC, "No space left on device"))
    cache = caching.KernelCache(None, [full])
    with pytest.warns(CacheWarning) as caught:
        cache.save_overload("sig", "compiled")
        cache.save_overload("other", "compiled")
        caching.KernelCache(None, [FakeLayer(tmp_path)]).save_overload("third", "compiled")
    assert [str(w.message) for w in caught] == [
        f"fastrena's compiled kernels cannot be cached: '{tmp_path}': No space left on "
        "device; each new process compiles them again (a few seconds, about 20 s more for "
        "the \"ward\" linkage): set NUMBA_CACHE_DIR "
        "to a writable folder to keep them"]
    assert cache.cache_path is None
    assert caching.activity()["compiled"] == 3 and caching.activity()["saved"] == 1


def test_other_libraries_kernels_keep_numbas_cache():
    """The swap applies to fastrena's modules only, and only while they are
    imported; numba's own method is back afterwards."""
    from numba.core.dispatcher import Dispatcher

    original = Dispatcher.__dict__["enable_caching"]
    with caching.kernel_caches():
        @njit(cache=True)
        def twice(x):
            return 2 * x

    assert type(twice._cache) is FunctionCache
    assert Dispatcher.__dict__["enable_caching"] is original
    kernel = fastrena._kernels.merges.nearest_neighbor_edges.dispatcher
    assert isinstance(kernel._cache, caching.KernelCache)


@pytest.mark.parametrize("before, after, code, out, err", [
    ({"compiled": 0, "saved": 0}, {"compiled": 40, "saved": 40, "saved_to": ["/c"]},
     0, "fastrena's kernels are compiled and cached in /c (1.5 s)\n", ""),
    ({"compiled": 0, "saved": 0}, {"compiled": 0, "saved": 0, "loaded_from": ["/ro/c"]},
     0, "fastrena's kernels were already compiled, in the cache in /ro/c (1.5 s)\n", ""),
    ({"compiled": 0, "saved": 0}, {"compiled": 40, "saved": 0,
                                   "not_saved": "no folder is writable (...)"},
     1, "", "fastrena warm: error: fastrena's kernels were compiled but cannot be cached: "
            "no folder is writable (...); set NUMBA_CACHE_DIR to a writable folder\n"),
])
def test_warm_says_what_it_did(monkeypatch, capsys, before, after, code, out, err):
    """``fastrena warm`` used to say "compiled" when it only loaded the
    cache; it fails when it could not cache what it compiled."""
    from fastrena import warmup
    from fastrena.cli import main

    snapshots = iter([{"loaded_from": [], "saved_to": [], "not_saved": None, **before},
                      {"loaded_from": [], "saved_to": [], "not_saved": None, **after}])
    monkeypatch.setattr(warmup, "cache_activity", lambda: next(snapshots))
    monkeypatch.setattr(warmup, "compile_kernels", lambda: 1.5)
    assert main(["warm"]) == code
    assert capsys.readouterr() == (out, err)


# --------------------------------------------------------------------------
# the line saying that numba compiles (a first call's seconds of silence)
# --------------------------------------------------------------------------
HEAD = ("[fastrena] compiling numba kernels (a few seconds; about 20 s more for a first "
        "\"ward\" fit)")


def test_a_compile_is_told_once_when_asked(tmp_path, fresh_activity, capsys):
    """A kernel no folder holds is about to compile: one line on stderr,
    naming the folder it goes to, once per process and only inside an
    enabled block; loads from a cache say nothing."""
    from fastrena._kernels.caching import compile_notice
    from fastrena._progress import fit_progress

    cache = caching.KernelCache(None, [FakeLayer(tmp_path, entries={"held": "compiled"})])
    with compile_notice(False):
        assert cache.load_overload("missing", None) is None
    assert capsys.readouterr() == ("", "")
    with compile_notice(True), compile_notice(False):  # an inner block leaves it on
        assert cache.load_overload("held", None) == "compiled"
        assert capsys.readouterr().err == ""
        assert cache.load_overload("missing", None) is None
        assert cache.load_overload("another", None) is None
    assert capsys.readouterr() == ("", f"{HEAD} for this machine, once: later processes load "
                                      f"them from '{tmp_path}'; `fastrena warm` compiles them "
                                      "ahead\n")
    # Once per process, with the command line's bars too.
    with fit_progress(True, 10, 2):
        assert cache.load_overload("a third", None) is None
    assert "[fastrena] compiling" not in capsys.readouterr().err


def test_the_notice_from_another_thread_clears_the_bar(fresh_activity, monkeypatch):
    """Kernels also compile on fastrena's threads: a compile there, while a
    fit with a progress bar asked, is told, on a line of its own (the bar
    cleared, then drawn again); with no writable folder the line says that
    each process compiles."""
    import io
    import threading

    from fastrena._progress import fit_progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    monkeypatch.setattr(sys, "stderr", stream)
    cache = caching.KernelCache(None, [])
    with fit_progress(True, 10, 2):
        worker = threading.Thread(target=cache.load_overload, args=("missing", None))
        worker.start()
        worker.join()
    told = f"{HEAD}: no folder can keep them, each process compiles them (see the CacheWarning)"
    lines = stream.getvalue().split("\n")
    assert [line.split("\r")[-1] for line in lines if told in line] == [told]


def test_a_closed_stderr_never_fails_the_compile(fresh_activity, monkeypatch):
    """Nowhere to say it (a closed stream, or none): the kernel still
    compiles, silently."""
    import io

    from fastrena._kernels.caching import compile_notice

    closed = io.StringIO()
    closed.close()
    for stream in (closed, None):
        monkeypatch.setattr(caching, "_activity", caching._Activity())
        monkeypatch.setattr(sys, "stderr", stream)
        with compile_notice(True):
            assert caching.KernelCache(None, []).load_overload("missing", None) is None


FIT_VERBOSE = """
import json, sys
import numpy as np
from fastrena import ReNA
X = np.random.default_rng(3).standard_normal((6, 300))
print(json.dumps(ReNA(n_clusters=7, verbose=int(sys.argv[1])).fit(X).labels_.tolist()))
"""


def test_a_verbose_fit_says_that_numba_compiles(tmp_path):
    """``ReNA(verbose=1)`` in a fresh environment (an empty NUMBA_CACHE_DIR)
    prints the line once on stderr (its log goes to stdout); the next
    process loads the kernels and prints none; ``verbose=0`` prints nothing
    while compiling."""
    def fit(cache, verbose):
        env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CACHE")}
        env["NUMBA_CACHE_DIR"] = str(cache)
        done = subprocess.run([sys.executable, "-c", FIT_VERBOSE, str(verbose)], env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout.strip().splitlines()[-1]) == expected_labels()
        return done.stderr

    told = fit(tmp_path / "cache", 1).splitlines()
    assert len(told) == 1 and told[0].startswith(f"{HEAD} for this machine, once: later "
                                                 f"processes load them from '{tmp_path}")
    assert fit(tmp_path / "cache", 1) == ""
    assert fit(tmp_path / "other", 0) == ""
