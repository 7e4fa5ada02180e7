"""The MgNO network: layers ``sigma(W u + b(u))`` with multigrid operators ``W``."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from mgno.nn.boundary import normalize_boundary
from mgno.nn.multigrid import MultigridOperator, derive_levels
from mgno.nn.positional import PositionalChannels
from mgno.nn.resolution import resample
from mgno.nn.stencil import StencilConv, to_channels_last

BIASES = ("linear", "conv", "none")
ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu, "silu": F.silu, "tanh": torch.tanh}


class MgNO(nn.Module):
    """Multigrid neural operator.

    Each layer computes ``u <- sigma(W u + b(u))``: ``W`` a
    :class:`~mgno.nn.multigrid.MultigridOperator` and ``b`` the bias. There is no
    lifting network: the first layer maps the raw input channels straight to
    ``channels``; a 1x1 projection gives the output channels.

    Parameters
    ----------
    in_channels, out_channels
        Channels of the input function(s) and of the output.
    dim
        Number of spatial axes (1, 2 or 3).
    channels
        Hidden channels ``n`` of every layer.
    layers
        Number of ``sigma(W u + b(u))`` layers.
    levels
        Multigrid levels. ``None`` derives them from ``grid``: the most levels
        whose coarsest grid keeps ``min_coarse`` nodes per axis.
    grid
        The training grid (nodes per axis); recorded in the config, and used to
        derive ``levels`` when it is ``None``.
    min_coarse
        Smallest coarse grid when the levels are derived.
    boundary
        ``dirichlet``, ``neumann`` or ``periodic``, for all axes or per axis.
    pre_smooth, post_smooth, restrict, kernel_size, prolongation_kernel_size
        Passed to :class:`~mgno.nn.multigrid.MultigridOperator`.
    bias
        ``"linear"``: ``b(u)`` is a 1x1 convolution of the layer input plus a
        constant (Darcy, pipe); ``"conv"``: every convolution inside ``W`` has a
        bias (Navier-Stokes, Helmholtz; pair it with ``norm``); ``"none"``.
    norm
        Normalisation after each prolongation inside ``W`` (``"none"``,
        ``"group"``, ``"instance"``); none is tied to a grid size.
    skip
        Add the input to the output (needs ``in_channels == out_channels``).
    positional
        ``"coords"``: append the node coordinates to the input (sine/cosine
        pairs on periodic axes; :mod:`mgno.nn.positional`), computed from each
        input's grid, so that the network is no longer shift-equivariant;
        ``"none"`` (default).
    activation
        ``gelu`` (the paper), ``relu``, ``silu`` or ``tanh``.
    checkpointing
        Recompute each layer's activations in the backward pass instead of
        storing them (activation checkpointing): about a layer's worth of memory
        instead of all of them, for one more forward pass. For large grids.
    channels_last
        Run 2-D/3-D grids in channels-last memory layout, which oneDNN and
        cuDNN convolve faster (a darcy preset's training step on a 2-core CPU:
        1.4-1.8x at 64x64, 2.1x at 211x211); the output is returned in the
        ordinary layout either way, and the results agree up to rounding.

    Shapes
    ------
    (batch, in_channels, *grid) -> (batch, out_channels, *grid).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        dim: int = 2,
        channels: int = 24,
        layers: int = 4,
        levels: int | None = None,
        grid: Sequence[int] | None = None,
        min_coarse: int = 4,
        boundary: str | Sequence[str] = "dirichlet",
        pre_smooth: int | Sequence[int] | None = None,
        post_smooth: int | Sequence[int] = 0,
        restrict: str = "f",
        kernel_size: int = 3,
        prolongation_kernel_size: int = 4,
        bias: str = "linear",
        norm: str | None = "none",
        skip: bool = False,
        positional: str = "none",
        activation: str = "gelu",
        channels_last: bool = True,
        checkpointing: bool = False,
    ) -> None:
        super().__init__()
        if bias not in BIASES:
            raise ValueError(f"bias: expected one of {BIASES}, got {bias!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"activation: expected one of {tuple(ACTIVATIONS)}, got {activation!r}"
            )
        if layers < 1 or channels < 1:
            raise ValueError(
                f"layers and channels: expected positive integers, got {layers} and {channels}"
            )
        if grid is not None:
            grid = [int(n) for n in grid]
            if len(grid) != dim:
                raise ValueError(
                    f"grid: expected {dim} sizes (one per spatial axis), got {len(grid)}: {grid}"
                )
        if levels is None:
            if grid is None:
                raise ValueError(
                    "levels: give the number of levels, or the training grid to derive it"
                )
            levels = derive_levels(grid, min_coarse=min_coarse)
        if skip and in_channels != out_channels:
            raise ValueError(
                f"skip: a global skip needs in_channels == out_channels, got {in_channels} "
                f"and {out_channels}"
            )
        boundary = normalize_boundary(boundary, dim)
        self.positional = PositionalChannels(positional, boundary)
        self.config: dict[str, Any] = {
            "model": "mgno",
            "in_channels": int(in_channels),
            "out_channels": int(out_channels),
            "dim": int(dim),
            "channels": int(channels),
            "layers": int(layers),
            "levels": int(levels),
            "grid": grid,
            "min_coarse": int(min_coarse),
            "boundary": list(boundary),
            "pre_smooth": pre_smooth
            if pre_smooth is None or isinstance(pre_smooth, int)
            else [int(s) for s in pre_smooth],
            "post_smooth": post_smooth
            if isinstance(post_smooth, int)
            else [int(s) for s in post_smooth],
            "restrict": restrict,
            "kernel_size": int(kernel_size),
            "prolongation_kernel_size": int(prolongation_kernel_size),
            "bias": bias,
            "norm": "none" if norm is None else norm,
            "skip": bool(skip),
            "positional": self.positional.kind,
            "activation": activation,
            "channels_last": bool(channels_last),
            "checkpointing": bool(checkpointing),
        }
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.dim = dim
        self.skip = skip
        self.channels_last = channels_last
        self.checkpointing = checkpointing
        self.act = ACTIVATIONS[activation]
        op_kw = dict(
            dim=dim,
            levels=levels,
            boundary=boundary,
            pre_smooth=pre_smooth,
            post_smooth=post_smooth,
            restrict=restrict,
            kernel_size=kernel_size,
            prolongation_kernel_size=prolongation_kernel_size,
            bias=bias == "conv",
            norm=norm,
            channels_last=channels_last,
        )
        widths = [in_channels + self.positional.extra_channels] + [channels] * layers
        self.operators = nn.ModuleList(
            MultigridOperator(widths[i], channels, **op_kw) for i in range(layers)
        )
        point_kw = dict(
            dim=dim, kernel_size=1, boundary=boundary, bias=True, channels_last=channels_last
        )
        self.biases = nn.ModuleList(
            StencilConv(widths[i], channels, **point_kw) if bias == "linear" else nn.Identity()
            for i in range(layers)
        )
        # The projection's output is returned in the ordinary layout.
        point_kw["channels_last"] = False
        self.projection = StencilConv(channels, out_channels, **point_kw)

    @property
    def operator_grid(self) -> tuple[int, ...] | None:
        """The training grid, on which the ``multilevel`` strategy runs ``W``."""
        grid = self.config["grid"]
        return None if grid is None else tuple(grid)

    @property
    def levels(self) -> int:
        """Number of multigrid levels of every layer."""
        return self.config["levels"]

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> MgNO:
        """Build from a plain config dict (as in ``model.config``); unknown keys raise."""
        cfg = dict(config)
        family = cfg.pop("model", "mgno")
        if family != "mgno":
            raise ValueError(f"model: expected 'mgno' for MgNO.from_config, got {family!r}")
        allowed = set(inspect.signature(cls.__init__).parameters) - {"self"}
        unknown = sorted(set(cfg) - allowed)
        if unknown:
            raise ValueError(
                f"MgNO config: unknown key(s) {', '.join(unknown)}; expected some of "
                f"{', '.join(sorted(allowed))}"
            )
        missing = [k for k in ("in_channels", "out_channels") if k not in cfg]
        if missing:
            raise ValueError(f"MgNO config: missing key(s) {', '.join(missing)}")
        return cls(**cfg)

    def _layer(
        self, op: nn.Module, bias: nn.Module, u: torch.Tensor, operator_grid: tuple[int, ...] | None
    ) -> torch.Tensor:
        """One layer ``sigma(W u + b(u))``; ``W`` runs on ``operator_grid`` if given."""
        if operator_grid is None or tuple(u.shape[2:]) == operator_grid:
            pre = op(u)
        else:
            boundary = self.config["boundary"]
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
