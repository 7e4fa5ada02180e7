"""``run_bench``: the order of the work of one ``mgno bench`` call.

1. check every run the call asks for against its record (refusals first);
2. generate the missing data of each task;
3. plan each model: reuse a finished run of the same spec, resume, or train;
4. train the unfinished runs, ``jobs`` child processes at a time;
5. evaluate every finished run (cached per run spec and test file), time the
   networks' steps side by side, compare MgNO with FNO;
6. write ``results.json`` and ``results.md``.
"""

from __future__ import annotations

import math
import os
import shlex
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mgno.atomic import atomic_write_json, atomic_write_text
from mgno.bench.data import check_generator, data_paths, describe, ensure_data, fingerprint
from mgno.bench.measure import load_average, machine_info, read_run_config, summarise, utc_now
from mgno.bench.profiles import (
    DEFAULT_MODELS,
    Task,
    check_models,
    get_profile,
    profile_models,
    select_tasks,
)
from mgno.bench.records import (
    RECORD_SUFFIX,
    STEPS_FILE,
    Plan,
    eval_key,
    plan_run,
    precheck,
    read_json,
    read_record,
    record_path,
    steps_key,
)
from mgno.bench.report import compare_targets, format_results
from mgno.bench.schedule import run_job_process, train_pending
from mgno.bench.spec import MeasureJob, RunSpec, StepsJob, code_version
from mgno.bench.supervise import sigterm_stops_children
from mgno.errors import InputError
from mgno.lock import OutputLock

#: Bench-directory files.
RESULTS_MD, RESULTS_JSON = "results.md", "results.json"
#: Folder of the bench directory where child jobs and their results pass.
JOBS_DIR = "jobs"


