"""The run directory: the one module that knows the names of a run's files.

::

    RUN_DIR/
      config.json              model config, training recipe, data description
      normalizer.safetensors   normaliser statistics (tensors) + descriptions (metadata)
      model.safetensors        weights at the epoch of lowest validation error
      checkpoint.safetensors   full training state for --resume (weights,
                               optimiser, scheduler, RNG, counters, history)
      metrics.jsonl            one JSON object per finished epoch
      tensorboard/             with ``--log tensorboard``: TensorBoard event files
                               (appended by TensorBoard's writer, one per start)
      calibration.json         ``mgno predict --estimate``: the error-estimate
                               calibration of the best weights (a cache; see
                               docs/hybrid.md), written by predict, not train
      .lock                    while ``mgno train`` writes: who holds the run

Everything but the TensorBoard event files (streams that TensorBoard appends
to; ``metrics.jsonl`` stays the record) is written atomically; nothing in it
is a pickle. Every reader checks the types of what it reads and answers a
damaged or foreign file with a one-line :class:`~mgno.errors.InputError`
naming the file and the field.
:class:`RunDir` is the object the rest of mgno uses; the module-level names
(``CONFIG``... and :func:`read_config`, :func:`read_metrics`,
:func:`require_run_dir`) stay for older callers.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from mgno.atomic import atomic_write_json, atomic_write_text
from mgno.errors import InputError
from mgno.lock import OutputLock
from mgno.train.config import TrainConfig

CONFIG = "config.json"
NORMALIZER = "normalizer.safetensors"
WEIGHTS = "model.safetensors"
STATE = "checkpoint.safetensors"
METRICS = "metrics.jsonl"
LOCK = ".lock"
#: The error-estimate calibration ``mgno predict --estimate`` caches (not a train file).
CALIBRATION = "calibration.json"
#: Folder of the TensorBoard event files (``--log tensorboard``).
TENSORBOARD = "tensorboard"
#: Every file ``mgno train`` writes into a run directory (the lock aside).
RUN_FILES = (CONFIG, NORMALIZER, WEIGHTS, STATE, METRICS)
#: Recipe fields that do not change a run's numbers (a resumed run may change them).
NUMERICALLY_NEUTRAL = ("device", "eval_batch_size", "log", "log_images_every")
_FINGERPRINT_DATA = ("path", "n_samples", "grid", "in_channels", "out_channels", "boundary",
                     "domain", "n_times", "pde", "n_val", "val")

#: Fields of ``config.json`` that must be JSON objects, and typed fields of its ``data``.
_SECTIONS = ("model", "train", "data")
_DATA_FIELDS: dict[str, tuple[type, ...]] = {
    "kind": (str,),
    "grid": (list,),
    "in_channels": (int,),
    "out_channels": (int,),
}
_METRIC_FIELDS: dict[str, tuple[type, ...]] = {"epoch": (int,), "train_loss": (int, float)}


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """Name ``path`` in an OSError raised without a file name (a full disk while writing it)."""
    try:
        yield
    except OSError as err:
        if err.filename is None and err.errno is not None:
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise


def _type_name(value: Any) -> str:
    return type(value).__name__


def parse_json(text: str, path: Path, what: str) -> Any:
    """``json.loads`` with every failure (syntax, nesting, bad bytes) as one-line InputError."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON ({err}), expected {what}") from None
    except RecursionError:
        raise InputError(f"{path}: JSON nested too deeply, expected {what}") from None


def check_config(cfg: Any, path: Path) -> dict:
    """Check the shape of a ``config.json``; return it.

    Raises
    ------
    InputError
        Naming the first field that is missing or of the wrong type.
    """
    if not isinstance(cfg, dict):
        raise InputError(
            f"{path}: holds a JSON {_type_name(cfg)}, expected an object written by mgno train"
        )
    for key in _SECTIONS:
        if key not in cfg:
            raise InputError(
                f"{path}: field {key!r} missing, expected a config written by mgno train"
            )
        if not isinstance(cfg[key], dict):
            raise InputError(
                f"{path}: field {key!r} is a {_type_name(cfg[key])}, expected an object"
            )
    data = cfg["data"]
    for key, types in _DATA_FIELDS.items():
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, types):
            raise InputError(
                f"{path}: field 'data.{key}' is {value!r}, expected a {types[0].__name__}"
            )
    grid = data["grid"]
    if not grid or not all(isinstance(n, int) and not isinstance(n, bool) for n in grid):
        raise InputError(f"{path}: field 'data.grid' is {grid!r}, expected a list of integers")
    if not isinstance(cfg["model"].get("model", "mgno"), str):
        raise InputError(
            f"{path}: field 'model.model' is {cfg['model'].get('model')!r}, expected a family name"
        )
    for key in ("training_grid", "normalizer"):
        if key in cfg and not isinstance(cfg[key], dict):
            raise InputError(
                f"{path}: field {key!r} is a {_type_name(cfg[key])}, expected an object"
            )
    if "training_grid" in cfg:
        _check_training_grid(cfg["training_grid"], path)
    return cfg


