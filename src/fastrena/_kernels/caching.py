"""Where the compiled kernels are kept, when no folder takes them, and when
the only cache there is cannot be written to.

numba's ``cache=True`` chooses one folder per kernel when the kernel is
decorated (so, when fastrena is imported): ``NUMBA_CACHE_DIR`` if set, else
``__pycache__`` beside the source, else the per-user cache folder
(``~/.cache/numba``): the first that exists or can be made *and* takes a
new file. Two deployments break that:

* nothing is writable (a read-only container image run by a non-root user,
  a module tree on an HPC cluster, with a read-only ``NUMBA_CACHE_DIR`` and
  home): numba raises ``RuntimeError: cannot cache function ...: no
  locator available`` from the decorator, and ``import fastrena`` fails;
* the kernels were compiled into the package's own ``__pycache__`` when
  the image was built (``fastrena warm``), and that folder is read-only
  now: numba never reads it, since it only considers writable folders, and
  every process compiles again.

So fastrena's kernels get a :class:`KernelCache` instead of numba's own
cache object. ``NUMBA_CACHE_DIR``, when set, is the cache, as for numba
(otherwise ``fastrena warm`` into it would load kernels found elsewhere and
leave it empty); else it reads a kernel from the first of the other two
folders that holds it, writable or not (an entry is used only when numba's
own checks
pass: same source, same bytecode, same numba, same CPU), and saves what it
compiles into the first writable one, as numba would. When none is
writable, or saving fails (a full disk), the kernel is used uncached, and
one :class:`CacheWarning` per process says which folders
were tried and that ``NUMBA_CACHE_DIR`` can name one.

The cache objects are numba's own (``numba.core.caching``), each pinned to
one folder; only the choice among them is fastrena's. The decorators stay
``njit(cache=True)``: :func:`kernel_caches` swaps the cache of every
dispatcher of fastrena's modules that numba makes while the kernel modules
are imported.
"""

import inspect
import os
import sys
import tempfile
import threading
import warnings
from contextlib import contextmanager

from numba.core import caching, config
from numba.core.caching import CompileResultCacheImpl, FunctionCache, _Cache
from numba.core.dispatcher import Dispatcher

__all__ = ["CacheWarning", "KernelCache", "activity", "compile_notice", "kernel_caches"]


class CacheWarning(UserWarning):
    """numba cannot keep fastrena's compiled kernels (no writable cache
    folder, or a full disk): each process compiles them again. Said once
    per process; the message names the folders tried. Public as
    ``fastrena.warmup.CacheWarning``."""


def _pinned_cache_class(locator_class, where):
    """A numba ``FunctionCache`` always in the folder ``locator_class``
    names, whether or not it can be written to: numba's locators return
    None for a folder they cannot write to, so that a read-only cache is
    never even read. ``where(cache_path)`` names the folder in messages."""

    class Locator(locator_class):
        @classmethod
        def from_function(cls, py_func, py_file):
            return cls(py_func, py_file)

    class Impl(CompileResultCacheImpl):
        _locator_classes = [Locator]

    class PinnedCache(FunctionCache):
        _impl_class = Impl
        describe = staticmethod(where)

    PinnedCache.__name__ = PinnedCache.__qualname__ = f"PinnedCache[{locator_class.__name__}]"
    return PinnedCache


def _folder_classes():
    """numba's three folders for a function of a source file, in numba's
    order: NUMBA_CACHE_DIR's, the source's ``__pycache__``, the per-user
    one. Empty if this numba lacks one of them (numba's own choice is then
    used)."""
    classes = []
    # Messages name the folder the user knows, not numba's subfolder in it
    # (the source folder's name and a hash).
    for name, where in (
            ("UserProvidedCacheLocator",
             lambda path: f"NUMBA_CACHE_DIR '{os.path.dirname(path)}'"),
            ("InTreeCacheLocator", lambda path: f"'{path}'"),
            ("UserWideCacheLocator",
             lambda path: f"the per-user cache '{os.path.dirname(path)}'")):
        # numba before 0.61 named its locators with a leading underscore.
        locator = getattr(caching, name, None) or getattr(caching, "_" + name, None)
        if locator is None:
            return ()
        classes.append(_pinned_cache_class(locator, where))
    return tuple(classes)


_FOLDERS = _folder_classes()

#: Whether each folder takes new files: (True, None) or (False, the reason).
#: Asked once per folder and process (all the kernels of a source folder
#: share their cache folder).
_writable = {}
_lock = threading.Lock()


