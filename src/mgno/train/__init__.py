"""Training, evaluation and prediction.

Public entry points::

    from mgno.train import train, evaluate, predict, load_run, TrainConfig
"""

from __future__ import annotations

from mgno.train.config import TrainConfig
from mgno.train.evaluate import LoadedRun, evaluate, load_run, predict
from mgno.train.losses import get_loss, relative_h1_fd, relative_h1_fourier, relative_l2
from mgno.train.trainer import TrainingDiverged, TrainResult, train

__all__ = [
    "LoadedRun",
    "TrainConfig",
    "TrainResult",
    "TrainingDiverged",
    "evaluate",
    "get_loss",
    "load_run",
    "predict",
    "relative_h1_fd",
    "relative_h1_fourier",
    "relative_l2",
    "train",
]
