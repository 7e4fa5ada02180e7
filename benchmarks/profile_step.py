"""Where an MgNO training step spends its time (torch.profiler).

Usage (the command behind "Where the time goes" in RESULTS.md)::

    .venv/bin/python benchmarks/profile_step.py --preset darcy-rough --grid 64 --threads 1

Prints the wall time of one step (forward + backward, batch ``--batch``), the
share of convolution forward/backward, and the convolutions grouped by shape
(input, weight), costliest first.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
from torch.profiler import ProfilerActivity, profile

from mgno import create_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="darcy-rough")
    parser.add_argument("--grid", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rows", type=int, default=12)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = create_model(args.preset)
    x = torch.rand(args.batch, 1, args.grid, args.grid)

    def step() -> None:
        model.zero_grad(set_to_none=True)
        model(x).square().mean().backward()

    step()
    start = time.perf_counter()
    step()
    print(
        f"{args.preset} {args.grid}x{args.grid} batch {args.batch}, "
        f"{torch.get_num_threads()} threads: {time.perf_counter() - start:.3f} s per step"
    )
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        step()
    events = prof.key_averages(group_by_input_shape=True)
    total = sum(e.self_cpu_time_total for e in events)
    share: dict[str, float] = {}
    rows = []
    for e in events:
        share[e.key] = share.get(e.key, 0.0) + e.self_cpu_time_total
        if e.key in ("aten::convolution_backward", "aten::mkldnn_convolution"):
            shapes = [s for s in e.input_shapes if s][:2]
            rows.append((e.self_cpu_time_total / 1e3, e.key, e.count, shapes))
    for key, t in sorted(share.items(), key=lambda kv: -kv[1])[:8]:
        print(f"{100 * t / total:5.1f}%  {key}")
    print("\nconvolutions by (input, weight) shape, costliest first:")
    for ms, key, count, shapes in sorted(rows, key=lambda r: -r[0])[: args.rows]:
        print(f"{ms:8.1f} ms  {count:3d} x {key:28s} {shapes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
