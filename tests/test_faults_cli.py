"""The run side of issue 20 through the CLI: one writer, no silent overwrite, no dead end.

Two ``mgno train`` into one ``--out`` (the second refused, naming the
holder's process); ``train`` into a folder holding someone else's
``metrics.jsonl``; ``predict``/``plot`` onto an existing output (refused
without ``--force``, done with it); a run killed before its first checkpoint
restarted by ``--resume``, saying so; a wrong-typed ``config.json``. Every
refusal is exit 2 with exactly one ``mgno: error:`` line on stderr. The wider
hostile battery is ``benchmarks/hostile_battery.py``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest

from helpers_cli import one_error_line as _one_error_line
from helpers_cli import run_cli as _cli
from helpers_train import TINY_NET, make_steady
from mgno.cli import main
from mgno.train import train

NET = ["--channels", "4", "--layers", "1", "--levels", "2"]
FOREIGN = b"someone else's file\n"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A tiny data set and a finished tiny run (trained in-process)."""
    tmp = tmp_path_factory.mktemp("faults")
    data = make_steady(tmp / "train.h5", n=8, grid=9, seed=0)
    test = make_steady(tmp / "test.h5", n=2, grid=9, seed=1)
    run = tmp / "run"
    train(data, run, epochs=1, batch_size=4, seed=0, model_overrides=dict(TINY_NET),
          progress=False)
    return {"data": data, "test": test, "run": run}




def _train_argv(data: Path, out: Path, epochs: int) -> list[str]:
    return ["train", "--data", data, "--out", out, "--epochs", str(epochs), "--batch-size", "4",
            *NET, "--quiet", "--device", "cpu"]


