"""The discrete equation of a stored grid (issue 15): residuals, distances, warm-started solves.

Property tests on small grids of every boundary condition: the exact discrete
solution has zero residual and zero distance, a perturbed one has both
positive (the distance equal to the true one), a solve started at the exact
solution takes no iteration, one started near it reaches the tolerance in no
more iterations than from zero. Then the rebuild from a file's metadata and
its refusals, one line each.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mgno.data.equation import equation_spec, rebuild_equation
from mgno.data.generate import generate_dataset
from mgno.data.schema import open_dataset, read_arrays, write_steady, write_trajectories
from mgno.errors import InputError
from mgno.pde.equations import EllipticEquation

BCS = [("dirichlet", "dirichlet"), ("neumann", "neumann"), ("periodic", "periodic"),
       ("periodic", "dirichlet"), ("neumann", "periodic")]


def _problem(seed: int, bc, n: int = 17) -> EllipticEquation:
    """A random log-normal coefficient and source on a stored grid (periodic axes: n - 1)."""
    rng = np.random.default_rng(seed)
    shape = tuple(n - 1 if b == "periodic" else n for b in bc)
    a = np.exp(0.5 * rng.standard_normal((2, *shape)))
    f = rng.standard_normal((2, *shape))
    return EllipticEquation(a, f, bc)


def _rel(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return (u - v).flatten(1).norm(dim=1) / v.flatten(1).norm(dim=1)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), bc=st.sampled_from(BCS))
def test_the_exact_solution_has_no_residual_and_a_perturbed_one_has(seed, bc):
    eq = _problem(seed, bc)
    exact = eq.solve(tol=1e-12, maxiter=100).u
    assert float(eq.relative_residual(exact).max()) < 1e-10
    assert float(eq.distance(exact).max()) < 1e-9
    noise = torch.from_numpy(np.random.default_rng(seed + 1).standard_normal(exact.shape))
    perturbed = exact + 1e-3 * exact.abs().max() * noise
    assert float(eq.relative_residual(perturbed).min()) > 1e-4
    true = _rel(perturbed, exact)
    np.testing.assert_allclose(eq.distance(perturbed).numpy(), true.numpy(), rtol=1e-2)


@pytest.mark.parametrize("bc", BCS)
def test_a_solve_from_the_exact_solution_takes_no_iteration(bc):
    eq = _problem(3, bc)
    exact = eq.solve(tol=1e-12, maxiter=100).u
    again = eq.solve(exact, tol=1e-8)
    assert again.iterations.tolist() == [0, 0]
    assert bool(again.converged.all())
    torch.testing.assert_close(again.u, exact)


@pytest.mark.parametrize("bc", BCS)
def test_a_warm_start_near_the_solution_takes_no_more_iterations_than_zero(bc):
    eq = _problem(4, bc, n=33)
    exact = eq.solve(tol=1e-12, maxiter=100).u
    # a smooth relative error of 1e-2, as a decent prediction has
    grids = torch.meshgrid(*[torch.linspace(0, np.pi, n) for n in exact.shape[1:]],
                           indexing="ij")
    bump = torch.sin(grids[0]) * torch.sin(grids[1])
    start = exact * (1.0 + 1e-2 * bump)
    for tol in (1e-4, 1e-8):
        warm, cold = eq.solve(start, tol=tol), eq.solve(None, tol=tol)
        assert bool(warm.converged.all()) and bool(cold.converged.all())
        assert (warm.iterations <= cold.iterations).all(), (tol, warm.iterations, cold.iterations)
        assert float(eq.relative_residual(warm.u).max()) <= tol


def test_dirichlet_values_of_a_start_are_the_equations():
    eq = _problem(5, ("dirichlet", "dirichlet"))
    exact = eq.solve(tol=1e-12, maxiter=100).u
    off = exact.clone()
    off[:, 0, :] = 1.0  # a prediction with a wrong boundary
    assert float(eq.relative_residual(off).max()) < 1e-10  # the interior equations hold
    assert float(eq.distance(off).min()) > 1e-2  # but it is not the solution
    torch.testing.assert_close(eq.solve(off, tol=1e-8).u, exact, atol=1e-9, rtol=0)


# --------------------------------------------------------------------------- from a file
@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("eq")
    darcy = generate_dataset("darcy", 3, 9, 0, tmp / "darcy.h5", progress=False,
                             params=["solve_resolution=9"], dtype=np.float64)
    fine = generate_dataset("darcy", 3, 9, 0, tmp / "fine.h5", progress=False)
    ell = generate_dataset("elliptic", 3, 9, 0, tmp / "ell.h5", progress=False,
                           params=["bc=periodic,neumann"], dtype=np.float64)
    return {"darcy": darcy, "fine": fine, "elliptic": ell, "tmp": tmp}


@pytest.mark.parametrize("name", ["darcy", "elliptic"])
def test_data_solved_on_the_stored_grid_satisfy_the_rebuilt_equation(files, name):
    info = open_dataset(files[name])
    arr = read_arrays(files[name], dtype=np.float64)
    eq = rebuild_equation(info, arr["inputs"])
    u = torch.from_numpy(arr["outputs"][:, 0])
    assert float(eq.relative_residual(u).max()) < 1e-8
    assert float(eq.distance(u).max()) < 1e-8


def test_data_solved_on_a_finer_grid_sit_a_discretisation_floor_away(files):
    """Subsampled fine solutions do not solve the stored grid's equation."""
    info = open_dataset(files["fine"])
    arr = read_arrays(files["fine"], dtype=np.float64)
    eq = rebuild_equation(info, arr["inputs"])
    floor = eq.distance(torch.from_numpy(arr["outputs"][:, 0]))
    assert float(floor.min()) > 1e-4
    assert float(floor.max()) < 0.2


