"""--threads on the computing verbs: set, recorded in the outputs, bad values one line."""

from __future__ import annotations

import h5py
import pytest
import torch

from helpers_train import make_steady
from mgno import threads
from mgno.cli import main
from mgno.train.run_dir import RunDir, recorded_threads

GENERATE = ["generate", "poisson", "--n", "4", "--resolution", "9", "--seed", "0",
            "--no-progress"]
TRAIN = ["--epochs", "1", "--batch-size", "4", "--channels", "4", "--layers", "1",
         "--levels", "2", "--quiet"]


@pytest.fixture(autouse=True)
def _restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_generate_records_the_threads_it_used(tmp_path):
    out = tmp_path / "p.h5"
    assert main([*GENERATE, "--out", str(out), "--threads", "1"]) == 0
    with h5py.File(out, "r") as f:
        assert int(f.attrs["threads"]) == 1


@pytest.mark.parametrize("bad", ["0", "-2"])
def test_bad_thread_counts_are_one_line_exit_2(tmp_path, capsys, bad):
    out = tmp_path / "p.h5"
    assert main([*GENERATE, "--out", str(out), "--threads", bad]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mgno: error: --threads") and not out.exists()


def test_too_many_threads_clamp_with_a_warning(tmp_path, capsys):
    out = tmp_path / "p.h5"
    assert main([*GENERATE, "--out", str(out), "--threads", "4096"]) == 0
    assert "warning: --threads 4096 is more than" in capsys.readouterr().err
    with h5py.File(out, "r") as f:
        assert 1 <= int(f.attrs["threads"]) < 4096


def test_a_resumed_run_keeps_its_recorded_threads(tmp_path, monkeypatch):
    data = make_steady(tmp_path / "d.h5", n=8, grid=9)
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), *TRAIN, "--threads", "1"]) == 0
    assert recorded_threads(run) == 1 == RunDir(run).read_config()["threads"]
    torch.set_num_threads(2)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "available_cores", lambda: 4)  # auto alone would say 4
    monkeypatch.setattr(threads, "busy_cores", lambda interval=0.1: 0.0)
    assert threads.resolve_threads("auto") == 4
    assert main(["train", "--data", str(data), "--out", str(run), *TRAIN, "--resume"]) == 0
    assert torch.get_num_threads() == 1  # auto on resume: the run's own count

