"""The training engine: :func:`fit` optimises objects it is given; it knows no paths.

:func:`fit` takes a :class:`Fitting` (network, predictor, task, loss, data
views, optimiser, scheduler, recipe, process group), a :class:`TrainState`
(the counters a checkpoint stores) and :class:`Callbacks` (checkpoints,
metrics, progress, stop requests). It runs the epochs from where the state
stands: one optimiser step per batch of the sampler's order, validation and
the "best epoch" bookkeeping at the end of each epoch, a checkpoint after
every epoch and when a stop is requested mid-epoch. A NaN or infinite loss
raises :class:`TrainingDiverged` before the optimiser step, so the last
checkpoint stays good. Everything that touches files lives in the callbacks
(see :mod:`mgno.train.trainer`); :class:`CallbackList` runs several of them
(the run's files, experiment loggers, the caller's own).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from torch.utils.data import DistributedSampler

from mgno.errors import InputError
from mgno.train.config import TrainConfig
from mgno.train.distributed import DistContext, all_reduce_max, all_reduce_sum
from mgno.train.losses import relative_l2
from mgno.train.noise import InputNoise
from mgno.train.phases import Phase
from mgno.train.task import Task


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainState:
    """The counters of a run, as its checkpoint stores them (key ``"counters"``).

    Attributes
    ----------
    epoch, step:
        Finished epochs, and optimiser steps done in the current epoch.
    loss_sum, count:
        Sum of ``loss * batch`` and samples seen in the current epoch.
    history:
        One record per finished epoch (rank 0 only).
    best_epoch, best_val:
        The epoch (1-based) of the lowest validation error and that error.
    elapsed:
        Seconds of training so far (over resumes).
    lr_epoch:
        Learning rate at the start of the current epoch.
    phase:
        Coarse-to-fine runs: the grid phase whose network and optimiser the
        checkpoint holds (0 otherwise, and in checkpoints older than the field).
    """

    epoch: int = 0
    step: int = 0
    loss_sum: float = 0.0
    count: int = 0
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    best_val: float | None = None
    elapsed: float = 0.0
    lr_epoch: float = 0.0
    phase: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The counters as a plain dict (copied)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Any, source: str) -> TrainState:
        """Rebuild from :meth:`to_dict`, refusing missing fields and wrong types."""
        if not isinstance(d, dict):
            raise InputError(f"{source}: field 'counters' is not an object, expected counters")
        kw = {}
        for f in dataclasses.fields(cls):
            value = d.get(f.name, _LATER_COUNTERS.get(f.name))
            kw[f.name] = _checked_counter(f.name, value, source)
        return cls(**kw)


_INTS = ("epoch", "step", "count", "best_epoch", "phase")
#: Counters added after checkpoints were first written, with the value older ones mean.
_LATER_COUNTERS = {"phase": 0}
_FLOATS = ("loss_sum", "elapsed", "lr_epoch")


def _checked_counter(name: str, value: Any, source: str) -> Any:
    ok = not isinstance(value, bool)
    if name in _INTS:
        ok = ok and isinstance(value, int) and value >= 0
    elif name in _FLOATS:
        ok = ok and isinstance(value, (int, float))
    elif name == "best_val":
        ok = value is None or (ok and isinstance(value, (int, float)))
    elif name == "history":
        ok = isinstance(value, list) and all(isinstance(r, dict) for r in value)
    if not ok:
        raise InputError(
            f"{source}: field 'counters.{name}' is {value!r:.60}, expected a value written "
            "by mgno train"
        )
    return float(value) if name in _FLOATS else value


class StepFlags(NamedTuple):
    """What every process agrees on after a backward pass."""

    diverged: bool
    stop: bool


@dataclass
class Fitting:
    """The objects :func:`fit` works with.

    Attributes
    ----------
    model:
        The network (its parameters are clipped and checkpointed).
    predictor:
        Network with normalisers (:class:`~mgno.train.rollout.Predictor`), used to validate.
    module:
        What a training batch goes through: ``predictor``, or its DDP wrapper.
    task, loss_fn:
        The learning problem and the loss ``(pred, target) -> scalar``.
    train_ds, val_ds:
        Views with ``get_batch(idx)``; ``val_ds`` may be None.
    sampler:
        Order of the training samples on this process (``set_epoch`` each epoch).
    optimizer, scheduler:
        The optimiser and the learning-rate schedule (or None).
    config:
        The recipe (epochs, batch sizes, clipping, scheduler step, bf16).
    ctx:
        The process group (one process or torchrun's).
    noise:
        Adds noise to the inputs of a training batch
        (:class:`~mgno.train.noise.InputNoise`), or None.
    phase:
        Coarse-to-fine runs: the grid phase this fitting trains
        (:class:`~mgno.train.phases.Phase`); None without a schedule.
    advance:
        Builds the next phase's fitting from this one at ``phase.end_epoch``
        (and sets ``state.phase``); None in the last phase.
    run_normalizers:
        The normalisers of the data's grid, which the run saves; None: the
        predictor's (a coarse phase's predictor holds restricted ones).
    """

    model: torch.nn.Module
    predictor: torch.nn.Module
    module: torch.nn.Module
    task: Task
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    train_ds: Any
    val_ds: Any
    sampler: DistributedSampler
    optimizer: torch.optim.Optimizer
    scheduler: Any
    config: TrainConfig
    ctx: DistContext
    noise: InputNoise | None = None
    phase: Phase | None = None
    advance: Callable[[Fitting, TrainState], Fitting] | None = None
    run_normalizers: tuple[torch.nn.Module, torch.nn.Module] | None = None

    @property
    def keeps_best(self) -> bool:
        """Whether its epochs compete for the best weights (not a coarse phase's)."""
        return self.phase is None or self.phase.final

    @property
    def local_batch(self) -> int:
        """Batch size on this process (the global batch over the world size)."""
        return self.config.batch_size // self.ctx.world_size

    @property
    def device(self) -> torch.device:
        """Where this process trains."""
        return self.ctx.device


class Callbacks:
    """Hooks of :func:`fit`; this base class does nothing and never stops.

    Rank 0 alone gets :meth:`on_best`, :meth:`on_checkpoint` and :meth:`on_epoch_end`;
    every process gets the others. Several callbacks are combined with
    :class:`CallbackList`.
    """

    def on_fit_start(self, fitting: Fitting, state: TrainState) -> None:
        """:func:`fit` starts (or resumes) from ``state``; e.g. open a logger."""

    def on_fit_end(self, status: str) -> None:
        """:func:`fit` ends: ``"finished"``, ``"interrupted"`` or ``"failed"`` (it raised)."""

    def should_stop(self) -> bool:
        """Whether a stop was requested on this process (e.g. by a signal)."""
        return False

    def on_phase_start(self, fitting: Fitting, state: TrainState) -> None:
        """A coarse-to-fine run moved to the grid phase of ``fitting`` (a new network,
        predictor and views); called at the first epoch of every phase but the one
        :meth:`on_fit_start` saw."""

    def on_epoch_start(self, epoch: int, step: int) -> None:
        """An epoch (0-based) starts or resumes at ``step``."""

    def on_step(self, loss: float) -> None:
        """One optimiser step was taken with this loss."""

    def on_best(self, fitting: Fitting, state: TrainState) -> None:
        """``state.best_epoch`` was just set to the finished epoch: keep its weights."""

    def on_checkpoint(self, fitting: Fitting, state: TrainState) -> None:
        """Save everything needed to resume from ``state``."""

    def on_epoch_end(self, state: TrainState, record: dict) -> None:
        """An epoch finished; ``record`` was appended to ``state.history``."""

    def diverged_message(self, state: TrainState, step: int, loss: float) -> str:
        """The message of :class:`TrainingDiverged`."""
        return (
            f"training diverged: the loss is {loss} at epoch {state.epoch + 1}, step {step + 1}; "
            "expected a finite loss (try a lower --lr or gradient clipping)"
        )


class CallbackList(Callbacks):
    """Several :class:`Callbacks` called in order; stop when any asks.

    Parameters
    ----------
    callbacks:
        The callbacks; the first one words :meth:`diverged_message`.
    """

    def __init__(self, callbacks: Sequence[Callbacks]) -> None:
        if not callbacks:
            raise ValueError("CallbackList: expected at least one callback")
        self.callbacks = list(callbacks)

    def on_fit_start(self, fitting: Fitting, state: TrainState) -> None:
        for cb in self.callbacks:
            cb.on_fit_start(fitting, state)

    def on_fit_end(self, status: str) -> None:
        for cb in self.callbacks:
            cb.on_fit_end(status)

    def should_stop(self) -> bool:
        return any([cb.should_stop() for cb in self.callbacks])

    def on_phase_start(self, fitting: Fitting, state: TrainState) -> None:
        for cb in self.callbacks:
            cb.on_phase_start(fitting, state)

    def on_epoch_start(self, epoch: int, step: int) -> None:
        for cb in self.callbacks:
            cb.on_epoch_start(epoch, step)

    def on_step(self, loss: float) -> None:
        for cb in self.callbacks:
            cb.on_step(loss)

    def on_best(self, fitting: Fitting, state: TrainState) -> None:
        for cb in self.callbacks:
            cb.on_best(fitting, state)

    def on_checkpoint(self, fitting: Fitting, state: TrainState) -> None:
        for cb in self.callbacks:
            cb.on_checkpoint(fitting, state)

    def on_epoch_end(self, state: TrainState, record: dict) -> None:
        for cb in self.callbacks:
            cb.on_epoch_end(state, record)

    def diverged_message(self, state: TrainState, step: int, loss: float) -> str:
        return self.callbacks[0].diverged_message(state, step, loss)


def autocast(device: torch.device, bf16: bool):
    """bfloat16 autocast on CUDA when asked; otherwise a no-op context."""
    if bf16 and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return nullcontext()


@torch.no_grad()
def validate(
    predictor: torch.nn.Module,
    ds,
    task: Task,
    device: torch.device,
    batch_size: int,
    bf16: bool = False,
) -> float:
    """Mean per-sample rel. L2 over ``ds`` (a whole rollout for trajectories)."""
    predictor.eval()
    total, count = 0.0, 0
    for b in torch.arange(len(ds)).split(batch_size):
        x, y = ds.get_batch(b)
        x, y = x.to(device), y.to(device)
        with autocast(device, bf16):
            pred, y = task.flat(task.predict_batch(predictor, x, y), y)
        err = relative_l2(pred.float(), y.float(), reduce=False)
        total += float(err.double().sum())
        count += err.numel()
    return total / max(count, 1)


def fit(fitting: Fitting, state: TrainState, callbacks: Callbacks) -> str:
    """Train from ``state`` to ``fitting.config.epochs`` epochs; updates ``state`` in place.

    ``callbacks.on_fit_start`` is called first and ``callbacks.on_fit_end``
    last, also when training raises (status ``"failed"``).

    Returns
    -------
    str
        ``"finished"``, or ``"interrupted"`` when a stop was requested (the
        checkpoint callback has then saved a state that resumes exactly).

    Raises
    ------
    TrainingDiverged
        On a NaN or infinite loss, before that step changes the weights.
    """
    callbacks.on_fit_start(fitting, state)
    status = "failed"
    try:
        status = _epochs(fitting, state, callbacks)
    finally:
        callbacks.on_fit_end(status)
    return status


def _epochs(fitting: Fitting, state: TrainState, callbacks: Callbacks) -> str:
    """The epochs of :func:`fit`: ``"finished"`` or ``"interrupted"``."""
    t_start = time.perf_counter() - state.elapsed
    while state.epoch < fitting.config.epochs:
        if fitting.phase is not None and state.epoch >= fitting.phase.end_epoch:
            fitting = fitting.advance(fitting, state)
            callbacks.on_phase_start(fitting, state)
        t_epoch = time.perf_counter()
        if not train_epoch(fitting, state, callbacks, t_start):
            return "interrupted"
        end_epoch(fitting, state, callbacks, t_start, t_epoch)
        if stop_everywhere(fitting.ctx, callbacks) and state.epoch < fitting.config.epochs:
            return "interrupted"
    return "finished"


def stop_everywhere(ctx: DistContext, callbacks: Callbacks) -> bool:
    """Whether some process was asked to stop."""
    flag = torch.tensor([float(callbacks.should_stop())], device=ctx.device)
    return bool(all_reduce_max(flag, ctx).cpu()[0] > 0)


def train_epoch(fitting: Fitting, state: TrainState, callbacks: Callbacks, t_start: float) -> bool:
    """The optimiser steps of one epoch from ``state.step``; False if stopped mid-epoch."""
    fitting.sampler.set_epoch(state.epoch)
    order = torch.tensor(list(iter(fitting.sampler)), dtype=torch.long)
    batches = order.split(fitting.local_batch)
    fitting.module.train()
    if state.step == 0:
        state.lr_epoch = fitting.optimizer.param_groups[0]["lr"]
    callbacks.on_epoch_start(state.epoch, state.step)
    for b in range(state.step, len(batches)):
        loss, flags = train_step(fitting, batches[b], callbacks.should_stop, state.epoch)
        if flags.diverged:
            raise TrainingDiverged(callbacks.diverged_message(state, b, loss))
        state.loss_sum += loss * len(batches[b])
        state.count += len(batches[b])
        state.step = b + 1
        callbacks.on_step(loss)
        if flags.stop and b + 1 < len(batches):
            state.loss_sum, state.count = global_loss_sum(state, fitting.ctx)
            state.elapsed = time.perf_counter() - t_start
            if fitting.ctx.is_main:
                callbacks.on_checkpoint(fitting, state)
            return False
    return True


def train_step(
    fitting: Fitting, idx: torch.Tensor, stop: Callable[[], bool] = lambda: False,
    epoch: int = 0,
) -> tuple[float, StepFlags]:
    """Forward, backward and (unless the loss is not finite) one optimiser step on ``idx``.

    ``stop`` is asked after the backward pass; every process gets the answers
    of all (:class:`StepFlags`). ``epoch`` (0-based) seeds the input noise.
    """
    cfg, device = fitting.config, fitting.device
    x, y = fitting.train_ds.get_batch(idx)
    if fitting.noise is not None:
        x = fitting.noise(x, idx, epoch)
    x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
    with autocast(device, cfg.bf16):
        loss = fitting.task.loss(fitting.module, fitting.loss_fn, x, y)
    fitting.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    raw = torch.tensor([0.0 if torch.isfinite(loss).item() else 1.0, float(stop())])
    raw = all_reduce_max(raw.to(device), fitting.ctx).cpu()
    flags = StepFlags(diverged=bool(raw[0] > 0), stop=bool(raw[1] > 0))
    if flags.diverged:
        return float(loss.detach()), flags
    if cfg.grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(fitting.model.parameters(), cfg.grad_clip)
    fitting.optimizer.step()
    if fitting.scheduler is not None and cfg.scheduler_step == "step":
        fitting.scheduler.step()
    return float(loss.detach()), flags


def global_loss_sum(state: TrainState, ctx: DistContext) -> tuple[float, int]:
    """The epoch's summed training loss and sample count over all processes."""
    local = torch.tensor([state.loss_sum, float(state.count)], dtype=torch.float64,
                         device=ctx.device)
    sums = all_reduce_sum(local, ctx).cpu()
    return float(sums[0]), int(sums[1])


def end_epoch(
    fitting: Fitting, state: TrainState, callbacks: Callbacks, t_start: float, t_epoch: float
) -> dict:
    """Epoch bookkeeping: mean loss, scheduler, validation, best weights, checkpoint."""
    cfg, ctx = fitting.config, fitting.ctx
    loss_sum, count = global_loss_sum(state, ctx)
    if fitting.scheduler is not None and cfg.scheduler_step == "epoch":
        fitting.scheduler.step()
    record = {"epoch": state.epoch + 1, "train_loss": loss_sum / max(count, 1.0),
              "lr": state.lr_epoch}
    if fitting.phase is not None:
        record.update(fitting.phase.record())
    if ctx.is_main:
        _score_epoch(fitting, state, callbacks, record)
        record["seconds"] = round(time.perf_counter() - t_epoch, 3)
        state.history.append(record)
    state.epoch += 1
    state.step, state.loss_sum, state.count = 0, 0.0, 0
    state.elapsed = time.perf_counter() - t_start
    if ctx.is_main:
        callbacks.on_checkpoint(fitting, state)
        callbacks.on_epoch_end(state, record)
    return record


def _score_epoch(fitting: Fitting, state: TrainState, callbacks: Callbacks, record: dict) -> None:
    """Validate, and keep the weights when this epoch is the best so far.

    A coarse phase's error (on the restricted validation data) is recorded as
    ``coarse_val_rel_l2`` and competes for nothing.
    """
    cfg = fitting.config
    key = "val_rel_l2" if fitting.keeps_best else "coarse_val_rel_l2"
    if fitting.val_ds is not None and len(fitting.val_ds):
        record[key] = validate(
            fitting.predictor, fitting.val_ds, fitting.task, fitting.device,
            cfg.eval_batch_size or cfg.batch_size, cfg.bf16,
        )
    if not fitting.keeps_best:
        record["best"] = False
        return
    val_err = record.get("val_rel_l2")
    is_best = val_err is None or state.best_val is None or val_err < state.best_val
    if is_best and math.isfinite(val_err if val_err is not None else 0.0):
        state.best_epoch, state.best_val = record["epoch"], val_err
        callbacks.on_best(fitting, state)
    record["best"] = state.best_epoch == record["epoch"]
