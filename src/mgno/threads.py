"""How many threads a computing verb uses: ``--threads N``.

The default is the number of cores this process may run on (its CPU
affinity, which a batch scheduler or ``taskset`` narrows), not the number of
cores the machine has. Fewer threads than cores is often faster on a machine
that is doing something else: every parallel region of an OpenMP program
waits for its slowest thread, and a thread that shares its core with another
busy process is descheduled for whole time slices (benchmarks/RESULTS.md,
"Under load").
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

from mgno.errors import InputError


def available_cores() -> int:
    """Cores this process may run on (CPU affinity where the OS reports it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on every OS
        return max(1, os.cpu_count() or 1)


def resolve_threads(value: int | str | None, *, option: str = "--threads") -> int:
    """The thread count to use for ``value`` (None or ``"auto"``: every available core).

    Parameters
    ----------
    value
        A positive integer, its string form, ``"auto"`` or None.
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
    cores = available_cores()
    if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
        return cores
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


__all__ = ["available_cores", "parse_threads", "resolve_threads", "use_threads"]
