"""What a run learns: steady maps, one-step rollouts or k -> k windows.

A :class:`Task` is the only place in mgno's training code that looks at the
kind of data (``steady`` pairs or ``trajectory`` frames) or at the protocol
(``steady``, ``one-step``, ``10-10``). It owns

* the channel counts of the network (a window of frames stacked as channels),
* the dataset views for training, validation and evaluation,
* the frame window: frames before ``start_frame`` are cut from every
  trajectory, in training, evaluation, prediction, plots and benchmarks
  (:meth:`Task.cut_frames`, :meth:`Task.rollout_inputs`),
* the loss call on a batch and the application of the predictor (one step, a
  rollout, or an unrolled one-step window with the pushforward trick).

Everything else asks the task; nothing else compares these words.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from mgno.data.datasets import LoadedData, PairDataset, WindowDataset, skip_frames
from mgno.data.schema import STEADY, TRAJECTORY, DatasetInfo
from mgno.errors import InputError

#: Protocols (the words of ``TrainConfig.protocol``).
STEADY_PROTOCOL, ONE_STEP, K_TO_K = "steady", "one-step", "10-10"


def rolls_out(kind: str) -> bool:
    """Whether a predictor of ``kind`` (``"steady"`` or ``"trajectory"``) rolls frames out."""
    if kind not in (STEADY, TRAJECTORY):
        raise ValueError(f"kind: expected {STEADY!r} or {TRAJECTORY!r}, got {kind!r}")
    return kind == TRAJECTORY


def check_protocol(info: DatasetInfo, protocol: str, source: str) -> None:
    """Refuse a protocol that does not fit the kind of data in ``info``."""
    if info.kind == STEADY and protocol != STEADY_PROTOCOL:
        raise InputError(
            f"{info.path}: holds steady pairs, but the {source} protocol is {protocol!r}; "
            "expected 'steady' (one-step and 10-10 need trajectories)"
        )
    if info.kind == TRAJECTORY and protocol == STEADY_PROTOCOL:
        raise InputError(
            f"{info.path}: holds trajectories, but the {source} protocol is 'steady'; "
            "expected 'one-step' or '10-10'"
        )


def check_rollout_training(info: DatasetInfo, cfg) -> None:
    """Refuse ``unroll`` / ``input_noise`` where the data or the protocol have no use for them.

    ``cfg`` is a :class:`~mgno.train.TrainConfig` (its values already range-checked).
    Unrolled training needs trajectories and the ``one-step`` protocol (``10-10``
    trains through its rollout already); input noise needs trajectories.
    Whether the trajectories are long enough is checked by :meth:`Task.train_view`.
    """
    if cfg.unroll != 1 and (info.kind == STEADY or cfg.protocol != ONE_STEP):
        what = "steady pairs" if info.kind == STEADY else f"the {cfg.protocol!r} protocol"
        raise InputError(
            f"--unroll: {cfg.unroll} steps asked, but {info.path} is trained with {what}; "
            "expected 1, or trajectories with the 'one-step' protocol"
        )
    if cfg.input_noise != 0 and info.kind == STEADY:
        raise InputError(
            f"--input-noise: {cfg.input_noise} asked, but {info.path} holds steady pairs; "
            "expected 0, or trajectories (noise is added to their input frames)"
        )


def default_recipe(info: DatasetInfo) -> dict[str, Any]:
    """Training recipe implied by the kind of data alone (a starting point without a preset)."""
    if info.kind == STEADY:
        return {
            "protocol": STEADY_PROTOCOL,
            "loss": "rel_l2",
            "normalizer_inputs": "pointwise",
            "normalizer_outputs": "pointwise",
        }
    return {
        "protocol": ONE_STEP,
        "loss": "rel_l2",
        "normalizer_inputs": "none",
        "normalizer_outputs": "none",
        "weight_decay": 1e-5,
    }


def check_same_data(train: DatasetInfo, val: DatasetInfo) -> None:
    """Refuse validation data whose kind, grid or channels differ from the training data."""
    where = f"{val.path} (validation) vs {train.path} (training)"
    if train.kind != val.kind:
        raise InputError(f"{where}: kind {val.kind!r}, expected {train.kind!r}")
    if tuple(train.grid) != tuple(val.grid):
        raise InputError(f"{where}: grid {list(val.grid)}, expected {list(train.grid)}")
    if (train.in_channels, train.out_channels) != (val.in_channels, val.out_channels):
        raise InputError(
            f"{where}: channels in/out {val.in_channels}/{val.out_channels}, "
            f"expected {train.in_channels}/{train.out_channels}"
        )


def check_run_data(info: DatasetInfo, record: Mapping[str, Any], run: os.PathLike | str) -> None:
    """Refuse data whose kind, dimension or channels differ from a run's training data.

    ``record`` is the ``data`` entry of the run's ``config.json``.
    """
    if info.kind != record["kind"]:
        raise InputError(
            f"{info.path}: holds {info.kind} data, but {run} was trained on "
            f"{record['kind']} data; expected {record['kind']}"
        )
    if len(info.grid) != len(record["grid"]):
        raise InputError(
            f"{info.path}: {len(info.grid)}-D grid {list(info.grid)}, expected "
            f"{len(record['grid'])}-D like the training grid {record['grid']}"
        )
    for key in ("in_channels", "out_channels"):
        found, want = getattr(info, key), record[key]
        if found != want:
            raise InputError(
                f"{info.path}: {key} is {found}, but the checkpoint in {run} expects {want}"
            )


@dataclass(frozen=True)
class Task:
    """The learning problem of a run.

    Attributes
    ----------
    data_kind:
        ``"steady"`` (``inputs -> outputs``) or ``"trajectory"`` (frames).
    protocol:
        ``"steady"``, ``"one-step"`` (teacher-forced ``t -> t+1``) or ``"10-10"``
        (``steps_in`` frames in, ``steps_out`` predicted autoregressively).
    start_frame:
        Trajectories: frames before this one are never used.
    steps_in, steps_out, train_steps, unroll, unroll_grad:
        As in :class:`mgno.train.TrainConfig`.
    """

    data_kind: str
    protocol: str
    start_frame: int = 0
    steps_in: int = 10
    steps_out: int = 10
    train_steps: int | None = None
    unroll: int = 1
    unroll_grad: str = "last"

    @classmethod
    def from_config(cls, data_kind: str, cfg) -> Task:
        """The task of a :class:`~mgno.train.TrainConfig` on data of ``data_kind``."""
        rolls_out(data_kind)  # validates the word
        return cls(data_kind, cfg.protocol, cfg.start_frame, cfg.steps_in, cfg.steps_out,
                   cfg.train_steps, cfg.unroll, cfg.unroll_grad)

    # ------------------------------------------------------------------ what it is
    @property
    def steady(self) -> bool:
        """True for steady pairs."""
        return self.data_kind == STEADY

    @property
    def one_step(self) -> bool:
        """True for the teacher-forced one-step protocol on trajectories."""
        return not self.steady and self.protocol == ONE_STEP

    @property
    def predictor_kind(self) -> str:
        """The ``kind`` of :class:`~mgno.train.rollout.Predictor`."""
        return STEADY if self.steady else TRAJECTORY

    @property
    def window(self) -> int:
        """Frames in the input window (1 for steady data and one-step rollouts)."""
        return 1 if self.steady or self.one_step else self.steps_in

    def channels(self, info: DatasetInfo) -> tuple[int, int]:
        """``(in_channels, out_channels)`` of the network on the data of ``info``."""
        if self.steady:
            return info.in_channels, info.out_channels
        return self.window * info.in_channels, info.in_channels

    # ------------------------------------------------------------------ the frame window
    def cut_frames(self, trajectories: torch.Tensor, path, need: int = 2,
                   first: int | None = None, hint: str = "") -> torch.Tensor:
        """Trajectories from frame ``first`` (default ``start_frame``), at least ``need`` left.

        ``(N, T, C, *grid) -> (N, T - first, C, *grid)``.
        """
        start = self.start_frame if first is None else int(first)
        return skip_frames(trajectories, start, path, need=need, hint=hint)

    def _rollout_frames(self, trajectories: torch.Tensor, path) -> tuple[torch.Tensor, int]:
        w = self.window
        traj = self.cut_frames(trajectories, path, need=w + 1)
        steps = min(self.steps_out, traj.shape[1] - w)
        return traj[:, : w + steps], steps

    def rollout_inputs(self, arrays: Mapping[str, torch.Tensor], path
                       ) -> tuple[torch.Tensor, torch.Tensor, int | None]:
        """Inputs, truth and rollout length of a data set, as ``mgno eval`` scores it.

        Steady: ``inputs (N, C_in, *grid)``, ``outputs (N, C_out, *grid)``, None.
        Trajectories, from ``start_frame``: the first window
        ``(N, window, C, *grid)``, the next ``steps`` frames ``(N, steps, C, *grid)``
        (``steps = min(steps_out, frames after the window)``), and ``steps``.
        """
        if self.steady:
            return arrays["inputs"], arrays["outputs"], None
        traj, steps = self._rollout_frames(arrays["trajectories"], path)
        return traj[:, : self.window], traj[:, self.window :], steps

    def check_start_frame(self, first: int | None) -> None:
        """Refuse a ``--start-frame`` that is not a frame index, or given for steady data."""
        if first is None:
            return
        if isinstance(first, bool) or not isinstance(first, int) or first < 0:
            raise InputError(f"--start-frame: found {first!r}, expected an integer >= 0")
        if self.steady:
            raise InputError(f"--start-frame: found {first}, but the run was trained on "
                             "steady pairs, which have no frames; expected no --start-frame")

    def prediction_window(self, trajectories: torch.Tensor, path, first: int | None = None
                          ) -> tuple[torch.Tensor, int, int]:
        """The window ``mgno predict`` rolls out from, the steps, and its first frame.

        From frame ``first`` (default ``start_frame``): the window
        ``(N, window, C, *grid)``; ``steps`` is the number of frames stored after
        it, else ``steps_out``.
        """
        self.check_start_frame(first)
        w = self.window
        start = self.start_frame if first is None else first
        hint = "" if first is not None else "; start_frame 0 rolls out from frame 0"
        traj = self.cut_frames(trajectories, path, need=w, first=start, hint=hint)
        steps = traj.shape[1] - w if traj.shape[1] > w else self.steps_out
        return traj[:, :w], steps, start

    # ------------------------------------------------------------------ dataset views
    def train_view(self, data: LoadedData, start: int = 0, stop: int | None = None):
        """The training view of samples ``start:stop``."""
        arrays = data.arrays
        if self.steady:
            return PairDataset(arrays["inputs"][start:stop], arrays["outputs"][start:stop])
        traj = self.cut_frames(arrays["trajectories"][start:stop], data.info.path)
        if self.one_step:
            return self._one_step_windows(traj, data.info.path)
        return self._k_to_k(traj, data.info.path)

    def _one_step_windows(self, traj: torch.Tensor, path) -> WindowDataset:
        """Windows of one frame in and ``unroll`` frames out, inside the training frames.

        One-step training uses the pairs ``t -> t+1`` for ``t < steps``; windows of
        ``unroll`` steps start at ``t <= steps - unroll``, so that the last target
        stays frame ``steps`` (``unroll = 1``: the pairs themselves).
        """
        # cut_frames leaves at least 2 frames: one pair or more
        steps = min(self.train_steps or self.steps_out, traj.shape[1] - 1)
        if self.unroll > steps:
            raise InputError(
                f"--unroll: {self.unroll} steps do not fit {path}: its trajectories give "
                f"{steps} training steps ({traj.shape[1]} frames from start_frame "
                f"{self.start_frame}, at most {self.train_steps or self.steps_out}); "
                f"expected at most {steps}"
            )
        return WindowDataset(traj, 1, self.unroll, starts=range(steps - self.unroll + 1))

    def val_view(self, data: LoadedData, start: int = 0, stop: int | None = None):
        """The validation view of samples ``start:stop`` (whole rollouts for trajectories)."""
        arrays = data.arrays
        if self.steady:
            return PairDataset(arrays["inputs"][start:stop], arrays["outputs"][start:stop])
        traj = self.cut_frames(arrays["trajectories"][start:stop], data.info.path)
        if self.one_step:
            return WindowDataset(traj, 1, min(self.steps_out, traj.shape[1] - 1))
        return self._k_to_k(traj, data.info.path)

    def _k_to_k(self, traj: torch.Tensor, path) -> WindowDataset:
        n_times = traj.shape[1]
        if n_times < self.steps_in + 1:
            raise InputError(
                f"{path}: trajectories of {n_times + self.start_frame} frames, expected "
                f"at least {self.start_frame + self.steps_in + 1} for the 10-10 protocol "
                f"(start_frame={self.start_frame}, steps_in={self.steps_in})"
            )
        return WindowDataset(traj, self.steps_in, min(self.steps_out, n_times - self.steps_in))

    def eval_view(self, data: LoadedData):
        """The view ``mgno eval`` scores: all pairs, or one rollout per trajectory."""
        if self.steady:
            return PairDataset(data.arrays["inputs"], data.arrays["outputs"])
        traj, steps = self._rollout_frames(data.arrays["trajectories"], data.info.path)
        return WindowDataset(traj, self.window, steps)

    def normalizer_samples(self, ds) -> tuple[torch.Tensor, torch.Tensor]:
        """The samples ``(N, C, *grid)`` the input and output normalisers are fitted on."""
        if self.steady:
            return ds.inputs, ds.outputs
        frames = ds.trajectories.flatten(0, 1)  # (N*T, C, *grid)
        return frames, frames

    # ------------------------------------------------------------------ applying the network
    def apply(self, model, x: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        """``model(x)`` (steady) or the rollout ``model(x, steps)``, ``(B, steps, C, *grid)``."""
        return model(x) if self.steady else model(x, steps)

    def flat(self, pred: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Prediction and truth as fields ``(B, C', *grid)`` (rollout steps as channels)."""
        if self.steady:
            return pred, y
        return pred.flatten(1, 2), y.flatten(1, 2)

    def predict_batch(self, model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The prediction of a batch ``(x, y)`` of a view, shaped like ``y``."""
        return self.apply(model, x, None if self.steady else y.shape[1])

    def first_fields(self, pred: torch.Tensor, y: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """The first sample of a batch as fields ``(C, *grid)``: prediction and truth.

        For rollouts ``(B, steps, C, *grid)``: the last step.
        """
        if self.steady:
            return pred[0], y[0]
        return pred[0, -1], y[0, -1]

    def loss(self, model, loss_fn, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The training loss of one batch (a rollout of ``y.shape[1]`` steps for trajectories).

        One-step windows of ``unroll > 1`` steps: see :meth:`unrolled_loss`.
        """
        if self.one_step and self.unroll > 1:
            return self.unrolled_loss(model, loss_fn, x, y)
        pred, y = self.flat(self.predict_batch(model, x, y), y)
        return loss_fn(pred, y)

    def unrolled_loss(self, model, loss_fn, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The loss of the last step of a rollout from the true frame (unrolled training).

        ``x`` ``(B, 1, C, *grid)`` is frame ``t``, ``y`` ``(B, K, C, *grid)`` the frames
        ``t+1 .. t+K``. The model is applied ``K`` times, each step fed the previous
        prediction; the loss compares step ``K`` with frame ``t+K``. With
        ``unroll_grad="last"`` (pushforward) the first ``K - 1`` steps run under
        ``no_grad``, so the gradient flows through the last application only;
        ``"all"`` backpropagates through all ``K``.
        """
        k = y.shape[1]
        if self.unroll_grad == "all":
            last = model(x, k)[:, -1:]
        else:
            with torch.no_grad():
                start = model(x, k - 1)[:, -1:]
            last = model(start.detach(), 1)
        pred, target = self.flat(last, y[:, -1:])
        return loss_fn(pred, target)


def task_of_run(config: Mapping[str, Any], train_config) -> Task:
    """The task of a run from its ``config.json`` and its :class:`TrainConfig`."""
    return Task.from_config(config["data"]["kind"], train_config)
