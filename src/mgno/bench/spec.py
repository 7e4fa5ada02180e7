"""Typed, serialisable specs: what a bench run depends on, and the jobs of child processes.

:class:`RunSpec` is everything the result of one training depends on: the
model family and its options, the preset and every training option given,
the data (content fingerprints and generator parameters), the device and the
code version. Its :meth:`RunSpec.key` names the cached results: a run, its
evaluation and its step timings are reused only under the same key.

A child process gets a job file: :func:`write_job` writes a :class:`TrainJob`,
:class:`MeasureJob` or :class:`StepsJob` as JSON (atomically) and
``python -m mgno.bench.job FILE`` reads it back with :func:`read_job`, which
validates every field.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mgno.atomic import atomic_write_json
from mgno.errors import InputError

JOB_FORMAT = "mgno-bench-job"
JOB_VERSION = 1
#: Modules whose source does not change what a run computes (the rest is hashed).
_NOT_NUMERIC = ("bench", "cli.py", "viz.py", "demo.py")
#: Data-file fields that describe where a file is, not what it holds (not in the key).
_WHERE = ("path", "size")


def code_version() -> dict[str, str]:
    """mgno, torch and neuraloperator versions, and a hash of mgno's numeric source.

    ``source_sha256`` hashes every ``.py`` file of the installed ``mgno``
    package except the bench itself, ``cli.py``, ``viz.py`` and ``demo.py``
    (file names and bytes, in sorted order): an edit to a model, the trainer,
    a loss, the data loading or a preset changes it.
    """
    import torch

    import mgno

    try:
        from importlib.metadata import version

        neuralop = version("neuraloperator")
    except Exception:  # noqa: BLE001 - not installed: the FNO families cannot run anyway
        neuralop = "none"
    return {"mgno": mgno.__version__, "source_sha256": source_hash(Path(mgno.__file__).parent),
            "torch": torch.__version__, "neuraloperator": neuralop}


def source_hash(root: Path) -> str:
    """First 16 hex digits of a SHA-256 over the package's numeric ``.py`` files.

    Parameters
    ----------
    root:
        The ``mgno`` package folder. Files under ``bench/`` and the top-level
        ``cli.py``, ``viz.py`` and ``demo.py`` are left out: they do not
        change what a run computes.
    """
    h = hashlib.sha256()
    for path in sorted(Path(root).rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] in _NOT_NUMERIC:
            continue
        h.update(rel.as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no spaces: equal objects give equal text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _fields(cls: type, d: Any, source: str) -> dict[str, Any]:
    """The dataclass fields of ``cls`` from ``d``; one line naming a missing or unknown one."""
    if not isinstance(d, dict):
        raise InputError(f"{source}: found {type(d).__name__}, expected a JSON object")
    names = [f.name for f in dataclasses.fields(cls)]
    for key in d:
        if key not in names:
            raise InputError(f"{source}: unknown field {key!r}, expected {', '.join(names)}")
    for name in names:
        if name not in d:
            raise InputError(f"{source}: field {name!r} missing")
    return {n: d[n] for n in names}


def _expect(source: str, name: str, value: Any, types: tuple, what: str) -> None:
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if not ok:
        raise InputError(f"{source}: field {name!r} is {value!r}, expected {what}")


def _check_data(source: str, name: str, d: Any, optional: bool) -> None:
    if d is None and optional:
        return
    _expect(source, name, d, (dict,), "a data-file entry")
    for key, types, what in (("path", (str,), "a path"), ("size", (int,), "an integer"),
                             ("content_sha256", (str,), "a hex digest"),
                             ("generator", (dict, type(None)), "an object or null")):
        _expect(source, f"{name}.{key}", d.get(key), types, what)


@dataclass(frozen=True)
class RunSpec:
    """What one bench training depends on.

    Attributes
    ----------
    family:
        Network family (``mgno``, ``fno``...).
    preset:
        Preset whose recipe (MgNO: also network) is the starting point, or None.
    model_overrides:
        Network options of the family (``mgno.train.train``'s ``model_overrides``).
    recipe:
        :class:`mgno.train.TrainConfig` fields given (epochs, lr, seed...).
    train_data, val_data:
        :func:`mgno.bench.data.fingerprint` of the files plus ``generator``:
        the ``mgno generate`` parameters of profile data (None for given files).
        ``val_data`` is None when the training file's tail is the validation set.
    device:
        Where it trains: ``cpu``, ``cuda``... (``auto`` resolved by the bench).
    code:
        :func:`code_version` of the code that trains it.
    """

    family: str
    preset: str | None
    model_overrides: dict[str, Any]
    recipe: dict[str, Any]
    train_data: dict[str, Any]
    val_data: dict[str, Any] | None
    device: str
    code: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every field."""
        return json.loads(canonical_json(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, d: Any, source: str = "run spec") -> RunSpec:
        """Rebuild and validate (the family, preset and recipe against the registries).

        Raises
        ------
        InputError
            A missing, unknown or wrongly typed field, an unknown family or
            preset, or a recipe :class:`mgno.train.TrainConfig` refuses.
        """
        from mgno.bench.profiles import model_families
        from mgno.presets import list_presets
        from mgno.train import TrainConfig

        f = _fields(cls, d, source)
        _expect(source, "family", f["family"], (str,), "a model family")
        if f["family"] not in model_families():
            raise InputError(f"{source}: field 'family' is {f['family']!r}, expected one of "
                             f"{', '.join(model_families())}")
        if f["preset"] is not None and f["preset"] not in list_presets():
            raise InputError(f"{source}: field 'preset' is {f['preset']!r}, expected null or "
                             f"one of {', '.join(list_presets())}")
        for name in ("model_overrides", "recipe", "code"):
            _expect(source, name, f[name], (dict,), "an object")
        TrainConfig.from_dict(f["recipe"], source=f"{source}: recipe")
        _check_data(source, "train_data", f["train_data"], optional=False)
        _check_data(source, "val_data", f["val_data"], optional=True)
        _expect(source, "device", f["device"], (str,), "a device name")
        return cls(**f)

    def identity(self) -> dict[str, Any]:
        """:meth:`to_dict` without where the data files are (their content stays).

        The recipe's ``device`` is left out too: ``device`` holds where the
        run trains, with ``auto`` resolved.
        """
        d = self.to_dict()
        d["recipe"].pop("device", None)
        for name in ("train_data", "val_data"):
            if d[name] is not None:
                d[name] = {k: v for k, v in d[name].items() if k not in _WHERE}
        return d

    def key(self) -> str:
        """SHA-256 of :meth:`identity`: equal for runs that compute the same thing."""
        return hashlib.sha256(canonical_json(self.identity()).encode()).hexdigest()

    def differences(self, other: dict[str, Any]) -> list[str]:
        """``"field: old -> new"`` for each identity field where ``other`` (a dict) differs."""
        mine = _flatten(self.identity())
        theirs = _flatten(_identity_of(other))
        return [f"{k}: {_short(theirs.get(k))} -> {_short(mine.get(k))}"
                for k in sorted(set(mine) | set(theirs)) if mine.get(k) != theirs.get(k)]


def _identity_of(d: Any) -> dict[str, Any]:
    try:
        return RunSpec(**_fields(RunSpec, d, "record")).identity()
    except (InputError, TypeError):
        return d if isinstance(d, dict) else {}


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flatten(v, name + "."))
        else:
            out[name] = v
    return out


def _short(v: Any) -> str:
    text = "(none)" if v is None else canonical_json(v)
    return text if len(text) <= 24 else text[:12] + "..."


@dataclass(frozen=True)
class TrainJob:
    """Train one model (:func:`mgno.train.train`) into ``out``; write the outcome to ``result``."""

    run: RunSpec
    out: str
    resume: bool
    threads: int | None
    progress: bool
    result: str


@dataclass(frozen=True)
class MeasureJob:
    """Test metrics, parameters and inference time of the finished run in ``run_dir``."""

    run_dir: str
    test: str
    device: str
    threads: int | None
    result: str


@dataclass(frozen=True)
class StepsJob:
    """Equal-load step costs of ``runs`` (name -> run directory) on the test grid."""

    runs: dict[str, str]
    test: str
    batch: int
    device: str
    threads: int | None
    result: str


_JOBS: dict[str, type] = {"train": TrainJob, "measure": MeasureJob, "steps": StepsJob}
Job = TrainJob | MeasureJob | StepsJob


def job_to_dict(job: Job) -> dict[str, Any]:
    """The JSON object of a job: format, version, kind and its fields."""
    kind = next(k for k, cls in _JOBS.items() if isinstance(job, cls))
    body = {f.name: getattr(job, f.name) for f in dataclasses.fields(job)}
    if isinstance(job, TrainJob):
        body["run"] = job.run.to_dict()
    return {"format": JOB_FORMAT, "version": JOB_VERSION, "kind": kind, **body}


def job_from_dict(d: Any, source: str = "job") -> Job:
    """Rebuild and validate a job from :func:`job_to_dict`'s object.

    Raises
    ------
    InputError
        Another format or version, an unknown kind, or a bad field.
    """
    if not isinstance(d, dict) or d.get("format") != JOB_FORMAT:
        raise InputError(f"{source}: field 'format' missing or wrong, expected {JOB_FORMAT!r}")
    if d.get("version") != JOB_VERSION:
        raise InputError(f"{source}: field 'version' is {d.get('version')!r}, "
                         f"expected {JOB_VERSION}")
    kind = d.get("kind")
    if kind not in _JOBS:
        raise InputError(f"{source}: field 'kind' is {kind!r}, expected one of {', '.join(_JOBS)}")
    cls = _JOBS[kind]
    f = _fields(cls, {k: v for k, v in d.items() if k not in ("format", "version", "kind")},
                source)
    for name, value in f.items():
        _check_job_field(source, name, value)
    if cls is TrainJob:
        f["run"] = RunSpec.from_dict(f["run"], f"{source}: run")
    return cls(**f)


def _check_job_field(source: str, name: str, value: Any) -> None:
    if name in ("out", "run_dir", "test", "result", "device"):
        _expect(source, name, value, (str,), "a string")
    elif name in ("resume", "progress"):
        _expect(source, name, value, (bool,), "true or false")
    elif name == "threads" and value is not None:
        _expect(source, name, value, (int,), "an integer or null")
        if value < 1:
            raise InputError(f"{source}: field 'threads' is {value}, expected >= 1 or null")
    elif name == "batch":
        _expect(source, name, value, (int,), "an integer")
        if value < 1:
            raise InputError(f"{source}: field 'batch' is {value}, expected >= 1")
    elif name == "runs":
        _expect(source, name, value, (dict,), "an object of run directories")
        for k, v in value.items():
            _expect(source, f"runs.{k}", v, (str,), "a run directory")


def write_job(path: str | os.PathLike, job: Job) -> Path:
    """Write ``job`` as JSON, atomically; returns the path."""
    atomic_write_json(Path(path), job_to_dict(job))
    return Path(path)


def read_job(path: str | os.PathLike) -> Job:
    """Read and validate a job file written by :func:`write_job`.

    Raises
    ------
    InputError
        Not JSON, or a field :func:`job_from_dict` refuses.
    FileNotFoundError
        No such file.
    """
    path = Path(path)
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise InputError(f"{path}: not valid JSON ({err}); expected a bench job") from None
    return job_from_dict(d, str(path))
