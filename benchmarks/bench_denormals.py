"""Training-step time of a trained run's network with and without subnormal floats.

Rebuilds the network of a run directory from ``config.json`` and its weights,
and times forward + backward on random input (batch ``--batch``) with
subnormal floats kept and flushed to zero (``torch.set_flush_denormal``),
alternating, fastest of ``--rounds``. One thread: the setting belongs to the
thread that sets it (see ``mgno.denormals``).

    .venv/bin/python benchmarks/bench_denormals.py BENCH_DIR/runs/darcy/unet --grid 64
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from mgno import build_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--grid", type=int, required=True)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg = json.loads((args.run_dir / "config.json").read_text())["model"]
    net = build_model(cfg)
    weights = load_file(args.run_dir / "model.safetensors")
    net.load_state_dict({k.removeprefix("net."): v for k, v in weights.items()})
    x = torch.randn(args.batch, cfg["in_channels"], args.grid, args.grid,
                    generator=torch.Generator().manual_seed(0))

    def step() -> None:
        net.zero_grad(set_to_none=True)
        net(x).square().mean().backward()

    best = {False: float("inf"), True: float("inf")}
    for _ in range(args.rounds):
        for flush in (False, True):
            torch.set_flush_denormal(flush)
            step()
            t0 = time.perf_counter()
            step()
            best[flush] = min(best[flush], time.perf_counter() - t0)
    torch.set_flush_denormal(False)
    print(json.dumps({"run": str(args.run_dir), "step_s_subnormals_kept": round(best[False], 3),
                      "step_s_flushed": round(best[True], 3), "batch": args.batch,
                      "grid": args.grid}))


if __name__ == "__main__":
    main()
