"""``fastrena.patch_nilearn``: nilearn's Parcellations, FREM and
``nilearn.regions.ReNA`` use fastrena's ReNA, reversibly; and nilearn's own
shipped tests that exercise ReNA pass under the patch."""

import importlib
import os
import subprocess
import sys
from pathlib import Path

import nilearn
import numpy as np
import pytest

import fastrena
from fastrena.nilearn_patch import PATCHED_NAMES

NILEARN = Path(nilearn.__file__).parent


def nilearn_classes():
    return {name: importlib.import_module(name).ReNA for name in PATCHED_NAMES}


@pytest.fixture
def unpatched():
    before = nilearn_classes()
    yield before
    fastrena.unpatch_nilearn()
    assert nilearn_classes() == before


def test_patch_replaces_every_reference_and_unpatch_restores_them(unpatched):
    assert not fastrena.is_nilearn_patched()
    assert all(cls is not fastrena.ReNA for cls in unpatched.values())
    fastrena.patch_nilearn()
    fastrena.patch_nilearn()          # twice is once
    assert fastrena.is_nilearn_patched()
    assert set(nilearn_classes().values()) == {fastrena.ReNA}
    from nilearn.regions import ReNA

    assert ReNA is fastrena.ReNA
    fastrena.unpatch_nilearn()
    assert nilearn_classes() == unpatched
    fastrena.unpatch_nilearn()        # nothing to undo
    assert nilearn_classes() == unpatched


def test_the_context_manager_restores_what_was_there(unpatched):
    with fastrena.nilearn_patched():
        assert fastrena.is_nilearn_patched()
    assert nilearn_classes() == unpatched
    fastrena.patch_nilearn()
    with fastrena.nilearn_patched():
        pass
    assert fastrena.is_nilearn_patched()   # it was patched before the block


def test_parcellations_use_fastrena_when_patched(unpatched, monkeypatch):
    import nibabel
    from nilearn.regions import Parcellations

    rng = np.random.default_rng(0)
    data = rng.standard_normal((8, 9, 7, 12)).astype(np.float32)
    img = nibabel.Nifti1Image(data, np.eye(4))
    mask = nibabel.Nifti1Image(np.ones((8, 9, 7), np.uint8), np.eye(4))
    fits = []
    fit = fastrena.ReNA.fit
    monkeypatch.setattr(fastrena.ReNA, "fit", lambda self, X, y=None: fits.append(1) or
                        fit(self, X, y))
    with fastrena.nilearn_patched():
        parcels = Parcellations(method="rena", n_parcels=20, mask=mask,
                                standardize=False, verbose=0).fit(img)
    assert fits == [1]
    labels = np.unique(np.asarray(parcels.labels_img_.dataobj))
    np.testing.assert_array_equal(labels, np.arange(1, 21))   # every voxel in the mask


# nilearn's tests that check nilearn's internals rather than behaviour,
# deselected by name, each with its reason; nothing else is.
DESELECTED = {
    "regions/tests/test_rena_clustering.py::test_check_estimator_nilearn"
    "[estimator2-check_tags-check_tags]":
        "nilearn's own estimator tags (fields of nilearn's tag class)",
    "regions/tests/test_rena_clustering.py::test_check_estimator_nilearn"
    "[estimator4-check_doc_link-check_doc_link]":
        "the estimator's documentation link must point to nilearn's site",
}


def test_nilearns_own_rena_tests_pass_under_the_patch(tmp_path):
    count = tmp_path / "fits.txt"
    targets = [str(NILEARN / "regions/tests/test_rena_clustering.py"),
               str(NILEARN / "regions/tests/test_parcellations.py"),
               str(NILEARN / "decoding/tests/test_decoder.py")]
    command = [sys.executable, "-m", "pytest", "-q", "--no-header", "-p", "no:cacheprovider",
               "--rootdir", str(NILEARN), "-p", "nilearn_patched",
               "-k", "rena or Rena or ReNA or frem or FREM", *targets]
    for test_id in DESELECTED:
        command += ["--deselect", test_id]
    env = {**os.environ, "FASTRENA_FIT_COUNT": str(count),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent),
                                          os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and " failed" not in done.stdout
    assert int(count.read_text()) > 50     # fastrena's ReNA did the fits
