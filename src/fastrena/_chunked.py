"""ReNA's passes over a Dask array chunked along samples.

Every quantity ReNA computes from the data is either per sample (cluster
means, transform, inverse_transform: each chunk of samples is done alone by
the in-memory kernels) or a sum over samples (the edge weights). The sum is
defined in :data:`fastrena._kernels.SAMPLE_BLOCK` as a binary tree over
blocks of 64 samples; a chunk whose rows start at a multiple of 64 computes
the sums of the aligned subtrees it holds (its *cover*), covers of
neighbouring chunks are merged subtree by subtree in a Dask tree reduction,
and the root is added up as the in-memory kernel does. So a chunked fit
gives the in-memory fit's float64 weights bit for bit, on any scheduler
and whatever the chunk sizes.

Between levels the reduced signals are kept (persisted) where the
scheduler keeps data: in the workers' memory on a ``dask.distributed``
cluster; in this process's memory on a local scheduler when they are
smaller than ``fastrena.in-memory-limit`` (a Dask configuration value,
default 2 GiB), else in temporary ``.npy`` files, one per chunk, under
Dask's ``temporary-directory``, deleted as soon as the next level no longer
needs them.

On Dask's local ``processes`` scheduler, a fit runs every pass on one pool
of worker processes (``worker_pool``, from :mod:`fastrena._processes`),
where Dask would start a new pool for each pass, and each chunk's task
computes the chunk itself (see :func:`_chunk_calls`): that scheduler sends
every task's inputs from this process to a worker and its result back, so
a chunk read by one task and used by another would cross twice more.

Only imported when a Dask array is given: Dask is an optional dependency.
"""

import os
import shutil
import tempfile
import uuid
import warnings
from contextlib import contextmanager
from types import SimpleNamespace

import dask
import dask.array as da
import numpy as np
from dask.utils import parse_bytes
from sklearn.utils.validation import validate_data

from . import arrays
from ._interrupt import call_deferring_sigint, finish_despite_sigint, interrupt_unmasked
from ._kernels import SAMPLE_BLOCK
from ._processes import ChunkGraph, computed_then, on_processes
from ._processes import worker_pool  # noqa: F401 - a verb of this backend
from ._validation import complex_data_error

#: Covers merged by one task of the weight pass's tree reduction.
_SPLIT_EVERY = 8

#: Default of the ``fastrena.in-memory-limit`` Dask configuration value.
DEFAULT_IN_MEMORY_LIMIT = "2GiB"


# --------------------------------------------------------------------------
# input
# --------------------------------------------------------------------------
def check_data(X, estimator=None, reset=None, check_values=True, input_name="X"):
    """Validate a 2-D Dask array of real numbers without reading it.

    float32 stays float32; other real types become float64 (lazily). With
    ``reset`` (True or False) and an ``estimator``, ``n_features_in_`` is
    set or checked as scikit-learn does. NaN and infinity are found by the
    passes themselves, or by one pass now with ``check_values``.
    """
    if X.ndim != 2:
        raise ValueError(f"Expected a 2-D dask array {input_name} of shape (n_samples, "
                         f"n_features), got {X.ndim}-D with shape {X.shape}")
    if any(np.isnan(size) for sizes in X.chunks for size in sizes):
        raise ValueError(f"{input_name} has unknown chunk sizes; call "
                         f"{input_name}.compute_chunk_sizes() first")
    if X.dtype.kind == "c":
        raise complex_data_error(input_name, X.dtype)
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{input_name} must hold real numbers, got a dask array of "
                         f"dtype {X.dtype}")
    name = "" if estimator is None else f" by {type(estimator).__name__}"
    for axis, what in ((0, "sample(s)"), (1, "feature(s)")):
        if X.shape[axis] < 1:
            raise ValueError(f"Found array with 0 {what} (shape={X.shape}) while a "
                             f"minimum of 1 is required{name}.")
    if reset is not None:
        validate_data(estimator, X, reset=reset, skip_check_array=True)
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    if check_values:
        check_finite(X, input_name)
    return X


