"""Predictions checked against their equation: ``predict --estimate`` / ``--refine``.

The run and file handling of the checks (calibration on validation data and
its cache, per-sample residuals, estimates, flags and refinement written
beside the predictions); the numerics are in :mod:`mgno.train.hybrid`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mgno.data.datasets import load_arrays
from mgno.data.equation import equation_spec, rebuild_equation
from mgno.data.schema import (
    DatasetInfo,
    open_dataset,
    read_per_sample,
    write_steady,
)
from mgno.errors import InputError, NotConverged
from mgno.train.hybrid import (
    Calibration,
    fit_calibration,
    indicators,
    refine,
    relative_errors,
)
from mgno.train.loaded_run import LoadedRun, check_data_fits, load_run, predict_arrays
from mgno.train.run_dir import RunDir, parse_json


# --------------------------------------------------------------------------- checked predictions
@dataclass(frozen=True)
class Checks:
    """What ``predict`` checks: ``estimate`` (bool), ``calibrate`` (file or None),
    ``tol`` (refinement tolerance or None), ``maxiter`` (refinement iterations)."""

    estimate: bool
    calibrate: str | os.PathLike | None
    tol: float | None
    maxiter: int | None

    def __post_init__(self) -> None:
        if self.calibrate is not None and not self.estimate:
            raise InputError(f"--calibrate {self.calibrate}: calibrates --estimate, which was "
                             "not given; expected --estimate with it")

    @property
    def wanted(self) -> bool:
        """Whether anything is checked."""
        return self.estimate or self.tol is not None


def _require_equation(run: LoadedRun, info: DatasetInfo, option: str,
                      refine: bool = False) -> None:
    """Refuse a trajectory run, or data whose discrete equation cannot be rebuilt (or refined)."""
    if not run.task.steady:
        raise InputError(f"{option}: {run.run_dir} predicts time-dependent data, which has no "
                         "steady equation to rebuild; expected a run trained on steady data")
    try:
        equation_spec(info, refine=refine)
    except InputError as err:
        raise InputError(f"{option}: {err}") from None


def _per_chunk(info: DatasetInfo, x: np.ndarray, fields: np.ndarray, batch: int,
               fn: Callable[[Any, np.ndarray], Any]) -> list:
    """``fn(equation, fields[chunk])`` over chunks of ``batch`` samples, each with its equation."""
    return [fn(rebuild_equation(info, x[lo:lo + batch]), fields[lo:lo + batch])
            for lo in range(0, len(x), batch)]


def predict_checked(run: LoadedRun, info: DatasetInfo, out, meta: dict, checks: Checks,
                     bs: int, strategy: str) -> Path:
    """The steady prediction with ``--estimate`` / ``--refine``, written only if all succeed."""
    option = "--refine" if checks.tol is not None else "--estimate"
    _require_equation(run, info, option, refine=checks.tol is not None)
    cal, cal_note = None, None
    if checks.estimate:
        cal, cal_note = _calibration(run, checks.calibrate, bs, strategy)
    x = load_arrays(info.path).arrays["inputs"].numpy()
    t0 = time.perf_counter()
    pred = predict_arrays(run, torch.from_numpy(x), batch_size=bs).numpy()
    record: dict[str, Any] = {"inference_seconds": time.perf_counter() - t0}
    per_sample: dict[str, np.ndarray] = {}
    if cal is not None:
        per_sample.update(_estimates(info, x, pred, bs, cal))
        record["estimate"] = {**cal.to_dict(), "calibration": cal_note}
    outputs = pred
    if checks.tol is not None:
        outputs, record["refine"], refined = _refined(info, x, pred, bs, checks)
        per_sample.update(refined)
    meta["extra_attrs"]["checks"] = json.dumps(record)
    return write_steady(out, x, outputs, per_sample=per_sample, **meta)


def _estimates(info: DatasetInfo, x: np.ndarray, pred: np.ndarray, bs: int,
               cal: Calibration) -> dict[str, np.ndarray]:
    """Per-sample residual, indicator, estimate and flag of predictions ``(N, 1, *grid)``."""
    parts = _per_chunk(info, x, pred, bs, indicators)
    res = np.concatenate([p[0] for p in parts])
    ind = np.concatenate([p[1] for p in parts])
    est = cal.estimate(ind)
    return {"residual": res, "error_indicator": ind, "error_estimate": est,
            "error_flag": est > cal.flag_threshold}


def _refined(info: DatasetInfo, x: np.ndarray, pred: np.ndarray, bs: int,
             checks: Checks) -> tuple[np.ndarray, dict, dict[str, np.ndarray]]:
    """Refine every prediction to ``checks.tol``; NotConverged (nothing written) on a miss."""
    t0 = time.perf_counter()
    maxiter = checks.maxiter or equation_spec(info).refine_maxiter
    parts = _per_chunk(info, x, pred, bs, lambda eq, p: refine(eq, p, checks.tol, maxiter))
    seconds = time.perf_counter() - t0
    iters = np.concatenate([p.iterations for p in parts])
    reached = np.concatenate([p.residual for p in parts])
    ok = np.concatenate([p.converged for p in parts])
    if not ok.all():
        worst = int(np.argmax(np.where(ok, -np.inf, reached)))
        raise NotConverged(
            f"--refine {checks.tol:g}: {int((~ok).sum())} of {len(ok)} samples of {info.path} "
            f"stopped at --refine-maxiter {maxiter} above the tolerance (worst: sample "
            f"{worst}, relative residual {reached[worst]:.3g}); nothing written; expected a "
            "larger --refine-maxiter or a looser --refine"
        )
    record = {"tol": checks.tol, "maxiter": maxiter,
              "method": equation_spec(info).refine_method, "seconds": seconds}
    outputs = np.concatenate([p.outputs for p in parts])
    return outputs, record, {"refine_iterations": iters, "refine_residual": reached}


# --------------------------------------------------------------------------- calibration
def calibration_source(run: LoadedRun, data: str | os.PathLike | None) -> tuple[Path, int, int]:
    """``(file, start, stop)`` of the calibration samples: ``data``, else the run's validation.

    The run's validation data are its ``--val`` file, else the last ``n_val``
    samples of its training file, as recorded in ``config.json``.
    """
    if data is not None:
        return Path(data), 0, open_dataset(data).n_samples
    rec = run.config["data"]
    val, n_val = rec.get("val"), rec.get("n_val") or 0
    path = Path(val) if val else Path(str(rec.get("path", "")))
    hint = ("expected --calibrate VAL.h5 (steady data of the run's equation with true "
            "outputs)")
    if not val and not (isinstance(n_val, int) and n_val > 0):
        raise InputError(f"--estimate: {run.run_dir} has no calibration and trained without "
                         f"validation data; {hint}")
    if not path.is_file():
        raise InputError(f"--estimate: {run.run_dir} has no calibration and its validation "
                         f"data {path} are not there; {hint}")
    n = open_dataset(path).n_samples
    if val:
        return path, 0, n
    if n != rec.get("n_samples"):
        raise InputError(f"--estimate: {path} holds {n} samples, the run trained on "
                         f"{rec.get('n_samples')}; the validation split is lost; {hint}")
    return path, n - n_val, n


def calibrate(
    run_dir: str | os.PathLike,
    data: str | os.PathLike | None = None,
    *,
    batch_size: int | None = None,
    device: str = "auto",
    strategy: str = "resample",
) -> Calibration:
    """Fit the error-estimate calibration of a run's best weights; cache it in the run.

    Parameters
    ----------
    run_dir:
        The run directory.
    data:
        Steady data with true outputs, of an equation mgno can rebuild
        (default: the run's validation data, see :func:`calibration_source`).
    batch_size, device, strategy:
        As in :func:`predict`.

    Returns
    -------
    Calibration
        Also written to ``RUN_DIR/calibration.json`` when the folder is
        writable (``source["cached"]`` says whether it was).
    """
    run = load_run(run_dir, device=device, strategy=strategy)
    return _fit_and_cache(run, data, run.batch(batch_size), strategy)


def _calibration(run: LoadedRun, data, bs: int, strategy: str) -> tuple[Calibration, str]:
    """The cached calibration of the run's weights, else a new one; and where it came from."""
    rdir = RunDir(run.run_dir)
    if data is None:
        record = rdir.read_calibration()
        if record is not None:
            cal = Calibration.from_dict(record, str(rdir.calibration_path))
            if cal.weights_sha256 == rdir.weights_sha256():
                return cal, f"cached in {rdir.calibration_path}"
    cal = _fit_and_cache(run, data, bs, strategy)
    return cal, f"fitted on {cal.source.get('path')} [{cal.source.get('start')}:" \
                f"{cal.source.get('stop')}]"


def _fit_and_cache(run: LoadedRun, data, bs: int, strategy: str) -> Calibration:
    """Predict the calibration samples, fit, write ``calibration.json`` (if the folder lets us)."""
    path, start, stop = calibration_source(run, data)
    info = open_dataset(path)
    check_data_fits(run, info)
    _require_equation(run, info, "--calibrate" if data is not None else "--estimate")
    arrays = load_arrays(path, start, stop).arrays
    x, y = arrays["inputs"].numpy(), arrays["outputs"].numpy()
    pred = predict_arrays(run, torch.from_numpy(x), batch_size=bs).numpy()
    parts = _per_chunk(info, x, pred, bs, indicators)
    res = np.concatenate([p[0] for p in parts])
    ind = np.concatenate([p[1] for p in parts])
    rdir = RunDir(run.run_dir)
    source = {"path": str(path), "start": start, "stop": stop, "pde": info.pde,
              "grid": list(info.grid), "strategy": strategy}
    cal = fit_calibration(relative_errors(pred, y), ind, res, source, rdir.weights_sha256())
    try:
        rdir.write_calibration(cal.to_dict())
        cal.source["cached"] = True
    except (OSError, InputError):
        cal.source["cached"] = False  # a read-only run: the calibration is used, not kept
    return cal


def prediction_checks(path: str | os.PathLike) -> dict:
    """A summary of the checks ``predict`` wrote into ``path`` (``{}`` when there are none).

    Returns
    -------
    dict
        ``n_samples``; ``inference_seconds``; with ``--estimate``: ``residual``,
        ``error_estimate`` (median, max), ``flagged`` (count), ``flagged_samples``
        (indices), ``flag_threshold`` and ``calibration`` (where it came from);
        with ``--refine``: ``tol``, ``iterations`` (median, max, total),
        ``refine_residual`` (max) and ``refine_seconds``.
    """
    info = open_dataset(path)
    raw = info.attrs.get("checks")
    if not raw:
        return {}
    record = parse_json(raw, Path(path), "the JSON checks of mgno predict") \
        if isinstance(raw, str) else None
    if not isinstance(record, dict):
        raise InputError(f"{path}: attribute 'checks' is {raw!r:.60}, expected a JSON object "
                         "written by mgno predict")
    per = read_per_sample(path)
    out: dict[str, Any] = {"n_samples": info.n_samples,
                           "inference_seconds": record.get("inference_seconds")}
    est = record.get("estimate")
    if isinstance(est, dict) and "error_estimate" in per:
        flags = np.flatnonzero(per["error_flag"])
        out.update(residual=_stats(per["residual"]), error_estimate=_stats(per["error_estimate"]),
                   flagged=int(len(flags)), flagged_samples=flags.tolist(),
                   flag_threshold=est.get("flag_threshold"), calibration=est.get("calibration"))
    ref = record.get("refine")
    if isinstance(ref, dict) and "refine_iterations" in per:
        its = per["refine_iterations"]
        out.update(tol=ref.get("tol"), iterations={**_stats(its), "total": int(its.sum())},
                   refine_residual=_stats(per["refine_residual"]),
                   refine_seconds=ref.get("seconds"))
    return out


def _stats(values: np.ndarray) -> dict:
    v = np.asarray(values, dtype=np.float64)
    return {"median": float(np.median(v)), "max": float(v.max())}
