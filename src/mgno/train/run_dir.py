"""The files of a run directory and how to read them back.

::

    RUN_DIR/
      config.json              model config, training recipe, data description
      normalizer.safetensors   normaliser statistics (tensors) + kinds (metadata)
      model.safetensors        weights at the epoch of lowest validation error
      checkpoint.safetensors   full training state for --resume (weights,
                               optimiser, scheduler, RNG, counters, history)
      metrics.jsonl            one JSON object per finished epoch

Everything is written atomically; nothing in it is a pickle.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mgno.errors import InputError

CONFIG = "config.json"
NORMALIZER = "normalizer.safetensors"
WEIGHTS = "model.safetensors"
STATE = "checkpoint.safetensors"
METRICS = "metrics.jsonl"


def require_run_dir(run_dir: str | os.PathLike) -> Path:
    """Check that ``run_dir`` is a run directory written by ``mgno train``."""
    path = Path(run_dir)
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no such run directory, expected the --out of `mgno train`"
        )
    if not path.is_dir():
        raise InputError(f"{path}: is a file, expected a run directory written by `mgno train`")
    if not (path / CONFIG).is_file():
        raise InputError(f"{path}: no {CONFIG}, expected a run directory written by `mgno train`")
    return path


def read_config(run_dir: str | os.PathLike) -> dict:
    """The run's ``config.json`` as a dict."""
    path = require_run_dir(run_dir) / CONFIG
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: not valid JSON ({err}), expected the run's config") from None
    for key in ("model", "train", "data"):
        if not isinstance(cfg, dict) or key not in cfg:
            raise InputError(
                f"{path}: field {key!r} missing, expected a config written by mgno train"
            )
    return cfg


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    """The per-epoch records of ``metrics.jsonl`` (empty list if none yet)."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        return []
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                raise InputError(
                    f"{path}: line {n} is not JSON, expected one object per line"
                ) from None
    return out
