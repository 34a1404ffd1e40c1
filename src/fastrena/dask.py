"""Data too large for memory, or for one machine: lazy Dask arrays for ReNA.

``ReNA.fit``, ``transform`` and ``inverse_transform`` take a
``dask.array.Array`` (n_samples, n_features) chunked along samples: a fit
reads it twice, chunk by chunk, on whatever scheduler Dask is set to use
(threads by default, ``dask.config.set(scheduler="processes")``, or the
``dask.distributed`` client in use), and gives the labels of the in-memory
fit of the same values. The functions here build such arrays without
reading the data:

* :func:`from_images`: NIfTI (or GIfTI) files and a mask, one chunk per
  file or per block of volumes;
* :func:`from_zarr`: a Zarr array;
* :func:`from_hdf5`: an HDF5 dataset.

and :func:`use_scheduler` picks where the work runs (a cluster's address
or a local scheduler's name), as the command line's ``--scheduler`` does.
Needs the ``dask`` extra: ``pip install 'fastrena[dask]'``.

Examples
--------
>>> import numpy as np
>>> from fastrena import ReNA
>>> from fastrena.dask import from_hdf5, from_zarr
>>> X = from_zarr("scans.zarr")                      # doctest: +SKIP
>>> rena = ReNA("mask.nii.gz", n_clusters=1000).fit(X)  # doctest: +SKIP
>>> X_red = rena.transform(X).compute()             # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InputError, MissingDependencyError, first_line

try:
    import dask
    import dask.array as da
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError("fastrena.dask needs Dask: pip install 'fastrena[dask]'") from exc

from ._chunked import aligned_rows, means_of, shared, worker_pool  # noqa: E402
from ._validation import check_positive_int  # noqa: E402
from .reading import as_list, resolve_layout, scan_counts, scan_names  # noqa: E402

if TYPE_CHECKING:  # annotations only: not imported at run time
    from distributed import Client
    from numpy.typing import DTypeLike

    from .layouts import Layout
    from .parcellations import Parcellation

__all__ = ["from_hdf5", "from_images", "from_zarr", "read_images_lazily",
           "reduce_images_lazily", "use_scheduler"]

#: Names of Dask's local schedulers accepted by :func:`use_scheduler`.
LOCAL_SCHEDULERS = ("threads", "processes", "synchronous")


# --------------------------------------------------------------------------
# images
# --------------------------------------------------------------------------
def _read_rows(layout, img, given, name, start, stop, dtype):
    """Scans ``start`` to ``stop`` of one image, in-mask values only.

    ``img`` is what the task opens (paths made absolute by :func:`_portable`),
    ``given`` what the user passed: messages name the file as the user wrote
    it, exactly as the in-memory reader does."""
    out = np.empty((stop - start, layout.n_features), dtype=dtype)
    row = 0
    try:
        for rows in layout.read(img, name, start, stop):
            out[row:row + rows.shape[0]] = rows
            row += rows.shape[0]
    except InputError as exc:
        message = _renamed(str(exc), img, given)
        if message == str(exc):
            raise
        raise InputError(message) from None
    return out


def _renamed(message, img, given):
    """``message`` with each path of ``img`` replaced by the one in ``given``."""
    if isinstance(img, (tuple, list)):
        for part, given_part in zip(img, given):
            message = _renamed(message, part, given_part)
        return message
    if isinstance(img, str) and isinstance(given, str):
        return message.replace(f"'{img}'", f"'{given}'")
    return message


def _portable(img):
    """Paths made absolute (workers may run elsewhere); images as given."""
    if isinstance(img, (str, os.PathLike)):
        return os.path.abspath(img)
    if isinstance(img, (tuple, list)):
        return type(img)(_portable(part) for part in img)
    return img


def _given_paths(img):
    """The paths in ``img`` as the user wrote them (None for in-memory
    images, so that those are not put in the task graph twice)."""
    if isinstance(img, (str, os.PathLike)):
        return os.fspath(img)
    if isinstance(img, (tuple, list)):
        return type(img)(_given_paths(part) for part in img)
    return None


def read_images_lazily(layout: Layout, imgs: Any, *, dtype: DTypeLike = np.float32,
                       volumes_per_chunk: int | None = None) -> da.Array:
    """The features of ``layout`` in images, one row per scan, as a lazy
    Dask array (the lazy twin of :func:`fastrena.io.read_images`).

    Headers are read now (every shape and affine is checked); data when
    the array is computed, by the task of each chunk.

    Parameters
    ----------
    layout : fastrena.io.VolumeLayout or SurfaceLayout
    imgs : path or image, or a list of them
    dtype : float32 or float64, default=float32
    volumes_per_chunk : int, optional
        Split 4-D images into chunks of this many volumes; default one
        chunk per image. A chunk never spans two images.

    Returns
    -------
    dask.array.Array, shape (n_scans, n_features)
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise InputError(f"dtype must be float32 or float64, got {dtype}")
    if volumes_per_chunk is not None:
        volumes_per_chunk = check_positive_int(volumes_per_chunk, "volumes_per_chunk",
                                               error=InputError)
    imgs = as_list(imgs)
    names = scan_names(imgs)
    counts = scan_counts(layout, imgs, names)
    layout_shared = shared(layout)
    parts = []
    for img, name, n in zip(imgs, names, counts):
        step = n if volumes_per_chunk is None else volumes_per_chunk
        for start in range(0, n, step):
            stop = min(start + step, n)
            task = dask.delayed(_read_rows)(layout_shared, _portable(img), _given_paths(img),
                                            name, start, stop, dtype)
            parts.append(da.from_delayed(task, shape=(stop - start, layout.n_features),
                                         dtype=dtype))
    return da.concatenate(parts, axis=0)


