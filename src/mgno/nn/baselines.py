"""Baselines beside MgNO: neuraloperator's FNO, TFNO and UNO, and a U-Net.

Every baseline is built from a plain config dict, carries ``.config`` (so
``mgno.build_model(model.config)`` rebuilds it, and checkpoints store it as
JSON) and maps (batch, in_channels, *grid) -> (batch, out_channels, *grid).
The FNO family are neuraloperator's own models, wrapped, not reimplemented.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mgno.nn.boundary import normalize_boundary
from mgno.nn.positional import PositionalChannels
from mgno.nn.stencil import Prolongation, StencilConv


def _check_keys(family: str, config: dict[str, Any], signature_of: Callable) -> dict[str, Any]:
    """The config without its "model" key; raises on keys ``signature_of`` does not take."""
    cfg = dict(config)
    cfg.pop("model", None)
    allowed = set(inspect.signature(signature_of).parameters) - {"self", "family"}
    unknown = sorted(set(cfg) - allowed)
    if unknown:
        raise ValueError(
            f"{family} config: unknown key(s) {', '.join(unknown)}; expected some of "
            f"{', '.join(sorted(allowed))}"
        )
    for key in ("in_channels", "out_channels"):
        if key not in cfg:
            raise ValueError(f"{family} config: missing key {key}")
    return cfg


def _check_input(x: torch.Tensor, dim: int, in_channels: int, family: str) -> None:
    expected = f"(batch, {in_channels}, " + ", ".join(["n"] * dim) + ")"
    if x.dim() != dim + 2 or x.shape[1] != in_channels:
        raise ValueError(f"{family} input: expected shape {expected}, got {tuple(x.shape)}")


class NeuralOperatorModel(nn.Module):
    """A neuraloperator model with mgno's config and input checks.

    Shapes: (batch, in_channels, *grid) -> (batch, out_channels, *grid).
    """

    def __init__(self, family: str, inner: nn.Module, config: dict[str, Any]) -> None:
        super().__init__()
        self.family = family
        self.inner = inner
        self.config = config
        self.dim = config["dim"]
        self.in_channels = config["in_channels"]
        self.out_channels = config["out_channels"]

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Tensors only: neuraloperator adds a ``_metadata`` dict, which mgno keeps
        in ``.config`` instead (checkpoints are safetensors + JSON)."""
        state = super().state_dict(*args, **kwargs)
        state.pop("_metadata", None)
        return state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.dim, self.in_channels, self.family)
        return self.inner(x)


def _fno_config(
    family: str,
    in_channels: int,
    out_channels: int,
    dim: int = 2,
    width: int = 32,
    modes: int | Sequence[int] = 12,
    layers: int = 4,
    domain_padding: float | None = None,
    rank: float = 0.42,
    grid: Sequence[int] | None = None,
    boundary: str | Sequence[str] | None = None,
) -> dict[str, Any]:
    modes = [int(modes)] * dim if isinstance(modes, int) else [int(m) for m in modes]
    if len(modes) != dim:
        raise ValueError(f"{family} config: modes needs {dim} entries, got {modes}")
    return {
        "model": family,
        "in_channels": int(in_channels),
        "out_channels": int(out_channels),
        "dim": int(dim),
        "width": int(width),
        "modes": modes,
        "layers": int(layers),
        "domain_padding": domain_padding,
        "rank": float(rank),
        "grid": None if grid is None else [int(n) for n in grid],
        "boundary": None if boundary is None else list(normalize_boundary(boundary, dim)),
    }


def build_fno(config: dict[str, Any], family: str = "fno") -> NeuralOperatorModel:
    """neuraloperator's FNO (``family="tfno"``: Tucker-factorised weights, ``rank``).

    Config keys: in_channels, out_channels, dim (2), width (32), modes (12),
    layers (4), domain_padding (None; a fraction such as 0.1 helps on
    non-periodic data), rank (0.42, TFNO only), grid and boundary (recorded).
    """
    from neuralop.models import FNO, TFNO

    cfg = _fno_config(family, **_check_keys(family, config, _fno_config))
    kwargs = dict(
        n_modes=tuple(cfg["modes"]),
        in_channels=cfg["in_channels"],
        out_channels=cfg["out_channels"],
        hidden_channels=cfg["width"],
        n_layers=cfg["layers"],
        domain_padding=cfg["domain_padding"],
    )
    inner = TFNO(rank=cfg["rank"], **kwargs) if family == "tfno" else FNO(**kwargs)
    return NeuralOperatorModel(family, inner, cfg)


def build_tfno(config: dict[str, Any]) -> NeuralOperatorModel:
    """neuraloperator's TFNO (Tucker-factorised FNO); keys as :func:`build_fno`."""
    return build_fno(config, family="tfno")


