"""The words of fastrena's parameter vocabulary, without scikit-learn.

Which values a count, a fraction or a choice accepts, and how an error
says so. :mod:`fastrena._validation` hands them to scikit-learn's
``validate_params`` (through its constraint classes); the command line
checks its arguments with them directly, so that ``fastrena --help`` and a
bad argument are answered without importing scikit-learn (about a second).
"""

from numbers import Integral, Real

__all__ = ["LINKAGES", "Count", "Fraction", "OneOf"]

#: Ways to measure the distance between neighbouring clusters (see
#: :func:`fastrena.agglomeration.agglomerate`).
LINKAGES = ("nilearn", "ward")


class Count:
    """An integer (numpy's too, not a bool) >= ``minimum``."""

    def __init__(self, minimum):
        self.minimum = minimum

    def accepts(self, value):
        return (isinstance(value, Integral) and not isinstance(value, bool)
                and type(value).__name__ != "bool_" and value >= self.minimum)

    def __str__(self):
        return f"an integer >= {self.minimum}"


class Fraction:
    """A real number in [0, 1) (NaN is not)."""

    def accepts(self, value):
        return isinstance(value, Real) and 0 <= value < 1

    def __str__(self):
        return "a number in [0, 1)"


class OneOf:
    """One of the given strings."""

    def __init__(self, options):
        self.options = frozenset(options)

    def accepts(self, value):
        return isinstance(value, str) and value in self.options

    def __str__(self):
        return "one of " + ", ".join(repr(option) for option in sorted(self.options))
