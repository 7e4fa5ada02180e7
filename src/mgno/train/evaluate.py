"""Use a trained run: load it, evaluate it on a data set, predict into HDF5.

These are the functions behind ``mgno eval`` and ``mgno predict``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mgno.data.datasets import PairDataset, WindowDataset, load_arrays, skip_frames
from mgno.data.schema import DatasetInfo, open_dataset, write_steady, write_trajectories
from mgno.errors import InputError
from mgno.train.config import TrainConfig
from mgno.train.distributed import choose_device
from mgno.train.losses import relative_l2
from mgno.train.metrics import MetricAccumulator, field_metrics
from mgno.train.rollout import Predictor
from mgno.train.run_dir import RunDir


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
    """

    run_dir: Path
    config: dict
    train_config: TrainConfig
    predictor: Predictor
    epoch: int
    device: torch.device

    @property
    def kind(self) -> str:
        """``"steady"`` or ``"trajectory"``."""
        return self.predictor.kind

    @property
    def start_frame(self) -> int:
        """First frame of every trajectory that the run uses (see ``TrainConfig``)."""
        return self.train_config.start_frame

    @property
    def window(self) -> int:
        """Frames in the input window (trajectories; 1 for steady runs)."""
        if self.kind == "steady" or self.train_config.protocol == "one-step":
            return 1
        return self.train_config.steps_in


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
    from mgno.nn import build_model

    rdir = RunDir(run_dir)
    config = rdir.read_config()
    path = rdir.path
    tcfg = TrainConfig.from_dict(config["train"], source=str(rdir.config_path))
    try:
        net = build_model(config["model"])
    except (TypeError, KeyError) as err:
        raise InputError(
            f"{rdir.config_path}: field 'model' is not a valid config ({err})"
        ) from None
    wfile = rdir.weights_file(which)
    weights, epoch = rdir.read_weights() if which == "best" else _last_weights(rdir)
    try:
        net.load_state_dict(weights)
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        detail = " ".join(" ".join(first[:3]).split())[:300]
        raise InputError(
            f"{wfile}: weights do not match the model in {rdir.config_path} ({detail})"
        ) from None
    norm_in, norm_out = rdir.read_normalizers()
    kind = "steady" if config["data"]["kind"] == "steady" else "trajectory"
    dev = choose_device(device)
    _check_strategy(strategy)
    rec = config["data"]
    predictor = Predictor(net, norm_in, norm_out, kind, grid=rec["grid"],
                          boundary=config["model"].get("boundary", rec.get("boundary")),
                          strategy=strategy).to(dev).eval()
    return LoadedRun(path, config, tcfg, predictor, epoch, dev)


