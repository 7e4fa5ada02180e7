"""The MgNO network: layers ``sigma(W u + b(u))`` with multigrid operators ``W``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from mgno.errors import InputError
from mgno.nn.boundary import normalize_boundary
from mgno.nn.multigrid import GRID_TIED_NORM, NORMS, MultigridOperator, derive_levels
from mgno.nn.positional import PositionalChannels, check_positional
from mgno.nn.registry import ModelConfig, RegisteredModel, as_grid, as_int, register_model
from mgno.nn.resolution import resample
from mgno.nn.stencil import StencilConv, to_channels_last
from mgno.vocab import MGNO_NORM_PLACES, MGNO_PROJECTIONS, one_of

BIASES = ("linear", "conv", "none")
#: more layers than any network needs (and a list of a billion would exhaust memory)
MAX_LAYERS = 10_000
ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu, "silu": F.silu, "tanh": torch.tanh}


def _level_channels(
    value: Sequence[int] | None, levels: int, channels: int, where: str
) -> tuple[int, ...] | None:
    """Per-level widths: None (or an empty list), or one positive int per level whose
    first is ``channels``; a one-line :class:`InputError` naming ``where`` otherwise."""
    if value is None or (isinstance(value, (list, tuple)) and not value):
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise InputError(f"{where}: found {value!r}, expected a list of widths, one per level")
    widths = tuple(as_int(w, where) for w in value)
    if len(widths) != levels or min(widths) < 1:
        raise InputError(
            f"{where}: expected {levels} positive widths (one per level), got {list(widths)}"
        )
    if widths[0] != channels:
        raise InputError(
            f"{where}: the finest level's width {widths[0]} differs from channels={channels}; "
            "expected level_channels[0] == channels"
        )
    return widths


def scale_level_channels(
    level_channels: Sequence[int] | None, channels: int | None = None, levels: int | None = None
) -> list[int] | None:
    """A layout of level widths refitted to another finest width and/or number of levels.

    ``channels`` scales every width in proportion (rounded, at least 1, the
    finest exactly ``channels``); ``levels`` keeps the finest ``levels`` of
    them. How an override of ``channels`` or ``levels`` applies to a preset
    with per-level widths (``create_model("helmholtz", channels=12)``).

    Raises
    ------
    InputError
        When ``levels`` asks for more levels than the layout has.
    """
    if level_channels is None:
        return None
    widths = [int(w) for w in level_channels]
    if levels is not None:
        if levels > len(widths):
            raise InputError(
                f"levels: {levels} levels, but level_channels gives widths for {len(widths)}; "
                "expected level_channels with one width per level"
            )
        widths = widths[: int(levels)]
    if channels is not None and channels != widths[0]:
        widths = [int(channels)] + [max(1, round(w * channels / widths[0])) for w in widths[1:]]
    return widths


def _smoothing(value: int | Sequence[int] | None, where: str) -> int | tuple[int, ...] | None:
    """A smoothing count: None, one int for every level, or one per level."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return tuple(as_int(s, where) for s in value)
    return as_int(value, where)


