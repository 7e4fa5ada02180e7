"""Faults around a run directory (issue 20, the run side): one writer, no foreign files,
restarts, damaged files, outputs that are never overwritten without --force."""

from __future__ import annotations

import errno
import json
import shutil
import struct
from pathlib import Path

import pytest

from helpers_train import make_steady
from mgno import cli
from mgno.cli import main
from mgno.train.run_dir import RunDir
from mgno.train.task import Task

TINY = ["--channels", "2", "--layers", "1", "--levels", "2", "--quiet"]
RECIPE = ["--epochs", "2", "--batch-size", "2", "--seed", "1"]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """Train and test data and a tiny finished run (2 epochs)."""
    tmp = tmp_path_factory.mktemp("faults")
    make_steady(tmp / "train.h5", n=6, grid=8, seed=0)
    make_steady(tmp / "test.h5", n=2, grid=8, seed=1)
    assert main(["train", "--data", str(tmp / "train.h5"), "--out", str(tmp / "run"),
                 *RECIPE, *TINY]) == 0
    return tmp


@pytest.fixture()
def run(base, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(base / "run", dst)
    return dst


def _train(base, out, *extra):
    return main(["train", "--data", str(base / "train.h5"), "--out", str(out),
                 *RECIPE, *TINY, *extra])


def _one_line_error(capsys, rc, expect_rc=2, *fragments):
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == expect_rc, err
    assert "Traceback" not in "\n".join(err), err
    last = err[-1]
    assert last.startswith("mgno: error: "), err
    for frag in fragments:
        assert frag in last, last
    return last


def _snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


# ----------------------------------------------------------------------------- one writer
def test_second_train_into_a_locked_run_dir_is_refused(base, tmp_path, capsys):
    out = tmp_path / "busy"
    out.mkdir()
    with RunDir(out).lock():  # another `mgno train` holds it
        capsys.readouterr()
        rc = _train(base, out)
        _one_line_error(capsys, rc, 2, str(out), "process", "is writing it")
    assert not any(p.name != ".lock" for p in out.iterdir())
    assert _train(base, out) == 0  # free again: trains, and leaves no lock behind
    assert not (out / ".lock").exists() and RunDir(out).has_state()


def test_resume_of_a_locked_run_is_refused(run, base, capsys):
    before = _snapshot(run)
    with RunDir(run).lock():
        capsys.readouterr()
        _one_line_error(capsys, _train(base, run, "--resume"), 2, "is writing it")
    before.pop(".lock", None)
    after = _snapshot(run)
    after.pop(".lock", None)
    assert after == before


def test_foreign_files_in_out_are_refused(base, tmp_path, capsys):
    out = tmp_path / "foreign"
    out.mkdir()
    (out / "metrics.jsonl").write_text('{"mine": 1}\n')
    capsys.readouterr()
    _one_line_error(capsys, _train(base, out), 2, "metrics.jsonl", "no run that mgno train wrote")
    assert (out / "metrics.jsonl").read_text() == '{"mine": 1}\n'
    (out / "metrics.jsonl").unlink()
    (out / "notes.txt").write_text("kept")  # any file train did not write
    _one_line_error(capsys, _train(base, out), 2, "notes.txt", "did not write")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    (out / "notes.txt").unlink()
    assert _train(base, out) == 0  # an empty folder takes the run


# ----------------------------------------------------------------------------- restarts
def test_run_killed_before_its_first_checkpoint_restarts_on_resume(base, tmp_path, capsys,
                                                                    monkeypatch):
    out = tmp_path / "early"

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # killed during the first epoch, before any checkpoint

    monkeypatch.setattr(Task, "loss", crash)
    assert _train(base, out) == 130
    monkeypatch.undo()
    rdir = RunDir(out)
    assert rdir.has_config() and not rdir.has_state()
    capsys.readouterr()
    assert _train(base, out, "--resume") == 0
    assert "starting it again from the beginning" in capsys.readouterr().err
    assert _train(base, tmp_path / "clean") == 0
    assert rdir.read_metrics() == [
        {**r, "seconds": rdir.read_metrics()[i]["seconds"]}
        for i, r in enumerate(RunDir(tmp_path / "clean").read_metrics())
    ]


def test_resume_of_an_empty_run_dir_starts_from_the_beginning(base, tmp_path, capsys):
    out = tmp_path / "empty"
    out.mkdir()
    (out / ".lock").write_text('{"pid": 999999999, "host": "gone"}')  # a stale lock
    capsys.readouterr()
    assert _train(base, out, "--resume") == 0
    err = capsys.readouterr().err
    assert "starting it again from the beginning" in err and "taking it over" in err
    assert RunDir(out).has_state()


# ----------------------------------------------------------------------------- damaged files
def _edit_config(run: Path, edit) -> None:
    path = run / "config.json"
    cfg = json.loads(path.read_text())
    edit(cfg)
    path.write_text(json.dumps(cfg))


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (lambda c: c["data"].update(grid="8x8"), "'data.grid'"),
        (lambda c: c["data"].update(in_channels=[1]), "'data.in_channels'"),
        (lambda c: c.update(model=[1, 2]), "'model'"),
        (lambda c: c["train"].update(lr="fast"), "'lr'"),
        (lambda c: c["train"].update(batch_size=2.5), "'batch_size'"),
    ],
)
def test_config_with_wrong_types_is_one_line(run, base, capsys, edit, fragment):
    _edit_config(run, edit)
    capsys.readouterr()
    rc = main(["eval", str(run), "--data", str(base / "test.h5")])
    _one_line_error(capsys, rc, 2, "config.json", fragment)


