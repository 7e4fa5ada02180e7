"""Coarse-to-fine training (``--grid-schedule coarse-to-fine``): the grid phases of a run.

MgNO is a multigrid: restricted level for level, the network for a grid of
``n`` nodes per axis holds the network for ``ceil(n / 2)`` nodes (its levels
2..L). A coarse-to-fine run first trains on the data restricted to coarser
grids (every other node per axis, ``coarse_levels`` times, by
:func:`mgno.data.datasets.inject`, where MgNO's stride-2 restrictions put the
coarse nodes), then on the data's own grid; each phase starts from the
weights of the phase before. What is carried (``carry``):

``"levels"`` (the default)
    The network of a phase restricted ``k`` times has the levels ``k+1 .. L``
    of the final network (one level fewer per coarsening, the same smoothing
    counts level for level). One grid finer, its level ``j`` becomes level
    ``j + 1`` of the next network, and its pointwise biases and projection
    stay as they are. The next network's new finest level starts as an
    embedding of the coarse one: restriction ``R`` by injection, every
    smoother ``S`` zero and the prolongation linear interpolation, so that
    right after the carry each layer computes ``sigma(P W_c(u[::2]) + b(u))``
    with ``W_c`` the coarse phase's operator and ``P`` interpolation. The
    other new weights (``A``, ``Pi`` of the new level) keep their seeded
    initial values; they do not act until ``S`` has moved off zero.
``"all"``
    One network, the final one with all its levels, is trained on every grid;
    its stencils are carried as they are. The coarsest phase's grid must hold
    all ``L`` levels.

Each phase has its own optimiser and learning-rate schedule (a OneCycle over
the phase's epochs): Adam's moments of one network do not describe the next
network's parameters (new ones under ``levels``, another grid under ``all``).
Only the final phase validates on the data's grid and keeps best weights;
the coarse phases' validation error (on the restricted validation data) is
recorded as ``coarse_val_rel_l2``. Measurements: docs/coarse_to_fine.md.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from mgno.data.datasets import inject
from mgno.data.normalize import GaussianNormalizer
from mgno.data.schema import DatasetInfo
from mgno.errors import InputError
from mgno.nn.multigrid import GRID_TIED_NORM, format_grid, level_shapes, smoothing_steps
from mgno.nn.stencil import coarse_size
from mgno.train.config import TrainConfig

COARSE_TO_FINE = "coarse-to-fine"
#: The parameter names of one MgNO level: ``operators.{layer}.levels.{level}.{rest}``.
_LEVEL_NAME = re.compile(r"^(operators\.\d+\.levels\.)(\d+)(\..+)$")


@dataclass(frozen=True)
class Phase:
    """One grid phase of a coarse-to-fine run.

    Attributes
    ----------
    index:
        0 for the coarsest grid; the last phase trains on the data's grid.
    coarsen:
        Times the data are restricted (0: the data's own grid).
    start_epoch, end_epoch:
        Its epochs ``start_epoch .. end_epoch - 1`` (0-based, over the whole run).
    grid:
        Nodes per axis of its data.
    """

    index: int
    coarsen: int
    start_epoch: int
    end_epoch: int
    grid: tuple[int, ...]

    @property
    def epochs(self) -> int:
        """Epochs of this phase."""
        return self.end_epoch - self.start_epoch

    @property
    def final(self) -> bool:
        """Whether this phase trains on the data's grid."""
        return self.coarsen == 0

    def record(self) -> dict[str, Any]:
        """What each of its epochs adds to ``metrics.jsonl``: ``phase`` and ``grid``."""
        return {"phase": self.index, "grid": list(self.grid)}


def coarse_grid(grid: Sequence[int], times: int) -> tuple[int, ...]:
    """The grid after ``times`` restrictions by injection (``n -> ceil(n / 2)`` each)."""
    out = tuple(int(n) for n in grid)
    for _ in range(times):
        out = tuple(coarse_size(n) for n in out)
    return out


def grid_phases(cfg: TrainConfig, info: DatasetInfo, model_cfg: dict[str, Any]) -> list[Phase]:
    """The phases of a run (``[]`` for ``grid_schedule="fine"``), its options checked.

    Parameters
    ----------
    cfg:
        The recipe: ``grid_schedule``, ``coarse_levels``, ``phase_epochs``, ``carry``.
    info:
        The training data (grid and boundary condition per axis).
    model_cfg:
        The network config (``levels`` may still be None: derived from the grid).

    Raises
    ------
    InputError
        One line naming the option: a network family other than MgNO, a grid
        that cannot be coarsened ``coarse_levels`` times, or a network whose
        levels do not fit the coarse grids.
    """
    if cfg.grid_schedule != COARSE_TO_FINE:
        return []
    family = model_cfg.get("model", "mgno")
    if family != "mgno":
        raise InputError(
            f"--grid-schedule {COARSE_TO_FINE}: --model {family} has no multigrid levels to "
            "carry from a coarse grid to a fine one; expected --model mgno (or --grid-schedule "
            "fine)"
        )
    check_coarsening(info.grid, info.boundary, cfg.coarse_levels)
    full = resolved_config(model_cfg)
    check_network(full, cfg.coarse_levels, cfg.carry)
    phases, start = [], 0
    for i, epochs in enumerate(cfg.phase_epochs):
        times = cfg.coarse_levels - i
        phases.append(Phase(i, times, start, start + epochs, coarse_grid(info.grid, times)))
        start += epochs
    return phases


def resolved_config(model_cfg: dict[str, Any]) -> dict[str, Any]:
    """The network config with every default filled in (``levels`` derived from the grid)."""
    from mgno.nn.registry import parse_config

    try:
        return parse_config(model_cfg).to_dict()
    except (ValueError, KeyError, TypeError) as err:  # InputError included
        raise InputError(f"network config: {' '.join(str(err).split())}") from None


def _most_coarsenings(n: int, periodic: bool) -> int:
    """How often an axis of ``n`` nodes halves, keeping >= 2 nodes (periodic: exactly)."""
    times = 0
    while True:
        nxt = n // 2 if periodic else coarse_size(n)
        if nxt < 2 or (periodic and n % 2):
            return times
        n, times = nxt, times + 1


def check_coarsening(grid: Sequence[int], boundary: Sequence[str], times: int) -> None:
    """Refuse a grid that cannot be restricted by injection ``times`` over (one line).

    A non-periodic axis keeps both ends when its nodes are odd and must keep
    at least 2 nodes; a periodic axis must halve exactly (``n`` a multiple of
    ``2**times``), or the coarse nodes would not be one period.
    """
    most = min(_most_coarsenings(int(n), b == "periodic") for n, b in zip(grid, boundary,
                                                                          strict=True))
    if times > most:
        periodic = any(b == "periodic" for b in boundary)
        why = ("a periodic axis must halve exactly" if periodic
               else "every axis must keep at least 2 nodes")
        raise InputError(
            f"--coarse-levels: {times} coarse grids asked, but the grid {format_grid(grid)} "
            f"({', '.join(boundary)}) can be coarsened {most} times ({why}); expected at "
            f"most {most}"
        )


def check_network(full: dict[str, Any], times: int, carry: str) -> None:
    """Refuse a network whose levels do not fit the coarse phases (one line).

    ``levels``: the coarsest phase keeps ``L - times >= 1`` levels, and its
    finest level (level ``times + 1`` of the final network) needs a
    pre-smoothing step. ``all``: the coarsest grid holds all ``L`` levels, and
    no ``layer-grid`` norm ties the weights to one grid.
    """
    levels, grid = int(full["levels"]), tuple(full["grid"])
    if carry == "levels":
        if times >= levels:
            raise InputError(
                f"--coarse-levels: {times} coarse grids need a network of more than {times} "
                f"levels (the coarsest phase keeps levels {times + 1}..L), but the network on "
                f"{format_grid(grid)} has {levels}; expected --coarse-levels at most "
                f"{levels - 1} (or more --levels)"
            )
        pre = smoothing_steps(full.get("pre_smooth"), levels, "pre_smooth")
        if min(pre[1 : times + 1]) < 1:
            raise InputError(
                f"--coarse-levels: the network's pre-smoothing steps per level are {list(pre)}; "
                f"expected at least one on levels 2..{times + 1}, each the finest level of a "
                "coarse phase"
            )
        return
    if full.get("norm") == GRID_TIED_NORM:
        raise InputError(
            f"--carry all: norm '{GRID_TIED_NORM}' ties the network's weights to the grid "
            f"{format_grid(grid)}; expected --carry levels (each phase its own grid's norm)"
        )
    coarse = coarse_grid(grid, times)
    coarsest = level_shapes(coarse, levels)[-1]
    smallest = max(2, (int(full.get("kernel_size", 3)) - 1) // 2 + 1)
    if min(coarsest) < smallest:
        raise InputError(
            f"--carry all: on the coarsest grid {format_grid(coarse)} the network's {levels} "
            f"levels end at {format_grid(coarsest)}; expected at least {smallest} nodes per "
            "axis (fewer --coarse-levels or --levels, or --carry levels)"
        )


def phase_model_config(full: dict[str, Any], phase: Phase, carry: str) -> dict[str, Any]:
    """The network config of ``phase``: levels ``coarsen + 1 .. L`` of ``full`` (``levels``).

    ``full`` is the final network's resolved config; under ``carry="all"`` and
    in the final phase it is the config itself.
    """
    if carry == "all" or phase.final:
        return dict(full)
    levels, k = int(full["levels"]), phase.coarsen
    pre = smoothing_steps(full.get("pre_smooth"), levels, "pre_smooth")
    post = smoothing_steps(full.get("post_smooth", 0), levels, "post_smooth")
    return {**full, "grid": list(phase.grid), "levels": levels - k,
            "pre_smooth": list(pre[k:]), "post_smooth": list(post[k:])}


def phase_summary(phase: Phase, full: dict[str, Any], carry: str) -> dict[str, Any]:
    """What ``config.json`` records of a phase: grid, restrictions, epochs (1-based), levels."""
    return {"phase": phase.index, "grid": list(phase.grid), "coarsen": phase.coarsen,
            "epochs": [phase.start_epoch + 1, phase.end_epoch],
            "levels": int(phase_model_config(full, phase, carry)["levels"])}


def format_phases(phases: Sequence[Phase]) -> str:
    """``17x17 epochs 1-4, 33x33 epochs 5-12``: the phases in one line."""
    return ", ".join(f"{format_grid(p.grid)} epochs {p.start_epoch + 1}-{p.end_epoch}"
                     for p in phases)


def phase_seed(seed: int, phase: Phase) -> int:
    """Seed of a phase's initial network: ``seed`` for the final one (as a run without
    a schedule), a number drawn from ``(seed, index)`` for a coarse one."""
    if phase.final:
        return seed
    return int(np.random.SeedSequence([seed, phase.index]).generate_state(1, np.uint64)[0] >> 1)


def coarsen_normalizer(norm: GaussianNormalizer, times: int, ndim: int) -> GaussianNormalizer:
    """A pointwise normaliser restricted like the data (its statistics per node); others as is.

    The statistics of the restricted data are the restricted statistics, exactly.
    """
    if norm.kind != "pointwise" or times == 0:
        return norm
    return GaussianNormalizer(norm.kind, inject(norm.mean, times, ndim),
                              inject(norm.std, times, ndim), eps=norm.eps)


@torch.no_grad()
def carry_levels(coarse: nn.Module, fine: nn.Module) -> None:
    """Load the coarse MgNO into levels 2..L of ``fine`` and embed it with a new level 1.

    Every coarse weight keeps its name, the level index raised by one; the
    new finest level of every layer becomes restriction by injection, zero
    smoothers and linear-interpolation prolongation (:func:`embed_level`).
    ``A`` of the first smoother of level 2 (the coarse network's finest level
    had none) and ``Pi`` of level 1 keep the values ``fine`` has.

    Raises
    ------
    RuntimeError
        When the networks are not nested level for level (a bug, not an input).
    """
    mapped = {}
    for name, tensor in coarse.state_dict().items():
        match = _LEVEL_NAME.match(name)
        mapped[f"{match[1]}{int(match[2]) + 1}{match[3]}" if match else name] = tensor
    missing, unexpected = fine.load_state_dict(mapped, strict=False)
    stray = [n for n in missing if not re.match(r"operators\.\d+\.levels\.(0\.|1\.pre\.0\.A\.)", n)]
    if unexpected or stray:
        raise RuntimeError(
            f"carry levels: the networks are not nested (unexpected {unexpected[:3]}, "
            f"missing {stray[:3]})"
        )
    for op in fine.operators:
        embed_level(op.levels[0])


@torch.no_grad()
def embed_level(level: nn.Module) -> None:
    """Make a (non-coarsest) multigrid level pass the coarse levels through.

    ``R`` injects (coarse node ``i`` = fine node ``2 i``), every smoother's ``S``
    is zero (so ``u`` is zero on this level before the prolongation), the
    prolongation interpolates linearly, their biases are zero.
    """
    for smoother in (*level.pre, *level.post):
        _zero(smoother.S)
    _set_identity_stencil(level.R, _injection_1d(level.R.weight.shape[-1]))
    _set_identity_stencil(level.prolong, _interpolation_1d(level.prolong.weight.shape[-1]))


def _zero(conv: nn.Module) -> None:
    conv.weight.zero_()
    if conv.bias is not None:
        conv.bias.zero_()


def _injection_1d(width: int) -> torch.Tensor:
    """The 1-D stencil of injection: 1 at the centre."""
    w = torch.zeros(width)
    w[(width - 1) // 2] = 1.0
    return w


def _interpolation_1d(width: int) -> torch.Tensor:
    """The stride-2 transposed stencil of linear interpolation (coarse ``i`` -> fine
    ``2 i - offset + k``): weight ``1 - |k - offset| / 2``, ``[0.5, 1, 0.5, 0]`` for width 4."""
    offset = (width - 1) // 2
    return torch.tensor([max(0.0, 1.0 - abs(k - offset) / 2) for k in range(width)])


def _set_identity_stencil(conv: nn.Module, w1d: torch.Tensor) -> None:
    """Set a square convolution to ``w1d`` in every axis on the channel diagonal, bias 0."""
    weight = conv.weight
    stencil = w1d
    for _ in range(weight.dim() - 3):
        stencil = stencil[..., None] * w1d
    _zero(conv)
    for c in range(weight.shape[0]):
        weight[c, c] = stencil.to(weight.dtype)
