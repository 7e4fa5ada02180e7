"""A run directory written before the train-side redesign still evaluates and resumes.

``tests/data/old_run`` was written by the code of commit 0742d75 (a tiny MgNO
on 8x8 steady data, 3 epochs asked, stopped by SIGINT after epoch 2);
``old_run_train.h5`` / ``old_run_test.h5`` are its data.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mgno.cli import main
from mgno.train import evaluate, train

DATA = Path(__file__).parent / "data"
KW = dict(
    batch_size=2,
    seed=0,
    val_fraction=0.34,
    progress=False,
    model_overrides={"channels": 2, "layers": 1, "levels": 2},
)


@pytest.fixture()
def old_run(tmp_path):
    run = tmp_path / "old_run"
    shutil.copytree(DATA / "old_run", run)
    return run


def test_old_run_evaluates(old_run, capsys):
    res = evaluate(old_run, DATA / "old_run_test.h5")
    assert res["epoch"] == 2 and res["n_samples"] == 2
    assert np.isfinite(res["rel_l2"]) and 0 < res["rel_l2"] < 2
    capsys.readouterr()
    assert main(["eval", str(old_run), "--data", str(DATA / "old_run_test.h5"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rel_l2"] == pytest.approx(res["rel_l2"])


def test_old_run_resumes_like_an_uninterrupted_run(old_run, tmp_path):
    done = train(DATA / "old_run_train.h5", old_run, epochs=3, resume=True, **KW)
    assert done.status == "finished" and done.epochs_done == 3
    assert [r["epoch"] for r in done.history] == [1, 2, 3]
    fresh = train(DATA / "old_run_train.h5", tmp_path / "fresh", epochs=3, **KW)
    for a, b in zip(done.history, fresh.history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_rel_l2"] == pytest.approx(b["val_rel_l2"], rel=1e-5)
    lines = (old_run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3
