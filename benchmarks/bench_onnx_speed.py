"""Inference speed of an exported MgNO run: onnxruntime against PyTorch eager and compiled.

Usage (the full measurement: grids 64 and 211, batch 1 and 8, 1 and 2 threads)::

    .venv/bin/python benchmarks/bench_onnx_speed.py --out benchmarks/results_onnx_speed.json

A check that every path runs (one 33x33 grid, batch 1 and 2, one thread, about a
minute, most of it compiling)::

    .venv/bin/python benchmarks/bench_onnx_speed.py --quick --out /tmp/onnx_speed_quick.json

For each grid a ``darcy-smooth`` run is made with :func:`mgno.train.train` on four
random samples for one epoch: two optimiser steps, so the weights are as good as
untrained, and the speed does not depend on them (on a grid other than 211 the
preset's levels are cut to the grid, as ``mgno train`` does). The run is exported
with :func:`mgno.export.export_run` to ONNX, by default ``grid="fixed"`` (the
network and its normalisers on the training grid: what the eager predictor
computes there); ``--export-grid resample`` times ``mgno export``'s default
graph, which also takes other grids. Then, per thread count and batch, the
median of ``--repeats`` timed calls after one untimed call, of

* ``eager``: ``load_run(run).predictor`` under ``torch.inference_mode`` (what
  ``mgno predict`` runs);
* ``compile``: the same predictor through ``torch.compile`` (static shapes, one
  compilation per batch and thread count; its first call, which compiles, is
  reported as ``first_call_s``); ``--no-compile`` leaves it out;
* ``onnxruntime``: an ``InferenceSession`` on the CPU provider with
  ``intra_op_num_threads`` = the thread count, one inter-op thread.

Subnormal floats are flushed to zero in both torch and onnxruntime, as every
``mgno`` command does. The JSON holds every repeat's seconds, ms per sample,
each engine's largest difference from eager (relative to eager's largest value),
the versions, the machine's load average before and after, and the command; a
markdown table goes to stderr. Speed claims belong in benchmarks/RESULTS.md
with this command, not in a unit test.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from timing import all_seconds  # benchmarks/timing.py

PRESET = "darcy-smooth"
FULL = {"grids": [64, 211], "batches": [1, 8], "threads": [1, 2], "repeats": 10}
QUICK = {"grids": [33], "batches": [1, 2], "threads": [1], "repeats": 3}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="JSON file to write (refused if it exists)")
    p.add_argument("--force", action="store_true", help="replace an existing --out")
    p.add_argument("--quick", action="store_true",
                   help=f"a check that every path runs: {QUICK}")
    p.add_argument("--grids", type=int, nargs="+", default=None,
                   help=f"nodes per axis (default {FULL['grids']})")
    p.add_argument("--batches", type=int, nargs="+", default=None,
                   help=f"batch sizes (default {FULL['batches']})")
    p.add_argument("--threads", type=int, nargs="+", default=None,
                   help=f"thread counts, torch and onnxruntime alike (default {FULL['threads']})")
    p.add_argument("--repeats", type=int, default=None,
                   help=f"timed calls per measurement (default {FULL['repeats']})")
    p.add_argument("--export-grid", choices=["fixed", "resample"], default="fixed",
                   help="the exported graph: fixed (the training grid, default) or resample "
                   "(mgno export's default: any grid, interpolated inside the graph)")
    p.add_argument("--no-compile", action="store_true", help="leave torch.compile out")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    base = QUICK if args.quick else FULL
    for key in ("grids", "batches", "threads", "repeats"):
        if getattr(args, key) is None:
            setattr(args, key, base[key])
    if min(args.grids) < 9 or min(args.batches) < 1 or min(args.threads) < 1 or args.repeats < 1:
        p.error("expected grids >= 9, batches, threads and repeats >= 1")
    return args


def make_run(work: Path, grid: int, seed: int) -> Path:
    """A darcy-smooth run on ``grid`` after one epoch on four random samples."""
    from mgno.data.schema import write_steady
    from mgno.train import train

    rng = np.random.default_rng(seed)
    a = (rng.random((4, 1, grid, grid)) * 9 + 3).astype(np.float32)
    u = rng.standard_normal((4, 1, grid, grid)).astype(np.float32)
    data = write_steady(work / f"data{grid}.h5", a, u, pde="toy", params={},
                        boundary=["dirichlet"] * 2)
    run = work / f"run{grid}"
    train(data, run, preset=PRESET, epochs=1, batch_size=2, val_fraction=0.0, seed=seed,
          progress=False)
    return run


def export(run: Path, work: Path, export_grid: str) -> tuple[Path, float]:
    """The run exported to ONNX, and the seconds the export took."""
    from mgno.export import export_run

    out = work / f"{run.name}.onnx"
    t0 = time.perf_counter()
    export_run(run, out, fmt="onnx", grid=export_grid, check=False)
    return out, time.perf_counter() - t0


def ort_session(path: Path, threads: int):
    """An onnxruntime session on ``threads`` intra-op threads, subnormals flushed."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.add_session_config_entry("session.set_denormal_as_zero", "1")
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def engines(predictor: torch.nn.Module, onnx_path: Path, threads: int, compile_: bool
            ) -> dict[str, Callable[[torch.Tensor], np.ndarray]]:
    """Callables ``x -> y`` of each engine, on ``threads`` threads."""
    torch.set_num_threads(threads)

    def eager(x: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            return predictor(x).numpy()

    out: dict[str, Callable[[torch.Tensor], np.ndarray]] = {"eager": eager}
    if compile_:
        torch._dynamo.reset()  # inductor bakes the thread count into its kernels
        compiled = torch.compile(predictor, dynamic=False)

        def compiled_call(x: torch.Tensor) -> np.ndarray:
            with torch.inference_mode():
                return compiled(x).numpy()

        out["compile"] = compiled_call
    session = ort_session(onnx_path, threads)
    name = session.get_inputs()[0].name
    out["onnxruntime"] = lambda x: session.run(None, {name: x.numpy()})[0]
    return out


def measure(fn: Callable[[torch.Tensor], np.ndarray], x: torch.Tensor, repeats: int,
            reference: np.ndarray | None) -> dict:
    """First call, every timed call, the median per sample and the difference from eager."""
    t0 = time.perf_counter()
    y = fn(x)
    first = time.perf_counter() - t0
    times = all_seconds(lambda: fn(x), repeats, warmup=0)
    median = statistics.median(times)
    row = {"first_call_s": first, "times_s": times, "median_s": median,
           "ms_per_sample": 1e3 * median / x.shape[0]}
    if reference is not None:
        scale = float(np.abs(reference).max()) or 1.0
        row["rel_max_diff_vs_eager"] = float(np.abs(y - reference).max()) / scale
    return row


def time_grid(run: Path, onnx_path: Path, args: argparse.Namespace, grid: int) -> list[dict]:
    """Every thread count, batch and engine on one grid."""
    from mgno.train import load_run

    predictor = load_run(run, device="cpu").predictor.eval()
    rows = []
    gen = torch.Generator().manual_seed(args.seed)
    inputs = {b: torch.rand(b, 1, grid, grid, generator=gen) * 9 + 3 for b in args.batches}
    for threads in args.threads:
        calls = engines(predictor, onnx_path, threads, not args.no_compile)
        for batch in args.batches:
            x, reference = inputs[batch], None
            for name, fn in calls.items():
                row = {"grid": grid, "batch": batch, "threads": threads, "engine": name}
                try:
                    row.update(measure(fn, x, args.repeats, reference))
                except Exception as err:  # e.g. torch.compile without a working compiler
                    row["failed"] = f"{type(err).__name__}: {str(err).splitlines()[0][:300]}"
                if name == "eager":
                    reference = fn(x)
                rows.append(row)
                print(_line(row), file=sys.stderr, flush=True)
    return rows


def _line(r: dict) -> str:
    head = f"| {r['grid']} | {r['batch']} | {r['threads']} | {r['engine']} |"
    if "failed" in r:
        return f"{head} failed: {r['failed']} | | |"
    diff = r.get("rel_max_diff_vs_eager")
    return (f"{head} {r['ms_per_sample']:.2f} | {r['first_call_s']:.2f} | "
            f"{'' if diff is None else f'{diff:.1e}'} |")


def machine() -> dict:
    """Versions and the machine, for the JSON."""
    import onnxruntime

    from mgno import __version__

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"processor": platform.processor() or platform.machine(), "cpus_usable": cpus,
            "python": platform.python_version(), "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__, "mgno": __version__,
            "loadavg_start": list(os.getloadavg())}