@dataclass(frozen=True)
class BenchConfig:
    """What one ``mgno bench`` call does (the fields are its command-line options).

    Attributes
    ----------
    out:
        The bench directory (data, runs, results).
    profile:
        ``"cpu"``, ``"cpu-quick"``, ``"gpu"``, ``"paper"``, ``"paper-cpu"`` or
        ``"paper-cpu-quick"`` (see :func:`list_profiles`); or None with ``data``
        and ``test`` for a free-form comparison.
    data, val, test:
        Free form: training, validation (optional) and test files.
    models:
        Families to train (default: the profile's, :func:`profile_models`: mgno,
        fno, tfno, unet; the paper profiles mgno, fno, unet).
    tasks:
        Only these tasks of the profile (e.g. ``["darcy"]``).
    preset:
        Free form: preset whose recipe every model uses (MgNO: also its network).
    epochs, batch_size, lr:
        Override the recipe of every task.
    resume:
        Continue interrupted runs (finished ones of the same spec are always reused).
    force:
        Delete and train again a run that cannot be reused as it stands:
        trained with another spec, without a bench record, or unfinished
        without ``resume``.
    time_limit:
        Seconds for this call: the running training gets SIGTERM at the
        deadline, saves a checkpoint and the call returns; rerun with
        ``resume=True`` for the next slice.
    threads:
        torch threads of every process (default: torch's; with ``jobs > 1``,
        the cores shared out among the jobs).
    jobs:
        Trainings (and data-generation workers) run at once, each in its own
        process. CPU only.
    device:
        ``auto``, ``cpu`` or ``cuda``.
    progress:
        Progress on stderr.
    command:
        The command line to record (default: a ``run_bench(...)`` call).
    """

    out: str | os.PathLike
    profile: str | None = None
    data: str | os.PathLike | None = None
    val: str | os.PathLike | None = None
    test: str | os.PathLike | None = None
    models: tuple[str, ...] | list[str] | None = None
    tasks: tuple[str, ...] | list[str] | None = None
    preset: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    resume: bool = False
    force: bool = False
    time_limit: float | None = None
    threads: int | None = None
    jobs: int = 1
    device: str = "auto"
    progress: bool = True
    command: str | None = None

    def checked(self) -> BenchConfig:
        """This config with ``threads`` settled; one line per bad field.

        Raises
        ------
        InputError
            ``threads`` or ``jobs`` below 1, several jobs on a GPU, or the
            profile and free-form files both or neither given.
        """
        import torch

        if self.threads is not None and self.threads < 1:
            raise InputError(f"--threads: found {self.threads}, expected an integer >= 1")
        self._check_overrides()
        jobs = self.jobs
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
            raise InputError(f"--jobs: found {jobs!r}, expected an integer >= 1")
        on_gpu = self.device not in ("auto", "cpu") or (
            self.device == "auto" and torch.cuda.is_available())
        if jobs > 1 and on_gpu:
            raise InputError(f"--jobs: found {jobs}, expected 1 on a GPU (one training per "
                             "device); use torchrun for several GPUs")
        if self.profile is not None and (self.data is not None or self.test is not None):
            raise InputError("--profile: given with --data/--test; expected one or the other")
        if self.profile is None and (self.data is None or self.test is None):
            raise InputError("--data/--test: missing; expected both (or --profile NAME)")
        threads = self.threads
        if threads is None and jobs > 1:
            threads = max(1, (os.cpu_count() or 1) // jobs)
        return replace(self, threads=threads)

    def _check_overrides(self) -> None:
        # Checked here, before any child process starts: a bad value would
        # otherwise fail in every child in turn.
        for flag, value in (("--epochs", self.epochs), ("--batch-size", self.batch_size)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise InputError(f"{flag}: found {value!r}, expected an integer >= 1")
        # --time-limit 0 stops before any training (the table of what is there)
        for flag, value, least in (("--lr", self.lr, "a positive"),
                                   ("--time-limit", self.time_limit, "a non-negative")):
            if value is not None and not (isinstance(value, (int, float))
                                          and not isinstance(value, bool)
                                          and math.isfinite(value)
                                          and (value > 0 or (value == 0 and flag != "--lr"))):
                raise InputError(f"{flag}: found {value!r}, expected {least} finite number")

    def resolved_device(self) -> str:
        """The device the runs train on: ``auto`` becomes ``cuda`` or ``cpu``."""
        import torch

        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.device


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _models(cfg: BenchConfig) -> list[str]:
    """The families to train: ``models``, else the profile's (paper: mgno fno unet)."""
    default = profile_models(cfg.profile) if cfg.profile is not None else DEFAULT_MODELS
    return check_models(cfg.models, default)


def _tasks(cfg: BenchConfig) -> list[Task]:
    if cfg.profile is not None:
        return select_tasks(get_profile(cfg.profile), cfg.tasks)
    data, test = Path(cfg.data), Path(cfg.test)  # type: ignore[arg-type]
    task = Task("custom", f"{data.name} (test {test.name})", None, cfg.preset, {},
                paths=(str(data), None if cfg.val is None else str(cfg.val), str(test)))
    return select_tasks([task], cfg.tasks)


def _recipe(task: Task, cfg: BenchConfig) -> dict[str, Any]:
    recipe = dict(task.train)
    recipe.update({k: v for k, v in (("epochs", cfg.epochs), ("batch_size", cfg.batch_size),
                                      ("lr", cfg.lr)) if v is not None})
    if cfg.device != "auto":
        recipe["device"] = cfg.device
    return recipe


@dataclass
class _TaskRun:
    """A task during the call: its results entry, files, recipe and plans."""

    task: Task
    entry: dict[str, Any]
    paths: tuple[Path, Path | None, Path]
    recipe: dict[str, Any]
    plans: list[Plan] | None = None  # None until the data are on disk


def _data_entry(tr: _TaskRun, split: int, memo: dict | None) -> dict[str, Any] | None:
    """A split's fingerprint (``memo`` None: before the data exist, no content yet)."""
    path = tr.paths[split]
    if path is None:
        return None
    gen = None if tr.task.data is None else tr.task.data.generator(split)
    if memo is None:
        return {"path": str(Path(path).resolve()), "size": 0, "content_sha256": "",
                "generator": gen}
    return {**fingerprint(path, memo), "generator": gen}


def _spec(tr: _TaskRun, family: str, cfg: BenchConfig, code: dict, memo: dict | None
          ) -> RunSpec:
    return RunSpec(family=family, preset=tr.task.preset,
                   model_overrides=dict(tr.task.models.get(family, {})),
                   recipe={**tr.recipe, **tr.task.family_train.get(family, {})},
                   train_data=_data_entry(tr, 0, memo), val_data=_data_entry(tr, 1, memo),
                   device=cfg.resolved_device(), code=code)


def train_command(spec: RunSpec, run_dir: Path) -> str:
    """The ``mgno train`` command equivalent to a run spec (for the record)."""
    words = ["mgno", "train", "--data", spec.train_data["path"]]
    if spec.val_data is not None:
        words += ["--val", spec.val_data["path"]]
    words += ["--out", str(run_dir), "--model", spec.family]
    if spec.preset:
        words += ["--preset", spec.preset]
    for k, v in spec.recipe.items():
        if v is not None:
            words += [f"--{k.replace('_', '-')}", str(v)]
    for k, v in spec.model_overrides.items():
        if v is not None:
            words += [f"--{k}"] + ([str(x) for x in v] if isinstance(v, list) else [str(v)])
    return " ".join(shlex.quote(w) for w in words)


def _new_task_run(task: Task, cfg: BenchConfig, out: Path) -> _TaskRun:
    paths = data_paths(out, task)
    recipe = _recipe(task, cfg)
    entry: dict[str, Any] = {
        "name": task.name, "title": task.title, "data": describe(task, paths),
        "preset": task.preset,
        "recipe": {**({"preset": task.preset} if task.preset else {}), **recipe},
        "paper": {k: dict(v) for k, v in task.paper.items()},
        "models": {}, "commands": {},
    }
    return _TaskRun(task, entry, paths, recipe)


def _prepare(trs: list[_TaskRun], cfg: BenchConfig, chosen: list[str], code: dict,
             deadline: float | None) -> bool:
    """Refusals, data and plans of every task; True when stopped at the deadline."""
    out = Path(cfg.out)
    for tr in trs:
        for family in chosen:
            run_dir = out / "runs" / tr.task.name / family
            partial = _spec(tr, family, cfg, code, None)
            tr.entry["commands"][family] = train_command(partial, run_dir)
            precheck(run_dir, partial, cfg.force)
    gen_device = "cuda" if cfg.device in ("auto", "cuda") and _cuda() else None
    memo: dict = {}
    for tr in trs:
        with sigterm_stops_children():
            if not ensure_data(out, tr.task, device=gen_device, progress=cfg.progress,
                               deadline=deadline, threads=cfg.threads, workers=cfg.jobs,
                               force=cfg.force):
                return True
        tr.plans = []
        for family in chosen:
            run_dir = out / "runs" / tr.task.name / family
            spec = _spec(tr, family, cfg, code, memo)
            tr.plans.append(plan_run(run_dir, spec, resume=cfg.resume, force=cfg.force,
                                     label=f"{tr.task.name}/{family}"))
    return False


def _evaluate(plan: Plan, test: dict, cfg: BenchConfig) -> dict[str, Any] | None:
    """The cached evaluation of a finished run, or a new one (None if it failed)."""
    key = eval_key(plan.spec, test, cfg.resolved_device())
    if plan.evaluation and plan.evaluation.get("key") == key:
        return plan.evaluation["result"]
    job_dir = Path(cfg.out) / JOBS_DIR
    name = plan.label.replace("/", ".")
    job = MeasureJob(str(plan.run_dir), test["path"], cfg.device, cfg.threads,
                     str(job_dir / f"{name}.measure.result.json"))
    job_dir.mkdir(parents=True, exist_ok=True)
    result = run_job_process(job, job_dir / f"{name}.measure.job.json", None)
    if result is not None:
        plan.evaluation = {"key": key, "result": result}
        plan.save()
    return result


def _step_costs(tr: _TaskRun, done: list[Plan], test: dict, cfg: BenchConfig
                ) -> dict[str, float]:
    """Equal-load step costs of a task's finished runs (cached under their specs' key)."""
    task_dir = done[0].run_dir.parent
    batch = read_run_config(done[0].run_dir).get("train", {}).get("batch_size", 8)
    key = steps_key({p.spec.family: p.spec for p in done}, test, batch,
                    cfg.resolved_device())
    cached = read_json(task_dir / STEPS_FILE, None)
    if isinstance(cached, dict) and cached.get("key") == key:
        return cached["ms_per_sample"]
    job_dir = Path(cfg.out) / JOBS_DIR
    job = StepsJob({p.spec.family: str(p.run_dir) for p in done}, test["path"], batch,
                   cfg.device, cfg.threads, str(job_dir / f"{tr.task.name}.steps.result.json"))
    job_dir.mkdir(parents=True, exist_ok=True)
    result = run_job_process(job, job_dir / f"{tr.task.name}.steps.job.json", None)
    if result is None:
        return {}
    atomic_write_json(task_dir / STEPS_FILE, {"key": key, **result})
    return result["ms_per_sample"]


def _unplanned_status(run_dir: Path) -> dict[str, Any]:
    rec = read_record(record_path(run_dir))
    runs = rec["runs"] if rec else []
    return {**summarise(run_dir, runs, None),
            "status": runs[-1]["status"] if runs else "not started"}


def _report_task(tr: _TaskRun, cfg: BenchConfig, chosen: list[str], memo: dict) -> bool:
    """Fill the task's table (evaluations, step costs, targets); True if all finished."""
    if tr.plans is None:
        for family in chosen:
            tr.entry["models"][family] = _unplanned_status(
                Path(cfg.out) / "runs" / tr.task.name / family)
        tr.entry["targets"] = None
        return False
    complete = True
    test = fingerprint(tr.paths[2], memo)
    done: list[Plan] = []
    for plan in tr.plans:
        measured = _evaluate(plan, test, cfg) if plan.finished else None
        row = summarise(plan.run_dir, plan.runs, measured)
        row["status"] = "finished" if plan.finished else (
            plan.runs[-1]["status"] if plan.runs else "not started")
        if plan.finished and measured is None:
            row["status"] = "trained; evaluation failed"
        elif plan.finished:
            done.append(plan)
        tr.entry["models"][plan.spec.family] = row
        complete = complete and row["status"] == "finished"
    if len(done) >= 2:
        for name, ms in _step_costs(tr, done, test, cfg).items():
            tr.entry["models"][name]["step_ms_per_sample"] = ms
    tr.entry["targets"] = compare_targets(
        {k: v for k, v in tr.entry["models"].items() if v["status"] == "finished"})
    return complete


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # absent, or holds the files of a job that was cut short


def _default_command(cfg: BenchConfig, chosen: list[str]) -> str:
    return f"mgno.bench.run_bench({str(cfg.out)!r}, profile={cfg.profile!r}, models={chosen})"


def _run(cfg: BenchConfig) -> dict[str, Any]:
    """:func:`run_bench` once the bench directory is locked."""
    out = Path(cfg.out)
    deadline = None if cfg.time_limit is None else time.monotonic() + float(cfg.time_limit)
    chosen = _models(cfg)
    trs = [_new_task_run(t, cfg, out) for t in _tasks(cfg)]
    results: dict[str, Any] = {
        "profile": cfg.profile, "command": cfg.command or _default_command(cfg, chosen),
        "machine": machine_info(cfg.threads), "models": chosen,
        "tasks": [tr.entry for tr in trs],
    }
    stopped = _prepare(trs, cfg, chosen, code_version(), deadline)
    pending = [p for tr in trs for p in (tr.plans or [])]
    with sigterm_stops_children():
        stopped = train_pending(pending, cfg.jobs, deadline, cfg.progress, cfg.threads,
                                out / JOBS_DIR) or stopped
    memo: dict = {}
    complete = not stopped
    for tr in trs:
        complete = _report_task(tr, cfg, chosen, memo) and complete
    _remove_if_empty(out / JOBS_DIR)
    results.update(complete=complete, interrupted=stopped, load_avg_end=load_average(),
                   finished_utc=utc_now())
    atomic_write_json(out / RESULTS_JSON, results)
    atomic_write_text(out / RESULTS_MD, format_results(results))
    if stopped and cfg.progress:
        print(f"mgno bench: stopped before the end; continue with --resume (same --out {out})",
              file=sys.stderr, flush=True)
    elif not complete and cfg.progress:
        print(f"mgno bench: some runs failed or were not evaluated (see {out / RESULTS_MD}); "
              "fix the cause and rerun with --resume", file=sys.stderr, flush=True)
    return results


def run_bench(config: BenchConfig | str | os.PathLike, **options: Any) -> dict[str, Any]:
    """Train several models on the same data and budget; write results.md/json.

    Parameters
    ----------
    config:
        A :class:`BenchConfig`, or the bench directory with the other fields
        of :class:`BenchConfig` as keywords:
        ``run_bench("out", profile="cpu-quick", jobs=2, threads=1)``.
    **options:
        :class:`BenchConfig` fields, which replace those of ``config``.

    Returns
    -------
    dict
        What ``results.json`` holds: ``machine``, ``command``, ``tasks`` (per
        model metrics, runs and the MgNO/FNO ``targets``), ``complete`` (every
        run finished and evaluated) and ``interrupted`` (stopped by Ctrl-C,
        SIGTERM or the time limit).

    Raises
    ------
    InputError
        Unknown profile/model/task, missing files, a run directory trained
        with another spec (without ``force``), one that holds an unfinished
        run without ``resume``, or another process writing the bench directory.
    """
    import torch

    if isinstance(config, BenchConfig):
        cfg = replace(config, **options)
    else:
        cfg = BenchConfig(out=config, **options)
    cfg = cfg.checked()
    if cfg.threads is not None:
        torch.set_num_threads(int(cfg.threads))
    _models(cfg)
    for task in _tasks(cfg):  # unknown profile, task or generator: refused before the
        check_generator(task)  # directory is made
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    with OutputLock(cfg.out):
        _check_own_results(Path(cfg.out), cfg.force)
        return _run(cfg)


def _check_own_results(out: Path, force: bool) -> None:
    """Refuse to replace results files that no bench wrote here (no run records beside them)."""
    foreign = [name for name in (RESULTS_JSON, RESULTS_MD) if (out / name).exists()]
    if foreign and not force and not any(out.glob(f"runs/*/*{RECORD_SUFFIX}")):
        raise InputError(
            f"{out}: holds {foreign[0]} but no bench records (runs/*/*{RECORD_SUFFIX}); "
            "expected a bench directory, another --out, or --force to replace it"
        )
