"""A learned preconditioner inside flexible CG, against multigrid and pyamg (issue 15, part 3).

An MgNO-style network ``N(a, r) -> e`` (coefficient and residual in,
correction out) is trained WITHOUT solution data: on random residuals ``r``
(white noise plus smooth Gaussian random fields) for darcy-smooth coefficients
``a``, minimising ``||A e - r|| / ||r||`` with ``A`` the finite-volume operator
of the grid. It is applied as ``e = ||r||_rms / (100 mean(a) h^2) * N(log a, r / ||r||_rms)``
(so it scales with ``r``) and plugged into the project's flexible CG
(:func:`mgno.pde.solvers.mg_pcg`, Polak-Ribiere ``beta``) as its
preconditioner. On test coefficients never seen in training the script
solves ``-div(a grad u) = 1`` to a relative residual ``--tol`` with

* ``learned``: flexible CG + the network,
* ``mg``: flexible CG + the project's V(1,1) cycle (float32),
* ``jacobi``: CG + the diagonal (what a trivial preconditioner gives),
* ``pyamg-sa``: pyamg's smoothed aggregation as a CG preconditioner (its
  setup timed apart; skipped with a note when ``pip install pyamg`` is missing),

and reports iterations and seconds per solve (setup included, median over the
samples), and the training curve. A negative result is a result.

Usage (full: 65 x 65, a few thousand steps; tens of minutes on a quiet CPU)::

    .venv/bin/python benchmarks/bench_hybrid_precond.py --out /tmp/bench_hyb_pc \\
        --json benchmarks/results_hybrid_precond.json

Quick (33 x 33, a few hundred steps; a few minutes on 2 busy cores)::

    .venv/bin/python benchmarks/bench_hybrid_precond.py --quick --out /tmp/bench_hyb_pc_q
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hybrid_setup import emit, machine  # noqa: E402

BOUNDARY = ("dirichlet", "dirichlet")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, type=Path, help="folder for the trained network")
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks the script runs")
    p.add_argument("--grid", type=int, default=None, help="nodes per axis (65; quick 33)")
    p.add_argument("--steps", type=int, default=None, help="training steps (4000; quick 300)")
    p.add_argument("--batch", type=int, default=16, help="residuals per training step")
    p.add_argument("--channels", type=int, default=None, help="network width (24; quick 12)")
    p.add_argument("--layers", type=int, default=None, help="network layers (4; quick 3)")
    p.add_argument("--n-test", type=int, default=None, help="test coefficients (16; quick 4)")
    p.add_argument("--test-grids", type=int, nargs="+", default=None,
                   help="grids the solvers are compared on (default: the training grid; "
                   "the network is convolutional and applies to any of them)")
    p.add_argument("--tol", type=float, default=1e-6)
    p.add_argument("--maxiter", type=int, default=500)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--loss", choices=["residual", "energy"], default="residual",
                   help="residual: ||A e - r|| / ||r|| (the issue's); energy: (e'Ae/2 - e'r) / "
                   "(r'D^-1 r), minimised by e = A^-1 r, which weighs smooth errors more")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", type=Path, default=None)
    return p.parse_args(argv)


def sizes(args) -> dict:
    full = {"grid": 65, "steps": 4000, "channels": 24, "layers": 4, "n_test": 16}
    quick = {"grid": 33, "steps": 300, "channels": 12, "layers": 3, "n_test": 4}
    out = dict(quick if args.quick else full)
    for key in out:
        if getattr(args, key) is not None:
            out[key] = getattr(args, key)
    return out


def coefficients(n_samples: int, grid: int, seed: int) -> torch.Tensor:
    """darcy-smooth coefficients (12 / 3), float64, shape (n_samples, grid, grid)."""
    from mgno.data.generate import sample_rng
    from mgno.pde.darcy import DARCY_DEFAULTS, darcy_coefficient

    a = [darcy_coefficient(sample_rng(seed, i), grid, "smooth", DARCY_DEFAULTS["smooth"])
         for i in range(n_samples)]
    return torch.from_numpy(np.stack(a))


def random_residuals(op, batch: int, gen: torch.Generator) -> torch.Tensor:
    """White noise plus smooth fields (a random mix per sample), zero on Dirichlet nodes."""
    shape = (batch, *op.shape)
    white = torch.randn(shape, generator=gen, dtype=torch.float64)
    smooth = torch.randn(shape, generator=gen, dtype=torch.float64)
    kernel = torch.ones(1, 1, 5, 5, dtype=torch.float64) / 25.0
    for _ in range(int(torch.randint(1, 12, (1,), generator=gen))):
        smooth = torch.nn.functional.conv2d(smooth[:, None], kernel, padding=2)[:, 0]
    smooth = smooth / smooth.flatten(1).std(dim=1).view(-1, 1, 1)
    mix = torch.rand(batch, 1, 1, generator=gen, dtype=torch.float64)
    return op.mask(mix * white + (1 - mix) * smooth)


class Learned:
    """The network as a preconditioner: ``vcycle(r)`` returns the correction (duck-types
    the :class:`~mgno.pde.solvers.Multigrid` that ``mg_pcg`` calls)."""

    def __init__(self, net: torch.nn.Module, a: torch.Tensor, op, h: float) -> None:
        self.net, self.op = net, op
        # the smoothest mode of A^-1 is about 1 / (2 pi^2 a h^2), the roughest 1 / (8 a):
        # this scale puts both within the reach of outputs of order 0.01 to 10
        self.scale = 1.0 / (100.0 * a.flatten(1).mean(1) * h * h)  # (B,)
        self.a_in = torch.log(a).float()[:, None]

    def apply(self, r: torch.Tensor) -> torch.Tensor:
        norm = r.flatten(1).norm(dim=1).clamp_min(1e-300) / np.sqrt(r[0].numel())
        x = torch.cat([self.a_in, (r / norm.view(-1, 1, 1)).float()[:, None]], dim=1)
        e = self.net(x)[:, 0].double()
        return self.op.mask(e * (norm * self.scale).view(-1, 1, 1))

    def vcycle(self, r: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.apply(r)


def train_network(size: dict, args, out: Path) -> tuple[torch.nn.Module, list]:
    """Train ``N`` on random residuals (no solutions), or load ``out/precond.safetensors``."""
    from safetensors.torch import load_file, save_file

    from mgno.nn.factory import build_model
    from mgno.pde.stencil import build_operator

    net = build_model({"model": "mgno", "in_channels": 2, "out_channels": 1,
                       "channels": size["channels"], "layers": size["layers"],
                       "grid": [size["grid"]] * 2, "boundary": "dirichlet"})
    path = out / f"precond_{args.loss}_g{size['grid']}_s{size['steps']}.safetensors"
    if path.is_file():
        net.load_state_dict(load_file(path))
        return net.eval(), json.loads((path.with_suffix(".json")).read_text())
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    pool = coefficients(256, size["grid"], args.seed)
    h = 1.0 / (size["grid"] - 1)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=size["steps"])
    curve = []
    for step in range(size["steps"]):
        a = pool[torch.randint(0, len(pool), (args.batch,), generator=gen)]
        op = build_operator(a, BOUNDARY, [h, h])
        r = random_residuals(op, args.batch, gen)
        loss = training_loss(args.loss, op, Learned(net, a, op, h).apply(r), r)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % max(1, size["steps"] // 20) == 0 or step == size["steps"] - 1:
            curve.append([step, float(loss)])
            print(f"step {step} loss {float(loss):.4f}", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, path)
    path.with_suffix(".json").write_text(json.dumps(curve))
    return net.eval(), curve


def training_loss(kind: str, op, e: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """The mean over the batch of the ``residual`` or ``energy`` loss of corrections ``e``."""
    ae = op.apply(e)
    if kind == "residual":
        return ((ae - r).flatten(1).norm(dim=1) / r.flatten(1).norm(dim=1)).mean()
    energy = (0.5 * e * ae - e * r).flatten(1).sum(1)
    return (energy / (r * r / op.diag).flatten(1).sum(1)).mean()


class Jacobi:
    """``vcycle(r) = r / diag(A)``: the diagonal as a preconditioner."""

    def __init__(self, op) -> None:
        self.op = op

    def vcycle(self, r: torch.Tensor) -> torch.Tensor:
        return self.op.mask(r / self.op.diag)


def solve_torch(kind: str, net, a: torch.Tensor, tol: float, maxiter: int) -> dict:
    """One sample with flexible CG and the ``kind`` preconditioner: iterations and seconds."""
    from mgno.pde.elliptic import elliptic_system
    from mgno.pde.solvers import Multigrid, mg_pcg

    t0 = time.perf_counter()
    a_u, rhs, _lift, bc, h, op = elliptic_system(a, torch.ones_like(a), BOUNDARY)
    if kind == "mg":
        pre = Multigrid(a_u, bc, h, dtype=torch.float32)
    elif kind == "learned":
        pre = Learned(net, a_u, op, h[0])
    else:
        pre = Jacobi(op)
    res = mg_pcg(pre, op.mask(rhs), op=op, tol=tol, maxiter=maxiter)
    return {"iterations": int(res.iterations[0]), "converged": bool(res.converged[0]),
            "residual": float(res.residuals[0, -1]), "seconds": time.perf_counter() - t0}


def solve_pyamg(a: torch.Tensor, tol: float, maxiter: int) -> dict:
    """pyamg smoothed aggregation as a CG preconditioner, on the same matrix."""
    import pyamg

    from mgno.pde.elliptic import assemble_matrix, elliptic_system

    a_u, rhs, _lift, bc, h, op = elliptic_system(a, torch.ones_like(a), BOUNDARY)
    mat, active = assemble_matrix(a_u[0], bc, h)
    b = op.mask(rhs)[0].numpy().ravel()[active]
    t0 = time.perf_counter()
    ml = pyamg.smoothed_aggregation_solver(mat.tocsr())
    setup = time.perf_counter() - t0
    history: list[float] = []
    x = ml.solve(b, tol=tol, maxiter=maxiter, accel="cg", residuals=history)
    seconds = time.perf_counter() - t0
    reached = float(np.linalg.norm(b - mat @ x) / np.linalg.norm(b))
    return {"iterations": len(history) - 1, "converged": reached <= tol * 1.01,
            "residual": reached, "seconds": seconds, "setup_seconds": setup}


def one_step_losses(net, size: dict, args) -> dict:
    """``||A M(r) - r|| / ||r||`` on fresh residuals for the network and the V-cycle."""
    from mgno.pde.solvers import Multigrid
    from mgno.pde.stencil import build_operator

    gen = torch.Generator().manual_seed(args.seed + 7)
    a = coefficients(8, size["grid"], args.seed + 2000)
    h = 1.0 / (size["grid"] - 1)
    op = build_operator(a, BOUNDARY, [h, h])
    r = random_residuals(op, 8, gen)
    out = {}
    for name, pre in (("learned", Learned(net, a, op, h)),
                      ("mg", Multigrid(a, BOUNDARY, [h, h], dtype=torch.float32)),
                      ("jacobi", Jacobi(op))):
        e = pre.vcycle(r)
        rel = (op.apply(e) - r).flatten(1).norm(dim=1) / r.flatten(1).norm(dim=1)
        out[name] = float(rel.mean())
    return out


def compare(net, size: dict, args, grid: int) -> dict:
    """Every solver on every test coefficient at ``grid`` (median seconds and iterations)."""
    import importlib.util

    tests = coefficients(size["n_test"], grid, args.seed + 1000)
    rows: dict[str, list] = {"learned": [], "mg": [], "jacobi": []}
    if importlib.util.find_spec("pyamg") is not None:
        rows["pyamg-sa"] = []
    else:
        print("pyamg is not installed: its column is skipped (pip install pyamg)",
              file=sys.stderr)
    for a in tests:
        a = a[None]
        for kind in ("learned", "mg", "jacobi"):
            solve_torch(kind, net, a, args.tol, args.maxiter)  # warm-up
            rows[kind].append(solve_torch(kind, net, a, args.tol, args.maxiter))
        if "pyamg-sa" in rows:
            rows["pyamg-sa"].append(solve_pyamg(a, args.tol, args.maxiter))
    return {kind: {"iterations_median": statistics.median(r["iterations"] for r in rs),
                   "seconds_median": statistics.median(r["seconds"] for r in rs),
                   "converged": sum(r["converged"] for r in rs), "n": len(rs),
                   "iterations": [r["iterations"] for r in rs]}
            for kind, rs in rows.items()}


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    size = sizes(args)
    t0 = time.perf_counter()
    net, curve = train_network(size, args, args.out.resolve())
    result = {"benchmark": "hybrid_precond", "quick": args.quick, "sizes": size,
              "loss": args.loss,
              "tol": args.tol, "maxiter": args.maxiter, "training_curve": curve,
              "one_step_loss": one_step_losses(net, size, args),
              "solvers": {str(g): compare(net, size, args, g)
                          for g in (args.test_grids or [size["grid"]])},
              "seconds": time.perf_counter() - t0,
              "command": " ".join(sys.argv), "machine": machine()}
    emit(result, args.json)
    return result


if __name__ == "__main__":
    main()