def _user_chose_locators():
    return bool(getattr(config, "CACHE_LOCATOR_CLASSES", None))


def _accepts_files(folder):
    """Whether ``folder`` exists or can be made, and takes a new file (tried
    for real, as numba does: permissions alone do not tell for root or on a
    read-only file system)."""
    with _lock:
        known = _writable.get(folder)
        if known is None:
            try:
                os.makedirs(folder, exist_ok=True)
                tempfile.TemporaryFile(dir=folder).close()
                known = (True, None)
            except OSError as exc:
                known = (False, exc.strerror or str(exc))
            _writable[folder] = known
        return known


class _Activity:
    """What the kernel caches of this process have done so far."""

    def __init__(self):
        self.loaded = 0
        self.compiled = 0
        self.saved = 0
        self.loaded_from = set()
        self.saved_to = set()
        self.not_saved = None  # why the compiled kernels are not kept, once known
        self.warned = False
        self.compile_told = False  # whether a compilation was announced (_compiling)


_activity = _Activity()


def activity():
    """A snapshot of what fastrena's kernel caches did in this process:
    a dict with the numbers of kernels ``loaded`` from a cache,
    ``compiled``, and ``saved``; the folders ``loaded_from`` and
    ``saved_to``; and ``not_saved``, why compiled kernels could not be
    kept (None if they could)."""
    with _lock:
        return {"loaded": _activity.loaded, "compiled": _activity.compiled,
                "saved": _activity.saved, "loaded_from": sorted(_activity.loaded_from),
                "saved_to": sorted(_activity.saved_to), "not_saved": _activity.not_saved}


def _cannot_save(reason):
    """Record why compiled kernels are not kept, and say it once per process."""
    with _lock:
        if _activity.not_saved is None:
            _activity.not_saved = reason
        if _activity.warned:
            return
        _activity.warned = True
    # Raised from numba's compilation, deep in the first call of a kernel:
    # the location would say nothing, the message says it all.
    warnings.warn(f"fastrena's compiled kernels cannot be cached: {reason}; each new process "
                  "compiles them again (a few seconds, about 20 s more for the \"ward\" linkage): "
                  "set NUMBA_CACHE_DIR to a writable folder to keep them", CacheWarning,
                  stacklevel=2)


# How many calls under way asked to be told when numba compiles (see
# compile_notice): for the whole process, since kernels also compile on the
# threads of fastrena._kernels.threads, which a context variable set by the
# caller would not reach. Guarded by _lock.
_asking = 0


@contextmanager
def compile_notice(enabled):
    """Within the block, when ``enabled``, the first compilation of one of
    fastrena's kernels in this process, on any thread, prints one line on
    stderr: what is compiling, where it is kept, how to compile ahead (a
    first call may wait on numba for seconds, about 20 more for a first
    ``"ward"`` fit, with nothing else to show). Fits enable it with
    ``verbose``, the command line with its progress bars. Not enabled, the
    block changes nothing."""
    global _asking
    if not enabled:
        yield
        return
    with _lock:
        _asking += 1
    try:
        yield
    finally:
        with _lock:
            _asking -= 1


def _compiling(folder):
    """A kernel none of the caches holds is about to be compiled (into
    ``folder``; None: none takes it): say so if a call under way asked
    (:func:`compile_notice`), the first time in the process."""
    with _lock:
        if _asking == 0 or _activity.compile_told:
            return
        _activity.compile_told = True
    head = ("[fastrena] compiling numba kernels (a few seconds; about 20 s more for a first "
            "\"ward\" fit)")
    if folder:
        line = (f"{head} for this machine, once: later processes load them from '{folder}'; "
                "`fastrena warm` compiles them ahead")
    else:
        line = f"{head}: no folder can keep them, each process compiles them (see the CacheWarning)"
    stream = sys.stderr
    if stream is None:  # pythonw, a daemon: nowhere to say it
        return
    try:
        # tqdm's write clears a progress bar drawn there, prints the line
        # and draws the bar again (tqdm is imported only now: once, if ever).
        from tqdm import tqdm

        tqdm.write(line, file=stream)
        stream.flush()
    except (OSError, ValueError):
        # A closed or broken stderr: the notice must never fail the fit
        # that numba is compiling for.
        pass


