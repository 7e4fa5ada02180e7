"""What a ``mgno train`` call will do, decided before anything is written.

:func:`plan_run` checks the run directory (new, resumed, or restarted because
it stopped before its first checkpoint), reads and checks the data, settles
the training recipe and the network config (from the data, the preset and the
options, or from the run's own ``config.json`` when resuming), and cuts the
training and validation views. Everything it refuses is refused before the
first file is touched.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mgno.data.datasets import LoadedData, coarsen_data, load_arrays
from mgno.data.schema import DatasetInfo
from mgno.errors import InputError
from mgno.train.config import TrainConfig
from mgno.train.defaults import build_model_config, build_train_config
from mgno.train.loggers import require_logger
from mgno.train.phases import Phase, grid_phases
from mgno.train.run_dir import NUMERICALLY_NEUTRAL, RunDir
from mgno.train.task import Task, check_same_data

#: Fields of the recipe a resumed run may change (they do not alter the arithmetic).
RESUME_MUTABLE = NUMERICALLY_NEUTRAL
#: Every recipe field's default: the value of a field a run's config.json predates.
_TRAIN_DEFAULTS = TrainConfig().to_dict()
#: Fields of the training data a resumed run must match.
_RESUME_DATA = ("kind", "grid", "in_channels", "out_channels")


@dataclass
class TrainRequest:
    """The arguments of :func:`mgno.train.train`, checked.

    Attributes
    ----------
    data, val, out:
        Training set, validation set (or None) and run directory.
    preset, family:
        Preset name and network family (``--model``), or None.
    model_overrides:
        Network options (``None`` values ignored).
    overrides:
        :class:`TrainConfig` fields given (``None`` values ignored).
    resume, progress:
        Continue the run in ``out``; show progress on stderr.
    callbacks:
        The caller's own :class:`~mgno.train.engine.Callbacks` (loggers...).
    """

    data: Path
    out: Path
    val: Path | None = None
    preset: str | None = None
    family: str | None = None
    model_overrides: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    resume: bool = False
    progress: bool = True
    callbacks: list = field(default_factory=list)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.overrides) - set(TrainConfig.__dataclass_fields__))
        if unknown:
            raise InputError(f"train: unknown option {unknown[0]!r}")

    @property
    def run_dir(self) -> RunDir:
        """The run directory."""
        return RunDir(self.out)


@dataclass
class RunPlan:
    """Everything :func:`plan_run` settled.

    Attributes
    ----------
    cfg, model_cfg, preset_name:
        The recipe, the network config and the preset's name (or None).
    info, task:
        The training data's description and the learning problem.
    train_ds, val_ds:
        The views (``val_ds`` None without validation).
    n, n_val:
        Samples in the training file and validation samples.
    saved:
        The run's ``config.json`` when resuming or restarting, else None.
    resume_state:
        Whether the checkpoint is loaded (False: the run starts at epoch 0).
    phases:
        The grid phases of a coarse-to-fine run (:mod:`mgno.train.phases`); empty
        without a schedule.
    train_data, val_data:
        The data the views were cut from (``val_data`` None without a ``--val``
        file), restricted for the coarse phases by :meth:`phase_views`.
    """

    cfg: TrainConfig
    model_cfg: dict[str, Any]
    preset_name: str | None
    info: DatasetInfo
    task: Task
    train_ds: Any
    val_ds: Any
    n: int
    n_val: int
    saved: dict | None
    resume_state: bool
    phases: list[Phase] = field(default_factory=list)
    train_data: LoadedData | None = None
    val_data: LoadedData | None = None

    def phase_views(self, index: int) -> tuple[DatasetInfo, tuple[Any, Any]]:
        """The training data's description and ``(train_ds, val_ds)`` of grid phase ``index``.

        The samples and the split are the plan's; a coarse phase's arrays are
        restricted by injection (:func:`mgno.data.datasets.coarsen_data`).
        """
        phase = self.phases[index]
        if phase.final:
            return self.info, (self.train_ds, self.val_ds)
        train = coarsen_data(self.train_data, phase.coarsen)
        val = None if self.val_data is None else coarsen_data(self.val_data, phase.coarsen)
        train_ds, val_ds, _ = split_views(self.task, self.cfg, train, val)
        return train.info, (train_ds, val_ds)


def plan_run(request: TrainRequest, world_size: int = 1, is_main: bool = True) -> RunPlan:
    """Check the run directory, the data and the options; cut the views."""
    saved, resume_state = check_run_dir(request, is_main)
    train_data, val_data = load_training_data(request, saved)
    info = train_data.info
    if saved is not None:
        cfg, model_cfg, preset_name = resumed_recipe(request, saved, info)
    else:
        cfg, model_cfg, preset_name = new_recipe(request, info)
    if cfg.batch_size % world_size:
        raise InputError(
            f"--batch-size: {cfg.batch_size} is not divisible by the {world_size} "
            "processes; expected a multiple of the world size (it is the global batch)"
        )
    require_logger(cfg.log)  # a missing package is refused before anything is written
    task = Task.from_config(info.kind, cfg)
    phases = grid_phases(cfg, info, model_cfg)
    train_ds, val_ds, n_val = split_views(task, cfg, train_data, val_data)
    return RunPlan(cfg, model_cfg, preset_name, info, task, train_ds, val_ds,
                   info.n_samples, n_val, saved, resume_state, phases, train_data, val_data)


def check_run_dir(request: TrainRequest, is_main: bool = True) -> tuple[dict | None, bool]:
    """``(saved config or None, whether to load the checkpoint)``; refusals first.

    A new run needs a new folder or one without run files. ``resume`` needs a
    run directory; one that stopped before its first checkpoint starts again
    from the beginning (with its own recipe when its ``config.json`` exists),
    and says so on stderr.
    """
    rdir = request.run_dir
    if not request.resume:
        rdir.check_new()
        return None, False
    if not rdir.path.exists():
        raise FileNotFoundError(f"{rdir.path}: no such run directory to --resume")
    if rdir.has_state():
        return rdir.read_config(), True
    saved = rdir.read_config() if rdir.has_config() else None
    if saved is None:
        rdir.require() if not rdir.path.is_dir() else rdir.check_new()
    if is_main:
        print(
            f"mgno: {rdir.path}: no checkpoint to resume from (the run stopped before its "
            "first one); starting it again from the beginning",
            file=sys.stderr,
            flush=True,
        )
    return saved, False


def load_training_data(
    request: TrainRequest, saved: dict | None
) -> tuple[LoadedData, LoadedData | None]:
    """The training and validation data, checked against each other and a resumed run."""
    train_data = load_arrays(request.data)
    info = train_data.info
    if saved is not None:
        rec = saved["data"]
        for key in _RESUME_DATA:
            now = getattr(info, key)
            now = list(now) if isinstance(now, tuple) else now
            if rec.get(key) != now:
                raise InputError(
                    f"{request.data}: {key} is {now}, but the run in {request.out} was "
                    f"trained with {rec.get(key)}; expected the same training data to resume"
                )
    val_data = None
    if request.val is not None:
        val_data = load_arrays(request.val)
        check_same_data(info, val_data.info)
    return train_data, val_data


def new_recipe(request: TrainRequest, info: DatasetInfo) -> tuple[TrainConfig, dict, str | None]:
    """Recipe and network of a new run: data defaults < preset < options."""
    preset = None
    if request.preset is not None:
        from mgno.presets import get_preset

        preset = get_preset(request.preset)
    cfg = build_train_config(info, preset, request.overrides)
    model_cfg = build_model_config(
        info, cfg, family=request.family, preset=preset, overrides=request.model_overrides
    )
    return cfg, model_cfg, request.preset


def resumed_recipe(
    request: TrainRequest, saved: dict, info: DatasetInfo
) -> tuple[TrainConfig, dict, str | None]:
    """The run's own recipe and network; options that differ from them are refused."""
    source = request.run_dir.config_path
    cfg_dict = dict(saved["train"])
    for k, v in request.overrides.items():
        if v is None:
            continue
        v = TrainConfig.canonical(k, v)
        recorded = cfg_dict.get(k, _TRAIN_DEFAULTS.get(k))  # a run older than the field
        if k in RESUME_MUTABLE:
            cfg_dict[k] = v
        elif recorded != v:
            raise InputError(
                f"--{k.replace('_', '-')}: {v!r} differs from {recorded!r} in "
                f"{source}; expected the run's own value to resume"
            )
    cfg = TrainConfig.from_dict(cfg_dict, source=str(source))
    model_cfg = saved["model"]
    given = {k: v for k, v in request.model_overrides.items() if v is not None}
    given.update({"model": request.family} if request.family is not None else {})
    for k, v in given.items():
        v = [v] * len(info.grid) if k == "boundary" and isinstance(v, str) else v
        if model_cfg.get(k) != v:
            raise InputError(
                f"--{k}: {v!r} differs from {model_cfg.get(k)!r} in "
                f"{source}; expected the run's own network to resume"
            )
    preset_name = saved.get("preset")
    if request.preset is not None and request.preset != preset_name:
        raise InputError(
            f"--preset: {request.preset!r} differs from {preset_name!r} in "
            f"{source}; expected the run's own preset to resume"
        )
    return cfg, model_cfg, preset_name


