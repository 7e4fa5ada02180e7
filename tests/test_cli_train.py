"""`mgno train / eval / predict / plot` end to end, and their answers to bad input."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from helpers_train import make_steady, make_trajectories
from mgno.cli import main
from mgno.data.schema import open_dataset, read_arrays, write_steady

TINY = ["--channels", "4", "--layers", "1", "--levels", "2", "--quiet"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny trained run (2 epochs) with its train and test files."""
    tmp = tmp_path_factory.mktemp("cli")
    tr = make_steady(tmp / "train.h5", n=12, seed=0)
    va = make_steady(tmp / "val.h5", n=4, seed=1)
    make_steady(tmp / "test.h5", n=4, seed=2)
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    rc = main(
        [
            "train",
            "--data",
            str(tr),
            "--val",
            str(va),
            "--out",
            str(tmp / "run"),
            "--epochs",
            "2",
            "--batch-size",
            "4",
            "--seed",
            "1",
            *TINY,
        ]
    )
    torch.set_num_threads(old)
    assert rc == 0
    return tmp


def _snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_train_writes_a_complete_run(trained):
    run = trained / "run"
    names = {p.name for p in run.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "checkpoint.safetensors",
        "normalizer.safetensors",
        "metrics.jsonl",
    } <= names
    assert not [n for n in names if n.endswith(".tmp")]
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"]["boundary"] == ["dirichlet", "dirichlet"]  # from the data's metadata
    assert cfg["model"]["grid"] == [16, 16] and cfg["model"]["channels"] == 4
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]
    assert all({"train_loss", "val_rel_l2", "lr"} <= set(r) for r in lines)


def test_eval_json_is_one_object(trained, capsys):
    capsys.readouterr()
    rc = main(["eval", str(trained / "run"), "--data", str(trained / "test.h5"), "--json"])
    out = capsys.readouterr().out
    assert rc == 0
    res = json.loads(out)
    for key in (
        "rel_l2",
        "rel_h1",
        "nrmse",
        "max_error",
        "boundary_rmse",
        "rmse_low",
        "rmse_mid",
        "rmse_high",
    ):
        assert np.isfinite(res[key])
    assert res["n_samples"] == 4


def test_predict_and_plot(trained, capsys):
    pred = trained / "pred.h5"
    assert (
        main(
            [
                "predict",
                str(trained / "run"),
                "--input",
                str(trained / "test.h5"),
                "--out",
                str(pred),
            ]
        )
        == 0
    )
    info = open_dataset(pred)
    assert info.n_samples == 4 and info.boundary == ("dirichlet", "dirichlet")
    arr, ref = read_arrays(pred), read_arrays(trained / "test.h5")
    assert np.array_equal(arr["inputs"], ref["inputs"])
    assert arr["outputs"].shape == ref["outputs"].shape
    fig = trained / "fig.png"
    assert (
        main(["plot", str(trained / "run"), "--data", str(trained / "test.h5"), "--out", str(fig)])
        == 0
    )
    for p in (fig, trained / "fig_loss.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_trajectory_run_reports_per_step_errors(tmp_path, capsys):
    data = make_trajectories(tmp_path / "t.h5", n=4, t=5)
    rc = main(
        [
            "train",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "run"),
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--val-fraction",
            "0.25",
            *TINY,
        ]
    )
    assert rc == 0
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["train"]["protocol"] == "one-step"
    assert cfg["model"]["boundary"] == ["periodic", "periodic"]
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "run"), "--data", str(data), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["steps"] == 4 and len(res["rel_l2_per_step"]) == 4
    assert (
        main(
            [
                "predict",
                str(tmp_path / "run"),
                "--input",
                str(data),
                "--out",
                str(tmp_path / "p.h5"),
            ]
        )
        == 0
    )
    assert read_arrays(tmp_path / "p.h5")["trajectories"].shape == (4, 5, 1, 16, 16)


def test_predict_rolls_out_from_the_runs_start_frame(tmp_path, capsys):
    data = make_trajectories(tmp_path / "t.h5", n=4, t=5)
    run = str(tmp_path / "run")
    argv = ["train", "--data", str(data), "--out", run, "--epochs", "1", "--batch-size", "4",
            "--val-fraction", "0.25", "--start-frame", "1", *TINY]
    assert main(argv) == 0
    out = tmp_path / "p.h5"
    assert main(["predict", run, "--input", str(data), "--out", str(out)]) == 0
    arrays = read_arrays(out)
    assert arrays["trajectories"].shape == (4, 4, 1, 16, 16)
    np.testing.assert_array_equal(arrays["times"], [1.0, 2.0, 3.0, 4.0])
    start = read_arrays(data)["trajectories"][:, 1]
    np.testing.assert_array_equal(arrays["trajectories"][:, 0], start)
    # a file of initial states: roll out from its first frame
    first = make_trajectories(tmp_path / "one.h5", n=2, t=1)
    _bad(["predict", run, "--input", str(first), "--out", str(tmp_path / "q.h5")], capsys,
         "one.h5", "1 frames, expected at least 2", "start_frame 0 rolls out from frame 0")
    _bad(["predict", run, "--input", str(data), "--out", str(tmp_path / "q.h5"),
          "--start-frame", "-1"], capsys, "--start-frame: found -1, expected an integer >= 0")
    assert main(["predict", run, "--input", str(first), "--out", str(tmp_path / "q.h5"),
                 "--start-frame", "0"]) == 0
    assert read_arrays(tmp_path / "q.h5")["trajectories"].shape == (2, 11, 1, 16, 16)


# ----------------------------------------------------------------------------- bad input
def _bad(argv, capsys, *fragments):
    capsys.readouterr()
    rc = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2, err
    last = err[-1]
    assert last.startswith("mgno: error: "), err
    assert "Traceback" not in "\n".join(err)
    for frag in fragments:
        assert frag in last, last
    return last


