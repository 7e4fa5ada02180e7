"""Baselines beside MgNO: neuraloperator's FNO, TFNO and UNO, and a U-Net.

Every baseline is a registered family (:mod:`mgno.nn.registry`): a frozen
config dataclass and a model class that carries ``.config`` (so
``mgno.build_model(model.config)`` rebuilds it, and checkpoints store it as
JSON) and maps (batch, in_channels, *grid) -> (batch, out_channels, *grid).
The FNO family are neuraloperator's own models, wrapped, not reimplemented.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from mgno.errors import InputError
from mgno.nn.boundary import normalize_boundary
from mgno.nn.positional import PositionalChannels, check_positional
from mgno.nn.registry import ModelConfig, RegisteredModel, as_grid, as_int, register_model
from mgno.nn.stencil import Prolongation, StencilConv


def _check_input(x: torch.Tensor, dim: int, in_channels: int, family: str) -> None:
    expected = f"(batch, {in_channels}, " + ", ".join(["n"] * dim) + ")"
    if x.dim() != dim + 2 or x.shape[1] != in_channels:
        raise ValueError(f"{family} input: expected shape {expected}, got {tuple(x.shape)}")


def _recorded_boundary(boundary: str | Sequence[str] | None, dim: int) -> tuple[str, ...] | None:
    return None if boundary is None else normalize_boundary(boundary, dim)


@dataclass(frozen=True)
class FNOConfig(ModelConfig):
    """Config of neuraloperator's FNO (``{"model": "fno", ...}``).

    Attributes
    ----------
    dim
        Number of spatial axes.
    width
        Hidden channels.
    modes
        Fourier modes kept per axis (one number for all axes; stored per axis).
    layers
        Fourier layers.
    domain_padding
        None, or a fraction of the grid to pad by (such as 0.1; helps on
        non-periodic data).
    rank
        Tucker rank of TFNO's factorised weights (recorded for FNO too).
    grid, boundary
        The training grid and boundary conditions (recorded, not used).
    """

    family: ClassVar[str] = "fno"
    dim: int = 2
    width: int = 32
    modes: int | tuple[int, ...] = 12
    layers: int = 4
    domain_padding: float | None = None
    rank: float = 0.42
    grid: tuple[int, ...] | None = None
    boundary: str | tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("dim", "width", "layers"):
            self._set(name, as_int(getattr(self, name), self._where(name)))
        modes = [self.modes] * self.dim if isinstance(self.modes, int) else self.modes
        modes = tuple(as_int(m, self._where("modes")) for m in modes)
        if len(modes) != self.dim:
            raise InputError(f"{self.family} config: modes needs {self.dim} entries, got {modes}")
        self._set("modes", modes)
        self._set("rank", float(self.rank))
        self._set("grid", as_grid(self.grid, self.dim, "grid"))
        self._set("boundary", _recorded_boundary(self.boundary, self.dim))


@dataclass(frozen=True)
class TFNOConfig(FNOConfig):
    """Config of neuraloperator's TFNO (Tucker-factorised FNO, ``rank``); fields as FNO's."""

    family: ClassVar[str] = "tfno"


@dataclass(frozen=True)
class UNOConfig(ModelConfig):
    """Config of neuraloperator's U-shaped neural operator (``{"model": "uno", ...}``).

    Attributes
    ----------
    dim
        Number of spatial axes.
    width
        Hidden channels of the outer layers (twice that inside).
    modes
        Fourier modes per axis on the outer layers, half of it inside.
    layers
        At least 3: full, half, ..., half, full, full resolution.
    grid, boundary
        The training grid and boundary conditions (recorded, not used).
    """

    family: ClassVar[str] = "uno"
    dim: int = 2
    width: int = 32
    modes: int = 12
    layers: int = 5
    grid: tuple[int, ...] | None = None
    boundary: str | tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("dim", "width", "modes", "layers"):
            self._set(name, as_int(getattr(self, name), self._where(name)))
        if self.layers < 3:
            raise InputError(f"uno config: layers must be >= 3, got {self.layers}")
        self._set("grid", as_grid(self.grid, self.dim, "grid"))
        self._set("boundary", _recorded_boundary(self.boundary, self.dim))


class NeuralOperatorModel(RegisteredModel):
    """A neuraloperator model (``.inner``) with mgno's config and input checks.

    Subclasses build ``inner`` from their config in :meth:`build_inner`.

    Shapes: (batch, in_channels, *grid) -> (batch, out_channels, *grid).
    """

    def __init__(self, in_channels: int, out_channels: int, **options: Any) -> None:
        super().__init__()
        cfg = self.config_class(in_channels, out_channels, **options)
        self.model_config = cfg
        self.family = cfg.family
        self.dim, self.in_channels, self.out_channels = cfg.dim, cfg.in_channels, cfg.out_channels
        self.inner = self.build_inner(cfg)

    def build_inner(self, cfg: Any) -> nn.Module:
        """The wrapped neuraloperator network."""
        raise NotImplementedError

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Tensors only: neuraloperator adds a ``_metadata`` dict, which mgno keeps
        in ``.config`` instead (checkpoints are safetensors + JSON)."""
        state = super().state_dict(*args, **kwargs)
        state.pop("_metadata", None)
        return state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.dim, self.in_channels, self.family)
        return self.inner(x)


