"""Build the objects of a training run from a :class:`~mgno.train.plan.RunPlan`.

Network (seeded), normalisers, predictor, sampler, optimiser, scheduler and
loss, in one fixed order so that the same seed gives the same numbers, and
the restoration of a checkpoint into them. A coarse-to-fine run
(:mod:`mgno.train.phases`) gets the fitting of one grid phase, which builds
the next phase's when its epochs are done.
"""

from __future__ import annotations

import inspect
import math
import random
from functools import partial

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from mgno.data.normalize import GaussianNormalizer
from mgno.errors import InputError
from mgno.train.checkpoint import set_rng_state
from mgno.train.config import TrainConfig
from mgno.train.distributed import DistContext
from mgno.train.engine import Fitting, TrainState
from mgno.train.losses import get_loss
from mgno.train.noise import InputNoise
from mgno.train.phases import (
    carry_levels,
    coarsen_normalizer,
    phase_model_config,
    phase_seed,
)
from mgno.train.plan import RunPlan, training_grid_record
from mgno.train.rollout import Predictor
from mgno.train.run_dir import RunDir
from mgno.train.task import Task


def build_network(config: dict, where: str = "network config") -> torch.nn.Module:
    """``mgno.nn.build_model(config)``; the family is picked by ``config["model"]``.

    The network is first built on the ``meta`` device (no memory), so that a
    config asking for more parameters than this machine can hold is refused
    in one line instead of failing inside the allocator. Every refusal names
    ``where`` (the option, preset or file the config came from).
    """
    from mgno.data.capacity import available_memory, human_bytes

    shape_only = _build(config, where, meta=True)
    need = 4 * sum(p.numel() for p in shape_only.parameters())  # float32 weights
    room = available_memory()
    if room is not None and need > room:
        raise InputError(
            f"{where}: the network has {need // 4:,} parameters ({human_bytes(need)}), "
            f"more than the {human_bytes(room)} of memory available; expected a smaller network"
        )
    return _build(config, where, meta=False)


def _build(config: dict, where: str, meta: bool) -> torch.nn.Module:
    from mgno.nn import build_model

    try:
        if not meta:
            return build_model(config)
        with torch.device("meta"):
            return build_model(config)
    except (ValueError, KeyError, TypeError) as err:  # InputError included
        raise InputError(f"{where}: {' '.join(str(err).split())}") from None
    except (RuntimeError, MemoryError) as err:
        if not meta:
            raise
        # on the meta device only sizes can fail: beyond what a tensor can count
        raise InputError(f"{where}: the network's sizes overflow "
                         f"({' '.join(str(err).split()) or type(err).__name__}); expected a "
                         "smaller network") from None


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


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


def make_scheduler(opt, cfg: TrainConfig, steps_per_epoch: int, epochs: int | None = None):
    """OneCycle over ``epochs`` (default: the whole run), stepped per epoch or per
    optimiser step; or none."""
    if cfg.scheduler == "none":
        return None
    epochs = cfg.epochs if epochs is None else epochs
    total = epochs if cfg.scheduler_step == "epoch" else epochs * steps_per_epoch
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(total, 2))


def build_fitting(
    plan: RunPlan, ctx: DistContext, run_dir: RunDir, phase: int = 0
) -> Fitting:
    """The objects :func:`mgno.train.engine.fit` trains (the network seeded first).

    Normalisers are read from ``run_dir`` when the plan resumes a checkpoint,
    else fitted on the training view. ``plan.model_cfg`` becomes the built
    network's full config. A coarse-to-fine plan gets the fitting of grid
    phase ``phase`` (:func:`build_phase`).
    """
    cfg, task = plan.cfg, plan.task
    seed_everything(cfg.seed)
    if plan.phases:
        return build_phase(plan, ctx, run_dir, phase)
    net = build_network(plan.model_cfg)
    plan.model_cfg = getattr(net, "config", plan.model_cfg)
    if cfg.compile:
        net.compile()  # in place: parameter names and checkpoints are unchanged
    if plan.resume_state:
        norm_in, norm_out = run_dir.read_normalizers()
    else:
        norm_in, norm_out = fit_normalizers(plan.train_ds, cfg, task)
    spacing = training_grid_record(plan.info)["spacing"]
    return assemble(plan, ctx, net, (norm_in, norm_out), (plan.train_ds, plan.val_ds), spacing)


