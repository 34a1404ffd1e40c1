"""``fastrena.dask``: lazy Dask arrays from NIfTI/GIfTI files, Zarr and HDF5,
and the choice of scheduler. Nothing is read until computed; values equal
the eager readers of ``fastrena.io``."""

import subprocess
import sys

import h5py
import numpy as np
import pytest
import zarr
from helpers import box_mask, masked_volumes, write_gifti_data, write_nifti

from fastrena import ReNA
from fastrena.dask import (from_hdf5, from_images, from_zarr, read_images_lazily,
                           reduce_images_lazily, use_scheduler)
from fastrena.io import InputError, images_to_array, load_parcellation, surface_layout


@pytest.fixture
def runs(tmp_path):
    """A mask, a 4-D .nii (70 volumes), a 3-D .nii.gz and a 4-D .nii.gz (9)."""
    mask = box_mask()
    data = masked_volumes(mask, 80, seed=1)
    paths = [write_nifti(tmp_path / "run1.nii", data[..., :70]),
             write_nifti(tmp_path / "run2.nii.gz", data[..., 70]),
             write_nifti(tmp_path / "run3.nii.gz", data[..., 71:])]
    write_nifti(tmp_path / "mask.nii.gz", mask.astype(np.uint8))
    return tmp_path, paths, tmp_path / "mask.nii.gz"


def test_from_images_is_lazy_and_equals_the_eager_reader(runs):
    folder, paths, mask = runs
    X = from_images(paths, mask)
    assert X.chunks == ((70, 1, 9), (int(box_mask().sum()),))
    assert X.dtype == np.float32
    np.testing.assert_array_equal(X.compute(), images_to_array(paths, mask))


def test_volumes_per_chunk_splits_4d_images_only(runs):
    folder, paths, mask = runs
    X = from_images(paths, mask, volumes_per_chunk=32, dtype=np.float64)
    assert X.chunks[0] == (32, 32, 6, 1, 9)
    np.testing.assert_array_equal(X.compute(), images_to_array(paths, mask, dtype=np.float64))


def test_a_fit_from_images_equals_the_in_memory_fit(runs):
    folder, paths, mask = runs
    X = images_to_array(paths, mask)
    ref = ReNA(str(mask), n_clusters=12).fit(X)
    rena = ReNA(str(mask), n_clusters=12).fit(from_images(paths, mask, volumes_per_chunk=20))
    np.testing.assert_array_equal(rena.labels_, ref.labels_)


def test_from_images_without_a_mask_computes_it(runs):
    folder, paths, mask = runs
    np.testing.assert_array_equal(from_images(paths).compute(),
                                  images_to_array(paths, mask))


def test_headers_are_checked_now_and_values_when_computed(runs, tmp_path):
    folder, paths, mask = runs
    write_nifti(tmp_path / "small.nii", np.zeros((4, 4, 4), np.float32))
    with pytest.raises(InputError, match="has shape \\(4, 4, 4\\) but the mask has shape"):
        from_images([*paths, tmp_path / "small.nii"], mask)
    bad = masked_volumes(box_mask(), 3)
    bad[3, 3, 3, 2] = np.nan
    write_nifti(tmp_path / "bad.nii", bad)
    X = from_images([paths[0], tmp_path / "bad.nii"], mask)  # no error yet
    with pytest.raises(InputError, match="has NaN or infinite values inside the mask "
                                         "\\(volume 2, at 1 voxel\\): give a mask"):
        X.compute()


def test_bad_chunking_and_dtype_are_named(runs):
    folder, paths, mask = runs
    for value in (0, 2.5, True):
        with pytest.raises(InputError, match=f"volumes_per_chunk must be an integer >= 1, "
                                             f"got {value!r}"):
            from_images(paths, mask, volumes_per_chunk=value)
    with pytest.raises(InputError, match="dtype must be float32 or float64, got int16"):
        from_images(paths, mask, dtype=np.int16)


def test_paths_are_made_absolute_for_remote_workers(runs, monkeypatch):
    folder, paths, mask = runs
    monkeypatch.chdir(folder)
    X = from_images(["run1.nii"], "mask.nii.gz")
    monkeypatch.chdir("/")
    np.testing.assert_array_equal(X.compute(), images_to_array([paths[0]], mask))


def test_reduce_images_lazily_equals_the_eager_reduction(runs):
    folder, paths, mask = runs
    rena = ReNA(str(mask), n_clusters=12).fit(images_to_array(paths, mask))
    from fastrena.io import labels_to_img, save_img

    save_img(labels_to_img(rena), folder / "labels.nii.gz")
    parcellation = load_parcellation(folder / "labels.nii.gz")
    for scaling in (False, True):
        lazy = reduce_images_lazily(parcellation, paths, scaling=scaling)
        np.testing.assert_array_equal(lazy.compute(), parcellation.reduce(paths,
                                                                          scaling=scaling))


def test_surface_files(tmp_path):
    """GIfTI data files (one per mesh part) through the same layout."""
    from helpers import grid_mesh, write_gifti_mesh

    rng = np.random.default_rng(0)
    meshes, groups = [], [[], []]
    for hemi, x in (("lh", -10.0), ("rh", 10.0)):
        coords, faces = grid_mesh(4, 5, x=x)
        meshes.append(write_gifti_mesh(tmp_path / f"{hemi}.gii", coords, faces))
        for g, n in enumerate((3, 2)):
            groups[g].append(write_gifti_data(tmp_path / f"{hemi}{g}.func.gii",
                                              rng.standard_normal((20, n))))
    layout = surface_layout(meshes)
    images = [tuple(group) for group in groups]
    from fastrena.io import read_images

    np.testing.assert_array_equal(read_images_lazily(layout, images).compute(),
                                  read_images(layout, images))


