"""In-memory torch ``Dataset`` views over the mgno HDF5 schema.

Two views cover every training protocol:

* :class:`PairDataset` -- steady problems, ``inputs[i] -> outputs[i]``.
* :class:`WindowDataset` -- time-dependent problems: from trajectory ``n``
  starting at frame ``t``, a window of ``steps_in`` frames and the
  ``steps_out`` frames that follow. One-step (NS2) training uses
  ``steps_in = steps_out = 1`` at every start ``t < train_steps``; the
  ``10-10`` protocol and rollout evaluation use one window per trajectory.

Both keep the whole array in memory (the paper's sets are a few hundred MB at
most) and offer :meth:`get_batch`, which gathers a batch with one indexing
operation instead of a Python loop over samples.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from mgno.data.schema import DatasetInfo, open_dataset, read_arrays
from mgno.errors import InputError


def check_finite(path: str | os.PathLike, name: str, array: np.ndarray) -> None:
    """Raise :class:`InputError` naming the first sample of ``array`` holding NaN or inf."""
    finite = np.isfinite(array.reshape(array.shape[0], -1)).all(axis=1)
    if not finite.all():
        first = int(np.flatnonzero(~finite)[0])
        raise InputError(
            f"{path}: dataset {name!r} holds NaN or inf in sample {first} "
            f"({int((~finite).sum())} samples in all), expected finite values"
        )


@dataclass
class LoadedData:
    """Arrays of one file plus its metadata (see :func:`load_arrays`)."""

    info: DatasetInfo
    arrays: dict[str, torch.Tensor]


def load_arrays(path: str | os.PathLike, start: int = 0, stop: int | None = None) -> LoadedData:
    """Read and check a data set: non-empty, finite, float32 tensors.

    Returns
    -------
    LoadedData
        ``arrays`` holds ``inputs``/``outputs`` ``(N, C, *grid)`` or
        ``trajectories`` ``(N, T, C, *grid)`` and ``times`` ``(T,)``.
    """
    info = open_dataset(path)
    if info.n_samples == 0:
        raise InputError(f"{path}: holds 0 samples, expected at least 1")
    raw = read_arrays(path, start, stop)
    out = {}
    for name, arr in raw.items():
        if name != "times":
            check_finite(path, name, arr)
        out[name] = torch.from_numpy(np.ascontiguousarray(arr))
    return LoadedData(info, out)


def inject(x: torch.Tensor, times: int, ndim: int) -> torch.Tensor:
    """Every other node of the last ``ndim`` axes, ``times`` over (restriction by injection).

    Coarse node ``i`` is fine node ``2**times * i``, where MgNO's stride-2
    restrictions put it, so each step takes ``n`` nodes to ``ceil(n / 2)``:
    65 -> 33 -> 17 (both ends kept), periodic 64 -> 32 (one period), and a
    non-periodic 64 -> 32 covers the domain less its last fine cell.

    Shapes: ``(..., *grid) -> (..., *coarse)``, a contiguous copy.
    """
    step = 2 ** int(times)
    return x[(Ellipsis, *([slice(None, None, step)] * ndim))].contiguous()


def coarsen_data(data: LoadedData, times: int) -> LoadedData:
    """``data`` with every array restricted by :func:`inject`, ``times`` over.

    The description follows: ``grid`` the coarse nodes, ``domain`` what they
    span (the spacing is ``2**times`` the file's on every axis). ``times`` 0
    returns ``data`` itself.
    """
    if times == 0:
        return data
    info, ndim, step = data.info, len(data.info.grid), 2 ** int(times)
    arrays = {k: v if k == "times" else inject(v, times, ndim) for k, v in data.arrays.items()}
    grid = tuple(-(-n // step) for n in info.grid)
    domain = []
    for (lo, hi), n, nc, bc in zip(info.domain, info.grid, grid, info.boundary, strict=True):
        h = (hi - lo) / (n if bc == "periodic" else max(n - 1, 1))
        domain.append((lo, hi) if bc == "periodic" else (lo, lo + (nc - 1) * step * h))
    return LoadedData(dataclasses.replace(info, grid=grid, domain=tuple(domain)), arrays)


def skip_frames(
    trajectories: torch.Tensor,
    first: int,
    path: str | os.PathLike,
    need: int = 2,
    hint: str = "",
) -> torch.Tensor:
    """``trajectories[:, first:]``, refusing to leave fewer than ``need`` frames.

    ``hint`` is appended to the error message. Shapes:
    ``(N, T, C, *grid) -> (N, T - first, C, *grid)``.
    """
    if first < 0:
        raise InputError(f"start_frame: expected an integer >= 0, got {first}")
    n_times = int(trajectories.shape[1])
    if n_times - first < need:
        raise InputError(
            f"{path}: trajectories of {n_times} frames, expected at least {first + need} "
            f"(start_frame {first}, then {need}){hint}"
        )
    return trajectories[:, first:] if first else trajectories


class PairDataset(Dataset):
    """Steady input/output pairs.

    Parameters
    ----------
    inputs:
        ``(N, C_in, *grid)``.
    outputs:
        ``(N, C_out, *grid)``.
    """

    def __init__(self, inputs: torch.Tensor, outputs: torch.Tensor) -> None:
        if inputs.shape[0] != outputs.shape[0] or inputs.shape[2:] != outputs.shape[2:]:
            raise InputError(
                f"data: inputs {tuple(inputs.shape)} and outputs {tuple(outputs.shape)} "
                "disagree, expected the same samples and grid"
            )
        self.inputs = inputs
        self.outputs = outputs

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inputs[i], self.outputs[i]

    def get_batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, C_in, *grid)`` inputs and ``(B, C_out, *grid)`` outputs of samples ``idx``."""
        return self.inputs[idx], self.outputs[idx]


class WindowDataset(Dataset):
    """Windows of trajectories: ``steps_in`` frames in, the next ``steps_out`` frames out.

    Parameters
    ----------
    trajectories:
        ``(N, T, C, *grid)``.
    steps_in, steps_out:
        Frames in the input window and frames that follow it.
    starts:
        First frame of each window (default ``[0]``); sample ``i`` is
        trajectory ``i // len(starts)`` from frame ``starts[i % len(starts)]``.

    Items are ``(window, future)`` of shapes ``(steps_in, C, *grid)`` and
    ``(steps_out, C, *grid)``.
    """

    def __init__(
        self,
        trajectories: torch.Tensor,
        steps_in: int,
        steps_out: int,
        starts: Sequence[int] | None = None,
    ) -> None:
        starts = [0] if starts is None else [int(s) for s in starts]
        n_times = trajectories.shape[1]
        need = max(starts) + steps_in + steps_out
        if need > n_times or min(starts) < 0:
            raise InputError(
                f"data: trajectories have {n_times} frames, expected at least {need} "
                f"({steps_in} in + {steps_out} out from frame {max(starts)})"
            )
        self.trajectories = trajectories
        self.steps_in = steps_in
        self.steps_out = steps_out
        self.starts = torch.tensor(starts, dtype=torch.long)

    def __len__(self) -> int:
        return int(self.trajectories.shape[0] * len(self.starts))

    def _index(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k = len(self.starts)
        traj = torch.div(idx, k, rounding_mode="floor")
        t0 = self.starts[idx % k]
        return traj, t0

    def get_batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Windows ``(B, steps_in, C, *grid)`` and futures ``(B, steps_out, C, *grid)``."""
        idx = torch.as_tensor(idx, dtype=torch.long).reshape(-1)
        traj, t0 = self._index(idx)
        t_in = t0[:, None] + torch.arange(self.steps_in)
        t_out = t0[:, None] + self.steps_in + torch.arange(self.steps_out)
        u = self.trajectories
        return u[traj[:, None], t_in], u[traj[:, None], t_out]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.get_batch(torch.tensor([i]))
        return x[0], y[0]
