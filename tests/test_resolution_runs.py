"""Trained runs on other grids: the recorded training grid, eval/predict/plot, the CLI messages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers_cli import run_cli as _cli
from helpers_train import TINY_NET, make_steady
from mgno.data.schema import open_dataset, read_arrays, write_steady
from mgno.errors import InputError
from mgno.nn.resolution import grid_record, grid_spacing, resample
from mgno.train import evaluate, load_run, predict, train
from mgno.train.checkpoint import read_safetensors
from mgno.train.loaded_run import describe_run_transfer, recorded_training_grid

TRAIN_GRID = 16


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny MgNO run and a tiny FNO run trained on 16x16, and test files on other grids."""
    tmp = tmp_path_factory.mktemp("resolution")
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    data = make_steady(tmp / "train.h5", n=12, grid=TRAIN_GRID, seed=0)
    common = dict(epochs=2, batch_size=4, seed=0, progress=False, val_fraction=0.25)
    mgno_run = tmp / "mgno"
    train(data, mgno_run, model_overrides=dict(TINY_NET), **common)
    fno_run = tmp / "fno"
    train(data, fno_run, model="fno",
          model_overrides={"width": 4, "modes": 4, "layers": 1}, **common)
    tests = {g: make_steady(tmp / f"test_{g}.h5", n=3, grid=g, seed=2) for g in (16, 9, 23, 32)}
    tests[31] = _interpolated_copy(tests[16], tmp / "test_31.h5", 31)
    torch.set_num_threads(old)
    return {"mgno": mgno_run, "fno": fno_run, "tests": tests, "tmp": tmp}


def _bilinear(a: np.ndarray, n: int) -> np.ndarray:
    """Fields (N, C, m, m) on nodes of the unit square, interpolated with numpy to (N, C, n, n)."""
    src, dst = np.linspace(0.0, 1.0, a.shape[-1]), np.linspace(0.0, 1.0, n)
    a = np.apply_along_axis(lambda v: np.interp(dst, src, v), -1, a.astype(np.float64))
    return np.apply_along_axis(lambda v: np.interp(dst, src, v), -2, a)


def _interpolated_copy(path: Path, out: Path, n: int) -> Path:
    """The data of ``path`` interpolated to n x n nodes (inputs and outputs alike)."""
    arrays = read_arrays(path)
    write_steady(out, _bilinear(arrays["inputs"], n).astype(np.float32),
                 _bilinear(arrays["outputs"], n).astype(np.float32), pde="toy", params={},
                 boundary=["dirichlet"] * 2)
    return out


def test_grid_spacing_follows_the_node_convention():
    assert grid_spacing([11, 5], [[0, 1], [0, 2]]) == [0.1, 0.5]
    assert grid_spacing([8, 5], [[0, 1], [0, 1]], ["periodic", "neumann"]) == [0.125, 0.25]
    rec = grid_record([8, 5], None, ["periodic", "dirichlet"])
    assert rec == {
        "shape": [8, 5],
        "spacing": [0.125, 0.25],
        "domain": [[0.0, 1.0], [0.0, 1.0]],
        "boundary": ["periodic", "dirichlet"],
    }


def test_the_training_grid_is_recorded_and_survives_save_and_load(runs):
    want = grid_record([TRAIN_GRID] * 2, [[0.0, 1.0]] * 2, ["dirichlet"] * 2)
    config = json.loads((runs["mgno"] / "config.json").read_text())
    assert config["training_grid"] == want
    assert config["data"]["spacing"] == want["spacing"]
    _, meta = read_safetensors(runs["mgno"] / "model.safetensors")
    assert json.loads(meta["training_grid"]) == want
    run = load_run(runs["mgno"], device="cpu")
    assert recorded_training_grid(run.config) == want
    assert tuple(run.predictor.model.config["grid"]) == (TRAIN_GRID, TRAIN_GRID)
    assert run.predictor.grid == (TRAIN_GRID, TRAIN_GRID)
    # runs written before the record existed get it rebuilt from the data summary
    legacy = {k: v for k, v in config.items() if k != "training_grid"}
    assert recorded_training_grid(legacy) == want


@pytest.mark.parametrize("grid", [9, 23, 32])
@pytest.mark.parametrize("strategy", ["resample", "multilevel", "native"])
def test_a_trained_run_evaluates_on_odd_and_even_other_grids(runs, grid, strategy):
    res = evaluate(runs["mgno"], runs["tests"][grid], strategy=strategy, device="cpu")
    assert res["grid"] == [grid, grid]
    assert res["strategy"] == strategy
    assert res["training_grid"]["shape"] == [TRAIN_GRID] * 2
    assert f"'{strategy}'" in res["transfer"] and f"{grid}x{grid}" in res["transfer"]
    for key in ("rel_l2", "rel_h1", "rmse"):
        assert res[key] == res[key] and res[key] < float("inf")


@pytest.mark.parametrize("grid", [9, 32])
@pytest.mark.parametrize("strategy", ["resample", "native"])
def test_a_baseline_run_evaluates_on_other_grids(runs, grid, strategy):
    res = evaluate(runs["fno"], runs["tests"][grid], strategy=strategy, device="cpu")
    assert res["rel_l2"] < float("inf") and res["strategy"] == strategy