class KernelCache(_Cache):
    """numba's cache interface over several folders: a kernel is loaded
    from the first that holds it, and saved to the first that is writable
    (if any)."""

    def __init__(self, py_func, layers):
        #: numba caches, one per folder, in the order they are read.
        self._layers = layers
        self._enabled = True
        self._target = None
        for layer in layers:
            if _accepts_files(layer.cache_path)[0]:
                self._target = layer
                break

    @classmethod
    def of(cls, py_func):
        """The cache of the kernel ``py_func``."""
        if _user_chose_locators() or not _FOLDERS \
                or not os.path.isfile(inspect.getfile(py_func)):
            # Folders chosen by the user (NUMBA_CACHE_LOCATOR_CLASSES), a
            # numba whose folders are not the three above, or a source that
            # is no file (fastrena run from a zip): numba's choice, unless
            # it finds none.
            try:
                return cls(py_func, [FunctionCache(py_func)])
            except RuntimeError:  # "cannot cache function ...: no locator available"
                return cls(py_func, [])
        # NUMBA_CACHE_DIR, when set, is the cache (numba's rule): a kernel
        # found elsewhere would leave it unfilled (fastrena warm into an
        # image's cache folder, with a __pycache__ already holding them).
        layers, paths = [], set()
        for cache_class in _FOLDERS[:1] if config.CACHE_DIR else _FOLDERS[1:]:
            layer = cache_class(py_func)
            if layer.cache_path not in paths:  # NUMBA_CACHE_DIR may be the per-user folder
                paths.add(layer.cache_path)
                layers.append(layer)
        return cls(py_func, layers)

    @property
    def cache_path(self):
        """The folder new compilations are saved to (None: none is writable)."""
        return None if self._target is None else self._target.cache_path

    def load_overload(self, sig, target_context):
        if not self._enabled:
            return None
        for layer in self._layers:
            try:
                data = layer.load_overload(sig, target_context)
            except Exception:
                # An unreadable folder or file (another user's cache, a
                # damaged or truncated entry): compiling again is right,
                # where numba would fail the call.
                continue
            if data is not None:
                with _lock:
                    _activity.loaded += 1
                    _activity.loaded_from.add(layer.cache_path)
                return data
        # numba compiles the kernel next.
        _compiling(self.cache_path)
        return None

    def save_overload(self, sig, data):
        if not self._enabled:
            return
        with _lock:
            _activity.compiled += 1
        if self._target is None:
            _cannot_save(self._why_no_folder())
            return
        try:
            self._target.save_overload(sig, data)
        except OSError as exc:
            # The disk filled up or the folder turned read-only since the
            # import: keep the kernel compiled in memory, save no more.
            where = _describe(self._target)
            self._target = None
            _cannot_save(f"{where}: {exc.strerror or exc}")
            return
        with _lock:
            _activity.saved += 1
            _activity.saved_to.add(self._target.cache_path)

    def _why_no_folder(self):
        tried = []
        if not config.CACHE_DIR and not _user_chose_locators():
            tried.append("NUMBA_CACHE_DIR is not set")
        for layer in self._layers:
            reason = _writable.get(layer.cache_path, (False, "not writable"))[1]
            tried.append(f"{_describe(layer)}: {reason}")
        return "no folder is writable (" + "; ".join(tried) + ")" if tried else \
            "numba finds no folder for them"

    def enable(self):
        self._enabled = True

    def disable(self):
        self._enabled = False

    def flush(self):
        if self._target is not None:
            self._target.flush()


def _describe(layer):
    """The folder of ``layer`` (a numba cache) as messages name it."""
    describe = getattr(layer, "describe", None)
    return describe(layer.cache_path) if describe else f"'{layer.cache_path}'"


@contextmanager
def kernel_caches(package=__name__.split(".")[0]):
    """Within the block, numba gives every dispatcher of ``package``'s
    modules decorated with ``cache=True`` a :class:`KernelCache`; others
    (another library's, decorated meanwhile in another thread) get numba's
    own. For the import of the kernel modules: the decorators run then."""
    original = Dispatcher.__dict__["enable_caching"]
    prefix = package + "."

    def enable_caching(dispatcher):
        if getattr(dispatcher.py_func, "__module__", "").startswith(prefix):
            dispatcher._cache = KernelCache.of(dispatcher.py_func)
        else:
            original(dispatcher)

    Dispatcher.enable_caching = enable_caching
    try:
        yield
    finally:
        Dispatcher.enable_caching = original
