"""Ctrl-C during a numba kernel: its ``KeyboardInterrupt`` comes after the call.

Why this is needed. CPython runs a signal's Python handler in the main
thread, at the first bytecode it executes after the signal came. A numba
kernel runs no bytecode while it computes, but the wrapper numba compiles
around it does on the way out: boxing each returned array calls the Python
function ``numba.core.serialize._numba_unpickle`` (to get the ndarray type),
and the wrapper never checks whether that call failed. A SIGINT that came
while the kernel computed is therefore handled at that function's first
bytecode, and ``default_int_handler`` raises ``KeyboardInterrupt`` inside the
wrapper, which carries on as if nothing happened:

* a kernel returning one array happens to fail cleanly (the array is not
  made, the ``KeyboardInterrupt`` comes out);
* one returning an array and a number (``connected_components``) returns a
  tuple with the exception still set: ``SystemError: CPUDispatcher(...)
  returned a result with an exception set``;
* one returning two arrays (an edge list of ``_kernels.graph``) either
  does the same or, when the second ``_numba_unpickle`` call runs over
  the pending exception, returns a tuple whose first item is NULL and no
  exception: unpacking it is a segmentation fault.

(A reproduction: a jitted function returning two new arrays, called in a
loop while another process sends SIGINT every 3 ms, gives ``SystemError``
for about 90% of the interrupts; one returning a single array, none.)
The first call of a kernel in a process also runs Python code inside the
call (numba loads the kernel from its disk cache, or compiles it); what
follows covers it too.

What is done. While a kernel runs in the main thread, SIGINT's Python
handler is swapped for one that only records that the signal came; right
after the call the original handler is put back and, if the signal came,
called: from Python code, where its ``KeyboardInterrupt`` (or whatever it
does) is an ordinary exception. A signal pending before the call is handled
when the recorder is installed (``signal.signal`` runs pending handlers
first), also before the kernel starts. Other threads never run Python signal
handlers, so kernels called there (Dask's workers) are called directly, as
are kernels when SIGINT has no Python handler (``SIG_DFL``, ``SIG_IGN``).
The cost is about 2 us per kernel call (two ``sigaction`` system calls and
the wrapper); kernels and their results are untouched.

:func:`guard_module` applies this to every kernel that Python code gets from
``fastrena._kernels``; jitted code calling another kernel reads the module's
globals directly and still gets the numba dispatcher.

Other places drop the exception, in any Python program: a finalizer (a
``__del__`` method, such as nibabel's ``ArrayProxy.__del__`` when an image
is let go; a weakref callback), where Python prints "Exception ignored in
..." and carries on; and C code that calls Python code and clears whatever
it raised (NumPy's ``npy_ctypes_check`` when ``np.dtype`` is given a list,
as ``import nibabel`` does), where it vanishes silently. Either way the
program carries on as if Ctrl-C had not been pressed. Inside
:func:`interrupts_kept` (the command line runs in it) a SIGINT sets a flag
before its handler raises, so an interrupt that was dropped is raised again
at the next safe point: the start of the next kernel call in the main
thread, or the end of the block (and finalizers' reports of it are not
printed).
"""

import sys
import threading
import types
from contextlib import contextmanager

try:  # The C functions behind ``signal.signal``, without its enum wrapping
    # (which costs ~10x more than the system call).
    from _signal import SIG_IGN, SIGINT
    from _signal import getsignal as _get_handler
    from _signal import signal as _set_handler
except ImportError:  # pragma: no cover - other Python implementations
    from signal import SIG_IGN, SIGINT
    from signal import getsignal as _get_handler
    from signal import signal as _set_handler

_main_thread = threading.main_thread
_current_thread = threading.current_thread


class _Recorder:
    """A SIGINT handler that only records that the signal came."""

    __slots__ = ("came",)

    def __init__(self):
        self.came = False

    def __call__(self, signum, frame):
        self.came = True


def _restore(handler):
    try:
        _set_handler(SIGINT, handler)
    except BaseException:
        # The handler of another pending signal, run first, raised: the
        # SIGINT handler is not back yet. Put it back, then let that go.
        _set_handler(SIGINT, handler)
        raise


