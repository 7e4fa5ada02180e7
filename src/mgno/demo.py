"""What ``make demo`` runs: a preset's summary and a forward pass on a real-sized grid."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from mgno.nn.factory import build_model
from mgno.nn.summary import format_summary, summarize_preset
from mgno.presets import get_preset


def run_demo(out_dir: str | Path = "demo_out", seed: int = 0) -> dict:
    """Summarise the darcy-smooth preset and time one forward pass at 211x211.

    Returns a dict with the parameter count, output shape and seconds taken.
    """
    del out_dir  # nothing is written yet
    print(format_summary(summarize_preset("darcy-smooth")))
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = build_model(get_preset("darcy-smooth")["model"]).eval()
    x = torch.rand(2, 1, 211, 211, generator=generator)
    start = time.perf_counter()
    with torch.inference_mode():
        y = model(x)
    seconds = time.perf_counter() - start
    print(
        f"forward pass: input {tuple(x.shape)} -> output {tuple(y.shape)} in {seconds:.3f} s",
        file=sys.stderr,
    )
    return {"output_shape": list(y.shape), "seconds": seconds}
