"""HDF5 without surprises: data that stays inside the file, writes that fail in one line.

Reading. An HDF5 file can point out of itself: an external link names another
file, a soft link can lead through one, a virtual dataset maps other files'
data and external raw storage reads any file on the machine (``/etc/passwd``
as float64). Data files come from the internet, so :func:`contained_dataset`
resolves a name link by link, never opening another file, and refuses all
four with one line naming the dataset.

Writing. When the disk fills or the file size limit is reached, HDF5 raises
assorted ``ValueError``/``RuntimeError``/``OSError`` and, if the file object
is left to the garbage collector, prints tracebacks while it dies.
:func:`h5_create` closes the file itself, removes it and raises
:class:`~mgno.errors.OutputFault` with one line instead.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py

from mgno.errors import InputError, OutputFault

_MAX_LINK_DEPTH = 16
H5_ERRORS = (OSError, RuntimeError, ValueError, KeyError, TypeError)
"""What h5py raises for failed I/O (it is not consistent about it)."""


def _resolve(f: h5py.File, path: str, name: str, where: str, depth: int = 0) -> str | None:
    """A path to ``path`` made of hard links only (None when absent)."""
    if depth > _MAX_LINK_DEPTH:
        raise InputError(f"{where}: dataset {name!r} is behind a loop of soft links, "
                         "expected data stored in the file")
    resolved = ""
    for part in (p for p in path.split("/") if p):
        here = f"{resolved}/{part}"
        link = f.get(here, getlink=True)
        if link is None:
            return None
        if isinstance(link, h5py.ExternalLink):
            raise InputError(
                f"{where}: dataset {name!r} is an external link to {link.filename}:{link.path}, "
                "expected data stored in the file itself"
            )
        if isinstance(link, h5py.SoftLink):
            target = link.path if link.path.startswith("/") else f"{resolved}/{link.path}"
            found = _resolve(f, target, name, where, depth + 1)
            if found is None:
                return None
            resolved = found
        elif isinstance(link, h5py.HardLink):
            resolved = here
        else:
            raise InputError(f"{where}: dataset {name!r} is a {type(link).__name__}, "
                             "expected data stored in the file")
    return resolved or "/"


def contained_dataset(f: h5py.File | h5py.Group, name: str, where: str) -> h5py.Dataset | None:
    """The dataset ``name`` of ``f``, refusing data that lives outside the file.

    Parameters
    ----------
    f : h5py.File or h5py.Group
        An open file (names are resolved from its root).
    name : str
        Path of the dataset, e.g. ``"inputs"`` or ``"0001/data"``.
    where : str
        The file, for messages.

    Returns
    -------
    h5py.Dataset or None
        None when the name does not exist or is not a dataset.

    Raises
    ------
    InputError
        For an external link, a soft link leading out of the file or into a
        loop, a virtual dataset or external raw storage.
    """
    base = f.name if isinstance(f, h5py.Group) else "/"
    path = name if name.startswith("/") else f"{base.rstrip('/')}/{name}"
    resolved = _resolve(f.file, path, name, where)
    if resolved is None:
        return None
    obj = f.file[resolved]
    if not isinstance(obj, h5py.Dataset):
        return None
    if obj.is_virtual:
        raise InputError(f"{where}: dataset {name!r} is a virtual dataset (its data lives in "
                         "other files), expected data stored in the file itself")
    external = obj.external
    if external:
        first = external[0][0]
        first = first.decode("utf-8", "replace") if isinstance(first, bytes) else str(first)
        raise InputError(f"{where}: dataset {name!r} uses external storage ({first!r}), "
                         "expected data stored in the file itself")
    return obj


def contained_keys(f: h5py.File | h5py.Group, where: str) -> list[str]:
    """Names of the members of a group that are datasets stored in the file.

    Raises :class:`InputError` (see :func:`contained_dataset`) for a member
    dataset whose data would come from elsewhere; groups are left out.
    """
    names = []
    for key in f.keys():
        link = f.get(key, getlink=True)
        if isinstance(link, h5py.HardLink) and isinstance(f.get(key), h5py.Group):
            continue
        if contained_dataset(f, key, where) is not None:
            names.append(key)
    return names


def one_line(err: BaseException, limit: int = 200) -> str:
    """An HDF5 error message on one line, its useful part first."""
    text = " ".join(str(err).split())
    match = re.search(r"error message = '([^']*)'", text)
    if match:
        head = text.split("(")[0].strip()
        text = f"{head}: {match.group(1)}"
    return (text or type(err).__name__)[:limit]


def close_quietly(f: h5py.File) -> None:
    """Close a file whose last write failed, swallowing the failure of the close."""
    try:
        f.close()
    except H5_ERRORS:
        pass


def fsync_path(path: str | os.PathLike) -> None:
    """Flush a closed file's data to the disk (so a rename after it is durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_IO_WORDS = re.compile(
    r"errno = \d+|write failed|unable to extend|no space|file too large|quota|input/output",
    re.IGNORECASE,
)


def is_io_failure(err: BaseException) -> bool:
    """Whether an h5py exception reports a failed read or write of the disk (not a bug)."""
    if isinstance(err, OSError) and err.errno is not None:
        return True
    return bool(_IO_WORDS.search(str(err)))


def write_fault(dest: str | os.PathLike, err: BaseException) -> OutputFault:
    """The one-line :class:`OutputFault` for a write of ``dest`` that failed."""
    return OutputFault(f"{dest}: writing failed ({one_line(err)}); nothing was written "
                       "there, free some space (or raise the file size limit) and run again")


@contextmanager
def h5_create(path: str | os.PathLike, dest: str | os.PathLike) -> Iterator[h5py.File]:
    """Create the HDF5 file ``path`` (a temporary name of ``dest``) and close it safely.

    On a failed write the file is closed without the garbage collector's
    tracebacks, removed, and :class:`OutputFault` is raised naming ``dest``;
    on success the file is closed and flushed to the disk.
    """
    try:
        f = h5py.File(path, "w")
    except H5_ERRORS as err:
        raise write_fault(dest, err) from None
    try:
        yield f
        f.flush()
    except InputError:
        close_quietly(f)
        raise
    except H5_ERRORS as err:
        close_quietly(f)
        Path(path).unlink(missing_ok=True)
        if not is_io_failure(err):
            raise
        raise write_fault(dest, err) from None
    except BaseException:
        close_quietly(f)
        raise
    try:
        f.close()
        fsync_path(path)
    except H5_ERRORS as err:
        Path(path).unlink(missing_ok=True)
        raise write_fault(dest, err) from None


__all__ = [
    "H5_ERRORS",
    "close_quietly",
    "contained_dataset",
    "contained_keys",
    "fsync_path",
    "h5_create",
    "is_io_failure",
    "one_line",
    "write_fault",
]
