"""How learnable are the helmholtz generator's data? Spread, baselines and spectrum.

Three checks behind benchmarks/RESULTS.md's Helmholtz findings (issues 14, 15):

* ``--data TRAIN TEST``: the test rel. L2 of predicting the training set's
  mean field for every sample, and of predicting the output of the training
  sample nearest in the input (L2 in ``c``) -- what a model that learnt
  nothing, or only memorised, would score;
* ``--grids N ...``: ``--n`` wave speeds of the generator per grid (drawn in
  sequence from ``default_rng(600)``), their solutions' RMS sizes (median,
  max / min);
* ``--spectrum N``: the smallest ``|lambda|`` of ``(k^2 M)^-1 A`` (how close
  the cavity is to resonance, relative to ``k^2``) and of ``S^-1 A`` with the
  shifted Laplacian ``S`` of :mod:`mgno.pde.shifted_laplacian` (what GMRES
  has to resolve), dense, for one wave speed at ``N x N`` (51: about a minute).

Usage (the figures in RESULTS)::

    .venv/bin/python benchmarks/helmholtz_data_check.py \\
        --data BENCH/data/helmholtz_train.h5 BENCH/data/helmholtz_test.h5 \\
        --grids 51 101 --n 40 --spectrum 51 --json benchmarks/results_helmholtz_data_check.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hybrid_setup import emit  # noqa: E402


def baselines(train: Path, test: Path) -> dict:
    """Test rel. L2 of the training mean and of the nearest training sample in ``c``."""
    from mgno.data.schema import read_arrays

    tr, te = read_arrays(train, dtype=np.float64), read_arrays(test, dtype=np.float64)
    u, ut = tr["outputs"].reshape(len(tr["outputs"]), -1), te["outputs"].reshape(
        len(te["outputs"]), -1)
    c, ct = tr["inputs"].reshape(len(u), -1), te["inputs"].reshape(len(ut), -1)
    norm = np.linalg.norm(ut, axis=1)
    nearest = ((ct[:, None] - c[None]) ** 2).sum(-1).argmin(1)
    return {"train": str(train), "test": str(test),
            "mean_predictor": float((np.linalg.norm(ut - u.mean(0), axis=1) / norm).mean()),
            "nearest_input": float((np.linalg.norm(ut - u[nearest], axis=1) / norm).mean())}


def spread(grid: int, n: int) -> dict:
    """RMS size of ``n`` generator solutions at ``grid x grid``: median, max / min."""
    from mgno.pde.helmholtz import solve_helmholtz, wave_speed
    from mgno.pde.registry import get_pde

    params = dict(get_pde("helmholtz").defaults)
    rng = np.random.default_rng(600)
    rms = np.array([np.sqrt(np.mean(solve_helmholtz(wave_speed(rng, grid, params), params) ** 2))
                    for _ in range(n)])
    return {"grid": grid, "n": n, "rms_median": float(np.median(rms)),
            "max_over_min": float(rms.max() / rms.min())}


def spectrum(grid: int) -> dict:
    """Smallest |eigenvalues| of ``(k^2 M)^-1 A`` and ``S^-1 A`` for one wave speed."""
    import scipy.sparse as sp

    from mgno.pde.helmholtz import helmholtz_parts, wave_speed
    from mgno.pde.registry import get_pde
    from mgno.pde.shifted_laplacian import SHIFT

    params = dict(get_pde("helmholtz").defaults)
    stiff, k2m, _b = helmholtz_parts(wave_speed(np.random.default_rng(600), grid, params), params)
    a = (stiff - sp.diags(k2m)).toarray()
    s = (stiff - sp.diags((1 - 1j * SHIFT) * k2m)).toarray()
    near = np.sort(np.abs(np.linalg.eigvals(a / k2m[:, None])))[:5]
    pre = np.sort(np.abs(np.linalg.eigvals(np.linalg.solve(s, a))))[:5]
    return {"grid": grid, "shift": SHIFT, "smallest_rel_to_k2": near.tolist(),
            "smallest_preconditioned": pre.tolist()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", nargs=2, type=Path, metavar=("TRAIN", "TEST"), default=None)
    p.add_argument("--grids", type=int, nargs="*", default=[])
    p.add_argument("--n", type=int, default=40, help="wave speeds per grid for --grids")
    p.add_argument("--spectrum", type=int, default=None, metavar="N")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    out = {"command": " ".join(["benchmarks/helmholtz_data_check.py", *sys.argv[1:]])}
    if args.data:
        out["baselines"] = baselines(*args.data)
    out["spread"] = [spread(g, args.n) for g in args.grids]
    if args.spectrum:
        out["spectrum"] = spectrum(args.spectrum)
    emit(out, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
