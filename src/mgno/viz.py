"""Figures of a trained run: input, truth, prediction, error, and the loss curves.

Matplotlib with the Agg backend (no display needed). 1-D fields are drawn as
curves, 2-D fields as images, 3-D fields as their middle slice along the last
axis; for rollouts the last predicted step is shown.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from mgno.atomic import atomic_path
from mgno.data.datasets import load_arrays
from mgno.data.schema import open_dataset
from mgno.errors import InputError
from mgno.figures import new_figure as _figure
from mgno.figures import plot_fields
from mgno.train.loaded_run import check_data_fits, load_run
from mgno.train.outputs import new_output
from mgno.train.run_dir import RunDir


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)


def plot_history(ax, history: Sequence[dict]) -> None:
    """Training loss and validation rel. L2 per epoch (log scale)."""
    epochs = [r["epoch"] for r in history]
    ax.semilogy(epochs, [r["train_loss"] for r in history], label="train loss")
    val = [(r["epoch"], r["val_rel_l2"]) for r in history if r.get("val_rel_l2") is not None]
    if val:
        ax.semilogy(*zip(*val, strict=True), label="val rel. L2")
        best = [r["epoch"] for r in history if r.get("best")]
        if best:
            ax.axvline(best[-1], color="grey", lw=0.8, ls="--", label=f"best (epoch {best[-1]})")
    ax.set_xlabel("epoch")
    ax.set_title("loss curves", fontsize=9)
    ax.legend(fontsize=7)


def _sample_fields(run, data, index: int) -> tuple[list[np.ndarray], str]:
    """Input, truth, prediction and |error| ``(C, *grid)`` of one sample, and a step label.

    For rollouts: the last frame of the input window and the last predicted step.
    """
    arrays = load_arrays(data, index, index + 1).arrays
    x, truth, steps = run.task.rollout_inputs(arrays, data)
    pred = run.task.apply(run.predictor, x.to(run.device), steps).float().cpu()
    if steps is None:
        inp, truth, pred, label = x[0], truth[0], pred[0], ""
    else:  # x (1, window, C, *grid); truth, pred (1, steps, C, *grid)
        inp, truth, pred, label = x[0, -1], truth[0, -1], pred[0, -1], f" (step {steps})"
    inp, truth, pred = inp.numpy(), truth.numpy(), pred.numpy()
    return [inp, truth, pred, np.abs(pred - truth)], label


def _field_figure(run, data, index: int):
    fields, label = _sample_fields(run, data, index)
    truth, pred = fields[1], fields[2]
    rel = float(np.linalg.norm(pred - truth) / max(np.linalg.norm(truth), 1e-12))
    fig = _figure(14, 3.4)
    plot_fields(
        fig.subplots(1, 4),
        fields,
        ["input", f"truth{label}", f"prediction{label}", f"|error| (rel. L2 {rel:.3g})"],
    )
    fig.suptitle(f"{Path(run.run_dir).name}: sample {index} of {Path(data).name}", fontsize=10)
    fig.tight_layout()
    return fig


def _history_figure(history: Sequence[dict]):
    fig = _figure(5, 3.4)
    plot_history(fig.subplots(), history)
    fig.tight_layout()
    return fig


@torch.inference_mode()
def plot_run(
    run_dir: str | os.PathLike,
    data: str | os.PathLike,
    out: str | os.PathLike,
    *,
    index: int = 0,
    device: str = "auto",
    strategy: str = "resample",
    force: bool = False,
) -> list[Path]:
    """Write the figures of a run on one sample of a data set.

    Parameters
    ----------
    run_dir:
        The run directory.
    data:
        Data set with the truth (same kind and channels as the training data).
    out:
        ``FIG.png``: input, truth, prediction and error of sample ``index``.
        The loss curves go to ``FIG_loss.png`` next to it.
    index:
        Sample to draw.
    force:
        Replace existing figures (otherwise they are refused).

    Returns
    -------
    list of Path
        The PNG files written, only after both figures were drawn.
    """
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise InputError(f"{out}: --out must end in .png, found {out.suffix or 'no suffix'!r}")
    if not out.parent.is_dir() and str(out.parent):
        raise InputError(f"{out}: folder {out.parent} does not exist")
    loss_path = out.with_name(out.stem + "_loss.png")
    with new_output(out, force), new_output(loss_path, force):
        run = load_run(run_dir, device=device, strategy=strategy)
        info = open_dataset(data)
        check_data_fits(run, info)
        if not 0 <= index < info.n_samples:
            raise InputError(
                f"{data}: sample {index} requested, expected 0 <= index < {info.n_samples}"
            )
        figures = [(out, _field_figure(run, data, index))]
        history = RunDir(run.run_dir).read_metrics()
        if history:
            figures.append((loss_path, _history_figure(history)))
        for path, fig in figures:
            _save(fig, path)
    return [path for path, _fig in figures]
