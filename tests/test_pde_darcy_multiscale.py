"""The multiscale Darcy coefficient against its formula (docs/data.md): values at
nodes, the law of the frequencies, bounds, and the generator's defaults."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mgno.errors import InputError
from mgno.pde.darcy import DARCY_DEFAULTS, multiscale_coefficient
from mgno.pde.registry import get_pde, parse_params


def _formula(x: float, y: float, freqs: np.ndarray, c: float) -> float:
    """prod_k (1 + c cos(a_k pi (x + y))) (1 + c sin(a_k pi (y - 3 x))), written out."""
    value = 1.0
    for a in freqs:
        value *= 1.0 + c * np.cos(a * np.pi * (x + y))
        value *= 1.0 + c * np.sin(a * np.pi * (y - 3 * x))
    return value


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), K=st.integers(1, 7),
       c=st.floats(0.05, 0.95), n=st.sampled_from([5, 9, 17, 33]))
def test_the_coefficient_is_the_documented_product_at_every_node(seed, K, c, n):
    a = multiscale_coefficient(np.random.default_rng(seed), n, K=K, amplitude=c)
    # the frequencies the generator draws: a_k ~ U[2^(k-1), 2^k], k = 1..K, in order
    freqs = np.random.default_rng(seed).uniform(2.0 ** np.arange(K), 2.0 ** np.arange(1, K + 1))
    assert all(2.0 ** k <= f <= 2.0 ** (k + 1) for k, f in enumerate(freqs))
    # axis 0 is x, axis 1 is y, nodes at i / (n - 1) including both boundaries
    for i, j in [(0, 0), (n - 1, n - 1), (1, n - 2), (n // 2, n // 3), (n - 1, 0)]:
        x, y = i / (n - 1), j / (n - 1)
        assert a[i, j] == pytest.approx(_formula(x, y, freqs, c), rel=1e-12)
    # each factor lies in [1 - c, 1 + c]: 2K of them
    assert (1 - c) ** (2 * K) * (1 - 1e-12) <= a.min()
    assert a.max() <= (1 + c) ** (2 * K) * (1 + 1e-12)
    assert a.shape == (n, n) and np.isfinite(a).all()


def test_two_samples_differ_and_one_seed_repeats():
    a = multiscale_coefficient(np.random.default_rng(1), 33, K=5)
    b = multiscale_coefficient(np.random.default_rng(2), 33, K=5)
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(a, multiscale_coefficient(np.random.default_rng(1), 33, K=5))


def test_defaults_and_refusals():
    spec = get_pde("darcy-multiscale")
    assert parse_params(spec, {})["K"] == DARCY_DEFAULTS["multiscale"]["K"] == 5
    assert parse_params(spec, {})["amplitude"] == 0.5
    assert parse_params(spec, ["K=6"])["K"] == 6  # the gamblet example's six factors
    for bad in ({"K": 0}, {"amplitude": 1.0}, {"amplitude": 0.0}):
        with pytest.raises(InputError, match="darcy multiscale parameters"):
            multiscale_coefficient(np.random.default_rng(0), 9, **{"K": 2, **bad})
