"""Convolution stencils on node-based grids in 1, 2 or 3 dimensions.

The two building blocks of the multigrid operator:

* :class:`StencilConv` -- a multi-channel convolution whose ghost nodes come
  from the boundary conditions (see :mod:`mgno.nn.boundary`), with stride 1
  (smoothers ``A`` and ``S``, 1x1 maps) or stride 2 (restrictions ``R`` and
  ``Pi``: coarse node ``i`` sits on fine node ``2 i``).
* :class:`Prolongation` -- a stride-2 transposed convolution from a coarse grid
  to a given fine grid, again with ghost nodes from the boundary conditions,
  cropped so that coarse node ``i`` feeds fine node ``2 i`` and its neighbours.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mgno.nn.boundary import pad_nodes

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def to_channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` in channels-last layout for 2-D (4-D tensor) and 3-D (5-D) grids; 1-D as is."""
    if x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    if x.dim() == 5:
        return x.contiguous(memory_format=torch.channels_last_3d)
    return x


def coarse_size(n: int) -> int:
    """Number of nodes after one stride-2 restriction of ``n`` nodes: ``ceil(n / 2)``."""
    return (n + 1) // 2


def _weight_layout(weight: nn.Parameter, channels_last: bool) -> bool:
    # Puts a 2-D/3-D convolution's weight in channels-last layout (load_state_dict,
    # .to(device) and the optimiser's state keep it); False for 1-D grids.
    if not channels_last or weight.dim() < 4:
        return False
    weight.data = to_channels_last(weight.data)
    return True


def _init_(weight: torch.Tensor, bias: torch.Tensor | None, fan_in: int) -> None:
    # The default initialisation of torch.nn.Conv*d, written for any shape.
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    nn.init.uniform_(weight, -bound, bound)
    if bias is not None:
        nn.init.uniform_(bias, -bound, bound)