def _uno_keys(
    in_channels: int,
    out_channels: int,
    dim: int = 2,
    width: int = 32,
    modes: int = 12,
    layers: int = 5,
    grid: Sequence[int] | None = None,
    boundary: str | Sequence[str] | None = None,
) -> None:
    """The keys a UNO config takes (see :func:`build_uno`)."""


def build_uno(config: dict[str, Any]) -> NeuralOperatorModel:
    """neuraloperator's U-shaped neural operator (UNO).

    Config keys: in_channels, out_channels, dim (2), width (32), modes (12 on the
    outer layers, half of it inside), layers (5: full, half, half, full, full
    resolution), grid and boundary (recorded).
    """
    from neuralop.models import UNO

    cfg = _check_keys("uno", config, _uno_keys)
    dim, width, modes, layers = (
        int(cfg.get("dim", 2)),
        int(cfg.get("width", 32)),
        int(cfg.get("modes", 12)),
        int(cfg.get("layers", 5)),
    )
    if layers < 3:
        raise ValueError(f"uno config: layers must be >= 3, got {layers}")
    same = [1.0] * dim
    scalings = [[1.0] * dim, [0.5] * dim] + [same] * (layers - 4) + [[2.0] * dim, [1.0] * dim]
    scalings = scalings[:layers]
    inner_modes = max(1, modes // 2)
    n_modes = [[modes] * dim] + [[inner_modes] * dim] * (layers - 2) + [[modes] * dim]
    widths = [width] + [2 * width] * (layers - 2) + [width]
    # neuraloperator prints its skip settings while building UNO: keep stdout clean.
    with contextlib.redirect_stdout(sys.stderr):
        inner = UNO(
            in_channels=int(cfg["in_channels"]),
            out_channels=int(cfg["out_channels"]),
            hidden_channels=width,
            lifting_channels=2 * width,
            projection_channels=2 * width,
            n_layers=layers,
            uno_out_channels=widths,
            uno_n_modes=n_modes,
            uno_scalings=scalings,
            channel_mlp_skip="linear",
        )
    full = {
        "model": "uno",
        "in_channels": int(cfg["in_channels"]),
        "out_channels": int(cfg["out_channels"]),
        "dim": dim,
        "width": width,
        "modes": modes,
        "layers": layers,
        "grid": cfg.get("grid"),
        "boundary": None
        if cfg.get("boundary") is None
        else list(normalize_boundary(cfg["boundary"], dim)),
    }
    return NeuralOperatorModel("uno", inner, full)


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


class UNet(nn.Module):
    """A standard U-Net on node grids of any size, 1-D, 2-D or 3-D.

    Encoder blocks of two 3x3 convolutions (GroupNorm, GELU) with stride-2
    downsampling, a transposed-convolution decoder with skip concatenation,
    and a 1x1 output map. Padding follows the boundary condition of each axis,
    and up-sampling lands on the exact fine grid, so odd sizes work.

    Parameters
    ----------
    in_channels, out_channels, dim
        Channels and number of spatial axes.
    width
        Channels of the first block; doubled at each level down.
    depth
        Number of downsamplings.
    boundary
        Boundary condition(s) used for padding.
    grid
        The training grid (recorded in the config).
    positional
        ``"coords"``: append the node coordinates to the input
        (:mod:`mgno.nn.positional`); ``"none"`` (default).
    channels_last
        Run 2-D/3-D grids in channels-last layout, as MgNO does (a training
        step at 64x64 on a CPU: 1.5x faster; results equal up to rounding; the
        output is returned in the ordinary layout).

    Shapes: (batch, in_channels, *grid) -> (batch, out_channels, *grid).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        dim: int = 2,
        width: int = 32,
        depth: int = 4,
        boundary: str | Sequence[str] = "dirichlet",
        grid: Sequence[int] | None = None,
        positional: str = "none",
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        boundary = normalize_boundary(boundary, dim)
        self.positional = PositionalChannels(positional, boundary)
        self.config = {
            "model": "unet",
            "in_channels": int(in_channels),
            "out_channels": int(out_channels),
            "dim": int(dim),
            "width": int(width),
            "depth": int(depth),
            "boundary": list(boundary),
            "grid": None if grid is None else [int(n) for n in grid],
            "positional": self.positional.kind,
            "channels_last": bool(channels_last),
        }
        self.dim, self.in_channels, self.out_channels = dim, in_channels, out_channels
        cl = dict(channels_last=channels_last)
        self.depth = depth
        widths = [width * 2**i for i in range(depth + 1)]
        self.encoders = nn.ModuleList()
        self.downs = nn.ModuleList()
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

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> UNet:
        """Build from a plain config dict (as in ``model.config``); unknown keys raise."""
        return cls(**_check_keys("unet", config, cls.__init__))

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
