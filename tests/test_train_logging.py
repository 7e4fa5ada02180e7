"""`mgno train --log tensorboard` (issue 16): scalars and images read back with
TensorBoard's own reader, resume into the same folder, the missing-extra error,
and the `log` fields of the run config."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from helpers_train import TINY_NET, make_steady, make_trajectories
from mgno.cli import main
from mgno.data.schema import write_steady
from mgno.errors import InputError
from mgno.train import TrainConfig, train
from mgno.train.engine import Callbacks
from mgno.train.loggers import IMAGE_TAG, require_logger
from mgno.train.run_dir import run_fingerprint

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)

TINY = ["--channels", "4", "--layers", "1", "--levels", "2", "--quiet"]
SCALARS = {"train/loss", "train/lr", "val/rel_l2", "time/epoch_seconds", "time/step_seconds"}


def _events(folder) -> EventAccumulator:
    acc = EventAccumulator(str(folder), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    return acc


class _StopAfterFirstEpoch(Callbacks):
    """Ask for a stop once an epoch has ended (as a SIGTERM would)."""

    def __init__(self) -> None:
        self.ended = False

    def on_epoch_end(self, state, record) -> None:
        self.ended = True

    def should_stop(self) -> bool:
        return self.ended


def test_tensorboard_scalars_and_images_and_resume(tmp_path):
    data = make_steady(tmp_path / "train.h5", n=10, grid=16)
    run = tmp_path / "run"
    common = dict(model_overrides=TINY_NET, epochs=3, batch_size=4, progress=False,
                  log="tensorboard", log_images_every=2)
    first = train(data, run, callbacks=[_StopAfterFirstEpoch()], **common)
    assert first.status == "interrupted" and first.epochs_done == 1
    assert json.loads((run / "config.json").read_text())["train"]["log"] == "tensorboard"
    assert len(list((run / "tensorboard").iterdir())) == 1
    # resumed without --log: the run's own recipe keeps logging, into a new event file
    again = train(data, run, resume=True, model_overrides=TINY_NET, progress=False)
    assert again.status == "finished" and again.epochs_done == 3
    assert len(list((run / "tensorboard").iterdir())) == 2
    acc = _events(run / "tensorboard")
    tags = acc.Tags()
    assert SCALARS <= set(tags["scalars"])
    losses = acc.Scalars("train/loss")
    assert [e.step for e in losses] == [1, 2, 3]
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    np.testing.assert_allclose([e.value for e in losses], [r["train_loss"] for r in history],
                               rtol=1e-6)
    assert all(e.value > 0 for e in acc.Scalars("time/step_seconds"))
    # images every 2 epochs and at the last: epochs 2 and 3
    images = acc.Images(IMAGE_TAG)
    assert [e.step for e in images] == [2, 3]
    assert images[0].width > 100 and images[0].height > 50
    assert images[0].encoded_image_string.startswith(b"\x89PNG")


def test_cli_log_tensorboard_on_1d_data_draws_curves(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((8, 1, 33)).astype(np.float32)
    write_steady(tmp_path / "d1.h5", a, np.cumsum(a, -1) / 10, pde="toy", params={},
                 boundary=["dirichlet"])
    run = tmp_path / "run1d"
    rc = main(["train", "--data", str(tmp_path / "d1.h5"), "--out", str(run), "--epochs", "1",
               "--batch-size", "4", "--log", "tensorboard", *TINY])
    assert rc == 0
    acc = _events(run / "tensorboard")
    assert SCALARS <= set(acc.Tags()["scalars"])
    assert [e.step for e in acc.Images(IMAGE_TAG)] == [1]  # the last epoch


def test_log_images_every_zero_logs_no_image(tmp_path):
    data = make_steady(tmp_path / "train.h5", n=6, grid=16)
    rc = main(["train", "--data", str(data), "--out", str(tmp_path / "run"), "--epochs", "1",
               "--batch-size", "4", "--log", "tensorboard", "--log-images-every", "0", *TINY])
    assert rc == 0
    tags = _events(tmp_path / "run" / "tensorboard").Tags()
    assert "train/loss" in tags["scalars"] and tags["images"] == []


def _hide_tensorboard(monkeypatch):
    """Make ``import tensorboard`` fail as it does where the extra is not installed."""
    for name in [m for m in sys.modules if m == "tensorboard" or m.startswith("tensorboard.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)


def test_missing_extra_is_one_line_exit_2_before_anything_is_written(tmp_path, monkeypatch,
                                                                     capsys):
    data = make_steady(tmp_path / "train.h5", n=6, grid=16)
    _hide_tensorboard(monkeypatch)
    with pytest.raises(InputError, match=r"pip install 'mgno\[log\]'"):
        require_logger("tensorboard")
    require_logger("none")
    run = tmp_path / "run"
    rc = main(["train", "--data", str(data), "--out", str(run), "--epochs", "1",
               "--log", "tensorboard", *TINY])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("mgno: error: --log tensorboard:") and "\n" not in err, err
    assert "pip install 'mgno[log]'" in err
    assert not run.exists()


def test_log_fields_are_recorded_checked_and_neutral():
    cfg = TrainConfig(log="tensorboard", log_images_every=3)
    assert cfg.to_dict()["log"] == "tensorboard" and cfg.to_dict()["log_images_every"] == 3
    old = {k: v for k, v in cfg.to_dict().items() if not k.startswith("log")}
    assert TrainConfig.from_dict(old).log == "none"  # a run config from before issue 16
    with pytest.raises(InputError, match="'log'"):
        TrainConfig(log="mlflow")
    with pytest.raises(InputError, match="'log_images_every'"):
        TrainConfig(log_images_every=-1)
    config = {"model": {}, "data": {}, "train": TrainConfig().to_dict()}
    logged = {**config, "train": cfg.to_dict()}
    assert run_fingerprint(config) == run_fingerprint(logged)  # logging changes no numbers


def test_rollout_runs_log_the_last_step_of_a_validation_rollout(tmp_path):
    data = make_trajectories(tmp_path / "t.h5", n=4, t=6, grid=16)
    result = train(data, tmp_path / "traj", model_overrides=TINY_NET, epochs=1, batch_size=4,
                   val_fraction=0.25, progress=False, log="tensorboard", log_images_every=1)
    assert result.status == "finished"
    acc = _events(tmp_path / "traj" / "tensorboard")
    assert [e.step for e in acc.Images(IMAGE_TAG)] == [1]
    assert "val/rel_l2" in acc.Tags()["scalars"]
