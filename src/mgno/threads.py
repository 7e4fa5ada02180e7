"""How many threads a computing verb uses: ``--threads N|auto``.

``auto`` (the default) takes the cores this process may run on (its CPU
affinity, which a batch scheduler or ``taskset`` narrows, not the number of
cores the machine has), less the cores that other processes keep busy when
the command starts (measured over 0.2 s from ``/proc/stat`` where it exists; a
core counts from 0.7 of it taken), and never more than ``OMP_NUM_THREADS``
where that is set.
Fewer threads than cores is much faster on a machine that is doing something
else: every parallel region of an OpenMP program waits for its slowest
thread, and a thread that shares its core with another busy process is
descheduled for whole time slices (docs/performance.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from mgno.errors import InputError


def available_cores() -> int:
    """Cores this process may run on (CPU affinity where the OS reports it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on every OS
        return max(1, os.cpu_count() or 1)


def _cpu_times(path: Path) -> dict[int, tuple[int, int]]:
    """cpu index -> (idle ticks, all ticks) from a ``/proc/stat``-style file."""
    out: dict[int, tuple[int, int]] = {}
    for line in path.read_text().splitlines():
        name, *fields = line.split()
        if not (name.startswith("cpu") and name[3:].isdigit()):
            continue
        ticks = [int(v) for v in fields[:8]]
        out[int(name[3:])] = (ticks[3] + ticks[4], sum(ticks))  # idle + iowait
    return out


def busy_fraction(
    before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]], cpus: set[int]
) -> float:
    """Cores' worth of time other work took on ``cpus`` between two readings."""
    busy = 0.0
    for cpu in cpus & before.keys() & after.keys():
        idle = after[cpu][0] - before[cpu][0]
        total = after[cpu][1] - before[cpu][1]
        if total > 0:
            busy += min(1.0, max(0.0, 1.0 - idle / total))
    return busy


def busy_cores(interval: float = 0.1, stat: str | os.PathLike = "/proc/stat") -> float:
    """Cores' worth of this process's cores kept busy by others (0.0 where unknown)."""
    path = Path(stat)
    try:
        cpus = set(os.sched_getaffinity(0))
        before = _cpu_times(path)
        time.sleep(interval)
        after = _cpu_times(path)
    except (AttributeError, OSError, ValueError, IndexError):
        return 0.0
    return busy_fraction(before, after, cpus)


def env_thread_cap() -> int | None:
    """``OMP_NUM_THREADS`` when it is a positive integer, else None.

    A scheduler, a parent process (``mgno bench`` sets it for its children) or
    the user said how many threads a process gets: ``auto`` never takes more.
    """
    try:  # "4,2" (nested levels) caps the outer level at 4
        n = int(os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip())
    except ValueError:
        return None
    return n if n >= 1 else None


def auto_threads() -> int:
    """``--threads auto``: the available cores less those other work keeps busy (at least 1).

    Never more than ``OMP_NUM_THREADS`` where that is set (:func:`env_thread_cap`):
    ``auto`` decides once, at the start, and a process that took both cores of
    an idle machine slows down about tenfold when other work arrives later
    (benchmarks/RESULTS.md, issue 17), so a parent's explicit count wins.
    """
    cores = min(available_cores(), env_thread_cap() or available_cores())
    if cores == 1:
        return 1
    # a core counts as taken from 0.7 of it: a busy process takes ~1.0, while
    # the kernel's and a VM's own work over the window came to ~0.5 here
    # (benchmarks/RESULTS.md, "Speed beside a busy process")
    return max(1, cores - int(busy_cores(0.2) + 0.3))


def resolve_threads(value: int | str | None, *, option: str = "--threads") -> int:
    """The thread count to use for ``value`` (None or ``"auto"``: every available core).

    Parameters
    ----------
    value
        A positive integer, its string form, ``"auto"`` or None (both
        :func:`auto_threads`).
    option
        The option's name, for messages.

    Returns
    -------
    int
        ``value`` clamped to :func:`available_cores`; a clamp is reported on
        stderr in one line.

    Raises
    ------
    InputError
        For zero, negative or non-integer values.
    """
    if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
        return auto_threads()
    cores = available_cores()
    try:
        n = int(value)
        if isinstance(value, float) and value != n:
            raise ValueError
    except (TypeError, ValueError):
        raise InputError(
            f"{option} {value!r} is not a whole number, expected 1..{cores} or 'auto'"
        ) from None
    if n < 1:
        raise InputError(f"{option} {n} is below 1, expected 1..{cores} or 'auto'")
    if n > cores:
        print(
            f"mgno: warning: {option} {n} is more than the {cores} core(s) this process "
            f"may use; using {cores}",
            file=sys.stderr,
        )
        return cores
    return n


def use_threads(value: int | str | None, *, option: str = "--threads") -> int:
    """Resolve ``value`` (see :func:`resolve_threads`) and set torch's intra-op threads.

    Returns the thread count in use, for the run's or the data file's metadata.
    """
    import torch

    n = resolve_threads(value, option=option)
    torch.set_num_threads(n)
    return n


def parse_threads(text: str) -> int | str:
    """argparse ``type=`` for ``--threads``: an integer or ``auto`` (checked later)."""
    text = text.strip()
    if text.lower() == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number or 'auto'") from None


__all__ = [
    "auto_threads",
    "available_cores",
    "busy_cores",
    "busy_fraction",
    "env_thread_cap",
    "parse_threads",
    "resolve_threads",
    "use_threads",
]
