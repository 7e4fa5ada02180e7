"""Across resolutions: train on one grid, evaluate on three, MgNO (each strategy) vs FNO.

Darcy smooth data at 33x33, 65x65 and 129x129 nodes (32, 64 and 128 cells: the
node convention of docs/data.md) generated from the SAME coefficient fields:
same seed, same solve grid (257x257), subsampled by 8, 4 and 2. The script
checks that the coarse files are exactly the fine ones subsampled.

Usage (the table in benchmarks/RESULTS.md, section "Across resolutions")::

    .venv/bin/python benchmarks/bench_resolution.py --out /tmp/bench_res \
        [--threads 1] [--train-resolution 33] [--models mgno fno] [--epochs 40] \
        [--json benchmarks/results_resolution.json]

Stages are cached in ``--out`` (data files and finished runs are reused), so
the models can be trained by separate processes (``--stage train --models
fno``) and evaluated by a last ``--stage eval``. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

RESOLUTIONS = (33, 65, 129)
SOLVE_RESOLUTION = 257
MGNO = {"channels": 16, "layers": 4}
FNO = {"width": 32, "modes": 12, "layers": 4}


def data_files(out: Path, n_train: int, n_test: int, train_res: list[int], seed: int) -> dict:
    """Generate (or reuse) the train files at ``train_res`` and test files at every resolution."""
    from mgno.data.generate import generate_dataset
    from mgno.data.schema import open_dataset

    folder = out / "data"
    folder.mkdir(parents=True, exist_ok=True)
    files: dict = {"train": {}, "test": {}}
    jobs = [("train", r, n_train, seed) for r in train_res]
    jobs += [("test", r, n_test, seed + 1) for r in RESOLUTIONS]
    for split, r, n, s in jobs:
        path = folder / f"{split}_r{r}.h5"
        if not path.is_file():
            t0 = time.perf_counter()
            generate_dataset(
                "darcy-smooth", n, r, s, path, params={"solve_resolution": SOLVE_RESOLUTION},
                progress=False, command=f"bench_resolution.py ({split}, seed {s})",
            )
            print(f"generated {path} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        assert open_dataset(path).n_samples == n
        files[split][r] = path
    return files


def same_fields(files: dict) -> dict:
    """Max |difference| between each test file and the finest one subsampled to its grid."""
    from mgno.data.datasets import load_arrays

    fine = load_arrays(files["test"][max(RESOLUTIONS)]).arrays
    out = {}
    for r in RESOLUTIONS:
        arr = load_arrays(files["test"][r]).arrays
        k = (max(RESOLUTIONS) - 1) // (r - 1)
        out[r] = {
            key: float((arr[key] - fine[key][..., ::k, ::k]).abs().max())
            for key in ("inputs", "outputs")
        }
    return out


def run_dir_of(out: Path, model: str, res: int, epochs: int) -> Path:
    """Where the run of ``model`` trained at ``res`` lives."""
    return out / f"run_{model}_r{res}_e{epochs}"


def train_one(out: Path, files: dict, model: str, res: int, args) -> Path:
    """Train ``model`` at ``res`` (reused when the run already finished)."""
    from mgno.train import train

    run = run_dir_of(out, model, res, args.epochs)
    if (run / "model.safetensors").is_file() and (run / "metrics.jsonl").is_file():
        lines = (run / "metrics.jsonl").read_text().splitlines()
        if len(lines) >= args.epochs:
            return run
    overrides = MGNO if model == "mgno" else FNO
    t0 = time.perf_counter()
    result = train(
        files["train"][res], run, model=model, model_overrides=dict(overrides), seed=args.seed,
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, scheduler_step="step",
        val_fraction=0.1, progress=False,
    )
    if result.status != "finished":
        raise RuntimeError(f"training {model} at {res} stopped: {result.status}")
    (run / "bench_seconds.txt").write_text(f"{time.perf_counter() - t0:.1f}\n")
    return run


def evaluate_all(out: Path, files: dict, models: list[str], train_res: list[int], args) -> list:
    """Rel. L2 of every finished (model, training grid, strategy) run at every test grid."""
    rows: list = []
    for model in models:
        strategies = ("resample", "multilevel", "native") if model == "mgno" else (
            "resample", "native")
        for res in train_res:
            for run in sorted(out.glob(f"run_{model}_r{res}_e*")):
                secs = run / "bench_seconds.txt"
                if secs.is_file():
                    seconds = float(secs.read_text())
                elif args.partial and (run / "model.safetensors").is_file():
                    seconds = None  # still training: its best weights so far
                else:
                    continue
                rows += _evaluate_run(run, files, model, res, strategies, seconds)
    return rows


def _evaluate_run(run: Path, files: dict, model: str, res: int, strategies, seconds):
    from mgno.train import evaluate
    from mgno.train.run_dir import read_config

    epochs = read_config(run)["train"]["epochs"]
    done = len((run / "metrics.jsonl").read_text().splitlines())
    rows = []
    for strategy in strategies:
        row = {
            "model": model, "train_res": res, "epochs": epochs, "epochs_done": done,
            "finished": seconds is not None, "strategy": strategy, "train_seconds": seconds,
        }
        for r in RESOLUTIONS:
            m = evaluate(run, files["test"][r], strategy=strategy, device="cpu")
            row[f"rel_l2_{r}"] = m["rel_l2"]
            row[f"rel_h1_{r}"] = m["rel_h1"]
            row["best_epoch"] = m["epoch"]
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def markdown_table(rows: list[dict]) -> str:
    """The rows as a Markdown table: rel. L2 per test grid and the ratios to the training grid."""
    head = ["model", "trained on", "epochs", "strategy"]
    head += [f"rel. L2 @ {r}x{r}" for r in RESOLUTIONS]
    head += ["ratio 2x finer", "ratio 4x finer"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        res = row["train_res"]
        base = row[f"rel_l2_{res}"]
        finer = [2 * (res - 1) + 1, 4 * (res - 1) + 1]
        ratios = [
            f"{row[f'rel_l2_{r}'] / base:.2f}" if f"rel_l2_{r}" in row else "-" for r in finer
        ]
        done = "" if row["finished"] else f" (stopped at {row['epochs_done']})"
        cells = [row["model"], f"{res}x{res}", f"{row['epochs']}{done}", row["strategy"]]
        cells += [f"{row[f'rel_l2_{r}']:.4f}" for r in RESOLUTIONS]
        lines.append("| " + " | ".join(cells + ratios) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--stage", choices=["all", "data", "train", "eval"], default="all")
    p.add_argument("--models", nargs="+", default=["mgno", "fno"], choices=["mgno", "fno"])
    p.add_argument("--train-resolution", nargs="+", type=int, default=[33])
    p.add_argument("--n-train", type=int, default=500)
    p.add_argument("--n-test", type=int, default=100)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, default=None, help="also write the report here")
    p.add_argument("--partial", action="store_true",
                   help="eval: also runs still training (their best weights so far)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    for r in args.train_resolution:
        if r not in RESOLUTIONS:
            p.error(f"--train-resolution {r}: expected one of {RESOLUTIONS}")
    t0 = time.perf_counter()
    load0 = os.getloadavg()
    files = data_files(args.out, args.n_train, args.n_test, args.train_resolution, args.seed)
    report: dict = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "load_avg_start": list(load0),
        "solve_resolution": SOLVE_RESOLUTION,
        "mgno": MGNO,
        "fno": FNO,
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }
    if args.stage in ("all", "data", "eval"):
        report["same_fields_max_abs_diff"] = same_fields(files)
    if args.stage in ("all", "train"):
        for model in args.models:
            for res in args.train_resolution:
                train_one(args.out, files, model, res, args)
    if args.stage in ("all", "eval"):
        report["rows"] = evaluate_all(args.out, files, args.models, args.train_resolution, args)
        report["table"] = markdown_table(report["rows"])
        print(report["table"], file=sys.stderr)
    report["load_avg_end"] = list(os.getloadavg())
    report["seconds"] = time.perf_counter() - t0
    text = json.dumps(report, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
