"""Peak memory of one training step: MgNO presets beside neuraloperator's FNO.

Usage (the command behind the table in RESULTS.md)::

    .venv/bin/python benchmarks/bench_memory.py --grid 421 --batch 8

Every configuration runs in a fresh child process (``--child``) that builds the
model, runs one forward+backward step on a random batch and reports its peak
resident memory (``ru_maxrss``) minus the resident memory before the step, so
the figure is the step's own working set (activations, gradients, workspace),
not the interpreter and libraries. On a GPU it reports
``torch.cuda.max_memory_allocated`` instead.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

CONFIGS = {
    "MgNO darcy-smooth": {"preset": "darcy-smooth"},
    "MgNO darcy-smooth, activation checkpointing": {
        "preset": "darcy-smooth",
        "overrides": {"checkpointing": True},
    },
    "MgNO darcy-rough": {"preset": "darcy-rough"},
    "FNO (width 32, 12 modes, 4 layers)": {"fno": True},
}


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def child(spec: dict, grid: int, batch: int, device: str) -> dict:
    """Build, run one training step, return peak memory in MiB."""
    import torch

    from mgno import build_model, create_model

    torch.manual_seed(0)
    if spec.get("fno"):
        model = build_model({"model": "fno", "in_channels": 1, "out_channels": 1})
    else:
        model = create_model(spec["preset"], **spec.get("overrides", {}))
    model = model.to(device)
    x = torch.rand(batch, 1, grid, grid, device=device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _rss_mb()
    model(x).square().mean().backward()
    if device.startswith("cuda"):
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base
    return {"peak_mib": peak}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grid", type=int, default=421)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child), args.grid, args.batch, args.device)))
        return 0
    rows = []
    for name, spec in CONFIGS.items():
        cmd = [
            sys.executable,
            __file__,
            "--grid",
            str(args.grid),
            "--batch",
            str(args.batch),
            "--device",
            args.device,
            "--child",
            json.dumps(spec),
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        rows.append((name, json.loads(out.strip().splitlines()[-1])["peak_mib"]))
        print(f"{name}: {rows[-1][1]:.0f} MiB", file=sys.stderr)
    print(
        f"Grid {args.grid}x{args.grid}, batch {args.batch}, device {args.device}: peak memory "
        "of one forward+backward step.\n"
    )
    print("| model | peak MiB |")
    print("|---|---|")
    for name, mib in rows:
        print(f"| {name} | {mib:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
