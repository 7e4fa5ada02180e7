"""Running the bench's child jobs: trainings ``jobs`` at a time, evaluations one by one.

Each child gets a job file (:func:`mgno.bench.spec.write_job`) and writes its
outcome to the job's result file; both are removed once the parent has read
them. A training's record (spec and attempts, :mod:`mgno.bench.records`) is
written before its child starts and again as soon as it exits.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from mgno.bench.records import Plan, read_json
from mgno.bench.spec import Job, TrainJob, write_job
from mgno.bench.supervise import Child, child_env, exit_state, job_argv, run_process


def _job_files(job_dir: Path, name: str) -> tuple[Path, Path]:
    job_dir.mkdir(parents=True, exist_ok=True)
    return job_dir / f"{name}.job.json", job_dir / f"{name}.result.json"


def _take_result(job_file: Path, result: Path) -> dict[str, Any]:
    """The child's result ({} when it wrote none); removes both files."""
    job_file.unlink(missing_ok=True)
    out = read_json(result, {})
    result.unlink(missing_ok=True)
    return out if isinstance(out, dict) else {}


def run_job_process(job: Job, job_file: Path, deadline: float | None) -> dict[str, Any] | None:
    """Run a job to its end in a child process; its result, or None if it failed."""
    write_job(job_file, job)
    code, _usage, _stopped = run_process(job_argv(job_file), child_env(job.threads), deadline)
    out = _take_result(job_file, Path(job.result))
    return out if code == 0 and out else None


class Training:
    """One training of the bench in its own child process."""

    def __init__(self, plan: Plan, job_dir: Path, threads: int | None, progress: bool) -> None:
        name = plan.label.replace("/", ".")
        self.job_file, result = _job_files(job_dir, name)
        self.job = TrainJob(plan.spec, str(plan.run_dir), plan.resume, threads, progress,
                            str(result))
        write_job(self.job_file, self.job)
        plan.save()  # the spec is on record before any file of the run exists
        self.t0 = time.perf_counter()
        self.child = Child(job_argv(self.job_file), child_env(threads))

    def record(self) -> dict[str, Any]:
        """Status, wall seconds, max RSS and GPU peak of the finished child."""
        assert self.child.result is not None
        code, usage, stopped = self.child.result
        child = _take_result(self.job_file, Path(self.job.result))
        state = exit_state(code, stopped)
        peak = child.get("cuda_peak_bytes")
        return {
            "status": child.get("status", state) if code in (0, 130) else state,
            "exit_code": code,
            "wall_s": round(time.perf_counter() - self.t0, 2),
            "max_rss_mib": round(usage.ru_maxrss / 1024, 1),  # ru_maxrss: KiB on Linux
            "cuda_peak_mib": None if peak is None else round(peak / 2**20, 1),
            "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        }


def _collect(plan: Plan, run: Training, jobs: int, progress: bool) -> bool:
    """Record a finished child's attempt; True when it was interrupted."""
    rec = run.record()
    plan.runs.append(rec)
    plan.finished = rec["status"] == "finished"
    plan.save()
    if rec["status"] == "failed":
        print(f"mgno bench: {plan.label}: training failed (exit {rec['exit_code']}); "
              "see the messages above", file=sys.stderr, flush=True)
    elif progress and jobs > 1:
        print(f"mgno bench: {plan.label}: {rec['status']} after {rec['wall_s']:.0f} s",
              file=sys.stderr, flush=True)
    return rec["status"] == "interrupted"


def train_pending(
    plans: list[Plan],
    jobs: int,
    deadline: float | None,
    progress: bool,
    threads: int | None,
    job_dir: Path,
) -> bool:
    """Train the unfinished plans, up to ``jobs`` child processes at a time.

    Each attempt is appended to the plan's ``runs`` and recorded as soon as
    the child exits. No new run starts after the deadline or after a run was
    interrupted; Ctrl-C (or SIGTERM, see
    :func:`mgno.bench.supervise.sigterm_stops_children`) stops every running
    child (each saves a checkpoint), records it and is raised again.

    Returns
    -------
    bool
        True when some run was interrupted (the bench then stops).
    """
    queue = [p for p in plans if not p.finished]
    active: list[tuple[Plan, Training]] = []
    stopped = False
    try:
        while queue or active:
            while (queue and len(active) < jobs and not stopped
                   and not (deadline is not None and time.monotonic() >= deadline)):
                plan = queue.pop(0)
                if progress:
                    print(f"mgno bench: {plan.label}: "
                          f"{'resuming' if plan.resume else 'training'}", file=sys.stderr,
                          flush=True)
                active.append((plan, Training(plan, job_dir, threads, progress and jobs == 1)))
            if not active:
                break
            for item in list(active):
                if item[1].child.poll(deadline):
                    active.remove(item)
                    stopped = _collect(*item, jobs, progress) or stopped
            if active:
                time.sleep(0.2)
    except KeyboardInterrupt:
        for _plan, run in active:
            run.child.stop()
        for plan, run in active:
            run.child.wait()
            _collect(plan, run, jobs, progress)
        raise
    return stopped
