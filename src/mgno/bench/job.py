"""The child side of ``mgno bench``: run one job file.

::

    python -m mgno.bench.job JOB.json

reads a job written by :func:`mgno.bench.spec.write_job`, validates it
(:func:`mgno.bench.spec.read_job`), runs it and writes its outcome to the
job's ``result`` path (atomically). Exit status 0, or 130 for a training
stopped by SIGTERM (it saved a checkpoint first), 2 for a job file that
does not validate (one line), or 1 on an error while running it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mgno.atomic import atomic_write_json
from mgno.bench.measure import interleaved_step_costs, load_average, measure_run, utc_now
from mgno.bench.spec import Job, MeasureJob, StepsJob, TrainJob, read_job
from mgno.errors import InputError


def _threads(threads: int | None) -> None:
    import torch

    if threads:
        torch.set_num_threads(int(threads))


def _train(job: TrainJob) -> int:
    import torch

    from mgno.train import train

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    spec = job.run
    val = None if spec.val_data is None else spec.val_data["path"]
    result = train(
        spec.train_data["path"], job.out, val=val, preset=spec.preset, model=spec.family,
        model_overrides=dict(spec.model_overrides), resume=job.resume, progress=job.progress,
        **spec.recipe,
    )
    atomic_write_json(Path(job.result), {
        "status": result.status,
        "epochs_done": result.epochs_done,
        "cuda_peak_bytes": torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None,
    })
    return 130 if result.status == "interrupted" else 0


def _measure(job: MeasureJob) -> int:
    atomic_write_json(Path(job.result), measure_run(Path(job.run_dir), Path(job.test), job.device))
    return 0


def _steps(job: StepsJob) -> int:
    import torch

    from mgno.data.schema import open_dataset

    device = job.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    grid = open_dataset(job.test).grid
    costs = interleaved_step_costs({k: Path(v) for k, v in job.runs.items()}, grid, job.batch,
                                   device=device)
    out: dict[str, Any] = {
        "ms_per_sample": costs, "grid": list(grid), "batch": job.batch, "device": device,
        "threads": torch.get_num_threads(), "load_avg": load_average(), "date_utc": utc_now(),
    }
    atomic_write_json(Path(job.result), out)
    return 0


def run_job(job: Job) -> int:
    """Run a validated job in this process; returns the exit status."""
    _threads(job.threads)
    if isinstance(job, TrainJob):
        return _train(job)
    if isinstance(job, MeasureJob):
        return _measure(job)
    return _steps(job)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mgno.bench.job JOB.json``: read, validate and run one job."""
    from mgno.denormals import flush_denormals

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m mgno.bench.job JOB.json (a job written by mgno bench)",
              file=sys.stderr)
        return 2
    try:
        job = read_job(os.fspath(args[0]))
    except (InputError, FileNotFoundError) as err:
        print(f"mgno bench job: error: {err}", file=sys.stderr)
        return 2
    flush_denormals()
    return run_job(job)


if __name__ == "__main__":
    sys.exit(main())
