"""Safe writes, and arrays in files.

:func:`save_img`, :func:`save_array` write to a temporary name in the
destination folder and rename it, so a reader never sees a partial file,
and never overwrite an existing file unless ``force``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np

from ._interrupt import call_deferring_sigint
from .errors import InputError, first_line
from .images import CIFTI_SUFFIXES, is_cifti, is_gifti, is_nilearn_object, nibabel_module

if TYPE_CHECKING:  # annotations only: not imported at run time
    from nibabel.filebasedimages import FileBasedImage
    from numpy.typing import ArrayLike

__all__ = ["array_format", "check_image_name", "check_output", "load_array", "save_array",
           "save_img", "save_npy", "write_atomically"]

ARRAY_SUFFIXES = (".npy", ".csv", ".tsv")


# --------------------------------------------------------------------------
# safe writes
# --------------------------------------------------------------------------
def check_output(path: str | os.PathLike, force: bool = False, hint: str = "force=True") -> None:
    """Raise unless ``path`` can be written now.

    It must not exist (unless ``force``), and its folder must exist and
    accept a new file (tried for real: permissions alone do not tell, for
    instance for root on a read-only file system).

    Raises
    ------
    FileExistsError, InputError
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"output '{path}' is a folder; give a file name")
    if path.exists() and not force:
        raise FileExistsError(f"output '{path}' already exists; {hint} overwrites it")
    folder = path.parent
    if not folder.is_dir():
        raise InputError(f"output folder '{folder}' does not exist")
    probe = folder / f".fastrena-probe-{secrets.token_hex(6)}"
    try:
        # A Ctrl-C between creating the probe and removing it would leave it
        # behind: it is handled once both are done.
        call_deferring_sigint(_probe, (probe,), {})
    except OSError as exc:
        raise InputError(f"output folder '{folder}' is not writable ({exc.strerror})") from exc


def _probe(path):
    """Create the file ``path`` (not there before) and remove it."""
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    os.unlink(path)


def _temporary_name(path):
    # Same folder (the rename stays on one file system) and same ending as
    # the target (nibabel picks the format from it); hidden.
    return path.parent / f".{secrets.token_hex(6)}.tmp-{path.name}"


