"""Every ```python and ```bash block of README.md and of the site's pages
(docs/*.md, the user guide) runs as written.

Each block runs in a fresh temporary folder holding small files under the
names the documents use (masks, 4-D runs, GIfTI meshes and data, a label
image, a T1, a Zarr store...), so that a change to a document that breaks
an example fails here. Python blocks run in this process, bash blocks in
``bash -e`` with this environment's ``fastrena`` on the PATH.

A block is matched to its :class:`Setup` by its first line (``SETUPS``;
its first lines when several blocks share the first), whichever document
holds it; blocks not listed there run as written with nothing assumed. A
setup may give a *preamble*, code run before the block that defines the
variables the text assumes from elsewhere (``X``, ``rena``...);
the block's own text then runs unchanged after it. What cannot run here is
said in ``SETUPS``: installing (only the commands after the install run),
and joining a cluster (the text is parsed; a ``--scheduler tcp://...``
command line is parsed by fastrena's own parser and run without that
option, on the local scheduler).
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from helpers import grid_mesh, write_gifti_data, write_gifti_mesh, write_nifti

from fastrena.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
#: The documents whose blocks run: the README, then every page of the site
#: written in Markdown (a page added to docs/ is read without listing it).
DOCUMENTS = [README, *sorted((REPO / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent

#: The grid of every volume: a box of 24 x 24 x 18 = 10,368 voxels in a
#: 26 x 26 x 20 grid, enough for the documents' K (up to 10,000).
GRID = (26, 26, 20)
AFFINE = np.array([[2.0, 0, 0, -26], [0, 2.0, 0, -30], [0, 0, 2.0, -20], [0, 0, 0, 1]])
VOLUMES_PER_RUN = 4
#: Vertices per hemisphere of the GIfTI meshes (a 20 x 20 grid each).
MESH_SIDE = 20
#: The CIFTI files' meshes: 30 x 30 grids.
CIFTI_SIDE = 30


@dataclass(frozen=True)
class Setup:
    """How one block of a document runs.

    preamble : code run first, defining what the block assumes (Python).
    check : code run after a Python block, asserting what its comments say
        (shapes...); the block's text is ``__block__`` there.
    writes : files the block writes, relative to its folder: they are not
        there before it runs (the documents' outputs are never overwritten
        without ``--force``), and must be there after.
    how : "as written"; "after install" (bash: the commands after
        ``python3 -m venv ... && pip install ...``); "parse" (compiled or
        ``bash -n`` only, with why in a comment); "local scheduler"
        (bash: ``--scheduler tcp://...`` parsed, then run without it);
        "collect only" (bash: a pytest command line, run in the repository
        with ``--collect-only``: its options and tests are checked, not run);
        "in a warmed cache" (bash: as written, its ``numba-cache`` folder
        first a copy of the session's ``warmed_cache``, see conftest.py:
        compiling every kernel into an empty folder takes a minute, done
        once a session and tested in tests/test_first_call.py).
    """

    preamble: str = ""
    check: str = ""
    writes: tuple = ()
    how: str = "as written"


FITTED = """\
# What the pictures block of docs/io.md assumes: X read from the runs, and
# rena fitted on it.
from fastrena import ReNA
from fastrena.io import images_to_array

X = images_to_array(["run1.nii.gz", "run2.nii.gz"], "brain_mask.nii.gz")
rena = ReNA("brain_mask.nii.gz", n_clusters=1000).fit(X)
"""

DEMO_FILES = ("labels.nii.gz", "labels.tsv", "parcellation.png", "cluster_sizes.png",
              "compression_error.png", "fsaverage5_labels_left.label.gii",
              "fsaverage5_labels_right.label.gii", "fsaverage5_labels_left.tsv",
              "fsaverage5_labels_right.tsv", "surface_parcellation.png")

SETUPS = {
    # README, "A short tour": nilearn's bundled MNI152 mask, then the report.
    "import numpy as np\nfrom nilearn.datasets import load_mni152_brain_mask": Setup(
        writes=("report.html",),
        check="assert X.shape == (20, 235375) and X_red.shape == (20, 2000)\n"
              "assert X_back.shape == X.shape and rena.n_clusters_ == 2000\n"
              "# The tour's last line runs again as written: its report replaces\n"
              "# the first (a re-run notebook cell).\n"
              "exec([line for line in __block__.splitlines() if 'save_as_html' in line][0])"),
    "fastrena parcellate run1.nii.gz run2.nii.gz": Setup(
        writes=("labels.nii.gz", "labels.tsv", "labels.png", "run3_report.html")),
    # Installs, then runs the demo: the demo runs (as "fastrena demo
    # --samples 4": its 100 synthetic scans would take most of this file's
    # time budget; everything else is the README's).
    'python3 -m venv .venv && . .venv/bin/activate && pip install -q -e ".[neuro]" && '
    'fastrena demo': Setup(writes=tuple(f"fastrena_demo/{f}" for f in DEMO_FILES),
                           how="after install"),
    # Installs, then runs the whole suite: the pytest command runs, with its
    # options, on one small test (the whole suite inside itself would
    # never end).
    'python3 -m venv .venv && . .venv/bin/activate && pip install -q -e ".[test]" && '
    'python -m pytest -q -W error::RuntimeWarning': Setup(how="after install"),
    "fastrena parcellate sub-01_bold.nii.gz sub-02_bold.nii.gz --mask": Setup(
        writes=("labels.nii.gz", "labels.png")),
    "fastrena reduce sub-03_bold.nii.gz": Setup(writes=("reduced.csv", "expanded.nii.gz")),
    "fastrena parcellate run1_hemi-L.func.gii": Setup(
        writes=("lh.label.gii", "rh.label.gii", "surface.png", "reduced.npy")),
    "from fastrena.io import (fit_images": Setup(
        writes=("labels.nii.gz",),
        check="assert X_red.shape == (4, 1000) and img.shape == (26, 26, 20, 4)"),
    "import numpy as np\nfrom nilearn.maskers import NiftiMasker": Setup(
        check="assert X.shape == (8, 10368) and X_red.shape == (8, 2000)\n"
              "assert X_back.shape == X.shape and labels_img.shape == (26, 26, 20)"),
    "import numpy as np\nfrom nilearn.datasets import load_fsaverage_data": Setup(
        check="assert X.shape == (3, 20484) and rena.n_clusters_ == 500"),
    "import numpy as np\nfrom fastrena import ReNA\n\nimage =": Setup(
        check="assert compressed.shape == (64, 64) and rena.n_clusters_ == 256"),
    "from glob import glob": Setup(
        check="assert X.shape == (16, 10368) and X_red.shape == (16, 5000)"),
    "import numpy as np\nfrom hidimstat import": Setup(
        check="assert selected.shape == (4096,) and set(np.unique(selected)) <= {0, 1}\n"
              "assert selected[region.ravel()].mean() > 0.5\n"
              "assert inference.clustering_.n_clusters_ == 200"),
    "fastrena parcellate run1.dtseries.nii": Setup(
        writes=("parc.dlabel.nii", "parc.tsv", "grayordinates.png", "run3.ptseries.nii",
                "run3_smooth.dtseries.nii")),
    # docs/merge_tree.md, a refined scale of a "ward" tree: what a fit to k
    # gives, as its comment says.
    "import numpy as np\nfrom scipy.ndimage import gaussian_filter\n\nfrom fastrena import "
    "ReNA\nfrom fastrena.refine import exchange_count": Setup(
        check="fit = ReNA(mask, n_clusters=100, linkage='ward').fit(X)\n"
              "assert np.array_equal(labels_100, fit.labels_)\n"
              "assert not np.array_equal(refine_labels(X, rena.layout_.graph, "
              "rena.labels_at(k)), fit.labels_)"),
    "from fastrena import ReNA\nfrom fastrena.io import (grayordinate_layout": Setup(
        writes=("parc_py.dlabel.nii", "run3_py.ptseries.nii"),
        check="assert X.shape == (12, 2340) and X_red.shape == (6, 1000)"),
    "import numpy as np\nfrom scipy.cluster.hierarchy import fcluster": Setup(
        check="assert labels_100.max() == 99 and X_100.shape == (8, 100)\n"
              "assert (X_back == X_100[:, labels_100]).all() and X_back.shape == (8, 10368)\n"
              "assert (np.unique(np.column_stack([labels_100, parcels]), axis=0).shape[0]"
              " == 100)\n"
              "assert (labels_100 == ReNA(mask, n_clusters=100).fit(X).labels_).all()"),
    "fastrena parcellate sub-01_bold.nii.gz sub-02_bold.nii.gz -k 100": Setup(writes=("labels_res-100_dseg.nii.gz", "labels_res-400_dseg.nii.gz",
                      "labels_res-1600_dseg.nii.gz", "labels_res-1600_dseg.tsv")),
    "from fastrena import plotting": Setup(
        preamble=FITTED, writes=("labels.png", "sizes.png", "curve.png"),
        check="assert len(errors) == 3 and errors[0] > errors[1] > errors[2] > 0"),
    "import numpy as np\nfrom scipy.ndimage import gaussian_filter\nfrom fastrena import ReNA\n"
    "from fastrena.metrics": Setup(
        writes=("report.html",),
        check="assert table.shape[0] == 200 and (table['n_components'] == 1).all()\n"
              "assert table.index.tolist() == list(range(1, 201))\n"
              "assert table['homogeneity'].mean() > table['null_homogeneity'].mean()\n"
              "assert 0 < ari <= 1 and '<section id=\"parcels\">' in report.get_html()"),
    "fastrena report sub-01_bold.nii.gz": Setup(writes=("report.html",)),
    # Self-contained (a new user met them assuming points, X and mask).
    "import numpy as np\nfrom sklearn.neighbors import kneighbors_graph": Setup(
        check="assert rena.n_clusters_ == 100"),
    "import numpy as np\nfrom fastrena import recursive_neighbor_agglomeration": Setup(
        check="assert n_clusters_ == 1000 and labels.shape == (10368,)\n"
              "assert refined.shape == (10368,) and refined.max() == 999"),
    # Runs as a script does (``__name__ == "__main__"``: see run_python), the
    # fit on Dask's local processes.
    "from fastrena import ReNA\nfrom fastrena.dask import from_zarr, use_scheduler": Setup(
        check="assert X.shape == (16, 10368) and rena.n_clusters_ == 5000"),
    # docs/robustness.md: the long property-test profile, about a minute of
    # 6,000 random inputs: collected with its options (the profile exists),
    # not run (the ci profile runs in the suite).
    "python -m pytest tests/test_properties.py --hypothesis-profile=long": Setup(
        how="collect only"),
    # docs/numba_cache.md: `fastrena warm` into $PWD/numba-cache, which holds
    # a copy of the session's warmed cache: it runs as written and says the
    # kernels were already compiled there.
    "NUMBA_CACHE_DIR=$PWD/numba-cache fastrena warm": Setup(how="in a warmed cache"),
    # Starts SLURM jobs (and dask-jobqueue is not a dependency): parsed only.
    "from dask_jobqueue import SLURMCluster": Setup(how="parse"),
    # Joins a scheduler at tcp://10.0.0.5:8786: that command line is parsed,
    # then both lines run on Dask's local scheduler.
    "fastrena parcellate sub-*_bold.nii.gz": Setup(writes=("labels.nii.gz", "reduced.npy"),
                                                 how="local scheduler"),
}

#: The test run by the README's pytest command (see SETUPS).
PYTEST_SELECTION = ["tests/test_reduce_edges.py::test_exact_small_example",
                    "-p", "no:cacheprovider"]


#: What a document may fence besides ```python and ```bash: MyST's table of
#: contents (docs/guide.md), which is not code.
NOT_CODE = {"{toctree}"}


def document_blocks(path):
    """(language, text) of every ```python and ```bash block of the Markdown
    file ``path``, in order."""
    pattern = re.compile(r"^```(python|bash)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
    return [(m[1], m[2]) for m in pattern.finditer(path.read_text())]


def fence_languages(path):
    """What follows the backticks of each fenced block's opening line,
    indented or not, in order."""
    languages, inside = [], False
    for line in path.read_text().splitlines():
        if line.strip().startswith("```"):
            if not inside:
                languages.append(line.strip()[3:].strip())
            inside = not inside
    return languages


def all_blocks():
    """(document, language, text) of every block of every document."""
    return [(path.relative_to(REPO).as_posix(), language, text)
            for path in DOCUMENTS for language, text in document_blocks(path)]


def setup_of(text):
    matches = [setup for key, setup in SETUPS.items() if text.startswith(key)]
    assert len(matches) <= 1, text
    return matches[0] if matches else Setup()


BLOCKS = all_blocks()


# --------------------------------------------------------------------------
# the files the documents name
# --------------------------------------------------------------------------
def smooth_volumes(rng, n_volumes):
    """Random volumes on GRID, smoothed a little, 0 outside the box."""
    from scipy.ndimage import gaussian_filter

    data = np.zeros(GRID + (n_volumes,), dtype=np.float32)
    for t in range(n_volumes):
        data[..., t] = gaussian_filter(rng.standard_normal(GRID), 1.5)
    data[~box(), :] = 0
    return data


def box():
    mask = np.zeros(GRID, dtype=bool)
    mask[1:-1, 1:-1, 1:-1] = True
    return mask


def make_files(folder):
    """Every input file a block names."""
    rng = np.random.default_rng(0)
    mask = box()
    for name in ("brain_mask.nii.gz", "mask.nii.gz"):
        write_nifti(folder / name, mask.astype(np.uint8), AFFINE)
    runs = ["run1.nii.gz", "run2.nii.gz", "run3.nii.gz", "sub-01_bold.nii.gz",
            "sub-02_bold.nii.gz", "sub-03_bold.nii.gz",
            "sub-01/func/sub-01_task-rest_bold.nii.gz",
            "sub-02/func/sub-02_task-rest_bold.nii.gz"]
    for name in runs:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        write_nifti(folder / name, smooth_volumes(rng, VOLUMES_PER_RUN), AFFINE)
    write_nifti(folder / "T1.nii.gz", 100 + 50 * smooth_volumes(rng, 1)[..., 0], AFFINE)
    labels = np.zeros(GRID, dtype=np.int16)
    labels[mask] = np.arange(int(mask.sum())) // 100 + 1
    write_nifti(folder / "labels.nii.gz", labels, AFFINE)
    import zarr

    scans = smooth_volumes(rng, 16)[mask].T
    store = zarr.create_array(folder / "scans.zarr", shape=scans.shape, dtype=scans.dtype,
                              chunks=(8, scans.shape[1]))
    store[:] = scans
    make_cifti_files(folder, rng)
    for hemi, x in (("L", -30.0), ("R", 30.0)):
        coords, faces = grid_mesh(MESH_SIDE, MESH_SIDE, x=x)
        write_gifti_mesh(folder / f"{hemi.lower()}h.pial.gii", coords, faces)
        for run in (1, 2, 3):
            data = rng.standard_normal((coords.shape[0], 3)).astype(np.float32)
            write_gifti_data(folder / f"run{run}_hemi-{hemi}.func.gii", data)


def make_cifti_files(folder, rng):
    """lh/rh.surf.gii (30 x 30 grids) and run1-3.dtseries.nii (6 rows) on
    their vertices (the first row of each grid left out, as a medial wall)
    and a 10 x 10 x 6 subcortical box: 2,340 grayordinates."""
    from nibabel import cifti2

    models = []
    for hemi, x, name in (("lh", -30.0, "CortexLeft"), ("rh", 30.0, "CortexRight")):
        coords, faces = grid_mesh(CIFTI_SIDE, CIFTI_SIDE, x=x)
        write_gifti_mesh(folder / f"{hemi}.surf.gii", coords, faces)
        vertices = np.arange(CIFTI_SIDE, coords.shape[0])
        models.append(cifti2.BrainModelAxis.from_surface(vertices, coords.shape[0], name))
    subcortical = np.zeros(GRID, dtype=bool)
    subcortical[8:18, 8:18, 7:13] = True
    models.append(cifti2.BrainModelAxis.from_mask(subcortical, "thalamus_left", AFFINE))
    axis = models[0] + models[1] + models[2]
    for run in (1, 2, 3):
        data = rng.standard_normal((6, len(axis))).astype(np.float32)
        img = cifti2.Cifti2Image(data, header=(cifti2.SeriesAxis(0, 0.72, 6), axis))
        img.to_filename(str(folder / f"run{run}.dtseries.nii"))


@pytest.fixture(scope="module")
def readme_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("readme_files")
    make_files(folder)
    return folder


@pytest.fixture
def block_folder(readme_files, tmp_path, monkeypatch):
    """A fresh folder with the documents' files; the working directory."""
    folder = tmp_path / "work"
    shutil.copytree(readme_files, folder)
    monkeypatch.chdir(folder)
    return folder


# --------------------------------------------------------------------------
# running the blocks
# --------------------------------------------------------------------------
def run_bash(script, cwd):
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "MPLBACKEND": "Agg"}
    done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    # Not a bar, a warning or an error on stderr: the examples run cleanly.
    assert done.stderr == "", done.stderr
    return done.stdout


