"""Steady incompressible Navier-Stokes on a structured mapped mesh, Taylor-Hood Q2-Q1.

The mesh is a logically rectangular array of nodes ``(x[i, j], y[i, j])``,
``i = 0..n0-1`` along the channel (inlet ``i = 0``, outlet ``i = n0-1``) and
``j = 0..n1-1`` across it (walls ``j = 0`` and ``j = n1-1``); both counts are
odd. Every 3 x 3 block of nodes ``(2I..2I+2, 2J..2J+2)`` is one isoparametric
biquadratic element: the velocity is continuous Q2 on all nodes, the pressure
continuous Q1 on the element corners (the nodes with even ``i`` and ``j``).
Q2-Q1 is inf-sup stable, so no stabilisation is added.

The equations, kinematic viscosity ``nu``, density 1::

    (u . grad) u - nu Laplace u + grad p = 0,    div u = 0,

in the Galerkin form with the viscous term ``nu (grad u, grad w)``; its
natural condition on the outlet is the "do-nothing" condition
``nu du/dn - p n = 0`` (which Poiseuille flow satisfies with ``p = 0`` there).
Walls are no-slip; the inlet takes ``u = u_max 4 s (1 - s)``, ``v = 0``, with
``s`` the normalised arc length along the inlet line. The nonlinear system is
solved by Newton's method (exact Jacobian, backtracking on the residual) from
the Stokes solution, with a sparse LU factorisation (SuperLU) per step; where
Newton stalls, the viscosity is lowered in stages to ``nu`` (continuation).
Accuracy: velocity error ``O(h^3)`` in L2 and ``O(h^2)`` in H1, pressure
``O(h^2)`` for smooth solutions (``tests/test_pde_pipe.py`` measures them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from mgno.errors import InputError


class FlowSolveError(RuntimeError):
    """The nonlinear solve did not converge (the message says by how much)."""


# --------------------------------------------------------------------------- reference element
_GAUSS = (np.array([-np.sqrt(0.6), 0.0, np.sqrt(0.6)]), np.array([5.0, 8.0, 5.0]) / 9.0)


def _quadratic(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """1-D quadratic Lagrange basis on nodes -1, 0, 1 and its derivative, shape (3, len(s))."""
    val = np.stack([0.5 * s * (s - 1.0), 1.0 - s * s, 0.5 * s * (s + 1.0)])
    der = np.stack([s - 0.5, -2.0 * s, s + 0.5])
    return val, der


def _reference() -> dict[str, np.ndarray]:
    """Basis values at the 3 x 3 Gauss points of [-1, 1]^2.

    Returns ``phi``, ``phi_s``, ``phi_t`` (Q, 9) for the velocity (local node
    ``3 a + b`` at ``(s_a, t_b)``), ``psi`` (Q, 4) for the pressure (corner
    ``2 a + b``) and the weights ``w`` (Q,).
    """
    pts, wts = _GAUSS
    q, dq = _quadratic(pts)  # (3 nodes, 3 points)
    lin = np.stack([0.5 * (1.0 - pts), 0.5 * (1.0 + pts)])  # (2 corners, 3 points)
    # quadrature point (m, n) -> m * 3 + n; basis (a, b) -> a * 3 + b
    phi = np.einsum("am,bn->mnab", q, q).reshape(9, 9)
    phi_s = np.einsum("am,bn->mnab", dq, q).reshape(9, 9)
    phi_t = np.einsum("am,bn->mnab", q, dq).reshape(9, 9)
    psi = np.einsum("am,bn->mnab", lin, lin).reshape(9, 4)
    return {"phi": phi, "phi_s": phi_s, "phi_t": phi_t, "psi": psi,
            "w": np.outer(wts, wts).ravel()}


# --------------------------------------------------------------------------- mesh checks
def check_mesh(x: np.ndarray, y: np.ndarray) -> None:
    """Refuse a mesh the solver cannot use: wrong shape, non-finite, or folded.

    Parameters
    ----------
    x, y : ndarray, shape (n0, n1)
        Node coordinates; ``n0, n1`` odd and at least 3.

    Raises
    ------
    InputError
        One line naming ``mesh`` and the first offending cell: every cell
        ``(i, j)``-``(i+1, j+1)`` must have positive signed area (counter-
        clockwise with ``i`` along the channel and ``j`` across it), and
        every element a positive Jacobian at its quadrature points.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or x.shape != y.shape:
        raise InputError(f"mesh: x {x.shape} and y {y.shape} differ or are not 2-D, "
                         "expected two (n0, n1) arrays")
    n0, n1 = x.shape
    if n0 < 3 or n1 < 3 or n0 % 2 == 0 or n1 % 2 == 0:
        raise InputError(f"mesh: {n0} x {n1} nodes, expected odd counts >= 3 "
                         "(biquadratic elements of 3 x 3 nodes)")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise InputError("mesh: coordinates are not all finite, expected finite numbers")
    # shoelace area of every cell between neighbouring nodes
    xa, xb, xc, xd = x[:-1, :-1], x[1:, :-1], x[1:, 1:], x[:-1, 1:]
    ya, yb, yc, yd = y[:-1, :-1], y[1:, :-1], y[1:, 1:], y[:-1, 1:]
    area = 0.5 * ((xa * yb - xb * ya) + (xb * yc - xc * yb) + (xc * yd - xd * yc)
                  + (xd * ya - xa * yd))
    scale = float(np.ptp(x) * np.ptp(y)) / ((n0 - 1) * (n1 - 1)) or 1.0
    bad = np.argwhere(area <= 1e-12 * scale)
    if len(bad):
        i, j = (int(v) for v in bad[0])
        raise InputError(
            f"mesh: cell ({i}, {j}) has signed area {area[i, j]:.3g}, not > 0 (the mesh folds), "
            "expected every cell counter-clockwise with index 0 along the channel")
    det = _geometry(x, y)[0]
    if np.any(det <= 0):
        e = int(np.argwhere(det <= 0)[0, 0])
        i, j = divmod(e, (n1 - 1) // 2)
        raise InputError(f"mesh: element ({2 * i}, {2 * j}) has a non-positive Jacobian "
                         "(the mesh folds), expected a mesh that does not fold")


# --------------------------------------------------------------------------- discretisation
def _element_nodes(n0: int, n1: int) -> tuple[np.ndarray, np.ndarray]:
    """Global velocity nodes (E, 9) and pressure nodes (E, 4) of every element."""
    ei, ej = np.meshgrid(np.arange((n0 - 1) // 2), np.arange((n1 - 1) // 2), indexing="ij")
    ei, ej = ei.ravel(), ej.ravel()
    a, b = np.divmod(np.arange(9), 3)
    vel = (2 * ei[:, None] + a) * n1 + 2 * ej[:, None] + b
    c, d = np.divmod(np.arange(4), 2)
    m1 = (n1 - 1) // 2 + 1
    pre = (ei[:, None] + c) * m1 + ej[:, None] + d
    return vel, pre


def _geometry(x: np.ndarray, y: np.ndarray):
    """Jacobian determinant and physical basis gradients at the quadrature points.

    Returns ``det`` (E, Q), ``dx``, ``dy`` (E, Q, 9).
    """
    ref = _reference()
    vel, _ = _element_nodes(*x.shape)
    xe, ye = x.ravel()[vel], y.ravel()[vel]
    xs, xt = xe @ ref["phi_s"].T, xe @ ref["phi_t"].T
    ys, yt = ye @ ref["phi_s"].T, ye @ ref["phi_t"].T
    det = xs * yt - xt * ys
    with np.errstate(divide="ignore", invalid="ignore"):
        dx = (yt[..., None] * ref["phi_s"] - ys[..., None] * ref["phi_t"]) / det[..., None]
        dy = (xs[..., None] * ref["phi_t"] - xt[..., None] * ref["phi_s"]) / det[..., None]
    return det, dx, dy


@dataclass
class _System:
    """What stays fixed over the Newton iterations: geometry, constant blocks, indices."""

    shape: tuple[int, int]
    vel: np.ndarray      # (E, 9) velocity node of each local node
    pre: np.ndarray      # (E, 4) pressure node of each corner
    phi: np.ndarray      # (Q, 9)
    dx: np.ndarray       # (E, Q, 9)
    dy: np.ndarray       # (E, Q, 9)
    wdet: np.ndarray     # (E, Q) quadrature weight x Jacobian
    lap: np.ndarray      # (E, 9, 9) (grad phi_a, grad phi_b)
    bx: np.ndarray       # (E, 4, 9) (psi_c, d phi_b / dx)
    by: np.ndarray       # (E, 4, 9)
    fixed: np.ndarray    # boolean (n_dofs,), Dirichlet degrees of freedom
    values: np.ndarray   # (n_dofs,) Dirichlet values (zero elsewhere)
    n_vel: int = field(init=False)
    n_pre: int = field(init=False)

    def __post_init__(self) -> None:
        n0, n1 = self.shape
        self.n_vel = n0 * n1
        self.n_pre = ((n0 - 1) // 2 + 1) * ((n1 - 1) // 2 + 1)


def _inlet_profile(x: np.ndarray, y: np.ndarray, u_max: float) -> np.ndarray:
    """``u_max 4 s (1 - s)`` along the inlet line ``i = 0``, ``s`` its normalised arc length."""
    seg = np.hypot(np.diff(x[0]), np.diff(y[0]))
    s = np.concatenate([[0.0], np.cumsum(seg)]) / seg.sum()
    return u_max * 4.0 * s * (1.0 - s)


def _build(x: np.ndarray, y: np.ndarray, u_max: float) -> _System:
    """Geometry, the constant element blocks and the boundary data of a checked mesh."""
    ref = _reference()
    vel, pre = _element_nodes(*x.shape)
    det, dx, dy = _geometry(x, y)
    wdet = det * ref["w"]
    lap = np.einsum("eq,eqa,eqb->eab", wdet, dx, dx) + np.einsum("eq,eqa,eqb->eab", wdet, dy, dy)
    bx = np.einsum("eq,qc,eqb->ecb", wdet, ref["psi"], dx)
    by = np.einsum("eq,qc,eqb->ecb", wdet, ref["psi"], dy)
    n0, n1 = x.shape
    n_vel = n0 * n1
    given = np.zeros((n0, n1), dtype=bool)  # velocity given: inlet and walls
    given[0, :] = given[:, 0] = given[:, -1] = True
    n_pre = ((n0 - 1) // 2 + 1) * ((n1 - 1) // 2 + 1)
    fixed = np.concatenate([given.ravel(), given.ravel(), np.zeros(n_pre, dtype=bool)])
    values = np.zeros(2 * n_vel + n_pre)
    inlet = _inlet_profile(x, y, u_max)
    inlet[0] = inlet[-1] = 0.0
    values[np.arange(n1)] = inlet  # u on i = 0 (node i * n1 + j)
    return _System((n0, n1), vel, pre, ref["phi"], dx, dy, wdet, lap, bx, by, fixed, values)


def _blocks(sysm: _System, state: np.ndarray, nu: float, newton: bool):
    """Element residuals, the Picard block ``nu K + C(u)`` and, with ``newton``, the
    four weighted mass blocks of the derivative of ``(u . grad) u`` in ``u``."""
    nv = sysm.n_vel
    ue, ve = state[:nv][sysm.vel], state[nv:2 * nv][sysm.vel]
    pe = state[2 * nv:][sysm.pre]
    uq, vq = ue @ sysm.phi.T, ve @ sysm.phi.T                       # (E, Q)
    adv = uq[..., None] * sysm.dx + vq[..., None] * sysm.dy          # (E, Q, 9)
    conv = np.einsum("eq,qa,eqb->eab", sysm.wdet, sysm.phi, adv)
    a = nu * sysm.lap + conv
    res_u = np.einsum("eab,eb->ea", a, ue) - np.einsum("ecb,ec->eb", sysm.bx, pe)
    res_v = np.einsum("eab,eb->ea", a, ve) - np.einsum("ecb,ec->eb", sysm.by, pe)
    res_p = -(np.einsum("ecb,eb->ec", sysm.bx, ue) + np.einsum("ecb,eb->ec", sysm.by, ve))
    extra = None
    if newton:  # masses weighted by u_x, u_y, v_x, v_y
        grads = [np.einsum("eqa,ea->eq", d, f) for f in (ue, ve) for d in (sysm.dx, sysm.dy)]
        extra = [np.einsum("eq,qa,qb->eab", sysm.wdet * g, sysm.phi, sysm.phi) for g in grads]
    return (res_u, res_v, res_p), a, extra


def _gather(sysm: _System, ru: np.ndarray, rv: np.ndarray, rp: np.ndarray) -> np.ndarray:
    """Sum element residuals (E, 9), (E, 9), (E, 4) into the global vector (n_dofs,)."""
    nv, npre = sysm.n_vel, sysm.n_pre
    return np.concatenate([
        np.bincount(sysm.vel.ravel(), ru.ravel(), nv),
        np.bincount(sysm.vel.ravel(), rv.ravel(), nv),
        np.bincount(sysm.pre.ravel(), rp.ravel(), npre),
    ])


def _residual(sysm: _System, state: np.ndarray, nu: float) -> np.ndarray:
    """Global residual (n_dofs,) at ``state``."""
    return _gather(sysm, *_blocks(sysm, state, nu, False)[0])


def _assemble(sysm: _System, state: np.ndarray, nu: float, newton: bool = True):
    """Global residual (n_dofs,) and Jacobian (CSC; the Picard matrix without ``newton``)."""
    nv = sysm.n_vel
    n = 2 * nv + sysm.n_pre
    (ru, rv, rp), a, extra = _blocks(sysm, state, nu, newton)
    res = _gather(sysm, ru, rv, rp)
    gv, gp = sysm.vel, sysm.pre + 2 * nv
    vv = [(a, gv, gv), (a, gv + nv, gv + nv)]
    if extra is not None:
        ux, uy, vx, vy = extra
        vv += [(ux, gv, gv), (uy, gv, gv + nv), (vx, gv + nv, gv), (vy, gv + nv, gv + nv)]
    bt = [(-sysm.bx.transpose(0, 2, 1), gv, gp), (-sysm.by.transpose(0, 2, 1), gv + nv, gp),
          (-sysm.bx, gp, gv), (-sysm.by, gp, gv + nv)]
    data, rows, cols = [], [], []
    for blk, r, c in vv + bt:
        data.append(blk.ravel())
        rows.append(np.broadcast_to(r[:, :, None], blk.shape).ravel())
        cols.append(np.broadcast_to(c[:, None, :], blk.shape).ravel())
    jac = sp.csc_matrix((np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))),
                        shape=(n, n))
    return res, jac


# --------------------------------------------------------------------------- Newton
@dataclass(frozen=True)
class FlowField:
    """A converged steady flow on a mapped mesh.

    Attributes
    ----------
    u, v : ndarray, shape (n0, n1)
        Velocity components at every node.
    p : ndarray, shape ((n0 + 1) // 2, (n1 + 1) // 2)
        Pressure at the element corners (nodes ``(2 i, 2 j)``).
    residuals : tuple of float
        Relative residual norm before each Newton step and at the end, over
        every continuation stage (``||F(U_k)|| / ||F(U_0)||`` on the free
        unknowns, ``U_0`` the boundary data alone).
    viscosities : tuple of float
        The viscosity of each stage; the last is the one asked for.
    """

    u: np.ndarray
    v: np.ndarray
    p: np.ndarray
    residuals: tuple[float, ...]
    viscosities: tuple[float, ...]

    @property
    def iterations(self) -> int:
        """Newton steps over all stages."""
        return len(self.residuals) - len(self.viscosities)


def _solve_free(sysm: _System, jac: sp.csc_matrix, rhs: np.ndarray) -> np.ndarray:
    free = ~sysm.fixed
    # a fill-reducing ordering of A + A^T keeps about a third of COLAMD's fill here;
    # the threshold still lets SuperLU pivot away from the zero pressure diagonal
    lu = spla.splu(jac[free][:, free].tocsc(), permc_spec="MMD_AT_PLUS_A",
                   diag_pivot_thresh=0.1)
    step = np.zeros_like(rhs)
    step[free] = lu.solve(rhs[free])
    return step


def _stokes(sysm: _System, nu: float) -> np.ndarray:
    """Stokes flow with the boundary data: the starting point of Newton."""
    state = sysm.values.copy()
    _, jac = _assemble(sysm, np.zeros_like(state), nu, newton=False)
    return state + _solve_free(sysm, jac, -(jac @ state))


def _newton(sysm: _System, state: np.ndarray, nu: float, tol: float, maxiter: int,
            scale: float, history: list[float]) -> tuple[np.ndarray, bool]:
    """Newton with backtracking on the residual norm; True when it reached ``tol``."""
    free = ~sysm.fixed
    for k in range(maxiter + 1):
        res, jac = _assemble(sysm, state, nu)
        norm = float(np.linalg.norm(res[free])) / scale
        history.append(norm)
        if norm <= tol:
            return state, True
        if k == maxiter or not np.isfinite(norm):
            break
        step = _solve_free(sysm, jac, -res)
        t = 1.0
        while True:
            trial = state + t * step
            new = float(np.linalg.norm(_residual(sysm, trial, nu)[free])) / scale
            if new < (1.0 - 1e-4 * t) * norm or t < 1.0 / 64:
                break
            t *= 0.5
        state = trial
    return state, False


def _ladder(nu: float, nu_easy: float) -> list[float]:
    """Viscosities of the continuation: halving from ``nu_easy`` down to ``nu``."""
    if nu >= nu_easy:
        return [nu]
    k = int(np.ceil(np.log2(nu_easy / nu)))
    return [nu * 2.0 ** (k - i) for i in range(k + 1)]


def _check_positive(name: str, value: Any, integer: bool = False) -> None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not (np.isfinite(number) and number > 0 and (not integer or number == int(number))):
        what = "an integer >= 1" if integer else "a finite number > 0"
        raise InputError(f"{name}={value!r} is invalid, expected {what}")


def solve_navier_stokes(
    x: np.ndarray,
    y: np.ndarray,
    *,
    nu: float,
    u_max: float = 1.0,
    tol: float = 1e-10,
    maxiter: int = 25,
    nu_easy: float = 0.05,
) -> FlowField:
    """Steady Navier-Stokes flow through a mapped channel mesh (see the module docstring).

    Parameters
    ----------
    x, y : ndarray, shape (n0, n1)
        Node coordinates, ``i`` along the channel, ``j`` across; odd counts.
    nu : float
        Kinematic viscosity (> 0).
    u_max : float
        Peak of the parabolic inflow.
    tol : float
        Relative residual at which Newton stops (see :class:`FlowField`).
    maxiter : int
        Newton steps allowed per stage.
    nu_easy : float
        Where Newton from the Stokes flow fails, the viscosity is lowered in
        halvings from about ``nu_easy`` (``nu 2^k >= nu_easy``) to ``nu``,
        each stage started from the last and solved to ``max(tol, 1e-6)``.

    Returns
    -------
    FlowField

    Raises
    ------
    InputError
        A bad mesh (:func:`check_mesh`) or parameter.
    FlowSolveError
        Newton did not converge (the message says "did not converge").
    """
    for name, value in (("nu", nu), ("u_max", u_max), ("tol", tol), ("nu_easy", nu_easy),
                        ("maxiter", maxiter)):
        _check_positive(name, value, integer=name == "maxiter")
    check_mesh(x, y)
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    sysm = _build(x, y, float(u_max))
    scale = float(np.linalg.norm(_residual(sysm, sysm.values, nu)[~sysm.fixed])) or 1.0
    history: list[float] = []
    state, ok = _newton(sysm, _stokes(sysm, nu), nu, tol, int(maxiter), scale, history)
    stages = [nu]
    if not ok:  # continuation: start again from an easier flow
        state, history, stages = _stokes(sysm, nu_easy), [], []
        ladder = _ladder(nu, nu_easy)
        for stage in ladder:
            stages.append(stage)
            goal = tol if stage == nu else max(tol, 1e-6)  # intermediate stages: loosely
            state, ok = _newton(sysm, state, stage, goal, int(maxiter), scale, history)
            if not ok:
                raise FlowSolveError(
                    f"Navier-Stokes solve did not converge: relative residual {history[-1]:.2e} "
                    f"> tol {goal:g} after {maxiter} Newton steps at nu={stage:g} (continuation "
                    f"from nu={ladder[0]:g} to {nu:g})")
    return _flow(sysm, state, history, stages)


def _flow(sysm: _System, state: np.ndarray, history: list[float], stages: list[float]):
    n0, n1 = sysm.shape
    nv = sysm.n_vel
    return FlowField(
        u=state[:nv].reshape(n0, n1), v=state[nv:2 * nv].reshape(n0, n1),
        p=state[2 * nv:].reshape((n0 + 1) // 2, (n1 + 1) // 2),
        residuals=tuple(history), viscosities=tuple(stages),
    )


# --------------------------------------------------------------------------- verification
def refine_nodal(f: np.ndarray) -> np.ndarray:
    """The Q2 field of nodal values ``f`` (n0, n1) at the nodes of the mesh refined
    once in the reference square, (2 n0 - 1, 2 n1 - 1): exact for the discrete field."""
    half = np.array([0.375, 0.75, -0.125])  # quadratic basis of nodes -1, 0, 1 at s = -1/2

    def along_first(g: np.ndarray) -> np.ndarray:
        out = np.empty((2 * g.shape[0] - 1, *g.shape[1:]))
        out[::2] = g
        g0, g1, g2 = g[0:-1:2], g[1::2], g[2::2]
        out[1::4] = half[0] * g0 + half[1] * g1 + half[2] * g2
        out[3::4] = half[2] * g0 + half[1] * g1 + half[0] * g2
        return out

    return along_first(along_first(np.asarray(f, dtype=np.float64)).T).T


def h1_seminorm(x: np.ndarray, y: np.ndarray, f: np.ndarray) -> float:
    """``(int |grad f|^2)^(1/2)`` of the Q2 field of nodal values ``f`` on the mesh ``x, y``
    (3 x 3 Gauss points per element)."""
    check_mesh(x, y)
    det, dx, dy = _geometry(np.asarray(x, float), np.asarray(y, float))
    fe = np.asarray(f, dtype=np.float64).ravel()[_element_nodes(*np.shape(x))[0]]
    gx, gy = np.einsum("eqa,ea->eq", dx, fe), np.einsum("eqa,ea->eq", dy, fe)
    return float(np.sqrt(np.sum(det * _reference()["w"] * (gx**2 + gy**2))))


__all__ = ["FlowField", "FlowSolveError", "check_mesh", "h1_seminorm", "refine_nodal",
           "solve_navier_stokes"]
