"""Subnormal floats on the CPU, flushed to zero for speed.

Values below about 1.2e-38 (float32) can appear in the activations and
gradients of a trained network. x86 CPUs compute on such subnormal numbers
through a slow microcode path: a training step of the bench's trained U-Net
took 1.49 s instead of 0.25 s on one thread (benchmarks/bench_denormals.py,
benchmarks/RESULTS.md), and its epochs grew four times slower as it trained.
Flushing them to zero changes results only below 1.2e-38 in magnitude.
"""

from __future__ import annotations

import torch


def flush_denormals(enabled: bool = True) -> bool:
    """Treat subnormal floats as zero in this thread's CPU arithmetic (x86 FTZ and DAZ).

    The setting belongs to each thread, and a thread inherits it from the
    thread that creates it: call this before the first parallel torch
    operation of the process (the ``mgno`` command and the bench's child
    processes do), so that torch's worker threads inherit it too.
    ``enabled=False`` computes on subnormals again.

    Returns
    -------
    bool
        False where the CPU offers no such mode (nothing is changed).
    """
    return bool(torch.set_flush_denormal(enabled))


def denormals_flushed() -> bool:
    """Whether this thread's CPU arithmetic flushes subnormal floats to zero."""
    return float(torch.tensor([1e-39], dtype=torch.float32).mul(1.0).item()) == 0.0
