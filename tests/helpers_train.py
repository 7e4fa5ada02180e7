"""Shared helpers of the training tests: tiny synthetic data sets (no tests here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mgno.data.schema import write_steady, write_trajectories

TINY_NET = {"channels": 4, "layers": 1, "levels": 2}


def smooth_pairs(n: int, grid: int, seed: int, cin: int = 1, cout: int = 1):
    """Inputs (n, cin, g, g) and a smooth map of them (n, cout, g, g)."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, cin, grid, grid)).astype(np.float32)
    k = np.ones(3) / 3
    u = a.sum(1, keepdims=True)
    for axis in (2, 3):
        u = np.apply_along_axis(lambda v: np.convolve(v, k, mode="same"), axis, u)
    u = np.repeat(u, cout, axis=1) + 0.5
    return a, u.astype(np.float32)


def make_steady(
    path: Path, n: int = 16, grid: int = 16, seed: int = 0, cin: int = 1, cout: int = 1
) -> Path:
    """Write a tiny steady data set."""
    a, u = smooth_pairs(n, grid, seed, cin, cout)
    write_steady(path, a, u, pde="toy", params={"seed": seed}, boundary=["dirichlet"] * 2)
    return Path(path)


def make_trajectories(path: Path, n: int = 4, t: int = 6, grid: int = 16, seed: int = 0) -> Path:
    """Write tiny periodic trajectories: a field shifted one node per step, decaying."""
    rng = np.random.default_rng(seed)
    u0 = rng.standard_normal((n, 1, grid, grid)).astype(np.float32)
    frames = [np.roll(u0, s, axis=-1) * 0.9**s for s in range(t)]
    traj = np.stack(frames, axis=1)
    write_trajectories(
        path, traj, np.arange(t, dtype=float), pde="toy", params={}, boundary=["periodic"] * 2
    )
    return Path(path)
