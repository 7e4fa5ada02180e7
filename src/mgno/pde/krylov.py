"""Restarted flexible GMRES with right preconditioning, for one system ``A x = b``.

Right preconditioning makes the residual GMRES minimises the *true* residual
``b - A x`` (not a preconditioned one), so the stopping test
``||b - A x|| <= tol ||b||`` is exact; "flexible" (Saad's FGMRES) keeps the
preconditioned directions, so the preconditioner may change between steps.
Complex arithmetic whenever the preconditioner is complex; a real system
then keeps the real part of the iterate, whose residual is never larger --
but GMRES minimised the complex residual, so for a real answer a real
preconditioner does better: Helmholtz passes the real part of the complex
shifted-Laplacian cycle of :mod:`mgno.pde.shifted_laplacian` (10-25 % fewer
steps, benchmarks/RESULTS.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: Krylov vectors kept before a restart (memory: about 2 RESTART N complex numbers,
#: allocated for min(RESTART, maxiter) steps).
#: Restarts hurt the near-resonant Helmholtz systems: GMRES(60) missed 1e-6 in
#: 600 steps on 4 of 5 systems at 101x101 where GMRES(300) took 139-168.
RESTART = 300


@dataclass
class KrylovResult:
    """Outcome of :func:`fgmres`.

    Attributes
    ----------
    x : ndarray, shape (N,)
        The last iterate.
    iterations : int
        Preconditioned matrix-vector products (one per GMRES step).
    residual : float
        ``||b - A x|| / ||b||`` of ``x``, recomputed from ``A`` (not the recursion).
    start_residual : float
        The same for the start.
    converged : bool
        Whether ``residual <= tol``.
    """

    x: np.ndarray
    iterations: int
    residual: float
    start_residual: float
    converged: bool


def _givens(a: complex, b: complex) -> tuple[float, complex]:
    """Rotation ``(c, s)`` (c real) with ``[c, s; -conj(s), c] @ [a, b] = [r, 0]``."""
    if b == 0:
        return 1.0, 0.0
    if a == 0:
        return 0.0, np.conj(b) / abs(b)
    norm = np.hypot(abs(a), abs(b))
    return abs(a) / norm, (a / abs(a)) * np.conj(b) / norm


def _cycle(matvec, precond, r, beta, m, goal):
    """One restart cycle from residual ``r`` (norm ``beta``, ``m`` >= 1 steps at most).

    Returns ``(update, steps, stalled)``: ``stalled`` when the least-squares
    problem became singular (the preconditioned operator maps a direction to
    zero), so further steps cannot reduce the residual.
    """
    first = precond(r / beta)
    dtype = np.result_type(r.dtype, first.dtype)
    v = np.zeros((m + 1, r.shape[0]), dtype=dtype)
    z = np.zeros((m, r.shape[0]), dtype=dtype)
    h = np.zeros((m + 1, m), dtype=dtype)
    cs, sn = np.zeros(m), np.zeros(m, dtype=dtype)
    g = np.zeros(m + 1, dtype=dtype)
    v[0], g[0] = r / beta, beta
    steps, stalled = 0, False
    for k in range(m):
        z[k] = first if k == 0 else precond(v[k])
        w = matvec(z[k]).astype(dtype, copy=False)
        for _ in range(2):  # classical Gram-Schmidt, twice (as stable as modified, BLAS-2)
            coef = (v[:k + 1] @ w.conj()).conj()  # vdot(v_i, w) without copying the basis
            w = w - coef @ v[:k + 1]
            h[:k + 1, k] += coef
        h[k + 1, k] = wnorm = np.linalg.norm(w)
        for i in range(k):  # the earlier rotations on the new column
            h[i, k], h[i + 1, k] = (cs[i] * h[i, k] + sn[i] * h[i + 1, k],
                                    -np.conj(sn[i]) * h[i, k] + cs[i] * h[i + 1, k])
        cs[k], sn[k] = _givens(h[k, k], h[k + 1, k])
        h[k, k], h[k + 1, k] = cs[k] * h[k, k] + sn[k] * h[k + 1, k], 0.0
        if h[k, k] == 0:  # singular: keep the k steps before
            stalled = True
            break
        g[k], g[k + 1] = cs[k] * g[k], -np.conj(sn[k]) * g[k]
        steps = k + 1
        if abs(g[k + 1]) <= goal or wnorm == 0:  # converged, or the exact solution found
            break
        if k + 1 < m:
            v[k + 1] = w / wnorm
    if steps == 0:
        return np.zeros_like(v[0]), 1, True
    y = np.linalg.solve(np.triu(h[:steps, :steps]), g[:steps])
    return y @ z[:steps], steps, stalled


def fgmres(
    matvec: Callable[[np.ndarray], np.ndarray],
    b: np.ndarray,
    precond: Callable[[np.ndarray], np.ndarray],
    *,
    x0: np.ndarray | None = None,
    tol: float = 1e-8,
    maxiter: int = 200,
    restart: int = RESTART,
) -> KrylovResult:
    """Solve ``A x = b`` to ``||b - A x|| <= tol ||b||`` by right-preconditioned FGMRES.

    Parameters
    ----------
    matvec : callable
        ``x (N,) -> A x (N,)``.
    b : ndarray, shape (N,)
        Right-hand side.
    precond : callable
        ``r (N,) -> z (N,)``, an approximate ``A^-1 r`` (may be complex).
    x0 : ndarray, shape (N,), optional
        Start (default zero).
    tol : float
        Relative residual to reach.
    maxiter : int
        Most GMRES steps over all restarts (>= 0).
    restart : int
        Steps per cycle (>= 1); memory about ``2 restart N`` complex numbers.

    Returns
    -------
    KrylovResult
        With ``x`` real when ``b`` and ``A`` are (the real part of the iterate).
        For ``b = 0`` the solution ``x = 0`` is returned at once (residual 0;
        ``start_residual`` 0 for a zero start, infinite otherwise).
    """
    if restart < 1 or maxiter < 0:
        raise ValueError(f"fgmres: restart={restart}, maxiter={maxiter}, expected restart >= 1 "
                         "and maxiter >= 0")
    x = np.zeros_like(b) if x0 is None else np.array(x0, dtype=np.result_type(b, x0))
    bnorm = float(np.linalg.norm(b))
    if bnorm == 0:
        return KrylovResult(x=np.zeros_like(x), iterations=0, residual=0.0,
                            start_residual=math.inf if x.any() else 0.0, converged=True)
    r = b - matvec(x)
    real = not (np.iscomplexobj(b) or np.iscomplexobj(r))
    x = x if real else x.astype(np.result_type(x, r))
    start = rel = float(np.linalg.norm(r)) / bnorm
    done, stalled = 0, False
    while rel > tol and done < maxiter and not stalled:
        m = min(restart, maxiter - done)
        dx, steps, stalled = _cycle(matvec, precond, r, rel * bnorm, m, 0.5 * tol * bnorm)
        x = x + (dx.real if real else dx)
        done += steps
        r = b - matvec(x)
        rel = float(np.linalg.norm(r)) / bnorm
    return KrylovResult(x=x, iterations=done, residual=rel, start_residual=start,
                        converged=rel <= tol)


__all__ = ["RESTART", "KrylovResult", "fgmres"]
