"""Gaussian random fields ``N(0, sigma^2 (-Laplace + tau^2 I)^(-alpha))``.

Two bases of eigenfunctions of the Laplacian on the unit cube ``[0, 1]^d``:

* ``"cosine"`` -- Neumann eigenfunctions ``prod_i c_{k_i} cos(pi k_i x_i)``
  (``c_0 = 1``, ``c_k = sqrt(2)``), eigenvalues ``pi^2 |k|^2``; sampled on
  nodes that include the boundary, ``x_j = j / (n - 1)``.
* ``"fourier"`` -- periodic eigenfunctions ``exp(2 pi i k . x)``, eigenvalues
  ``4 pi^2 |k|^2``; sampled on ``x_j = j / n`` (the right end point, the image
  of the left one, is not stored).

The field is the Karhunen-Loeve sum ``sum_k sigma (lambda_k + tau^2)^(-alpha/2)
xi_k e_k`` with independent standard normal ``xi_k``, truncated to the modes
the grid resolves (or to the ``n_modes`` lowest ones).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mgno.errors import InputError

GRF_BASES = ("cosine", "fourier")


def _as_grid(grid: int | Sequence[int]) -> tuple[int, ...]:
    shape = (int(grid),) if np.isscalar(grid) else tuple(int(g) for g in grid)
    if not shape or any(g < 2 for g in shape):
        raise InputError(f"GRF grid {shape} is invalid, expected at least 2 points per axis")
    return shape


def _check(alpha: float, tau: float, sigma: float) -> None:
    for name, v in (("alpha", alpha), ("tau", tau), ("sigma", sigma)):
        if not np.isfinite(v) or v < 0 or (name != "tau" and v == 0):
            raise InputError(
                f"GRF parameter {name}={v!r} is invalid, expected a finite positive number"
            )


def _mode_mask(
    lam: np.ndarray, n_modes: int | None, zero_mean: bool
) -> np.ndarray:
    """Boolean mask of the modes kept: the ``n_modes`` smallest eigenvalues."""
    keep = np.ones(lam.shape, dtype=bool)
    if zero_mean:
        keep.flat[0] = False
    if n_modes is not None:
        if n_modes < 1:
            raise InputError(f"GRF parameter n_modes={n_modes} is invalid, expected >= 1")
        order = np.argsort(np.where(keep, lam, np.inf), axis=None, kind="stable")
        sel = np.zeros(lam.size, dtype=bool)
        sel[order[: min(n_modes, int(keep.sum()))]] = True
        keep &= sel.reshape(lam.shape)
    return keep


def cosine_spectrum(
    modes: Sequence[int], alpha: float, tau: float, sigma: float = 1.0
) -> np.ndarray:
    """Standard deviation of each cosine-mode coefficient.

    Parameters
    ----------
    modes : sequence of int
        Number of modes ``K_i`` per axis (wavenumbers ``0 .. K_i - 1``).
    alpha, tau, sigma : float
        Field parameters.

    Returns
    -------
    ndarray, shape (K_1, ..., K_d)
        ``sigma (pi^2 |k|^2 + tau^2)^(-alpha/2)``.
    """
    ks = np.meshgrid(*[np.arange(k, dtype=np.float64) for k in modes], indexing="ij")
    lam = np.pi**2 * sum(k**2 for k in ks)
    return sigma * (lam + tau**2) ** (-alpha / 2.0)


def cosine_basis(n: int, n_modes: int) -> np.ndarray:
    """Orthonormal 1-D Neumann eigenfunctions on the nodes ``j / (n - 1)``.

    Returns
    -------
    ndarray, shape (n, n_modes)
        ``B[j, k] = c_k cos(pi k x_j)`` with ``c_0 = 1`` and ``c_k = sqrt(2)``.
    """
    x = np.linspace(0.0, 1.0, n)
    k = np.arange(n_modes)
    basis = np.cos(np.pi * np.outer(x, k))
    basis[:, 1:] *= np.sqrt(2.0)
    return basis


def gaussian_random_field(
    n_samples: int,
    grid: int | Sequence[int],
    *,
    alpha: float = 2.0,
    tau: float = 3.0,
    sigma: float = 1.0,
    basis: str = "cosine",
    n_modes: int | None = None,
    zero_mean: bool = False,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Samples of ``N(0, sigma^2 (-Laplace + tau^2 I)^(-alpha))`` on a grid.

    Parameters
    ----------
    n_samples : int
        Number of independent fields.
    grid : int or sequence of int
        Points per axis (1-D, 2-D or 3-D).
    alpha, tau, sigma : float
        Smoothness, inverse length scale and amplitude.
    basis : {"cosine", "fourier"}
        Neumann (nodes including the boundary) or periodic eigenfunctions.
    n_modes : int, optional
        Keep only the ``n_modes`` modes with the smallest eigenvalues (ties in
        the order of the flattened wavenumbers); default every mode the grid
        resolves.
    zero_mean : bool
        Drop the constant mode ``k = 0`` (as the FNO data do).
    rng : numpy Generator or int
        Source of randomness (an int is used as a seed); required for
        reproducibility.

    Returns
    -------
    ndarray, shape (n_samples, *grid), float64
    """
    shape = _as_grid(grid)
    _check(alpha, tau, sigma)
    if basis not in GRF_BASES:
        raise InputError(f"GRF basis {basis!r} is unknown, expected one of {list(GRF_BASES)}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    if basis == "cosine":
        return _cosine_field(n_samples, shape, alpha, tau, sigma, n_modes, zero_mean, rng)
    return _fourier_field(n_samples, shape, alpha, tau, sigma, n_modes, zero_mean, rng)


def _cosine_field(n_samples, shape, alpha, tau, sigma, n_modes, zero_mean, rng) -> np.ndarray:
    modes = list(shape)
    if n_modes is not None:
        # the n_modes lowest modes have wavenumbers below n_modes on every axis
        modes = [min(m, int(n_modes)) for m in modes]
    std = cosine_spectrum(modes, alpha, tau, sigma)
    ks = np.meshgrid(*[np.arange(k, dtype=np.float64) for k in modes], indexing="ij")
    lam = sum(k**2 for k in ks)
    std = std * _mode_mask(lam, n_modes, zero_mean)
    coef = rng.standard_normal((n_samples, *modes)) * std
    out = coef
    for axis, (n, m) in enumerate(zip(shape, modes, strict=False)):
        b = cosine_basis(n, m)
        out = np.moveaxis(np.tensordot(out, b, axes=([axis + 1], [1])), -1, axis + 1)
    return out


def _fourier_field(n_samples, shape, alpha, tau, sigma, n_modes, zero_mean, rng) -> np.ndarray:
    d = len(shape)
    ks = np.meshgrid(*[np.fft.fftfreq(n, d=1.0 / n) for n in shape], indexing="ij")
    lam = 4.0 * np.pi**2 * sum(k**2 for k in ks)
    std = sigma * (lam + tau**2) ** (-alpha / 2.0)
    std = std * _mode_mask(lam, n_modes, zero_mean)
    # white noise -> its DFT has unit-variance, Hermitian coefficients; shaping
    # them keeps the field real and gives each exp(2 pi i k x) the variance std^2
    noise = rng.standard_normal((n_samples, *shape))
    axes = tuple(range(1, d + 1))
    spec = np.fft.fftn(noise, axes=axes, norm="ortho") * std
    return np.fft.ifftn(spec, axes=axes, norm="forward").real


__all__ = ["GRF_BASES", "cosine_basis", "cosine_spectrum", "gaussian_random_field"]
