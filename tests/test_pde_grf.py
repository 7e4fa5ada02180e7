"""Gaussian random fields: spectrum, reproducibility, options."""

import numpy as np
import pytest

from mgno.errors import InputError
from mgno.pde.grf import cosine_basis, cosine_spectrum, gaussian_random_field


def test_fourier_spectrum_matches_covariance():
    n, alpha, tau, sigma = 16, 2.5, 7.0, 3.0
    u = gaussian_random_field(3000, (n, n), alpha=alpha, tau=tau, sigma=sigma,
                              basis="fourier", rng=0)
    coef = np.fft.fft2(u, norm="forward")  # coefficient of exp(2 pi i k.x)
    k = np.fft.fftfreq(n, 1.0 / n)
    lam = 4 * np.pi**2 * (k[:, None] ** 2 + k[None, :] ** 2)
    expected = sigma**2 * (lam + tau**2) ** (-alpha)
    measured = (np.abs(coef) ** 2).mean(0)
    low = (np.abs(k[:, None]) <= 3) & (np.abs(k[None, :]) <= 3)
    np.testing.assert_allclose(measured[low], expected[low], rtol=0.12)


def test_cosine_spectrum_matches_covariance():
    n, alpha, tau = 17, 2.0, 3.0
    u = gaussian_random_field(3000, (n, n), alpha=alpha, tau=tau, basis="cosine", rng=1)
    basis = cosine_basis(n, n)
    w = np.ones(n)
    w[0] = w[-1] = 0.5
    w /= n - 1  # trapezoid weights: the discrete cosines are orthonormal in them
    proj = np.einsum("sij,i,j,ik,jl->skl", u, w, w, basis, basis)
    measured = proj.var(0)[:4, :4]
    expected = cosine_spectrum((4, 4), alpha, tau) ** 2
    np.testing.assert_allclose(measured, expected, rtol=0.12)


def test_same_seed_same_field_and_zero_mean():
    a = gaussian_random_field(2, (9, 9), rng=5, zero_mean=True)
    b = gaussian_random_field(2, (9, 9), rng=5, zero_mean=True)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, gaussian_random_field(2, (9, 9), rng=6))
    f = gaussian_random_field(4, (8, 8), basis="fourier", zero_mean=True, rng=0)
    np.testing.assert_allclose(f.mean(axis=(1, 2)), 0.0, atol=1e-12)


def test_n_modes_keeps_lowest_modes():
    u = gaussian_random_field(1, (33, 33), n_modes=1, rng=0)
    np.testing.assert_allclose(u, u[0, 0, 0])  # only the constant mode


@pytest.mark.parametrize("kw", [{"alpha": float("nan")}, {"tau": -1.0}, {"basis": "wavelet"}])
def test_bad_parameters(kw):
    with pytest.raises(InputError):
        gaussian_random_field(1, (8, 8), rng=0, **kw)
