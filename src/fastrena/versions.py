"""What to paste into a bug report: fastrena's version, its dependencies',
and how this machine runs its kernels (:func:`show_versions`).

Versions are read from the installed distributions' metadata, so that a
dependency that cannot be imported (or is slow to) is still named.
"""

import os
import platform
import sys
from importlib import metadata
from typing import TextIO

from . import __version__

__all__ = ["show_versions", "system_info"]

#: Distributions reported, by their names on PyPI: fastrena's required
#: dependencies, then the optional ones users meet most (nilearn, Dask).
DEPENDENCIES = ("numba", "llvmlite", "numpy", "scipy", "scikit-learn", "joblib", "nibabel",
                "nilearn", "dask")

NOT_INSTALLED = "not installed"


def _installed_version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return NOT_INSTALLED


def _kernel_threads():
    import numba

    try:
        # Set only once a parallel numba kernel ran; fastrena's kernels run
        # on its own threads (fastrena._kernels.threads), so it may never be.
        layer = numba.threading_layer()
    except ValueError:
        layer = f"not started (configured: {numba.config.THREADING_LAYER})"
    return {"numba threading layer": layer,
            "threads (numba.get_num_threads)": str(numba.get_num_threads())}


def _kernel_cache():
    # Imported here: warmup loads the estimator and numba, which the
    # versions alone do not need.
    from .warmup import cache_dir

    folder = cache_dir()
    return folder if folder is not None else "none writable (kernels compile in each process)"


def _cpu():
    import llvmlite.binding

    return {"machine": platform.machine(),
            "CPU (LLVM's name)": llvmlite.binding.get_host_cpu_name(),
            "logical CPUs": str(os.cpu_count())}


def system_info() -> dict[str, dict[str, str]]:
    """What :func:`show_versions` prints, as a dict of sections, each a dict
    of names to strings.

    Returns
    -------
    dict
        ``"System"`` (Python, platform, CPU), ``"Dependencies"`` (fastrena
        and each of :data:`DEPENDENCIES`: a version or ``"not installed"``)
        and ``"Kernels"`` (numba's threading layer, the thread count and
        the folder where new compiled kernels are saved).
    """
    system = {"python": sys.version.replace("\n", " "), "executable": sys.executable,
              "platform": platform.platform()}
    dependencies = {"fastrena": __version__}
    dependencies.update((name, _installed_version(name)) for name in DEPENDENCIES)
    kernels = {}
    if dependencies["numba"] != NOT_INSTALLED:
        system.update(_cpu())
        kernels.update(_kernel_threads())
        kernels["kernel cache folder"] = _kernel_cache()
    return {"System": system, "Dependencies": dependencies, "Kernels": kernels}


def show_versions(file: TextIO | None = None) -> None:
    """Print the versions of fastrena and its dependencies, the machine and
    how fastrena's kernels run on it, for a bug report.

    Parameters
    ----------
    file : file-like, optional
        Where to print (``sys.stdout`` by default).

    Examples
    --------
    >>> import fastrena
    >>> fastrena.show_versions()  # doctest: +SKIP
    """
    file = sys.stdout if file is None else file
    for section, entries in system_info().items():
        print(f"\n{section}:", file=file)
        width = max(map(len, entries), default=0)
        for name, value in entries.items():
            print(f"{name:>{width}}: {value}", file=file)