def after_install(text, folder):
    """The commands of ``text`` after its ``python3 -m venv ... && pip
    install ...``: ``fastrena demo`` in ``folder`` (on 4 scans), the
    pytest command in the repository on one small test."""
    install = ("python3 -m venv ", ". .venv/bin/activate", "pip install ")
    for line in text.splitlines():
        steps = [step.strip() for step in line.split("&&")]
        assert [s for s in steps if s.startswith(install)], line
        for step in steps:
            if step.startswith(install):
                continue
            if step.startswith("python -m pytest"):
                run_bash(shlex.join([*shlex.split(step), *PYTEST_SELECTION]), REPO)
            else:
                assert step == "fastrena demo", step
                run_bash(f"{step} --samples 4", folder)


def on_local_scheduler(text, folder):
    """Parse each command line with fastrena's parser; run them all without
    their ``--scheduler tcp://...``."""
    lines = []
    for line in text.splitlines():
        words = shlex.split(line)
        assert words[0] == "fastrena", line
        args = build_parser().parse_args(words[1:])
        if args.scheduler is not None:
            assert args.scheduler.startswith("tcp://"), line
            at = words.index("--scheduler")
            words = words[:at] + words[at + 2:]
        lines.append(" ".join(words))  # unquoted: the shell expands sub-*_bold.nii.gz
    run_bash("\n".join(lines), folder)


