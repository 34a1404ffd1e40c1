"""A pytest plugin (``-p nilearn_patched``) for running nilearn's own tests
with nilearn patched to use fastrena's ReNA (``fastrena.patch_nilearn``),
before any test module imports nilearn's ReNA. It counts the fits of
fastrena's ReNA and writes the count to the file named by
``FASTRENA_FIT_COUNT``, to prove the tests ran fastrena's class.

Everything happens in pytest's hooks, so importing this module (pytest's
doctest collection does) changes nothing."""

import os

_fits = [0]


def pytest_configure(config):
    import fastrena
    from fastrena.estimator import ReNA

    ward = os.environ.get("FASTRENA_PATCH_WARD") == "1"
    fastrena.patch_nilearn(ward=ward)
    fit = ReNA.fit

    def counting_fit(self, X, y=None):
        _fits[0] += not ward or self.linkage == "ward"
        return fit(self, X, y)

    ReNA.fit = counting_fit


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("FASTRENA_FIT_COUNT")
    if path:
        with open(path, "w") as f:
            f.write(str(_fits[0]))
