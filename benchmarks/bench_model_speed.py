"""Time MgNO presets beside neuraloperator's FNO: forward+backward and inference.

Usage (the command behind the table in RESULTS.md)::

    .venv/bin/python benchmarks/bench_model_speed.py --grids 64 211 --batch 8 --repeats 5

For every grid and model it reports the parameter count, milliseconds per
sample of one training step's forward + backward (batch ``--batch``), the
training samples per second, and milliseconds per sample of inference
(``torch.inference_mode``, same batch). Prints a markdown table on stdout.

``--models`` also takes ``ns`` (the navier-stokes preset, periodic) and
``unet`` (mgno's U-Net baseline), and ``KEY-nchw`` for any MgNO key and the
U-Net: the same network in the ordinary NCHW layout (``channels_last=False``),
for comparison::

    .venv/bin/python benchmarks/bench_model_speed.py --grids 64 --models ns ns-nchw unet unet-nchw

``--device cuda`` times on a GPU (synchronising around every timed call),
and ``--bf16`` under bfloat16 autocast, as ``mgno train --bf16``; a model
that fails (FNO's FFTs in bfloat16, say) is reported as failed, not fatal::

    python benchmarks/bench_model_speed.py --grids 64 211 --device cuda --bf16

``--compile`` times ``torch.compile``d models (``nn.Module.compile``, default
inductor settings, as ``mgno train --compile``); the first training step and
the first inference, which compile, are reported apart::

    .venv/bin/python benchmarks/bench_model_speed.py --grids 211 --threads 1 --compile
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections.abc import Callable

import torch
from timing import median_seconds  # benchmarks/timing.py

from mgno import count_parameters, create_model


def fno(width: int = 32, modes: int = 12, layers: int = 4) -> torch.nn.Module:
    """neuraloperator's FNO with the FNO paper's Darcy settings."""
    from neuralop.models import FNO

    return FNO(
        n_modes=(modes, modes),
        in_channels=1,
        out_channels=1,
        hidden_channels=width,
        n_layers=layers,
    )


def unet(channels_last: bool = True) -> torch.nn.Module:
    """mgno's U-Net as the cpu bench profiles use it (width 16, depth 4)."""
    from mgno.nn.baselines import UNet

    return UNet(1, 1, width=16, depth=4, channels_last=channels_last)


def model_builders() -> dict[str, tuple[str, Callable[[], torch.nn.Module]]]:
    """``--models`` keys: (row name, builder)."""
    builders: dict[str, tuple[str, Callable[[], torch.nn.Module]]] = {
        "fno": ("FNO (width 32, 12 modes, 4 layers)", fno),
        "unet": ("U-Net (width 16, depth 4)", unet),
        "unet-nchw": ("U-Net (width 16, depth 4), NCHW", lambda: unet(channels_last=False)),
    }
    for key, preset in (
        ("smooth", "darcy-smooth"),
        ("rough", "darcy-rough"),
        ("ns", "navier-stokes"),
    ):
        builders[key] = (f"MgNO {preset}", lambda p=preset: create_model(p))
        builders[f"{key}-nchw"] = (
            f"MgNO {preset}, NCHW",
            lambda p=preset: create_model(p, channels_last=False),
        )
    return builders


def time_model(
    model: torch.nn.Module,
    grid: int,
    batch: int,
    repeats: int,
    seed: int,
    device: torch.device | None = None,
    bf16: bool = False,
) -> dict:
    """Median seconds of forward+backward and of inference for one batch.

    The first call of each (untimed in the medians; with ``--compile`` it
    compiles) is reported as ``first_train_s`` and ``first_infer_s``.
    ``bf16`` runs the forward passes under bfloat16 autocast on ``device``.
    """
    device = torch.device("cpu") if device is None else device
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, 1, grid, grid, generator=g).to(device)
    y = torch.rand(batch, 1, grid, grid, generator=g).to(device)
    model.to(device)

    def autocast():
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def train_step() -> None:
        model.zero_grad(set_to_none=True)
        with autocast():
            out = model(x)
        torch.nn.functional.mse_loss(out.float(), y).backward()
        sync()

    def infer() -> None:
        with torch.inference_mode(), autocast():
            model(x)
        sync()

    model.train()
    first_train = median_seconds(train_step, 1, warmup=0)
    t_train = median_seconds(train_step, repeats)
    model.eval()
    first_infer = median_seconds(infer, 1, warmup=0)
    t_infer = median_seconds(infer, repeats)
    return {
        "first_train_s": first_train,
        "first_infer_s": first_infer,
        "train_ms_per_sample": 1e3 * t_train / batch,
        "train_samples_per_s": batch / t_train,
        "infer_ms_per_sample": 1e3 * t_infer / batch,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grids", type=int, nargs="+", default=[64, 211])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the raw numbers to this file")
    builders = model_builders()
    parser.add_argument("--models", nargs="+", choices=list(builders),
                        default=["smooth", "rough", "fno"],
                        help="*-nchw: the same network with channels_last=False")
    parser.add_argument("--compile", action="store_true", help="torch.compile every model")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for grid in args.grids:
        for key in args.models:
            name, build = builders[key]
            if args.compile:
                name += ", compiled"
            if args.bf16:
                name += ", bf16"
            torch.manual_seed(args.seed)
            model = build()
            if args.compile:
                model.compile()
            row = {"model": name, "grid": grid, "parameters": count_parameters(model)}
            try:
                row.update(
                    time_model(model, grid, args.batch, args.repeats, args.seed, device, args.bf16)
                )
            except RuntimeError as err:  # e.g. an op without a bfloat16 kernel
                row["failed"] = str(err).splitlines()[0][:200]
            rows.append(row)
            print(f"{grid}x{grid} {name}: {row}", file=sys.stderr)
    machine = (
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, python {platform.python_version()}"
    )
    if device.type == "cuda":
        machine += f", {torch.cuda.get_device_name(device)}"
    print(f"Machine: {machine}; batch {args.batch}, median of {args.repeats} repeats.\n")
    print(
        "| grid | model | parameters | fwd+bwd ms/sample | train samples/s | inference ms/sample "
        "| first step s (train / inference) |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        if "failed" in r:
            print(f"| {r['grid']}x{r['grid']} | {r['model']} | failed: {r['failed']} |||||")
            continue
        print(
            f"| {r['grid']}x{r['grid']} | {r['model']} | {r['parameters'] / 1e6:.3f} M | "
            f"{r['train_ms_per_sample']:.1f} | {r['train_samples_per_s']:.1f} | "
            f"{r['infer_ms_per_sample']:.1f} | {r['first_train_s']:.1f} / "
            f"{r['first_infer_s']:.1f} |"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": machine, "args": vars(args), "rows": rows}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
