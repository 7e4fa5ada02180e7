"""NS2 experiment: MgNO given the Navier-Stokes forcing as a known input channel.

Tests a hypothesis of issue 12 before any library feature is built for it:
MgNO with periodic padding is shift-equivariant and cannot represent the
fixed forcing ``f = 0.1 (sin 2 pi (x + y) + cos 2 pi (x + y))`` of the NS
data; does handing it ``f`` as a second input channel (on ``x_i = i / n``,
the generator's grid) close the gap to FNO?

The network is registered here, in this process only, as the family
``mgno-forcing`` (MgNO with one more input channel, and the global skip
applied to the vorticity alone), so its run directory is read back by this
script, not by ``mgno eval``. Same recipe, data, evaluation and JSON as
``benchmarks/ns_positional.py``::

    nice -n 5 .venv/bin/python benchmarks/ns_forcing.py --data-dir BENCH/data \\
        --run BENCH/runs/mgno_forcing_s0 --seed 0 \\
        --results benchmarks/results_ns_positional_mgno_forcing_s0.json
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mgno.atomic import atomic_write_json
from mgno.bench import machine_info
from mgno.nn.factory import MODEL_FAMILIES
from mgno.nn.mgno import MgNO
from mgno.pde.navier_stokes import fno_forcing
from mgno.presets import get_preset
from mgno.train import train
from mgno.train.evaluate import evaluate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ns_positional import teacher_forced  # noqa: E402

FAMILY = "mgno-forcing"


class ForcingMgNO(nn.Module):
    """MgNO on ``(w, f)``: the state and the NS forcing on the input's grid.

    Shapes: (batch, 1, n, n) -> (batch, 1, n, n); ``w + MgNO([w, f])``.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        cfg = {k: v for k, v in config.items() if k not in ("model", "skip")}
        cfg["in_channels"] = int(config["in_channels"]) + 1
        self.net = MgNO(**cfg)
        self.config = {**self.net.config, "model": FAMILY,
                       "in_channels": int(config["in_channels"]), "skip": True}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != x.shape[-2]:
            raise ValueError(f"{FAMILY}: expected a square grid, got {tuple(x.shape)}")
        f = torch.as_tensor(fno_forcing(x.shape[-1]), dtype=x.dtype, device=x.device)
        return x + self.net(torch.cat([x, f.expand(x.shape[0], 1, *f.shape)], dim=1))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True, type=Path, help="ns_{train,val,test}.h5")
    p.add_argument("--run", required=True, type=Path, help="run directory (created)")
    p.add_argument("--results", required=True, type=Path, help="JSON file to write")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--n", type=int, default=20, help="trajectories per file, teacher-forced")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    MODEL_FAMILIES[FAMILY] = ForcingMgNO
    net_cfg = {k: v for k, v in get_preset("navier-stokes")["model"].items()
               if k not in ("model", "in_channels", "out_channels", "dim", "grid")}
    d = args.data_dir
    resume = (args.run / "config.json").is_file()
    start = time.time()
    result = train(d / "ns_train.h5", args.run, val=d / "ns_val.h5", preset="navier-stokes",
                   model=FAMILY, model_overrides=net_cfg, resume=resume, progress=True,
                   epochs=args.epochs, lr=1e-3, scheduler_step="step", batch_size=10,
                   seed=args.seed)
    if result.status != "finished":
        return 130
    wall = time.time() - start
    history = [json.loads(line) for line in (args.run / "metrics.jsonl").read_text().splitlines()
               if line.strip()]
    ev = evaluate(args.run, d / "ns_test.h5", device="cpu")
    out = {
        "script": "benchmarks/ns_forcing.py " + " ".join(shlex.quote(a) for a in (
            argv if argv is not None else sys.argv[1:])),
        "threads": args.threads,
        "machine_start": machine_info(args.threads),
        "resumed": resume,
        "train_wall_seconds_this_call": round(wall, 1),
        "model": json.loads((args.run / "config.json").read_text())["model"],
        "parameters": sum(q.numel() for q in ForcingMgNO(
            {**net_cfg, "in_channels": 1, "out_channels": 1, "dim": 2, "grid": [64, 64]}
        ).parameters()),
        "val_curve": [[r.get("epoch"), r.get("val_rel_l2"), r.get("seconds")] for r in history],
        "eval": ev,
        "teacher_forced": {path.name: teacher_forced(args.run, path, args.n)
                           for path in (d / "ns_test.h5", d / "ns_train.h5")},
        "load_avg_end": [round(x, 2) for x in os.getloadavg()],
        "finished_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    atomic_write_json(args.results, out)
    print(f"{args.run.name}: rollout rel. L2 {ev['rel_l2']:.4f}; per step "
          + " ".join(f"{e:.3f}" for e in ev["rel_l2_per_step"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
