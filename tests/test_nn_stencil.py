"""Boundary handling of the stencils against explicit ghost-node references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mgno.nn.boundary import normalize_boundary, pad_nodes
from mgno.nn.stencil import Prolongation, StencilConv


def _ghost_index(i: int, n: int, bc: str) -> int | None:
    """Index of the node that ghost ``i`` copies, or None for a zero ghost."""
    if 0 <= i < n:
        return i
    if bc == "dirichlet":
        return None
    if bc == "periodic":
        return i % n
    return -i if i < 0 else 2 * (n - 1) - i  # neumann: mirror about the boundary node


def _pad_reference(x: np.ndarray, width: int, boundary: tuple[str, ...]) -> np.ndarray:
    """Ghost extension built node by node (x: (channels, *grid))."""
    grid = x.shape[1:]
    out = np.zeros((x.shape[0], *(n + 2 * width for n in grid)))
    for idx in np.ndindex(*out.shape[1:]):
        src = []
        for axis, j in enumerate(idx):
            k = _ghost_index(j - width, grid[axis], boundary[axis])
            if k is None:
                break
            src.append(k)
        else:
            out[(slice(None), *idx)] = x[(slice(None), *src)]
    return out


@pytest.mark.parametrize(
    "boundary",
    [
        ("dirichlet", "dirichlet"),
        ("neumann", "periodic"),
        ("periodic", "dirichlet"),
        ("neumann", "neumann"),
        ("periodic", "periodic"),
    ],
)
def test_pad_nodes_matches_ghost_reference(boundary):
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64)
    got = pad_nodes(x, 2, boundary)[0].numpy()
    np.testing.assert_allclose(got, _pad_reference(x[0].numpy(), 2, boundary))


@pytest.mark.parametrize("boundary", [("periodic", "periodic"), ("neumann", "periodic")])
def test_pad_nodes_keeps_channels_last(boundary):
    x = torch.randn(2, 3, 5, 6).contiguous(memory_format=torch.channels_last)
    got = pad_nodes(x, 1, boundary)
    assert got.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_allclose(got[0].numpy(), _pad_reference(x[0].numpy(), 1, boundary))


def test_pad_nodes_three_axes_mixed():
    boundary = ("periodic", "neumann", "dirichlet")
    x = torch.randn(1, 1, 4, 5, 3, dtype=torch.float64)
    got = pad_nodes(x, 1, boundary)[0].numpy()
    np.testing.assert_allclose(got, _pad_reference(x[0].numpy(), 1, boundary))


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("boundary", [("dirichlet", "neumann"), ("periodic", "dirichlet")])
def test_stencil_conv_equals_conv_of_ghost_extension(stride, boundary):
    conv = StencilConv(2, 3, dim=2, kernel_size=3, boundary=boundary, stride=stride).double()
    x = torch.randn(1, 2, 7, 8, dtype=torch.float64)
    ref = torch.nn.functional.conv2d(
        torch.from_numpy(_pad_reference(x[0].numpy(), 1, boundary))[None],
        conv.weight,
        stride=stride,
    )
    torch.testing.assert_close(conv(x), ref)
    assert conv(x).shape[2:] == ((7 + 1) // 2, 8 // 2) if stride == 2 else (7, 8)


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("channels_last", [False, True])
def test_pointwise_stencil_is_the_1x1_convolution(dim, channels_last):
    conv = StencilConv(
        3,
        2,
        dim=dim,
        kernel_size=1,
        boundary=("periodic",) * dim,
        bias=True,
        channels_last=channels_last,
    ).double()
    reference = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[dim]
    x = torch.randn(2, 3, *([5] * dim), dtype=torch.float64, requires_grad=True)
    out, ref = conv(x), reference(x, conv.weight, conv.bias)
    torch.testing.assert_close(out, ref)
    inputs = (x, conv.weight, conv.bias)
    got = torch.autograd.grad(out.square().sum(), inputs)
    for a, b in zip(got, torch.autograd.grad(ref.square().sum(), inputs), strict=True):
        torch.testing.assert_close(a, b)


def _prolong_reference(x: np.ndarray, w: np.ndarray, n_fine: int, bc: str) -> np.ndarray:
    """1-D prolongation: coarse node i feeds fine node 2 i - offset + k with weight w[:, :, k]."""
    c, n_coarse = x.shape
    k_size = w.shape[-1]
    offset = (k_size - 1) // 2
    out = np.zeros((w.shape[1], n_fine))
    for i in range(-3, n_coarse + 3):
        src = _ghost_index(i, n_coarse, bc)
        if src is None:
            continue
        for k in range(k_size):
            f = 2 * i - offset + k
            if 0 <= f < n_fine:
                out[:, f] += w[:, :, k].T @ x[:, src]
    return out


@pytest.mark.parametrize("bc", ["dirichlet", "neumann", "periodic"])
@pytest.mark.parametrize("kernel_size", [3, 4])
@pytest.mark.parametrize("n_fine", [11, 12])
def test_prolongation_matches_reference(bc, kernel_size, n_fine):
    if bc == "periodic" and n_fine % 2:
        pytest.skip("a periodic grid coarsens exactly only with an even number of nodes")
    n_coarse = (n_fine + 1) // 2
    prolong = Prolongation(2, dim=1, kernel_size=kernel_size, boundary=(bc,)).double()
    x = torch.randn(1, 2, n_coarse, dtype=torch.float64)
    got = prolong(x, (n_fine,))[0].detach().numpy()
    ref = _prolong_reference(x[0].numpy(), prolong.weight.detach().numpy(), n_fine, bc)
    np.testing.assert_allclose(got, ref, atol=1e-12)


def test_unknown_boundary_condition_names_the_choices():
    with pytest.raises(ValueError, match="unknown condition 'robin'.*dirichlet, neumann, periodic"):
        normalize_boundary(["dirichlet", "robin"], 2)
    with pytest.raises(ValueError, match="one condition per spatial axis"):
        normalize_boundary(["dirichlet"] * 3, 2)
    assert normalize_boundary("circular", 2) == ("periodic", "periodic")
