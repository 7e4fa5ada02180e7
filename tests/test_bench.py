"""`mgno bench`: the comparison harness (tiny data, one epoch, child processes)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from helpers_train import make_steady
from mgno.bench import (
    RESULTS_JSON,
    RESULTS_MD,
    STEPS_FILE,
    BenchConfig,
    DataSpec,
    RunSpec,
    Task,
    compare_targets,
    ensure_data,
    fingerprint,
    get_profile,
    list_profiles,
    read_job,
    record_path,
    run_bench,
    time_to_accuracy,
    write_job,
)
from mgno.bench.measure import summarise
from mgno.bench.spec import StepsJob, TrainJob, code_version, source_hash
from mgno.bench.supervise import run_process
from mgno.cli import main
from mgno.errors import InputError
from mgno.lock import OutputBusyError, OutputLock
from mgno.train.run_dir import CONFIG, METRICS, STATE

FNO = "runs/custom/fno"


def _record(out: Path, run: str = FNO) -> dict:
    return json.loads(record_path(out / run).read_text())


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bench")
    return (make_steady(d / "train.h5", n=8, grid=16), make_steady(d / "val.h5", n=4, seed=1),
            make_steady(d / "test.h5", n=4, seed=2))


@pytest.fixture(scope="module")
def finished(tmp_path_factory, files):
    """A bench directory with one finished FNO run, made through the CLI."""
    data, val, test = files
    out = tmp_path_factory.mktemp("finished") / "bench"
    argv = ["bench", "--data", str(data), "--val", str(val), "--test", str(test),
            "--models", "fno", "--epochs", "1", "--batch-size", "4", "--threads", "1",
            "--out", str(out), "--quiet"]
    assert main(argv) == 0
    return out


def _copy(finished: Path, tmp_path: Path) -> Path:
    out = tmp_path / "bench"
    shutil.copytree(finished, out)
    return out


def _again(out, data, val, test, **kw):
    opts = {"models": ["fno"], "epochs": 1, "batch_size": 4, "progress": False, **kw}
    return run_bench(out, data=data, val=val, test=test, **opts)


def test_bench_trains_measures_writes_and_reuses_its_runs(finished, files, capsys):
    out = finished
    res = json.loads((out / RESULTS_JSON).read_text())
    assert res["complete"] and res["machine"]["torch_threads"] == 1
    assert res["command"].startswith("mgno bench --data")
    (task,) = res["tasks"]
    r = task["models"]["fno"]
    assert r["status"] == "finished" and r["epochs_done"] == 1
    assert r["rel_l2"] > 0 and r["rel_h1"] > 0 and r["parameters"] > 0
    assert r["peak_rss_mib"] > 50 and r["inference_ms_per_sample"] > 0
    assert r["seconds_per_epoch_median"] > 0
    assert task["commands"]["fno"].startswith("mgno train --data")
    assert task["targets"] is None  # needs both MgNO and FNO
    md = (out / RESULTS_MD).read_text()
    assert "| fno |" in md and "torch threads 1" in md
    # the record holds the spec the run was trained with, under its key
    rec = _record(out)
    spec = RunSpec.from_dict(rec["spec"])
    assert rec["key"] == spec.key() and spec.recipe["epochs"] == 1
    assert spec.train_data["content_sha256"] == fingerprint(files[0])["content_sha256"]
    assert not (out / "jobs").exists()  # job files pass through and are removed
    # a second call with the same spec: no training, no evaluation, same numbers
    data, val, test = files
    stamp = record_path(out / FNO).stat().st_mtime_ns
    again = _again(out, data, val, test)
    assert again["tasks"][0]["models"]["fno"]["rel_l2"] == r["rel_l2"]
    assert len(_record(out)["runs"]) == 1
    assert record_path(out / FNO).stat().st_mtime_ns == stamp


def test_changed_lr_is_refused_and_retrained_with_force(finished, files, tmp_path):
    data, val, test = files
    out = _copy(finished, tmp_path)
    old = _record(out)
    with pytest.raises(InputError, match=r"recipe\.lr: \(none\) -> 0\.01.*--force"):
        _again(out, data, val, test, lr=0.01)
    with pytest.raises(InputError, match=r"recipe\.epochs: 1 -> 3"):
        _again(out, data, val, test, epochs=3)
    assert _record(out) == old  # refused before any work
    res = _again(out, data, val, test, lr=0.01, force=True)
    rec = _record(out)
    assert rec["spec"]["recipe"]["lr"] == 0.01 and rec["key"] != old["key"]
    assert [r["status"] for r in rec["runs"]] == ["finished"]
    assert rec["eval"]["result"]["rel_l2"] == res["tasks"][0]["models"]["fno"]["rel_l2"]
    assert rec["eval"]["result"]["rel_l2"] != old["eval"]["result"]["rel_l2"]


def test_changed_data_is_not_reused(finished, files, tmp_path):
    """Other samples at the same paths: training refused, evaluation recomputed."""
    data, val, test = files
    out = _copy(finished, tmp_path)
    mine = tmp_path / "data"
    mine.mkdir()
    tr, va, te = (shutil.copy(p, mine / p.name) for p in files)
    old = _record(out)
    before = _again(out, tr, va, te)["tasks"][0]["models"]["fno"]
    assert before["rel_l2"] == old["eval"]["result"]["rel_l2"]  # same content, other path
    os.replace(make_steady(mine / "new_test.h5", n=4, seed=7), te)
    after = _again(out, tr, va, te)["tasks"][0]["models"]["fno"]
    assert after["rel_l2"] != before["rel_l2"] and len(_record(out)["runs"]) == 1
    os.replace(make_steady(mine / "new_train.h5", n=8, grid=16, seed=9), tr)
    with pytest.raises(InputError, match=r"train_data\.content_sha256"):
        _again(out, tr, va, te)


def test_unfinished_run_needs_resume(finished, files, tmp_path, capsys):
    from mgno.bench.records import plan_run

    data, val, test = files
    out = _copy(finished, tmp_path)
    rec = _record(out)
    rec["runs"][-1]["status"] = "interrupted"
    record_path(out / FNO).write_text(json.dumps(rec))
    assert (out / FNO / STATE).is_file()
    with pytest.raises(InputError, match="--resume"):
        _again(out, data, val, test)
    spec = RunSpec.from_dict(rec["spec"])
    plan = plan_run(out / FNO, spec, resume=True, force=False, label="custom/fno")
    assert plan.resume and not plan.finished and plan.runs == rec["runs"]
    # stopped before its first checkpoint: --resume starts it from the beginning
    (out / FNO / STATE).unlink()
    plan = plan_run(out / FNO, spec, resume=True, force=False, label="custom/fno")
    assert not plan.resume and plan.runs == [] and not (out / FNO).exists()
    assert "before its first checkpoint; --resume" in capsys.readouterr().err


def test_foreign_run_directory_is_refused(files, tmp_path):
    data, val, test = files
    run = tmp_path / FNO
    run.mkdir(parents=True)
    (run / CONFIG).write_text("{}")
    with pytest.raises(InputError, match=r"no fno\.bench\.json.*--force"):
        _again(tmp_path, data, val, test)


def test_time_limit_stops_before_training_and_reports_it(tmp_path, files):
    data, val, test = files
    res = _again(tmp_path, data, val, test, time_limit=0)
    assert not res["complete"]
    assert res["tasks"][0]["models"]["fno"]["status"] == "not started"
    assert not record_path(tmp_path / FNO).exists()
    assert (tmp_path / RESULTS_MD).is_file()


def test_parallel_jobs_train_every_model_once_and_compare_them(tmp_path, files, capsys):
    data, val, test = files
    res = run_bench(BenchConfig(tmp_path, data=data, val=val, test=test, models=("mgno", "fno"),
                                epochs=1, batch_size=4, jobs=2, threads=1, progress=True))
    assert res["complete"]
    rows = res["tasks"][0]["models"]
    for family in ("mgno", "fno"):
        assert rows[family]["status"] == "finished"
        runs = _record(tmp_path, f"runs/custom/{family}")["runs"]
        assert [r["status"] for r in runs] == ["finished"]
    err = capsys.readouterr().err
    assert "custom/fno: finished after" in err and "custom/mgno: finished after" in err
    # two finished models: their steps were timed side by side after training
    steps = json.loads((tmp_path / "runs" / "custom" / STEPS_FILE).read_text())
    assert steps["grid"] == [16, 16] and steps["batch"] == 4
    for family in ("mgno", "fno"):
        assert rows[family]["step_ms_per_sample"] == steps["ms_per_sample"][family] > 0
    # the targets are computed from the two runs' own results
    t = res["tasks"][0]["targets"]
    assert t["error_ratio"] == pytest.approx(rows["mgno"]["rel_l2"] / rows["fno"]["rel_l2"])
    assert t["fno_best_val_rel_l2"] == rows["fno"]["best_val_rel_l2"]
    assert t["fno_train_seconds"] == rows["fno"]["train_seconds"]
    assert "step ms/sample (equal load)" in (tmp_path / RESULTS_MD).read_text()
    with pytest.raises(InputError, match="--jobs"):
        run_bench(tmp_path, data=data, test=test, models=["fno"], jobs=0, progress=False)


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
    with OutputLock(tmp_path), pytest.raises(OutputBusyError, match=str(os.getpid())):
        run_bench(tmp_path, data=data, test=test, models=["fno"], progress=False)


PROFILE_TASKS = [(p, t.name) for p in list_profiles() for t in get_profile(p)]


@pytest.mark.parametrize("profile,name", PROFILE_TASKS, ids=[f"{p}/{t}" for p, t in PROFILE_TASKS])
def test_profiles_are_valid_against_the_registries(profile, name):
    """Every profile task names a known generator, accepted parameters, a known
    preset and a recipe TrainConfig accepts; its title says its grid."""
    from mgno.pde.registry import get_pde, parse_params
    from mgno.presets import get_preset
    from mgno.train import TrainConfig

    code = code_version()
    task = next(t for t in get_profile(profile) if t.name == name)
    d = task.data
    assert f"{d.resolution}x{d.resolution}" in task.title
    if "solve_resolution" in d.params:
        assert d.params["solve_resolution"] >= d.resolution
    recipe = {**(get_preset(task.preset)["train"] if task.preset else {}), **task.train}
    TrainConfig.from_dict(recipe, source=f"{profile}/{task.name}")
    for family in task.models:
        gen = {"path": "x.h5", "size": 0, "content_sha256": "", "generator": None}
        spec = RunSpec(family, task.preset, task.models[family], task.train, gen, None,
                       "cpu", code)
        assert RunSpec.from_dict(spec.to_dict()) == spec
    params = parse_params(get_pde(d.pde), d.params)
    assert all(params[k] == v for k, v in d.params.items())
    if d.pde.startswith("darcy"):  # a node-aligned subsample of the solve grid
        from mgno.pde.darcy import subsample_stride

        assert subsample_stride(d.resolution, d.params["solve_resolution"]) >= 1


def test_cpu_profile_runs_navier_stokes_ten_to_ten_beside_ns2(tmp_path):
    from mgno.bench.data import data_paths
    from mgno.bench.runner import train_command
    from mgno.presets import get_preset
    from mgno.train import TrainConfig

    names = [t.name for t in get_profile("cpu")]
    assert names.index("ns10") == names.index("ns") + 1
    assert "ns10" not in [t.name for t in get_profile("cpu-quick")]
    tasks = {t.name: t for t in get_profile("cpu")}
    ns, ns10 = tasks["ns"], tasks["ns10"]
    assert ns10.data.split_sizes() == ns.data.split_sizes() == (100, 10, 20)
    assert (ns10.data.pde, ns10.data.resolution, ns10.data.seed) == ("navier-stokes", 64, 210)
    assert ns10.data.params["nu"] == 1e-5 and ns10.data.params["T"] == 20.0
    # one task, two profiles: the cpu profile's ns10 is the paper-cpu profile's
    assert ns10 == {t.name: t for t in get_profile("paper-cpu")}["ns10"]
    cfg = TrainConfig.from_dict({**get_preset(ns10.preset)["train"], **ns10.train})
    frames = int(ns10.data.params["T"]) + 1 - cfg.start_frame  # t = 1..20 (record_every 1)
    assert (cfg.protocol, cfg.steps_in, cfg.steps_out, frames) == ("10-10", 10, 10, 20)
    # its own data files and cache keys
    assert data_paths(tmp_path, ns10)[0].name == "ns10_train.h5"
    gen = {"path": "x.h5", "size": 0, "content_sha256": "", "generator": None}
    specs = [RunSpec("mgno", t.preset, {}, t.train, {**gen, "generator": t.data.generator(0)},
                     None, "cpu", code_version()) for t in (ns, ns10)]
    assert specs[0].key() != specs[1].key()
    command = train_command(specs[1], tmp_path / "run")
    assert "--protocol 10-10 --steps-in 10 --steps-out 10" in command
    import shlex

    from mgno.cli import build_parser

    words = shlex.split(command)[2:]  # the command parses as an `mgno train` call
    args = build_parser().parse_args(["train", *words])
    assert (args.protocol, args.steps_in, args.steps_out) == ("10-10", 10, 10)


def test_run_spec_and_job_files_round_trip_and_validate(tmp_path):
    data = {"path": "/d/train.h5", "size": 10, "content_sha256": "ab", "generator": None}
    spec = RunSpec("fno", None, {"channels": 8}, {"epochs": 2, "lr": 1e-3}, data, None, "cpu",
                   {"mgno": "0.1.0", "source_sha256": "00"})
    job = TrainJob(spec, str(tmp_path / "run"), False, 1, False, str(tmp_path / "r.json"))
    back = read_job(write_job(tmp_path / "job.json", job))
    assert back == job and back.run.key() == spec.key()
    # the key follows what a run computes, not where its files are
    moved = replace(spec, train_data={**data, "path": "/e/t.h5", "size": 11})
    assert moved.key() == spec.key()
    assert replace(spec, recipe={**spec.recipe, "device": "cpu"}).key() == spec.key()
    for changed in (replace(spec, recipe={"epochs": 2, "lr": 2e-3}),
                    replace(spec, train_data={**data, "content_sha256": "cd"}),
                    replace(spec, code={"mgno": "0.1.0", "source_sha256": "01"}),
                    replace(spec, model_overrides={"channels": 16}),
                    replace(spec, device="cuda"), replace(spec, preset="darcy-smooth")):
        assert changed.key() != spec.key()
    steps = StepsJob({"fno": "/r/fno"}, "/d/test.h5", 4, "cpu", None, "/r/out.json")
    assert read_job(write_job(tmp_path / "steps.json", steps)) == steps
    bad = json.loads((tmp_path / "job.json").read_text())
    for path, value, field in ((("run", "family"), "resnet", "family"),
                               (("run", "recipe"), {"lr": -1.0}, "lr"),
                               (("threads",), 0, "threads"), (("resume",), "yes", "resume"),
                               (("kind",), "predict", "kind")):
        d = json.loads(json.dumps(bad))
        (d if len(path) == 1 else d[path[0]])[path[-1]] = value
        (tmp_path / "bad.json").write_text(json.dumps(d))
        with pytest.raises(InputError, match=field):
            read_job(tmp_path / "bad.json")
    proc = subprocess.run([sys.executable, "-m", "mgno.bench.job", str(tmp_path / "bad.json")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1


def test_source_hash_follows_numeric_code_only(tmp_path):
    import mgno

    pkg = tmp_path / "mgno"
    shutil.copytree(Path(mgno.__file__).parent, pkg,
                    ignore=shutil.ignore_patterns("__pycache__"))
    h = source_hash(pkg)
    with open(pkg / "cli.py", "a") as f:
        f.write("\n# a comment\n")
    assert source_hash(pkg) == h
    with open(pkg / "nn" / "mgno.py", "a") as f:
        f.write("\n# a comment\n")
    assert source_hash(pkg) != h


def test_targets_from_the_runs_own_records(tmp_path):
    """compare_targets on the rows summarise() makes of two runs' metrics files."""
    curves = {"mgno": [(1, 0.5, 10.0), (2, 0.2, 10.0), (3, 0.1, 10.0)],
              "fno": [(1, 0.6, 20.0), (2, 0.5, 20.0), (3, 0.3, 20.0)]}
    rows = {}
    for name, curve in curves.items():
        run = tmp_path / name
        run.mkdir()
        (run / METRICS).write_text("".join(
            json.dumps({"epoch": e, "train_loss": v, "val_rel_l2": v, "seconds": s}) + "\n"
            for e, v, s in curve))
        rows[name] = summarise(run, [{"max_rss_mib": 100.0}], {"rel_l2": 0.04 if
                                                                name == "mgno" else 0.1})
    t = compare_targets(rows)
    # FNO's best validation error 0.3 after 60 s; MgNO passes it at epoch 2, after 20 s
    assert t["fno_best_val_rel_l2"] == 0.3 and t["fno_train_seconds"] == 60.0
    assert t["mgno_epochs_to_fno_best"] == 2 and t["mgno_seconds_to_fno_best"] == 20.0
    assert t["time_ratio"] == pytest.approx(1 / 3) and t["time_target_met"]
    assert t["error_ratio"] == pytest.approx(0.4) and t["error_target_met"]
    assert t["time_ratio_equal_load"] is None and not t["time_target_met_equal_load"]
    rows["mgno"]["step_ms_per_sample"], rows["fno"]["step_ms_per_sample"] = 40.0, 20.0
    t = compare_targets(rows)  # 2 MgNO epochs at twice FNO's step cost vs 3 FNO epochs
    assert t["time_ratio_equal_load"] == pytest.approx(4 / 3)
    assert not t["time_target_met_equal_load"]
    assert time_to_accuracy(curves["mgno"], 0.01) is None
    assert compare_targets({"mgno": rows["mgno"]}) is None
    # a coarse-to-fine run: its coarse epochs (no val_rel_l2) cost less than a fine
    # step each, so the equal-load ratio is not defined; the measured one still is
    rows["mgno"]["val_curve"] = [[1, None, 2.0], [2, None, 2.0], [3, 0.2, 10.0]]
    t = compare_targets(rows)
    assert t["mgno_seconds_to_fno_best"] == 14.0 and t["mgno_epochs_to_fno_best"] == 3
    assert t["time_ratio_equal_load"] is None