class StencilConv(nn.Module):
    """Multi-channel convolution with boundary-condition ghost nodes.

    Parameters
    ----------
    in_channels, out_channels
        Channel counts.
    dim
        Number of spatial axes (1, 2 or 3).
    kernel_size
        Odd stencil width per axis (1 gives a point-wise linear map).
    boundary
        One normalised condition per spatial axis.
    stride
        1 (same grid) or 2 (restriction to the next coarser grid).
    bias
        Add a learnable constant per output channel (makes the map affine).
    channels_last
        Keep the weight, and return the output, in channels-last layout (2-D
        and 3-D grids), which oneDNN and cuDNN convolve fastest. A convolution
        takes its output layout from its input or its weight, and a one-channel
        tensor is NCHW and channels-last at once, so the output is converted
        explicitly where the library would fall back to NCHW.

    Shapes
    ------
    (batch, in_channels, *grid) -> (batch, out_channels, *grid) for stride 1 and
    (batch, out_channels, *(ceil(n / 2) for n in grid)) for stride 2.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        dim: int,
        kernel_size: int,
        boundary: Sequence[str],
        stride: int = 1,
        bias: bool = False,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size: expected an odd positive integer, got {kernel_size}")
        self.dim = dim
        self.stride = stride
        self.pad = (kernel_size - 1) // 2
        self.boundary = tuple(boundary)
        self._zero_padded = all(b == "dirichlet" for b in self.boundary)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *([kernel_size] * dim)))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        _init_(self.weight, self.bias, in_channels * kernel_size**dim)
        self.channels_last = _weight_layout(self.weight, channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad == 0 and self.stride == 1:
            # A 1x1 convolution is a matrix product over the channel axis: one
            # GEMM (on a view, in channels-last). PyTorch sends 1x1 kernels to
            # its slow THNN convolution on a CPU, 5% of a darcy-smooth step.
            y = F.linear(x.movedim(1, -1), self.weight.flatten(1), self.bias).movedim(-1, 1)
            return to_channels_last(y) if self.channels_last else y
        conv = _CONV[self.dim]
        if self._zero_padded:
            y = conv(x, self.weight, self.bias, stride=self.stride, padding=self.pad)
        else:
            y = conv(
                pad_nodes(x, self.pad, self.boundary), self.weight, self.bias, stride=self.stride
            )
        return to_channels_last(y) if self.channels_last else y

    def extra_repr(self) -> str:
        out_ch, in_ch, *k = self.weight.shape
        return (
            f"{in_ch}, {out_ch}, kernel_size={k[0]}, stride={self.stride}, "
            f"boundary={self.boundary}, bias={self.bias is not None}"
        )


class Prolongation(nn.Module):
    """Stride-2 transposed convolution from a coarse grid onto a fine grid.

    Coarse node ``i`` contributes to the fine nodes ``2 i - p + k`` for
    ``k = 0 .. kernel_size - 1`` with ``p = (kernel_size - 1) // 2``; the 4-wide
    kernel of the MgNO paper reaches ``2 i - 1 .. 2 i + 2`` and the 3-wide one is
    the symmetric linear-interpolation stencil. Ghost coarse nodes come from the
    boundary conditions, so periodic axes wrap exactly.

    ``channels`` are the coarse level's; ``out_channels`` (default: the same)
    the fine level's, for multigrid levels of different widths.
    ``channels_last`` is as for :class:`StencilConv`.

    Shapes
    ------
    (batch, channels, *coarse) -> (batch, out_channels, *fine), where every
    coarse size is ``ceil(fine / 2)``.
    """

    def __init__(
        self,
        channels: int,
        out_channels: int | None = None,
        *,
        dim: int,
        kernel_size: int,
        boundary: Sequence[str],
        bias: bool = False,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        if kernel_size < 2:
            raise ValueError(
                f"prolongation_kernel_size: expected an integer >= 2, got {kernel_size}"
            )
        self.dim = dim
        self.kernel_size = kernel_size
        self.offset = (kernel_size - 1) // 2  # fine index = 2 i - offset + k
        self.ghost = max(1, (self.offset + 1) // 2)  # coarse ghost nodes needed per side
        self.boundary = tuple(boundary)
        self._zero_padded = all(b == "dirichlet" for b in self.boundary)
        out_channels = channels if out_channels is None else out_channels
        # conv_transpose weights are laid out (in_channels, out_channels, *kernel).
        self.weight = nn.Parameter(torch.empty(channels, out_channels, *([kernel_size] * dim)))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        _init_(self.weight, self.bias, out_channels * kernel_size**dim)
        self.channels_last = _weight_layout(self.weight, channels_last)

    def forward(self, x: torch.Tensor, fine_shape: Sequence[int]) -> torch.Tensor:
        conv_t = _CONV_T[self.dim]
        if self._zero_padded:
            # Zero ghosts are what conv_transpose assumes: crop or extend by one.
            # One extra row per axis whatever the sizes (a constant, so that an
            # exported graph keeps its spatial axes dynamic): the output then
            # covers 2 n >= fine nodes, and the crop below trims it.
            extra = max(0, 2 * self.offset + 2 - self.kernel_size)
            y = conv_t(
                x,
                self.weight,
                self.bias,
                stride=2,
                padding=self.offset,
                output_padding=(extra,) * self.dim,
            )
            start = 0
        else:
            y = conv_t(pad_nodes(x, self.ghost, self.boundary), self.weight, self.bias, stride=2)
            start = self.offset + 2 * self.ghost
        # Crop to the fine grid by negative constant padding: one op whose
        # backward pads once and keeps the layout, where slicing took a zero
        # fill per axis and handed the convolution an NCHW gradient
        # (benchmarks/RESULTS.md, fix 4). F.pad lists the last axis first.
        crop = []
        for n_out, n_fine in zip(reversed(y.shape[2:]), reversed(fine_shape), strict=True):
            crop += [-start, n_fine + start - n_out]
        if torch.compiler.is_exporting() or any(crop):  # exported: no branch on sizes
            y = F.pad(y, crop)
        return to_channels_last(y) if self.channels_last else y

    def extra_repr(self) -> str:
        return (
            f"{self.weight.shape[0]}, {self.weight.shape[1]}, kernel_size={self.kernel_size}, "
            "stride=2, "
            f"boundary={self.boundary}, bias={self.bias is not None}"
        )
