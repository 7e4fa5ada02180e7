"""The training loop: ``mgno train`` as a Python function.

:func:`train` reads the data, builds the network from a preset or from the
data's own description, and optimises it, on one process or data-parallel
under ``torchrun`` (DistributedDataParallel, a DistributedSampler on the
global rank, rank 0 alone writing). At the end of every epoch it validates,
keeps the weights of the lowest validation error and saves a full, pickle-free
checkpoint; ``resume=True`` continues from it with the same per-epoch losses
an uninterrupted run would have produced. SIGINT/SIGTERM stop at the next
optimiser step with a checkpoint that resumes mid-epoch; a NaN or infinite
loss stops without touching the last good checkpoint.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import random
import signal
import sys
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from mgno import __version__
from mgno.data.datasets import load_arrays
from mgno.data.normalize import GaussianNormalizer
from mgno.errors import InputError
from mgno.train.checkpoint import rng_state, set_rng_state
from mgno.train.config import TrainConfig
from mgno.train.defaults import build_model_config, build_train_config
from mgno.train.distributed import (
    DistContext,
    all_reduce_max,
    all_reduce_sum,
    barrier,
    setup,
    teardown,
)
from mgno.train.losses import get_loss, relative_l2
from mgno.train.progress import Progress
from mgno.train.rollout import Predictor
from mgno.train.run_dir import RunDir
from mgno.train.task import Task, check_same_data

#: Fields of the recipe a resumed run may change (they do not alter the arithmetic).
RESUME_MUTABLE = ("device", "eval_batch_size")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


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


# ----------------------------------------------------------------------------- helpers
def build_network(config: dict) -> torch.nn.Module:
    """``mgno.nn.build_model(config)``; the family is picked by ``config["model"]``."""
    from mgno.nn import build_model

    return build_model(config)


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def data_summary(info, n: int) -> dict:
    """The parts of a :class:`DatasetInfo` a run records."""
    return {
        "path": str(info.path),
        "kind": info.kind,
        "n_samples": n,
        "grid": list(info.grid),
        "in_channels": info.in_channels,
        "out_channels": info.out_channels,
        "boundary": list(info.boundary),
        "domain": [list(d) for d in info.domain],
        "spacing": training_grid_record(info)["spacing"],
        "n_times": info.n_times,
        "pde": info.pde,
    }


def training_grid_record(info) -> dict:
    """The grid record of a data set (see ``mgno.nn.resolution.grid_record``)."""
    from mgno.nn.resolution import grid_record

    return grid_record(info.grid, info.domain, info.boundary)


def _global_loss_sum(state: dict, device: torch.device, ctx) -> tuple[float, float]:
    """The epoch's summed training loss and sample count over all ranks."""
    local = torch.tensor(
        [state["loss_sum"], float(state["count"])], dtype=torch.float64, device=device
    )
    sums = all_reduce_sum(local, ctx).cpu()
    return float(sums[0]), float(sums[1])


def fit_normalizers(
    ds, cfg: TrainConfig, task: Task
) -> tuple[GaussianNormalizer, GaussianNormalizer]:
    """Fit the input and output normalisers on the training view ``ds``."""
    x, y = task.normalizer_samples(ds)
    return (
        GaussianNormalizer.fit(x, cfg.normalizer_inputs),
        GaussianNormalizer.fit(y, cfg.normalizer_outputs),
    )


