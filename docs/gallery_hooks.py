"""sphinx-gallery's hook around each example (docs/conf.py): a warning the
example raises (NumPy's, fastrena's, nilearn's deprecations) is an error,
as tests/test_readme.py treats the blocks of the README and of the pages,
so that no example shows users a warning. Sphinx's own filters come back
after each example.

A module of its own, named in conf.py by a string, so that Sphinx can
cache the configuration (it cannot pickle a function defined in conf.py).
"""

import warnings

_saved_filters = []


def escalate_warnings(gallery_conf, fname, when):
    if when == "before":
        _saved_filters.append(warnings.filters[:])
        warnings.simplefilter("error")
        # Deprecations inside the libraries the examples call, not in the
        # examples' code, are those libraries' to fix.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="(?!fastrena)")
    elif _saved_filters:
        warnings.filters[:] = _saved_filters.pop()
