"""Elliptic solvers: second order on manufactured solutions under every
boundary condition, multigrid-CG against spsolve, solver interface."""

import numpy as np
import pytest
import torch

from mgno.errors import InputError
from mgno.pde.elliptic import solve_elliptic
from mgno.pde.solvers import Multigrid, mg_pcg

PI = np.pi
# 1-D factors (value, first, second derivative)
F = {
    "dirichlet": (lambda x: np.sin(PI * x), lambda x: PI * np.cos(PI * x),
                  lambda x: -PI**2 * np.sin(PI * x)),
    "neumann": (lambda x: np.cos(PI * x), lambda x: -PI * np.sin(PI * x),
                lambda x: -PI**2 * np.cos(PI * x)),
    "periodic": (lambda x: np.sin(2 * PI * x), lambda x: 2 * PI * np.cos(2 * PI * x),
                 lambda x: -4 * PI**2 * np.sin(2 * PI * x)),
}


def _problem(n, bc):
    x = np.linspace(0.0, 1.0, n)
    X, Y = np.meshgrid(x, x, indexing="ij")
    p, q = F[bc[0]], F[bc[1]]
    a = 1 + 0.5 * np.cos(2 * PI * X) * np.cos(2 * PI * Y)
    ax = -PI * np.sin(2 * PI * X) * np.cos(2 * PI * Y)
    ay = -PI * np.cos(2 * PI * X) * np.sin(2 * PI * Y)
    u = p[0](X) * q[0](Y)
    ux, uy = p[1](X) * q[0](Y), p[0](X) * q[1](Y)
    lap = p[2](X) * q[0](Y) + p[0](X) * q[2](Y)
    g = None
    if bc == ("dirichlet", "dirichlet"):  # inhomogeneous boundary values
        u, ux, uy = u + X * Y + 1, ux + Y, uy + X
        g = u[None]
    elif "dirichlet" in bc:
        u = u + 1
        g = u[None]
    f = -(ax * ux + ay * uy + a * lap)
    return a[None], f[None], g, u


def _zero_mean(u, bc):
    ws = []
    for b in bc:
        w = np.ones(u.shape[0])
        if b == "periodic":
            w[-1] = 0
        else:
            w[0] = w[-1] = 0.5
        ws.append(w)
    W = np.outer(*ws)
    return u - (u * W).sum() / W.sum()


BCS = [("dirichlet", "dirichlet"), ("neumann", "neumann"), ("periodic", "periodic"),
       ("periodic", "dirichlet"), ("neumann", "dirichlet"), ("neumann", "periodic")]


@pytest.mark.parametrize("bc", BCS, ids=["-".join(b) for b in BCS])
def test_second_order_convergence(bc):
    errors = []
    for n in (17, 33, 65):
        a, f, g, u = _problem(n, bc)
        U, info = solve_elliptic(a, f, bc, g=g, tol=1e-11, return_info=True)
        assert bool(info.converged.all())
        exact = u if "dirichlet" in bc else _zero_mean(u, bc)
        errors.append(np.abs(U[0] - exact).max())
    rates = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(rates > 1.85), (errors, rates)


@pytest.mark.parametrize("bc", ["dirichlet", "neumann", "periodic,dirichlet"])
def test_mgpcg_matches_spsolve(bc):
    rng = np.random.default_rng(0)
    a = np.where(rng.standard_normal((2, 33, 33)) > 0, 12.0, 3.0)
    f = rng.standard_normal((2, 33, 33))
    u_mg, info = solve_elliptic(a, f, bc, tol=1e-12, return_info=True)
    u_d = solve_elliptic(a, f, bc, method="direct")
    np.testing.assert_allclose(u_mg, u_d, atol=1e-8 * np.abs(u_d).max())
    assert info.residuals.shape[0] == 2
    assert info.residuals[0, 0] == pytest.approx(1.0)
    assert float(info.residuals[:, -1].max()) <= 1e-12


def test_plain_multigrid_and_x0():
    rng = np.random.default_rng(1)
    a = np.exp(rng.standard_normal((1, 33, 33)) * 0.3)
    f = np.ones((1, 33, 33))
    u, info = solve_elliptic(a, f, "dirichlet", method="mg", tol=1e-9, return_info=True)
    assert bool(info.converged.all()) and int(info.iterations[0]) < 30
    u2, info2 = solve_elliptic(a, f, "dirichlet", x0=u, tol=1e-8, return_info=True)
    assert int(info2.iterations[0]) <= 1
    np.testing.assert_allclose(u2, u, atol=1e-8)


def test_batch_independence():
    rng = np.random.default_rng(2)
    a = np.where(rng.standard_normal((4, 33, 33)) > 0, 12.0, 3.0)
    f = np.ones_like(a)
    full = solve_elliptic(a, f, "dirichlet")
    part = solve_elliptic(a[2:3], f[2:3], "dirichlet")
    np.testing.assert_array_equal(full[2], part[0])


def test_multigrid_any_grid_size_and_1d_3d():
    for shape in [(3, 21), (1, 50, 37), (1, 9, 10, 11)]:
        a = np.ones(shape)
        f = np.ones(shape)
        u, info = solve_elliptic(a, f, "dirichlet", tol=1e-10, return_info=True)
        assert bool(info.converged.all()) and u.shape == shape


def test_mg_pcg_direct_interface():
    a = torch.ones(2, 17, 17, dtype=torch.float64)
    mg = Multigrid(a, ("dirichlet", "dirichlet"), (1 / 16, 1 / 16))
    b = mg.op.mask(torch.ones_like(a))
    res = mg_pcg(mg, b, tol=1e-10, maxiter=50)
    assert res.x.shape == a.shape and bool(res.converged.all())


@pytest.mark.parametrize("kw", [
    {"a": -np.ones((1, 9, 9))},
    {"a": np.full((1, 9, 9), np.nan)},
    {"bc": "robin"},
    {"method": "magic"},
])
def test_bad_input(kw):
    a = kw.get("a", np.ones((1, 9, 9)))
    with pytest.raises(InputError):
        solve_elliptic(a, np.ones((1, 9, 9)), kw.get("bc", "dirichlet"),
                       method=kw.get("method", "mg-pcg"))
