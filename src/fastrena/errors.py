"""The error fastrena raises for what the user gave, and how it is told.

:class:`InputError` is a ``ValueError`` whose message names the file or
value and says why it cannot be used; the command line prints it as one
line (:func:`first_line` of it). Every other module imports it from here.
:func:`warn_user` words a warning at the user's own line.
"""

import os
import sys
import warnings

__all__ = ["InputError", "MissingDependencyError", "first_line", "warn_user"]

#: The packages whose frames a warning passes over to reach the user's
#: line: fastrena, and scikit-learn (``fit_transform``, ``fit_predict``,
#: ``set_output``'s wrappers, pipelines and searches call fastrena) and
#: joblib (``memory=`` caches, ``n_jobs`` searches) when imported.
_PASSED_OVER = ("fastrena", "sklearn", "joblib")


def _folders_passed_over():
    return tuple(os.path.dirname(os.path.abspath(module.__file__)) + os.sep
                 for module in map(sys.modules.get, _PASSED_OVER)
                 if getattr(module, "__file__", None))


class InputError(ValueError):
    """A file or value given by the user cannot be used; the message names
    it and says why. The command line prints it as one line."""


class MissingDependencyError(ImportError):
    """An optional dependency (an extra of fastrena) is not installed; the
    message says what to install. The command line prints it as one line,
    whereas any other ImportError is a bug and keeps its traceback."""


def first_line(exc):
    """The first line of an exception's message (its type's name if empty)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def warn_user(message, category=UserWarning):
    """``warnings.warn(message, category)`` attributed to the first frame
    outside fastrena, scikit-learn and joblib: the user's line, whichever
    way it came (``fit``, ``fit_transform``, a ``Pipeline``, a search; a
    fixed ``stacklevel`` named scikit-learn's ``base.py`` through
    ``fit_transform``)."""
    folders = _folders_passed_over()
    frame = sys._getframe(1)
    level = 2
    while frame is not None and frame.f_code.co_filename.startswith(folders):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level - 1 if frame is None else level)
