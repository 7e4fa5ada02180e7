"""Achieved FLOP/s of an MgNO training step against one dense 3x3 convolution.

Usage (the command behind the table in RESULTS.md)::

    .venv/bin/python benchmarks/bench_flops.py --grids 64 211 --batch 8

The FLOPs of one forward+backward step are counted by
``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matrix
products; element-wise work is not counted, so the ratio is conservative).
The reference is a single ``channels x channels`` 3x3 convolution on the same
grid and batch, forward+backward, the best case for the same hardware and
library. The ratio says how close MgNO's many small convolutions (coarse grids,
stride 2, transposed) come to that bound.
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Callable

import torch
import torch.nn.functional as F
from timing import median_seconds  # benchmarks/timing.py
from torch.utils.flop_counter import FlopCounterMode

from mgno import create_model


def _count(fn: Callable[[], None]) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def measure(preset: str, grid: int, batch: int, repeats: int, seed: int) -> dict:
    """FLOPs, seconds and FLOP/s of an MgNO step and of the dense-convolution bound."""
    torch.manual_seed(seed)
    model = create_model(preset)
    channels = model.config["channels"]
    x = torch.rand(batch, 1, grid, grid)

    def step() -> None:
        model.zero_grad(set_to_none=True)
        model(x).square().mean().backward()

    u = torch.rand(batch, channels, grid, grid).contiguous(memory_format=torch.channels_last)
    u.requires_grad_(True)
    w = torch.randn(channels, channels, 3, 3, requires_grad=True)

    def dense() -> None:
        F.conv2d(u, w, padding=1).square().mean().backward()

    out = {"preset": preset, "grid": grid, "channels": channels}
    for name, fn in (("mgno", step), ("dense", dense)):
        flops = _count(fn)
        seconds = median_seconds(fn, repeats)
        out[f"{name}_gflop"] = flops / 1e9
        out[f"{name}_s"] = seconds
        out[f"{name}_gflops"] = flops / seconds / 1e9
    out["ratio"] = out["mgno_gflops"] / out["dense_gflops"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", nargs="+", default=["darcy-smooth", "darcy-rough"])
    parser.add_argument("--grids", type=int, nargs="+", default=[64, 211])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for grid in args.grids:
        for preset in args.presets:
            rows.append(measure(preset, grid, args.batch, args.repeats, args.seed))
            print(rows[-1], file=sys.stderr)
    print(
        f"Machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch "
        f"threads, torch {torch.__version__}; batch {args.batch}, median of {args.repeats}.\n"
    )
    print("| grid | preset | MgNO GFLOP/step | MgNO GFLOP/s | dense 3x3 GFLOP/s | ratio |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['grid']}x{r['grid']} | {r['preset']} | {r['mgno_gflop']:.2f} | "
            f"{r['mgno_gflops']:.1f} | {r['dense_gflops']:.1f} | {100 * r['ratio']:.0f}% |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
