"""Second-order elliptic problems ``-div(a grad u) = f`` on the unit cube.

Every boundary condition of :data:`mgno.vocab.BOUNDARY_CONDITIONS`,
chosen per axis (both ends of an axis share it):

* ``"dirichlet"`` -- ``u = g`` (``g = 0`` unless given),
* ``"neumann"`` -- zero flux ``a du/dn = 0``; ``f`` is projected onto
  compatible data (volume-weighted mean zero) when no axis is Dirichlet,
* ``"periodic"`` -- the last node of the axis repeats the first.

When no axis is Dirichlet the solution is fixed by a zero (volume-weighted)
mean. Arrays hold every node of the grid, boundary included (``x_i = i / (n-1)``).
The discretisation is the vertex-centred finite-volume scheme of
:mod:`mgno.pde.stencil` (second order); two solvers share it: the batched
multigrid-preconditioned CG of :mod:`mgno.pde.solvers` (``method="mg-pcg"``,
torch, CPU or GPU) and ``scipy.sparse.linalg.spsolve`` (``method="direct"``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from mgno.errors import InputError
from mgno.pde.solvers import Multigrid, SolveResult, mg_pcg, mg_solve
from mgno.pde.stencil import DIRICHLET, PERIODIC, build_operator
from mgno.vocab import BOUNDARY_CONDITIONS

METHODS = ("mg-pcg", "mg", "direct")


def normalize_boundary(boundary: str | Sequence[str], ndim: int) -> tuple[str, ...]:
    """One lower-case boundary condition per axis (a single name is repeated)."""
    if isinstance(boundary, str):
        parts = [p.strip() for p in boundary.replace("/", ",").split(",") if p.strip()]
        boundary = parts if len(parts) > 1 else parts * ndim
    out = tuple(str(b).lower() for b in boundary)
    if len(out) != ndim:
        raise InputError(
            f"boundary {list(out)} has {len(out)} entries, expected 1 or {ndim} (one per axis)"
        )
    for b in out:
        if b not in BOUNDARY_CONDITIONS:
            raise InputError(
                f"boundary {b!r} is unknown, expected one of {list(BOUNDARY_CONDITIONS)}"
            )
    return out


def _to_unknowns(x: torch.Tensor, boundary: Sequence[str]) -> torch.Tensor:
    for k, b in enumerate(boundary):
        if b == PERIODIC:
            x = x.narrow(k + 1, 0, x.shape[k + 1] - 1)
    return x


def _to_nodes(x: torch.Tensor, boundary: Sequence[str]) -> torch.Tensor:
    for k, b in enumerate(boundary):
        if b == PERIODIC:
            x = torch.cat([x, x.narrow(k + 1, 0, 1)], dim=k + 1)
    return x


def _spacing(shape: Sequence[int], domain) -> list[float]:
    if domain is None:
        domain = [(0.0, 1.0)] * len(shape)
    return [(float(hi) - float(lo)) / (n - 1) for n, (lo, hi) in zip(shape, domain, strict=False)]


def _as_batch(x, shape: tuple[int, ...] | None, name: str, dtype, device) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    return t.to(dtype=dtype, device=device)


def _check_inputs(a: torch.Tensor, f: torch.Tensor) -> None:
    if a.ndim < 2:
        raise InputError(f"coefficient a has shape {tuple(a.shape)}, expected (B, *grid)")
    if any(n < 3 for n in a.shape[1:]):
        raise InputError(f"grid {tuple(a.shape[1:])} is too small, expected >= 3 nodes per axis")
    if f.shape != a.shape:
        raise InputError(f"source f has shape {tuple(f.shape)}, expected {tuple(a.shape)} like a")
    if not bool(torch.isfinite(a).all()) or not bool((a > 0).all()):
        raise InputError("coefficient a has non-positive or non-finite values, expected a > 0")
    if not bool(torch.isfinite(f).all()):
        raise InputError("source f has non-finite values, expected finite numbers")


def elliptic_system(
    a, f, boundary, *, g=None, domain=None, dtype=torch.float64, device=None
):
    """The discrete system for a batch: ``(a_u, rhs, lift, boundary, h)``.

    ``a_u`` and ``rhs`` live on the unknowns (periodic axes without the repeated
    node); ``lift`` carries the Dirichlet values; the solution on the unknowns
    is ``x + lift`` where ``A x = rhs``.
    """
    a = _as_batch(a, None, "a", dtype, device)
    f = _as_batch(f, None, "f", dtype, device)
    if a.shape[0] == 1 and f.shape[0] > 1:
        a = a.expand_as(f).contiguous()
    _check_inputs(a, f)
    shape = tuple(a.shape[1:])
    boundary = normalize_boundary(boundary, len(shape))
    h = _spacing(shape, domain)
    a_u, f_u = _to_unknowns(a, boundary), _to_unknowns(f, boundary)
    op = build_operator(a_u, boundary, h)
    if op.singular:
        vol = op.volume
        mean = torch.stack([(f_u[i] * vol).sum() for i in range(f_u.shape[0])]) / vol.sum()
        f_u = f_u - mean.view(-1, *([1] * len(shape)))
    rhs = f_u * op.volume
    lift = torch.zeros_like(a_u)
    if not op.singular:
        gg = torch.zeros_like(a) if g is None else _as_batch(g, None, "g", dtype, device)
        if gg.shape[1:] != a.shape[1:]:
            raise InputError(
                f"Dirichlet values g have shape {tuple(gg.shape)}, expected (B, {shape})"
            )
        gg = _to_unknowns(gg.expand_as(a), boundary)
        lift = gg * (1.0 - op.active)
        rhs = rhs - op.apply(lift, masked=False)
    return a_u, rhs, lift, boundary, h, op


def solve_elliptic(
    a: np.ndarray | torch.Tensor,
    f: np.ndarray | torch.Tensor,
    boundary: str | Sequence[str] = "dirichlet",
    *,
    g: np.ndarray | torch.Tensor | None = None,
    domain: Sequence[tuple[float, float]] | None = None,
    method: str = "mg-pcg",
    tol: float = 1e-8,
    maxiter: int = 200,
    x0: np.ndarray | torch.Tensor | None = None,
    dtype: torch.dtype = torch.float64,
    precond_dtype: torch.dtype | None = torch.float32,
    device: str | torch.device | None = None,
    return_info: bool = False,
):
    """Solve ``-div(a grad u) = f`` for a batch of coefficients and sources.

    Parameters
    ----------
    a : array, shape (B, *grid)
        Positive coefficient on the nodes (boundary included); a batch of one
        is broadcast against ``f``.
    f : array, shape (B, *grid)
        Source on the nodes.
    boundary : str or sequence of str
        Boundary condition per axis (``"dirichlet,periodic"`` works too).
    g : array, shape (B, *grid), optional
        Dirichlet values (read on Dirichlet boundary nodes only); default 0.
    domain : sequence of (low, high), optional
        Axis bounds; default the unit cube.
    method : {"mg-pcg", "mg", "direct"}
        Multigrid-preconditioned CG, plain V-cycles, or scipy's spsolve.
    tol, maxiter : float, int
        Relative residual to reach and most iterations (iterative methods).
    x0 : array, optional
        Initial guess on the nodes (iterative methods).
    dtype, device
        Where the torch solvers compute (the Krylov vectors and the operator).
    precond_dtype : torch dtype or None
        Precision of the multigrid hierarchy (float32 halves its memory
        traffic; CG still converges to ``tol`` in ``dtype``); None = ``dtype``.
    return_info : bool
        Also return the :class:`~mgno.pde.solvers.SolveResult` (None for
        ``"direct"``).

    Returns
    -------
    u : ndarray, shape (B, *grid)
        Solutions on every node.
    info : SolveResult, optional
        When ``return_info``.
    """
    if method not in METHODS:
        raise InputError(f"method {method!r} is unknown, expected one of {list(METHODS)}")
    a_u, rhs, lift, boundary, h, op = elliptic_system(
        a, f, boundary, g=g, domain=domain, dtype=dtype, device=device
    )
    info: SolveResult | None = None
    if method == "direct":
        x = torch.stack(
            [
                torch.as_tensor(_spsolve_one(a_u[i], rhs[i], boundary, h), dtype=dtype)
                for i in range(a_u.shape[0])
            ]
        ).to(a_u.device)
    else:
        mg = Multigrid(a_u, boundary, h, dtype=precond_dtype)
        start = None
        if x0 is not None:
            start = _to_unknowns(_as_batch(x0, None, "x0", dtype, device), boundary)
            start = start - lift
        solver = mg_pcg if method == "mg-pcg" else mg_solve
        info = solver(mg, rhs, op=op, x0=start, tol=tol, maxiter=maxiter)
        x = info.x
    u = _to_nodes(x + lift, boundary).cpu().numpy()
    return (u, info) if return_info else u


# --------------------------------------------------------------------------- sparse
def assemble_matrix(
    a_u: torch.Tensor | np.ndarray, boundary: Sequence[str], h: Sequence[float]
) -> tuple[sp.csr_matrix, np.ndarray]:
    """The sparse matrix of one sample's operator on its unknowns.

    Parameters
    ----------
    a_u : array, shape (*shape)
        Coefficient on the unknowns (periodic axes without the repeated node).
    boundary, h
        Boundary condition and spacing per axis.

    Returns
    -------
    A : scipy.sparse.csr_matrix, shape (n_active, n_active)
        The operator restricted to the active (non-Dirichlet) unknowns.
    active : ndarray of int
        Flat indices of the active unknowns.
    """
    a_t = torch.as_tensor(np.asarray(a_u) if not isinstance(a_u, torch.Tensor) else a_u)
    op = build_operator(a_t.to(torch.float64).unsqueeze(0), boundary, h)
    shape = op.shape
    idx = np.arange(int(np.prod(shape))).reshape(shape)
    rows, cols, vals = [], [], []
    for k, c in enumerate(op.faces):
        c = c[0].cpu().numpy()
        if op.periodic[k]:
            i, j = idx, np.roll(idx, -1, axis=k)
        else:
            m = shape[k] - 1
            i, j = np.take(idx, range(m), axis=k), np.take(idx, range(1, m + 1), axis=k)
        i, j, c = i.ravel(), j.ravel(), c.ravel()
        rows += [i, j, i, j]
        cols += [i, j, j, i]
        vals += [c, c, -c, -c]
    n = idx.size
    mat = sp.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    ).tocsr()
    if op.active is None:
        active = np.arange(n)
    else:
        active = np.flatnonzero(op.active.cpu().numpy().ravel() > 0)
    return mat[active][:, active].tocsc(), active


def _spsolve_one(a_u: torch.Tensor, rhs: torch.Tensor, boundary, h) -> np.ndarray:
    mat, active = assemble_matrix(a_u.cpu(), boundary, h)
    b = rhs.cpu().numpy().ravel()[active]
    x = np.zeros(rhs.numel())
    if any(bc == DIRICHLET for bc in boundary):
        x[active] = spla.spsolve(mat, b)
    else:
        # singular: pin the first unknown, then shift to zero weighted mean
        sol = np.zeros(len(active))
        sol[1:] = spla.spsolve(mat[1:, 1:], b[1:])
        x[active] = sol
        vol = build_operator(
            torch.as_tensor(np.ones(tuple(rhs.shape)), dtype=torch.float64).unsqueeze(0),
            boundary,
            h,
        ).volume.numpy().ravel()
        x -= (x * vol).sum() / vol.sum()
    return x.reshape(tuple(rhs.shape))


__all__ = [
    "BOUNDARY_CONDITIONS",
    "METHODS",
    "assemble_matrix",
    "elliptic_system",
    "normalize_boundary",
    "solve_elliptic",
]