def run_python(text, preamble, folder, document):
    # As a script runs: a block's ``if __name__ == "__main__":`` body runs too.
    namespace = {"__name__": "__main__"}
    with warnings.catch_warnings():
        # fastrena's own warnings (and NumPy's) would mean a bad example.
        warnings.simplefilter("error", UserWarning)
        warnings.simplefilter("error", RuntimeWarning)
        # nilearn 0.14's maskers warn about their own default (standardize=False).
        warnings.filterwarnings("ignore", "boolean values for 'standardize'", FutureWarning)
        # hidimstat 0.4's ClusterImportance hands X to DesparsifiedLasso's
        # importance(), which warns that it uses neither.
        warnings.filterwarnings("ignore", "[Xy] won't be used", UserWarning)
        if preamble:
            exec(compile(preamble, "preamble", "exec"), namespace)
        exec(compile(text, document, "exec"), namespace)
    return namespace


@pytest.mark.parametrize("document, language, text", BLOCKS,
                         ids=[f"{document}-{i}-{text.splitlines()[0][:40]}"
                              for i, (document, _, text) in enumerate(BLOCKS)])
def test_block_runs(document, language, text, block_folder, request):
    setup = setup_of(text)
    for name in setup.writes:
        path = block_folder / name
        if path.exists():
            path.unlink()
    if setup.how == "parse":
        if language == "python":
            compile(text, document, "exec")
        else:
            run_bash(f"bash -n -c {shlex.quote(text)}", block_folder)
        return
    if language == "python":
        assert setup.how == "as written"
        namespace = run_python(text, setup.preamble, block_folder, document)
        # The check may run lines of the block again, as written.
        namespace["__block__"] = text
        exec(compile(setup.check, "check", "exec"), namespace)
    elif setup.how == "after install":
        after_install(text, block_folder)
    elif setup.how == "collect only":
        words = shlex.split(text)
        assert words[:3] == ["python", "-m", "pytest"], text
        run_bash(shlex.join([*words, "--collect-only", "-p", "no:cacheprovider"]), REPO)
    elif setup.how == "local scheduler":
        on_local_scheduler(text, block_folder)
    elif setup.how == "in a warmed cache":
        warmed, done = request.getfixturevalue("warmed_cache")
        # (A failed warm is reported here too, not as a missing folder.)
        assert done.returncode == 0, done.stderr
        shutil.copytree(warmed, block_folder / "numba-cache")
        out = run_bash(text, block_folder)
        assert out.startswith(f"fastrena's kernels were already compiled, in the cache in "
                              f"{block_folder / 'numba-cache'}"), out
    else:
        assert setup.how == "as written" and not setup.preamble
        run_bash(text, block_folder)
    for name in setup.writes:
        assert (block_folder / name).is_file(), name


def test_every_setup_belongs_to_a_block():
    """A renamed or removed block must not leave a stale setup behind."""
    for key in SETUPS:
        assert any(text.startswith(key) for _, _, text in BLOCKS), key


def test_the_blocks_are_found():
    languages = [language for _, language, _ in BLOCKS]
    assert languages.count("python") >= 10 and languages.count("bash") >= 6, languages
    # The README keeps its set-up commands and a short tour; the guide's
    # examples are on the pages.
    documents = {document for document, _, _ in BLOCKS}
    assert {"README.md", "docs/usage.md", "docs/cli.md", "docs/dask.md"} <= documents


@pytest.mark.parametrize("path", DOCUMENTS, ids=[path.name for path in DOCUMENTS])
def test_no_block_escapes_the_tests(path):
    # A block fenced as ```py, ```sh, ```console or with no language, or an
    # indented one, would be shown but never run: the documents fence code
    # as ```python or ```bash, at the start of a line.
    languages = fence_languages(path)
    assert [x for x in languages if x not in ("python", "bash") and x not in NOT_CODE] == []
    code = [x for x in languages if x in ("python", "bash")]
    assert [language for language, _ in document_blocks(path)] == code