#: Whether the ``"ward"`` levels may overwrite their own reduced signals
#: (``reduce_signals_in_place``): only arrays this backend made in memory.
REDUCES_IN_PLACE = False


def prepare(X):
    """The first level's signals: ``X`` :func:`sample_aligned`."""
    return sample_aligned(X)


def signal_store():
    """Where the levels' reduced signals are kept (see :class:`SignalStore`)."""
    return SignalStore()


def scale_by_power_of_two(F, exponent):
    """:func:`fastrena.arrays.scale_by_power_of_two`, lazily."""
    if exponent == 0:
        return F
    return F.map_blocks(arrays.scale_by_power_of_two, exponent, dtype=F.dtype)


def sample_aligned(X):
    """``X`` with all its features in one chunk and every chunk of samples
    but the last a multiple of :data:`SAMPLE_BLOCK` rows (what the weight
    pass needs). Kept as is when it already is; otherwise rechunked to
    :func:`aligned_rows` rows, chunks about as large as the largest given
    one."""
    rows = X.chunks[0]
    if len(X.chunks[1]) == 1 and all(r % SAMPLE_BLOCK == 0 for r in rows[:-1]):
        return X
    largest = max(r * c for r in X.chunks[0] for c in X.chunks[1]) * X.dtype.itemsize
    return X.rechunk({0: aligned_rows(X.shape[1], X.dtype, largest), 1: -1})


