"""Output files of the verbs that read a run (``predict``, ``plot``): never overwritten by surprise.

:func:`new_output` refuses an existing file unless ``force`` is given, and
holds the output's :class:`~mgno.lock.OutputLock` while the caller computes
and writes; the caller writes the file atomically (``mgno.atomic``) only after
every step succeeded, so a failure leaves no file and an older one untouched.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mgno.errors import InputError
from mgno.lock import OutputLock
from mgno.train.run_dir import writing


def check_new_output(
    out: str | os.PathLike,
    force: bool = False,
    *,
    source: str | os.PathLike | None = None,
    option: str = "--out",
) -> Path:
    """Refuse ``out`` when it is the input ``source``, a folder, or exists without ``force``."""
    out = Path(out)
    if source is not None and out.resolve() == Path(source).resolve():
        raise InputError(f"{out}: is the --input file; expected a different {option} path")
    if out.is_dir():
        raise InputError(f"{out}: is a folder, expected a file path for {option}")
    if out.exists() and not force:
        raise InputError(
            f"{out}: exists; expected a new {option} path (or --force to replace it)"
        )
    if not out.parent.is_dir():
        raise InputError(f"{out}: folder {out.parent} does not exist, expected an existing folder")
    return out


@contextmanager
def new_output(
    out: str | os.PathLike,
    force: bool = False,
    *,
    source: str | os.PathLike | None = None,
    option: str = "--out",
) -> Iterator[Path]:
    """Check ``out`` (see :func:`check_new_output`) and hold its lock while the caller writes."""
    path = check_new_output(out, force, source=source, option=option)
    with OutputLock(path), writing(path):
        check_new_output(path, force, source=source, option=option)  # again, under the lock
        yield path