@pytest.mark.parametrize("family", ["mgno", "fno"])
def test_resampled_predictions_are_the_native_ones_interpolated(runs, family, tmp_path):
    # Every node of the 16-grid is a node of the 31-grid, so resampling the
    # interpolated inputs back gives the network exactly its native inputs; the
    # prediction on 31x31 must then be the native prediction interpolated
    # (checked with numpy here, not with mgno's resample). A wrong interpolation
    # (nearest node, a flipped axis) breaks this by orders of magnitude.
    native = predict(runs[family], runs["tests"][16], tmp_path / "p16.h5", device="cpu")
    moved = predict(runs[family], runs["tests"][31], tmp_path / "p31.h5", device="cpu",
                    strategy="resample")
    want = _bilinear(read_arrays(native)["outputs"], 31)
    got = read_arrays(moved)["outputs"]
    assert got.shape == want.shape == (3, 1, 31, 31)
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


def test_multilevel_on_a_baseline_is_refused_with_one_line(runs):
    with pytest.raises(InputError, match="needs an MgNO run") as err:
        evaluate(runs["fno"], runs["tests"][32], strategy="multilevel", device="cpu")
    assert "\n" not in str(err.value)
    # on its own grid there is no transfer, so nothing to refuse
    assert describe_run_transfer(runs["fno"], runs["tests"][16], "multilevel") is None


def test_on_the_training_grid_all_strategies_give_the_same_numbers(runs):
    results = [
        evaluate(runs["mgno"], runs["tests"][16], strategy=s, device="cpu")
        for s in ("resample", "multilevel", "native")
    ]
    assert all(r["transfer"] is None for r in results)
    assert len({r["rel_l2"] for r in results}) == 1


def test_the_resampling_round_trip_is_exact_on_the_training_grid(runs):
    torch.manual_seed(0)
    x = torch.rand(2, 1, TRAIN_GRID, TRAIN_GRID, dtype=torch.float64)
    fine = 2 * (TRAIN_GRID - 1) + 1  # every training node is a node of the fine grid
    back = resample(resample(x, (fine, fine)), (TRAIN_GRID, TRAIN_GRID))
    torch.testing.assert_close(back, x, rtol=0, atol=1e-12)
    periodic = ["periodic"] * 2
    back = resample(resample(x, (2 * TRAIN_GRID,) * 2, periodic), (TRAIN_GRID,) * 2, periodic)
    torch.testing.assert_close(back, x, rtol=0, atol=1e-12)
    # a predictor under "resample" on the training grid is the plain network
    run = load_run(runs["mgno"], device="cpu", strategy="resample")
    pred = run.predictor
    with torch.no_grad():
        y = pred(x.float())
        ref = pred.norm_out.decode(pred.model(pred.norm_in.encode(x.float())))
    assert torch.equal(y, ref)



def test_cli_eval_says_the_strategy_on_stderr_and_keeps_json_clean(runs, capsys):
    run, other, same = str(runs["mgno"]), str(runs["tests"][23]), str(runs["tests"][16])
    rc, out, err = _cli(["eval", run, "--data", other, "--json", "--device", "cpu",
                         "--resolution-strategy", "multilevel"], capsys)
    assert rc == 0
    res = json.loads(out)  # exactly one JSON object
    assert res["strategy"] == "multilevel"
    assert res["training_grid"]["shape"] == [TRAIN_GRID] * 2
    assert res["training_grid"]["spacing"] == [1 / (TRAIN_GRID - 1)] * 2
    lines = [ln for ln in err.splitlines() if "resolution strategy" in ln]
    assert len(lines) == 1 and "'multilevel'" in lines[0] and "23x23" in lines[0]
    rc, out, err = _cli(["eval", run, "--data", same, "--json", "--device", "cpu"], capsys)
    assert rc == 0 and "resolution strategy" not in err
    assert json.loads(out)["transfer"] is None
    # the old spelling still works
    rc, out, err = _cli(["eval", run, "--data", other, "--device", "cpu",
                         "--strategy", "native"], capsys)
    assert rc == 0 and "'native'" in err and "resolution strategy" not in out


def test_cli_predict_and_plot_say_the_strategy(runs, capsys):
    run, other = str(runs["mgno"]), str(runs["tests"][9])
    pred = runs["tmp"] / "pred_9.h5"
    rc, out, err = _cli(["predict", run, "--input", other, "--out", str(pred),
                         "--device", "cpu"], capsys)
    assert rc == 0 and "'resample'" in err and "9x9" in err
    assert open_dataset(pred).grid == (9, 9)
    fig = runs["tmp"] / "fig.png"
    rc, out, err = _cli(["plot", run, "--data", other, "--out", str(fig), "--device", "cpu",
                         "--resolution-strategy", "native"], capsys)
    assert rc == 0 and "'native'" in err
    assert Path(out.split()[0]).is_file()


def test_cli_multilevel_on_a_baseline_exits_2(runs, capsys):
    rc, out, err = _cli(["eval", str(runs["fno"]), "--data", str(runs["tests"][32]),
                         "--resolution-strategy", "multilevel"], capsys)
    assert rc == 2 and out == ""
    assert "needs an MgNO run" in err and len(err.strip().splitlines()) == 1
