"""Gaussian normalisers."""

from __future__ import annotations

import pytest
import torch

from mgno.data.normalize import GaussianNormalizer
from mgno.errors import InputError


@pytest.mark.parametrize("kind", ["pointwise", "scalar", "none"])
def test_roundtrip(kind):
    x = torch.randn(10, 2, 6, 5) * 3 + 1
    n = GaussianNormalizer.fit(x, kind)
    assert torch.allclose(n.decode(n.encode(x)), x, atol=1e-5)
    back = GaussianNormalizer.from_tensors(n.meta(), n.tensors("inputs"), "inputs")
    assert torch.equal(back.encode(x), n.encode(x))


def test_statistics():
    x = torch.randn(200, 2, 4, 4) * torch.tensor([2.0, 5.0]).view(1, 2, 1, 1) + 3
    z = GaussianNormalizer.fit(x, "pointwise").encode(x)
    assert torch.allclose(z.mean(0), torch.zeros(2, 4, 4), atol=1e-4)
    assert torch.allclose(z.std(0, unbiased=False), torch.ones(2, 4, 4), atol=1e-3)
    s = GaussianNormalizer.fit(x, "scalar")
    assert s.mean.shape == (2, 1, 1)
    zs = s.encode(x)
    assert zs[:, 0].std().item() == pytest.approx(1.0, abs=1e-2)
    assert zs[:, 1].std().item() == pytest.approx(1.0, abs=1e-2)


def test_none_is_identity_and_constant_channel_is_finite():
    x = torch.ones(4, 1, 3, 3)
    assert torch.equal(GaussianNormalizer.fit(x, "none").encode(x), x)
    assert torch.isfinite(GaussianNormalizer.fit(x, "pointwise").encode(x)).all()


def test_bad_kind():
    with pytest.raises(InputError, match="expected one of"):
        GaussianNormalizer.fit(torch.ones(2, 1, 3), "minmax")
