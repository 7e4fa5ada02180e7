"""``mgno train`` as a Python function: :func:`train`.

:func:`train` plans the run (:mod:`mgno.train.plan`: run directory, data,
recipe, views), builds its objects (:mod:`mgno.train.build`), writes the
run's config and normalisers, and hands everything to the engine
(:func:`mgno.train.engine.fit`) with callbacks that write the checkpoints and
metrics (:mod:`mgno.train.callbacks`). It runs on one process or
data-parallel under ``torchrun`` (DistributedDataParallel, a
DistributedSampler on the global rank, rank 0 alone writing and holding the
run directory's lock). ``resume=True`` continues from the checkpoint with the
same per-epoch losses an uninterrupted run would have produced; a run that
stopped before its first checkpoint starts again from the beginning.
SIGINT/SIGTERM stop at the next optimiser step with a checkpoint that resumes
mid-epoch; a NaN or infinite loss stops without touching the last good
checkpoint.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mgno import __version__
from mgno.train.build import (  # noqa: F401  (older import paths)
    build_fitting,
    build_network,
    checkpoint_phase,
    data_parallel,
    fit_normalizers,
    make_optimizer,
    make_scheduler,
    restore,
    seed_everything,
)
from mgno.train.callbacks import RunCallbacks, RunLock, StopFlag, catch_signals
from mgno.train.distributed import DistContext, barrier, setup, teardown
from mgno.train.engine import (  # noqa: F401
    CallbackList,
    Callbacks,
    Fitting,
    TrainingDiverged,
    TrainState,
    fit,
    validate,
)
from mgno.train.loggers import run_loggers
from mgno.train.phases import format_phases, phase_summary
from mgno.train.plan import (  # noqa: F401
    RESUME_MUTABLE,
    RunPlan,
    TrainRequest,
    as_path,
    data_summary,
    plan_run,
    training_grid_record,
)
from mgno.train.progress import Progress
from mgno.train.run_dir import RunDir


@dataclass
class TrainResult:
    """What :func:`train` reports.

    Attributes
    ----------
    run_dir:
        The run directory.
    status:
        ``"finished"`` or ``"interrupted"`` (a signal; resume with ``resume=True``).
    epochs_done:
        Finished epochs.
    best_epoch:
        Epoch (1-based) whose weights are in ``model.safetensors``; 0 if none.
    best_val:
        Its validation rel. L2 (``None`` without validation data).
    history:
        One record per finished epoch (as in ``metrics.jsonl``; rank 0 only).
    rank:
        Global rank of this process (0 in a single-process run).
    """

    run_dir: Path
    status: str
    epochs_done: int
    best_epoch: int
    best_val: float | None
    history: list[dict] = field(default_factory=list)
    rank: int = 0

    def to_dict(self) -> dict:
        """JSON-serialisable summary."""
        return {
            "run_dir": str(self.run_dir),
            "status": self.status,
            "epochs_done": self.epochs_done,
            "best_epoch": self.best_epoch,
            "best_val_rel_l2": self.best_val,
            "last": self.history[-1] if self.history else None,
        }


def train(
    data: str | os.PathLike,
    out: str | os.PathLike,
    *,
    val: str | os.PathLike | None = None,
    preset: str | None = None,
    model: str | None = None,
    model_overrides: dict[str, Any] | None = None,
    resume: bool = False,
    progress: bool = True,
    callbacks: Sequence[Callbacks] = (),
    **overrides: Any,
) -> TrainResult:
    """Train a neural operator on an mgno HDF5 data set.

    Parameters
    ----------
    data:
        Training set (steady ``inputs``/``outputs`` or ``trajectories``).
    out:
        Run directory to create (refused if it holds run files, unless
        ``resume``; held locked while the run writes).
    val:
        Validation set; default: the last ``val_fraction`` of ``data``.
    preset, model:
        Preset name (its model and recipe are the defaults); network family
        (``"mgno"``, ``"fno"``...), the ``"model"`` key of the config.
    model_overrides:
        Network config entries (``channels``, ``layers``, ``levels``,
        ``boundary``...); ``None`` values are ignored.
    resume, progress:
        Continue the run in ``out`` from its checkpoint (one that stopped before
        its first checkpoint starts again); progress bars or lines on stderr.
    callbacks:
        More :class:`~mgno.train.engine.Callbacks` (your own logger: docs/logging.md),
        called after the run's own.
    **overrides:
        :class:`TrainConfig` fields (``epochs``, ``batch_size``, ``lr``, ``seed``,
        ``protocol``, ``steps_in``, ``steps_out``, ``unroll``, ``unroll_grad``,
        ``input_noise``, ``log``...); ``None`` values are ignored.

    Returns ``TrainResult``.

    Raises
    ------
    InputError, FileNotFoundError
        Bad data, options or run directory (nothing on disk is changed);
        :class:`mgno.lock.OutputBusyError` when another process trains into ``out``.
    TrainingDiverged
        The loss became NaN or infinite.
    """
    request = TrainRequest(
        Path(data), Path(out), as_path(val), preset, model, dict(model_overrides or {}),
        overrides, resume, progress, list(callbacks),
    )
    ctx = setup(overrides.get("device") or "auto")
    try:
        with ExitStack() as stack:
            lock = RunLock(request.run_dir, ctx)
            path = request.run_dir.path
            if (not path.exists() and path.parent.is_dir() and not ctx.distributed
                    and not request.resume):
                # one process: make and lock the folder at once, so that a second
                # `mgno train` into it is refused from its start, naming this one
                request.run_dir.create()
                stack.callback(_remove_if_empty, path)
            stack.callback(lock.release)
            if path.is_dir():
                lock.take()
            return _train(request, ctx, lock)
    finally:
        teardown(ctx)


def _remove_if_empty(path: Path) -> None:
    """Remove a run folder this call made when nothing was written into it."""
    try:
        path.rmdir()
    except OSError:
        pass  # not empty (the run wrote its files), or already gone


def _train(request: TrainRequest, ctx: DistContext, lock: RunLock) -> TrainResult:
    rdir = request.run_dir
    plan = plan_run(request, ctx.world_size, ctx.is_main)
    tree = rdir.load_state() if plan.resume_state else None
    phase = checkpoint_phase(tree, plan, str(rdir.state_path)) if tree is not None else 0
    fitting = build_fitting(plan, ctx, rdir, phase)
    if tree is not None:
        state = restore(fitting, rdir, tree)
    else:
        state = TrainState(lr_epoch=plan.cfg.lr)
        start_run_files(request, plan, fitting, ctx, lock)
    barrier(ctx)
    if ctx.distributed:
        fitting.module = data_parallel(fitting)
    progress = request.progress and ctx.is_main
    if progress:
        _announce(plan, fitting, rdir)
    flag = StopFlag()
    bar = Progress(plan.cfg.epochs, _steps_per_epoch(fitting), enabled=progress)
    callbacks = CallbackList([
        RunCallbacks(rdir, training_grid_record(plan.info), bar, flag),
        *run_loggers(plan.cfg, rdir, ctx.is_main),
        *request.callbacks,
    ])
    with catch_signals(flag), bar:
        status = fit(fitting, state, callbacks)
    barrier(ctx)
    if status == "interrupted" and ctx.is_main:
        print(
            f"mgno: stopped; checkpoint saved in {rdir.state_path} "
            f"(epoch {state.epoch}, step {state.step}); continue with --resume",
            file=sys.stderr,
            flush=True,
        )
    return TrainResult(rdir.path, status, state.epoch, state.best_epoch, state.best_val,
                       list(state.history), ctx.rank)


def _steps_per_epoch(fitting: Fitting) -> int:
    return -(-len(fitting.sampler) // fitting.local_batch)


def start_run_files(
    request: TrainRequest, plan: RunPlan, fitting: Fitting, ctx: DistContext, lock: RunLock
) -> None:
    """Lock the run directory (creating it) and write its config and normalisers (rank 0).

    A run that restarts from the beginning first loses the files of its
    unfinished first attempt.
    """
    rdir = request.run_dir
    if not lock.taken:  # the folder did not exist when train() started
        if ctx.is_main:
            rdir.create()
        lock.take(check=rdir.check_new)  # another run may have started there meanwhile
    if not ctx.is_main:
        return
    if plan.saved is not None:
        rdir.remove_partial()
    norm_in, norm_out = fitting.run_normalizers or (fitting.predictor.norm_in,
                                                    fitting.predictor.norm_out)
    summary = data_summary(plan.info, plan.n)
    summary["n_val"] = plan.n_val
    summary["val"] = str(request.val) if request.val is not None else None
    rdir.write_config({
        "mgno_version": __version__,
        "format": 1,
        "preset": plan.preset_name,
        "model": plan.model_cfg,
        "train": plan.cfg.to_dict(),
        "data": summary,
        "training_grid": training_grid_record(plan.info),
        **({"grid_phases": [phase_summary(p, plan.model_cfg, plan.cfg.carry)
                            for p in plan.phases]} if plan.phases else {}),
        "normalizer": {"inputs": norm_in.meta(), "outputs": norm_out.meta()},
        "world_size": ctx.world_size,
        "threads": torch.get_num_threads(),
    })
    rdir.write_normalizers(norm_in, norm_out)


_data_parallel = data_parallel  # the older name


def _announce(plan: RunPlan, fitting: Fitting, rdir: RunDir) -> None:
    ctx = fitting.ctx
    model = fitting.model
    if plan.phases:  # a coarse phase trains a smaller network: count the final one
        from mgno.nn import build_model

        with torch.device("meta"):
            model = build_model(plan.model_cfg)
    n_params = sum(p.numel() for p in model.parameters())
    n_val = len(fitting.val_ds) if fitting.val_ds else 0
    print(
        f"mgno: training {plan.model_cfg.get('model')} ({n_params:,} parameters) on "
        f"{ctx.device}{f' x{ctx.world_size} processes' if ctx.distributed else ''}: "
        f"{len(fitting.train_ds)} training / {n_val} validation samples, "
        f"{plan.cfg.epochs} epochs -> {rdir.path}",
        file=sys.stderr,
        flush=True,
    )
    if plan.phases:
        print(f"mgno: grid phases (carry {plan.cfg.carry}): {format_phases(plan.phases)}",
              file=sys.stderr, flush=True)
