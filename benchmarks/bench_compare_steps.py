"""Training-step cost of trained runs' networks at equal load (interleaved rounds).

`mgno bench` times whole epochs one model after another, so on a shared
machine a change of load between two models' runs shows up as a speed
difference. This script rebuilds the networks of some run directories from
their ``config.json`` and times forward + backward + Adam steps on random
input, model after model in each round, keeping each model's fastest round:
the ratio between models is then measured under the same load. `mgno bench`
does the same after training (column "step ms/sample (equal load)"); this
script reruns it with other rounds, grids or threads.

    .venv/bin/python benchmarks/bench_compare_steps.py BENCH_DIR/runs/darcy mgno fno \
        --grid 32 --batch 8 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

from mgno.bench import interleaved_step_costs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_root", type=Path, help="folder holding one run directory per model")
    p.add_argument("names", nargs="+", help="run directories (model names) inside run_root")
    p.add_argument("--grid", type=int, required=True)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    res = interleaved_step_costs(
        {name: args.run_root / name for name in args.names}, (args.grid, args.grid), args.batch,
        rounds=args.rounds, steps=args.steps, seed=args.seed,
    )
    print(json.dumps({"ms_per_sample": {k: round(v, 1) for k, v in res.items()},
                      "threads": args.threads, "load_avg": os.getloadavg()}))


if __name__ == "__main__":
    main()
