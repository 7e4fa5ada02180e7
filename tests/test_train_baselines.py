"""`mgno train --model fno|tfno|uno|unet`: the same recipe as MgNO, end to end."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from helpers_train import make_steady, make_trajectories
from mgno.cli import main
from mgno.data.schema import open_dataset
from mgno.errors import InputError
from mgno.train import TrainConfig, evaluate, predict, train
from mgno.train.defaults import baseline_defaults, build_model_config

SMALL = {
    "fno": {"channels": 8, "layers": 2},
    "tfno": {"channels": 8, "layers": 2},
    "uno": {"channels": 8, "layers": 3},
    "unet": {"channels": 4, "levels": 3},
}


def _rel_l2(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean over samples of ``||pred - truth|| / ||truth||``; arrays (N, C, *grid)."""
    n = len(truth)
    diff = np.linalg.norm((pred - truth).reshape(n, -1), axis=1)
    return float(np.mean(diff / np.linalg.norm(truth.reshape(n, -1), axis=1)))


@pytest.fixture(scope="module")
def steady(tmp_path_factory):
    d = tmp_path_factory.mktemp("baselines")
    return make_steady(d / "train.h5", n=8, grid=16), make_steady(d / "test.h5", n=4, seed=1)


@pytest.mark.parametrize("family", list(SMALL))
def test_baseline_trains_evaluates_predicts_and_resumes(tmp_path, steady, family):
    data, test = steady
    out = tmp_path / family
    res = train(data, out, model=family, model_overrides=SMALL[family], epochs=1, batch_size=4,
                progress=False)
    assert res.status == "finished" and res.epochs_done == 1
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["model"] == family
    assert config["model"]["grid"] == [16, 16]
    assert config["model"]["boundary"] == ["dirichlet", "dirichlet"]
    metrics = evaluate(out, test, device="cpu")
    pred = predict(out, test, tmp_path / f"{family}_pred.h5", device="cpu")
    with h5py.File(pred) as f, h5py.File(test) as t:
        assert f["outputs"].shape == (4, 1, 16, 16)
        got, truth = f["outputs"][...].astype(np.float64), t["outputs"][...]
    # eval's number is the error of what predict writes (whether it learned: below)
    assert metrics["rel_l2"] == pytest.approx(_rel_l2(got, truth), rel=1e-4)
    # the checkpoint (safetensors, no neuraloperator metadata) loads back
    again = train(data, out, model=family, resume=True, progress=False)
    assert again.status == "finished" and again.epochs_done == 1


@pytest.fixture(scope="module")
def learnable(tmp_path_factory):
    """16 training pairs of a smooth linear map, 4 test pairs, and the mean predictor's error."""
    d = tmp_path_factory.mktemp("learn")
    data, test = make_steady(d / "train.h5", n=16, grid=16), make_steady(d / "t.h5", n=4, seed=1)
    with h5py.File(data) as f, h5py.File(test) as t:
        mean = f["outputs"][...].mean(axis=0, keepdims=True)
        truth = t["outputs"][...]
    return data, test, _rel_l2(np.broadcast_to(mean, truth.shape), truth)


@pytest.mark.parametrize("family", [*SMALL, "mgno"])
def test_every_family_learns_clearly_better_than_the_mean(tmp_path, learnable, family):
    # The mean of the training outputs scores ~0.6 here (a zero prediction 1.0);
    # 8 short epochs bring every family to 0.4 or below on held-out pairs.
    data, test, mean_error = learnable
    overrides = SMALL.get(family, {"channels": 4, "layers": 1, "levels": 2})
    train(data, tmp_path / "r", model=family, model_overrides=overrides, epochs=8,
          batch_size=2, lr=1e-2, scheduler="none", seed=0, progress=False)
    res = evaluate(tmp_path / "r", test, device="cpu")
    assert res["rel_l2"] < 0.75 * mean_error, (res["rel_l2"], mean_error)


def test_baselines_share_mgnos_recipe(tmp_path, steady):
    data, _ = steady
    recipes = {}
    for family in ("mgno", "fno"):
        train(data, tmp_path / family, model=family, preset="darcy-smooth", epochs=1,
              batch_size=4, progress=False,
              model_overrides={"channels": 4, "layers": 1} if family == "fno"
              else {"channels": 4, "layers": 1, "levels": 2})
        recipes[family] = json.loads((tmp_path / family / "config.json").read_text())
    for key in ("train", "normalizer"):
        assert recipes["mgno"][key] == recipes["fno"][key]
    assert recipes["fno"]["train"]["loss"] == "rel_h1_fourier"  # the preset's loss


def test_cli_trains_fno_on_trajectories_and_plots(tmp_path, capsys):
    data = make_trajectories(tmp_path / "traj.h5", n=3, t=4, grid=16)
    out = tmp_path / "run"
    argv = ["train", "--data", str(data), "--out", str(out), "--model", "fno", "--channels", "8",
            "--layers", "1", "--epochs", "1", "--batch-size", "3", "--quiet", "--json"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "finished"
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["boundary"] == ["periodic", "periodic"]
    assert config["model"]["domain_padding"] is None  # no padding on a torus
    assert main(["plot", str(out), "--data", str(data), "--out", str(tmp_path / "f.png"),
                 "--device", "cpu"]) == 0
    assert (tmp_path / "f.png").is_file()


def test_cli_refuses_levels_for_fno(tmp_path, steady, capsys):
    data, _ = steady
    argv = ["train", "--data", str(data), "--out", str(tmp_path / "r"), "--model", "fno",
            "--levels", "3", "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--levels" in err and "fno" in err


def test_baseline_options_are_translated(steady):
    info = open_dataset(steady[0])
    cfg = TrainConfig()
    unet = build_model_config(info, cfg, family="unet", overrides={"channels": 6, "levels": 3})
    assert unet["width"] == 6 and unet["depth"] == 2 and "channels" not in unet
    fno = build_model_config(info, cfg, family="fno", overrides={"channels": 6})
    assert fno["width"] == 6 and fno["modes"] == [8, 8] and fno["domain_padding"] == 0.125
    with pytest.raises(InputError, match="--layers"):
        build_model_config(info, cfg, family="unet", overrides={"layers": 2})


def test_baseline_defaults_follow_the_grid():
    assert baseline_defaults("fno", [64, 64], ["periodic", "periodic"]) == {
        "modes": [12, 12], "domain_padding": None}
    assert baseline_defaults("unet", [64, 64], ["dirichlet"] * 2)["depth"] == 4
    assert baseline_defaults("unet", [16, 16], ["dirichlet"] * 2)["depth"] == 2
    assert baseline_defaults("uno", [10, 30], ["dirichlet"] * 2)["modes"] == 5
    assert baseline_defaults("mgno", [16, 16], ["dirichlet"] * 2) == {}