@register_model(FNOConfig)
class FNO(NeuralOperatorModel):
    """neuraloperator's FNO; config :class:`FNOConfig`."""

    def build_inner(self, cfg: FNOConfig) -> nn.Module:
        from neuralop.models import FNO as Inner

        return Inner(**_fno_kwargs(cfg))


@register_model(TFNOConfig)
class TFNO(NeuralOperatorModel):
    """neuraloperator's TFNO (Tucker-factorised weights of rank ``rank``); config
    :class:`TFNOConfig`."""

    def build_inner(self, cfg: TFNOConfig) -> nn.Module:
        from neuralop.models import TFNO as Inner

        return Inner(rank=cfg.rank, **_fno_kwargs(cfg))


def _fno_kwargs(cfg: FNOConfig) -> dict[str, Any]:
    return dict(
        n_modes=tuple(cfg.modes),
        in_channels=cfg.in_channels,
        out_channels=cfg.out_channels,
        hidden_channels=cfg.width,
        n_layers=cfg.layers,
        domain_padding=cfg.domain_padding,
    )


@register_model(UNOConfig)
class UNO(NeuralOperatorModel):
    """neuraloperator's U-shaped neural operator; config :class:`UNOConfig`."""

    def build_inner(self, cfg: UNOConfig) -> nn.Module:
        from neuralop.models import UNO as Inner

        dim, width, modes, layers = cfg.dim, cfg.width, cfg.modes, cfg.layers
        same = [1.0] * dim
        scalings = [[1.0] * dim, [0.5] * dim] + [same] * (layers - 4) + [[2.0] * dim, same]
        scalings = scalings[:layers]
        inner_modes = max(1, modes // 2)
        n_modes = [[modes] * dim] + [[inner_modes] * dim] * (layers - 2) + [[modes] * dim]
        widths = [width] + [2 * width] * (layers - 2) + [width]
        # neuraloperator prints its skip settings while building UNO: keep stdout clean.
        with contextlib.redirect_stdout(sys.stderr):
            return Inner(
                in_channels=cfg.in_channels,
                out_channels=cfg.out_channels,
                hidden_channels=width,
                lifting_channels=2 * width,
                projection_channels=2 * width,
                n_layers=layers,
                uno_out_channels=widths,
                uno_n_modes=n_modes,
                uno_scalings=scalings,
                channel_mlp_skip="linear",
            )


class _ConvBlock(nn.Module):
    """Two (3x3 stencil, GroupNorm, GELU) stages on one grid."""

    def __init__(
        self, c_in: int, c_out: int, dim: int, boundary: Sequence[str], channels_last: bool
    ) -> None:
        super().__init__()
        kw = dict(dim=dim, kernel_size=3, boundary=boundary, bias=True, channels_last=channels_last)
        self.conv1 = StencilConv(c_in, c_out, **kw)
        self.norm1 = nn.GroupNorm(min(8, c_out), c_out)
        self.conv2 = StencilConv(c_out, c_out, **kw)
        self.norm2 = nn.GroupNorm(min(8, c_out), c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.norm1(self.conv1(x)))
        return F.gelu(self.norm2(self.conv2(x)))


@dataclass(frozen=True)
class UNetConfig(ModelConfig):
    """Config of :class:`UNet` (``{"model": "unet", ...}``).

    Attributes
    ----------
    dim
        Number of spatial axes.
    width
        Channels of the first block; doubled at each level down.
    depth
        Number of downsamplings.
    boundary
        Boundary condition(s) used for padding (stored per axis).
    grid
        The training grid (recorded in the config).
    channels_last
        Run 2-D/3-D grids in channels-last layout, as MgNO does (a training
        step at 64x64 on a CPU: 1.5x faster; results equal up to rounding; the
        output is returned in the ordinary layout).
    """

    family: ClassVar[str] = "unet"
    dim: int = 2
    width: int = 32
    depth: int = 4
    boundary: str | tuple[str, ...] = "dirichlet"
    grid: tuple[int, ...] | None = None
    channels_last: bool = True
    positional: str = "none"

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("dim", "width", "depth"):
            self._set(name, as_int(getattr(self, name), self._where(name)))
        self._set("boundary", normalize_boundary(self.boundary, self.dim))
        self._set("positional", check_positional(self.positional))
        self._set("grid", as_grid(self.grid, self.dim, "grid"))
        self._set("channels_last", bool(self.channels_last))


@register_model(UNetConfig)
class UNet(RegisteredModel):
    """A standard U-Net on node grids of any size, 1-D, 2-D or 3-D.

    Encoder blocks of two 3x3 convolutions (GroupNorm, GELU) with stride-2
    downsampling, a transposed-convolution decoder with skip concatenation,
    and a 1x1 output map. Padding follows the boundary condition of each axis,
    and up-sampling lands on the exact fine grid, so odd sizes work.

    Parameters
    ----------
    in_channels, out_channels
        Channels of the input and the output.
    **options
        The other fields of :class:`UNetConfig` (``dim``, ``width``, ``depth``,
        ``boundary``, ``grid``, ``channels_last``), with its defaults.

    Shapes: (batch, in_channels, *grid) -> (batch, out_channels, *grid).
    """

    def __init__(self, in_channels: int, out_channels: int, **options: Any) -> None:
        super().__init__()
        cfg = UNetConfig(in_channels, out_channels, **options)
        self.model_config = cfg
        dim, width, depth, boundary = cfg.dim, cfg.width, cfg.depth, cfg.boundary
        channels_last = cfg.channels_last
        self.dim, self.in_channels, self.out_channels = dim, cfg.in_channels, cfg.out_channels
        cl = dict(channels_last=channels_last)
        self.depth = depth
        widths = [width * 2**i for i in range(depth + 1)]
        self.encoders = nn.ModuleList()
        self.downs = nn.ModuleList()
        self.positional = PositionalChannels(cfg.positional, boundary)
        c = in_channels + self.positional.extra_channels
        for i, w in enumerate(widths):
            self.encoders.append(_ConvBlock(c, w, dim, boundary, channels_last))
            if i < depth:
                self.downs.append(
                    StencilConv(
                        w, w, dim=dim, kernel_size=3, boundary=boundary, stride=2, bias=True, **cl
                    )
                )
            c = w
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for i in range(depth - 1, -1, -1):
            self.ups.append(
                nn.ModuleList(
                    [
                        Prolongation(
                            widths[i + 1],
                            dim=dim,
                            kernel_size=4,
                            boundary=boundary,
                            bias=True,
                            **cl,
                        ),
                        StencilConv(
                            widths[i + 1],
                            widths[i],
                            dim=dim,
                            kernel_size=1,
                            boundary=boundary,
                            **cl,
                        ),
                    ]
                )
            )
            self.decoders.append(_ConvBlock(2 * widths[i], widths[i], dim, boundary, channels_last))
        self.head = StencilConv(
            widths[0], out_channels, dim=dim, kernel_size=1, boundary=boundary, bias=True
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.dim, self.in_channels, "unet")
        x = self.positional(x)
        skips = []
        for i, encoder in enumerate(self.encoders):
            x = encoder(x)
            if i < self.depth:
                skips.append(x)
                x = self.downs[i](x)
        for (prolong, reduce), decoder, skip in zip(
            self.ups, self.decoders, reversed(skips), strict=True
        ):
            x = reduce(prolong(x, skip.shape[2:]))
            x = decoder(torch.cat([skip, x], dim=1))
        return self.head(x).contiguous()
