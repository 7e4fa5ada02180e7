"""Training-step cost of trained runs' networks at equal load (interleaved rounds).

`mgno bench` times whole epochs one model after another, so on a shared
machine a change of load between two models' runs shows up as a speed
difference. This script rebuilds the networks of some run directories from
their ``config.json`` and times forward + backward + Adam steps on random
input, model after model in each round, keeping each model's fastest round:
the ratio between models is then measured under the same load.

    .venv/bin/python benchmarks/bench_compare_steps.py BENCH_DIR/runs/darcy mgno fno \
        --grid 32 --batch 8 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from mgno import build_model


def step_ms_per_sample(
    run_root: Path, names: list[str], grid: int, batch: int, rounds: int, steps: int, seed: int
) -> dict[str, float]:
    """Fastest round's milliseconds per sample of one training step, per run."""
    torch.manual_seed(seed)
    models = {}
    cin = 1
    for name in names:
        cfg = json.loads((run_root / name / "config.json").read_text())["model"]
        net = build_model(cfg)
        models[name] = (net, torch.optim.Adam(net.parameters()))
        cin = cfg["in_channels"]
    x = torch.randn(batch, cin, grid, grid)
    best = {name: float("inf") for name in models}
    for _ in range(rounds):
        for name, (net, opt) in models.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                opt.zero_grad()
                net(x).square().mean().backward()
                opt.step()
            best[name] = min(best[name], (time.perf_counter() - t0) / steps / batch * 1000)
    return best


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
    res = step_ms_per_sample(args.run_root, args.names, args.grid, args.batch, args.rounds,
                             args.steps, args.seed)
    print(json.dumps({"ms_per_sample": {k: round(v, 1) for k, v in res.items()},
                      "threads": args.threads, "load_avg": os.getloadavg()}))


if __name__ == "__main__":
    main()