def from_images(imgs: Any, mask_img: Any = None, *, dtype: DTypeLike = np.float32,
                volumes_per_chunk: int | None = None) -> da.Array:
    """A lazy ``(n_scans, n_voxels)`` Dask array of the in-mask values of images.

    Parameters
    ----------
    imgs : path, nibabel image or nilearn SurfaceImage, or a list of them
        3-D images are one scan, 4-D images one scan per volume, all on
        the mask's grid. Give paths: each chunk's task opens its file, so
        nothing is read now and workers on other machines can read them
        (on a shared file system).
    mask_img : path or nibabel image of a 3-D mask, or a SurfaceImage, optional
        Without it, a mask is computed from the images now
        (:func:`fastrena.io.compute_mask`, one pass over them).
    dtype : float32 or float64, default=float32
    volumes_per_chunk : int, optional
        Chunks of this many volumes within 4-D images (default: one chunk
        per image). Cheap for uncompressed ``.nii``; a ``.nii.gz`` is
        decompressed from its start for each chunk, so keep one chunk per
        file there (or install ``indexed_gzip``).

    Returns
    -------
    dask.array.Array, shape (n_scans, n_voxels)
        Columns are the in-mask voxels in C order, as nilearn's maskers
        give them. NaN or infinity inside the mask raise
        :class:`fastrena.io.InputError` when the array is computed.
    """
    layout = resolve_layout(imgs, mask_img)
    return read_images_lazily(layout, imgs, dtype=dtype, volumes_per_chunk=volumes_per_chunk)


def reduce_images_lazily(parcellation: Parcellation, imgs: Any, *, scaling: bool = False,
                         dtype: DTypeLike = np.float32,
                         volumes_per_chunk: int | None = None) -> da.Array:
    """Cluster means of images as a lazy Dask array (n_scans, K): the lazy
    twin of :meth:`fastrena.io.Parcellation.reduce`."""
    X = read_images_lazily(parcellation.layout, imgs, dtype=dtype,
                           volumes_per_chunk=volumes_per_chunk)
    return means_of(X, parcellation.labels, parcellation.divisors(scaling))


# --------------------------------------------------------------------------
# arrays on disk
# --------------------------------------------------------------------------
def _check_matrix(shape, what):
    if len(shape) != 2:
        raise InputError(f"{what} must be a 2-D array (n_samples, n_features), "
                         f"got shape {tuple(shape)}")


def _default_chunks(shape, dtype, rows):
    return (aligned_rows(shape[1], dtype) if rows is None else rows, shape[1])


def from_zarr(store: Any, component: str | None = None, *,
              rows_per_chunk: int | None = None) -> da.Array:
    """A Zarr array (n_samples, n_features) as a Dask array, without reading it.

    Parameters
    ----------
    store : str, path or Zarr store
    component : str, optional
        The array's path inside a Zarr group.
    rows_per_chunk : int, optional
        Samples per chunk; default the store's own chunking when it keeps
        all the features of a row together, else about Dask's
        ``array.chunk-size`` in multiples of 64 rows.
    """
    X = da.from_zarr(os.fspath(store) if isinstance(store, os.PathLike) else store,
                     component=component)
    _check_matrix(X.shape, f"zarr array '{store}'" + (f"/{component}" if component else ""))
    if rows_per_chunk is not None or len(X.chunks[1]) > 1:
        X = X.rechunk(_default_chunks(X.shape, X.dtype, rows_per_chunk))
    return X


