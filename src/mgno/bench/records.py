"""The bench's records of its runs, and which of them may be reused.

Next to each run directory ``runs/<task>/<model>/`` (written by ``mgno
train``; the bench puts nothing inside) the bench keeps
``runs/<task>/<model>.bench.json``: the run's :class:`~mgno.bench.spec.RunSpec`
and its key, the attempts (status, wall seconds, peak memory) and the cached
evaluation with its own key. A record is reused only when its key equals the
key of what is asked now (:func:`plan_run`); an evaluation only when the run
and the test file's content are the same (:func:`eval_key`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mgno.atomic import atomic_write_json
from mgno.bench.spec import RunSpec, canonical_json
from mgno.errors import InputError
from mgno.train.run_dir import RunDir

RECORD_FORMAT = "mgno-bench-record"
RECORD_SUFFIX = ".bench.json"
#: Per-task file (next to the run directories) of the equal-load step costs.
STEPS_FILE = "bench_steps.json"
#: Fingerprint fields that hold a file's content (filled only once the data exist).
_CONTENT = ("train_data.content_sha256", "val_data.content_sha256")


def record_path(run_dir: Path) -> Path:
    """``runs/<task>/<model>.bench.json`` of the run directory ``runs/<task>/<model>``."""
    return run_dir.with_name(run_dir.name + RECORD_SUFFIX)


def read_json(path: Path, default: Any) -> Any:
    """A JSON file's content, ``default`` when it does not exist.

    Raises
    ------
    InputError
        The file is not JSON.
    """
    if not path.is_file():
        return default
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise InputError(f"{path}: not valid JSON ({err}); expected a file written by "
                         "mgno bench (remove it to start that run again)") from None


def read_record(path: Path) -> dict[str, Any] | None:
    """A run's record (None when there is none).

    Raises
    ------
    InputError
        Not a record written by this version of the bench.
    """
    rec = read_json(path, None)
    if rec is None:
        return None
    if (not isinstance(rec, dict) or rec.get("format") != RECORD_FORMAT
            or not isinstance(rec.get("key"), str) or not isinstance(rec.get("runs"), list)):
        raise InputError(f"{path}: field 'format', 'key' or 'runs' missing or wrong; expected "
                         f"a {RECORD_FORMAT} written by mgno bench")
    return rec


def write_record(path: Path, spec: RunSpec, runs: list[dict], evaluation: dict | None) -> None:
    """Write a run's record (atomically)."""
    atomic_write_json(path, {"format": RECORD_FORMAT, "version": 1, "key": spec.key(),
                             "spec": spec.to_dict(), "runs": runs, "eval": evaluation})


def cache_key(**parts: Any) -> str:
    """SHA-256 of the canonical JSON of ``parts``."""
    return hashlib.sha256(canonical_json(parts).encode()).hexdigest()


def eval_key(spec: RunSpec, test: dict[str, Any], device: str) -> str:
    """Key of a run's evaluation: its spec, the test file's content and the device it runs on."""
    return cache_key(run=spec.key(), test=test["content_sha256"], device=device)


def steps_key(specs: dict[str, RunSpec], test: dict[str, Any], batch: int, device: str) -> str:
    """Key of a task's equal-load step costs: the runs' specs, test grid data, batch, device."""
    return cache_key(runs={k: s.key() for k, s in specs.items()}, test=test["content_sha256"],
                     batch=batch, device=device)


@dataclass
class Plan:
    """A model of a task: its run directory, spec, past attempts and cached evaluation.

    ``resume``: the next training continues the checkpoint in ``run_dir``.
    """

    label: str
    run_dir: Path
    spec: RunSpec
    runs: list[dict[str, Any]]
    evaluation: dict[str, Any] | None
    finished: bool
    resume: bool = False

    def save(self) -> None:
        """Write the record (spec, attempts, evaluation) next to the run directory."""
        self.run_dir.parent.mkdir(parents=True, exist_ok=True)
        write_record(record_path(self.run_dir), self.spec, self.runs, self.evaluation)


