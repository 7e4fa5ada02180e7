"""Time-dependent solvers against exact solutions."""

import math

import numpy as np
import pytest
import torch

from mgno.errors import InputError
from mgno.pde.burgers import BurgersSolver
from mgno.pde.grf import gaussian_random_field
from mgno.pde.navier_stokes import VorticitySolver, generate_navier_stokes


def test_navier_stokes_single_mode_decays_exactly():
    # a single Fourier mode is a steady solution of the Euler part: w(t) = w0 exp(-nu |k|^2 t)
    n, nu = 32, 1e-2
    x = np.arange(n) / n
    X, Y = np.meshgrid(x, x, indexing="ij")
    w0 = np.sin(2 * np.pi * (2 * X + Y))[None]
    exact = lambda t: w0 * np.exp(-nu * 4 * np.pi**2 * 5 * t)  # noqa: E731
    errs = []
    for dt in (0.1, 0.05):
        s = VorticitySolver(n, nu, dtype=torch.float64)
        w = s.evolve(w0, [0.5, 1.0], fixed_dt=dt).numpy()
        errs.append(np.abs(w[:, 1] - exact(1.0)).max() / np.abs(exact(1.0)).max())
    assert errs[1] < 1e-3
    assert errs[0] / errs[1] == pytest.approx(4.0, rel=0.1)  # Crank-Nicolson: second order


def test_navier_stokes_nonlinear_second_order_in_time():
    w0 = gaussian_random_field(1, (32, 32), alpha=2.5, tau=7, sigma=math.sqrt(2) * 7**1.5,
                               basis="fourier", zero_mean=True, rng=0)
    s = VorticitySolver(32, 1e-3, dtype=torch.float64, forcing=np.zeros((32, 32)))
    ref = s.evolve(w0, [0.5], fixed_dt=2.5e-3)[:, 0]
    e1 = (s.evolve(w0, [0.5], fixed_dt=0.05)[:, 0] - ref).norm() / ref.norm()
    e2 = (s.evolve(w0, [0.5], fixed_dt=0.025)[:, 0] - ref).norm() / ref.norm()
    assert float(e1 / e2) > 3.0
    adaptive = s.evolve(w0, [0.5])[:, 0]  # CFL step
    assert float((adaptive - ref).norm() / ref.norm()) < 1e-4


def test_navier_stokes_generator_shapes_and_batch_independence():
    p = dict(nu=1e-3, T=1.0, record_every=0.5, solve_resolution=32, alpha=2.5, tau=7.0,
             forcing=0.1, cfl=0.5, dt_max=0.05, dtype="float64")
    rngs = lambda: [np.random.default_rng(i) for i in range(3)]  # noqa: E731
    out = generate_navier_stokes(rngs(), 16, params=p)
    assert out["trajectories"].shape == (3, 3, 1, 16, 16)
    np.testing.assert_allclose(out["times"], [0.0, 0.5, 1.0])
    one = generate_navier_stokes(rngs()[1:2], 16, params=p)
    # batched FFTs may round differently for other batch sizes
    np.testing.assert_allclose(one["trajectories"][0], out["trajectories"][1], atol=1e-10)


def test_burgers_matches_cole_hopf():
    # u = -2 nu phi_x / phi with phi solving the heat equation
    nu, n = 0.05, 256
    x = np.arange(n) / n
    d1, d2 = nu * 4 * np.pi**2, nu * 16 * np.pi**2

    def u(t):
        phi = 3 + np.cos(2 * np.pi * x) * np.exp(-d1 * t) + 0.5 * np.sin(4 * np.pi * x) * np.exp(
            -d2 * t)
        phix = -2 * np.pi * np.sin(2 * np.pi * x) * np.exp(-d1 * t) + 2 * np.pi * np.cos(
            4 * np.pi * x) * np.exp(-d2 * t)
        return -2 * nu * phix / phi

    out = BurgersSolver(n, nu).evolve(u(0.0)[None], [0.25, 0.5]).numpy()
    for j, t in enumerate((0.25, 0.5)):
        assert np.abs(out[0, j] - u(t)).max() / np.abs(u(t)).max() < 1e-6


@pytest.mark.parametrize("nu", [float("nan"), -1.0, 0.0])
def test_bad_viscosity(nu):
    with pytest.raises(InputError):
        VorticitySolver(16, nu)
    with pytest.raises(InputError):
        BurgersSolver(16, nu)
