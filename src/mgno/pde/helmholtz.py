"""Helmholtz ``(-Laplace - omega^2 / c(x)^2) u = 0`` on the unit square (de Hoop et al.).

The wave speed is ``c = c0 + tanh(g)`` with ``g`` a Karhunen-Loeve sum of the
first ``n_modes`` cosine modes (ordered by ``|l|``), eigenvalues
``(pi^2 |l|^2 + tau^2)^-alpha``, standard normal coefficients. The wave is
driven through the boundary: zero Neumann flux except ``du/dn = flux`` on
``source_lo <= x <= source_hi`` of the top edge ``y = 1``. Discretised with the
vertex-centred finite volumes of :mod:`mgno.pde.stencil` (lumped mass; second
order) and solved with ``scipy.sparse.linalg.spsolve`` (the problem is
indefinite, so multigrid-CG does not apply). Input ``c``, output ``u``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from mgno.errors import InputError
from mgno.pde.elliptic import assemble_matrix
from mgno.pde.grf import gaussian_random_field


def wave_speed(rng: np.random.Generator, n: int, params: dict) -> np.ndarray:
    """One wave speed ``c0 + tanh(g)`` on ``n x n`` nodes."""
    g = gaussian_random_field(
        1, (n, n), alpha=float(params["alpha"]), tau=float(params["tau"]),
        sigma=float(params["sigma"]), basis="cosine", n_modes=int(params["n_modes"]), rng=rng,
    )[0]
    return float(params["c0"]) + np.tanh(g)


def helmholtz_parts(c: np.ndarray, params: dict) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """The pieces of ``A u = b`` for one wave speed ``c`` (n, n), nodes in C order.

    Returns
    -------
    K : scipy.sparse.csr_matrix, shape (n * n, n * n)
        Stiffness of ``-Laplace`` with Neumann boundaries (real, symmetric).
    k2_mass : ndarray, shape (n * n,)
        ``omega^2 / c^2`` times the lumped mass (dual cell areas).
    b : ndarray, shape (n * n,)
        The boundary flux on the top edge, times the dual boundary length.
    """
    n = c.shape[0]
    h = 1.0 / (n - 1)
    stiff, _ = assemble_matrix(np.ones((n, n)), ("neumann", "neumann"), (h, h))
    w = np.ones(n)
    w[0] = w[-1] = 0.5
    vol = np.outer(w, w).ravel() * h * h
    k2 = (float(params["omega"]) / np.asarray(c, dtype=np.float64).ravel()) ** 2
    x = np.linspace(0.0, 1.0, n)
    g = np.where((x >= params["source_lo"] - 1e-12) & (x <= params["source_hi"] + 1e-12),
                 float(params["flux"]), 0.0)
    rhs = np.zeros((n, n))
    rhs[:, -1] = g * h * w  # dual boundary length of the top-edge nodes
    return sp.csr_matrix(stiff), k2 * vol, rhs.ravel()


def helmholtz_system(c: np.ndarray, params: dict) -> tuple[sp.csc_matrix, np.ndarray]:
    """The discrete system ``A u = b`` for one wave speed ``c`` (n, n).

    Returns
    -------
    A : scipy.sparse.csc_matrix, shape (n * n, n * n)
        Stiffness minus ``omega^2 / c^2`` times the lumped mass (real, symmetric, indefinite).
    b : ndarray, shape (n * n,)
        See :func:`helmholtz_parts`.
    """
    stiff, k2_mass, rhs = helmholtz_parts(c, params)
    return (stiff - sp.diags(k2_mass)).tocsc(), rhs


def solve_helmholtz(c: np.ndarray, params: dict) -> np.ndarray:
    """Solve for one wave speed ``c`` (n, n); returns ``u`` (n, n)."""
    mat, rhs = helmholtz_system(c, params)
    u = spla.spsolve(mat, rhs)
    if not np.all(np.isfinite(u)):
        raise RuntimeError("helmholtz solve failed (resonant wave speed?)")
    return u.reshape(c.shape)


def generate_helmholtz(
    rngs: Sequence[np.random.Generator], resolution: int, *, params: dict
) -> dict[str, np.ndarray]:
    """A batch of Helmholtz samples: ``inputs`` c (b, 1, R, R), ``outputs`` u (b, 1, R, R)."""
    if not params["source_lo"] < params["source_hi"]:
        raise InputError(
            f"helmholtz source_lo={params['source_lo']} >= source_hi={params['source_hi']}, "
            "expected an interval of the top edge"
        )
    c = np.stack([wave_speed(rng, resolution, params) for rng in rngs])
    if np.any(c <= 0):
        raise InputError(f"helmholtz c0={params['c0']} gives non-positive wave speeds")
    u = np.stack([solve_helmholtz(ci, params) for ci in c])
    return {"inputs": c[:, None], "outputs": u[:, None]}


__all__ = [
    "generate_helmholtz", "helmholtz_parts", "helmholtz_system", "solve_helmholtz", "wave_speed",
]