@dataclass(frozen=True)
class MgNOConfig(ModelConfig):
    """Config of :class:`MgNO` (``{"model": "mgno", ...}`` in a run's config.json).

    Attributes
    ----------
    in_channels, out_channels
        Channels of the input function(s) and of the output.
    dim
        Number of spatial axes (1, 2 or 3).
    channels
        Hidden channels ``n`` of every layer (on the finest level).
    layers
        Number of ``sigma(W u + b(u))`` layers.
    levels
        Multigrid levels. ``None`` derives them from ``grid``: the most levels
        whose coarsest grid keeps ``min_coarse`` nodes per axis (the config
        stores the derived number).
    grid
        The training grid (nodes per axis); recorded, used to derive ``levels``
        when it is ``None``, and the grid a ``layer-grid`` norm is sized for.
    min_coarse
        Smallest coarse grid when the levels are derived.
    boundary
        ``dirichlet``, ``neumann`` or ``periodic``, for all axes or per axis
        (stored per axis).
    pre_smooth, post_smooth, restrict, kernel_size, prolongation_kernel_size
        Passed to :class:`~mgno.nn.multigrid.MultigridOperator`.
    bias
        ``"linear"``: ``b(u)`` is a 1x1 convolution of the layer input plus a
        constant (Darcy, pipe); ``"conv"``: every convolution inside ``W`` has a
        bias (Navier-Stokes, Helmholtz; pair it with ``norm``); ``"none"``.
    norm
        Normalisation after each prolongation inside ``W``: ``"none"``,
        ``"group"`` (over channels and space, per-channel affine weights),
        ``"instance"``, or ``"layer-grid"``, the authors' LayerNorm over
        ``(channels, *level grid)`` with affine weights per channel and node:
        ``2 * channels * nodes`` parameters on every level but the coarsest, in
        every layer. ``layer-grid`` needs ``grid`` and ties the network to it:
        an input on another grid is refused in one line naming both grids
        (the ``resample`` and ``multilevel`` resolution strategies still work,
        since they run the operators on the training grid).
    norm_at
        ``"prolongation"`` (the norm after each prolongation, above) or
        ``"output"``: one norm on each multigrid cycle's output, before the
        activation (the authors' Helmholtz network; ``layer-grid`` then ties
        ``2 * channels * nodes`` weights per layer to the finest grid).
    level_channels
        Hidden width of every level, finest first (``level_channels[0] ==
        channels``; the authors' Helmholtz network grows 1:2:3:4:5, e.g.
        ``(24, 48, 72, 96, 120)``), or ``None``: ``channels`` on every level. The
        first layer's input and a multigrid projection's output scale in
        proportion (see :func:`mgno.nn.multigrid.level_widths`).
    projection
        ``"pointwise"``: a 1x1 convolution gives the output channels;
        ``"multigrid"``: one more multigrid cycle does (with the layers' cycle,
        widths and biases, no norm; the authors' Helmholtz network).
    skip
        Add the input to the output (needs ``in_channels == out_channels``).
    activation
        ``gelu`` (the paper), ``relu``, ``silu`` or ``tanh``.
    channels_last
        Run 2-D/3-D grids in channels-last memory layout, which oneDNN and
        cuDNN convolve faster (a darcy preset's training step on a 2-core CPU:
        1.4-1.8x at 64x64, 2.1x at 211x211); the output is returned in the
        ordinary layout either way, and the results agree up to rounding.
    checkpointing
        Recompute each layer's activations in the backward pass instead of
        storing them (activation checkpointing): about a layer's worth of memory
        instead of all of them, for one more forward pass. For large grids.
    """

    family: ClassVar[str] = "mgno"
    dim: int = 2
    channels: int = 24
    layers: int = 4
    levels: int | None = None
    grid: tuple[int, ...] | None = None
    min_coarse: int = 4
    boundary: str | tuple[str, ...] = "dirichlet"
    pre_smooth: int | tuple[int, ...] | None = None
    post_smooth: int | tuple[int, ...] = 0
    restrict: str = "f"
    kernel_size: int = 3
    prolongation_kernel_size: int = 4
    bias: str = "linear"
    norm: str | None = "none"
    norm_at: str = "prolongation"
    level_channels: tuple[int, ...] | None = None
    projection: str = "pointwise"
    skip: bool = False
    positional: str = "none"
    activation: str = "gelu"
    channels_last: bool = True
    checkpointing: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        w = self._where
        for name in ("dim", "channels", "layers", "min_coarse", "kernel_size",
                     "prolongation_kernel_size"):
            self._set(name, as_int(getattr(self, name), w(name)))
        one_of(self.bias, BIASES, w("bias"))
        one_of(self.activation, tuple(ACTIVATIONS), w("activation"))
        self._set("positional", check_positional(self.positional))
        if not (1 <= self.layers <= MAX_LAYERS) or self.channels < 1:
            raise InputError(
                f"layers and channels: expected integers in 1..{MAX_LAYERS} and >= 1, got "
                f"{self.layers} and {self.channels}"
            )
        self._set("grid", as_grid(self.grid, self.dim, "grid"))
        if self.levels is None:
            if self.grid is None:
                raise InputError(
                    "levels: give the number of levels, or the training grid to derive it"
                )
            self._set("levels", derive_levels(self.grid, min_coarse=self.min_coarse))
        self._set("levels", as_int(self.levels, w("levels")))
        if self.skip and self.in_channels != self.out_channels:
            raise InputError(
                f"skip: a global skip needs in_channels == out_channels, got "
                f"{self.in_channels} and {self.out_channels}"
            )
        self._set("boundary", normalize_boundary(self.boundary, self.dim))
        self._set("pre_smooth", _smoothing(self.pre_smooth, w("pre_smooth")))
        self._set("post_smooth", _smoothing(self.post_smooth, w("post_smooth")))
        self._set("norm", NORMS.check("none" if self.norm is None else self.norm, w("norm")))
        self._set("norm_at", MGNO_NORM_PLACES.check(self.norm_at, w("norm_at")))
        self._set("projection", MGNO_PROJECTIONS.check(self.projection, w("projection")))
        self._set("level_channels", _level_channels(self.level_channels, self.levels,
                                                    self.channels, w("level_channels")))
        if self.norm == GRID_TIED_NORM and self.grid is None:
            raise InputError(
                f"{w('norm')}: 'layer-grid' sizes its weights on the training grid; "
                "expected a 'grid' (nodes per axis) in the config"
            )
        for name in ("skip", "channels_last", "checkpointing"):
            self._set(name, bool(getattr(self, name)))