def call_deferring_sigint(kernel, args, kwargs):
    """``kernel(*args, **kwargs)``, with a SIGINT that comes meanwhile
    handled once the call has returned (or raised)."""
    if _current_thread() is not _main_thread() or not callable(_get_handler(SIGINT)):
        return kernel(*args, **kwargs)
    if _kept.interrupt:
        _raise_kept()
    recorder = _Recorder()
    # Runs the handler of a signal already pending, before the kernel.
    handler = _set_handler(SIGINT, recorder)
    try:
        return kernel(*args, **kwargs)
    finally:
        # Putting the handler back runs the recorder for a signal still
        # pending; then the signal, if it came, goes to the real handler.
        _restore(handler)
        if recorder.came and callable(handler):
            handler(SIGINT, sys._getframe())


#: Calls of a clean-up that raises KeyboardInterrupt itself before giving up
#: (a clean-up that keeps raising it would otherwise never end).
_CLEAN_UP_ATTEMPTS = 8


def finish_despite_sigint(clean_up, *args, **kwargs):
    """``clean_up(*args, **kwargs)`` carried to its end whatever Ctrl-C
    does, then any interrupt that came meanwhile raised: for removing
    temporary files, which an interrupt cut short would leave behind. A
    SIGINT is held until the clean-up has returned; a ``KeyboardInterrupt``
    it raises itself makes it run again, so it must be safe to call again
    after one (as ``shutil.rmtree(..., ignore_errors=True)`` is).

    Unlike :func:`call_deferring_sigint`, an interrupt already on its way
    (the clean-up runs while it unwinds the stack, or one kept by
    :func:`interrupts_kept`) does not stop it from starting."""
    interrupted = None
    handler = recorder = None
    if _current_thread() is _main_thread() and callable(_get_handler(SIGINT)):
        recorder = _Recorder()
        while handler is None:
            try:
                handler = _set_handler(SIGINT, recorder)
            except KeyboardInterrupt as exc:
                # A SIGINT pending when the recorder was put in went to the
                # real handler first; the recorder is not in yet: again.
                interrupted = exc
    try:
        for _ in range(_CLEAN_UP_ATTEMPTS):
            try:
                clean_up(*args, **kwargs)
                break
            except KeyboardInterrupt as exc:
                # Not a signal (the recorder takes those): the clean-up's
                # own, or one it kept from earlier. Finish, then raise it.
                interrupted = exc
    finally:
        if handler is not None:
            _restore(handler)
    if recorder is not None and recorder.came:
        handler(SIGINT, sys._getframe())
    if interrupted is not None:
        raise interrupted


def ignore_sigint(pending="raise"):
    """Ignore SIGINT from now on: for a program whose outcome is decided
    (its outputs committed, or removed after a failure), so that Ctrl-C can
    no longer change it, up to the process's exit included.

    Why not a Python handler: at exit, after the ``atexit`` functions,
    Python resets a SIGINT handled in Python to the default action (killing
    the process) and then tears down every module, which takes 0.45 s or
    more with numba, scipy, scikit-learn, matplotlib and nilearn loaded
    (mostly garbage collection); an ignored SIGINT stays ignored through
    it.

    Parameters
    ----------
    pending : {"raise", "drop"}
        What becomes of a SIGINT that came before this call and whose
        handler has not run yet: "raise" runs the handler (its
        ``KeyboardInterrupt`` comes out of this call, and SIGINT is not
        ignored: the interrupt came first); "drop" discards it.

    Returns
    -------
    tuple or None
        What :func:`restore_sigint` needs to put the handler back; None
        outside the main thread, where handlers cannot be changed (SIGINT
        is then left as it is).
    """
    if _current_thread() is not _main_thread():
        return None
    while True:
        try:
            # signal.signal runs the handlers of pending signals first; each
            # handled signal is gone, so this ends.
            return (_set_handler(SIGINT, SIG_IGN),)
        except KeyboardInterrupt:
            if pending == "raise":
                raise


def restore_sigint(previous):
    """Undo :func:`ignore_sigint` (``previous`` is what it returned)."""
    if previous is not None:
        _restore(previous[0])


class _Kept:
    """Whether a SIGINT came inside :func:`interrupts_kept` and may have
    been dropped since."""

    interrupt = False


_kept = _Kept()


def _raise_kept():
    _kept.interrupt = False
    raise KeyboardInterrupt


