"""Speed on a machine that is doing something else: alone and beside a busy process.

    .venv/bin/python benchmarks/bench_load.py [--quick] [--json OUT.json]

Each measurement runs at 1 and at 2 torch threads, with OpenMP's default
wait policy and with ``OMP_WAIT_POLICY=PASSIVE`` (each cell in a fresh
process: the policy is read when torch loads OpenMP), and as the command line
runs by default (``--threads auto``); first alone and then while a second
process (started and stopped by this script, bounded in time) keeps one core
busy with a pure-Python loop:

1. the batched MG-PCG solver on Darcy at 421 x 421, batch 8 (FNO smooth
   coefficient, f = 1, tolerance 1e-8): seconds per sample and per iteration;
2. the whole command ``mgno generate darcy --n 8 --resolution 421
   --solve-resolution 421`` (a fresh process each time), against
   ``scipy.sparse.linalg.spsolve`` per sample in the same run;
3. one MgNO darcy-rough training step at 64 x 64, batch 8, beside FNO's.

Prints a Markdown table; with ``--json`` also writes the raw numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from mgno.data.generate import sample_rng
from mgno.pde.darcy import DARCY_DEFAULTS, darcy_coefficient
from mgno.pde.elliptic import solve_elliptic

BUSY_LOOP = (
    "import sys, time\nend = time.time() + float(sys.argv[1])\n"
    "while time.time() < end:\n    pass\n"
)


@contextlib.contextmanager
def busy_core(on: bool, limit_s: float = 900.0) -> Iterator[None]:
    """Keep one core busy with a second process (stopped on exit, or after ``limit_s``)."""
    if not on:
        yield
        return
    proc = subprocess.Popen([sys.executable, "-c", BUSY_LOOP, str(limit_s)])
    time.sleep(0.3)  # let it reach its loop
    try:
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def darcy_batch(n: int, batch: int) -> np.ndarray:
    """FNO-smooth coefficients of samples 0..batch-1 (seed 0), shape (batch, n, n)."""
    rngs = [sample_rng(0, i) for i in range(batch)]
    return np.stack([darcy_coefficient(r, n, "smooth", DARCY_DEFAULTS["smooth"]) for r in rngs])


def time_solver(a: np.ndarray, repeats: int) -> dict:
    """Best of ``repeats`` MG-PCG solves of the whole batch: per sample and per iteration."""
    f = np.ones_like(a)
    solve_elliptic(a[:1, ::4, ::4], f[:1, ::4, ::4], "dirichlet")  # warm-up
    best, iters = float("inf"), 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        _u, info = solve_elliptic(a, f, "dirichlet", tol=1e-8, return_info=True)
        best = min(best, time.perf_counter() - t0)
        iters = int(info.iterations.max())
    return {"s_per_sample": best / len(a), "iterations": iters, "s_per_iteration": best / iters}


def time_spsolve(a: np.ndarray) -> float:
    """Seconds of ``spsolve`` for one sample."""
    t0 = time.perf_counter()
    solve_elliptic(a[:1], np.ones_like(a[:1]), "dirichlet", method="direct")
    return time.perf_counter() - t0


def policy_env(threads: int | str, policy: str) -> dict[str, str]:
    """Our environment for a child: OpenMP threads and ``OMP_WAIT_POLICY`` (or unset)."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if threads != "auto":
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    if policy != "unset":
        env["OMP_WAIT_POLICY"] = policy
    return env


def time_generate_command(threads: int | str, policy: str, n: int, folder: Path) -> float:
    """Wall seconds per sample of a fresh ``mgno generate darcy --threads THREADS`` process.

    ``policy`` ``"cli"`` leaves the environment as the user's (the command picks
    its own default); otherwise ``OMP_WAIT_POLICY`` is set to it (``unset``:
    removed).
    """
    out = folder / f"darcy_{threads}_{time.monotonic_ns()}.h5"
    env = dict(os.environ) if policy == "cli" else policy_env(threads, policy)
    cmd = [sys.executable, "-m", "mgno.cli", "generate", "darcy", "--n", "8", "--threads",
           str(threads), "--resolution", str(n), "--solve-resolution", str(n), "--out", str(out),
           "--no-progress"]
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    el = time.perf_counter() - t0
    out.unlink(missing_ok=True)
    return el / 8


