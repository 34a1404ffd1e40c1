import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, settings


# tests/helpers.py holds asserts shared by several test modules; have pytest
# rewrite them like the test modules' own (detailed failure messages), before
# anything imports it.
pytest.register_assert_rewrite("helpers")

from helpers import (box_mask, grid_mesh, masked_volumes, write_gifti_data,  # noqa: E402
                     write_gifti_mesh, write_nifti)

# --------------------------------------------------------------------------
# Hypothesis profiles
# --------------------------------------------------------------------------
# "ci" (loaded by default): deterministic, so that CI never flakes, and a
# few hundred examples in tests/test_properties.py (its main property test
# runs ``max_examples`` examples, the others a share of it, see
# ``test_properties.examples``).
#
# "long": the same tests with fresh random examples and >= 5,000 examples
# for the main property test (1 minute on 2 idle cores, 9 with both busy),
# chosen with hypothesis's own pytest option:
#
#     python -m pytest tests/test_properties.py --hypothesis-profile=long -q -W error::RuntimeWarning
#
# Tests with an explicit ``@settings(...)`` keep the values they give and
# take the others from the loaded profile.
settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "long",
    parent=settings.get_profile("ci"),
    max_examples=5000,
    derandomize=False,
)
settings.load_profile("ci")


# --------------------------------------------------------------------------
# the line saying that numba compiles
# --------------------------------------------------------------------------
@pytest.fixture(autouse=True, scope="session")
def _no_compile_notice():
    """The tests' process never prints the line a verbose fit prints when
    numba compiles (fastrena._kernels.caching.compile_notice): on a fresh
    clone (CI) the first kernel a verbose test compiles would add it to the
    stderr that test compares. tests/test_kernel_cache.py tests the line
    itself, on a fresh record of its own and in fresh processes; the
    command-line tests in a terminal (test_cli_adversarial.py) allow it."""
    from fastrena._kernels import caching

    caching._activity.compile_told = True
    yield


# --------------------------------------------------------------------------
# a numba cache that `fastrena warm` filled
# --------------------------------------------------------------------------
@pytest.fixture(scope="session")
def warmed_cache(tmp_path_factory):
    """``fastrena warm`` run once, in a fresh process, into an empty
    ``NUMBA_CACHE_DIR``: ``(folder, completed process)``. Compiling every
    kernel takes about a minute on 2 cores, so it is done once a session:
    tests/test_first_call.py checks what it did and that fits then compile
    nothing; the docs' ``fastrena warm`` block (tests/test_readme.py) runs
    in a copy of the folder."""
    folder = tmp_path_factory.mktemp("warmed") / "cache"
    env = dict(os.environ, NUMBA_CACHE_DIR=str(folder))
    done = subprocess.run([sys.executable, "-m", "fastrena.cli", "warm"], env=env,
                          capture_output=True, text=True, timeout=600)
    return folder, done


# --------------------------------------------------------------------------
# files for the command-line tests
# --------------------------------------------------------------------------
@pytest.fixture
def volumes(tmp_path, monkeypatch):
    """A mask, a 4-D .nii.gz (5 volumes) and a 3-D .nii in the working folder."""
    monkeypatch.chdir(tmp_path)
    mask = box_mask()
    data = masked_volumes(mask, 6)
    write_nifti(tmp_path / "mask.nii.gz", mask.astype(np.uint8))
    write_nifti(tmp_path / "run1.nii.gz", data[..., :5])
    write_nifti(tmp_path / "run2.nii", data[..., 5])
    return tmp_path, mask, data


@pytest.fixture
def surfaces(tmp_path, monkeypatch):
    """Two hemisphere meshes, a mask of the left one, and two scan groups
    (3 scans, then 1) of GIfTI data files, one per hemisphere."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(4)
    meshes = {"lh": grid_mesh(5, 6, x=-20.0), "rh": grid_mesh(4, 6, x=20.0)}
    data = {}
    for hemi, (coords, faces) in meshes.items():
        write_gifti_mesh(tmp_path / f"{hemi}.pial.gii", coords, faces)
        data[hemi] = rng.standard_normal((coords.shape[0], 4)).astype(np.float32)
        write_gifti_data(tmp_path / f"{hemi}.run1.func.gii", data[hemi][:, :3])
        write_gifti_data(tmp_path / f"{hemi}.run2.func.gii", data[hemi][:, 3])
    left_mask = np.arange(30) % 5 != 0
    write_gifti_data(tmp_path / "lh.mask.gii", left_mask.astype(np.float32))
    write_gifti_data(tmp_path / "rh.mask.gii", np.ones(24, np.float32))
    return tmp_path, data, left_mask