def test_the_cpu_profile_trains_mgno_coarse_to_fine_on_darcy_and_fno_as_before(tmp_path):
    from mgno.bench.runner import BenchConfig, _new_task_run, _spec, train_command

    darcy = {t.name: t for t in get_profile("cpu")}["darcy"]
    cfg = BenchConfig(tmp_path, profile="cpu")
    tr = _new_task_run(darcy, cfg, tmp_path)
    mgno, fno = (_spec(tr, family, cfg, code_version(), None) for family in ("mgno", "fno"))
    assert (mgno.recipe["grid_schedule"], mgno.recipe["coarse_levels"]) == ("coarse-to-fine", 2)
    assert "grid_schedule" not in fno.recipe
    assert "--grid-schedule coarse-to-fine --coarse-levels 2" in train_command(mgno, tmp_path)
    quick = {t.name: t for t in get_profile("cpu-quick")}["darcy"]
    assert quick.family_train == {}  # not measured at 32x32


def test_child_is_stopped_at_the_deadline():
    t0 = time.monotonic()
    code, usage, stopped = run_process(
        [sys.executable, "-c", "import time; time.sleep(60)"], dict(os.environ), t0 + 0.5)
    assert stopped and code != 0 and time.monotonic() - t0 < 20
    assert usage.ru_maxrss > 0


