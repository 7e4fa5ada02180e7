"""Helmholtz refinement: GMRES steps and time from starts of known error against a cold start.

``mgno predict --refine`` on Helmholtz data runs flexible GMRES preconditioned
by a multigrid V-cycle of the shifted Laplacian
(:meth:`mgno.pde.equations.HelmholtzEquation.solve`). This script measures
what a good start saves. It generates ``--n`` samples of the ``helmholtz``
generator per grid (wave speeds drawn one after another from
``numpy.random.default_rng(600)``: not the samples of a data file), and
solves each system to every ``--tols``, beside the sparse LU the generator
solves with (``scipy.sparse.linalg.spsolve``), from

* zero (cold);
* ``smooth``: the exact discrete solution plus a smooth perturbation of
  relative L2 size ``--start-errors`` (a Gaussian random field);
* ``medium``: the exact solution for a slightly wrong wave speed,
  ``c (1 + eps g)`` with ``g`` a Gaussian random field scaled to max 1 and
  ``eps`` in ``--medium-errors`` -- the kind of error an operator that has
  the medium slightly wrong makes: the waves' phase drifts, an error at the
  wave number, where the shifted-Laplacian preconditioner is weakest. Its
  relative L2 size is measured and reported.

The paper's MgNO error on this task is 0.71e-2 (rel. L2, ../shared/PAPER.md).
``--shift`` and ``--restart`` change the preconditioner's shift and GMRES's
restart length (the defaults are the library's).

Times are per sample, median over the samples, one thread (torch's and, with
the environment below, BLAS's). Prints one JSON object (``--json FILE`` keeps it).

Usage::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python \\
        benchmarks/bench_helmholtz_refine.py --grids 51 101 --n 5 \\
        --json benchmarks/results_helmholtz_refine.json
    # the textbook shift, and a restarted GMRES, cold starts only:
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python \\
        benchmarks/bench_helmholtz_refine.py --grids 51 101 --n 5 --tols 1e-6 \\
        --start-errors --medium-errors --shift 0.5 --json OUT.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hybrid_setup import emit, machine  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--grids", type=int, nargs="+", default=[51, 101])
    p.add_argument("--n", type=int, default=5, help="samples per grid")
    p.add_argument("--tols", type=float, nargs="+", default=[1e-4, 1e-6])
    p.add_argument("--start-errors", type=float, nargs="*", default=[1e-1, 1e-2, 1e-3])
    p.add_argument("--medium-errors", type=float, nargs="*", default=[1e-3, 1e-4, 1e-5])
    p.add_argument("--shift", type=float, default=None, help="default: the library's SHIFT")
    p.add_argument("--restart", type=int, default=None, help="default: the library's RESTART")
    p.add_argument("--maxiter", type=int, default=600)
    p.add_argument("--json", type=Path, default=None, help="also write the JSON here")
    return p.parse_args(argv)


def smooth_start(u: np.ndarray, error: float, seed: int) -> np.ndarray:
    """``u`` (n, n) plus a smooth random field of relative L2 size ``error``."""
    from mgno.pde.grf import gaussian_random_field

    g = gaussian_random_field(1, u.shape, alpha=2.0, tau=3.0, sigma=1.0, basis="cosine",
                              n_modes=64, rng=np.random.default_rng(seed))[0]
    return u + error * np.linalg.norm(u) * g / np.linalg.norm(g)


def medium_start(c: np.ndarray, params: dict, eps: float, seed: int) -> np.ndarray:
    """The exact discrete solution (n, n) for the wave speed ``c (1 + eps g)``."""
    from mgno.pde.grf import gaussian_random_field
    from mgno.pde.helmholtz import solve_helmholtz

    g = gaussian_random_field(1, c.shape, alpha=2.0, tau=3.0, sigma=1.0, basis="cosine",
                              n_modes=64, rng=np.random.default_rng(1000 + seed))[0]
    return solve_helmholtz(c * (1.0 + eps * g / np.abs(g).max()), params)


def _starts(c, exact, params, args):
    """``(kind, size, starts (N, n, n) or None)`` of every start."""
    out = [("cold", None, None)]
    out += [("smooth", e, np.stack([smooth_start(u, e, i) for i, u in enumerate(exact)]))
            for e in args.start_errors]
    out += [("medium", e, np.stack([medium_start(ci, params, e, i) for i, ci in enumerate(c)]))
            for e in args.medium_errors]
    return out


def solver_options(args: argparse.Namespace) -> dict:
    """``shift`` / ``restart`` of :meth:`HelmholtzEquation.solve`, where given."""
    return {k: v for k, v in (("shift", args.shift), ("restart", args.restart)) if v is not None}


def one_grid(n: int, args: argparse.Namespace) -> dict:
    """Every start and tolerance on ``args.n`` samples at ``n x n``."""
    import scipy.sparse.linalg as spla

    from mgno.pde.equations import HelmholtzEquation
    from mgno.pde.helmholtz import wave_speed
    from mgno.pde.registry import get_pde

    params = dict(get_pde("helmholtz").defaults)
    rng = np.random.default_rng(600)
    c = np.stack([wave_speed(rng, n, params) for _ in range(args.n)])
    eq = HelmholtzEquation(c, params)
    t_lu, exact = [], []
    for mat, b in eq.systems:
        t0 = time.perf_counter()
        exact.append(spla.spsolve(mat, b).reshape(n, n))
        t_lu.append(time.perf_counter() - t0)
    cells, exact = [], np.stack(exact)
    for tol in args.tols:
        for kind, size, starts in _starts(c, exact, params, args):
            its, secs, ok = [], [], []
            for i in range(args.n):
                one = HelmholtzEquation(c[i:i + 1], params)
                t0 = time.perf_counter()
                sol = one.solve(None if starts is None else starts[i:i + 1], tol=tol,
                                maxiter=args.maxiter, **solver_options(args))
                secs.append(time.perf_counter() - t0)
                its.append(int(sol.iterations[0]))
                ok.append(bool(sol.converged[0]))
            errs = None if starts is None else [
                float(np.linalg.norm(s - u) / np.linalg.norm(u))
                for s, u in zip(starts, exact, strict=True)]
            cells.append({"tol": tol, "start": kind, "size": size, "start_rel_l2": errs,
                          "iterations": its, "median_iterations": statistics.median(its),
                          "median_seconds": statistics.median(secs), "converged": ok})
            print(f"{n}x{n} tol {tol:g} start {kind} {size}: start error "
                  f"{'-' if errs is None else f'{statistics.median(errs):.2g}'}, median "
                  f"{statistics.median(its)} steps, {statistics.median(secs):.2f} s",
                  file=sys.stderr, flush=True)
    return {"grid": n, "samples": args.n, "lu_median_seconds": statistics.median(t_lu),
            "cells": cells}


def main(argv=None) -> int:
    import torch

    from mgno.pde.krylov import RESTART
    from mgno.pde.shifted_laplacian import SHIFT

    args = parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    grids = [one_grid(n, args) for n in args.grids]
    emit({"command": " ".join(["benchmarks/bench_helmholtz_refine.py", *sys.argv[1:]]),
          "machine": machine(), "seconds": time.perf_counter() - t0, "grids": grids,
          "solver": {"shift": args.shift if args.shift is not None else SHIFT,
                     "restart": args.restart if args.restart is not None else RESTART}},
         args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
