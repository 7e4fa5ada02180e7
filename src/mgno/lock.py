"""One writer per output: an exclusive, operating-system lock on a lock file.

Every verb that writes a run directory or a data file holds an
:class:`OutputLock` on it for as long as it writes. The lock is an
``fcntl.flock`` on a small lock file (``RUN_DIR/.lock``, ``FILE.h5.lock``)
that records who holds it. The kernel releases the lock when the holder's
process ends, however it ends, so a lock file left behind by a killed process
is *stale*: the next writer takes it over and is told so
(:attr:`OutputLock.stale_holder`). A second live writer gets
:class:`OutputBusyError`, one line naming the holder's process.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from types import TracebackType

from mgno.errors import InputError


class OutputBusyError(InputError):
    """Another live process holds the lock on an output."""


def lock_path_for(target: str | os.PathLike) -> Path:
    """The lock file of an output: ``DIR/.lock`` for a folder, ``FILE.lock`` for a file.

    Parameters
    ----------
    target
        A run directory (an existing folder, or a path ending in a separator),
        or a file path.
    """
    path = Path(target)
    if path.is_dir():
        return path / ".lock"
    return path.with_name(path.name + ".lock")


def _holder_line(record: dict) -> str:
    if not isinstance(record, dict) or "pid" not in record:
        return "another process"
    cmd = str(record.get("command", ""))[:120]
    return (
        f"process {record.get('pid')} on {record.get('host', '?')}"
        + (f" (`{cmd}`)" if cmd else "")
        + (f", since {record['started']}" if "started" in record else "")
    )


def _read_record(fd: int) -> dict | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        raw = os.read(fd, 4096)
        record = json.loads(raw.decode("utf-8")) if raw.strip() else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    return record if isinstance(record, dict) else None


class OutputLock:
    """Exclusive lock on one output, taken at ``acquire`` (or ``with``).

    Parameters
    ----------
    target
        The run directory or data file to protect.
    lock_file
        Where the lock lives; default :func:`lock_path_for` of ``target``.

    Attributes
    ----------
    stale_holder
        After acquiring: a one-line description of a previous holder that
        died without releasing (its record was still in the lock file), else
        None.
    """

    def __init__(self, target: str | os.PathLike, lock_file: str | os.PathLike | None = None):
        self.target = Path(target)
        self.path = Path(lock_file) if lock_file is not None else lock_path_for(target)
        self.stale_holder: str | None = None
        self._fd: int | None = None

    def acquire(self) -> OutputLock:
        """Take the lock or raise :class:`OutputBusyError` at once (never waits)."""
        if self._fd is not None:
            return self
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as err:
                if err.errno in (errno.ENOSPC, errno.EDQUOT):
                    # the machine's fault, not the input's: an OSError naming the file
                    raise OSError(err.errno, err.strerror, str(self.path)) from None
                raise InputError(
                    f"{self.target}: cannot create the lock file {self.path} "
                    f"({err.strerror}), expected a writable output folder"
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder_line(_read_record(fd) or {})
                os.close(fd)
                raise OutputBusyError(
                    f"{self.target}: {holder} is writing it; wait for it to end "
                    "or choose another output"
                ) from None
            # The file may have been unlinked by a releasing holder between our
            # open and our lock: then we hold a lock on a dead inode. Retry.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = _read_record(fd)
        self.stale_holder = _holder_line(previous) if previous else None
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:]),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(record).encode("utf-8"))
        self._fd = fd
        return self

    def release(self) -> None:
        """Remove the lock file and drop the lock (a no-op when not held)."""
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass  # a read-only folder keeps its (now unlocked, stale) lock file
        os.close(self._fd)
        self._fd = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def lock_holder(lock_file: str | os.PathLike) -> str | None:
    """Who holds the lock file now (one line), or None; never creates or takes it.

    For readers that want to know whether an output is still being written
    (``mgno export`` of a run still training, say).
    """
    try:
        fd = os.open(lock_file, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _holder_line(_read_record(fd) or {})
    finally:
        os.close(fd)
    return None


__all__ = ["OutputBusyError", "OutputLock", "lock_holder", "lock_path_for"]
