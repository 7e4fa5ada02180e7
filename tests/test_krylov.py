"""Flexible GMRES and the shifted-Laplacian multigrid preconditioner (Helmholtz refinement)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from mgno.pde.helmholtz import helmholtz_parts, wave_speed
from mgno.pde.krylov import fgmres
from mgno.pde.registry import get_pde
from mgno.pde.shifted_laplacian import ShiftedLaplacianMG, interpolation_1d


def _nonsymmetric(n: int, seed: int) -> sp.csr_matrix:
    """A convection-diffusion-like nonsymmetric, nonsingular matrix."""
    rng = np.random.default_rng(seed)
    return (sp.diags([-1.3, 2.5, -0.7], [-1, 0, 1], shape=(n, n))
            + sp.diags(0.3 * rng.random(n))).tocsr()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("restart", [200, 7])
def test_fgmres_reaches_the_tolerance_in_the_true_residual(seed, restart):
    mat = _nonsymmetric(120, seed)
    b = np.random.default_rng(seed + 10).normal(size=120)
    res = fgmres(mat.__matmul__, b, lambda r: r / mat.diagonal(), tol=1e-10, maxiter=2000,
                 restart=restart)
    assert res.converged and res.iterations > 1
    true = np.linalg.norm(b - mat @ res.x) / np.linalg.norm(b)
    assert true <= 1e-10 and res.residual == pytest.approx(true)
    np.testing.assert_allclose(res.x, spla.spsolve(mat.tocsc(), b), rtol=1e-7, atol=1e-9)


def test_fgmres_keeps_a_real_solution_real_with_a_complex_preconditioner():
    mat = _nonsymmetric(60, 3)
    b = np.ones(60)
    res = fgmres(mat.__matmul__, b, lambda r: (1 + 0.5j) * r / mat.diagonal(), tol=1e-9)
    assert res.converged and res.x.dtype == np.float64


def test_fgmres_from_the_solution_takes_no_step_and_reports_a_miss():
    mat = _nonsymmetric(50, 4)
    b = np.arange(50.0)
    exact = spla.spsolve(mat.tocsc(), b)
    assert fgmres(mat.__matmul__, b, lambda r: r, x0=exact, tol=1e-8).iterations == 0
    missed = fgmres(mat.__matmul__, b, lambda r: r, tol=1e-14, maxiter=3)
    assert not missed.converged and missed.iterations == 3
    assert missed.residual == pytest.approx(np.linalg.norm(b - mat @ missed.x) / np.linalg.norm(b))
    assert missed.start_residual == pytest.approx(1.0)


def test_fgmres_counts_steps_across_restarts_and_stops_at_maxiter():
    mat = _nonsymmetric(80, 5)
    b = np.ones(80)
    res = fgmres(mat.__matmul__, b, lambda r: r, tol=1e-30, maxiter=7, restart=3)
    assert res.iterations == 7 and not res.converged


def test_fgmres_solves_a_complex_matrix_with_a_real_right_hand_side():
    mat = (_nonsymmetric(60, 6) + 0.5j * sp.eye(60)).tocsr()
    b = np.ones(60)
    res = fgmres(mat.__matmul__, b, lambda r: r / mat.diagonal(), tol=1e-10, maxiter=300)
    assert res.converged and np.iscomplexobj(res.x)
    assert np.linalg.norm(b - mat @ res.x) <= 1e-10 * np.linalg.norm(b)


def test_fgmres_edge_cases_end_instead_of_hanging_or_raising():
    mat = _nonsymmetric(30, 7)
    zero = fgmres(mat.__matmul__, np.zeros(30), lambda r: r, x0=np.ones(30))
    assert zero.converged and zero.iterations == 0 and not zero.x.any()
    stalled = fgmres(mat.__matmul__, np.ones(30), lambda r: 0 * r, tol=1e-8, maxiter=50)
    assert not stalled.converged and stalled.iterations <= 50
    with pytest.raises(ValueError, match="restart"):
        fgmres(mat.__matmul__, np.ones(30), lambda r: r, restart=0)


@pytest.mark.parametrize("n", [3, 5, 17])
def test_interpolation_is_exact_on_linear_functions(n):
    p = interpolation_1d(n)
    coarse, fine = np.linspace(0, 1, (n + 1) // 2), np.linspace(0, 1, n)
    np.testing.assert_allclose(p @ (2 * coarse - 0.3), 2 * fine - 0.3, atol=1e-14)
    with pytest.raises(ValueError, match="odd"):
        interpolation_1d(n + 1)


def _helmholtz(n: int, omega: float):
    params = {**get_pde("helmholtz").defaults, "omega": omega}
    c = wave_speed(np.random.default_rng(5), n, params)
    return helmholtz_parts(c, params)


def test_the_vcycle_contracts_the_shifted_laplacian_residual():
    stiff, k2m, b = _helmholtz(65, 300.0)
    mg = ShiftedLaplacianMG(stiff, k2m, (65, 65))
    assert mg.levels == 3  # 65 -> 33 -> 17 (direct)
    shifted = stiff - sp.diags((1 - 0.2j) * k2m)
    x = np.zeros(b.size, dtype=complex)
    norms = []
    for _ in range(4):
        x = x + mg(b - shifted @ x)
        norms.append(np.linalg.norm(b - shifted @ x) / np.linalg.norm(b))
    assert all(later < 0.3 * earlier for earlier, later in zip(norms, norms[1:], strict=False))


def test_gmres_with_the_vcycle_solves_helmholtz_in_fewer_steps_than_without():
    stiff, k2m, b = _helmholtz(33, 300.0)
    mat = (stiff - sp.diags(k2m)).tocsr()
    mg = ShiftedLaplacianMG(stiff, k2m, (33, 33))
    with_mg = fgmres(mat.__matmul__, b, mg, tol=1e-8, maxiter=400)
    plain = fgmres(mat.__matmul__, b, lambda r: r, tol=1e-8, maxiter=400)
    assert with_mg.converged
    assert with_mg.iterations < plain.iterations / 2
    np.testing.assert_allclose(with_mg.x, spla.spsolve(mat.tocsc(), b), rtol=1e-6,
                               atol=1e-6 * np.abs(with_mg.x).max())