def test_a_second_train_into_one_out_is_refused_naming_the_holder(made, tmp_path, capsys):
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), OMP_NUM_THREADS="1")
    argv = [str(a) for a in _train_argv(made["data"], out, 100000)]
    first = subprocess.Popen([sys.executable, "-m", "mgno.cli", *argv], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        started = (out / ".lock", tmp_path / "run.lock", out / "config.json")
        while not any(p.exists() for p in started):
            assert first.poll() is None, first.stderr.read().decode()
            assert time.monotonic() < deadline, "the first train never started writing"
            time.sleep(0.05)
        rc, _, err = _cli(_train_argv(made["data"], out, 1), capsys)
        still_running = first.poll() is None
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert still_running
    assert rc == 2
    line = _one_error_line(err)
    assert f"process {first.pid}" in line  # names the holder


def test_train_refuses_a_folder_holding_someone_elses_metrics(made, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.jsonl").write_bytes(FOREIGN)
    rc, _, err = _cli(_train_argv(made["data"], out, 1), capsys)
    assert rc == 2
    assert "metrics.jsonl" in _one_error_line(err)
    assert (out / "metrics.jsonl").read_bytes() == FOREIGN
    assert sorted(p.name for p in out.iterdir()) == ["metrics.jsonl"]


@pytest.mark.parametrize("verb", ["predict", "plot"])
def test_an_existing_output_is_kept_without_force_and_replaced_with_it(made, tmp_path, capsys,
                                                                        verb):
    target = tmp_path / ("pred.h5" if verb == "predict" else "fig.png")
    target.write_bytes(FOREIGN)
    flag = "--input" if verb == "predict" else "--data"
    argv = [verb, made["run"], flag, made["test"], "--out", target, "--device", "cpu"]
    rc, out, err = _cli(argv, capsys)
    assert rc == 2 and out == ""
    line = _one_error_line(err)
    assert target.name in line and "--force" in line
    assert target.read_bytes() == FOREIGN
    rc, _, err = _cli([*argv, "--force"], capsys)
    assert rc == 0, err
    assert target.read_bytes() != FOREIGN
    if verb == "predict":
        with h5py.File(target, "r") as f:
            assert f["outputs"].shape == (2, 1, 9, 9)
    else:
        assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_run_killed_before_its_first_checkpoint_restarts_on_resume(made, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()  # what a kill right after the start leaves: the config, no checkpoint
    shutil.copy2(made["run"] / "config.json", out / "config.json")
    argv = [a for a in _train_argv(made["data"], out, 1) if a != "--quiet"]
    rc, _, err = _cli([*argv, "--resume"], capsys)
    assert rc == 0, err
    assert re.search(r"restart|from the (beginning|start)|from scratch", err, re.I), err
    assert (out / "model.safetensors").is_file() and (out / "checkpoint.safetensors").is_file()
    rc, _, err = _cli(["eval", out, "--data", made["test"], "--device", "cpu"], capsys)
    assert rc == 0, err


@pytest.mark.parametrize("change, field", [
    (lambda c: c["model"].__setitem__("channels", "four"), ("channels",)),
    (lambda c: c.__setitem__("train", []), ("train",)),
    (lambda c: c.__setitem__("model", "mgno"), ("model",)),
    (None, ("nest", "deep")),
])
def test_a_wrong_typed_config_is_one_line_and_exit_2(made, tmp_path, capsys, change, field):
    run = tmp_path / "run"
    shutil.copytree(made["run"], run)
    if change is None:
        (run / "config.json").write_text("[" * 100000 + "]" * 100000)
    else:
        config = json.loads((run / "config.json").read_text())
        change(config)
        (run / "config.json").write_text(json.dumps(config))
    rc, out, err = _cli(["eval", run, "--data", made["test"], "--device", "cpu"], capsys)
    assert rc == 2 and out == ""
    line = _one_error_line(err)
    assert "config.json" in line and any(word in line for word in field)


def test_train_refuses_a_folder_holding_any_file_it_did_not_write(made, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_bytes(FOREIGN)
    rc, _out, err = _cli(_train_argv(made["data"], run, 1), capsys)
    assert rc == 2 and "notes.txt, which mgno train did not write" in _one_error_line(err)
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt"]
    assert (run / "notes.txt").read_bytes() == FOREIGN


def test_bench_refuses_results_it_did_not_write(made, tmp_path, capsys):
    out = tmp_path / "B"
    out.mkdir()
    (out / "results.json").write_bytes(FOREIGN)
    rc, _out, err = _cli(["bench", "--data", made["data"], "--test", made["test"], "--models",
                          "mgno", "--epochs", "1", "--out", out, "--quiet"], capsys)
    assert rc == 2 and "holds results.json but no bench records" in _one_error_line(err)
    assert (out / "results.json").read_bytes() == FOREIGN


def test_a_refused_train_leaves_no_folder_behind(made, tmp_path, capsys):
    out = tmp_path / "new_run"
    rc, _out, err = _cli(["train", "--data", tmp_path / "missing.h5", "--out", out, *NET,
                          "--quiet"], capsys)
    assert rc == 2 and "missing.h5" in _one_error_line(err)
    assert not out.exists()


# --------------------------------------------------------------------------- bad values, one line
@pytest.mark.parametrize("flag, value", [
    ("--epochs", "0"), ("--epochs", "-1"), ("--lr", "-1"), ("--lr", "nan"),
    ("--batch-size", "0"), ("--time-limit", "-1"),
])
def test_bench_refuses_bad_recipe_values_before_any_child(made, tmp_path, capsys, flag, value):
    out = tmp_path / "B"
    rc, _, err = _cli(["bench", "--data", made["data"], "--test", made["test"], "--models",
                       "mgno", "--epochs", "1", "--out", out, "--quiet", flag, value], capsys)
    assert rc == 2
    assert flag in _one_error_line(err)
    assert not out.exists()


def test_bench_with_a_failed_run_exits_1_not_as_interrupted(monkeypatch, tmp_path, capsys):
    import mgno.bench

    monkeypatch.setattr(mgno.bench, "run_bench",
                        lambda cfg: {"complete": False, "interrupted": False})
    assert main(["bench", "--data", "a.h5", "--test", "b.h5", "--out", str(tmp_path)]) == 1
    monkeypatch.setattr(mgno.bench, "run_bench",
                        lambda cfg: {"complete": False, "interrupted": True})
    assert main(["bench", "--data", "a.h5", "--test", "b.h5", "--out", str(tmp_path)]) == 130


@pytest.mark.parametrize("verb", ["eval", "predict"])
def test_batch_size_zero_is_refused(made, tmp_path, capsys, verb):
    out = tmp_path / "pred.h5"
    argv = (["eval", made["run"], "--data", made["test"]] if verb == "eval" else
            ["predict", made["run"], "--input", made["test"], "--out", out])
    rc, _, err = _cli([*argv, "--batch-size", "0"], capsys)
    assert rc == 2
    assert "--batch-size" in _one_error_line(err)
    assert not out.exists()


@pytest.mark.parametrize("grid", [["0"], ["-5"], ["9"], ["9", "9", "9"]])
def test_info_refuses_a_grid_that_is_not_one_size_per_axis(capsys, grid):
    rc, _, err = _cli(["info", "--preset", "darcy-smooth", "--grid", *grid], capsys)
    assert rc == 2
    assert "--grid" in _one_error_line(err)


def test_demo_into_a_file_or_over_foreign_data_is_refused(tmp_path, capsys):
    afile = tmp_path / "train"
    afile.write_bytes(FOREIGN)
    rc, _, err = _cli(["demo", "--out", afile], capsys)
    assert rc == 2 and "--out" in _one_error_line(err)
    assert afile.read_bytes() == FOREIGN
    folder = tmp_path / "demo"
    folder.mkdir()
    foreign = folder / "darcy_r33_s0_train.h5"
    foreign.write_bytes(FOREIGN)
    rc, _, err = _cli(["demo", "--out", folder], capsys)
    assert rc == 2 and "darcy_r33_s0_train.h5" in _one_error_line(err)
    assert foreign.read_bytes() == FOREIGN


def test_predict_refuses_a_start_frame_for_a_steady_run(made, tmp_path, capsys):
    out = tmp_path / "pred.h5"
    for value in ("-1", "0"):
        rc, _, err = _cli(["predict", made["run"], "--input", made["test"], "--out", out,
                           "--start-frame", value], capsys)
        assert rc == 2 and "--start-frame" in _one_error_line(err)
    assert not out.exists()
