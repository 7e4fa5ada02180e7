"""Poisson and variable-coefficient elliptic data: the boundary-condition showcase.

* ``poisson``: ``-Laplace u = f`` with ``f`` a Gaussian random field;
  input ``f`` (1 channel), output ``u``.
* ``elliptic``: ``-div(a grad u) = f`` with a log-normal coefficient
  ``a = exp(g)`` and a random source ``f``; inputs ``(a, f)`` (2 channels).

Boundary conditions are chosen per axis through ``bc`` (``"dirichlet"``,
``"neumann"``, ``"periodic"`` or a comma-separated list such as
``"periodic,dirichlet"``). When no axis is Dirichlet the source is projected
onto compatible data (zero volume-weighted mean; the stored input is the
projected source) and the solution has zero mean.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from mgno.pde.darcy import subsample_stride
from mgno.pde.elliptic import normalize_boundary, solve_elliptic
from mgno.pde.grf import gaussian_random_field

POISSON_DEFAULTS = {
    "bc": "dirichlet",
    "alpha": 2.0,
    "tau": 3.0,
    "sigma": 1.0,
    "solve_resolution": 0,
}
ELLIPTIC_DEFAULTS = {
    **POISSON_DEFAULTS,
    "a_alpha": 2.0,
    "a_tau": 3.0,
    "a_sigma": 1.0,
}


def _field(rng: np.random.Generator, n: int, ndim: int, bcs, alpha, tau, sigma) -> np.ndarray:
    basis = "fourier" if all(b == "periodic" for b in bcs) else "cosine"
    if basis == "fourier":
        g = gaussian_random_field(1, (n - 1,) * ndim, alpha=alpha, tau=tau, sigma=sigma,
                                  basis="fourier", rng=rng)[0]
        for ax in range(ndim):
            g = np.concatenate([g, np.take(g, [0], axis=ax)], axis=ax)
        return g
    return gaussian_random_field(1, (n,) * ndim, alpha=alpha, tau=tau, sigma=sigma,
                                 basis="cosine", rng=rng)[0]


def _compatible(f: np.ndarray, bcs: Sequence[str]) -> np.ndarray:
    """Project ``f`` (nodes) to zero volume-weighted mean when no axis is Dirichlet."""
    if any(b == "dirichlet" for b in bcs):
        return f
    w = np.ones(())
    for ax, b in enumerate(bcs):
        n = f.shape[ax + 1]
        wk = np.ones(n)
        if b == "periodic":
            wk[-1] = 0.0
        else:
            wk[0] = wk[-1] = 0.5
        w = np.multiply.outer(w, wk)
    mean = (f * w).reshape(f.shape[0], -1).sum(1) / w.sum()
    return f - mean.reshape(-1, *([1] * (f.ndim - 1)))


def generate_poisson(
    rngs: Sequence[np.random.Generator],
    resolution: int,
    *,
    params: dict | None = None,
    variable_coefficient: bool = False,
    ndim: int = 2,
    tol: float = 1e-10,
    device: str | torch.device | None = None,
) -> dict[str, np.ndarray]:
    """A batch of Poisson (or variable-coefficient elliptic) samples.

    Parameters
    ----------
    rngs : sequence of numpy Generator
        One per sample.
    resolution : int
        Nodes per axis of the solve-aligned grid; a periodic axis stores
        ``resolution - 1`` of them (its last node repeats the first and is
        dropped, as on every periodic axis of the schema).
    params : dict
        Overrides of :data:`POISSON_DEFAULTS` / :data:`ELLIPTIC_DEFAULTS`
        (``solve_resolution = 0`` solves on the stored grid).
    variable_coefficient : bool
        ``elliptic`` (inputs ``a, f``) instead of ``poisson`` (input ``f``).
    ndim : int
        Spatial dimensions.

    Returns
    -------
    dict
        ``inputs`` (b, 1 or 2, *grid) and ``outputs`` (b, 1, *grid).
    """
    p = {**(ELLIPTIC_DEFAULTS if variable_coefficient else POISSON_DEFAULTS), **(params or {})}
    bcs = normalize_boundary(p["bc"], ndim)
    n_s = int(p["solve_resolution"]) or resolution
    stride = subsample_stride(resolution, n_s)
    f, a = [], []
    for rng in rngs:
        if variable_coefficient:
            a.append(np.exp(_field(rng, n_s, ndim, bcs, p["a_alpha"], p["a_tau"], p["a_sigma"])))
        f.append(_field(rng, n_s, ndim, bcs, p["alpha"], p["tau"], p["sigma"]))
    f = _compatible(np.stack(f), bcs)
    a = np.stack(a) if variable_coefficient else np.ones_like(f)
    u, info = solve_elliptic(a, f, bcs, tol=tol, maxiter=500, device=device, return_info=True)
    if not bool(info.converged.all()):
        raise RuntimeError(f"poisson solver did not reach tol={tol}")
    # Subsample, then drop the repeated end node of every periodic axis: stored
    # files follow one periodic convention (x_i = i / n, no image of node 0).
    sl = (slice(None),) + tuple(
        slice(None, -1, stride) if b == "periodic" else slice(None, None, stride) for b in bcs
    )
    ins = [a[sl], f[sl]] if variable_coefficient else [f[sl]]
    return {"inputs": np.stack(ins, axis=1), "outputs": u[sl][:, None]}


__all__ = ["ELLIPTIC_DEFAULTS", "POISSON_DEFAULTS", "generate_poisson"]
