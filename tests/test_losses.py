"""Relative L2 and H1 losses."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mgno.errors import InputError
from mgno.train.losses import (
    fourier_weights,
    get_loss,
    relative_h1_fd,
    relative_h1_fourier,
    relative_l2,
)


def test_rel_l2_known_value():
    y = torch.ones(2, 1, 4, 4)
    p = y * 1.1
    assert relative_l2(p, y).item() == pytest.approx(0.1, rel=1e-6)
    assert relative_l2(y, y).item() == 0.0


def test_rel_l2_is_per_sample_mean():
    y = torch.ones(2, 1, 8)
    p = y.clone()
    p[0] *= 1.5  # sample 0: 0.5, sample 1: 0
    assert relative_l2(p, y).item() == pytest.approx(0.25)
    assert relative_l2(p, y, reduce=False).tolist() == pytest.approx([0.5, 0.0])


@settings(max_examples=20, deadline=None)
@given(scale=st.floats(0.01, 100.0), dim=st.integers(1, 3))
def test_losses_scale_invariant(scale, dim):
    g = torch.Generator().manual_seed(0)
    shape = (2, 2) + (6,) * dim
    y = torch.randn(shape, generator=g, dtype=torch.float64)
    p = y + 0.1 * torch.randn(shape, generator=g, dtype=torch.float64)
    for fn in (relative_l2, relative_h1_fd, relative_h1_fourier):
        a, b = fn(p, y), fn(p * scale, y * scale)
        assert a.item() == pytest.approx(b.item(), rel=1e-5)


def test_h1_fd_exact_for_linear_fields():
    # e(x) = x on 11 nodes of [0, 1]: ||e||^2 + ||e'||^2 summed over nodes.
    x = torch.linspace(0, 1, 11, dtype=torch.float64)
    y = torch.ones(1, 1, 11, dtype=torch.float64)  # y' = 0
    p = y + x
    expected = math.sqrt(float((x**2).sum() + 11 * 1.0) / 11.0)
    assert relative_h1_fd(p, y).item() == pytest.approx(expected, rel=1e-12)


def test_h1_fourier_weights_and_cutoff():
    w = fourier_weights([8, 8], k_max=None)
    assert w[0, 0] == 1 and w[1, 0] == 2 and w[1, 1] == 3 and w[-1, 0] == 2
    wc = fourier_weights([64], k_max=20)
    assert wc[19] > 0 and wc[20] == 0 and wc[-20] == 0 and wc[-19] > 0


def test_h1_fourier_penalises_high_frequencies_more():
    n = 32
    x = torch.arange(n) / n
    y = torch.ones(1, 1, n)
    low = y + 0.1 * torch.sin(2 * math.pi * x)
    high = y + 0.1 * torch.sin(2 * math.pi * 8 * x)
    assert relative_l2(low, y).item() == pytest.approx(relative_l2(high, y).item(), rel=1e-5)
    assert relative_h1_fourier(high, y).item() > 3 * relative_h1_fourier(low, y).item()


def test_loss_errors():
    with pytest.raises(InputError, match="does not match"):
        relative_l2(torch.zeros(1, 1, 4), torch.zeros(1, 1, 5))
    with pytest.raises(InputError, match="expected one of"):
        get_loss("mse")
    for name in ("rel_l2", "rel_h1_fourier", "rel_h1_fd"):
        y = torch.rand(2, 1, 8, 8) + 1
        assert get_loss(name)(y, y).item() == 0.0


def test_loss_gradients_flow():
    y = torch.rand(2, 1, 8, 8) + 1
    for name in ("rel_l2", "rel_h1_fourier", "rel_h1_fd"):
        p = (y * 1.1).requires_grad_()
        get_loss(name)(p, y).backward()
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
