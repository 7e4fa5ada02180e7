"""Atomic file writes: a temporary file in the same folder, then a rename.

Every file mgno writes (data sets, checkpoints, run records, plots, bench
results) goes through :func:`atomic_path`: a crash, a full disk or a signal
leaves the old file or the new one, never half of one. The finished file gets
the permissions an ordinary ``open(path, "w")`` would give (``0o666`` less the
process umask), not the private ``0o600`` of a temporary file, so data sets and
runs stay readable by the people they are shared with.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mgno.errors import InputError


def _umask() -> int:
    """The process umask, read without changing it where the OS allows."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # no other portable reader: set and restore at once
    os.umask(mask)
    return mask


def fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the OS and file system allow)."""
    try:  # make the rename itself durable (not possible on every OS or file system)
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike, *, make_folder: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` on success.

    The temporary name keeps the extension of ``path`` (``.png``, ``.h5``...),
    so writers that choose a format from the name work unchanged. On any
    exception the temporary file is removed and ``path`` is left as it was.

    Parameters
    ----------
    path
        Destination file; replaced if it exists.
    make_folder
        Create the destination folder (and its parents) when missing instead of
        raising.

    Raises
    ------
    InputError
        When the destination is a folder, or its folder does not exist (and
        ``make_folder`` is false) or is not writable.
    """
    dest = Path(path)
    folder = dest.parent if str(dest.parent) else Path(".")
    if dest.is_dir():
        raise InputError(f"{dest}: output path is a folder, expected a file name")
    if make_folder:
        folder.mkdir(parents=True, exist_ok=True)
    if not folder.is_dir():
        raise InputError(f"{dest}: output folder {folder} does not exist")
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{dest.stem}.", suffix=f".tmp{dest.suffix}", dir=folder
        )
    except OSError as err:
        raise InputError(
            f"{dest}: output folder {folder} is not writable ({err.strerror})"
        ) from err
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_folder(folder)


def check_replaceable(out: str | os.PathLike, force: bool) -> None:
    """Refuse an existing output without ``force``, and always one that is not a plain file.

    A symbolic link or a device (``--out /dev/null``) is never replaced: the
    final rename would put a file in its place.
    """
    out = Path(out)
    if out.is_symlink() or (out.exists() and not out.is_file()):
        raise InputError(f"--out {out} exists and is not a regular file (a link or a device), "
                         "expected a new name or a data file")
    if out.exists() and not force:
        raise InputError(f"--out {out} already exists; pass --force to replace it, or choose "
                         "another name")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` (folders created), flushed to disk before the rename."""
    with atomic_path(path, make_folder=True) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Atomically write UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON."""
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


__all__ = [
    "atomic_path",
    "check_replaceable",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "fsync_folder",
]