@register_model(MgNOConfig, baseline=False)
class MgNO(RegisteredModel):
    """Multigrid neural operator.

    Each layer computes ``u <- sigma(W u + b(u))``: ``W`` a
    :class:`~mgno.nn.multigrid.MultigridOperator` and ``b`` the bias. There is no
    lifting network: the first layer maps the raw input channels straight to
    ``channels``; a 1x1 projection (or, with ``projection="multigrid"``, one
    more multigrid cycle) gives the output channels.

    Parameters
    ----------
    in_channels, out_channels
        Channels of the input function(s) and of the output.
    **options
        The other fields of :class:`MgNOConfig` (``dim``, ``channels``,
        ``layers``, ``levels``, ``grid``, ``boundary``, ...), with its defaults.

    Shapes
    ------
    (batch, in_channels, *grid) -> (batch, out_channels, *grid).
    """

    def __init__(self, in_channels: int, out_channels: int, **options: Any) -> None:
        super().__init__()
        cfg = MgNOConfig(in_channels, out_channels, **options)
        self.model_config = cfg
        self.in_channels, self.out_channels, self.dim = cfg.in_channels, cfg.out_channels, cfg.dim
        self.skip = cfg.skip
        self.channels_last = cfg.channels_last
        self.checkpointing = cfg.checkpointing
        self.act = ACTIVATIONS[cfg.activation]
        op_kw = dict(
            dim=cfg.dim,
            levels=cfg.levels,
            boundary=cfg.boundary,
            pre_smooth=cfg.pre_smooth,
            post_smooth=cfg.post_smooth,
            restrict=cfg.restrict,
            kernel_size=cfg.kernel_size,
            prolongation_kernel_size=cfg.prolongation_kernel_size,
            bias=cfg.bias == "conv",
            norm=cfg.norm,
            norm_at=cfg.norm_at,
            level_channels=cfg.level_channels,
            channels_last=cfg.channels_last,
            grid=cfg.grid,
        )
        self.positional = PositionalChannels(cfg.positional, cfg.boundary)
        widths = [cfg.in_channels + self.positional.extra_channels] + [cfg.channels] * cfg.layers
        self.operators = nn.ModuleList(
            MultigridOperator(widths[i], cfg.channels, **op_kw) for i in range(cfg.layers)
        )
        point_kw = dict(
            dim=cfg.dim, kernel_size=1, boundary=cfg.boundary, bias=True,
            channels_last=cfg.channels_last,
        )
        self.biases = nn.ModuleList(
            StencilConv(widths[i], cfg.channels, **point_kw)
            if cfg.bias == "linear"
            else nn.Identity()
            for i in range(cfg.layers)
        )
        self.projection = self._projection(cfg, op_kw, point_kw)

    @staticmethod
    def _projection(cfg: MgNOConfig, op_kw: dict[str, Any], point_kw: dict[str, Any]
                    ) -> nn.Module:
        """The last map, ``channels -> out_channels``: a 1x1 convolution (returning
        the ordinary layout) or one more multigrid cycle without a norm."""
        if cfg.projection == "multigrid":
            return MultigridOperator(cfg.channels, cfg.out_channels,
                                     **{**op_kw, "norm": "none"})
        return StencilConv(cfg.channels, cfg.out_channels, **{**point_kw, "channels_last": False})

    @property
    def operator_grid(self) -> tuple[int, ...] | None:
        """The training grid, on which the ``multilevel`` strategy runs ``W``."""
        return self.model_config.grid

    @property
    def levels(self) -> int:
        """Number of multigrid levels of every layer."""
        return self.model_config.levels

    def _layer(
        self, op: nn.Module, bias: nn.Module, u: torch.Tensor, operator_grid: tuple[int, ...] | None
    ) -> torch.Tensor:
        """One layer ``sigma(W u + b(u))``; ``W`` runs on ``operator_grid`` if given."""
        if operator_grid is None or tuple(u.shape[2:]) == operator_grid:
            pre = op(u)
        else:
            boundary = self.model_config.boundary
            coarse = op(resample(u, operator_grid, boundary))
            pre = resample(coarse, u.shape[2:], boundary)
            pre = to_channels_last(pre) if self.channels_last else pre
        if not isinstance(bias, nn.Identity):
            pre = pre.add_(bias(u))  # in place on a fresh convolution output
        return self.act(pre)

    def forward(self, x: torch.Tensor, operator_grid: Sequence[int] | None = None) -> torch.Tensor:
        """Apply the network.

        Parameters
        ----------
        x
            (batch, in_channels, *grid).
        operator_grid
            Run every multigrid operator on this grid, embedded in ``grid`` by
            interpolation (the ``multilevel`` resolution strategy, see
            :mod:`mgno.nn.resolution`); default: on ``grid`` itself.

        Returns
        -------
        torch.Tensor
            (batch, out_channels, *grid).
        """
        if operator_grid is not None:
            operator_grid = tuple(int(n) for n in operator_grid)
        u = self.positional(x)
        u = to_channels_last(u) if self.channels_last else u
        recompute = self.checkpointing and torch.is_grad_enabled() and self.training
        for op, bias in zip(self.operators, self.biases, strict=True):
            if recompute:
                u = checkpoint(self._layer, op, bias, u, operator_grid, use_reentrant=False)
            else:
                u = self._layer(op, bias, u, operator_grid)
        out = self.projection(u).contiguous()
        return out + x if self.skip else out