def test_bad_training_data(tmp_path, capsys):
    out = str(tmp_path / "run")
    mism = tmp_path / "mismatch.h5"
    with h5py.File(mism, "w") as f:
        f["inputs"] = np.zeros((4, 1, 8, 8), np.float32)
        f["outputs"] = np.zeros((4, 1, 9, 9), np.float32)
    _bad(["train", "--data", str(mism), "--out", out, *TINY], capsys, "mismatch.h5", "expected")
    empty = tmp_path / "empty.h5"
    write_steady(
        empty,
        np.zeros((0, 1, 8, 8)),
        np.zeros((0, 1, 8, 8)),
        pde="x",
        params={},
        boundary="dirichlet",
    )
    _bad(["train", "--data", str(empty), "--out", out, *TINY], capsys, "empty.h5", "0 samples")
    a, u = np.ones((4, 1, 8, 8), np.float32), np.ones((4, 1, 8, 8), np.float32)
    u[2, 0, 3, 3] = np.nan
    nan = tmp_path / "nan.h5"
    write_steady(nan, a, u, pde="x", params={}, boundary="dirichlet")
    _bad(["train", "--data", str(nan), "--out", out, *TINY], capsys, "nan.h5", "sample 2")
    tr = make_steady(tmp_path / "tr.h5", n=8, grid=16)
    other_grid = make_steady(tmp_path / "g.h5", n=4, grid=12)
    _bad(
        ["train", "--data", str(tr), "--val", str(other_grid), "--out", out, *TINY],
        capsys,
        "g.h5",
        "grid [12, 12]",
        "expected [16, 16]",
    )
    other_ch = make_steady(tmp_path / "c.h5", n=4, cin=2)
    _bad(
        ["train", "--data", str(tr), "--val", str(other_ch), "--out", out, *TINY],
        capsys,
        "c.h5",
        "channels",
    )
    _bad(["train", "--data", str(tmp_path / "nope.h5"), "--out", out, *TINY], capsys, "nope.h5")
    assert not (tmp_path / "run").exists()


def test_bad_run_directories(trained, tmp_path, capsys):
    run, test = trained / "run", str(trained / "test.h5")
    _bad(
        ["eval", str(tmp_path / "missing"), "--data", test],
        capsys,
        "missing",
        "no such run directory",
    )
    two = make_steady(tmp_path / "two.h5", n=2, cin=2)
    _bad(["eval", str(run), "--data", str(two)], capsys, "two.h5", "in_channels is 2", "expects 1")
    before = _snapshot(run)
    # an existing run is never overwritten by a new train
    _bad(
        ["train", "--data", str(trained / "train.h5"), "--out", str(run), *TINY],
        capsys,
        str(run),
        "already holds a run",
    )
    # resume with other data
    _bad(
        ["train", "--data", str(two), "--out", str(run), "--resume", *TINY],
        capsys,
        "two.h5",
        "resume",
    )
    assert _snapshot(run) == before


@pytest.mark.parametrize("damage", ["truncate", "pickle", "torch_save"])
def test_damaged_checkpoints_are_refused(trained, tmp_path, capsys, damage):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained / "run", run)
    for name in ("model.safetensors", "checkpoint.safetensors"):
        target = run / name
        if damage == "truncate":
            target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
        elif damage == "pickle":
            target.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
        else:
            torch.save({"w": torch.ones(3)}, target)
    before = _snapshot(run)
    expect = "truncated" if damage == "truncate" else "never unpickles"
    _bad(
        ["eval", str(run), "--data", str(trained / "test.h5")], capsys, "model.safetensors", expect
    )
    _bad(
        [
            "train",
            "--data",
            str(trained / "train.h5"),
            "--val",
            str(trained / "val.h5"),
            "--out",
            str(run),
            "--resume",
            "--epochs",
            "2",
            "--batch-size",
            "4",
            "--seed",
            "1",
            *TINY,
        ],
        capsys,
        "checkpoint.safetensors",
        expect,
    )
    assert _snapshot(run) == before


def test_real_process_exit_code_and_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "mgno.cli", "eval", str(tmp_path / "nothing"), "--data", "x.h5"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("mgno: error: ")


def test_preset_recipe_and_other_grid(trained, tmp_path, capsys):
    run = tmp_path / "preset_run"
    rc = main(
        [
            "train",
            "--data",
            str(trained / "train.h5"),
            "--out",
            str(run),
            "--preset",
            "darcy-smooth",
            "--epochs",
            "1",
            "--batch-size",
            "4",
            *TINY,
        ]
    )
    assert rc == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["preset"] == "darcy-smooth"
    assert cfg["train"]["loss"] == "rel_h1_fourier" and cfg["train"]["lr"] == 5e-4
    assert cfg["train"]["epochs"] == 1  # the option overrides the preset
    assert cfg["model"]["grid"] == [16, 16] and cfg["model"]["levels"] == 2
    # a test set on another grid runs through the resampling strategy
    coarse = make_steady(tmp_path / "coarse.h5", n=3, grid=12)
    capsys.readouterr()
    assert main(["eval", str(run), "--data", str(coarse), "--json"]) == 0
    assert np.isfinite(json.loads(capsys.readouterr().out)["rel_l2"])


def test_k_max_option_is_checked(tmp_path, capsys):
    data = make_steady(tmp_path / "d.h5", n=4)
    for bad in ("0", "twenty"):
        with pytest.raises(SystemExit) as exc:
            main(["train", "--data", str(data), "--out", str(tmp_path / "r"), "--k-max", bad])
        assert exc.value.code == 2
        assert "--k-max: expected an integer >= 1 or 'all'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
