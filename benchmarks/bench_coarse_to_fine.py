"""Coarse-to-fine training of MgNO (issue 18): time to FNO's accuracy, error at a fixed budget.

Usage (the full measurement: the ``cpu`` profile's Darcy task, 64x64 solved on
127x127, 1000/100/100 samples, seeds 0 1 2, one thread, one run at a time)::

    nice -n 10 .venv/bin/python benchmarks/bench_coarse_to_fine.py \\
        --work /tmp/c2f --out benchmarks/results_coarse_to_fine_64.json

The JSON is rewritten after every run (``"complete": false`` until the last);
a stopped bench continues with the same command and ``--resume`` (a run
stopped half-way must have its run directory removed first).

At 128x128 (solved on 255x255), optionally::

    nice -n 10 .venv/bin/python benchmarks/bench_coarse_to_fine.py --resolution 128 \\
        --work /tmp/c2f128 --out benchmarks/results_coarse_to_fine_128.json

A check that every path runs (33x33, 64/16/16 samples, 4 epochs, one seed; a
few minutes on two busy cores)::

    .venv/bin/python benchmarks/bench_coarse_to_fine.py --quick --work /tmp/c2f_quick \\
        --out /tmp/c2f_quick.json

Every run trains with :func:`mgno.train.train` on the data of the ``cpu``
profile's ``darcy`` task (``darcy-smooth``, seeds 100/101/102 for the
train/val/test splits, generated into ``--work/data`` by ``mgno generate`` and
reused when they match) with its recipe: the ``darcy-smooth`` preset (MgNO
also takes its network, levels cut to the grid), 12 epochs, lr 1e-3, OneCycle
stepped per optimiser step, batch 8, ``k_max`` all. The runs (``--runs``):

* ``fno``: neuraloperator's FNO with mgno's defaults (``mgno train --model fno``);
* ``mgno[:levels=L]``: MgNO without a schedule;
* ``c2f:carry=C,coarse=K,phases=E1+E2+...[,levels=L]``: MgNO with
  ``--grid-schedule coarse-to-fine --carry C --coarse-levels K --phase-epochs
  E1,E2,...`` (``--epochs`` their sum).

After every epoch on the data's grid a callback scores the current weights on
the test split (rel. L2, outside the epoch's clock). Per seed, the target is
FNO's test rel. L2 (best-validation weights, what ``mgno eval`` reports):
``seconds_to_fno`` is a run's cumulative training seconds (the ``seconds`` of
``metrics.jsonl``, validation included) at its first epoch at or below it,
``time_ratio`` that over FNO's training seconds (issue 18 asks 1/3), and
``error_at_budget`` the test error of its last epoch finished within
``--budget-seconds`` (default: FNO's training seconds of the same seed) --
read off the run's curve, whose learning-rate schedule spans the whole run,
not a run scheduled for the budget. The JSON keeps every run's history and
test curve, the command, the machine and its load average before and after
each run; a markdown table (medians over seeds) goes to stderr. Accuracy and
speed claims belong in benchmarks/RESULTS.md with this command.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

#: FNO, MgNO (the preset's network: 6 levels at 64x64 and 128x128), MgNO coarse to
#: fine with the defaults (carry levels, one coarse grid, 6+6 epochs) and two coarse
#: grids, and the two carries side by side on a network of 5 levels (carry all needs
#: the coarse grid to hold every level: 6 levels do not fit 32x32, they fit 64x64).
FULL_RUNS = [
    "fno",
    "mgno",
    "c2f:carry=levels,coarse=1,phases=6+6",
    "c2f:carry=levels,coarse=2,phases=4+4+4",
    "mgno:levels=5",
    "c2f:carry=levels,coarse=1,phases=6+6,levels=5",
    "c2f:carry=all,coarse=1,phases=6+6,levels=5",
]
QUICK_RUNS = [
    "fno",
    "mgno",
    "c2f:carry=levels,coarse=1,phases=2+2",
    "c2f:carry=all,coarse=1,phases=2+2,levels=5",
]
#: The cpu profile's darcy recipe (mgno.bench.profiles), seed set per run.
RECIPE = {"epochs": 12, "lr": 1e-3, "scheduler_step": "step", "batch_size": 8, "k_max": "all"}
PRESET = "darcy-smooth"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="JSON file to write (refused if it exists)")
    p.add_argument("--force", action="store_true", help="replace an existing --out")
    p.add_argument("--resume", action="store_true",
                   help="keep the finished runs of an existing --out (same data and recipe) "
                        "and train only the missing ones")
    p.add_argument("--work", required=True, help="folder for the data and the run directories")
    p.add_argument("--quick", action="store_true",
                   help="33x33, 64/16/16 samples, 4 epochs, seed 0: a check that it all runs")
    p.add_argument("--resolution", type=int, default=None, help="nodes per axis (default 64)")
    p.add_argument("--samples", type=int, nargs=3, default=None, metavar=("TRAIN", "VAL", "TEST"),
                   help="default 1000 100 100")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0 1 2")
    p.add_argument("--runs", nargs="+", default=None, help="run specs (see the module doc)")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs of the runs without a schedule (default 12)")
    p.add_argument("--budget-seconds", type=float, default=None,
                   help="wall-clock budget for error_at_budget (default: FNO's, per seed)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = p.parse_args(argv)
    quick = args.quick
    args.resolution = args.resolution or (33 if quick else 64)
    args.samples = args.samples or ([64, 16, 16] if quick else [1000, 100, 100])
    args.seeds = args.seeds or ([0] if quick else [0, 1, 2])
    args.runs = args.runs or (QUICK_RUNS if quick else FULL_RUNS)
    args.epochs = args.epochs or (4 if quick else RECIPE["epochs"])
    for spec in args.runs:
        parse_run(spec)  # refuse a bad spec before anything runs
    return args


def parse_run(spec: str) -> dict[str, Any]:
    """``fno`` / ``mgno[:levels=L]`` / ``c2f:carry=C,coarse=K,phases=E1+E2[,levels=L]``.

    Returns ``{"family", "model_overrides", "recipe"}`` (recipe: the schedule options).
    """
    name, _, rest = spec.partition(":")
    opts = dict(kv.split("=", 1) for kv in rest.split(",")) if rest else {}
    if name not in ("fno", "mgno", "c2f") or (name == "fno" and opts):
        raise SystemExit(f"bench_coarse_to_fine: error: run {spec!r}, expected fno, "
                         "mgno[:levels=L] or c2f:carry=C,coarse=K,phases=E1+E2[,levels=L]")
    overrides = {"levels": int(opts.pop("levels"))} if "levels" in opts else {}
    recipe: dict[str, Any] = {}
    if name == "c2f":
        try:
            phases = [int(e) for e in opts.pop("phases").split("+")]
            recipe = {"grid_schedule": "coarse-to-fine", "carry": opts.pop("carry"),
                      "coarse_levels": int(opts.pop("coarse")), "phase_epochs": phases,
                      "epochs": sum(phases)}
        except (KeyError, ValueError):
            raise SystemExit(f"bench_coarse_to_fine: error: run {spec!r}, expected "
                             "c2f:carry=C,coarse=K,phases=E1+E2[,levels=L]") from None
    if opts:
        raise SystemExit(f"bench_coarse_to_fine: error: run {spec!r}: unknown {sorted(opts)}")
    return {"family": "fno" if name == "fno" else "mgno", "model_overrides": overrides,
            "recipe": recipe}


def data_task(args: argparse.Namespace):
    """The cpu profile's darcy task at ``--resolution`` with ``--samples``."""
    from mgno.bench.profiles import DataSpec, Task

    res = args.resolution
    spec = DataSpec("darcy-smooth", res, {"solve_resolution": 2 * res - 1}, *args.samples,
                    seed=100)
    return Task("darcy", f"Darcy smooth {res}x{res}", spec, PRESET, dict(RECIPE))