def _one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_files_without_an_equation_are_refused_in_one_line(files):
    tmp = files["tmp"]
    x = np.ones((2, 1, 5, 5), np.float32)
    toy = write_steady(tmp / "toy.h5", x, x, pde="toy", params={}, boundary="dirichlet")
    with pytest.raises(InputError, match="'toy', which has no steady equation") as err:
        equation_spec(open_dataset(toy))
    _one_line(err)
    traj = write_trajectories(tmp / "t.h5", np.ones((1, 3, 1, 5, 5)), np.arange(3.0),
                              pde="navier-stokes", params={}, boundary="periodic")
    with pytest.raises(InputError, match="time-dependent") as err:
        equation_spec(open_dataset(traj))
    _one_line(err)
    bare = write_steady(tmp / "bare.h5", x, x, pde="darcy-smooth", params={},
                        boundary="dirichlet")
    with pytest.raises(InputError, match="lacks 'f'") as err:
        equation_spec(open_dataset(bare))
    _one_line(err)
    imported = write_steady(tmp / "imp.h5", x, x, pde="darcy-smooth", params={"f": 1.0},
                            boundary="dirichlet", extra_attrs={"source_format": "mat"})
    with pytest.raises(InputError, match="imported by mgno convert") as err:
        equation_spec(open_dataset(imported))
    _one_line(err)


def test_inputs_of_the_wrong_channel_count_are_refused(files):
    info = open_dataset(files["elliptic"])
    with pytest.raises(InputError, match=r"expected \(N, 2, \*grid\)"):
        rebuild_equation(info, np.ones((1, 1, 8, 9)))


def test_helmholtz_data_satisfy_their_equation_and_refine_to_it(tmp_path):
    path = generate_dataset("helmholtz", 2, 11, 0, tmp_path / "h.h5", progress=False,
                            params=["omega=20"], dtype=np.float64)
    info = open_dataset(path)
    arr = read_arrays(path, dtype=np.float64)
    eq = rebuild_equation(info, arr["inputs"])
    u = torch.from_numpy(arr["outputs"][:, 0])
    assert float(eq.relative_residual(u).max()) < 1e-10
    assert float(eq.distance(u).max()) < 1e-10
    bump = 1.0 + 1e-2 * torch.linspace(0, 1, 11)
    np.testing.assert_allclose(eq.distance(u * bump).numpy(), _rel(u * bump, u).numpy(),
                               rtol=1e-8)
    assert float(eq.relative_residual(u * bump).min()) > 1e-4
    assert equation_spec(info, refine=True).refine_method == "fgmres-shifted-laplacian-mg"
    sol = eq.solve(u * bump, tol=1e-9, maxiter=100)
    assert bool(sol.converged.all()) and int(sol.iterations.min()) >= 1
    np.testing.assert_allclose(sol.start_residual.numpy(),
                               eq.relative_residual(u * bump).numpy(), rtol=1e-10)
    np.testing.assert_allclose(eq.relative_residual(sol.u).numpy(), sol.residual.numpy(),
                               rtol=1e-6)
    assert float(sol.residual.max()) <= 1e-9
    assert float(_rel(sol.u, u).max()) < 1e-7