def _check_training_grid(record: dict, path: Path) -> None:
    """``training_grid``: shape (integers >= 2), spacing (numbers), boundary (words)."""
    shape = record.get("shape")
    if not isinstance(shape, list) or not shape or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 2 for n in shape
    ):
        raise InputError(f"{path}: field 'training_grid.shape' is {shape!r}, expected a list "
                         "of integers >= 2")
    for key, ok in (("spacing", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
                    ("boundary", lambda v: isinstance(v, str))):
        value = record.get(key)
        if value is not None and (not isinstance(value, list) or len(value) != len(shape)
                                  or not all(ok(v) for v in value)):
            raise InputError(f"{path}: field 'training_grid.{key}' is {value!r}, expected "
                             f"{len(shape)} entries, one per axis")


def check_metric(record: Any, path: Path, line: int) -> dict:
    """Check one line of ``metrics.jsonl``: an object with an integer epoch and a loss."""
    if not isinstance(record, dict):
        raise InputError(
            f"{path}: line {line} is a JSON {_type_name(record)}, expected one object per line"
        )
    for key, types in _METRIC_FIELDS.items():
        value = record.get(key)
        if isinstance(value, bool) or not isinstance(value, types):
            raise InputError(
                f"{path}: line {line}, field {key!r} is {value!r}, expected a number"
            )
    val = record.get("val_rel_l2")
    if val is not None and (isinstance(val, bool) or not isinstance(val, (int, float))):
        raise InputError(
            f"{path}: line {line}, field 'val_rel_l2' is {val!r}, expected a number or null"
        )
    return record


def run_fingerprint(config: Mapping[str, Any]) -> str:
    """A SHA-256 of what fixes a run's numbers, from its ``config.json``.

    The network, the recipe (``device`` and ``eval_batch_size`` aside, and the
    fields of :data:`~mgno.train.config.LATER_FIELDS` at their old value, so a run
    written before them matches a new one that computes the same), the
    preset, the description of the training and validation data and the mgno
    version. Two runs with the same fingerprint on the same data files give
    the same numbers; a cache of results (``mgno bench``) keyed by it
    recomputes when any of these changes.
    """
    train = {k: v for k, v in dict(config.get("train", {})).items()
             if k not in NUMERICALLY_NEUTRAL and not TrainConfig.as_before(k, v)}
    data = {k: dict(config.get("data", {})).get(k) for k in _FINGERPRINT_DATA}
    spec = {"model": config.get("model"), "train": train, "data": data,
            "preset": config.get("preset"), "mgno_version": config.get("mgno_version")}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode("utf-8")).hexdigest()


