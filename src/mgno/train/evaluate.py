"""Use a trained run: load it, evaluate it on a data set, predict into HDF5.

These are the functions behind ``mgno eval`` and ``mgno predict`` (with
``--estimate`` / ``--refine``: :func:`calibrate`, :func:`prediction_checks`
and the numerics of :mod:`mgno.train.hybrid`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
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
    write_trajectories,
)
from mgno.errors import InputError, NotConverged
from mgno.train.config import TrainConfig
from mgno.train.distributed import choose_device
from mgno.train.hybrid import (
    REFINE_MAXITER,
    Calibration,
    check_maxiter,
    check_tolerance,
    fit_calibration,
    indicators,
    refine,
    relative_errors,
)
from mgno.train.losses import relative_l2
from mgno.train.metrics import MetricAccumulator, field_metrics
from mgno.train.outputs import new_output
from mgno.train.rollout import Predictor
from mgno.train.run_dir import RunDir, parse_json
from mgno.train.task import Task, check_run_data, task_of_run


@dataclass
class LoadedRun:
    """A trained run ready to predict.

    Attributes
    ----------
    run_dir:
        Its directory.
    config:
        ``config.json`` as a dict.
    train_config:
        The recipe it was trained with.
    predictor:
        Network + normalisers, in eval mode, on ``device``.
    epoch:
        Epoch of the loaded weights (0 if unknown).
    device:
        Where the predictor lives.
    task:
        What the run learned (steady, one-step, k -> k; its frame window).
    """

    run_dir: Path
    config: dict
    train_config: TrainConfig
    predictor: Predictor
    epoch: int
    device: torch.device
    task: Task

    @property
    def kind(self) -> str:
        """``"steady"`` or ``"trajectory"`` (the predictor's kind)."""
        return self.predictor.kind

    @property
    def start_frame(self) -> int:
        """First frame of every trajectory that the run uses (see ``TrainConfig``)."""
        return self.task.start_frame

    @property
    def window(self) -> int:
        """Frames in the input window (trajectories; 1 for steady runs)."""
        return self.task.window

    @property
    def batch_size(self) -> int:
        """The run's evaluation batch size."""
        return self.train_config.eval_batch_size or self.train_config.batch_size

    def batch(self, batch_size: int | None) -> int:
        """``batch_size`` when given (refused below 1), else the run's own."""
        if batch_size is not None and (isinstance(batch_size, bool) or batch_size < 1):
            raise InputError(f"--batch-size: found {batch_size}, expected an integer >= 1")
        return batch_size or self.batch_size

    def predict_arrays(
        self, inputs: np.ndarray, steps: int | None = None, batch_size: int | None = None
    ) -> np.ndarray:
        """Predictions for NumPy inputs, in the data's physical units.

        Parameters
        ----------
        inputs
            Steady runs: ``(N, C_in, *grid)``; trajectory runs: windows
            ``(N, window, C, *grid)``. Any grid: other grids follow the
            resolution strategy the run was loaded with.
        steps
            Trajectory runs: frames to roll out (default: the run's ``steps_out``).
        batch_size
            Samples per forward pass (default: the run's evaluation batch size).

        Returns
        -------
        numpy.ndarray, float32
            Steady ``(N, C_out, *grid)``; trajectory ``(N, steps, C, *grid)``.
        """
        x = torch.as_tensor(np.asarray(inputs, dtype=np.float32))
        want = 2 + len(self.predictor.grid or ()) + (0 if self.task.steady else 1)
        if self.predictor.grid and x.ndim != want:
            raise InputError(f"inputs: shape {tuple(x.shape)} has {x.ndim} axes, expected {want} "
                             "(batch, " + ("channels" if self.task.steady else "window, channels")
                             + ", *grid)")
        steps = None if self.task.steady else (steps or self.train_config.steps_out)
        out = []
        with torch.no_grad():
            for chunk in x.split(self.batch(batch_size)):
                out.append(self.task.apply(self.predictor, chunk.to(self.device), steps).cpu())
        return torch.cat(out).numpy()


def load_run(
    run_dir: str | os.PathLike,
    *,
    which: str = "best",
    device: str = "auto",
    strategy: str = "resample",
) -> LoadedRun:
    """Load a run written by :func:`mgno.train.train`.

    Parameters
    ----------
    run_dir:
        The run directory.
    which:
        ``"best"`` (``model.safetensors``, the epoch of lowest validation error)
        or ``"last"`` (the weights in ``checkpoint.safetensors``).
    device:
        ``"auto"``, ``"cpu"``, ``"cuda"``...
    strategy:
        How to run on a grid other than the training grid: ``"resample"``,
        ``"multilevel"`` or ``"native"`` (see :mod:`mgno.nn.resolution`).
    """
    from mgno.train.build import build_network

    rdir = RunDir(run_dir)
    config = rdir.read_config()
    path = rdir.path
    tcfg = TrainConfig.from_dict(config["train"], source=str(rdir.config_path))
    net = build_network(config["model"], f"{rdir.config_path}: field 'model'")
    wfile = rdir.weights_file(which)
    weights, epoch = rdir.read_weights() if which == "best" else _last_weights(rdir, tcfg)
    try:
        net.load_state_dict(weights)
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        detail = " ".join(" ".join(first[:3]).split())[:300]
        raise InputError(
            f"{wfile}: weights do not match the model in {rdir.config_path} ({detail})"
        ) from None
    norm_in, norm_out = rdir.read_normalizers()
    task = task_of_run(config, tcfg)
    dev = choose_device(device)
    _check_strategy(strategy)
    rec = config["data"]
    predictor = Predictor(net, norm_in, norm_out, task.predictor_kind, grid=rec["grid"],
                          boundary=config["model"].get("boundary", rec.get("boundary")),
                          strategy=strategy).to(dev).eval()
    return LoadedRun(path, config, tcfg, predictor, epoch, dev, task)


def _last_weights(rdir: RunDir, tcfg: TrainConfig) -> tuple[dict, int]:
    tree = rdir.load_state()
    weights = tree.get("model", {})
    epoch = tree.get("counters", {}).get("epoch", 0)
    if not isinstance(weights, dict) or isinstance(epoch, bool) or not isinstance(epoch, int):
        raise InputError(
            f"{rdir.state_path}: fields 'model'/'counters.epoch' are not weights and an "
            "integer, expected a checkpoint written by mgno train"
        )
    phase = tree.get("counters", {}).get("phase", 0)
    final = tcfg.coarse_levels or 0  # the index of a coarse-to-fine run's last grid phase
    if phase != final:
        raise InputError(
            f"{rdir.state_path}: holds the network of coarse grid phase {phase} (epoch "
            f"{epoch}) of a coarse-to-fine run, not one trained on the data's grid; expected "
            "--resume to finish the run first"
        )
    return weights, epoch


def _check_strategy(strategy: str) -> str:
    from mgno.nn.resolution import check_strategy

    try:
        return check_strategy(strategy)
    except ValueError as err:
        raise InputError(f"--{err}") from None


def recorded_training_grid(config: dict) -> dict:
    """The training grid a run recorded: ``shape``, ``spacing``, ``domain``, ``boundary``.

    Runs written before the ``training_grid`` entry existed get it rebuilt
    from their data summary.
    """
    from mgno.nn.resolution import grid_record

    if "training_grid" in config:
        return dict(config["training_grid"])
    rec = config["data"]
    return grid_record(rec["grid"], rec.get("domain"), rec.get("boundary"))


def describe_run_transfer(
    run_dir: str | os.PathLike, data: str | os.PathLike, strategy: str = "resample"
) -> str | None:
    """One line saying how a run will be applied to the grid of ``data``.

    Reads only the run's ``config.json`` and the data set's header, so a
    caller can say what it is about to do before the work starts.

    Parameters
    ----------
    run_dir:
        The run directory.
    data:
        The data set (HDF5) to evaluate or predict on.
    strategy:
        ``"resample"``, ``"multilevel"`` or ``"native"``.

    Returns
    -------
    str or None
        None when the data grid is the training grid.

    Raises
    ------
    InputError
        Unknown strategy, ``multilevel`` asked of a model that is not MgNO
        on a grid other than its training grid, or ``native`` asked of a
        model whose ``layer-grid`` norm is tied to its training grid.
    """
    from mgno.nn.resolution import check_native_grid, describe_grids

    _check_strategy(strategy)
    rdir = RunDir(run_dir)
    config = rdir.read_config()
    path = rdir.path
    info = open_dataset(data)
    train = recorded_training_grid(config)["shape"]
    if len(train) != len(info.grid):
        return None  # check_data_fits reports the mismatch with its own message
    check_native_grid(config.get("model", {}), train, info.grid, strategy)
    line = describe_grids(train, info.grid, strategy)
    family = config.get("model", {}).get("model", "mgno")
    if line is not None and strategy == "multilevel" and family != "mgno":
        raise InputError(
            f"--resolution-strategy multilevel: needs an MgNO run, {path} holds a "
            f"{family!r} model; expected 'resample' or 'native'"
        )
    return line


def check_data_fits(run: LoadedRun, info: DatasetInfo) -> None:
    """Refuse data whose kind, dimension or channels differ from the run's training data."""
    check_run_data(info, run.config["data"], run.run_dir)


def _spacing(info: DatasetInfo) -> list[float]:
    from mgno.nn.resolution import grid_spacing

    return grid_spacing(info.grid, info.domain, info.boundary)


def _batches(ds, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for idx in torch.arange(len(ds)).split(batch_size):
        yield ds.get_batch(idx)


def score_view(run: LoadedRun, ds, spacing: list[float], batch_size: int) -> dict:
    """Field metrics of ``run`` on a view (see :meth:`Task.eval_view`), means over samples.

    For rollouts the field metrics cover the whole predicted block, and
    ``steps`` / ``rel_l2_per_step`` give the rel. L2 after each step.
    """
    acc = MetricAccumulator()
    per_step = None
    for x, y in _batches(ds, batch_size):
        x, y = x.to(run.device), y.to(run.device)
        pred = run.task.predict_batch(run.predictor, x, y)
        acc.update(field_metrics(*run.task.flat(pred, y), spacing))
        if not run.task.steady:  # pred, y: (B, S, C, *grid)
            errs = [relative_l2(pred[:, s], y[:, s], reduce=False) for s in range(y.shape[1])]
            steps = torch.stack(errs, dim=1).double().sum(0).cpu()
            per_step = steps if per_step is None else per_step + steps
    out = acc.result()
    if per_step is not None:
        out["steps"] = int(per_step.numel())
        out["rel_l2_per_step"] = (per_step / len(ds)).tolist()
    return out


@torch.inference_mode()
def evaluate(
    run_dir: str | os.PathLike,
    data: str | os.PathLike,
    *,
    batch_size: int | None = None,
    device: str = "auto",
    which: str = "best",
    strategy: str = "resample",
) -> dict:
    """Error metrics of a trained run on a data set.

    Parameters
    ----------
    run_dir:
        The run directory.
    data:
        Test set (same kind and channels as the training data).
    batch_size:
        Evaluation batch (default: the run's).
    device, which, strategy:
        As in :func:`load_run`; the test grid may differ from the training grid.

    Returns
    -------
    dict
        ``rel_l2``, ``rel_h1`` (finite differences), ``rel_h1_fourier``,
        ``nrmse``, ``rmse``, ``max_error``, ``boundary_rmse``, ``rmse_low`` /
        ``rmse_mid`` / ``rmse_high`` (spectral bands), plus ``n_samples``,
        ``epoch``, ``grid`` (of the data), ``training_grid`` (shape, spacing,
        domain, boundary), ``strategy`` and ``transfer`` (the line of
        :func:`describe_run_transfer`, None on the training grid) and, for
        trajectories, ``steps`` and ``rel_l2_per_step`` (the rollout error
        after each step). Means over samples; for rollouts
        the field metrics cover the whole predicted block.
    """
    transfer = describe_run_transfer(run_dir, data, strategy)
    run = load_run(run_dir, which=which, device=device, strategy=strategy)
    info = open_dataset(data)
    check_data_fits(run, info)
    ds = run.task.eval_view(load_arrays(data))
    scores = score_view(run, ds, _spacing(info), run.batch(batch_size))
    out: dict = {
        "run_dir": str(run.run_dir),
        "data": str(info.path),
        "n_samples": len(ds),
        "epoch": run.epoch,
        "grid": list(info.grid),
        "training_grid": recorded_training_grid(run.config),
        "strategy": strategy,
        "transfer": transfer,
    }
    out.update(scores)
    return out


@torch.inference_mode()
def predict_arrays(
    run: LoadedRun, x: torch.Tensor, steps: int = 1, batch_size: int = 8
) -> torch.Tensor:
    """Predictions of a loaded run, batch by batch.

    Steady: ``(N, C_in, *grid) -> (N, C_out, *grid)``. Trajectory: windows
    ``(N, T_in, C, *grid) -> (N, steps, C, *grid)``.
    """
    outs = []
    for xb in x.split(batch_size):
        pred = run.task.apply(run.predictor, xb.to(run.device), steps)
        outs.append(pred.float().cpu())
    return torch.cat(outs) if outs else x.new_zeros((0,))


def _extend_times(times: torch.Tensor, n: int) -> np.ndarray:
    """The first ``n`` times, continued with the last step when ``times`` is shorter."""
    t = np.asarray(times, dtype=np.float64)
    if t.shape[0] < n:
        dt = float(t[-1] - t[-2]) if t.shape[0] > 1 else 1.0
        t = np.concatenate([t, t[-1] + dt * np.arange(1, n - t.shape[0] + 1)])
    return t[:n]


def predict(
    run_dir: str | os.PathLike,
    input: str | os.PathLike,
    out: str | os.PathLike,
    *,
    batch_size: int | None = None,
    device: str = "auto",
    strategy: str = "resample",
    start_frame: int | None = None,
    force: bool = False,
    estimate: bool = False,
    calibrate: str | os.PathLike | None = None,
    refine: float | None = None,
    refine_maxiter: int = REFINE_MAXITER,
) -> Path:
    """Write the run's predictions for the inputs of ``input`` to a new HDF5 file.

    Steady data: ``out`` holds the same ``inputs`` and the predicted
    ``outputs``. Trajectories: the first window of every trajectory, from
    frame ``start_frame`` (default: the run's, as it was trained; 0 for a file
    of initial states), followed by the predicted frames (as many as ``input``
    stores after the window, else the run's ``steps_out``). The frames before
    ``start_frame`` are left out. The metadata are copied, with
    ``predicted_by`` added. An existing ``out`` is refused unless ``force``;
    the file appears only once every prediction succeeded.

    Steady data of an equation mgno can rebuild can be checked against it
    (``docs/hybrid.md``): ``estimate`` adds per-sample residuals, indicators,
    estimates calibrated on ``calibrate`` (default: the cache, else the run's
    validation data; :func:`calibrate`) and flags; ``refine`` (``0 < refine <
    1``) iterates multigrid-CG from each prediction to that relative residual
    and writes the refined fields in float64 (:class:`~mgno.errors.NotConverged`,
    nothing written, if one misses it in ``refine_maxiter`` iterations).
    """
    tol = None if refine is None else check_tolerance(refine)
    checks = Checks(estimate, calibrate, tol, check_maxiter(refine_maxiter))
    with new_output(out, force, source=input, option="--out"):
        describe_run_transfer(run_dir, input, strategy)
        run = load_run(run_dir, device=device, strategy=strategy)
        info = open_dataset(input)
        check_data_fits(run, info)
        run.task.check_start_frame(start_frame)
        bs = run.batch(batch_size)
        meta = dict(pde=info.pde, params=info.params, boundary=list(info.boundary),
                    domain=list(info.domain),
                    extra_attrs={"predicted_by": str(run.run_dir), "source": str(info.path)})
        if checks.wanted:
            return _predict_checked(run, info, out, meta, checks, bs, strategy)
        arrays = load_arrays(input).arrays
        if run.task.steady:
            x = arrays["inputs"]
            pred = predict_arrays(run, x, batch_size=bs)
            return write_steady(out, x.numpy(), pred.numpy(), **meta)
        window, steps, first = run.task.prediction_window(
            arrays["trajectories"], input, start_frame
        )
        pred = predict_arrays(run, window, steps=steps, batch_size=bs)
        full = torch.cat([window, pred], dim=1).numpy()
        times = _extend_times(arrays["times"][first:], full.shape[1])
        return write_trajectories(out, full, times, **meta)


# --------------------------------------------------------------------------- checked predictions
@dataclass(frozen=True)
class Checks:
    """What ``predict`` checks: ``estimate`` (bool), ``calibrate`` (file or None),
    ``tol`` (refinement tolerance or None), ``maxiter`` (refinement iterations)."""

    estimate: bool
    calibrate: str | os.PathLike | None
    tol: float | None
    maxiter: int

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


def _predict_checked(run: LoadedRun, info: DatasetInfo, out, meta: dict, checks: Checks,
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
    parts = _per_chunk(info, x, pred, bs, lambda eq, p: refine(eq, p, checks.tol, checks.maxiter))
    seconds = time.perf_counter() - t0
    iters = np.concatenate([p.iterations for p in parts])
    reached = np.concatenate([p.residual for p in parts])
    ok = np.concatenate([p.converged for p in parts])
    if not ok.all():
        worst = int(np.argmax(np.where(ok, -np.inf, reached)))
        raise NotConverged(
            f"--refine {checks.tol:g}: {int((~ok).sum())} of {len(ok)} samples of {info.path} "
            f"stopped at --refine-maxiter {checks.maxiter} above the tolerance (worst: sample "
            f"{worst}, relative residual {reached[worst]:.3g}); nothing written; expected a "
            "larger --refine-maxiter or a looser --refine"
        )
    record = {"tol": checks.tol, "maxiter": checks.maxiter,
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
