"""Training, evaluation and prediction.

Public entry points::

    from mgno.train import train, evaluate, predict, load_run, TrainConfig
    from mgno.train import calibrate, prediction_checks   # predict --estimate / --refine
"""

from __future__ import annotations

from mgno.train.checked import calibrate, prediction_checks
from mgno.train.config import TrainConfig
from mgno.train.evaluate import evaluate, predict
from mgno.train.loaded_run import LoadedRun, load_run
from mgno.train.losses import get_loss, relative_h1_fd, relative_h1_fourier, relative_l2
from mgno.train.trainer import TrainingDiverged, TrainResult, train

__all__ = [
    "LoadedRun",
    "TrainConfig",
    "TrainResult",
    "TrainingDiverged",
    "calibrate",
    "evaluate",
    "get_loss",
    "load_run",
    "predict",
    "prediction_checks",
    "relative_h1_fd",
    "relative_h1_fourier",
    "relative_l2",
    "train",
]
