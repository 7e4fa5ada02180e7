"""Train one Navier-Stokes variant on a bench's data (NS2 or 10 -> 10) and record its errors.

The cpu profile's NS task (``mgno bench --profile cpu --tasks ns``): 64x64,
100 / 10 / 20 trajectories, 12 epochs, lr 1e-3 OneCycle stepped per batch,
batch 10, the ``navier-stokes`` preset's recipe (one step from frame 1), one
thread. This script runs the same ``mgno train`` command with the options
given after ``--`` (family, seed, ``--positional coords``...), then

* ``mgno eval RUN --data TEST --json``: the 10-step rollout error from frame 1
  and its per-step errors (rolled out);
* single steps from the true frame t (teacher-forced, best-validation
  weights, as ``benchmarks/ns_step_errors.py``) on the first ``--n``
  trajectories of the test and training files;

and writes everything, with the exact commands, to one JSON file::

    nice -n 5 .venv/bin/python benchmarks/ns_positional.py --data-dir BENCH/data \\
        --run BENCH/runs/mgno_coords_s0 \\
        --results benchmarks/results_ns_positional_mgno_coords_s0.json \\
        -- --model mgno --seed 0 --positional coords

The data are the bench's (``BENCH/data/ns_{train,val,test}.h5``, made by
``mgno bench --profile cpu --tasks ns`` or the same ``mgno generate`` calls;
``--prefix ns10`` takes the ``ns10`` task's files). Options after ``--`` come
after the recipe, so they override it (``--epochs 10`` for the cpu-quick
profile's task). ``--n 0`` leaves out the teacher-forced steps (the 10 -> 10
protocol has no single step from one frame). The NS 10 -> 10 seeds 1 and 2 of
benchmarks/RESULTS.md::

    .venv/bin/python benchmarks/ns_positional.py --data-dir BENCH/data --prefix ns10 --n 0 \\
        --run RUN --results JSON -- --model mgno --seed 1 --protocol 10-10 \\
        --steps-in 10 --steps-out 10 --start-frame 1

An interrupted training is resumed when the script is run again.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import torch

from mgno.atomic import atomic_write_json
from mgno.bench import machine_info
from mgno.data.datasets import load_arrays
from mgno.train import load_run

#: The cpu profile's NS recipe (src/mgno/bench.py, ``_cpu_profile``).
RECIPE = ["--preset", "navier-stokes", "--epochs", "12", "--lr", "0.001",
          "--scheduler-step", "step", "--batch-size", "10"]


def relative_l2(pred: torch.Tensor, true: torch.Tensor) -> float:
    """Mean over samples of ``||pred - true|| / ||true||``; shapes (B, ...)."""
    num = (pred - true).flatten(1).norm(dim=1)
    return float((num / true.flatten(1).norm(dim=1)).mean())


def teacher_forced(run_dir: Path, path: Path, n: int) -> dict[str, list[float]]:
    """Single-step errors from every true frame t of the first ``n`` trajectories.

    Returns ``{"model": [...], "persistence": [...]}``, entry t the step t -> t + 1
    (frames indexed as stored: t = 0 is the initial field).
    """
    traj = load_arrays(path, 0, n).arrays["trajectories"]
    predictor = load_run(run_dir, which="best", device="cpu").predictor.eval()
    steps = range(traj.shape[1] - 1)
    with torch.inference_mode():
        model = [relative_l2(predictor.step(traj[:, t : t + 1]), traj[:, t + 1]) for t in steps]
    persistence = [relative_l2(traj[:, t], traj[:, t + 1]) for t in steps]
    return {"model": model, "persistence": persistence}


def _mgno(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "mgno.cli", *args]
    return subprocess.run(argv, env=env, stdout=subprocess.PIPE, text=True, check=False)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", required=True, type=Path, help="PREFIX_{train,val,test}.h5")
    p.add_argument("--prefix", default="ns", help="file names' prefix (default ns; ns10)")
    p.add_argument("--run", required=True, type=Path, help="run directory (created)")
    p.add_argument("--results", required=True, type=Path, help="JSON file to write")
    p.add_argument("--n", type=int, default=20,
                   help="trajectories per file, teacher-forced (0: none)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("train_args", nargs=argparse.REMAINDER, help="after --: mgno train options")
    args = p.parse_args(argv)
    extra = [a for a in args.train_args if a != "--"]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads),
           "MKL_NUM_THREADS": str(args.threads)}
    torch.set_num_threads(args.threads)
    d, pre = args.data_dir, args.prefix
    train_args = ["train", "--data", str(d / f"{pre}_train.h5"), "--val", str(d / f"{pre}_val.h5"),
                  "--out", str(args.run), *RECIPE, *extra, "--quiet"]
    resume = (args.run / "config.json").is_file()
    start = time.time()
    done = _mgno(train_args + (["--resume"] if resume else []), env)
    if done.returncode != 0:
        print(f"mgno train: exit status {done.returncode}", file=sys.stderr)
        return done.returncode
    wall = time.time() - start
    eval_args = ["eval", str(args.run), "--data", str(d / f"{pre}_test.h5"), "--json"]
    evaluated = _mgno(eval_args, env)
    if evaluated.returncode != 0:
        return evaluated.returncode
    history = [json.loads(line) for line in (args.run / "metrics.jsonl").read_text().splitlines()
               if line.strip()]
    config = json.loads((args.run / "config.json").read_text())
    result = {
        "script": "benchmarks/ns_positional.py " + " ".join(shlex.quote(a) for a in (
            argv if argv is not None else sys.argv[1:])),
        "train_command": "mgno " + " ".join(shlex.quote(a) for a in train_args),
        "eval_command": "mgno " + " ".join(shlex.quote(a) for a in eval_args),
        "threads": args.threads,
        "machine_start": machine_info(args.threads),
        "resumed": resume,
        "train_wall_seconds_this_call": round(wall, 1),
        "model": config["model"],
        "val_curve": [[r.get("epoch"), r.get("val_rel_l2"), r.get("seconds")] for r in history],
        "eval": json.loads(evaluated.stdout),
        "teacher_forced": {} if args.n == 0 else {
            path.name: teacher_forced(args.run, path, args.n)
            for path in (d / f"{pre}_test.h5", d / f"{pre}_train.h5")},
        "load_avg_end": [round(x, 2) for x in os.getloadavg()],
        "finished_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    atomic_write_json(args.results, result)
    ev = result["eval"]
    print(f"{args.run.name}: rollout rel. L2 {ev.get('rel_l2'):.4f}; per step "
          + " ".join(f"{e:.3f}" for e in ev.get("rel_l2_per_step", [])))
    for name, errors in result["teacher_forced"].items():
        print(f"teacher-forced ({name}): " + " ".join(f"{e:.3f}" for e in errors["model"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
