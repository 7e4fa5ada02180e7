"""Pipe generator: Poiseuille error, observed orders on nested meshes, seconds per sample.

Three measurements of `mgno generate pipe`'s solver (mgno.pde.taylor_hood):

* the straight pipe of the family (length 10, width 1, nu = 0.005) at 129 x 129
  against Poiseuille flow (max errors of u, v and p);
* differences between solutions on nested meshes (each refined once in the
  reference square) and the observed order log2(d_k / d_{k+1}): velocity in
  the H1 seminorm, velocity and pressure RMS over the common nodes, u max;
  for the test's curved pipe with straight ends, and for sample 0 of seed 0
  of the default family on n x n meshes up to 257 x 257 (whose last
  difference estimates the error of the stored 129 x 129 data);
* wall-clock and CPU seconds per 129 x 129 sample of the default family.

    nice -n 10 .venv/bin/python benchmarks/pipe_verify.py --json benchmarks/results_pipe.json
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from mgno.data.generate import sample_rng
from mgno.pde.pipe import PIPE_DEFAULTS, PipeGeometry, sample_geometry, solve_pipe
from mgno.pde.taylor_hood import h1_seminorm, refine_nodal


def poiseuille(n: int) -> dict:
    """Max errors of the straight pipe against u = 1 - 4 y^2, v = 0, p = 8 nu (L - x)."""
    p = dict(PIPE_DEFAULTS)
    geom = PipeGeometry(10.0, 1.0, np.zeros(5), np.zeros(5))
    x, y, flow = solve_pipe(geom, n, n, p)
    exact_p = 8.0 * p["nu"] * (10.0 - x[::2, ::2])
    return {"mesh": [n, n], "u_max_err": float(np.abs(flow.u - (1 - 4 * y**2)).max()),
            "v_max_err": float(np.abs(flow.v).max()),
            "p_max_err": float(np.abs(flow.p - exact_p).max()),
            "newton_steps": flow.iterations, "final_rel_residual": flow.residuals[-1]}


def nested(geom: PipeGeometry, params: dict, sizes: list[tuple[int, int]]) -> dict:
    """Differences of successive nested solutions and their observed orders."""
    flows, meshes, seconds = [], [], []
    for a, b in sizes:
        t0 = time.perf_counter()
        x, y, flow = solve_pipe(geom, a, b, params)
        seconds.append(time.perf_counter() - t0)
        flows.append(flow)
        meshes.append((x, y))
    diffs: dict[str, list[float]] = {"h1_velocity": [], "rms_u": [], "rms_p": [], "max_u": [],
                                     "rel_l2_u": []}
    for k in range(len(sizes) - 1):
        (x, y), fine, coarse = meshes[k + 1], flows[k + 1], flows[k]
        diffs["h1_velocity"].append(float(np.hypot(
            h1_seminorm(x, y, fine.u - refine_nodal(coarse.u)),
            h1_seminorm(x, y, fine.v - refine_nodal(coarse.v)))))
        du = fine.u[::2, ::2] - coarse.u
        diffs["rms_u"].append(float(np.sqrt(np.mean(du**2))))
        diffs["rms_p"].append(float(np.sqrt(np.mean((fine.p[::2, ::2] - coarse.p) ** 2))))
        diffs["max_u"].append(float(np.abs(du).max()))
        diffs["rel_l2_u"].append(float(np.linalg.norm(du) / np.linalg.norm(fine.u[::2, ::2])))
    orders = {k: [float(np.log2(v[i] / v[i + 1])) for i in range(len(v) - 1)]
              for k, v in diffs.items()}
    return {"sizes": [list(s) for s in sizes], "seconds": seconds,
            "newton_steps": [f.iterations for f in flows], "differences": diffs,
            "observed_orders": orders}


def timing(n_samples: int, resolution: int) -> dict:
    """Seconds per sample of the default family (mesh + solve), samples 0.. of seed 0."""
    p = dict(PIPE_DEFAULTS)
    wall, cpu, steps = [], [], []
    for i in range(n_samples):
        t0, c0 = time.perf_counter(), time.process_time()
        _, _, flow = solve_pipe(sample_geometry(sample_rng(0, i), p), resolution, resolution, p)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        steps.append(flow.iterations)
    return {"resolution": resolution, "wall_s": wall, "cpu_s": cpu, "newton_steps": steps,
            "load_avg": os.getloadavg()[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--samples", type=int, default=4, help="samples timed at 129 x 129")
    args = ap.parse_args()
    curved = PipeGeometry(4.0, 1.0, np.array([0.0, 0.3, -0.2]), np.array([0.0, -0.4, 0.0]))
    family = sample_geometry(sample_rng(0, 0), PIPE_DEFAULTS)
    out = {
        "poiseuille": poiseuille(129),
        "curved_straight_ends_nu0.05": nested(curved, {**PIPE_DEFAULTS, "nu": 0.05},
                                              [(17, 9), (33, 17), (65, 33), (129, 65)]),
        "family_seed0_sample0": {"heights": family.heights.tolist(),
                                 "slopes": family.slopes.tolist(),
                                 **nested(family, dict(PIPE_DEFAULTS),
                                          [(33, 33), (65, 65), (129, 129), (257, 257)])},
        "timing": timing(args.samples, 129),
    }
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
