"""What the distribution promises: one version (git tags through
setuptools-scm, read back by ``fastrena.__version__``), the annotations a
type checker reads (``py.typed``), ``fastrena.show_versions()`` for bug
reports, and the citation, changelog and classifiers beside them."""

import importlib
import inspect
import io
import os
import shutil
import subprocess
import sys
import typing
from contextlib import redirect_stdout
from importlib import metadata
from pathlib import Path

import numpy.typing
import pytest

import fastrena
from fastrena import versions, warmup
from fastrena.estimator import ReNA
from fastrena.report import Report

# Python 3.11's; on 3.10 this file skips.
tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


# --------------------------------------------------------------------------
# the version
# --------------------------------------------------------------------------
def test_version_is_the_installed_distributions():
    try:
        installed = metadata.version("fastrena")
    except metadata.PackageNotFoundError:
        assert fastrena.__version__ == "0+unknown"
    else:
        assert fastrena.__version__ == installed


def _import_fastrena_with(fake_version):
    """fastrena.__version__ in a fresh process whose metadata says
    ``fake_version`` for fastrena (None: fastrena is not installed)."""
    code = f"""
from importlib import metadata
real = metadata.version
def version(name):
    if name != "fastrena":
        return real(name)
    if {fake_version!r} is None:
        raise metadata.PackageNotFoundError(name)
    return {fake_version!r}
metadata.version = version
import fastrena
print(fastrena.__version__)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    return done.stdout.strip()


def test_version_comes_from_the_metadata_not_from_the_source():
    # A number written in the source would not follow a new tag.
    assert _import_fastrena_with("7.8.9.dev3+gabcdef") == "7.8.9.dev3+gabcdef"
    assert _import_fastrena_with(None) == "0+unknown"


def test_the_command_line_reports_the_same_version():
    from fastrena.cli import main

    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["--version"]) == 0
    assert out.getvalue().strip() == f"fastrena {fastrena.__version__}"


def test_pyproject_takes_the_version_from_git():
    assert "version" not in PYPROJECT["project"]
    assert "version" in PYPROJECT["project"]["dynamic"]
    assert any(r.startswith("setuptools-scm") for r in PYPROJECT["build-system"]["requires"])


def _scm_version(folder):
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(folder.parent)}
    done = subprocess.run([sys.executable, "-m", "setuptools_scm"], cwd=folder, env=env,
                          capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


def _git(folder, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=folder,
                   check=True, capture_output=True)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_setuptools_scm_versions_of_an_archive_a_clone_and_a_tag(tmp_path):
    pytest.importorskip("setuptools_scm")
    folder = tmp_path / "fastrena"
    folder.mkdir()
    shutil.copy(ROOT / "pyproject.toml", folder)
    # An archive (no git at all): the fallback version.
    assert _scm_version(folder) == PYPROJECT["tool"]["setuptools_scm"]["fallback_version"]
    # A clone before the first tag: a development version after the fallback.
    _git(folder, "init", "-q")
    _git(folder, "add", "pyproject.toml")
    _git(folder, "commit", "-q", "-m", "first")
    untagged = _scm_version(folder)
    assert ".dev1+g" in untagged, untagged
    # A release: the tag's number exactly.
    _git(folder, "tag", "v1.2.3")
    assert _scm_version(folder) == "1.2.3"


# --------------------------------------------------------------------------
# py.typed and the annotations
# --------------------------------------------------------------------------
def test_py_typed_ships_with_the_package():
    assert (ROOT / "src" / "fastrena" / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["fastrena"]
    assert "Typing :: Typed" in PYPROJECT["project"]["classifiers"]


#: The modules whose public functions are annotated too: the I/O helpers,
#: the metrics, the pictures, Dask and the warm-up (issue 29).
ANNOTATED_MODULES = ("io", "metrics", "plotting", "dask", "warmup")

#: The classes a fit hands out, whose public methods and properties are
#: annotated too: the layouts (``ReNA.layout_``; ``Layout`` declares no
#: method of its own), the merge tree (``ReNA.tree_``) and the graph
#: (``layout_.graph``).
ANNOTATED_CLASSES = ("layouts.Layout", "layouts.VolumeLayout", "layouts.SurfaceLayout",
                     "layouts.GraphLayout", "grayordinates.GrayordinateLayout",
                     "tree.MergeTree", "graphs.FeatureGraph")


def _methods(cls, prefix):
    for name, member in vars(cls).items():
        if isinstance(member, (classmethod, staticmethod)):
            member = member.__func__
        elif isinstance(member, property):
            member = member.fget
        if inspect.isfunction(member) and (not name.startswith("_") or name == "__init__"):
            yield f"{prefix}.{name}", member


def _public_callables():
    for name in fastrena.__all__:
        value = getattr(fastrena, name)
        if inspect.isfunction(value):
            yield name, value
    yield from _methods(ReNA, "ReNA")
    for module_name in ANNOTATED_MODULES:
        module = importlib.import_module(f"fastrena.{module_name}")
        for name in module.__all__:
            value = getattr(module, name)
            if inspect.isfunction(value):
                yield f"{module_name}.{name}", value
    yield from _methods(importlib.import_module("fastrena.io").Parcellation, "io.Parcellation")
    for qualified in ANNOTATED_CLASSES:
        module_name, class_name = qualified.split(".")
        cls = getattr(importlib.import_module(f"fastrena.{module_name}"), class_name)
        yield from _methods(cls, qualified)


def _type_checking_names():
    """The names annotations import only for type checkers (TYPE_CHECKING)."""
    from distributed import Client
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from nibabel import Nifti1Image
    from nibabel.cifti2 import Axis, BrainModelAxis, Cifti2Image, ParcelsAxis
    from nibabel.filebasedimages import FileBasedImage
    from nibabel.gifti import GiftiImage
    from nibabel.spatialimages import SpatialImage
    from nilearn.surface import SurfaceImage
    from pandas import DataFrame
    from sklearn.base import BaseEstimator

    from fastrena.graphs import FeatureGraph
    from fastrena.io import Parcellation
    from fastrena.layouts import Layout

    return {"ArrayLike": numpy.typing.ArrayLike, "DTypeLike": numpy.typing.DTypeLike,
            "NDArray": numpy.typing.NDArray, "Axis": Axis, "BrainModelAxis": BrainModelAxis,
            "SurfaceImage": SurfaceImage,
            "Report": Report, "Client": Client, "Figure": Figure,
            "FigureCanvasAgg": FigureCanvasAgg, "Nifti1Image": Nifti1Image,
            "Cifti2Image": Cifti2Image, "ParcelsAxis": ParcelsAxis,
            "FileBasedImage": FileBasedImage, "GiftiImage": GiftiImage,
            "SpatialImage": SpatialImage, "DataFrame": DataFrame,
            "BaseEstimator": BaseEstimator, "FeatureGraph": FeatureGraph,
            "Parcellation": Parcellation, "Layout": Layout}


def _annotated(function):
    """The function whose annotations ``function`` shows: itself, or for
    the pictures of fastrena.plotting the drawing of fastrena._pictures
    they show through pyplot (its annotations name _pictures' names)."""
    from fastrena import _pictures

    if function.__module__ == "fastrena.plotting" and hasattr(_pictures, function.__name__):
        return getattr(_pictures, function.__name__)
    return inspect.unwrap(function)


def test_the_public_api_is_annotated_and_its_annotations_resolve():
    names = _type_checking_names()
    missing, checked = [], set()
    for name, function in _public_callables():
        signature = inspect.signature(inspect.unwrap(function))
        params = [p for p in signature.parameters.values() if p.name not in ("self", "cls")]
        missing += [f"{name}({p.name})" for p in params if p.annotation is p.empty]
        if signature.return_annotation is signature.empty:
            missing.append(f"{name} -> ?")
        # A misspelt or unimported name fails here, as it would in mypy.
        typing.get_type_hints(_annotated(function), localns=names)
        checked.add(name)
    assert missing == []
    assert len(checked) >= 130
    for module_name in ANNOTATED_MODULES:
        assert any(name.startswith(f"{module_name}.") for name in checked), module_name
    # Each class's constructor (its dataclass fields), methods and properties.
    for qualified in ANNOTATED_CLASSES[1:]:
        assert f"{qualified}.__init__" in checked, qualified
        assert len([n for n in checked if n.startswith(f"{qualified}.")]) >= 3, qualified
    for name in ("VolumeLayout.read", "SurfaceLayout.to_gifti", "GraphLayout.require_images",
                 "GrayordinateLayout.to_parcels", "MergeTree.linkage_matrix",
                 "FeatureGraph.to_adjacency", "SurfaceLayout.graph"):
        assert any(n.endswith(f".{name}") for n in checked), name


# --------------------------------------------------------------------------
# show_versions
# --------------------------------------------------------------------------
def test_show_versions_names_every_dependency_and_the_kernels_setup():
    out = io.StringIO()
    fastrena.show_versions(file=out)
    lines = {line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip()
             for line in out.getvalue().splitlines() if ":" in line}
    assert lines["fastrena"] == fastrena.__version__
    for name in ("numba", "numpy", "scipy", "scikit-learn", "nilearn", "nibabel", "dask"):
        try:
            expected = metadata.version(name)
        except metadata.PackageNotFoundError:
            expected = "not installed"
        assert lines[name] == expected, name
    assert lines["kernel cache folder"] == str(warmup.cache_dir())
    assert lines["logical CPUs"] == str(os.cpu_count())
    assert lines["CPU (LLVM's name)"] and lines["numba threading layer"]
    assert lines["python"].startswith(".".join(map(str, sys.version_info[:3])))


def test_show_versions_says_not_installed(monkeypatch):
    monkeypatch.setattr(versions, "DEPENDENCIES", (*versions.DEPENDENCIES, "no-such-dist-xyz"))
    info = versions.system_info()
    assert info["Dependencies"]["no-such-dist-xyz"] == "not installed"


def test_show_versions_prints_to_stdout_by_default(capsys):
    fastrena.show_versions()
    assert f"fastrena: {fastrena.__version__}" in capsys.readouterr().out


# --------------------------------------------------------------------------
# the files beside the code
# --------------------------------------------------------------------------
def test_python_classifiers_match_requires_python():
    from packaging.specifiers import SpecifierSet

    required = SpecifierSet(PYPROJECT["project"]["requires-python"])
    listed = [c.rsplit(" :: ", 1)[1] for c in PYPROJECT["project"]["classifiers"]
              if c.startswith("Programming Language :: Python :: 3.")]
    assert listed and all(f"{v}.0" in required for v in listed)
    # The oldest Python allowed is listed, and the list has no gap.
    minors = sorted(int(v.split(".")[1]) for v in listed)
    assert f"3.{minors[0] - 1}.0" not in required
    assert minors == list(range(minors[0], minors[-1] + 1))


def test_no_license_classifier_beside_the_license_expression():
    # PEP 639: setuptools refuses to build with both.
    assert isinstance(PYPROJECT["project"]["license"], str)
    assert not [c for c in PYPROJECT["project"]["classifiers"] if c.startswith("License ::")]


def test_no_invented_urls():
    for url in PYPROJECT["project"].get("urls", {}).values():
        assert ".invalid" not in url and "example." not in url, url


def test_citation_cites_the_rena_paper_and_the_software():
    yaml = pytest.importorskip("yaml")
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0"
    assert citation["type"] == "software" and citation["title"].startswith("fastrena")
    assert citation["license"] == PYPROJECT["project"]["license"]
    paper = citation["preferred-citation"]
    assert paper["doi"] == "10.1109/TPAMI.2018.2815524"
    assert [a["family-names"] for a in paper["authors"]] == [
        "Hoyos-Idrobo", "Varoquaux", "Kahn", "Thirion"]
    assert (paper["year"], paper["volume"], paper["issue"]) == (2019, 41, 3)
    assert (paper["start"], paper["end"]) == (669, 681)


def test_changelog_keeps_a_changelog():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog")
    assert "## [Unreleased]" in text
    assert "keepachangelog.com" in text