def aligned_rows(n_features, dtype, nbytes=0):
    """Rows per chunk of samples with all ``n_features``: a multiple of
    :data:`SAMPLE_BLOCK`, at least one, about ``nbytes`` per chunk (at
    least Dask's ``array.chunk-size``)."""
    budget = max(int(nbytes), parse_bytes(dask.config.get("array.chunk-size")))
    n_rows = budget // (n_features * np.dtype(dtype).itemsize)
    return max(SAMPLE_BLOCK, n_rows // SAMPLE_BLOCK * SAMPLE_BLOCK)


def features_whole(X):
    """``X`` with all its features in one chunk, for per-sample passes:
    ``X`` itself if so, else :func:`sample_aligned` (a chunk of all the
    features and the given rows could be far larger than the given ones)."""
    return X if len(X.chunks[1]) == 1 else sample_aligned(X)


def _row_blocks(X):
    """One ``Delayed`` per chunk of samples (X has one chunk of features)."""
    return list(X.to_delayed().ravel())


#: Name prefix of the Dask arrays of signals that :class:`SignalStore`
#: holds in this process's memory.
_HELD = "fastrena-held-"


def _in_workers(X):
    """Whether a pass over X runs in the worker processes of Dask's
    processes scheduler: yes, but for signals this process holds (the
    levels after the first, below ``fastrena.in-memory-limit``). Those are
    passed over in this process: sending them to workers and
    their results back costs more than the passes themselves, whose
    kernels run on all cores outside the GIL (and the labels are the same
    on any scheduler)."""
    return on_processes() and not X.name.startswith(_HELD)


def _chunk_calls(func, X, chunk_args, first=None):
    """One ``Delayed`` ``func(block, *chunk_args[i])`` per chunk of samples
    ``block`` of X (one chunk of features); ``first``, if given, is
    ``(function, nout)`` to call on the first chunk instead (a Delayed of
    ``nout`` values).

    On Dask's local processes scheduler each is one task that computes its
    block from the block's own graph (:class:`fastrena._processes.ChunkGraph`) and then calls
    ``func``: the block is read (or received, for signals this process
    keeps) by the worker that uses it, and only ``func``'s result comes
    back. Dask's own graph would make the block a task of its own, its
    result sent back to this process and out again to the task using it
    (with Dask's array aliases, several times): about four times the data
    through pipes, which made such fits 10 to 25 times slower than on
    threads. Elsewhere the blocks are tasks of the graph, as usual (a
    ``dask.distributed`` cluster keeps data in its workers)."""
    blocks = _row_blocks(X)
    funcs = [(func, None)] * len(blocks)
    if first is not None:
        funcs[0] = first
    if not _in_workers(X):
        return [dask.delayed(f, nout=nout)(block, *args)
                for (f, nout), block, args in zip(funcs, blocks, chunk_args)]
    graph = dict(blocks[0].__dask_graph__()) if blocks else {}
    return [dask.delayed(computed_then, nout=nout)(f, ChunkGraph(graph, block.key), *args)
            for (f, nout), block, args in zip(funcs, blocks, chunk_args)]


def _scheduler_options(source):
    """Options of a computation over ``source``: on Dask's processes
    scheduler, one task per worker at a time (its default sends ready tasks
    in batches of 6 to one worker: a pass over 5 chunks ran on one core),
    or this process (see :func:`_in_workers`)."""
    if not on_processes():
        return {}
    # Not Dask's "threads": it too would take the configured pool of
    # processes. One chunk at a time here; each kernel runs on all cores.
    return {"chunksize": 1} if _in_workers(source) else {"scheduler": "synchronous"}


def _client():
    """The ``dask.distributed`` client that computations go to, or None."""
    scheduler = dask.base.get_scheduler()
    owner = getattr(scheduler, "__self__", None)
    try:
        from distributed import Client
    except ImportError:
        return None
    return owner if isinstance(owner, Client) else None


def shared(array):
    """``array`` as one key of the task graph, sent once however many tasks
    use it. Not scattered to a cluster's workers: scattered data dies with
    the last worker holding it, while the scheduler can always recreate a
    key of the graph after a worker is lost."""
    return dask.delayed(array)


@contextmanager
def _sending_arrays():
    """Our graphs hold the edges or labels once (see :func:`shared`): silence
    distributed's advice about large graphs, which asks for just that."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sending large graph", category=UserWarning)
        yield


def _compute(*collections, source):
    """``dask.compute`` of a pass over the Dask array ``source`` (Ctrl-C
    meanwhile raises ``KeyboardInterrupt``, whatever it interrupted: see
    :func:`fastrena._interrupt.interrupt_unmasked`)."""
    with _sending_arrays(), interrupt_unmasked():
        return dask.compute(*collections, **_scheduler_options(source))


def _persist(*collections):
    with _sending_arrays(), interrupt_unmasked():
        return dask.persist(*collections)


def _held_array(parts, n_columns, dtype):
    """Chunks of samples this process computed as one Dask array (named
    :data:`_HELD`..., not hashed: Dask would read all of it to name it)."""
    name = f"{_HELD}{uuid.uuid4().hex}"
    graph = {(name, i, 0): part for i, part in enumerate(parts)}
    return da.Array(graph, name, chunks=(tuple(p.shape[0] for p in parts), (n_columns,)),
                    dtype=dtype)


# --------------------------------------------------------------------------
# the weight pass: a tree reduction over subtree sums
# --------------------------------------------------------------------------
def chunk_cover(F, first_row, u, v):
    """The sums of the aligned subtrees of blocks held by one chunk.

    ``F`` holds samples ``first_row`` (a multiple of SAMPLE_BLOCK) onwards.
    Returns a list of ``(first_block, n_blocks, weights)``: the greedy
    split of the chunk's blocks into aligned runs of 2**j blocks, each
    summed by the in-memory kernel (which, on 2**j blocks, builds exactly
    that subtree).
    """
    if first_row % SAMPLE_BLOCK:
        raise ValueError(f"a chunk starts at sample {first_row}, not a multiple of "
                         f"{SAMPLE_BLOCK}")
    n_rows = F.shape[0]
    first = first_row // SAMPLE_BLOCK
    stop = first + -(-n_rows // SAMPLE_BLOCK)
    cover = []
    block = first
    while block < stop:
        size = 1
        while block % (2 * size) == 0 and block + 2 * size <= stop:
            size *= 2
        rows = F[(block - first) * SAMPLE_BLOCK:(block - first + size) * SAMPLE_BLOCK]
        cover.append((block, size, arrays.edge_weights(rows, u, v)))
        block += size
    return cover


def merge_covers(*covers):
    """Covers of consecutive chunks as one cover: pushed left to right, two
    neighbouring runs that are the halves of one aligned run become that
    run, (left + right), as the binary counter of the kernel does."""
    stack = []
    for cover in covers:
        for run in cover:
            stack.append(run)
            while len(stack) >= 2:
                (s1, n1, w1), (s2, n2, w2) = stack[-2], stack[-1]
                if n1 != n2 or s1 % (2 * n1) or s1 + n1 != s2:
                    break
                stack[-2:] = [(s1, 2 * n1, w1 + w2)]
    return stack


def cover_total(cover):
    """The tree sum of a cover of all the blocks (from block 0): its runs,
    whose sizes decrease, added from the last to the first."""
    if not cover or cover[0][0] != 0:
        raise ValueError("the chunks do not cover the samples from the first one")
    total = cover[-1][2]
    for _, _, weights in reversed(cover[:-1]):
        total = weights + total
    return total


def edge_weights(F, u, v, first_sample=False):
    """:func:`fastrena.arrays.edge_weights` of a sample-aligned Dask array
    (see :func:`sample_aligned`), bit for bit, in one pass. With
    ``first_sample``, also F's first row in float64, from the same read."""
    u_shared, v_shared = shared(u), shared(v)
    first_rows = np.concatenate([[0], np.cumsum(F.chunks[0][:-1])]).astype(int)
    chunk_args = [(int(first), u_shared, v_shared) for first in first_rows]
    if first_sample:
        # The first chunk's task also gives its first row: the chunk is
        # read once for both.
        covers = _chunk_calls(chunk_cover, F, chunk_args, first=(_cover_and_first_row, 2))
        first = covers[0][1]
        covers = [covers[0][0], *covers[1:]]
    else:
        covers = _chunk_calls(chunk_cover, F, chunk_args)
    while len(covers) > 1:
        covers = [dask.delayed(merge_covers)(*covers[i:i + _SPLIT_EVERY])
                  for i in range(0, len(covers), _SPLIT_EVERY)]
    total = dask.delayed(cover_total)(covers[0])
    if not first_sample:
        return _compute(total, source=F)[0]
    return _compute(total, first, source=F)


def _cover_and_first_row(F, first_row, u, v):
    """:func:`chunk_cover`, and F's first row in float64."""
    return chunk_cover(F, first_row, u, v), np.array(F[0], dtype=np.float64)


def edge_weights_and_first_sample(F, u, v):
    """:func:`edge_weights` and F's first sample, in one pass."""
    return edge_weights(F, u, v, first_sample=True)


# --------------------------------------------------------------------------
# the reduction pass, and where its result is kept
# --------------------------------------------------------------------------
def _save_part(pair, path):
    """Write a chunk's reduced signals (feature-major, as computed) to
    ``path``; return whether they are all finite."""
    means, finite = pair
    try:
        with open(path, "wb") as file:
            # Through the file's own writes, as fastrena.files.save_npy
            # does: numpy's writes of a real file fail on a full disk with
            # "N requested and M written", without the cause.
            np.save(SimpleNamespace(write=file.write), means.T, allow_pickle=False)
    except OSError as exc:
        raise _cannot_spill(path, exc) from exc
    return finite


def _cannot_spill(path, exc):
    """``exc`` as an error of the same type and errno that names the file
    and says how to spill elsewhere, or not at all."""
    message = (f"cannot write reduced signals to the temporary file '{path}' "
               f"({exc.strerror or exc}); set Dask's temporary-directory to a folder with "
               "room, or raise fastrena.in-memory-limit to keep them in memory")
    try:
        error = type(exc)(message)
    except Exception:  # an OSError subclass with another signature
        error = OSError(message)
    error.errno = exc.errno
    return error


def _load_part(path):
    return np.load(path).T


class SignalStore:
    """Where a chunked fit keeps each level's reduced signals (see the
    module's docstring). A context manager: leaving it deletes every file
    it wrote."""

    def __init__(self, limit=None, directory=None):
        if limit is None:
            limit = dask.config.get("fastrena.in-memory-limit", DEFAULT_IN_MEMORY_LIMIT)
        self.limit = parse_bytes(limit) if isinstance(limit, str) else int(limit)
        self.directory = directory
        self._root = None
        self._level_folder = None
        self._retired = []
        self._n_folders = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Delete every file the store wrote. A Ctrl-C meanwhile is raised
        once they are all gone: cut short, the removal would leave a
        ``fastrena-*`` folder of files as large as the data behind."""
        root, self._root = self._root, None
        self._level_folder = None
        self._retired = []
        if root is not None:
            finish_despite_sigint(shutil.rmtree, root, ignore_errors=True)

    def _new_folder(self):
        if self._root is None:
            # The folder is made and recorded (for close) before a Ctrl-C
            # can be raised: in between, nothing would remove it.
            call_deferring_sigint(self._make_root, (), {})
        self._n_folders += 1
        folder = os.path.join(self._root, f"level{self._n_folders}")
        os.mkdir(folder)
        return folder

    def _make_root(self):
        parent = (self.directory or dask.config.get("temporary-directory", None)
                  or tempfile.gettempdir())
        self._root = tempfile.mkdtemp(prefix="fastrena-", dir=parent)

    def _replace_level_folder(self, folder):
        if self._level_folder is not None:
            self._retired.append(self._level_folder)
        self._level_folder = folder

    def release_previous(self):
        """Delete the files of every level's signals but the last kept: the
        caller has checked the last ones (they may have to be computed
        again from the previous level's, see ``fastrena.agglomeration``)."""
        for folder in self._retired:
            shutil.rmtree(folder, ignore_errors=True)
        self._retired = []

    def keep(self, F, labels, n_new, weights):
        """Materialize the next level's reduced signals, each chunk of
        samples of ``F`` reduced by :func:`fastrena.arrays.reduce_signals`
        (``labels``, ``n_new``, ``weights``: Delayed or None). Returns the
        signals as a Dask array whose chunks are computed, and whether they
        are all finite.
        """
        n_rows = F.chunks[0]
        args = (labels, n_new, None, weights)
        nbytes = sum(n_rows) * n_new * F.dtype.itemsize
        if _client() is not None:
            # Kept in the cluster's workers; only the flags come here.
            pairs = _persist(*_chunk_calls(arrays.reduce_signals, F, [args] * len(n_rows)))
            finite = all(_compute(*[pair[1] for pair in pairs], source=F))
            parts = [pair[0] for pair in pairs]
            self._replace_level_folder(None)
        elif nbytes <= self.limit:
            # Held in this process, where a local scheduler's results come.
            pairs = _compute(*_chunk_calls(arrays.reduce_signals, F, [args] * len(n_rows)),
                             source=F)
            self._replace_level_folder(None)
            return _held_array([p[0] for p in pairs], n_new, F.dtype), all(p[1] for p in pairs)
        else:
            folder = self._new_folder()
            paths = [os.path.join(folder, f"chunk{i}.npy") for i in range(len(n_rows))]
            # Each chunk is reduced and written by one task: on processes,
            # its signals never come to this process.
            finite = all(_compute(*_chunk_calls(_reduced_to_file, F,
                                                [(*args, path) for path in paths]),
                                  source=F))
            parts = [dask.delayed(_load_part)(path) for path in paths]
            self._replace_level_folder(folder)
        chunks = [da.from_delayed(part, shape=(rows, n_new), dtype=F.dtype)
                  for part, rows in zip(parts, n_rows)]
        return da.concatenate(chunks, axis=0), finite


def _reduced_to_file(F, labels, n_new, store, weights, path):
    """One chunk's reduced signals written to ``path`` (:func:`_save_part`)."""
    return _save_part(arrays.reduce_signals(F, labels, n_new, store, weights), path)


def reduce_signals(F, labels, n_new, store, weights=None):
    """:func:`fastrena.arrays.reduce_signals` of a Dask array, kept by
    ``store`` (a :class:`SignalStore`): (the next level's signals, whether
    all are finite)."""
    return store.keep(F, shared(labels), n_new, None if weights is None else shared(weights))


#: Default of the ``fastrena.refine-limit`` Dask configuration value: the
#: largest X gathered into memory for the boundary refinement. Apart from
#: ``fastrena.in-memory-limit`` (where the reduced signals are kept), so
#: that spilling them to disk does not turn the refinement off.
DEFAULT_REFINE_LIMIT = "2GiB"


def gathered(X):
    """``X`` computed into memory (a numpy array of its dtype) if it is no
    larger than ``fastrena.refine-limit``, else None. Its values are
    copied, never summed: the same bits whatever the chunking, so a pass
    over the result (:mod:`fastrena.refine`) gives the in-memory fit's."""
    limit = dask.config.get("fastrena.refine-limit", DEFAULT_REFINE_LIMIT)
    limit = parse_bytes(limit) if isinstance(limit, str) else int(limit)
    if X.nbytes > limit:
        return None
    return np.asarray(_compute(X, source=X)[0])


def max_abs(X):
    """:func:`fastrena.arrays.max_abs` of a Dask array, chunk by chunk."""
    X = features_whole(X)
    return max(_compute(*_chunk_calls(arrays.max_abs, X, [()] * len(X.chunks[0])),
                        source=X), default=0.0)


def check_finite(X, input_name="X"):
    """Raise scikit-learn's error if the Dask array X holds NaN or infinity
    (one pass, chunk by chunk)."""
    X = features_whole(X)
    # Not located: a block's rows are not X's (arrays.check_finite).
    _compute(*_chunk_calls(arrays.check_finite, X,
                           [(input_name, False)] * len(X.chunks[0])), source=X)


# --------------------------------------------------------------------------
# lazy transform and inverse_transform
# --------------------------------------------------------------------------
def means_of(X, labels, divisors):
    """:func:`fastrena.arrays.means_of` of a Dask array, lazily: a Dask
    array (n_samples, K), chunked as X along samples (as
    :func:`sample_aligned` rechunks X if its features are split); NaN or
    infinity in X raise when it is computed."""
    X = features_whole(X)
    labels_shared, divisors_shared = shared(labels), shared(divisors)
    parts = [da.from_delayed(dask.delayed(arrays.means_of)(block, labels_shared,
                                                          divisors_shared, False),
                             shape=(rows, divisors.shape[0]), dtype=X.dtype)
             for block, rows in zip(_row_blocks(X), X.chunks[0])]
    return da.concatenate(parts, axis=0)


def expand_clusters(X_red, labels, divisors=None):
    """:func:`fastrena.arrays.expand_clusters` of a Dask array, lazily:
    (n_samples, n_features) chunked as ``X_red`` along samples."""
    X_red = X_red if len(X_red.chunks[1]) == 1 else X_red.rechunk({1: -1})
    labels_shared = shared(labels)
    divisors_shared = None if divisors is None else shared(divisors)
    parts = [da.from_delayed(dask.delayed(arrays.expand_clusters)(block, labels_shared,
                                                           divisors_shared),
                             shape=(rows, labels.shape[0]), dtype=X_red.dtype)
             for block, rows in zip(_row_blocks(X_red), X_red.chunks[0])]
    return da.concatenate(parts, axis=0)