def test_deeply_nested_json_is_one_line(run, base, capsys):
    deep = "[" * 100_000 + "]" * 100_000
    (run / "config.json").write_text(deep)
    capsys.readouterr()
    rc = main(["eval", str(run), "--data", str(base / "test.h5")])
    _one_line_error(capsys, rc, 2, "config.json", "nested")


def test_bad_metrics_lines_are_one_line_and_plot_writes_nothing(run, base, capsys):
    fig = run.parent / "fig.png"
    for bad in ('{"epoch": "one", "train_loss": 1.0}\n', "[" * 50_000 + "]" * 50_000 + "\n",
                "[1, 2]\n"):
        (run / "metrics.jsonl").write_text(bad)
        capsys.readouterr()
        rc = main(["plot", str(run), "--data", str(base / "test.h5"), "--out", str(fig)])
        _one_line_error(capsys, rc, 2, "metrics.jsonl")
        assert not fig.exists() and not fig.with_name("fig_loss.png").exists()


def _rewrite_header(path: Path, edit) -> None:
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    edit(header)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n :])


def _first_tensor(header: dict) -> dict:
    return header[next(k for k in header if k != "__metadata__")]


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (lambda h: _first_tensor(h).update(dtype="F99"), "dtype"),
        (lambda h: _first_tensor(h).update(dtype=7), "dtype"),
        (lambda h: _first_tensor(h).update(shape="big"), "shape"),
        (lambda h: _first_tensor(h).update(shape=[10**6]), "bytes for shape"),
        (lambda h: _first_tensor(h).update(data_offsets="0-4"), "data_offsets"),
        (lambda h: _first_tensor(h).update(data_offsets=[8, 4]), "data_offsets"),
        (lambda h: h.update(__metadata__={"epoch": 1}), "__metadata__"),
        (lambda h: h.update(__metadata__={"epoch": "one"}), "epoch"),
    ],
)
def test_safetensors_headers_with_wrong_fields_are_one_line(run, base, capsys, edit, fragment):
    _rewrite_header(run / "model.safetensors", edit)
    capsys.readouterr()
    rc = main(["eval", str(run), "--data", str(base / "test.h5")])
    _one_line_error(capsys, rc, 2, "model.safetensors", fragment)


def test_checkpoint_with_wrong_counter_types_is_one_line(run, base, capsys):
    def edit(header):
        tree = json.loads(header["__metadata__"]["tree"])
        for key, value in tree["__dict__"]:
            if key == "counters":
                for item in value["__dict__"]:
                    if item[0] == "epoch":
                        item[1] = "two"
        header["__metadata__"]["tree"] = json.dumps(tree)

    _rewrite_header(run / "checkpoint.safetensors", edit)
    capsys.readouterr()
    rc = _train(base, run, "--resume")
    _one_line_error(capsys, rc, 2, "checkpoint.safetensors", "counters.epoch")


def test_negative_batch_size_is_one_line(run, base, capsys):
    capsys.readouterr()
    rc = main(["eval", str(run), "--data", str(base / "test.h5"), "--batch-size", "-1"])
    _one_line_error(capsys, rc, 2, "--batch-size")


# ----------------------------------------------------------------------------- outputs
def test_predict_and_plot_refuse_existing_outputs_without_force(run, base, capsys):
    pred, fig = run.parent / "pred.h5", run.parent / "fig.png"
    pred.write_bytes(b"keep")
    fig.write_bytes(b"keep")
    capsys.readouterr()
    rc = main(["predict", str(run), "--input", str(base / "test.h5"), "--out", str(pred)])
    _one_line_error(capsys, rc, 2, "pred.h5", "--force")
    rc = main(["plot", str(run), "--data", str(base / "test.h5"), "--out", str(fig)])
    _one_line_error(capsys, rc, 2, "fig.png", "--force")
    assert pred.read_bytes() == b"keep" and fig.read_bytes() == b"keep"
    assert main(["predict", str(run), "--input", str(base / "test.h5"), "--out", str(pred),
                 "--force"]) == 0
    assert main(["plot", str(run), "--data", str(base / "test.h5"), "--out", str(fig),
                 "--force"]) == 0
    assert pred.read_bytes()[:4] == b"\x89HDF" and fig.read_bytes()[:4] == b"\x89PNG"


