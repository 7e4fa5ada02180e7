"""The batched solver: a sample's result does not depend on its batch or the thread count."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mgno.pde.solvers import Multigrid, _dot, mg_pcg


def _problem(batch: int, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    a = torch.where(torch.randn(batch, n, n, generator=gen, dtype=torch.float64) > 0, 12.0, 3.0)
    f = torch.randn(batch, n, n, generator=gen, dtype=torch.float64)
    return a, f


def _solve(a: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    n = a.shape[-1]
    mg = Multigrid(a, ("dirichlet", "dirichlet"), (1 / (n - 1), 1 / (n - 1)))
    return mg_pcg(mg, mg.op.mask(f), tol=1e-10, maxiter=60).x


@pytest.mark.parametrize("n", [2049 * 3, 300_001])
def test_dot_matches_float64_reference(n):
    gen = torch.Generator().manual_seed(1)
    x, y = (torch.randn(3, n, generator=gen, dtype=torch.float64) for _ in range(2))
    ref = (x.numpy() * y.numpy()).sum(axis=1)
    np.testing.assert_allclose(_dot(x, y).numpy(), ref, rtol=1e-12)


def test_dot_is_bitwise_independent_of_batch_and_threads():
    gen = torch.Generator().manual_seed(2)
    x, y = (torch.randn(5, 257, 257, generator=gen, dtype=torch.float64) for _ in range(2))
    threads = torch.get_num_threads()
    try:
        results = []
        for t in (1, 2):
            torch.set_num_threads(t)
            results.append(_dot(x, y))
            results.append(torch.stack([_dot(x[i : i + 1], y[i : i + 1])[0] for i in range(5)]))
    finally:
        torch.set_num_threads(threads)
    for other in results[1:]:
        assert torch.equal(results[0], other)


def test_solution_is_bitwise_independent_of_batch_and_threads():
    a, f = _problem(3, 129)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        full = _solve(a, f)
        torch.set_num_threads(2)
        part = _solve(a[1:2], f[1:2])
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(full[1], part[0])