def write_atomically(path: str | os.PathLike, write: Callable[[Path], Any], force: bool = False,
                     hint: str = "force=True") -> Path:
    """Call ``write(temporary_path)``, then move the result to ``path``.

    Readers never see a partial file; on any error (or interruption) the
    temporary file is removed and ``path`` is left as it was. Without
    ``force`` an existing ``path`` is never replaced, even one created by
    someone else meanwhile (the final step is a hard link, which fails if
    the name is taken).
    """
    path = Path(path)
    check_output(path, force, hint)
    temporary = _temporary_name(path)
    try:
        os.close(os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        write(temporary)
        if force:
            os.replace(temporary, path)
        else:
            _move_without_overwriting(temporary, path, hint)
    except OSError as exc:
        if exc.errno is None:  # already says what went wrong (an existing output)
            raise
        raise _cannot_write(path, exc) from exc
    finally:
        if temporary.exists():
            temporary.unlink()
    return path


def _cannot_write(path, exc):
    """``exc`` (no space left, read-only file system...) as an error of the
    same type and errno naming the output rather than its temporary file."""
    message = f"cannot write output '{path}' ({exc.strerror or first_line(exc)})"
    try:
        error = type(exc)(message)
    except Exception:  # an OSError subclass with another signature
        error = OSError(message)
    error.errno = exc.errno
    return error


def _move_without_overwriting(source, target, hint):
    try:
        os.link(source, target)
    except FileExistsError:
        raise FileExistsError(f"output '{target}' already exists; {hint} overwrites it") from None
    except OSError:
        # File systems without hard links: check, then rename.
        if target.exists():
            raise FileExistsError(
                f"output '{target}' already exists; {hint} overwrites it") from None
        os.replace(source, target)
        return
    os.unlink(source)


#: Label image suffixes a lookup table's name replaces (longest first).
LABEL_SUFFIXES = (".dlabel.nii", ".label.gii", ".nii.gz", ".nii", ".gii")


def lookup_table_path(path):
    """The lookup table beside a label image: its name with the image
    suffix replaced by ``.tsv`` (``labels.nii.gz`` -> ``labels.tsv``,
    ``..._dseg.dlabel.nii`` -> ``..._dseg.tsv``, as BIDS names them)."""
    path = Path(path)
    name = path.name
    for suffix in LABEL_SUFFIXES:
        if name.lower().endswith(suffix):
            return path.with_name(name[:-len(suffix)] + ".tsv")
    return path.with_name(name + ".tsv")


def save_text(text, path, *, force=False, hint="force=True"):
    """Write ``text`` (UTF-8) to ``path`` atomically (see
    :func:`write_atomically`)."""
    return write_atomically(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"),
                            force, hint)


def check_image_name(path: str | os.PathLike, suffixes: Sequence[str]) -> None:
    """Raise unless the file name ``path`` ends with one of ``suffixes``
    (nibabel picks the format from it)."""
    if not str(path).lower().endswith(tuple(suffixes)):
        raise InputError(f"output '{path}' must end with {' or '.join(suffixes)}")


def save_img(img: FileBasedImage, path: str | os.PathLike, *, force: bool = False,
             hint: str = "force=True") -> Path:
    """Write a NIfTI (.nii, .nii.gz), GIfTI (.gii) or CIFTI-2 (.dlabel.nii,
    .dtseries.nii...) image atomically, never over an existing file unless
    ``force``."""
    if is_nilearn_object(img) and hasattr(img, "mesh"):
        # (nibabel would fail on it with an AttributeError.)
        raise InputError(
            f"cannot save a nilearn SurfaceImage to '{path}': save one GIfTI image per "
            "hemisphere (for a surface parcellation, fastrena.io.labels_to_gifti(rena) gives "
            "them: save_img(gifti, 'L.label.gii'), one per part)")
    if not hasattr(img, "to_filename"):
        raise InputError(f"cannot save a {type(img).__name__} to '{path}': give a nibabel "
                         "image (NIfTI, GIfTI or CIFTI-2)")
    if is_cifti(img):
        suffixes = CIFTI_SUFFIXES
    else:
        suffixes = (".gii",) if is_gifti(img) else (".nii", ".nii.gz")
    check_image_name(path, suffixes)
    return write_atomically(path, lambda tmp: nibabel_module().save(img, tmp), force, hint)


def array_format(path: str | os.PathLike) -> str:
    """The suffix of an array file name (.npy, .csv or .tsv); any other
    raises :class:`InputError`."""
    suffix = Path(path).suffix.lower()
    if suffix not in ARRAY_SUFFIXES:
        raise InputError(f"array '{path}': unknown format '{suffix}'; use "
                         f"{', '.join(ARRAY_SUFFIXES)}")
    return suffix


def save_array(array: ArrayLike, path: str | os.PathLike, *, force: bool = False,
               columns: Sequence[str] | None = None, hint: str = "force=True") -> Path:
    """Write an array to .npy, .csv or .tsv atomically.

    Text files get a header line of ``columns`` (if given) and every
    value with enough digits to read back exactly.
    """
    suffix = array_format(path)
    array = np.asarray(array)
    if suffix == ".npy":
        def write(tmp):
            save_npy(tmp, array)
    else:
        digits = 9 if array.dtype == np.float32 else 17

        def write(tmp):
            np.savetxt(tmp, np.atleast_2d(array), fmt=f"%.{digits}g",
                       delimiter="," if suffix == ".csv" else "\t",
                       header="" if columns is None else
                       ("," if suffix == ".csv" else "\t").join(columns),
                       comments="")
    return write_atomically(path, write, force, hint)


def save_npy(path, array):
    """Write ``array`` to the .npy file ``path`` (not atomically: see
    :func:`save_array`), raising the system's error when a write fails.

    ``np.save`` writes the data of a real file with ``ndarray.tofile``,
    whose error on a short write (a full disk) is a bare ``OSError: 60000
    requested and 16352 written``: no errno, no cause. Handed any other
    object with a ``write`` method, numpy writes the data through it in
    pieces of 16 MiB; here that is the file's own ``write``, which raises
    the error of the system call (ENOSPC: "No space left on device") with
    its errno. This also writes ``path`` as named: ``np.save`` given a name
    that does not end in lower-case ``.npy`` appends ``.npy`` to it.
    """
    with open(path, "wb") as file:
        np.save(SimpleNamespace(write=file.write), array, allow_pickle=False)


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_array(path: str | os.PathLike) -> np.ndarray:
    """Read a .npy, .csv or .tsv array (a text file's first line is a
    header when it is not all numbers). Text files give 2-D arrays."""
    suffix = array_format(path)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"array: no such file: '{path}'")
    try:
        if suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        else:
            delimiter = "," if suffix == ".csv" else "\t"
            with open(path) as f:
                first = f.readline().strip().split(delimiter)
            header = not all(_is_number(field) for field in first)
            array = np.loadtxt(path, delimiter=delimiter, skiprows=int(header), ndmin=2,
                               dtype=np.float64)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"array '{path}' cannot be read as {suffix} "
                         f"({first_line(exc)})") from exc
    if array.ndim not in (1, 2) or not np.issubdtype(array.dtype, np.number) \
            or np.iscomplexobj(array):
        raise InputError(f"array '{path}' must be a 1-D or 2-D array of real numbers, "
                         f"got shape {array.shape} and dtype {array.dtype}")
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    return array
