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

* a kernel returning one array returns NULL with the exception set (clean);
* one returning an array and a number (``connected_components``) returns a
  tuple with the exception still set: ``SystemError: CPUDispatcher(...)
  returned a result with an exception set``;
* one returning two arrays (``reduce_edges``) may return a tuple whose first
  item is NULL with no exception: unpacking it is a segmentation fault.

The first call of a kernel in a process runs more Python code inside the
call (loading it from numba's disk cache, or compiling it), some of it in
ctypes callbacks from LLVM, where an exception is printed and dropped.

What is done. While a kernel runs in the main thread, SIGINT's Python
handler is swapped for one that only records that the signal came; right
after the call the original handler is put back and, if the signal came,
called: from Python code, where its ``KeyboardInterrupt`` (or whatever it
does) is an ordinary exception. A signal pending before the call is handled
when the recorder is installed (``signal.signal`` runs pending handlers
first), also before the kernel starts. Other threads never run Python signal
handlers, so kernels called there (Dask's workers) are called directly, as
are kernels when SIGINT has no Python handler (``SIG_DFL``, ``SIG_IGN``).
The cost is two ``sigaction`` calls per kernel call (about 1-2 us); kernels
and their results are untouched.

:func:`guard_module` applies this to every kernel that Python code gets from
``fastrena._kernels``; jitted code calling another kernel reads the module's
globals directly and still gets the numba dispatcher.

A second place cannot take the exception: a finalizer (a ``__del__``
method, such as nibabel's ``ArrayProxy.__del__`` when an image is let go, a
weakref callback, a file closed by the garbage collector). Python prints a
``KeyboardInterrupt`` raised there as "Exception ignored in ..." and drops
it: the program carries on as if Ctrl-C had not been pressed. Inside
:func:`dropped_interrupts_raised` (the command line runs in it) such an
interrupt is kept, silently, and raised at the next safe point: the start
of the next kernel call in the main thread, or the end of the block.
"""

import sys
import threading
import types
from contextlib import contextmanager

from numba.core.dispatcher import Dispatcher

try:  # The C functions behind ``signal.signal``, without its enum wrapping
    # (which costs ~10x more than the system call).
    from _signal import SIGINT
    from _signal import getsignal as _get_handler
    from _signal import signal as _set_handler
except ImportError:  # pragma: no cover - other Python implementations
    from signal import SIGINT
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
    if _dropped.interrupt is not None:
        _raise_dropped()
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


class _Dropped:
    """The ``KeyboardInterrupt`` a finalizer dropped inside
    :func:`dropped_interrupts_raised` and not raised yet, if any."""

    interrupt = None


_dropped = _Dropped()


def _raise_dropped():
    interrupt, _dropped.interrupt = _dropped.interrupt, None
    raise KeyboardInterrupt from interrupt


@contextmanager
def dropped_interrupts_raised():
    """Within the block, a ``KeyboardInterrupt`` that Python would drop
    because a finalizer raised it (see the module's docstring) is kept, and
    raised at the next kernel call in the main thread or when the block
    ends; ``sys.unraisablehook`` sees every other such exception as before.
    For a program's main function: the hook is process-wide."""
    previous = sys.unraisablehook

    def hook(unraisable):
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            _dropped.interrupt = unraisable.exc_value
        else:
            previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
        if _dropped.interrupt is not None:
            _raise_dropped()
    finally:
        sys.unraisablehook = previous
        _dropped.interrupt = None


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


class _GuardedKernelModule(types.ModuleType):
    """A module whose numba dispatchers, read as attributes (``module.name``,
    ``from module import name``), come wrapped in a
    :class:`SigintDeferringKernel`."""

    def __getattribute__(self, name):
        value = types.ModuleType.__getattribute__(self, name)
        if not isinstance(value, Dispatcher):
            return value
        wrapper = _wrappers.get(value)
        if wrapper is None:
            wrapper = _wrappers[value] = SigintDeferringKernel(value)
        return wrapper


#: The wrapper of each dispatcher read so far, made once.
_wrappers = {}


def guard_module(name):
    """Make Python code that reads a numba dispatcher from module ``name``
    get it wrapped in a :class:`SigintDeferringKernel`."""
    sys.modules[name].__class__ = _GuardedKernelModule
