"""What the bench measures: test metrics, inference time, equal-load step cost, machine.

The functions here run inside the bench's child processes (see
:mod:`mgno.bench.job`) or in a script (benchmarks/bench_compare_steps.py);
none of them writes files. :func:`summarise` turns a run's per-epoch records
and the bench's attempts into the row of the table.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mgno.train.run_dir import RunDir


def machine_info(threads: int | None = None) -> dict[str, Any]:
    """CPU model, cores, load average, torch/neuraloperator versions, threads, GPU."""
    import torch

    from mgno import __version__

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        from importlib.metadata import version

        neuralop = version("neuraloperator")
    except Exception:  # noqa: BLE001 - informational only
        neuralop = "unknown"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_avg": load_average(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "neuraloperator": neuralop,
        "mgno": __version__,
        "torch_threads": threads if threads is not None else torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "date_utc": utc_now(),
    }


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where the system has none)."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def utc_now() -> str:
    """The time as ``YYYY-MM-DD HH:MM UTC``."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """The run's config as a dict ({} when absent)."""
    run = RunDir(run_dir)
    return run.read_config() if run.has_config() else {}


def history(run_dir: Path) -> list[dict[str, Any]]:
    """The run's per-epoch records ([] when none yet)."""
    return RunDir(run_dir).read_metrics()


def inference_ms_per_sample(
    run_dir: Path, test: Path, *, device: str = "auto", repeats: int = 2
) -> float:
    """Milliseconds per test sample of the trained predictor (normalisers included).

    Steady data: one forward pass; trajectories: the whole rollout that
    ``mgno eval`` scores (``Task.rollout_inputs``). One warm-up batch, then the
    best of ``repeats`` passes.
    """
    import torch

    from mgno.data.datasets import load_arrays
    from mgno.train import load_run

    run = load_run(run_dir, device=device)
    x, _truth, steps = run.task.rollout_inputs(load_arrays(test).arrays, Path(test))
    bs = run.train_config.eval_batch_size or run.train_config.batch_size
    dev = run.device

    def one(batch: torch.Tensor) -> None:
        run.task.apply(run.predictor, batch.to(dev), steps)

    best = float("inf")
    with torch.no_grad():
        one(x[:bs])
        for _ in range(max(1, repeats)):
            _sync(dev)
            t0 = time.perf_counter()
            for chunk in x.split(bs):
                one(chunk)
            _sync(dev)
            best = min(best, time.perf_counter() - t0)
    return 1000.0 * best / len(x)


def _sync(dev: Any) -> None:
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def measure_run(run_dir: Path, test: Path, device: str) -> dict[str, Any]:
    """Test metrics (``mgno eval``), trainable parameters and inference time of a run."""
    from mgno.train import evaluate, load_run

    res = evaluate(run_dir, test, device=device)
    run = load_run(run_dir, device="cpu")
    params = sum(p.numel() for p in run.predictor.parameters() if p.requires_grad)
    return {
        "rel_l2": res.get("rel_l2"),
        "rel_h1": res.get("rel_h1"),
        "rel_h1_fourier": res.get("rel_h1_fourier"),
        "rel_l2_per_step": res.get("rel_l2_per_step"),
        "test_epoch": res.get("epoch"),
        "n_test": res.get("n_samples"),
        "parameters": params,
        "inference_ms_per_sample": round(inference_ms_per_sample(run_dir, test, device=device), 3),
    }


def interleaved_step_costs(
    run_dirs: dict[str, Path],
    grid: Sequence[int],
    batch: int,
    *,
    rounds: int = 4,
    steps: int = 2,
    device: str = "cpu",
    seed: int = 0,
) -> dict[str, float]:
    """Milliseconds per sample of one training step of each run's network, at equal load.

    Whole-epoch timings of runs trained one after another carry whatever load
    the machine had at the time. Here every network is rebuilt from its run's
    config and timed on the same random input, (batch, in_channels, *grid):
    forward, backward and an Adam step, model after model within each round,
    keeping each model's fastest round. The ratios are then measured under
    the same load.
    """
    import torch

    from mgno.nn import build_model

    dev = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    nets = {}
    for name, run_dir in run_dirs.items():
        cfg = read_run_config(Path(run_dir))["model"]
        net = build_model(cfg).to(dev)
        x = torch.randn(batch, cfg["in_channels"], *grid, generator=gen).to(dev)
        nets[name] = (net, torch.optim.Adam(net.parameters()), x)
    best = dict.fromkeys(nets, float("inf"))
    for _ in range(rounds):
        for name, (net, opt, x) in nets.items():
            _sync(dev)
            t0 = time.perf_counter()
            for _ in range(steps):
                opt.zero_grad(set_to_none=True)
                net(x).square().mean().backward()
                opt.step()
            _sync(dev)
            best[name] = min(best[name], (time.perf_counter() - t0) / steps / batch * 1e3)
    return {name: round(ms, 3) for name, ms in best.items()}


def summarise(run_dir: Path, runs: list[dict], measured: dict | None) -> dict[str, Any]:
    """One model's row: epochs, seconds per epoch, validation curve, peak memory, metrics."""
    hist = history(run_dir)
    secs = [r["seconds"] for r in hist if "seconds" in r]
    vals = [r.get("val_rel_l2") for r in hist]
    best = min((v for v in vals if v is not None), default=None)
    rss = [r["max_rss_mib"] for r in runs if r.get("max_rss_mib") is not None]
    gpu = [r["cuda_peak_mib"] for r in runs if r.get("cuda_peak_mib") is not None]
    return {
        "epochs_done": len(hist),
        "seconds_per_epoch_median": round(statistics.median(secs), 3) if secs else None,
        "seconds_per_epoch_min": round(min(secs), 3) if secs else None,
        "train_seconds": round(sum(secs), 2) if secs else None,
        "best_val_rel_l2": best,
        "val_curve": [[r["epoch"], r.get("val_rel_l2"), r.get("seconds")] for r in hist],
        "peak_rss_mib": max(rss) if rss else None,
        "peak_gpu_mib": max(gpu) if gpu else None,
        **(measured or {}),
    }