def test_curve_callback(test_path: Path):
    """A callback scoring the current weights on the test split after each fine-grid epoch."""
    from mgno.data.datasets import load_arrays
    from mgno.train.engine import Callbacks, validate

    class TestCurve(Callbacks):
        def __init__(self) -> None:
            self.data = load_arrays(test_path)
            self.scores: dict[int, float] = {}

        def on_checkpoint(self, fitting, state) -> None:
            if state.step != 0 or not fitting.keeps_best:  # a mid-epoch save, a coarse phase
                return
            view = fitting.task.eval_view(self.data)
            self.scores[state.epoch] = validate(
                fitting.predictor, view, fitting.task, fitting.device, 8)

    return TestCurve()


def run_one(work: Path, paths: tuple, spec: str, seed: int, args: argparse.Namespace) -> dict:
    """Train one run; its history, test curve, test error and the time it took."""
    from mgno.train import evaluate, train

    run = parse_run(spec)
    recipe = {**RECIPE, "epochs": args.epochs, **run["recipe"], "seed": seed}
    out = work / "runs" / f"{spec.replace(':', '_').replace(',', '_')}_s{seed}"
    if out.exists():
        raise SystemExit(f"bench_coarse_to_fine: error: {out} exists but has no record in "
                         "--out (a run stopped half-way, or another bench's); expected it "
                         "removed, or a new --work")
    curve_cb = test_curve_callback(paths[2])
    load0, t0 = os.getloadavg(), time.perf_counter()
    result = train(paths[0], out, val=paths[1], preset=PRESET, model=run["family"],
                   model_overrides=run["model_overrides"], progress=False, device="cpu",
                   callbacks=[curve_cb], **recipe)
    wall = time.perf_counter() - t0
    test = evaluate(out, paths[2], device="cpu")
    clock, curve = 0.0, []
    for rec in result.history:
        clock += rec.get("seconds") or 0.0
        curve.append([rec["epoch"], round(clock, 3), curve_cb.scores.get(rec["epoch"])])
    return {"spec": spec, "seed": seed, "family": run["family"], "recipe": recipe,
            "model_overrides": run["model_overrides"], "status": result.status,
            "train_seconds": round(clock, 3), "wall_seconds": round(wall, 3),
            "test_rel_l2": test["rel_l2"], "best_epoch": result.best_epoch,
            "test_curve": curve, "history": result.history,
            "loadavg_start": list(load0), "loadavg_end": list(os.getloadavg())}