class _HDF5Rows:
    """Rows of an HDF5 dataset, read by opening the file at each access:
    picklable (a path and a name), so it works on every scheduler."""

    def __init__(self, path, dataset):
        import h5py

        self.path = os.path.abspath(path)
        self.dataset = dataset
        with h5py.File(self.path, "r") as f:
            if dataset not in f or not isinstance(f[dataset], h5py.Dataset):
                raise InputError(f"HDF5 file '{path}' has no dataset '{dataset}'")
            data = f[dataset]
            self.shape, self.dtype = tuple(data.shape), data.dtype
        self.ndim = len(self.shape)

    def __getitem__(self, key):
        import h5py

        with h5py.File(self.path, "r") as f:
            return f[self.dataset][key]


def from_hdf5(path: str | os.PathLike, dataset: str, *,
              rows_per_chunk: int | None = None) -> da.Array:
    """An HDF5 dataset (n_samples, n_features) as a Dask array, without
    reading it (needs ``h5py``, part of the ``dask`` extra).

    Parameters
    ----------
    path : str or path
    dataset : str
        Name of the dataset in the file, e.g. ``"X"`` or ``"group/X"``.
    rows_per_chunk : int, optional
        Samples per chunk (default: about Dask's ``array.chunk-size``, a
        multiple of 64 rows).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"HDF5 file: no such file: '{path}'")
    rows = _HDF5Rows(path, dataset)
    _check_matrix(rows.shape, f"HDF5 dataset '{dataset}' of '{path}'")
    return da.from_array(rows, chunks=_default_chunks(rows.shape, rows.dtype, rows_per_chunk),
                         lock=False, asarray=True, meta=np.empty((0, 0), dtype=rows.dtype))


# --------------------------------------------------------------------------
# where the work runs
# --------------------------------------------------------------------------
@contextmanager
def use_scheduler(scheduler: str | None = None,
                  timeout: str | None = None) -> Iterator[str | Client | None]:
    """Run the Dask work of the ``with`` block on ``scheduler``.

    Parameters
    ----------
    scheduler : str, optional
        None: Dask's default (threads, or the distributed client already in
        use); ``"threads"``, ``"processes"`` or ``"synchronous"``: that local
        scheduler (``"processes"`` keeps one pool of worker processes for
        the block, shut down at its end: every compute in it, fits
        included, starts no other); anything else is the address of a running
        ``dask.distributed`` scheduler (``tcp://10.0.0.5:8786``), joined as
        a client for the block and left at its end (the cluster keeps
        running).
    timeout : str, optional
        How long to try to reach a cluster before giving up (``OSError``);
        default Dask's ``distributed.comm.timeouts.connect`` (30 s, or the
        environment variable ``DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT``).
    """
    if scheduler is None:
        yield None
    elif scheduler in LOCAL_SCHEDULERS:
        # "processes": one pool of workers for the whole block (fits,
        # transforms, any compute), started at its first compute.
        with dask.config.set(scheduler=scheduler), worker_pool():
            yield scheduler
    else:
        if scheduler.strip() and "://" not in scheduler and ":" not in scheduler:
            # A misspelt local scheduler ("proceses") read as a host name.
            raise InputError(f"scheduler '{scheduler}' is neither a local scheduler "
                             f"({', '.join(LOCAL_SCHEDULERS)}) nor the address of a Dask "
                             "scheduler (tcp://host:port)")
        try:
            from distributed import Client
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise MissingDependencyError("joining a cluster needs dask.distributed: "
                              "pip install 'fastrena[dask]'") from exc
        # Not ``set_as_default``: such a Client registers itself as the
        # process's default before it connects, and stays so if connecting
        # fails, so every later compute would wait for a cluster that never
        # comes. It is made current for the block only, once connected.
        try:
            _check_scheme(scheduler)
            options = {} if timeout is None else {"timeout": timeout}
            client = Client(scheduler, set_as_default=False, **options)
        except (OSError, ValueError, TypeError) as exc:
            raise OSError(f"cannot reach a Dask scheduler at '{scheduler}' "
                          f"({first_line(exc)})") from exc
        with client, client.as_current(), dask.config.set(scheduler=client):
            yield client


def _check_scheme(address):
    """ValueError for an address whose scheme Dask cannot speak, or a TCP
    address without a valid port, before a Client is made for it: such a
    Client, once failed, makes the interpreter wait a minute at exit
    trying to close it (and print its traceback)."""
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import get_backend

    if not address.strip():
        raise ValueError("an empty address")
    scheme, location = parse_address(address)
    get_backend(scheme)
    if scheme in ("tcp", "tls"):
        parse_host_port(location)
