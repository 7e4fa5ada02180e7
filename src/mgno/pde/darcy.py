"""Darcy flow ``-div(a grad u) = f`` on the unit square, ``u = 0`` on the boundary.

Three coefficient families (the data sets of the MgNO paper):

* ``"smooth"`` -- FNO's: ``a = 12`` where a Gaussian random field
  ``N(0, (-Laplace + 9 I)^-2)`` (cosine basis, mean-free) is ``>= 0``, else ``3``;
* ``"rough"`` -- the same with ``tau = 5`` and contrast 12 / 2;
* ``"multiscale"`` -- ``prod_k (1 + 0.5 cos(a_k pi (x + y))) (1 + 0.5 sin(a_k pi
  (y - 3 x)))`` with ``a_k ~ U[2^(k-1), 2^k]``, ``k = 1..K``: the form of the
  gamblet example behind the authors' ``mul_tri`` data; their K and law of
  ``a_k`` are not confirmed (docs/data.md, "The multiscale Darcy coefficient").

The coefficient is drawn and the problem solved on a fine grid of
``solve_resolution`` nodes per axis, then both are subsampled to the stored
``resolution`` (``(solve_resolution - 1)`` must be a multiple of
``(resolution - 1)``: 421 -> 211, 141, 106, 85, ...).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mgno.errors import InputError
from mgno.pde.elliptic import solve_elliptic
from mgno.pde.grf import gaussian_random_field

DARCY_VARIANTS = ("smooth", "rough", "multiscale")

DARCY_DEFAULTS: dict[str, dict] = {
    "smooth": {"alpha": 2.0, "tau": 3.0, "a_high": 12.0, "a_low": 3.0, "f": 1.0},
    "rough": {"alpha": 2.0, "tau": 5.0, "a_high": 12.0, "a_low": 2.0, "f": 1.0},
    "multiscale": {"K": 5, "amplitude": 0.5, "f": 1.0},
}


def threshold_coefficient(
    rng: np.random.Generator,
    n: int,
    *,
    alpha: float,
    tau: float,
    a_high: float,
    a_low: float,
) -> np.ndarray:
    """One piecewise-constant coefficient: ``a_high`` where a GRF is >= 0, else ``a_low``.

    Returns
    -------
    ndarray, shape (n, n)
    """
    if not (a_high > 0 and a_low > 0 and np.isfinite(a_high) and np.isfinite(a_low)):
        raise InputError(
            f"darcy parameters a_high={a_high}, a_low={a_low} are invalid, expected positive values"
        )
    field = gaussian_random_field(
        1, (n, n), alpha=alpha, tau=tau, sigma=tau ** (alpha - 1.0), basis="cosine",
        zero_mean=True, rng=rng,
    )[0]
    return np.where(field >= 0.0, a_high, a_low)


def multiscale_coefficient(
    rng: np.random.Generator, n: int, *, K: int, amplitude: float = 0.5
) -> np.ndarray:
    """One trigonometric multiscale coefficient on ``n x n`` nodes.

    Returns
    -------
    ndarray, shape (n, n)
        ``prod_{k=1..K} (1 + c cos(a_k pi (x + y))) (1 + c sin(a_k pi (y - 3x)))``
        with ``c = amplitude`` and ``a_k ~ U[2^(k-1), 2^k]``.
    """
    K = int(K)
    if K < 1 or not (0 < amplitude < 1):
        raise InputError(
            f"darcy multiscale parameters K={K}, amplitude={amplitude} are invalid, "
            "expected K >= 1 and 0 < amplitude < 1"
        )
    x = np.linspace(0.0, 1.0, n)
    X, Y = np.meshgrid(x, x, indexing="ij")
    freqs = rng.uniform(2.0 ** np.arange(K), 2.0 ** np.arange(1, K + 1))
    a = np.ones((n, n))
    for ak in freqs:
        a *= (1.0 + amplitude * np.cos(ak * np.pi * (X + Y))) * (
            1.0 + amplitude * np.sin(ak * np.pi * (Y - 3.0 * X))
        )
    return a


def darcy_coefficient(rng: np.random.Generator, n: int, variant: str, params: dict) -> np.ndarray:
    """Draw one coefficient of the given variant on ``n x n`` nodes."""
    if variant == "multiscale":
        return multiscale_coefficient(rng, n, K=params["K"], amplitude=params["amplitude"])
    if variant not in DARCY_VARIANTS:
        raise InputError(f"darcy variant {variant!r} is unknown, expected one of {DARCY_VARIANTS}")
    return threshold_coefficient(
        rng, n, alpha=params["alpha"], tau=params["tau"], a_high=params["a_high"],
        a_low=params["a_low"],
    )


def subsample_stride(resolution: int, solve_resolution: int) -> int:
    """Stride that takes a node grid of ``solve_resolution`` to ``resolution``."""
    if solve_resolution < resolution or (solve_resolution - 1) % (resolution - 1):
        raise InputError(
            f"solve resolution {solve_resolution} cannot be subsampled to resolution "
            f"{resolution}: expected (solve - 1) to be a multiple of (resolution - 1), "
            f"e.g. {2 * (resolution - 1) + 1}"
        )
    return (solve_resolution - 1) // (resolution - 1)


def generate_darcy(
    rngs: Sequence[np.random.Generator],
    resolution: int,
    *,
    variant: str = "smooth",
    solve_resolution: int | None = None,
    params: dict | None = None,
    tol: float = 1e-10,
    method: str = "mg-pcg",
    device=None,
) -> dict[str, np.ndarray]:
    """A batch of Darcy samples, one per random generator.

    Parameters
    ----------
    rngs : sequence of numpy Generator
        One generator per sample (sample ``i`` depends on ``rngs[i]`` only).
    resolution : int
        Stored nodes per axis.
    variant : {"smooth", "rough", "multiscale"}
    solve_resolution : int, optional
        Nodes per axis of the solve grid; default ``2 (resolution - 1) + 1``.
    params : dict, optional
        Overrides of :data:`DARCY_DEFAULTS` (``alpha``, ``tau``, ``a_high``,
        ``a_low``, ``f``; ``K``, ``amplitude`` for multiscale).
    tol : float
        Relative residual of the solver.
    method : str
        Solver (see :func:`mgno.pde.elliptic.solve_elliptic`).
    device : torch device, optional

    Returns
    -------
    dict
        ``inputs`` (b, 1, R, R): the coefficient ``a``; ``outputs`` (b, 1, R, R): ``u``.
    """
    p = {**DARCY_DEFAULTS[variant], **(params or {})}
    n_s = 2 * (resolution - 1) + 1 if solve_resolution is None else int(solve_resolution)
    stride = subsample_stride(resolution, n_s)
    a = np.stack([darcy_coefficient(rng, n_s, variant, p) for rng in rngs])
    f = np.full_like(a, float(p["f"]))
    u, info = solve_elliptic(
        a, f, "dirichlet", method=method, tol=tol, maxiter=500, device=device, return_info=True
    )
    if info is not None and not bool(info.converged.all()):
        raise RuntimeError(
            f"darcy solver did not reach tol={tol} (residuals {info.residuals[:, -1].tolist()})"
        )
    sl = (slice(None), slice(None, None, stride), slice(None, None, stride))
    return {"inputs": a[sl][:, None], "outputs": u[sl][:, None]}


__all__ = [
    "DARCY_DEFAULTS",
    "DARCY_VARIANTS",
    "darcy_coefficient",
    "generate_darcy",
    "multiscale_coefficient",
    "subsample_stride",
    "threshold_coefficient",
]
