"""`mgno bench`: the comparison harness (tiny data, one epoch, one child process)."""

from __future__ import annotations

import json

import pytest

from helpers_train import make_steady
from mgno.bench import (
    RESULTS_JSON,
    RESULTS_MD,
    RUNS_FILE,
    STEPS_FILE,
    compare_targets,
    get_profile,
    list_profiles,
    run_bench,
    time_to_accuracy,
)
from mgno.cli import main
from mgno.errors import InputError


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bench")
    return (make_steady(d / "train.h5", n=8, grid=16), make_steady(d / "val.h5", n=4, seed=1),
            make_steady(d / "test.h5", n=4, seed=2))


def test_bench_trains_measures_writes_and_skips_finished_runs(tmp_path, files, capsys):
    data, val, test = files
    out = tmp_path / "bench"
    argv = ["bench", "--data", str(data), "--val", str(val), "--test", str(test),
            "--models", "fno", "--epochs", "1", "--batch-size", "4", "--threads", "1",
            "--out", str(out), "--quiet"]
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == str(out / RESULTS_MD)
    res = json.loads((out / RESULTS_JSON).read_text())
    assert res["complete"] and res["machine"]["torch_threads"] == 1
    assert res["command"].startswith("mgno bench --data")
    (task,) = res["tasks"]
    for family in ("fno",):
        r = task["models"][family]
        assert r["status"] == "finished" and r["epochs_done"] == 1
        assert r["rel_l2"] > 0 and r["rel_h1"] > 0 and r["parameters"] > 0
        assert r["peak_rss_mib"] > 50 and r["inference_ms_per_sample"] > 0
        assert r["seconds_per_epoch_median"] > 0
        assert task["commands"][family].startswith("mgno train --data")
    assert task["targets"] is None  # needs both MgNO and FNO
    md = (out / RESULTS_MD).read_text()
    assert "| fno |" in md and "torch threads 1" in md
    # a second call finds both runs finished: no training, same numbers
    again = run_bench(out, data=data, val=val, test=test, models=["fno"], epochs=1,
                      batch_size=4, progress=False)
    assert again["tasks"][0]["models"]["fno"]["rel_l2"] == task["models"]["fno"]["rel_l2"]
    assert len(json.loads((out / "runs/custom/fno" / RUNS_FILE).read_text())) == 1
    with pytest.raises(InputError, match="epochs"):
        run_bench(out, data=data, test=test, models=["fno"], epochs=3, progress=False)


def test_time_limit_stops_before_training_and_reports_it(tmp_path, files):
    data, val, test = files
    res = run_bench(tmp_path, data=data, val=val, test=test, models=["fno"], epochs=1,
                    time_limit=0, progress=False)
    assert not res["complete"]
    assert res["tasks"][0]["models"]["fno"]["status"] == "not started"
    assert not (tmp_path / "runs" / "custom" / "fno" / RUNS_FILE).exists()
    assert (tmp_path / RESULTS_MD).is_file()


def test_parallel_jobs_train_every_model_once(tmp_path, files, capsys):
    data, val, test = files
    res = run_bench(tmp_path, data=data, val=val, test=test, models=["fno", "unet"], epochs=1,
                    batch_size=4, jobs=2, threads=1, progress=True)
    assert res["complete"]
    for family in ("fno", "unet"):
        assert res["tasks"][0]["models"][family]["status"] == "finished"
        runs = json.loads((tmp_path / "runs" / "custom" / family / RUNS_FILE).read_text())
        assert [r["status"] for r in runs] == ["finished"]
    err = capsys.readouterr().err
    assert "custom/fno: finished after" in err and "custom/unet: finished after" in err
    # two finished models: their steps were timed side by side after training
    steps = json.loads((tmp_path / "runs" / "custom" / STEPS_FILE).read_text())
    assert steps["grid"] == [16, 16] and steps["batch"] == 4
    for family in ("fno", "unet"):
        ms = res["tasks"][0]["models"][family]["step_ms_per_sample"]
        assert ms == steps["ms_per_sample"][family] and ms > 0
    assert "step ms/sample (equal load)" in (tmp_path / RESULTS_MD).read_text()
    with pytest.raises(InputError, match="--jobs"):
        run_bench(tmp_path, data=data, test=test, models=["fno"], jobs=0, progress=False)


def test_unfinished_run_needs_resume(tmp_path, files):
    data, val, test = files
    run = tmp_path / "runs" / "custom" / "fno"
    run.mkdir(parents=True)
    (run / "config.json").write_text("{}")
    with pytest.raises(InputError, match="--resume"):
        run_bench(tmp_path, data=data, test=test, models=["fno"], progress=False)