@contextmanager
def interrupts_kept():
    """Within the block, no SIGINT is lost: one whose ``KeyboardInterrupt``
    was dropped (see the module's docstring) is raised again at the next
    kernel call in the main thread, or when the block ends. For a program's
    main function: the SIGINT handler (in the main thread, if it is a
    Python callable) is wrapped, and ``sys.unraisablehook`` no longer
    reports a dropped ``KeyboardInterrupt`` (it still reports any other
    exception), for the whole process while the block runs."""
    handler = _get_handler(SIGINT) if _current_thread() is _main_thread() else None
    wrap = callable(handler)
    if wrap:
        def noting(signum, frame):
            _kept.interrupt = True  # before raising: the exception may be lost
            handler(signum, frame)

        _set_handler(SIGINT, noting)
    previous_hook = sys.unraisablehook

    def hook(unraisable):
        if issubclass(unraisable.exc_type, KeyboardInterrupt):
            _kept.interrupt = True
        else:
            previous_hook(unraisable)

    try:
        sys.unraisablehook = hook
        yield
        if _kept.interrupt:
            _raise_kept()
    finally:
        sys.unraisablehook = previous_hook
        try:
            if wrap:
                _restore(handler)
        finally:
            _kept.interrupt = False


def interrupt_behind(exc):
    """The ``KeyboardInterrupt`` that ``exc`` is or came of, or None:
    ``exc`` itself, its cause, or the exception being handled when it was
    raised, and so on down the chain (which may loop)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


@contextmanager
def interrupt_unmasked():
    """Within the block, an exception raised while a ``KeyboardInterrupt``
    unwound comes out as that ``KeyboardInterrupt``.

    For waits on Python's threading locks in the main thread (a Dask
    computation waits on its scheduler's queue): the interrupt is raised
    at whatever bytecode of ``threading.py`` runs when the signal comes.
    Landing inside ``Condition.wait`` after it released its lock, it
    makes the ``with`` block around the wait release that lock again, and
    ``RuntimeError: release unlocked lock`` comes out instead of the
    interrupt (seen once in 12 Ctrl-Cs of a Dask fit). Ctrl-C was pressed:
    it is what the caller must see."""
    try:
        yield
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        interrupt = interrupt_behind(exc)
        if interrupt is None:
            raise
        raise interrupt from None


class SigintDeferringKernel:
    """A numba kernel as Python code calls it: through
    :func:`call_deferring_sigint`. Its attributes are the dispatcher's."""

    __slots__ = ("dispatcher",)

    def __init__(self, dispatcher):
        self.dispatcher = dispatcher

    def __call__(self, *args, **kwargs):
        return call_deferring_sigint(self.dispatcher, args, kwargs)

    def __getattr__(self, name):
        return getattr(self.dispatcher, name)

    def __reduce__(self):
        return SigintDeferringKernel, (self.dispatcher,)

    def __repr__(self):
        return f"SigintDeferringKernel({self.dispatcher!r})"


class CompiledOnlyKernel(SigintDeferringKernel):
    """A kernel compiled without the wrapper that lets Python call it (see
    ``fastrena._kernels.compiling``), as Python code reads it: calling it
    raises a TypeError, where numba would crash the process."""

    __slots__ = ()

    def __call__(self, *args, **kwargs):
        raise TypeError(f"{self.dispatcher.py_func.__qualname__} is called by compiled kernels "
                        "only: it has no Python wrapper")

    def __reduce__(self):
        return CompiledOnlyKernel, (self.dispatcher,)


class _GuardedKernelModule(types.ModuleType):
    """A module whose numba dispatchers, read as attributes (``module.name``,
    ``from module import name``), come wrapped in a
    :class:`SigintDeferringKernel`; its globals, which jitted code reads,
    stay the dispatchers."""

    def __getattribute__(self, name):
        value = types.ModuleType.__getattribute__(self, name)
        if not isinstance(value, _dispatcher_type[0]):
            return value
        wrapper = _wrappers.get(value)
        if wrapper is None:
            kind = (CompiledOnlyKernel if value.targetoptions.get("no_cpython_wrapper")
                    else SigintDeferringKernel)
            wrapper = _wrappers[value] = kind(value)
        return wrapper

    def __setattr__(self, name, value):
        # A wrapper set back (as pytest's monkeypatch does) stores the
        # dispatcher, so that jitted code calling it can still be compiled.
        if isinstance(value, SigintDeferringKernel):
            value = value.dispatcher
        types.ModuleType.__setattr__(self, name, value)


#: The wrapper of each dispatcher read so far, made once.
_wrappers = {}

#: numba's dispatcher class, once a module is guarded: numba is imported
#: then, not with this module (the command line's parser uses it and must
#: start in a fraction of a second).
_dispatcher_type = [type(None)]


def guard_module(name):
    """Make Python code that reads a numba dispatcher from module ``name``
    get it wrapped in a :class:`SigintDeferringKernel`."""
    from numba.core.dispatcher import Dispatcher

    _dispatcher_type[0] = Dispatcher
    sys.modules[name].__class__ = _GuardedKernelModule
