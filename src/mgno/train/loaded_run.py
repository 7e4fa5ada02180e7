"""A trained run loaded for use: its network, task and normalisers, on a device.

:func:`load_run` reads a run directory (weights, config) into a
:class:`LoadedRun`; :func:`predict_arrays` applies one to arrays;
:func:`describe_run_transfer` says how a run meets data on another grid.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mgno.data.schema import DatasetInfo, open_dataset
from mgno.errors import InputError
from mgno.train.config import TrainConfig
from mgno.train.distributed import choose_device
from mgno.train.rollout import Predictor
from mgno.train.run_dir import RunDir
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
        return predict_arrays(self, x, steps, self.batch(batch_size)).numpy()


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


@torch.inference_mode()
def predict_arrays(
    run: LoadedRun, x: torch.Tensor, steps: int | None = 1, batch_size: int = 8
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