def test_predict_that_fails_leaves_no_file(run, base, capsys):
    pred = run.parent / "pred.h5"
    _edit_config(run, lambda c: c["model"].update(channels=3))  # weights no longer fit
    capsys.readouterr()
    rc = main(["predict", str(run), "--input", str(base / "test.h5"), "--out", str(pred)])
    _one_line_error(capsys, rc, 2, "model.safetensors")
    assert not pred.exists() and not pred.with_name("pred.h5.lock").exists()


# ----------------------------------------------------------------------------- exit codes
@pytest.mark.parametrize(
    "exc, rc, one_line",
    [
        (TypeError("unsupported operand"), 1, False),
        (ValueError("a plain bug"), 1, False),
        (KeyError("x"), 1, False),
        (PermissionError(errno.EACCES, "Permission denied", "/x/run"), 2, True),
        (OSError(errno.ENOSPC, "No space left on device", "/x/run/model.safetensors"), 1, True),
        (OSError(errno.EROFS, "Read-only file system", "/x/run"), 2, True),
    ],
)
def test_dispatch_keeps_tracebacks_for_bugs(capsys, monkeypatch, exc, rc, one_line):
    def boom(args):
        raise exc

    monkeypatch.setattr(cli, "_run_eval", boom)
    monkeypatch.setattr(cli, "_VERBS", [(n, a, boom if n == "eval" else r)
                                        for n, a, r in cli._VERBS])
    capsys.readouterr()
    assert main(["eval", "run", "--data", "x.h5"]) == rc
    err = capsys.readouterr().err.strip().splitlines()
    if one_line:
        assert len(err) == 1 and err[0].startswith("mgno: error: ") and "/x/run" in err[0]
    else:
        assert err[0].startswith("Traceback") and "bug in mgno" in err[-1]


def test_full_disk_is_one_line_exit_1_and_the_run_restarts(base, tmp_path, capsys):
    import resource
    import subprocess
    import sys

    out = tmp_path / "full"
    argv = [sys.executable, "-m", "mgno.cli", "train", "--data", str(base / "train.h5"),
            "--out", str(out), *RECIPE, *TINY]

    def small_disk():  # files of at most 20 KB: the checkpoint does not fit
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                          preexec_fn=small_disk)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1, proc.stderr
    assert len(lines) == 1 and "File too large" in lines[0] and "checkpoint.safetensors" in lines[0]
    assert not (out / ".lock").exists()
    capsys.readouterr()
    assert _train(base, out, "--resume") == 0
    assert "starting it again from the beginning" in capsys.readouterr().err
    assert RunDir(out).has_state() and len(RunDir(out).read_metrics()) == 2


def test_read_only_run_dir_is_one_line_exit_2(base, tmp_path, capsys, monkeypatch):
    import mgno.lock

    out = tmp_path / "ro"
    out.mkdir()

    def read_only(path, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(mgno.lock.os, "open", read_only)
    capsys.readouterr()
    rc = _train(base, out)
    monkeypatch.undo()
    _one_line_error(capsys, rc, 2, "Read-only file system", str(out / ".lock"))


def test_config_asking_for_more_memory_than_the_machine_has_is_one_line(base, tmp_path, capsys):
    import shutil

    run = tmp_path / "huge"
    shutil.copytree(base / "run", run)
    cfg = json.loads((run / "config.json").read_text())
    cfg["model"]["channels"] = 10**6  # 9e12 weights in each 3x3 stencil
    (run / "config.json").write_text(json.dumps(cfg))
    rc = main(["eval", str(run), "--data", str(base / "train.h5")])
    _one_line_error(capsys, rc, 2, "config.json", "parameters", "more than")
    cfg["model"]["channels"] = 10**9  # beyond what a tensor's size can count
    (run / "config.json").write_text(json.dumps(cfg))
    rc = main(["eval", str(run), "--data", str(base / "train.h5")])
    _one_line_error(capsys, rc, 2, "config.json", "overflow")


def test_training_grid_of_the_wrong_shape_is_one_line(base, tmp_path, capsys):
    import shutil

    run = tmp_path / "grid"
    shutil.copytree(base / "run", run)
    cfg = json.loads((run / "config.json").read_text())
    cfg["training_grid"] = {"shape": "x"}
    (run / "config.json").write_text(json.dumps(cfg))
    rc = main(["eval", str(run), "--data", str(base / "train.h5")])
    _one_line_error(capsys, rc, 2, "training_grid.shape")


@pytest.mark.parametrize("option, fragment", [
    (["--lr", "inf"], "'lr'"), (["--weight-decay", "nan"], "'weight_decay'"),
    (["--seed", "-1"], "'seed'"), (["--layers", "1000000000"], "layers"),
    (["--channels", "1000000000"], "overflow"),
])
def test_non_finite_rates_and_negative_seeds_are_refused_up_front(base, tmp_path, capsys, option,
                                                                  fragment):
    out = tmp_path / "run"
    rc = main(["train", "--data", str(base / "train.h5"), "--out", str(out), *RECIPE, *TINY,
               *option])
    _one_line_error(capsys, rc, 2, fragment)
    assert not out.exists()