def test_profile_data_generated_by_several_workers_and_fingerprinted(tmp_path):
    from mgno.data.generate import generate_dataset
    from mgno.data.schema import open_dataset

    spec = DataSpec("darcy-smooth", 9, {"solve_resolution": 17}, 4, 2, 2, seed=5)
    task = Task("tiny", "tiny Darcy", spec, "darcy-smooth", {})
    assert ensure_data(tmp_path, task, device=None, progress=False, threads=1, workers=2)
    files = [tmp_path / "data" / f"tiny_{s}.h5" for s in ("train", "val", "test")]
    assert [open_dataset(f).n_samples for f in files] == [4, 2, 2]
    kept = files[0].stat().st_mtime_ns
    # a profile whose test split changed: the old file is refused, or with force replaced
    bigger = Task("tiny", "tiny Darcy", replace(spec, n_test=3), "darcy-smooth", {})
    with pytest.raises(InputError, match=r"tiny_test\.h5: generated with n_total=2, not 3"):
        ensure_data(tmp_path, bigger, device=None, progress=False)
    assert ensure_data(tmp_path, bigger, device=None, progress=False, threads=1, force=True)
    assert [open_dataset(f).n_samples for f in files] == [4, 2, 3]
    assert files[0].stat().st_mtime_ns == kept  # the splits that did not change are kept
    # the test split again: other bytes (time stamps), the same data and fingerprint;
    # another seed: another fingerprint
    g = bigger.data.generator(2)
    first = fingerprint(files[2])["content_sha256"]
    for seed, same in ((g["seed"], True), (g["seed"] + 1, False)):
        again = generate_dataset(g["pde"], g["n"], g["resolution"], seed,
                                 tmp_path / f"again{seed}.h5", params=g["params"],
                                 progress=False)
        assert (fingerprint(again)["content_sha256"] == first) is same