def split_views(
    task: Task, cfg: TrainConfig, train_data: LoadedData, val_data: LoadedData | None
):
    """``(train_ds, val_ds, n_val)``: the last ``val_fraction`` held out without ``val_data``."""
    n = train_data.info.n_samples
    if val_data is not None:
        return task.train_view(train_data), task.val_view(val_data), val_data.info.n_samples
    n_val = int(round(n * cfg.val_fraction))
    if n - n_val < 1:
        raise InputError(f"{train_data.info.path}: {n} samples leave none to train on")
    val_ds = task.val_view(train_data, n - n_val, None) if n_val else None
    return task.train_view(train_data, 0, n - n_val), val_ds, n_val


def data_summary(info: DatasetInfo, n: int) -> dict:
    """The parts of a :class:`DatasetInfo` a run records."""
    return {
        "path": str(info.path),
        "kind": info.kind,
        "n_samples": n,
        "grid": list(info.grid),
        "in_channels": info.in_channels,
        "out_channels": info.out_channels,
        "boundary": list(info.boundary),
        "domain": [list(d) for d in info.domain],
        "spacing": training_grid_record(info)["spacing"],
        "n_times": info.n_times,
        "pde": info.pde,
    }


def training_grid_record(info: DatasetInfo) -> dict:
    """The grid record of a data set (see ``mgno.nn.resolution.grid_record``)."""
    from mgno.nn.resolution import grid_record

    return grid_record(info.grid, info.domain, info.boundary)


def as_path(p: str | os.PathLike | None) -> Path | None:
    """``Path(p)``, or None."""
    return None if p is None else Path(p)
