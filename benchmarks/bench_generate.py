"""Speed of the data generators and of the batched multigrid solver.

    .venv/bin/python benchmarks/bench_generate.py [--quick] [--json OUT.json]

1. Darcy at 421 x 421 (FNO smooth coefficient, f = 1, u = 0 on the boundary):
   scipy.sparse.linalg.spsolve per sample versus the batched float32-multigrid
   preconditioned float64 CG (batches of 1 and 8), each checked at relative
   residual <= 1e-8 against the same sparse matrix, in the same run.
2. Samples per second of every generator at the paper's grid sizes, and
   Navier-Stokes trajectories per minute.

Prints a Markdown table; with ``--json`` also writes the raw numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

import numpy as np
import torch

from mgno.data.generate import generate_dataset, sample_rng
from mgno.pde.darcy import DARCY_DEFAULTS, darcy_coefficient
from mgno.pde.elliptic import assemble_matrix, elliptic_system, solve_elliptic


def _true_residual(a: np.ndarray, u: np.ndarray) -> float:
    """Relative residual of u (nodes) in float64 with the sparse matrix."""
    a_u, rhs, _lift, bcs, h, _op = elliptic_system(a[None], np.ones_like(a)[None], "dirichlet")
    mat, active = assemble_matrix(a_u[0], bcs, h)
    b = rhs[0].numpy().ravel()[active]
    x = u.ravel()[active]
    return float(np.linalg.norm(b - mat @ x) / np.linalg.norm(b))


def bench_darcy_solver(n: int, n_direct: int, batch: int) -> dict:
    rngs = [sample_rng(0, i) for i in range(batch)]
    a = np.stack([darcy_coefficient(r, n, "smooth", DARCY_DEFAULTS["smooth"]) for r in rngs])
    f = np.ones_like(a)
    out: dict = {"grid": n}
    # direct
    t0 = time.perf_counter()
    for i in range(n_direct):
        ud = solve_elliptic(a[i : i + 1], f[i : i + 1], "dirichlet", method="direct")
    out["spsolve_s_per_sample"] = (time.perf_counter() - t0) / n_direct
    out["spsolve_rel_residual"] = _true_residual(a[n_direct - 1], ud[0])
    # multigrid-PCG, warm-up first
    solve_elliptic(a[:1, ::4, ::4], f[:1, ::4, ::4], "dirichlet")
    for bs in (1, batch):
        t0 = time.perf_counter()
        u, info = solve_elliptic(a[:bs], f[:bs], "dirichlet", tol=1e-8, return_info=True)
        el = time.perf_counter() - t0
        res = max(_true_residual(a[i], u[i]) for i in range(bs))
        out[f"mgpcg_b{bs}_s_per_sample"] = el / bs
        out[f"mgpcg_b{bs}_rel_residual"] = res
        out[f"mgpcg_b{bs}_iterations"] = info.iterations.tolist()
        out[f"speedup_b{bs}"] = out["spsolve_s_per_sample"] / (el / bs)
    out["max_abs_diff_vs_spsolve"] = float(np.abs(u[n_direct - 1] - ud[0]).max())
    return out


def bench_generator(name: str, n: int, resolution: int, params: list[str], workers: int = 1):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "x.h5")
        t0 = time.perf_counter()
        generate_dataset(name, n, resolution, 0, path, params=params, workers=workers,
                         progress=False)
        el = time.perf_counter() - t0
    return {"pde": name, "n": n, "resolution": resolution, "params": params,
            "workers": workers, "seconds": el, "samples_per_s": n / el}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller sample counts")
    ap.add_argument("--json", default=None)
    ap.add_argument("--only", default=None, help="comma list: solver,generators,ns")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    only = set((args.only or "solver,generators,ns").split(","))
    info = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores",
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "load_avg_start": os.getloadavg(),
    }
    results: dict = {"info": info}
    q = args.quick
    if "solver" in only:
        results["darcy_421"] = bench_darcy_solver(421, 2 if q else 3, 8)
        print(json.dumps(results["darcy_421"]), flush=True)
    gens = []
    if "generators" in only:
        cases = [
            ("darcy-smooth", 8 if q else 16, 211, ["solve_resolution=421"]),
            ("darcy-smooth", 8 if q else 16, 85, ["solve_resolution=421"]),
            ("darcy-rough", 8 if q else 16, 256, ["solve_resolution=511"]),
            ("darcy-multiscale", 8 if q else 16, 256, ["solve_resolution=511"]),
            ("poisson", 32, 65, ["bc=periodic,dirichlet"]),
            ("elliptic", 32, 65, ["bc=neumann"]),
            ("helmholtz", 16 if q else 32, 101, []),
            ("burgers", 16, 1024, ["solve_resolution=8192"]),
        ]
        for name, n, res, params in cases:
            r = bench_generator(name, n, res, params)
            gens.append(r)
            print(json.dumps(r), flush=True)
        r = bench_generator("darcy-smooth", 16, 211, ["solve_resolution=421"], workers=2)
        gens.append(r)
        print(json.dumps(r), flush=True)
    if "ns" in only:
        T = 2.0 if q else 5.0
        for nu in ("1e-3", "1e-5"):
            r = bench_generator("navier-stokes", 8, 64, [f"nu={nu}", f"T={T}"])
            r["trajectories_per_min"] = 60 * r["samples_per_s"]
            r["trajectories_per_min_at_T50"] = r["trajectories_per_min"] * T / 50.0
            gens.append(r)
            print(json.dumps(r), flush=True)
    results["generators"] = gens
    info["load_avg_end"] = os.getloadavg()
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
