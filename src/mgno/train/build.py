"""Build the objects of a training run from a :class:`~mgno.train.plan.RunPlan`.

Network (seeded), normalisers, predictor, sampler, optimiser, scheduler and
loss, in one fixed order so that the same seed gives the same numbers, and
the restoration of a checkpoint into them.
"""

from __future__ import annotations

import math
import random

import numpy as np
import torch
from torch.utils.data import DistributedSampler

from mgno.data.normalize import GaussianNormalizer
from mgno.errors import InputError
from mgno.train.checkpoint import set_rng_state
from mgno.train.config import TrainConfig
from mgno.train.distributed import DistContext
from mgno.train.engine import Fitting, TrainState
from mgno.train.losses import get_loss
from mgno.train.noise import InputNoise
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


def make_scheduler(opt, cfg: TrainConfig, steps_per_epoch: int):
    """OneCycle over the whole run, stepped per epoch or per optimiser step; or none."""
    if cfg.scheduler == "none":
        return None
    total = cfg.epochs if cfg.scheduler_step == "epoch" else cfg.epochs * steps_per_epoch
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(total, 2))


def build_fitting(plan: RunPlan, ctx: DistContext, run_dir: RunDir) -> Fitting:
    """The objects :func:`mgno.train.engine.fit` trains (the network seeded first).

    Normalisers are read from ``run_dir`` when the plan resumes a checkpoint,
    else fitted on the training view. ``plan.model_cfg`` becomes the built
    network's full config.
    """
    cfg, task = plan.cfg, plan.task
    seed_everything(cfg.seed)
    net = build_network(plan.model_cfg)
    plan.model_cfg = getattr(net, "config", plan.model_cfg)
    if cfg.compile:
        net.compile()  # in place: parameter names and checkpoints are unchanged
    if plan.resume_state:
        norm_in, norm_out = run_dir.read_normalizers()
    else:
        norm_in, norm_out = fit_normalizers(plan.train_ds, cfg, task)
    predictor = Predictor(net, norm_in, norm_out, task.predictor_kind).to(ctx.device)
    sampler = DistributedSampler(
        plan.train_ds, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True,
        seed=cfg.seed, drop_last=False,
    )
    steps_per_epoch = math.ceil(len(sampler) / (cfg.batch_size // ctx.world_size))
    opt = make_optimizer(net.parameters(), cfg)
    sched = make_scheduler(opt, cfg, steps_per_epoch)
    spacing = training_grid_record(plan.info)["spacing"]
    loss_fn = get_loss(cfg.loss, spacing=spacing, k_max=cfg.k_max)
    noise = InputNoise.fit(task.normalizer_samples(plan.train_ds)[0], cfg.input_noise, cfg.seed)
    return Fitting(net, predictor, predictor, task, loss_fn, plan.train_ds, plan.val_ds,
                   sampler, opt, sched, cfg, ctx, noise)


def restore(fitting: Fitting, run_dir: RunDir) -> TrainState:
    """Load the checkpoint of ``run_dir`` into the fitting's objects; return its counters.

    Rank 0 alone keeps the partial loss sums of a mid-epoch save.
    """
    tree = run_dir.load_state()
    where = run_dir.state_path
    try:
        fitting.model.load_state_dict(tree["model"])
        fitting.optimizer.load_state_dict(tree["optimizer"])
        if fitting.scheduler is not None:
            fitting.scheduler.load_state_dict(tree["scheduler"])
        set_rng_state(tree["rng"])
        state = TrainState.from_dict(tree["counters"], str(where))
    except InputError:
        raise
    except (KeyError, RuntimeError, ValueError, TypeError, AttributeError, IndexError) as err:
        msg = " ".join(str(err).split())[:300]
        raise InputError(f"{where}: does not fit the run's config ({msg})") from None
    if fitting.ctx.rank != 0:
        state.loss_sum, state.count = 0.0, 0
    return state
