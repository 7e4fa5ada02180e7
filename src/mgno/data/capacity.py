"""What the machine can hold: available memory, free disk, the file size limit.

Writers check a request against these *before* they allocate or write, so an
absurd size ends in a one-line message with the estimate instead of a
MemoryError or a half-written file.
"""

from __future__ import annotations

import os
import resource
import shutil
from pathlib import Path


def human_bytes(n: float) -> str:
    """``1536`` -> ``"1.5 KiB"``: a byte count for messages."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(value) < 1024 or unit == "PiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} PiB"  # pragma: no cover - unreachable


def _cgroup_limit() -> int | None:
    for name in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(name).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:
            return int(text)
    return None


def available_memory() -> int | None:
    """Bytes of memory this process can still allocate (None when unknown).

    The smallest of ``MemAvailable`` in ``/proc/meminfo``, the cgroup limit
    and what the address-space limit (``ulimit -v``) leaves.
    """
    found = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError, IndexError):
        pass
    if found is None:
        try:
            found = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            found = None
    limit = _cgroup_limit()
    if limit is not None:
        found = limit if found is None else min(found, limit)
    room = _address_space_left()
    if room is not None:
        found = room if found is None else min(found, room)
    return found


def _address_space_left() -> int | None:
    """What ``ulimit -v`` (RLIMIT_AS) still allows this process, or None."""
    try:
        soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    except (OSError, ValueError):
        return None
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return max(0, soft - int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    return int(soft)


def writable_bytes(folder: str | os.PathLike) -> tuple[int | None, str]:
    """How many bytes one new file in ``folder`` can hold, and what limits it.

    Returns
    -------
    (bytes or None, str)
        The smaller of the free disk space and the file size limit
        (``ulimit -f``); the string says which (``"free on disk"`` or
        ``"allowed by the file size limit (ulimit -f)"``). None when unknown.
    """
    free: int | None
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = None
    what = "free on disk"
    try:
        soft, _hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    except (OSError, ValueError):
        soft = resource.RLIM_INFINITY
    if soft != resource.RLIM_INFINITY and (free is None or soft < free):
        free, what = int(soft), "allowed by the file size limit (ulimit -f)"
    return free, what


__all__ = ["available_memory", "human_bytes", "writable_bytes"]