def _changes(spec: RunSpec, rec: dict[str, Any], content: bool) -> list[str]:
    diffs = spec.differences(rec.get("spec"))
    return diffs if content else [d for d in diffs if not d.startswith(_CONTENT)]


def _refusal(run_dir: Path, diffs: list[str]) -> str:
    more = f" and {len(diffs) - 3} more" if len(diffs) > 3 else ""
    return (f"{run_dir}: trained with another spec ({'; '.join(diffs[:3])}{more}); expected "
            "the same settings, another --out, or --force to train it again")


def precheck(run_dir: Path, partial: RunSpec, force: bool) -> None:
    """Refuse, before any work, a recorded run whose spec differs in more than data content.

    ``partial`` is the spec before the data exist (no content hashes yet).
    """
    rec = read_record(record_path(run_dir))
    if rec is None and not force and _holds_files(run_dir):
        raise InputError(_no_record(run_dir))
    if rec is not None and not force:
        diffs = _changes(partial, rec, content=False)
        if diffs:
            raise InputError(_refusal(run_dir, diffs))


def _holds_files(run_dir: Path) -> bool:
    return run_dir.is_dir() and any(p.name != ".lock" for p in run_dir.iterdir())


def _no_record(run_dir: Path) -> str:
    return (f"{run_dir}: holds files but no {record_path(run_dir).name} (another tool's run, "
            "or an older mgno bench's); expected --force to train it again, or another --out")


def _discard(run_dir: Path, why: str, flag: str = "--force") -> None:
    print(f"mgno bench: {run_dir}: {why}; {flag}: training it from the beginning",
          file=sys.stderr, flush=True)
    if run_dir.is_dir():
        shutil.rmtree(run_dir)
    record_path(run_dir).unlink(missing_ok=True)


def _reusable(run_dir: Path, spec: RunSpec, force: bool) -> dict[str, Any] | None:
    """The record if it is of ``spec``; None (after discarding, with ``force``) if not."""
    rec = read_record(record_path(run_dir))
    if rec is None:
        if _holds_files(run_dir):
            if not force:
                raise InputError(_no_record(run_dir))
            _discard(run_dir, "no bench record")
        return None
    if rec["key"] != spec.key():
        diffs = _changes(spec, rec, content=True) or ["code or data"]
        if not force:
            raise InputError(_refusal(run_dir, diffs))
        _discard(run_dir, f"another spec ({diffs[0]})")
        return None
    return rec


def plan_run(run_dir: Path, spec: RunSpec, *, resume: bool, force: bool, label: str) -> Plan:
    """The plan of one model: reuse, resume or (re)start it; refusals before any work.

    Raises
    ------
    InputError
        The run was trained with another spec, or holds files without a
        record, or is unfinished without ``resume`` (none of these with
        ``force``, which deletes such a run and trains it again). A run
        stopped before its first checkpoint has nothing to resume from: with
        ``resume`` it starts again from the beginning, saying so.
    """
    rec = _reusable(run_dir, spec, force)
    runs = rec["runs"] if rec else []
    evaluation = rec.get("eval") if rec else None
    if runs and runs[-1].get("status") == "finished":
        return Plan(label, run_dir, spec, runs, evaluation, finished=True)
    has_run = RunDir(run_dir).has_config()
    if has_run and not resume:
        if not force:
            raise InputError(f"{run_dir}: holds an unfinished run; expected --resume to "
                             "continue it (or --force to start it again)")
        _discard(run_dir, "unfinished and no --resume")
        runs, has_run = [], False
    if has_run and not RunDir(run_dir).has_state():
        _discard(run_dir, "stopped before its first checkpoint",
                 "--resume" if resume else "--force")
        runs, has_run = [], False
    return Plan(label, run_dir, spec, runs, None, finished=False, resume=has_run)