def main(argv: list[str] | None = None) -> int:
    from mgno.atomic import atomic_write_json, check_replaceable
    from mgno.denormals import flush_denormals
    from mgno.errors import InputError

    args = parse_args(argv)
    try:
        check_replaceable(args.out, args.force)
    except InputError as err:
        print(f"bench_onnx_speed: error: {err}", file=sys.stderr)
        return 2
    flush_denormals()
    meta = {"command": " ".join(["benchmarks/bench_onnx_speed.py", *sys.argv[1:]]),
            "preset": PRESET, "export_grid": args.export_grid, "repeats": args.repeats,
            "compile": not args.no_compile, "machine": machine(), "export_s": {}}
    rows: list[dict] = []
    print("| grid | batch | threads | engine | ms/sample (median) | first call s "
          "| max diff vs eager |\n|---|---|---|---|---|---|---|", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="bench_onnx_") as tmp:
        for grid in args.grids:
            torch.set_num_threads(max(args.threads))
            run = make_run(Path(tmp), grid, args.seed)
            onnx_path, seconds = export(run, Path(tmp), args.export_grid)
            meta["export_s"][str(grid)] = round(seconds, 2)
            rows += time_grid(run, onnx_path, args, grid)
    meta["machine"]["loadavg_end"] = list(os.getloadavg())
    atomic_write_json(args.out, {"meta": meta, "rows": rows})
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
