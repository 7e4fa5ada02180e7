"""Generators and the registry: parameters, shapes, validation."""

import numpy as np
import pytest

from mgno.errors import InputError
from mgno.pde.darcy import generate_darcy, multiscale_coefficient, subsample_stride
from mgno.pde.helmholtz import generate_helmholtz, solve_helmholtz
from mgno.pde.poisson import generate_poisson
from mgno.pde.registry import get_pde, list_pdes, parse_params


def _rngs(k, seed=0):
    return [np.random.default_rng([seed, i]) for i in range(k)]


def test_registry_names_and_aliases():
    names = list_pdes()
    for name in ("darcy-smooth", "darcy-rough", "darcy-multiscale", "poisson", "elliptic",
                 "helmholtz", "navier-stokes", "burgers", "pipe"):
        assert name in names
    assert get_pde("darcy").name == "darcy-smooth"
    assert get_pde("NS").name == "navier-stokes"
    with pytest.raises(InputError, match="unknown"):
        get_pde("heat")


def test_parse_params_types_and_errors():
    spec = get_pde("navier-stokes")
    p = parse_params(spec, ["nu=1e-4", "T=30"])
    assert p["nu"] == 1e-4 and p["T"] == 30.0 and p["solve_resolution"] == 256
    for bad in (["nu=nan"], ["nu=-1e-3"], ["nu=abc"], ["viscosity=1"], ["nu"],
                ["solve_resolution=12.5"]):
        with pytest.raises(InputError):
            parse_params(spec, bad)


def test_darcy_subsampling_keeps_fine_grid_values():
    fine = generate_darcy(_rngs(2), 33, variant="smooth", solve_resolution=33)
    coarse = generate_darcy(_rngs(2), 17, variant="smooth", solve_resolution=33)
    np.testing.assert_array_equal(coarse["inputs"], fine["inputs"][:, :, ::2, ::2])
    np.testing.assert_allclose(coarse["outputs"], fine["outputs"][:, :, ::2, ::2], rtol=1e-6)
    assert set(np.unique(fine["inputs"])) <= {3.0, 12.0}
    assert np.all(fine["outputs"][:, 0, 0, :] == 0) and np.all(fine["outputs"] >= 0)
    assert subsample_stride(211, 421) == 2 and subsample_stride(85, 421) == 5
    with pytest.raises(InputError):
        subsample_stride(100, 421)


def test_darcy_variants():
    rough = generate_darcy(_rngs(1), 17, variant="rough")
    assert set(np.unique(rough["inputs"])) <= {2.0, 12.0}
    a = multiscale_coefficient(np.random.default_rng(0), 33, K=3)
    assert a.shape == (33, 33) and a.min() > 0


@pytest.mark.parametrize("bc", ["dirichlet", "neumann", "periodic", "periodic,dirichlet"])
def test_poisson_showcase(bc):
    out = generate_poisson(_rngs(2), 17, params={"bc": bc})
    # periodic axes store 16 points (x_i = i / 16), the others 17 nodes
    shape = {"dirichlet": (17, 17), "neumann": (17, 17), "periodic": (16, 16),
             "periodic,dirichlet": (16, 17)}[bc]
    assert out["inputs"].shape == (2, 1, *shape) and out["outputs"].shape == (2, 1, *shape)
    if bc == "periodic":
        # the solution wraps smoothly: the jump from the last point back to the
        # first is no larger than the jumps between neighbours
        u = out["outputs"][:, 0]
        wrap = np.abs(u[:, 0, :] - u[:, -1, :]).max()
        assert wrap <= 1.5 * np.abs(np.diff(u, axis=1)).max()
    el = generate_poisson(_rngs(1), 17, params={"bc": bc}, variable_coefficient=True)
    assert el["inputs"].shape == (1, 2, *shape) and np.all(el["inputs"][:, 0] > 0)


def test_helmholtz_small():
    p = dict(get_pde("helmholtz").defaults)
    p["omega"] = 100.0
    out = generate_helmholtz(_rngs(2), 21, params=p)
    assert out["inputs"].shape == (2, 1, 21, 21)
    assert np.all(np.isfinite(out["outputs"])) and np.abs(out["outputs"]).max() > 0
    assert 19.0 < out["inputs"].min() and out["inputs"].max() < 21.0


def _helmholtz_params(**over):
    p = dict(get_pde("helmholtz").defaults)
    p.update(over)
    return p


def test_helmholtz_samples_satisfy_the_five_point_equation_inside():
    # On a uniform grid the lumped finite volumes reduce, at interior nodes, to
    # the 5-point Laplacian: (4 u - sum of neighbours) / h^2 - (omega / c)^2 u = 0.
    # The residual is computed here independently of the solver's matrix; a
    # transposed wave speed, a wrong omega or a wrong spacing all break it.
    p = _helmholtz_params(omega=100.0)
    n = 21
    out = generate_helmholtz(_rngs(2), n, params=p)
    h = 1.0 / (n - 1)
    for c, u in zip(out["inputs"][:, 0], out["outputs"][:, 0], strict=True):
        c, u = c.astype(np.float64), u.astype(np.float64)
        lap = (4 * u[1:-1, 1:-1] - u[:-2, 1:-1] - u[2:, 1:-1] - u[1:-1, :-2] - u[1:-1, 2:]) / h**2
        k2u = (p["omega"] / c[1:-1, 1:-1]) ** 2 * u[1:-1, 1:-1]
        residual = np.abs(lap - k2u).max() / np.abs(k2u).max()
        assert residual < 1e-4  # float32 storage of u
        wrong = (p["omega"] / c.T[1:-1, 1:-1]) ** 2 * u[1:-1, 1:-1]
        assert np.abs(lap - wrong).max() / np.abs(k2u).max() > 100 * residual


@pytest.mark.parametrize("omega", [5.0, 20.0])
def test_helmholtz_matches_the_exact_plane_wave_to_second_order(omega):
    # Constant wave speed c0 and the flux over the whole top edge: the solution
    # depends on y only, -u'' - k^2 u = 0, u'(0) = 0, u'(1) = flux, so
    # u = -flux cos(k y) / (k sin k) with k = omega / c0.
    p = _helmholtz_params(omega=omega, source_lo=0.0, source_hi=1.0)
    k = omega / p["c0"]
    errors = []
    for n in (33, 65):
        u = solve_helmholtz(np.full((n, n), float(p["c0"])), p)
        y = np.linspace(0.0, 1.0, n)
        exact = -p["flux"] * np.cos(k * y) / (k * np.sin(k))
        assert np.abs(u - u[:1]).max() <= 1e-8 * np.abs(exact).max()  # constant along x
        errors.append(np.abs(u[0] - exact).max() / np.abs(exact).max())
    assert errors[1] < 0.02
    assert errors[0] / errors[1] > 3.5  # second order: halving h quarters the error