def assemble(
    plan: RunPlan, ctx: DistContext, net: torch.nn.Module, norms: tuple, views: tuple,
    spacing: list[float], epochs: int | None = None,
) -> Fitting:
    """Predictor, sampler, optimiser, scheduler (over ``epochs``), loss and noise around ``net``.

    ``norms`` are ``(norm_in, norm_out)`` and ``views`` ``(train_ds, val_ds)`` on the
    grid ``net`` trains on, whose node ``spacing`` the ``rel_h1_fd`` loss uses.
    """
    cfg, task = plan.cfg, plan.task
    train_ds, val_ds = views
    predictor = Predictor(net, norms[0], norms[1], task.predictor_kind).to(ctx.device)
    sampler = DistributedSampler(
        train_ds, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True,
        seed=cfg.seed, drop_last=False,
    )
    steps_per_epoch = math.ceil(len(sampler) / (cfg.batch_size // ctx.world_size))
    opt = make_optimizer(net.parameters(), cfg)
    sched = make_scheduler(opt, cfg, steps_per_epoch, epochs)
    loss_fn = get_loss(cfg.loss, spacing=spacing, k_max=cfg.k_max)
    noise = InputNoise.fit(task.normalizer_samples(train_ds)[0], cfg.input_noise, cfg.seed)
    return Fitting(net, predictor, predictor, task, loss_fn, train_ds, val_ds,
                   sampler, opt, sched, cfg, ctx, noise)


def seeded_network(config: dict, seed: int, where: str = "network config") -> torch.nn.Module:
    """:func:`build_network` with torch's generator seeded by ``seed`` for the
    build alone (the global generator is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_network(config, where)


def build_phase(plan: RunPlan, ctx: DistContext, run_dir: RunDir, index: int) -> Fitting:
    """The fitting of grid phase ``index`` of a coarse-to-fine plan.

    The final network (seeded by the run's seed, as without a schedule) is
    built first: ``plan.model_cfg`` becomes its config, and it is the network
    the later phases carry into. The normalisers are those of the data's
    grid (fitted, or read when resuming), restricted for a coarse phase.
    """
    cfg = plan.cfg
    final = seeded_network(plan.model_cfg, cfg.seed)
    plan.model_cfg = final.config
    if plan.resume_state:
        norms = run_dir.read_normalizers()
    else:
        norms = fit_normalizers(plan.train_ds, cfg, plan.task)
    return _phase_fitting(plan, ctx, index, final, norms)


def _phase_fitting(
    plan: RunPlan, ctx: DistContext, index: int, final: torch.nn.Module, norms: tuple,
    net: torch.nn.Module | None = None,
) -> Fitting:
    """The fitting of phase ``index`` around ``net`` (default: the phase's seeded network)."""
    cfg, phase = plan.cfg, plan.phases[index]
    if net is None and (phase.final or cfg.carry == "all"):
        net = final
    elif net is None:
        config = phase_model_config(plan.model_cfg, phase, cfg.carry)
        net = seeded_network(config, phase_seed(cfg.seed, phase),
                             f"network of grid phase {index}")
    if cfg.compile:
        net.compile()
    ndim = len(phase.grid)
    phase_norms = tuple(coarsen_normalizer(n, phase.coarsen, ndim) for n in norms)
    info, views = plan.phase_views(index)
    fitting = assemble(plan, ctx, net, phase_norms, views,
                       training_grid_record(info)["spacing"], phase.epochs)
    fitting.phase, fitting.run_normalizers = phase, norms
    if not phase.final:
        fitting.advance = partial(_advance, plan, ctx, final, norms)
    return fitting


def _advance(
    plan: RunPlan, ctx: DistContext, final: torch.nn.Module, norms: tuple,
    fitting: Fitting, state: TrainState,
) -> Fitting:
    """The next phase's fitting, its network carried from ``fitting``'s; sets ``state.phase``."""
    nxt = plan.phases[fitting.phase.index + 1]
    if plan.cfg.carry == "all":
        net = fitting.model
    else:
        net = final if nxt.final else seeded_network(
            phase_model_config(plan.model_cfg, nxt, "levels"),
            phase_seed(plan.cfg.seed, nxt), f"network of grid phase {nxt.index}")
        carry_levels(fitting.model, net)
    new = _phase_fitting(plan, ctx, nxt.index, final, norms, net)
    if ctx.distributed:
        new.module = data_parallel(new)
    state.phase = nxt.index
    return new


def data_parallel(fitting: Fitting) -> DistributedDataParallel:
    """The predictor wrapped for data-parallel training."""
    device = fitting.device
    # buffers (normaliser statistics) are equal on every rank: no sync per forward
    sync = (
        {"forward_sync_buffers": False}
        if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
        else {"broadcast_buffers": False}
    )
    return DistributedDataParallel(
        fitting.predictor, device_ids=[device.index] if device.type == "cuda" else None, **sync
    )


def checkpoint_phase(tree: dict, plan: RunPlan, where: str) -> int:
    """The grid phase a checkpoint holds (0 before the field), checked against the plan."""
    counters = tree.get("counters") if isinstance(tree, dict) else None
    phase = counters.get("phase", 0) if isinstance(counters, dict) else 0
    count = max(len(plan.phases), 1)
    if isinstance(phase, bool) or not isinstance(phase, int) or not 0 <= phase < count:
        raise InputError(
            f"{where}: field 'counters.phase' is {phase!r:.40}, expected an integer in "
            f"0..{count - 1} (the run's grid phases)"
        )
    return phase


def restore(fitting: Fitting, run_dir: RunDir, tree: dict | None = None) -> TrainState:
    """Load the checkpoint of ``run_dir`` (or its ``tree``, already read) into the
    fitting's objects; return its counters.

    Rank 0 alone keeps the partial loss sums of a mid-epoch save.
    """
    tree = run_dir.load_state() if tree is None else tree
    where = run_dir.state_path
    try:
        fitting.model.load_state_dict(tree["model"])
        fitting.optimizer.load_state_dict(tree["optimizer"])
        if fitting.scheduler is not None:
            fitting.scheduler.load_state_dict(tree["scheduler"])
        set_rng_state(tree["rng"])
        state = TrainState.from_dict(tree["counters"], str(where))
        _check_phase_epochs(fitting, state, str(where))
    except InputError:
        raise
    except (KeyError, RuntimeError, ValueError, TypeError, AttributeError, IndexError) as err:
        msg = " ".join(str(err).split())[:300]
        raise InputError(f"{where}: does not fit the run's config ({msg})") from None
    if fitting.ctx.rank != 0:
        state.loss_sum, state.count = 0.0, 0
    return state


def _check_phase_epochs(fitting: Fitting, state: TrainState, where: str) -> None:
    """Refuse counters whose epoch lies outside the grid phase the checkpoint says it holds."""
    phase = fitting.phase
    if phase is None or phase.start_epoch <= state.epoch <= phase.end_epoch:
        return
    raise InputError(
        f"{where}: field 'counters.epoch' is {state.epoch} in grid phase {phase.index}, whose "
        f"epochs are {phase.start_epoch + 1}..{phase.end_epoch}; expected a checkpoint of "
        "this run's schedule"
    )