class RunDir:
    """A run directory written by ``mgno train``: its files, their readers and writers.

    Parameters
    ----------
    path:
        The folder (need not exist yet).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    # ------------------------------------------------------------------ paths
    @property
    def config_path(self) -> Path:
        """``config.json``."""
        return self.path / CONFIG

    @property
    def normalizer_path(self) -> Path:
        """``normalizer.safetensors``."""
        return self.path / NORMALIZER

    @property
    def weights_path(self) -> Path:
        """``model.safetensors`` (best epoch)."""
        return self.path / WEIGHTS

    @property
    def state_path(self) -> Path:
        """``checkpoint.safetensors`` (resume state)."""
        return self.path / STATE

    @property
    def metrics_path(self) -> Path:
        """``metrics.jsonl``."""
        return self.path / METRICS

    @property
    def tensorboard_path(self) -> Path:
        """``tensorboard/``, the folder of the TensorBoard event files."""
        return self.path / TENSORBOARD

    @property
    def calibration_path(self) -> Path:
        """``calibration.json`` (error-estimate calibration, cached by predict)."""
        return self.path / CALIBRATION

    def weights_file(self, which: str) -> Path:
        """The file holding the weights of ``which``: ``"best"`` or ``"last"``."""
        if which == "best":
            return self.weights_path
        if which == "last":
            return self.state_path
        raise InputError(f"which: found {which!r}, expected 'best' or 'last'")

    # ------------------------------------------------------------------ state of the folder
    def has_config(self) -> bool:
        """Whether ``config.json`` exists (a run was started here)."""
        return self.config_path.is_file()

    def has_state(self) -> bool:
        """Whether a resume checkpoint exists."""
        return self.state_path.is_file()

    def run_files(self) -> list[str]:
        """Names of the run files present (of :data:`RUN_FILES`)."""
        return [name for name in RUN_FILES if (self.path / name).exists()]

    def check_new(self) -> None:
        """Refuse a path that cannot take a new run: a file, or a folder that is not empty."""
        if self.path.exists() and not self.path.is_dir():
            raise InputError(f"{self.path}: is a file, expected a run directory to create")
        present = self.run_files() if self.path.is_dir() else []
        if any(name in present for name in (CONFIG, STATE, WEIGHTS)):
            raise InputError(
                f"{self.path}: already holds a run; expected a new --out folder "
                "(or --resume to continue it)"
            )
        if present:
            raise InputError(
                f"{self.path}: holds {present[0]} but no run that mgno train wrote there; "
                "expected a new or empty --out folder (move the file away)"
            )
        others = sorted(p.name for p in self.path.iterdir() if p.name != LOCK) \
            if self.path.is_dir() else []
        if others:
            raise InputError(
                f"{self.path}: holds {others[0]}, which mgno train did not write; expected a "
                "new or empty --out folder (move the file away)"
            )

    def require(self) -> RunDir:
        """Check that this is a run directory written by ``mgno train``; return self."""
        if not self.path.exists():
            raise FileNotFoundError(
                f"{self.path}: no such run directory, expected the --out of `mgno train`"
            )
        if not self.path.is_dir():
            raise InputError(
                f"{self.path}: is a file, expected a run directory written by `mgno train`"
            )
        if not self.has_config():
            raise InputError(
                f"{self.path}: no {CONFIG}, expected a run directory written by `mgno train`"
            )
        return self

    def lock(self) -> OutputLock:
        """The (not yet acquired) lock of this run directory; the folder must exist."""
        return OutputLock(self.path, self.path / LOCK)

    def create(self) -> None:
        """Create the folder (and its parents)."""
        self.path.mkdir(parents=True, exist_ok=True)

    def remove_partial(self) -> None:
        """Delete the run files of a run that never reached its first checkpoint."""
        for name in RUN_FILES:
            (self.path / name).unlink(missing_ok=True)

    # ------------------------------------------------------------------ config
    def read_config(self) -> dict:
        """``config.json`` as a dict, its sections and data description type-checked."""
        self.require()
        path = self.config_path
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{path}: not UTF-8 text, expected the run's JSON config") from None
        return check_config(parse_json(text, path, "the run's config"), path)

    def fingerprint(self) -> str:
        """:func:`run_fingerprint` of this run's ``config.json``."""
        return run_fingerprint(self.read_config())

    def write_config(self, config: Mapping[str, Any]) -> None:
        """Write ``config.json`` atomically."""
        with writing(self.config_path):
            atomic_write_json(self.config_path, dict(config))

    # ------------------------------------------------------------------ metrics
    def read_metrics(self) -> list[dict]:
        """The per-epoch records of ``metrics.jsonl`` (empty list if none yet)."""
        path = self.metrics_path
        if not path.is_file():
            return []
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{path}: not UTF-8 text, expected JSON lines") from None
        out = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                record = parse_json(line, path, f"one object per line (line {n})")
                out.append(check_metric(record, path, n))
        return out

    def write_metrics(self, history: list[dict]) -> None:
        """Write ``metrics.jsonl`` atomically, one object per epoch."""
        with writing(self.metrics_path):
            atomic_write_text(self.metrics_path, "".join(json.dumps(r) + "\n" for r in history))

    # ------------------------------------------------------------------ tensors
    def read_normalizers(self):
        """The input and output normalisers ``(norm_in, norm_out)``."""
        from mgno.data.normalize import GaussianNormalizer
        from mgno.train.checkpoint import read_safetensors

        path = self.normalizer_path
        tensors, meta = read_safetensors(path)
        descs = parse_json(meta.get("normalizer", "{}"), path, "normaliser metadata")
        out = []
        for prefix in ("inputs", "outputs"):
            desc = descs.get(prefix, {}) if isinstance(descs, dict) else None
            if not isinstance(desc, dict) or not isinstance(desc.get("eps", 1e-5), (int, float)):
                raise InputError(
                    f"{path}: metadata 'normalizer.{prefix}' is {desc!r}, "
                    "expected an object with 'kind' and 'eps'"
                )
            try:
                out.append(GaussianNormalizer.from_tensors(desc, tensors, prefix))
            except InputError as err:
                raise InputError(f"{path}: {err}") from None
        return out[0], out[1]

    def write_normalizers(self, norm_in, norm_out) -> None:
        """Write the normalisers' statistics and descriptions (type and eps)."""
        from mgno.train.checkpoint import write_safetensors

        meta = json.dumps({"inputs": norm_in.meta(), "outputs": norm_out.meta()})
        with writing(self.normalizer_path):
            write_safetensors(
                self.normalizer_path,
                {**norm_in.tensors("inputs"), **norm_out.tensors("outputs")},
                {"format": "pt", "normalizer": meta},
            )

    def read_weights(self) -> tuple[dict[str, torch.Tensor], int]:
        """The best epoch's weights and that epoch (0 if unknown)."""
        from mgno.train.checkpoint import read_safetensors

        if not self.weights_path.is_file():
            raise InputError(
                f"{self.path}: no {WEIGHTS}, expected a run that finished at least one epoch"
            )
        weights, meta = read_safetensors(self.weights_path)
        epoch = meta.get("epoch", "0") or "0"
        if not epoch.isdigit():
            raise InputError(
                f"{self.weights_path}: metadata 'epoch' is {epoch!r}, expected an integer"
            )
        return weights, int(epoch)

    def write_weights(self, state_dict: Mapping[str, torch.Tensor], meta: dict[str, str]) -> None:
        """Write the best weights with their metadata."""
        from mgno.train.checkpoint import write_safetensors

        with writing(self.weights_path):
            write_safetensors(self.weights_path, dict(state_dict), {"format": "pt", **meta})

    def weights_sha256(self) -> str:
        """SHA-256 of ``model.safetensors`` (what a cached calibration was made for)."""
        if not self.weights_path.is_file():
            raise InputError(
                f"{self.path}: no {WEIGHTS}, expected a run that finished at least one epoch"
            )
        digest = hashlib.sha256()
        with open(self.weights_path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    def read_calibration(self) -> dict | None:
        """``calibration.json`` as a JSON object, or None when there is none."""
        path = self.calibration_path
        if not path.is_file():
            return None
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{path}: not UTF-8 text, expected a JSON calibration") from None
        record = parse_json(text, path, "a JSON calibration written by mgno predict")
        if not isinstance(record, dict):
            raise InputError(f"{path}: holds a JSON {_type_name(record)}, expected an object "
                             "written by mgno predict --estimate")
        return record

    def write_calibration(self, record: Mapping[str, Any]) -> None:
        """Write ``calibration.json`` atomically."""
        with writing(self.calibration_path):
            atomic_write_json(self.calibration_path, dict(record))

    def load_state(self) -> dict:
        """The resume checkpoint as a tree (see :func:`mgno.train.checkpoint.load_tree`)."""
        from mgno.train.checkpoint import load_tree

        return load_tree(self.state_path)

    def save_state(self, tree: dict) -> None:
        """Write the resume checkpoint atomically."""
        from mgno.train.checkpoint import save_tree

        with writing(self.state_path):
            save_tree(self.state_path, tree)


# ----------------------------------------------------------------------------- older names
def require_run_dir(run_dir: str | os.PathLike) -> Path:
    """Check that ``run_dir`` is a run directory written by ``mgno train``."""
    return RunDir(run_dir).require().path


def read_config(run_dir: str | os.PathLike) -> dict:
    """The run's ``config.json`` as a dict (see :meth:`RunDir.read_config`)."""
    return RunDir(run_dir).read_config()


def recorded_threads(run_dir: str | os.PathLike) -> int | None:
    """The torch threads a run was started with (``config.json``'s ``threads``), if known.

    A resumed run takes them again by default, since a gradient summed over
    another number of threads rounds differently and the resumed run would no
    longer repeat the uninterrupted one bit for bit.
    """
    rdir = RunDir(run_dir)
    if not rdir.has_config():
        return None
    value = rdir.read_config().get("threads")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    """The per-epoch records of ``metrics.jsonl`` (see :meth:`RunDir.read_metrics`)."""
    return RunDir(run_dir).read_metrics()
