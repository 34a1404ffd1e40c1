"""The error fastrena raises for what the user gave, and how it is told.

:class:`InputError` is a ``ValueError`` whose message names the file or
value and says why it cannot be used; the command line prints it as one
line (:func:`first_line` of it). Every other module imports it from here.
"""

__all__ = ["InputError", "MissingDependencyError", "first_line"]


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