def score(runs: list[dict], budget: float | None) -> None:
    """Add ``seconds_to_fno``, ``time_ratio`` and ``error_at_budget`` to each run, per seed."""
    fno = {r["seed"]: r for r in runs if r["spec"] == "fno"}
    for r in runs:
        ref = fno.get(r["seed"])
        target = None if ref is None else ref["test_rel_l2"]
        limit = budget if budget is not None else (None if ref is None else ref["train_seconds"])
        reached = [s for _e, s, err in r["test_curve"]
                   if target is not None and err is not None and err <= target]
        r["fno_test_rel_l2"], r["budget_seconds"] = target, limit
        r["seconds_to_fno"] = reached[0] if reached else None
        r["time_ratio"] = (reached[0] / ref["train_seconds"]) if reached and ref else None
        within = [err for _e, s, err in r["test_curve"]
                  if limit is not None and err is not None and s <= limit]
        r["error_at_budget"] = within[-1] if within else None


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summary(runs: list[dict]) -> list[dict]:
    """Medians over seeds per run spec (and how many seeds reached FNO's error)."""
    rows = []
    for spec in dict.fromkeys(r["spec"] for r in runs):
        mine = [r for r in runs if r["spec"] == spec]
        rows.append({"spec": spec, "seeds": len(mine),
                     **{k: _median([r[k] for r in mine]) for k in (
                         "test_rel_l2", "train_seconds", "seconds_to_fno", "time_ratio",
                         "error_at_budget")},
                     "seeds_reaching_fno": sum(r["seconds_to_fno"] is not None for r in mine)})
    return rows