def test_from_zarr(tmp_path):
    X = np.random.default_rng(0).standard_normal((130, 40)).astype(np.float32)
    store = tmp_path / "x.zarr"
    z = zarr.create_array(store, shape=X.shape, chunks=(64, 40), dtype="float32")
    z[:] = X
    lazy = from_zarr(store)
    assert lazy.chunks == ((64, 64, 2), (40,))  # the store's own chunks
    np.testing.assert_array_equal(lazy.compute(), X)
    assert from_zarr(str(store), rows_per_chunk=128).chunks == ((128, 2), (40,))
    split = zarr.create_array(tmp_path / "split.zarr", shape=X.shape, chunks=(10, 10),
                              dtype="float32")
    split[:] = X
    assert from_zarr(tmp_path / "split.zarr").chunks[1] == (40,)
    group = zarr.open_group(tmp_path / "g.zarr", mode="w")
    group.create_array("scans", shape=X.shape, chunks=(64, 40), dtype="float32")[:] = X
    np.testing.assert_array_equal(from_zarr(tmp_path / "g.zarr", "scans").compute(), X)
    zarr.create_array(tmp_path / "cube.zarr", shape=(2, 3, 4), dtype="float32")
    with pytest.raises(InputError, match="must be a 2-D array \\(n_samples, n_features\\), "
                                         "got shape \\(2, 3, 4\\)"):
        from_zarr(tmp_path / "cube.zarr")


def test_from_hdf5(tmp_path):
    X = np.random.default_rng(1).standard_normal((150, 30))
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f["group/X"] = X
        f["cube"] = np.zeros((2, 3, 4))
    lazy = from_hdf5(path, "group/X", rows_per_chunk=64)
    assert lazy.chunks == ((64, 64, 22), (30,))
    np.testing.assert_array_equal(lazy.compute(), X)
    ref = ReNA(n_clusters=5).fit(X)
    np.testing.assert_array_equal(ReNA(n_clusters=5).fit(from_hdf5(path, "group/X")).labels_,
                                  ref.labels_)
    with pytest.raises(InputError, match="has no dataset 'nope'"):
        from_hdf5(path, "nope")
    with pytest.raises(InputError, match="has no dataset 'group'"):
        from_hdf5(path, "group")  # a group, not a dataset
    with pytest.raises(InputError, match="got shape \\(2, 3, 4\\)"):
        from_hdf5(path, "cube")
    with pytest.raises(FileNotFoundError, match="no such file: '.*missing.h5'"):
        from_hdf5(tmp_path / "missing.h5", "X")


def test_use_scheduler_local_names_and_errors():
    import dask

    for name in ("threads", "processes", "synchronous"):
        with use_scheduler(name):
            assert dask.config.get("scheduler") == name
    with use_scheduler(None) as client:
        assert client is None
    with pytest.raises(OSError, match="cannot reach a Dask scheduler at 'nonsense://x:1' "
                                      "\\(unknown address scheme 'nonsense'"):
        with use_scheduler("nonsense://x:1"):
            pass
    with pytest.raises(OSError, match="cannot reach a Dask scheduler at "
                                      "'tcp://127.0.0.1:1' \\(Timed out"):
        with use_scheduler("tcp://127.0.0.1:1", timeout="0.5s"):
            pass
    # a failed connection leaves Dask's scheduler as it was, not pointing at
    # a cluster that never came (later computes would wait for it forever)
    assert dask.config.get("scheduler", None) is None
    with dask.config.set(scheduler="synchronous"):
        with pytest.raises(OSError):
            with use_scheduler("nonsense://x:1"):
                pass
        assert dask.config.get("scheduler") == "synchronous"
    assert dask.config.get("scheduler", None) is None
    with pytest.raises(OSError, match="cannot reach a Dask scheduler at '' \\(an empty address\\)"):
        with use_scheduler(""):
            pass
    # A misspelt local scheduler, or a host without its port, was read as an
    # address: its failed Client then held the interpreter a minute at exit
    # and printed a traceback.
    for name in ("proceses", "localhost"):
        with pytest.raises(InputError, match=rf"^scheduler '{name}' is neither a local scheduler "
                                             r"\(threads, processes, synchronous\) nor the "
                                             r"address of a Dask scheduler \(tcp://host:port\)$"):
            with use_scheduler(name):
                pass
    with pytest.raises(OSError, match=r"^cannot reach a Dask scheduler at 'tcp://host' "
                                      r"\(missing port number in address 'host'\)$"):
        with use_scheduler("tcp://host"):
            pass


def test_a_bad_address_leaves_no_client_behind_at_exit():
    code = ("from fastrena.dask import use_scheduler\n"
            "for address in ('tcp://host', 'host:port', 'localhost'):\n"
            "    try:\n"
            "        with use_scheduler(address, timeout='1s'):\n"
            "            pass\n"
            "    except (OSError, ValueError):\n"
            "        pass\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert (done.returncode, done.stderr) == (0, "")


def test_failed_connection_leaves_no_default_client():
    """A Client that fails to connect must not stay the process's default:
    later computes would wait for it forever."""
    import dask
    import dask.array as da

    with pytest.raises(OSError):
        with use_scheduler("tcp://127.0.0.1:1", timeout="0.2s"):
            pass
    assert dask.base.get_scheduler() is None
    assert int(da.ones(10, chunks=5).sum().compute()) == 10
