"""Refinement from an MgNO prediction against a cold start (issue 15, part 2).

For each grid (211 and 421 by default) and tolerance (1e-4 and 1e-6) the
script times, on the same Darcy smooth samples,

* warm: MgNO inference + multigrid-CG from the prediction to the tolerance;
* cold: multigrid-CG from zero to the same tolerance;

both including the build of the multigrid hierarchy (the same work in both),
and counts the iterations. The run (``--run``, else one trained here at
``--train-resolution``) resamples to its training grid where the test grid
differs. Every timing is the median of ``--repeats`` after one warm-up call.
Prints one JSON object (``--json FILE`` keeps it).

Usage (full size, on a quiet machine; data at 421 are solved on 841 x 841)::

    .venv/bin/python benchmarks/bench_hybrid_refine.py --out /tmp/bench_hyb_ref \\
        --threads 1 --json benchmarks/results_hybrid_refine.json
    # with a run of your own, e.g. the darcy-smooth preset trained at 211:
    .venv/bin/python benchmarks/bench_hybrid_refine.py --out /tmp/bench_hyb_ref \\
        --run RUN_DIR --threads 1

Quick (grids 33 and 65, a tiny run; seconds)::

    .venv/bin/python benchmarks/bench_hybrid_refine.py --quick --out /tmp/bench_hyb_ref_q
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hybrid_setup import FULL_NET, QUICK_NET, data_file, emit, given_or_trained_run, machine  # noqa: E402
from timing import all_seconds  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, type=Path, help="folder for data and the run")
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks the script runs")
    p.add_argument("--run", type=Path, default=None, help="an existing darcy-smooth run")
    p.add_argument("--grids", type=int, nargs="+", default=None, help="(211 421; quick 33 65)")
    p.add_argument("--tols", type=float, nargs="+", default=[1e-4, 1e-6])
    p.add_argument("--n", type=int, default=None, help="test samples per grid (16; quick 4)")
    p.add_argument("--batch", type=int, default=None,
                   help="samples predicted and solved together (default 1: per-sample latency)")
    p.add_argument("--train-resolution", type=int, default=None, help="(85; quick 33)")
    p.add_argument("--epochs", type=int, default=None, help="(100; quick 8)")
    p.add_argument("--repeats", type=int, default=3, help="timings per measurement (median)")
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    p.add_argument("--json", type=Path, default=None, help="also write the JSON here")
    return p.parse_args(argv)


def sizes(args: argparse.Namespace) -> dict:
    full = {"grids": [211, 421], "n": 16, "train_resolution": 85, "n_train": 1000,
            "epochs": 100, "net": FULL_NET}
    quick = {"grids": [33, 65], "n": 4, "train_resolution": 33, "n_train": 80, "epochs": 8,
             "net": QUICK_NET}
    out = dict(quick if args.quick else full)
    for key in ("grids", "n", "train_resolution", "epochs"):
        if getattr(args, key) is not None:
            out[key] = getattr(args, key)
    out["batch"] = args.batch or 1
    return out


def timed(fn, repeats: int) -> tuple[float, object]:
    """Median seconds of ``fn()`` (one warm-up call) and the last result."""
    box = {}

    def call():
        box["r"] = fn()

    return statistics.median(all_seconds(call, repeats)), box["r"]


def per_batch(x: np.ndarray, batch: int):
    return [x[lo:lo + batch] for lo in range(0, len(x), batch)]


def refine_all(info, chunks: list, starts: list, truths: list, tol: float,
               repeats: int) -> dict:
    """Refine each batch from ``starts`` (None: cold) to ``tol``: per-sample seconds, iterations."""
    from mgno.data.equation import rebuild_equation
    from mgno.train.hybrid import refine, relative_errors

    secs, its, errs, start_res = 0.0, [], [], []
    for xb, pb, tb in zip(chunks, starts, truths, strict=True):
        s, r = timed(lambda xb=xb, pb=pb: refine(rebuild_equation(info, xb), pb, tol), repeats)
        secs += s
        its += r.iterations.tolist()
        start_res += r.start_residual.tolist()
        errs += relative_errors(r.outputs, tb).tolist()
    n = sum(len(xb) for xb in chunks)
    return {"seconds": secs / n, "iterations_mean": float(np.mean(its)), "iterations": its,
            "start_residual_median": float(np.median(start_res)),
            "error_vs_data_median": float(np.median(errs))}


def measure_grid(run, info, x: np.ndarray, truth: np.ndarray, tols, batch: int,
                 repeats: int) -> dict:
    """Inference, warm and cold refinement of every batch; sums over batches, per sample."""
    from mgno.train.hybrid import relative_errors

    chunks, truths = per_batch(x, batch), per_batch(truth, batch)
    inference, preds = 0.0, []
    for xb in chunks:
        s, p = timed(lambda xb=xb: run.predict_arrays(xb, batch_size=batch), repeats)
        inference += s
        preds.append(p)
    out = {"inference_seconds": inference / len(x), "tols": {}}
    for tol in tols:
        warm = refine_all(info, chunks, preds, truths, tol, repeats)
        cold = refine_all(info, chunks, [None] * len(chunks), truths, tol, repeats)
        total = out["inference_seconds"] + warm["seconds"]
        out["tols"][f"{tol:g}"] = {
            "warm": warm, "cold": cold, "warm_total_seconds": total,
            "iterations_saved_mean": cold["iterations_mean"] - warm["iterations_mean"],
            "speedup_total": cold["seconds"] / total}
    out["prediction_error_median"] = float(np.median(relative_errors(np.concatenate(preds),
                                                                     truth)))
    return out


def main(argv=None) -> dict:
    args = parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from mgno.data.schema import open_dataset, read_arrays
    from mgno.train import load_run

    out = args.out.resolve()
    size = sizes(args)
    t0 = time.perf_counter()
    run_dir = given_or_trained_run(args.run, out, n_train=80 if args.quick else 1000,
                                   resolution=size["train_resolution"], net=size["net"],
                                   epochs=size["epochs"])
    run = load_run(run_dir, device="cpu")
    grids = {}
    for g in size["grids"]:
        test = data_file(out / "data", f"refine_{g}", "darcy-smooth", size["n"], g, 200 + g)
        arr = read_arrays(test)
        grids[str(g)] = measure_grid(run, open_dataset(test), arr["inputs"], arr["outputs"],
                                     args.tols, size["batch"], args.repeats)
    result = {"benchmark": "hybrid_refine", "quick": args.quick, "sizes": size,
              "run": str(run_dir), "grids": grids, "seconds": time.perf_counter() - t0,
              "command": " ".join(sys.argv), "machine": machine()}
    emit(result, args.json)
    return result


if __name__ == "__main__":
    main()