def table(rows: list[dict]) -> str:
    """The summary as markdown."""
    def f(v, fmt=".4g"):
        return "-" if v is None else format(v, fmt)

    lines = ["| run | seeds | test rel. L2 | train s | s to FNO's error | ratio to FNO's time "
             "| error at budget |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['spec']} | {r['seeds']} | {f(r['test_rel_l2'])} | "
                     f"{f(r['train_seconds'], '.0f')} | {f(r['seconds_to_fno'], '.0f')} "
                     f"({r['seeds_reaching_fno']}/{r['seeds']}) | {f(r['time_ratio'], '.3f')} | "
                     f"{f(r['error_at_budget'])} |")
    return "\n".join(lines)


def machine() -> dict:
    """Versions and the machine, for the JSON."""
    from mgno import __version__

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"processor": platform.processor() or platform.machine(), "cpus_usable": cpus,
            "python": platform.python_version(), "torch": torch.__version__,
            "mgno": __version__, "threads": torch.get_num_threads(),
            "loadavg_start": list(os.getloadavg())}


def main(argv: list[str] | None = None) -> int:
    from mgno.atomic import check_replaceable
    from mgno.bench.data import data_paths, ensure_data
    from mgno.denormals import flush_denormals
    from mgno.errors import InputError

    args = parse_args(argv)
    work, task = Path(args.work), data_task(args)
    meta = {"command": " ".join(["benchmarks/bench_coarse_to_fine.py", *sys.argv[1:]]),
            "data": dict(task.data.__dict__), "preset": PRESET,
            "recipe": {**RECIPE, "epochs": args.epochs}, "threads": args.threads}
    try:
        runs = [] if not args.resume else finished_runs(args.out, meta)
        if not args.resume:
            check_replaceable(args.out, args.force)
    except InputError as err:
        print(f"bench_coarse_to_fine: error: {err}", file=sys.stderr)
        return 2
    flush_denormals()
    torch.set_num_threads(args.threads)
    meta["machine"] = machine()  # after the thread count is set: it records it
    ensure_data(work, task, device=None, progress=False, threads=args.threads)
    paths = data_paths(work, task)
    meta["data"]["paths"] = [str(p) for p in paths]
    done = {(r["spec"], r["seed"]) for r in runs}
    for seed in args.seeds:
        for spec in args.runs:
            if (spec, seed) in done:
                continue
            runs.append(run_one(work, paths, spec, seed, args))
            done.add((spec, seed))
            print(f"{spec} seed {seed}: test rel. L2 {runs[-1]['test_rel_l2']:.4g}, "
                  f"{runs[-1]['train_seconds']:.0f} s", file=sys.stderr, flush=True)
            save(args, meta, runs, complete=False)  # a stopped bench keeps what it finished
    rows = save(args, meta, runs, complete=True)
    print(table(rows), file=sys.stderr)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def save(args: argparse.Namespace, meta: dict, runs: list[dict], complete: bool) -> list[dict]:
    """Score the runs so far and write ``--out`` (temp file + rename); the summary rows."""
    from mgno.atomic import atomic_write_json

    score(runs, args.budget_seconds)
    rows = summary(runs)
    meta["machine"]["loadavg_end"] = list(os.getloadavg())
    atomic_write_json(args.out, {"meta": meta, "complete": complete, "summary": rows,
                                 "runs": runs})
    return rows


def finished_runs(out: str, meta: dict) -> list[dict]:
    """The runs of an earlier ``--out`` to keep, refused when its data or recipe differ."""
    import json

    from mgno.errors import InputError

    try:
        old = json.loads(Path(out).read_text())
        data = {k: v for k, v in old["meta"]["data"].items() if k != "paths"}
        same = (data, old["meta"]["recipe"], old["meta"].get("threads", 1)) == (
            meta["data"], meta["recipe"], meta["threads"])
        runs = list(old["runs"])
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(f"--resume: {out} is not a results file of this bench ({err})") from None
    if not same:
        raise InputError(f"--resume: {out} was measured on other data, another recipe or "
                         "another thread count; expected the same --resolution, --samples, "
                         "--epochs and --threads")
    return runs


if __name__ == "__main__":
    sys.exit(main())