def make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam (L2 weight decay, as in the paper) or AdamW (decoupled)."""
    cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def make_scheduler(opt, cfg: TrainConfig, steps_per_epoch: int):
    """OneCycle over the whole run, stepped per epoch or per optimiser step; or none."""
    if cfg.scheduler == "none":
        return None
    total = cfg.epochs if cfg.scheduler_step == "epoch" else cfg.epochs * steps_per_epoch
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(total, 2))


@torch.no_grad()
def validate(
    predictor: Predictor, ds, task: Task, device: torch.device, batch_size: int,
    bf16: bool = False,
) -> float:
    """Mean per-sample rel. L2 over ``ds`` (a whole rollout for trajectories)."""
    predictor.eval()
    total, count = 0.0, 0
    idx = torch.arange(len(ds))
    for b in idx.split(batch_size):
        x, y = ds.get_batch(b)
        x, y = x.to(device), y.to(device)
        with _autocast(device, bf16):
            pred, y = task.flat(task.predict_batch(predictor, x, y), y)
        err = relative_l2(pred.float(), y.float(), reduce=False)
        total += float(err.double().sum())
        count += err.numel()
    return total / max(count, 1)


def _autocast(device: torch.device, bf16: bool):
    if bf16 and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return nullcontext()


class _StopFlag:
    """Set by SIGINT/SIGTERM; a second signal interrupts at once."""

    def __init__(self) -> None:
        self.signum = 0

    def __call__(self, signum, frame) -> None:
        if self.signum:
            raise KeyboardInterrupt
        self.signum = signum
        print(
            f"mgno: {signal.Signals(signum).name} received; saving a checkpoint at the next "
            "step (send again to stop at once)",
            file=sys.stderr,
            flush=True,
        )


@contextmanager
def _signals(flag: _StopFlag):
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in old:
        signal.signal(s, flag)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


# ----------------------------------------------------------------------------- train
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
    **overrides: Any,
) -> TrainResult:
    """Train a neural operator on an mgno HDF5 data set.

    Parameters
    ----------
    data:
        Training set (steady ``inputs``/``outputs`` or ``trajectories``).
    out:
        Run directory to create (refused if it already holds a run, unless
        ``resume``).
    val:
        Validation set; default: the last ``val_fraction`` of ``data``.
    preset:
        Preset name; its model and training recipe are the defaults.
    model:
        Network family (``"mgno"``, ``"fno"``...), the ``"model"`` key of the config.
    model_overrides:
        Network config entries (``channels``, ``layers``, ``levels``,
        ``boundary``...); ``None`` values are ignored.
    resume:
        Continue the run in ``out`` from its checkpoint.
    progress:
        Progress bars (a TTY) or one line per epoch on stderr.
    **overrides:
        :class:`TrainConfig` fields (``epochs``, ``batch_size``, ``lr``, ``seed``...).

    Returns
    -------
    TrainResult

    Raises
    ------
    InputError, FileNotFoundError
        Bad data, options or run directory (nothing on disk is changed).
    TrainingDiverged
        The loss became NaN or infinite.
    """
    device_spec = overrides.get("device") or "auto"
    ctx = setup(device_spec)
    try:
        return _Trainer(
            ctx, data, out, val, preset, model, model_overrides or {}, resume, progress, overrides
        ).run()
    finally:
        teardown(ctx)


class _Trainer:
    def __init__(
        self,
        ctx: DistContext,
        data,
        out,
        val,
        preset,
        family,
        model_overrides,
        resume,
        progress,
        overrides,
    ) -> None:
        self.ctx = ctx
        self.data_path = Path(data)
        self.out = Path(out)
        self.rundir = RunDir(out)
        self.val_path = Path(val) if val is not None else None
        self.preset_name = preset
        self.family = family
        self.model_overrides = model_overrides
        self.resume = resume
        self.progress = progress and ctx.is_main
        unknown = sorted(set(overrides) - set(TrainConfig.__dataclass_fields__))
        if unknown:
            raise InputError(f"train: unknown option {unknown[0]!r}")
        self.overrides = overrides

    # ------------------------------------------------------------------ set-up
    def _prepare_run_dir(self) -> dict | None:
        out, rdir = self.out, self.rundir
        if self.resume:
            saved = rdir.read_config() if out.exists() else None
            if saved is None:
                raise FileNotFoundError(f"{out}: no such run directory to --resume")
            if not rdir.has_state():
                raise InputError(
                    f"{out}: no {rdir.state_path.name}, expected a checkpoint to --resume from"
                )
            return saved
        rdir.check_new()
        return None

    def _load_data(self, saved: dict | None):
        train_data = load_arrays(self.data_path)
        info = train_data.info
        if saved is not None:
            rec = saved["data"]
            for key, now in (
                ("kind", info.kind),
                ("grid", list(info.grid)),
                ("in_channels", info.in_channels),
                ("out_channels", info.out_channels),
            ):
                if rec.get(key) != now:
                    raise InputError(
                        f"{self.data_path}: {key} is {now}, but the run in {self.out} was "
                        f"trained with {rec.get(key)}; expected the same training data to resume"
                    )
        val_data = None
        if self.val_path is not None:
            val_data = load_arrays(self.val_path)
            check_same_data(info, val_data.info)
        return train_data, val_data

    def run(self) -> TrainResult:
        ctx = self.ctx
        saved = self._prepare_run_dir()
        train_data, val_data = self._load_data(saved)
        info = train_data.info

        # recipe and network config
        if saved is not None:
            cfg_dict = dict(saved["train"])
            for k, v in self.overrides.items():
                if v is None:
                    continue
                v = TrainConfig.canonical(k, v)
                if k in RESUME_MUTABLE:
                    cfg_dict[k] = v
                elif cfg_dict.get(k) != v:
                    raise InputError(
                        f"--{k.replace('_', '-')}: {v!r} differs from {cfg_dict.get(k)!r} in "
                        f"{self.rundir.config_path}; expected the run's own value to resume"
                    )
            cfg = TrainConfig.from_dict(cfg_dict, source=str(self.rundir.config_path))
            model_cfg = saved["model"]
            preset_name = saved.get("preset")
            given = {k: v for k, v in self.model_overrides.items() if v is not None}
            given.update({"model": self.family} if self.family is not None else {})
            for k, v in given.items():
                v = [v] * len(info.grid) if k == "boundary" and isinstance(v, str) else v
                if model_cfg.get(k) != v:
                    raise InputError(
                        f"--{k}: {v!r} differs from {model_cfg.get(k)!r} in "
                        f"{self.rundir.config_path}; expected the run's own network to resume"
                    )
            if self.preset_name is not None and self.preset_name != preset_name:
                raise InputError(
                    f"--preset: {self.preset_name!r} differs from {preset_name!r} in "
                    f"{self.rundir.config_path}; expected the run's own preset to resume"
                )
        else:
            preset = None
            if self.preset_name is not None:
                from mgno.presets import get_preset

                preset = get_preset(self.preset_name)
            cfg = build_train_config(info, preset, self.overrides)
            model_cfg = build_model_config(
                info, cfg, family=self.family, preset=preset, overrides=self.model_overrides
            )
            preset_name = self.preset_name
        if cfg.batch_size % ctx.world_size:
            raise InputError(
                f"--batch-size: {cfg.batch_size} is not divisible by the {ctx.world_size} "
                "processes; expected a multiple of the world size (it is the global batch)"
            )

        # splits
        task = Task.from_config(info.kind, cfg)
        n = info.n_samples
        if val_data is None:
            n_val = int(round(n * cfg.val_fraction))
            if n - n_val < 1:
                raise InputError(f"{self.data_path}: {n} samples leave none to train on")
            train_ds = task.train_view(train_data, 0, n - n_val)
            val_ds = task.val_view(train_data, n - n_val, None) if n_val else None
        else:
            n_val = val_data.info.n_samples
            train_ds = task.train_view(train_data)
            val_ds = task.val_view(val_data)
        del train_data, val_data

        # network, normalisers, optimiser
        seed_everything(cfg.seed)
        device = ctx.device
        net = build_network(model_cfg)
        model_cfg = getattr(net, "config", model_cfg)
        if cfg.compile:
            net.compile()  # in place: parameter names and checkpoints are unchanged
        if saved is not None:
            norm_in, norm_out = self.rundir.read_normalizers()
        else:
            norm_in, norm_out = fit_normalizers(train_ds, cfg, task)
        predictor = Predictor(net, norm_in, norm_out, task.predictor_kind).to(device)
        local_bs = cfg.batch_size // ctx.world_size
        sampler = DistributedSampler(
            train_ds,
            num_replicas=ctx.world_size,
            rank=ctx.rank,
            shuffle=True,
            seed=cfg.seed,
            drop_last=False,
        )
        steps_per_epoch = math.ceil(len(sampler) / local_bs)
        opt = make_optimizer(net.parameters(), cfg)
        sched = make_scheduler(opt, cfg, steps_per_epoch)
        loss_fn = get_loss(cfg.loss, spacing=training_grid_record(info)["spacing"], k_max=cfg.k_max)

        # state
        state = {
            "epoch": 0,
            "step": 0,
            "loss_sum": 0.0,
            "count": 0,
            "history": [],
            "best_epoch": 0,
            "best_val": None,
            "elapsed": 0.0,
            "lr_epoch": cfg.lr,
        }
        if saved is not None:
            tree = self.rundir.load_state()
            try:
                net.load_state_dict(tree["model"])
                opt.load_state_dict(tree["optimizer"])
                if sched is not None:
                    sched.load_state_dict(tree["scheduler"])
                set_rng_state(tree["rng"])
                for k in state:
                    state[k] = tree["counters"][k]
            except (KeyError, RuntimeError, ValueError) as err:
                msg = " ".join(str(err).split())[:300]
                raise InputError(
                    f"{self.rundir.state_path}: does not fit the run's config ({msg})"
                ) from None
            if ctx.rank != 0:  # rank 0 alone carries the partial sums of a mid-epoch save
                state["loss_sum"], state["count"] = 0.0, 0
        else:
            self._write_start(model_cfg, cfg, preset_name, info, n, n_val, norm_in, norm_out)
        barrier(ctx)

        net_ddp = predictor
        if ctx.distributed:
            # buffers (normaliser statistics) are equal on every rank: no sync per forward
            sync = (
                {"forward_sync_buffers": False}
                if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
                else {"broadcast_buffers": False}
            )
            net_ddp = DistributedDataParallel(
                predictor, device_ids=[device.index] if device.type == "cuda" else None, **sync
            )
        if self.progress:
            print(
                f"mgno: training {model_cfg.get('model')} "
                f"({sum(p.numel() for p in net.parameters()):,} parameters) on {device}"
                f"{f' x{ctx.world_size} processes' if ctx.distributed else ''}: "
                f"{len(train_ds)} training / {len(val_ds) if val_ds else 0} validation samples, "
                f"{cfg.epochs} epochs -> {self.out}",
                file=sys.stderr,
                flush=True,
            )

        flag = _StopFlag()
        bar = Progress(cfg.epochs, steps_per_epoch, enabled=self.progress)
        status = "finished"
        t_start = time.perf_counter() - state["elapsed"]
        with _signals(flag), bar:
            epoch = state["epoch"]
            while epoch < cfg.epochs:
                sampler.set_epoch(epoch)
                batches = torch.tensor(list(iter(sampler)), dtype=torch.long).split(local_bs)
                net_ddp.train()
                if state["step"] == 0:
                    state["lr_epoch"] = opt.param_groups[0]["lr"]
                t_epoch = time.perf_counter()
                bar.start_epoch(epoch, state["step"])
                for b in range(state["step"], len(batches)):
                    x, y = train_ds.get_batch(batches[b])
                    x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                    with _autocast(device, cfg.bf16):
                        loss = task.loss(net_ddp, loss_fn, x, y)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    flags = torch.tensor(
                        [0.0 if torch.isfinite(loss).item() else 1.0, float(flag.signum > 0)]
                    )
                    flags = all_reduce_max(flags.to(device), ctx).cpu()
                    if flags[0] > 0:
                        raise TrainingDiverged(self._diverged_message(epoch, b, loss, state))
                    if cfg.grad_clip is not None:
                        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
                    opt.step()
                    if sched is not None and cfg.scheduler_step == "step":
                        sched.step()
                    loss_value = float(loss.detach())
                    state["loss_sum"] += loss_value * len(batches[b])
                    state["count"] += len(batches[b])
                    state["step"] = b + 1
                    bar.step(loss_value)
                    if flags[1] > 0 and b + 1 < len(batches):
                        loss_sum, count = _global_loss_sum(state, device, ctx)
                        state["loss_sum"], state["count"] = loss_sum, int(count)
                        state["elapsed"] = time.perf_counter() - t_start
                        if ctx.is_main:
                            self._save_state(net, opt, sched, state)
                        status = "interrupted"
                        break
                if status == "interrupted":
                    break

                # end of epoch
                loss_sum, count = _global_loss_sum(state, device, ctx)
                train_loss = loss_sum / max(count, 1.0)
                if sched is not None and cfg.scheduler_step == "epoch":
                    sched.step()
                record = {"epoch": epoch + 1, "train_loss": train_loss, "lr": state["lr_epoch"]}
                if ctx.is_main:
                    if val_ds is not None and len(val_ds):
                        record["val_rel_l2"] = validate(
                            predictor,
                            val_ds,
                            task,
                            device,
                            cfg.eval_batch_size or cfg.batch_size,
                            cfg.bf16,
                        )
                    val_err = record.get("val_rel_l2")
                    is_best = (
                        val_err is None or state["best_val"] is None or val_err < state["best_val"]
                    )
                    if is_best and math.isfinite(val_err if val_err is not None else 0.0):
                        state["best_epoch"], state["best_val"] = epoch + 1, val_err
                        self.rundir.write_weights(
                            net.state_dict(),
                            {
                                "epoch": str(epoch + 1),
                                "val_rel_l2": json.dumps(val_err),
                                "training_grid": json.dumps(training_grid_record(info)),
                            },
                        )
                    record["best"] = state["best_epoch"] == epoch + 1
                    record["seconds"] = round(time.perf_counter() - t_epoch, 3)
                    state["history"].append(record)
                epoch += 1
                state.update(
                    epoch=epoch,
                    step=0,
                    loss_sum=0.0,
                    count=0,
                    elapsed=time.perf_counter() - t_start,
                )
                if ctx.is_main:
                    self._save_state(net, opt, sched, state)
                    self._write_metrics(state["history"])
                    bar.end_epoch(record)
                stop = all_reduce_max(
                    torch.tensor([float(flag.signum > 0)], device=device), ctx
                ).cpu()
                if stop[0] > 0 and epoch < cfg.epochs:
                    status = "interrupted"
                    break
        barrier(ctx)
        if status == "interrupted" and ctx.is_main:
            print(
                f"mgno: stopped; checkpoint saved in {self.rundir.state_path} "
                f"(epoch {state['epoch']}, step {state['step']}); continue with --resume",
                file=sys.stderr,
                flush=True,
            )
        return TrainResult(
            self.out,
            status,
            state["epoch"],
            state["best_epoch"],
            state["best_val"],
            list(state["history"]),
            ctx.rank,
        )

    # ------------------------------------------------------------------ writing
    def _write_start(self, model_cfg, cfg, preset_name, info, n, n_val, norm_in, norm_out):
        if not self.ctx.is_main:
            return
        self.rundir.create()
        self.rundir.write_normalizers(norm_in, norm_out)
        summary = data_summary(info, n)
        summary["n_val"] = n_val
        summary["val"] = str(self.val_path) if self.val_path is not None else None
        config = {
            "mgno_version": __version__,
            "format": 1,
            "preset": preset_name,
            "model": model_cfg,
            "train": cfg.to_dict(),
            "data": summary,
            "training_grid": training_grid_record(info),
            "normalizer": {"inputs": norm_in.meta(), "outputs": norm_out.meta()},
            "world_size": self.ctx.world_size,
        }
        self.rundir.write_config(config)

    def _save_state(self, net, opt, sched, state) -> None:
        tree = {
            "model": net.state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict() if sched is not None else None,
            "rng": rng_state(),
            "counters": dict(state),
        }
        self.rundir.save_state(tree)

    def _write_metrics(self, history: list[dict]) -> None:
        self.rundir.write_metrics(history)

    def _diverged_message(self, epoch: int, b: int, loss, state) -> str:
        kept = (
            f"the last good checkpoint {self.rundir.state_path} (epoch {state['epoch']}) is kept"
            if (self.rundir.state_path).exists()
            else "no checkpoint was written yet"
        )
        return (
            f"training diverged: the loss is {float(loss.detach())} at epoch {epoch + 1}, "
            f"step {b + 1}; stopped, {kept}; expected a finite loss (try a lower --lr "
            "or gradient clipping)"
        )
