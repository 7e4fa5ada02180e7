"""Train MgNO on a small generated Darcy set and report accuracy and time per epoch.

Usage (the figures in benchmarks/RESULTS.md, section "Training")::

    .venv/bin/python benchmarks/bench_train_darcy.py --out /tmp/bench_train \
        [--resolution 33] [--n-train 256] [--n-test 64] [--epochs 40] [--threads 2]

Prints one JSON object: the options, test rel. L2 / rel. H1, best epoch,
seconds per epoch (median) and total seconds. Uses :func:`mgno.demo.run_demo`,
so it measures exactly what ``make demo`` runs.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys

import torch

from mgno.demo import DEMO, run_demo
from mgno.train.run_dir import read_metrics


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    for key, value in DEMO.items():
        p.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=value)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    options = {k: getattr(args, k) for k in DEMO}
    res = run_demo(args.out, seed=args.seed, **options)
    history = read_metrics(res["run_dir"])
    report = {
        "options": options,
        "seed": args.seed,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "test_rel_l2": res["rel_l2"],
        "test_rel_h1": res["rel_h1"],
        "best_epoch": max((h["epoch"] for h in history if h.get("best")), default=0),
        "seconds_per_epoch_median": statistics.median(h["seconds"] for h in history),
        "seconds_total": res["seconds"],
    }
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