def time_steps(grid: int, repeats: int) -> dict:
    """ms per sample of a training step (batch 8): MgNO darcy-rough and FNO, interleaved."""
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_model_speed import fno, time_model  # noqa: PLC0415 - sibling script

    from mgno.nn.factory import create_model

    models = {"mgno_rough": create_model("darcy-rough"), "fno": fno()}
    return {k: time_model(m, grid, 8, repeats, 0)["train_ms_per_sample"]
            for k, m in models.items()}


def cell(threads: int | str, n: int, repeats: int) -> dict:
    """The in-process measurements at ``threads`` (``auto``: mgno's choice): solver, steps."""
    from mgno.threads import use_threads

    used = use_threads(threads)
    return {"threads_used": used, "solver": time_solver(darcy_batch(n, 8), repeats),
            "step_ms_per_sample_64": time_steps(64, repeats)}


def run_cell(threads: int | str, policy: str, n: int, repeats: int) -> dict:
    """:func:`cell` in a fresh process, so that ``OMP_WAIT_POLICY`` takes effect."""
    cmd = [sys.executable, __file__, "--cell", str(threads), "--grid", str(n), "--repeats",
           str(repeats)]
    out = subprocess.run(cmd, env=policy_env(threads, policy), check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


#: (threads, OMP_WAIT_POLICY) of each row: libgomp's default wait, PASSIVE, and
#: the command line's own choice (``--threads auto`` with the CLI's environment).
CELLS = ((1, "unset"), (2, "unset"), (1, "PASSIVE"), (2, "PASSIVE"), ("auto", "cli"))


def measure(args: argparse.Namespace) -> list[dict]:
    """Every (load, threads, wait policy) cell of the three measurements."""
    n = 129 if args.quick else 421
    a = darcy_batch(n, 8)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for busy in (False, True):
            with busy_core(busy):
                spsolve = time_spsolve(a)
                for threads, policy in CELLS:
                    row = {"busy_core": busy, "threads": threads, "wait_policy": policy,
                           "grid": n, "spsolve_s_per_sample": spsolve}
                    row.update(run_cell(threads, "unset" if policy == "cli" else policy, n,
                                        args.repeats))
                    row["generate_s_per_sample"] = time_generate_command(threads, policy, n,
                                                                         Path(tmp))
                    rows.append(row)
                    print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def table(rows: list[dict]) -> str:
    """Markdown table of the measurements."""
    head = ("| busy core | threads | OMP_WAIT_POLICY | solver s/sample | s/iteration | "
            "iterations | generate s/sample | spsolve s/sample | spsolve / generate | "
            "MgNO rough step ms | FNO step ms |")
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        s, st = r["solver"], r["step_ms_per_sample_64"]
        threads = r["threads"] if r["threads"] != "auto" else f"auto ({r['threads_used']})"
        lines.append(
            f"| {'yes' if r['busy_core'] else 'no'} | {threads} | {r['wait_policy']} | "
            f"{s['s_per_sample']:.3f} | {1e3 * s['s_per_iteration']:.1f} ms | "
            f"{s['iterations']} | {r['generate_s_per_sample']:.3f} | "
            f"{r['spsolve_s_per_sample']:.2f} | "
            f"{r['spsolve_s_per_sample'] / r['generate_s_per_sample']:.1f}x | "
            f"{st['mgno_rough']:.1f} | {st['fno']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="129 x 129 instead of 421")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the raw numbers to this file")
    parser.add_argument("--cell", default=None, metavar="THREADS",
                        help=argparse.SUPPRESS)  # internal: one cell in this process
    parser.add_argument("--grid", type=int, default=421, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cell is not None:
        threads = args.cell if args.cell == "auto" else int(args.cell)
        print(json.dumps(cell(threads, args.grid, args.repeats)))
        return 0
    t0 = time.time()
    rows = measure(args)
    print(table(rows))
    if args.json:
        record = {
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "machine": {"cpu": platform.processor() or platform.machine(),
                        "cores": os.cpu_count(), "load_at_start": os.getloadavg(),
                        "torch": torch.__version__},
            "seconds": time.time() - t0,
            "rows": rows,
        }
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
