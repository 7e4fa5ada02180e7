"""Positional input channels: where each grid node lies, as extra input channels.

A network of convolutions with circular padding is shift-equivariant: it
cannot tell one node from another, so it cannot represent anything fixed in
space (the Navier-Stokes forcing ``0.1 (sin 2 pi (x + y) + cos 2 pi (x + y))``,
a fixed obstacle). Appending the node coordinates to the input gives it that
information without tying the network to one grid: the channels are computed
from the shape of each input, so they exist at any resolution.

Coordinates are those of the data's grid convention (``docs/data.md``),
normalised to the domain, per axis of ``n`` stored points:

``periodic``   one period without its repeated end node, ``x_i = i / n``, as the
               pair ``(sin 2 pi x_i, cos 2 pi x_i)``: continuous across the wrap;
otherwise      both end nodes stored, ``x_i = i / (n - 1)`` in ``[0, 1]``.

1-D, 2-D and 3-D grids share one code path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from mgno.nn.boundary import normalize_boundary
from mgno.vocab import POSITIONAL


def check_positional(kind: str | None) -> str:
    """The canonical name of a ``positional`` option (``None`` means ``"none"``).

    Raises
    ------
    InputError
        On a name not in :data:`mgno.vocab.POSITIONAL` (one line).
    """
    name = "none" if kind is None else str(kind).strip().lower()
    return POSITIONAL.check(name)


def positional_channel_count(kind: str | None, boundary: Sequence[str]) -> int:
    """Number of channels :class:`PositionalChannels` appends.

    Two per periodic axis (sine and cosine), one per other axis; none for
    ``kind="none"``.
    """
    if check_positional(kind) == "none":
        return 0
    return sum(2 if b == "periodic" else 1 for b in boundary)


def coordinate_channels(
    shape: Sequence[int],
    boundary: Sequence[str],
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The coordinate channels of a grid.

    Parameters
    ----------
    shape
        Stored points per spatial axis, ``(n_1, ..., n_d)``.
    boundary
        Condition per axis; ``periodic`` axes give a sine/cosine pair.
    dtype, device
        Of the returned tensor.

    Returns
    -------
    torch.Tensor
        ``(positional_channel_count("coords", boundary), n_1, ..., n_d)``; the
        channels of axis ``a`` come before those of axis ``a + 1``.
    """
    shape = [int(n) for n in shape]
    boundary = normalize_boundary(list(boundary), len(shape))
    channels = []
    for axis, (n, bc) in enumerate(zip(shape, boundary, strict=True)):
        index = torch.arange(n, dtype=torch.float64, device=device)
        view = [1] * len(shape)
        view[axis] = n
        if bc == "periodic":
            angle = (2 * math.pi / n) * index
            axis_channels = [torch.sin(angle), torch.cos(angle)]
        else:
            axis_channels = [index / max(n - 1, 1)]
        channels += [c.reshape(view).expand(shape) for c in axis_channels]
    return torch.stack(channels).to(dtype)


class PositionalChannels(nn.Module):
    """Append positional channels to a batch of grid functions (no parameters).

    Parameters
    ----------
    kind
        ``"coords"``: :func:`coordinate_channels`; ``"none"``: the identity.
    boundary
        Condition per spatial axis (its length sets the dimension).

    Shapes
    ------
    (batch, c, *grid) -> (batch, c + extra_channels, *grid), in the input's
    dtype and device, at any grid.
    """

    def __init__(self, kind: str | None, boundary: Sequence[str]) -> None:
        super().__init__()
        self.kind = check_positional(kind)
        self.boundary = tuple(boundary)
        self.extra_channels = positional_channel_count(self.kind, self.boundary)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.extra_channels == 0:
            return x
        if x.dim() != len(self.boundary) + 2:
            raise ValueError(
                f"positional channels: expected (batch, channels, {len(self.boundary)} grid "
                f"axes), got shape {tuple(x.shape)}"
            )
        coords = coordinate_channels(x.shape[2:], self.boundary, dtype=x.dtype, device=x.device)
        return torch.cat([x, coords.unsqueeze(0).expand(x.shape[0], *coords.shape)], dim=1)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, extra_channels={self.extra_channels}"