def test_generation_children_get_the_bench_threads_not_auto(tmp_path, monkeypatch):
    """``auto`` measures the load once: a child started on an idle machine took every
    core and then crawled beside the bench's next job; the bench says how many."""
    import mgno.bench.data as bench_data

    task = Task("tiny", "tiny Darcy", DataSpec("darcy-smooth", 9, {}, 4, 2, 2, seed=5),
                "darcy-smooth", {})
    calls = []

    def fake_run(argv, env, deadline):
        calls.append((argv, env))
        Path(argv[argv.index("--out") + 1]).write_bytes(b"")  # "generated"
        return 0, None, False

    monkeypatch.setattr(bench_data, "run_process", fake_run)
    monkeypatch.setattr(bench_data, "_check_existing", lambda path, *a: path.is_file())
    for workers, expected in ((1, "1"), (2, "2")):
        calls.clear()
        assert ensure_data(tmp_path / str(workers), task, device=None, progress=False,
                           threads=1, workers=workers)
        assert len(calls) == 3
        for argv, env in calls:
            assert argv[argv.index("--threads") + 1] == expected
            assert env["OMP_NUM_THREADS"] == "1"


def test_sigterm_to_the_bench_stops_its_children_first(tmp_path, files):
    """A bench killed with SIGTERM stops the running training, which keeps a checkpoint."""
    data, val, test = files
    out = tmp_path / "bench"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mgno.cli", "bench", "--data", str(data), "--val", str(val),
         "--test", str(test), "--models", "fno", "--epochs", "500", "--batch-size", "4",
         "--threads", "1", "--out", str(out), "--quiet"], env=env)
    run = out / FNO
    t0 = time.monotonic()
    while not (run / METRICS).is_file() and time.monotonic() - t0 < 120:
        time.sleep(0.2)
    assert (run / METRICS).is_file(), "training never started"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 130
    # the record exists only if the parent waited for its child's exit status
    runs = _record(out)["runs"]
    assert runs[-1]["status"] == "interrupted" and runs[-1]["exit_code"] == 130
    assert (run / STATE).is_file()
