"""Experiment loggers: callbacks that copy a run's epochs to a tracking tool.

``metrics.jsonl`` (written by :class:`~mgno.train.callbacks.RunCallbacks`)
stays the record of a run; a logger is a :class:`~mgno.train.engine.Callbacks`
that sends the same numbers elsewhere. :class:`TensorBoardLogger` writes
event files to ``RUN_DIR/tensorboard/`` (``--log tensorboard``): every epoch
the numbers of its ``metrics.jsonl`` line and the mean seconds per
optimiser step, and every ``images_every`` epochs an image of one validation
prediction beside its truth and its error. :func:`run_loggers` builds the
loggers a recipe asks for (rank 0 only), and :func:`require_logger` checks,
before training starts, that the package a logger needs is installed.
Another tool (MLflow, Weights & Biases...) plugs in the same way: see
docs/logging.md.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mgno.errors import InputError
from mgno.train.config import TrainConfig
from mgno.train.engine import Callbacks, Fitting, TrainState
from mgno.train.run_dir import RunDir
from mgno.vocab import LOGGERS

#: ``metrics.jsonl`` fields -> TensorBoard tags; other numeric fields keep their name.
SCALAR_TAGS = {
    "train_loss": "train/loss",
    "lr": "train/lr",
    "val_rel_l2": "val/rel_l2",
    "coarse_val_rel_l2": "val/coarse_rel_l2",
    "seconds": "time/epoch_seconds",
}
#: Tag of the mean seconds per optimiser step, and of the validation image.
STEP_TAG = "time/step_seconds"
IMAGE_TAG = "val/prediction"
#: The install command named when a logger's package is missing.
INSTALL_HINT = "pip install 'mgno[log]'"


def require_logger(name: str) -> None:
    """Check that logger ``name`` can run here; raise a one-line InputError if not.

    Raises
    ------
    InputError
        An unknown name, or ``"tensorboard"`` without the tensorboard package
        (the message names the install command).
    """
    name = LOGGERS.check(name, "--log")
    if name != "tensorboard":
        return
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise InputError(
            "--log tensorboard: the tensorboard package is not installed; expected it "
            f"installed ({INSTALL_HINT})"
        ) from None


def run_loggers(cfg: TrainConfig, run_dir: RunDir, is_main: bool = True) -> list[Callbacks]:
    """The loggers ``cfg.log`` asks for, writing into ``run_dir`` (none off rank 0)."""
    if not is_main or cfg.log == "none":
        return []
    require_logger(cfg.log)
    return [TensorBoardLogger(run_dir.tensorboard_path, cfg.log_images_every)]


class TensorBoardLogger(Callbacks):
    """Write each epoch's numbers, and now and then a validation image, to TensorBoard.

    A resumed run opens a new event file in the same folder; TensorBoard
    shows the files as one run, and events of epochs after the checkpoint
    that an earlier attempt wrote are dropped (``purge_step``).

    Parameters
    ----------
    folder:
        Where the event files go (created when missing).
    images_every:
        An image every this many epochs and at the last epoch; 0: never.
    """

    def __init__(self, folder: str | Path, images_every: int = 5) -> None:
        self.folder = Path(folder)
        self.images_every = int(images_every)
        self.writer: Any = None
        self.fitting: Fitting | None = None
        self._t_epoch = 0.0
        self._t_last = 0.0
        self._steps = 0

    def on_fit_start(self, fitting: Fitting, state: TrainState) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.fitting = fitting
        self.folder.mkdir(parents=True, exist_ok=True)
        self.writer = SummaryWriter(log_dir=str(self.folder), purge_step=state.epoch + 1)

    def on_phase_start(self, fitting: Fitting, state: TrainState) -> None:
        self.fitting = fitting  # the images come from the new phase's predictor and views

    def on_fit_end(self, status: str) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def on_epoch_start(self, epoch: int, step: int) -> None:
        self._t_epoch = self._t_last = time.perf_counter()
        self._steps = 0

    def on_step(self, loss: float) -> None:
        self._t_last = time.perf_counter()
        self._steps += 1

    def on_epoch_end(self, state: TrainState, record: dict) -> None:
        if self.writer is None:
            return
        epoch = int(record["epoch"])
        for key, value in record.items():
            if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(SCALAR_TAGS.get(key, key), float(value), epoch)
        if self._steps:
            self.writer.add_scalar(STEP_TAG, (self._t_last - self._t_epoch) / self._steps, epoch)
        if self._image_due(epoch):
            image = validation_image(self.fitting, epoch)
            if image is not None:
                self.writer.add_image(IMAGE_TAG, image, epoch, dataformats="HWC")
        self.writer.flush()

    def _image_due(self, epoch: int) -> bool:
        if self.images_every <= 0 or self.fitting is None:
            return False
        return epoch % self.images_every == 0 or epoch == self.fitting.config.epochs


@torch.no_grad()
def validation_image(fitting: Fitting | None, epoch: int, index: int = 0) -> np.ndarray | None:
    """Prediction, truth and |error| of validation sample ``index`` as an RGB image.

    ``(height, width, 3)`` uint8: images for 2-D fields (the middle slice of
    3-D ones), curves for 1-D ones; for rollouts the last step. None without
    validation data.
    """
    from mgno.figures import new_figure, plot_fields, rgb_array

    if fitting is None or fitting.val_ds is None or len(fitting.val_ds) <= index:
        return None
    task, predictor = fitting.task, fitting.predictor
    predictor.eval()
    x, y = fitting.val_ds.get_batch(torch.tensor([index]))
    pred = task.predict_batch(predictor, x.to(fitting.device), y.to(fitting.device))
    pred, truth = task.first_fields(pred.float().cpu(), y.float())
    pred, truth = pred.numpy(), truth.numpy()
    rel = float(np.linalg.norm(pred - truth) / max(float(np.linalg.norm(truth)), 1e-12))
    fig = new_figure(10.5, 3.2)
    plot_fields(fig.subplots(1, 3), [pred, truth, np.abs(pred - truth)],
                ["prediction", "truth", f"|error| (rel. L2 {rel:.3g})"])
    fig.suptitle(f"epoch {epoch}: validation sample {index}", fontsize=10)
    fig.tight_layout()
    return rgb_array(fig)


__all__ = [
    "INSTALL_HINT",
    "SCALAR_TAGS",
    "TensorBoardLogger",
    "require_logger",
    "run_loggers",
    "validation_image",
]
