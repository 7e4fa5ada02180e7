"""Use a trained run: evaluate it on a data set, predict into HDF5.

These are the functions behind ``mgno eval`` and ``mgno predict``; loading a
run is :mod:`mgno.train.loaded_run`, the checks of ``--estimate`` /
``--refine`` are :mod:`mgno.train.checked`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from mgno.data.datasets import load_arrays
from mgno.data.schema import (
    DatasetInfo,
    open_dataset,
    write_steady,
    write_trajectories,
)
from mgno.train.checked import Checks, predict_checked
from mgno.train.hybrid import (
    check_maxiter,
    check_tolerance,
)
from mgno.train.loaded_run import (
    LoadedRun,
    check_data_fits,
    describe_run_transfer,
    load_run,
    predict_arrays,
    recorded_training_grid,
)
from mgno.train.losses import relative_l2
from mgno.train.metrics import MetricAccumulator, field_metrics
from mgno.train.outputs import new_output


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
    refine_maxiter: int | None = None,
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
    1``) iterates the equation's solver (multigrid-CG; Helmholtz: GMRES with a
    shifted-Laplacian multigrid) from each prediction to that relative residual
    and writes the refined fields in float64 (:class:`~mgno.errors.NotConverged`,
    nothing written, if one misses it in ``refine_maxiter`` iterations; default
    the equation's, ``PDESpec.refine_maxiter``: 200, Helmholtz 500).
    """
    tol = None if refine is None else check_tolerance(refine)
    maxiter = None if refine_maxiter is None else check_maxiter(refine_maxiter)
    checks = Checks(estimate, calibrate, tol, maxiter)
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
            return predict_checked(run, info, out, meta, checks, bs, strategy)
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