def _last_weights(rdir: RunDir) -> tuple[dict, int]:
    tree = rdir.load_state()
    weights = tree.get("model", {})
    epoch = tree.get("counters", {}).get("epoch", 0)
    if not isinstance(weights, dict) or isinstance(epoch, bool) or not isinstance(epoch, int):
        raise InputError(
            f"{rdir.state_path}: fields 'model'/'counters.epoch' are not weights and an "
            "integer, expected a checkpoint written by mgno train"
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
        Unknown strategy, or ``multilevel`` asked of a model that is not MgNO
        on a grid other than its training grid.
    """
    from mgno.nn.resolution import describe_grids

    _check_strategy(strategy)
    rdir = RunDir(run_dir)
    config = rdir.read_config()
    path = rdir.path
    info = open_dataset(data)
    train = recorded_training_grid(config)["shape"]
    if len(train) != len(info.grid):
        return None  # check_data_fits reports the mismatch with its own message
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
    rec = run.config["data"]
    where = f"{info.path}"
    if info.kind != rec["kind"]:
        raise InputError(
            f"{where}: holds {info.kind} data, but {run.run_dir} was trained on "
            f"{rec['kind']} data; expected {rec['kind']}"
        )
    if len(info.grid) != len(rec["grid"]):
        raise InputError(
            f"{where}: {len(info.grid)}-D grid {list(info.grid)}, expected "
            f"{len(rec['grid'])}-D like the training grid {rec['grid']}"
        )
    for key in ("in_channels", "out_channels"):
        found, want = getattr(info, key), rec[key]
        if found != want:
            raise InputError(
                f"{where}: {key} is {found}, but the checkpoint in {run.run_dir} expects {want}"
            )


def _spacing(info: DatasetInfo) -> list[float]:
    from mgno.nn.resolution import grid_spacing

    return grid_spacing(info.grid, info.domain, info.boundary)


def _eval_view(run: LoadedRun, data, info: DatasetInfo):
    arrays = data.arrays
    if info.kind == "steady":
        return PairDataset(arrays["inputs"], arrays["outputs"])
    w = run.window
    # a window of w frames and one step to predict, from the run's start frame
    traj = skip_frames(arrays["trajectories"], run.start_frame, info.path, need=w + 1)
    steps = min(run.train_config.steps_out, traj.shape[1] - w)
    return WindowDataset(traj, w, steps)


def _batches(ds, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for idx in torch.arange(len(ds)).split(batch_size):
        yield ds.get_batch(idx)


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
    loaded = load_arrays(data)
    ds = _eval_view(run, loaded, info)
    bs = batch_size or run.train_config.eval_batch_size or run.train_config.batch_size
    acc = MetricAccumulator()
    per_step = None
    spacing = _spacing(info)
    for x, y in _batches(ds, bs):
        x, y = x.to(run.device), y.to(run.device)
        if run.kind == "steady":
            pred = run.predictor(x)
            acc.update(field_metrics(pred, y, spacing))
            continue
        pred = run.predictor(x, y.shape[1])  # (B, S, C, *grid)
        acc.update(field_metrics(pred.flatten(1, 2), y.flatten(1, 2), spacing))
        steps = (
            torch.stack(
                [relative_l2(pred[:, s], y[:, s], reduce=False) for s in range(y.shape[1])], dim=1
            )
            .double()
            .sum(0)
            .cpu()
        )
        per_step = steps if per_step is None else per_step + steps
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
    out.update(acc.result())
    if per_step is not None:
        out["steps"] = int(per_step.numel())
        out["rel_l2_per_step"] = (per_step / len(ds)).tolist()
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
        xb = xb.to(run.device)
        pred = run.predictor(xb) if run.kind == "steady" else run.predictor(xb, steps)
        outs.append(pred.float().cpu())
    return torch.cat(outs) if outs else x.new_zeros((0,))


def predict(
    run_dir: str | os.PathLike,
    input: str | os.PathLike,
    out: str | os.PathLike,
    *,
    batch_size: int | None = None,
    device: str = "auto",
    strategy: str = "resample",
    start_frame: int | None = None,
) -> Path:
    """Write the run's predictions for the inputs of ``input`` to a new HDF5 file.

    Steady data: ``out`` holds the same ``inputs`` and the predicted
    ``outputs``. Trajectories: the first window of every trajectory, from
    frame ``start_frame`` (default: the run's, as it was trained; 0 for a file
    of initial states), followed by the predicted frames (as many as ``input``
    stores after the window, else the run's ``steps_out``). The frames before
    ``start_frame`` are left out. The metadata are copied, with
    ``predicted_by`` added.
    """
    if Path(out).resolve() == Path(input).resolve():
        raise InputError(f"{out}: is the --input file; expected a different --out path")
    describe_run_transfer(run_dir, input, strategy)
    run = load_run(run_dir, device=device, strategy=strategy)
    info = open_dataset(input)
    check_data_fits(run, info)
    loaded = load_arrays(input)
    bs = batch_size or run.train_config.eval_batch_size or run.train_config.batch_size
    meta = dict(
        pde=info.pde,
        params=info.params,
        boundary=list(info.boundary),
        domain=list(info.domain),
        extra_attrs={"predicted_by": str(run.run_dir), "source": str(info.path)},
    )
    if run.kind == "steady":
        x = loaded.arrays["inputs"]
        pred = predict_arrays(run, x, batch_size=bs)
        return write_steady(out, x.numpy(), pred.numpy(), **meta)
    w = run.window
    first = run.start_frame if start_frame is None else int(start_frame)
    hint = "" if start_frame is not None else "; start_frame 0 rolls out from frame 0"
    traj = skip_frames(loaded.arrays["trajectories"], first, input, need=w, hint=hint)
    times = loaded.arrays["times"][first:]
    steps = traj.shape[1] - w if traj.shape[1] > w else run.train_config.steps_out
    pred = predict_arrays(run, traj[:, :w], steps=steps, batch_size=bs)
    full = torch.cat([traj[:, :w], pred], dim=1).numpy()
    t = np.asarray(times, dtype=np.float64)
    if t.shape[0] < full.shape[1]:
        dt = float(t[-1] - t[-2]) if t.shape[0] > 1 else 1.0
        extra = t[-1] + dt * np.arange(1, full.shape[1] - t.shape[0] + 1)
        t = np.concatenate([t, extra])
    return write_trajectories(out, full, t[: full.shape[1]], **meta)
