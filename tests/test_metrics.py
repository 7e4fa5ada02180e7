"""Evaluation metrics."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mgno.train.metrics import (
    MetricAccumulator,
    boundary_mask,
    boundary_rmse,
    field_metrics,
    rmse,
    spectral_rmse,
)


@settings(max_examples=20, deadline=None)
@given(dim=st.integers(1, 3), n=st.integers(3, 9), seed=st.integers(0, 10))
def test_spectral_bands_sum_to_rmse(dim, n, seed):
    g = torch.Generator().manual_seed(seed)
    shape = (3, 2) + (n,) * dim
    p, y = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
    bands = spectral_rmse(p, y)
    total = sum(b.double() ** 2 for b in bands.values())
    assert torch.allclose(total, rmse(p, y).double() ** 2, rtol=1e-4)


def test_spectral_band_of_a_pure_mode():
    n = 32
    x = torch.arange(n) / n
    e = torch.sin(2 * torch.pi * 8 * x)[None, None]
    bands = spectral_rmse(e, torch.zeros_like(e))
    assert bands["mid"].item() == pytest.approx(rmse(e, torch.zeros_like(e)).item(), rel=1e-5)
    assert bands["low"].item() < 1e-6 and bands["high"].item() < 1e-6


def test_boundary_mask_and_rmse():
    m = boundary_mask([5, 4])
    assert m.sum().item() == 5 * 4 - 3 * 2
    y = torch.zeros(1, 1, 5, 4)
    p = y.clone()
    p[..., 2, 1] = 7.0  # interior only
    assert boundary_rmse(p, y).item() == 0.0
    p[..., 0, 0] = 2.0
    assert boundary_rmse(p, y).item() == pytest.approx((4.0 / 14) ** 0.5)


def test_field_metrics_keys_and_accumulator():
    y = torch.rand(4, 1, 8, 8) + 1
    p = y * 1.2
    m = field_metrics(p, y)
    expected = {
        "rel_l2",
        "rel_h1",
        "rel_h1_fourier",
        "nrmse",
        "rmse",
        "max_error",
        "boundary_rmse",
        "rmse_low",
        "rmse_mid",
        "rmse_high",
    }
    assert set(m) == expected
    assert m["rel_l2"] == pytest.approx(torch.full((4,), 0.2), rel=1e-5)
    acc = MetricAccumulator()
    acc.update(field_metrics(p[:3], y[:3]))
    acc.update(field_metrics(p[3:], y[3:]))
    res = acc.result()
    assert res["rel_l2"] == pytest.approx(0.2, rel=1e-5)
    assert res["max_error"] == pytest.approx(float((p - y).abs().max()), rel=1e-6)
