"""One-step errors of trained trajectory runs, frame by frame (teacher-forced).

`mgno eval` scores a rollout, where one bad step spoils all the later ones.
This script asks each run for a single step from the true frame ``t`` to
``t + 1``, for every ``t`` of the files given, and prints the mean relative
L2 error per ``t`` beside that of persistence (predicting ``u_{t+1} = u_t``).
It is how the NS2 runs of benchmarks/RESULTS.md were found to fail on the
step from the initial field (frame 0) alone::

    .venv/bin/python benchmarks/ns_step_errors.py BENCH/runs/ns/mgno BENCH/runs/ns/fno \
        --data BENCH/data/ns_train.h5 BENCH/data/ns_test.h5 --n 20

Runs with a window of one frame only (the ``one-step`` protocol); frames are
indexed as stored, whatever the run's ``start_frame``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from mgno.data.datasets import load_arrays
from mgno.train import load_run


def relative_l2(pred: torch.Tensor, true: torch.Tensor) -> float:
    """Mean over samples of ``||pred - true|| / ||true||``; shapes (B, ...)."""
    num = (pred - true).flatten(1).norm(dim=1)
    return float((num / true.flatten(1).norm(dim=1)).mean())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="run directories")
    p.add_argument("--data", nargs="+", required=True, type=Path, help="trajectory files (.h5)")
    p.add_argument("--n", type=int, default=20, help="trajectories per file (the first n)")
    p.add_argument("--which", choices=["best", "last"], default="best")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    files = {path: load_arrays(path, 0, args.n).arrays["trajectories"] for path in args.data}
    n_times = min(traj.shape[1] for traj in files.values())
    steps = list(range(n_times - 1))
    print("| run | data | " + " | ".join(f"t={t}" for t in steps) + " |")
    print("|---|---|" + "---|" * len(steps))
    for path, traj in files.items():
        row = [relative_l2(traj[:, t], traj[:, t + 1]) for t in steps]
        print(f"| persistence | {path.name} | " + " | ".join(f"{e:.3f}" for e in row) + " |")
    for run_dir in args.runs:
        run = load_run(run_dir, which=args.which, device="cpu")
        if run.window != 1:
            print(f"{run_dir}: window of {run.window} frames, expected 1", file=sys.stderr)
            return 2
        predictor = run.predictor.eval()
        for path, traj in files.items():
            with torch.inference_mode():
                row = [
                    relative_l2(predictor.step(traj[:, t : t + 1]), traj[:, t + 1]) for t in steps
                ]
            print(f"| {run_dir.name} | {path.name} | " + " | ".join(f"{e:.3f}" for e in row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