def test_bad_input_is_refused(tmp_path, files, capsys):
    data, _, test = files
    with pytest.raises(InputError, match="--models"):
        run_bench(tmp_path, data=data, test=test, models=["resnet"], progress=False)
    with pytest.raises(InputError, match="--profile"):
        get_profile("tpu")
    with pytest.raises(InputError, match="--tasks"):
        run_bench(tmp_path, profile="cpu-quick", tasks=["heat"], progress=False)
    assert main(["bench", "--data", str(data), "--out", str(tmp_path)]) == 2
    assert "--test" in capsys.readouterr().err


def test_profiles_match_the_issue():
    assert set(list_profiles()) == {"cpu", "cpu-quick", "gpu"}
    cpu = {t.name: t for t in get_profile("cpu")}
    darcy = cpu["darcy"].data
    assert (darcy.pde, darcy.resolution, darcy.n_train, darcy.n_val, darcy.n_test) == (
        "darcy-smooth", 64, 1000, 100, 100)
    assert darcy.params["solve_resolution"] > 64
    assert cpu["ns"].data.params["nu"] == 1e-5 and cpu["ns"].preset == "navier-stokes"
    assert "neumann" in cpu["mixed"].data.params["bc"]
    gpu = {t.name: t.data for t in get_profile("gpu")}
    assert gpu["darcy-smooth"].resolution == 211 and gpu["darcy-rough"].resolution == 256


def test_time_to_accuracy_and_targets():
    curve = [[1, 0.5, 10.0], [2, 0.2, 10.0], [3, 0.1, 10.0]]
    assert time_to_accuracy(curve, 0.2) == 20.0
    assert time_to_accuracy(curve, 0.01) is None
    models = {
        "mgno": {"rel_l2": 0.04, "epochs_done": 3, "val_curve": curve,
                 "best_val_rel_l2": 0.1},
        "fno": {"rel_l2": 0.1, "epochs_done": 3, "best_val_rel_l2": 0.5, "train_seconds": 60.0},
    }
    t = compare_targets(models)
    assert t["error_ratio"] == pytest.approx(0.4) and t["error_target_met"]
    assert t["time_ratio"] == pytest.approx(10 / 60) and t["time_target_met"]
    assert t["mgno_epochs_to_fno_best"] == 1 and t["fno_epochs"] == 3
    assert t["time_ratio_equal_load"] is None and not t["time_target_met_equal_load"]
    models["mgno"]["step_ms_per_sample"], models["fno"]["step_ms_per_sample"] = 40.0, 20.0
    t = compare_targets(models)  # 1 MgNO epoch at twice FNO's step cost vs 3 FNO epochs
    assert t["time_ratio_equal_load"] == pytest.approx(2 / 3)
    assert not t["time_target_met_equal_load"]
    assert compare_targets({"mgno": models["mgno"]}) is None


def test_child_is_stopped_at_the_deadline():
    import os
    import sys
    import time

    from mgno.bench import _run_process

    t0 = time.monotonic()
    code, usage, stopped = _run_process(
        [sys.executable, "-c", "import time; time.sleep(60)"], dict(os.environ), t0 + 0.5)
    assert stopped and code != 0 and time.monotonic() - t0 < 20
    assert usage.ru_maxrss > 0


def test_profile_data_generated_by_several_workers(tmp_path):
    from mgno.bench import DataSpec, Task, ensure_data
    from mgno.data.schema import open_dataset

    task = Task("tiny", "tiny Darcy", DataSpec("darcy-smooth", 9, {"solve_resolution": 17},
                                               4, 2, 2, seed=5), "darcy-smooth", {})
    assert ensure_data(tmp_path, task, device=None, progress=False, threads=1, workers=2)
    sizes = [open_dataset(tmp_path / "data" / f"tiny_{s}.h5").n_samples
             for s in ("train", "val", "test")]
    assert sizes == [4, 2, 2]


def test_sigterm_to_the_bench_stops_its_children_first(tmp_path, files):
    """A bench killed with SIGTERM stops the running training, which keeps a checkpoint."""
    import os
    import signal
    import subprocess
    import sys
    import time

    data, val, test = files
    out = tmp_path / "bench"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mgno.cli", "bench", "--data", str(data), "--val", str(val),
         "--test", str(test), "--models", "fno", "--epochs", "500", "--batch-size", "4",
         "--threads", "1", "--out", str(out), "--quiet"], env=env)
    run = out / "runs" / "custom" / "fno"
    t0 = time.monotonic()
    while not (run / "metrics.jsonl").is_file() and time.monotonic() - t0 < 120:
        time.sleep(0.2)
    assert (run / "metrics.jsonl").is_file(), "training never started"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 130
    # the record exists only if the parent waited for its child's exit status
    runs = json.loads((run / RUNS_FILE).read_text())
    assert runs[-1]["status"] == "interrupted" and runs[-1]["exit_code"] == 130
    assert (run / "checkpoint.safetensors").is_file()
