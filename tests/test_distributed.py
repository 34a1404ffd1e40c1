"""ReNA on a real ``dask.distributed`` cluster: a ``LocalCluster`` of two
worker processes on loopback. The fit gives the in-memory labels, transform
round trips, the command line joins the cluster by its address, and a
worker killed mid-fit either costs a retry (same labels) or, when every
worker running a task dies, fails with Dask's ``KilledWorker``: never a
wrong answer."""

import os
import subprocess
import sys
import time
from pathlib import Path

import dask
import dask.array as da
import nibabel
import numpy as np
import pytest
from helpers import die_always, die_on_read, write_nifti
from scipy.ndimage import gaussian_filter

from fastrena import ReNA

distributed = pytest.importorskip("distributed")

FASTRENA = Path(sys.executable).parent / "fastrena"


@pytest.fixture(scope="module")
def client():
    # One retry per task: a worker that dies once is survived, a task that
    # kills every worker it runs on gives up after the second death.
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           host="127.0.0.1", dashboard_address=None,
                                           worker_dashboard_address=None)
    with cluster, distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def problem():
    """A 3-D mask, smooth float32 signals (200 samples) and the in-memory fit."""
    rng = np.random.default_rng(2)
    shape = (12, 11, 10)
    mask = np.zeros(shape, dtype=bool)
    mask[1:-1, 1:-1, 1:-1] = True
    X = np.stack([gaussian_filter(rng.standard_normal(shape), 1.5)[mask]
                  for _ in range(200)]).astype(np.float32)
    return mask, X, ReNA(mask, n_clusters=30).fit(X)


def lazy(X, rows=64):
    return da.from_array(X, chunks=(rows, -1))


def test_the_client_is_a_two_process_cluster(client):
    workers = client.scheduler_info()["workers"]
    assert len(workers) == 2
    pids = client.run(os.getpid)
    assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()


@pytest.mark.parametrize("rows", [64, 100])
def test_fit_on_the_cluster_gives_the_in_memory_labels(client, problem, rows):
    mask, X, ref = problem
    rena = ReNA(mask, n_clusters=30).fit(lazy(X, rows))
    np.testing.assert_array_equal(rena.labels_, ref.labels_)
    np.testing.assert_array_equal(rena.sizes_, ref.sizes_)


def test_ward_linkage_on_the_cluster_gives_the_in_memory_labels(client, problem):
    mask, X, _ = problem
    params = dict(n_clusters=30, n_iter=20, linkage="ward")
    ref = ReNA(mask, **params).fit(X)
    rena = ReNA(mask, **params).fit(lazy(X, 100))
    np.testing.assert_array_equal(rena.labels_, ref.labels_)


@pytest.mark.parametrize("linkage", ["nilearn", "ward"])
def test_ties_are_broken_on_the_cluster_as_in_memory(client, problem, linkage):
    # Quantized signals: most weights are tied, so the labels rest on the
    # tie-break, which must not depend on where a weight was computed.
    mask, X, _ = problem
    X = np.round(X * 4)
    params = dict(n_clusters=30, linkage=linkage)
    ref = ReNA(mask, **params).fit(X)
    rena = ReNA(mask, **params).fit(lazy(X, 64))
    np.testing.assert_array_equal(rena.labels_, ref.labels_)


def test_nothing_is_left_on_the_cluster_after_a_fit(client, problem):
    """The persisted levels are released once the fit returns (the client
    tells the scheduler asynchronously: wait up to 10 s)."""
    mask, X, _ = problem
    ReNA(mask, n_clusters=30).fit(lazy(X))
    n_tasks = None
    for _ in range(100):
        n_tasks = client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
        if n_tasks == 0:
            break
        time.sleep(0.1)
    assert n_tasks == 0


@pytest.mark.parametrize("scaling", [False, True])
def test_transform_round_trip_on_the_cluster(client, problem, scaling):
    mask, X, _ = problem
    ref = ReNA(mask, n_clusters=30, scaling=scaling).fit(X)
    rena = ReNA(mask, n_clusters=30, scaling=scaling).fit(lazy(X))
    X_red = rena.transform(lazy(X))
    assert isinstance(X_red, da.Array)
    back = rena.inverse_transform(X_red)
    X_red, back = dask.compute(X_red, back)
    np.testing.assert_array_equal(X_red, ref.transform(X))
    np.testing.assert_array_equal(back, ref.inverse_transform(ref.transform(X)))


def test_bad_values_raise_through_the_cluster(client, problem):
    mask, X, _ = problem
    Y = X.copy()
    Y[150, 3] = np.nan
    rena = ReNA(mask, n_clusters=30)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        rena.fit(lazy(Y))
    assert not hasattr(rena, "labels_")


@pytest.mark.parametrize("on_read", [1, 2], ids=["weights pass", "reduction pass"])
def test_a_worker_killed_mid_fit_costs_a_retry_not_the_answer(client, problem, tmp_path,
                                                              on_read):
    mask, X, ref = problem
    X_dying = lazy(X).map_blocks(die_on_read, folder=str(tmp_path), on_read=on_read,
                                 dtype=X.dtype)
    rena = ReNA(mask, n_clusters=30).fit(X_dying)
    assert (tmp_path / "died").exists()  # a worker did die during this fit
    np.testing.assert_array_equal(rena.labels_, ref.labels_)
    client.wait_for_workers(2, timeout=60)


def test_a_task_that_kills_every_worker_fails_the_fit_clearly(client, problem):
    mask, X, _ = problem
    rena = ReNA(mask, n_clusters=30)
    with pytest.raises(distributed.KilledWorker, match="workers died while running it"):
        rena.fit(lazy(X).map_blocks(die_always, dtype=X.dtype))
    assert not hasattr(rena, "labels_")
    client.wait_for_workers(2, timeout=60)
    # the cluster still works
    np.testing.assert_array_equal(ReNA(mask, n_clusters=30).fit(lazy(X)).labels_,
                                  problem[2].labels_)


def test_command_line_joins_the_cluster(client, problem, tmp_path):
    mask, X, ref = problem
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    write_nifti(tmp_path / "mask.nii.gz", mask.astype(np.uint8), affine)
    volumes = np.zeros(mask.shape + (X.shape[0],), dtype=np.float32)
    volumes[mask] = X.T
    write_nifti(tmp_path / "run1.nii", volumes[..., :120], affine)
    write_nifti(tmp_path / "run2.nii.gz", volumes[..., 120:], affine)
    address = client.scheduler.address
    done = subprocess.run(
        [str(FASTRENA), "parcellate", "run1.nii", "run2.nii.gz", "--mask", "mask.nii.gz",
         "-k", "30", "-o", "labels.nii.gz", "--dask", "--scheduler", address,
         "--volumes-per-chunk", "50", "--reduced", "reduced.npy"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    labels = np.asarray(nibabel.load(tmp_path / "labels.nii.gz").dataobj)
    np.testing.assert_array_equal(labels[mask], ref.labels_ + 1)
    np.testing.assert_array_equal(np.load(tmp_path / "reduced.npy"), ref.transform(X))
    done = subprocess.run(
        [str(FASTRENA), "reduce", "run2.nii.gz", "run1.nii", "--labels", "labels.nii.gz",
         "-o", "again.npy", "--dask", "--scheduler", address],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "again.npy"),
                                  ref.transform(np.concatenate([X[120:], X[:120]])))
