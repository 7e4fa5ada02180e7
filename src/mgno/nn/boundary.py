"""Boundary conditions realised as padding of node-based grids.

A grid stores every node including the boundary (421 nodes = 420 cells + 1).
Every convolution of the multigrid operator sees its input padded with ghost
nodes chosen per axis:

``dirichlet``  zeros outside the domain (homogeneous Dirichlet data),
``neumann``    mirror image about the boundary node, ``u[-1] = u[1]``
               (a zero normal derivative on a node-based grid),
``periodic``   wrap around (the grid holds one period without repeating its
               first node).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from mgno.errors import InputError
from mgno.vocab import BOUNDARY_CONDITIONS

_PAD_MODE = {"dirichlet": "constant", "neumann": "reflect", "periodic": "circular"}


def normalize_boundary(boundary: str | Sequence[str], dim: int) -> tuple[str, ...]:
    """Return one boundary-condition name per spatial axis.

    Parameters
    ----------
    boundary
        One name for every axis, or a sequence with one name per axis. Names are
        ``dirichlet``, ``neumann`` or ``periodic`` (the padding names ``zeros``,
        ``reflect`` and ``circular`` are accepted as aliases).
    dim
        Number of spatial axes (1, 2 or 3).

    Raises
    ------
    InputError
        On an unknown name or a sequence whose length is not ``dim``.
    """
    names = [boundary] * dim if isinstance(boundary, str) else list(boundary)
    if len(names) != dim:
        raise InputError(
            f"boundary: expected one condition per spatial axis ({dim}), got {len(names)}: "
            f"{names!r}"
        )
    out = [BOUNDARY_CONDITIONS.check(str(name).strip().lower()) for name in names]
    return tuple(out)


def pad_nodes(x: torch.Tensor, width: int, boundary: Sequence[str]) -> torch.Tensor:
    """Pad every spatial axis of ``x`` by ``width`` ghost nodes on both sides.

    Parameters
    ----------
    x
        Tensor of shape (batch, channels, *grid) with ``len(grid) == len(boundary)``.
    width
        Number of ghost nodes on each side (0 returns ``x`` itself).
    boundary
        One normalised condition per spatial axis (see :func:`normalize_boundary`).

    Returns
    -------
    torch.Tensor
        Shape (batch, channels, *(n + 2 * width for n in grid)).
    """
    if width == 0:
        return x
    dim = len(boundary)
    modes = {_PAD_MODE[b] for b in boundary}
    if len(modes) == 1 and "circular" not in modes:
        return F.pad(x, (width,) * (2 * dim), mode=modes.pop())
    # Pad one axis at a time. Periodic axes are wrapped by concatenation, which
    # keeps a channels-last input channels-last (F.pad's circular mode returns
    # NCHW, and every periodic convolution then paid a layout conversion).
    for axis, bc in enumerate(boundary):
        if bc == "periodic":
            d, n = 2 + axis, x.shape[2 + axis]
            x = torch.cat([x.narrow(d, n - width, width), x, x.narrow(d, 0, width)], dim=d)
            continue
        spec = [0] * (2 * dim)  # F.pad lists the last axis first
        slot = 2 * (dim - 1 - axis)
        spec[slot] = spec[slot + 1] = width
        x = F.pad(x, tuple(spec), mode=_PAD_MODE[bc])
    return x
