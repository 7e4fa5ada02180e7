"""The paper profiles of `mgno bench` (issue 14): the paper's seven experiments, each
MgNO beside FNO and the U-Net, their sizes, the paper's figures and the table."""

from __future__ import annotations

import pytest

from mgno.bench import RunSpec, code_version, format_results, get_profile, list_profiles
from mgno.bench.profiles import DEFAULT_MODELS, PAPER_MODELS, profile_models
from mgno.cli import BENCH_PROFILES, build_parser
from mgno.errors import InputError
from mgno.presets import get_preset
from mgno.train import TrainConfig

PAPER_TASKS = ["darcy-smooth", "darcy-rough", "darcy-multiscale", "ns", "ns10", "helmholtz",
               "pipe"]


def _tasks(profile: str) -> dict:
    return {t.name: t for t in get_profile(profile)}


def _recipe(task) -> TrainConfig:
    return TrainConfig.from_dict({**get_preset(task.preset)["train"], **task.train})


@pytest.mark.parametrize("profile", ["paper", "paper-cpu", "paper-cpu-quick"])
def test_every_paper_profile_runs_the_seven_experiments_mgno_beside_fno_and_unet(profile):
    tasks = _tasks(profile)
    assert list(tasks) == PAPER_TASKS
    assert profile_models(profile) == PAPER_MODELS == ("mgno", "fno", "unet")
    assert {t.preset for t in tasks.values()} == {
        "darcy-smooth", "darcy-rough", "darcy-multiscale", "navier-stokes", "helmholtz", "pipe"}
    assert tasks["pipe"].data.pde == "pipe"  # the generator written apart
    ns10 = _recipe(tasks["ns10"])
    assert (ns10.protocol, ns10.steps_in, ns10.steps_out, ns10.start_frame) == (
        "10-10", 10, 10, 1)
    assert tasks["ns10"].data.params["T"] == 20.0 and tasks["ns"].data.params["T"] == 11.0
    # the paper's figures ride with every task: MgNO's from the presets
    assert tasks["darcy-smooth"].paper == {"mgno": {"rel_l2": 0.176e-2, "rel_h1": 0.576e-2}}
    assert tasks["darcy-multiscale"].paper["mgno"]["rel_l2"] == 0.715e-2
    assert tasks["helmholtz"].paper["mgno"] == {"rel_l2": 0.71e-2, "rel_h1": 4.02e-2}
    assert tasks["ns"].paper == {"mgno": {"rel_l2": 1.63e-2}}
    assert tasks["ns10"].paper == {"mgno": {"rel_l2": 10.82e-2}, "fno": {"rel_l2": 0.1556}}
    assert tasks["pipe"].paper == {"mgno": {"rel_l2": 0.24e-2}}
    for name in ("cpu", "cpu-quick", "gpu"):
        assert profile_models(name) == DEFAULT_MODELS
    with pytest.raises(InputError, match="--profile: found 'paper-gpu'"):
        profile_models("paper-gpu")


def test_the_paper_profile_has_the_papers_sizes_splits_and_recipes():
    t = _tasks("paper")
    sizes = {n: (t[n].data.resolution, t[n].data.params.get("solve_resolution"),
                 t[n].data.split_sizes()) for n in t}
    assert sizes["darcy-smooth"] == (211, 421, (1000, 100, 100))
    assert sizes["darcy-rough"] == (256, 511, (1280, 112, 112))
    assert sizes["darcy-multiscale"] == (256, 1021, (1000, 100, 100))  # every 4th node
    assert sizes["ns"] == (64, 256, (1000, 100, 100))
    assert sizes["helmholtz"] == (101, None, (4000, 200, 200))
    assert sizes["pipe"] == (129, None, (1000, 200, 200))
    epochs = {n: _recipe(task).epochs for n, task in t.items()}
    assert epochs == {**{n: 500 for n in PAPER_TASKS}, "helmholtz": 100}
    assert all(task.train == {"seed": 0} or task.name == "ns10" for task in t.values())
    assert not any(task.models for task in t.values())  # the families' own networks
    # the three tasks the gpu profile has too are the same runs: same data, same specs
    gpu = _tasks("gpu")
    gen = {"path": "x.h5", "size": 0, "content_sha256": "", "generator": None}
    code = code_version()
    for name in ("darcy-smooth", "darcy-rough", "ns"):
        assert gpu[name].data == t[name].data
        keys = [RunSpec("mgno", task.preset, {}, task.train,
                        {**gen, "generator": task.data.generator(0)}, None, "cuda", code).key()
                for task in (gpu[name], t[name])]
        assert keys[0] == keys[1]


def test_the_cpu_paper_profiles_are_scaled_for_two_cores():
    cpu, quick = _tasks("paper-cpu"), _tasks("paper-cpu-quick")
    assert cpu["darcy-smooth"].data.resolution == cpu["ns"].data.resolution == 64
    assert cpu["darcy-smooth"].data.split_sizes() == (1000, 100, 100)
    assert cpu["ns"].data.split_sizes() == cpu["ns10"].data.split_sizes() == (100, 10, 20)
    assert cpu["helmholtz"].data.resolution == 101 and cpu["pipe"].data.resolution == 65
    assert quick["darcy-smooth"].data.resolution == 32 and quick["helmholtz"].data.resolution == 51
    for tasks, epochs in ((cpu, 12), (quick, 6)):
        for task in tasks.values():
            cfg = _recipe(task)
            assert (cfg.epochs, cfg.lr, cfg.scheduler_step) == (epochs, 1e-3, "step")
            assert task.models == {"unet": {"channels": 16}}
        assert _recipe(tasks["darcy-rough"]).k_max is None  # every Fourier mode ("all")
        assert _recipe(tasks["ns"]).batch_size == 10
    # the titles of the profiles' list say what the tasks are
    assert "2.5 h" in list_profiles()["paper-cpu"]
    assert "18 min" in list_profiles()["paper-cpu-quick"]


def test_the_cli_offers_every_profile():
    assert tuple(list_profiles()) == BENCH_PROFILES
    args = build_parser().parse_args(["bench", "--profile", "paper-cpu", "--out", "x"])
    assert args.profile == "paper-cpu"


def test_the_table_prints_the_papers_figures_beside_ours():
    row = {"parameters": 1000, "epochs_done": 12, "rel_l2": 0.0123, "rel_h1": 0.045,
           "best_val_rel_l2": 0.012, "status": "finished"}
    results = {
        "profile": "paper-cpu", "command": "mgno bench --profile paper-cpu",
        "machine": {"date_utc": "-", "cpu": "x", "cores": 2, "gpu": None, "torch": "2",
                    "neuraloperator": "2", "mgno": "0", "python": "3", "torch_threads": 1,
                    "load_avg": [0, 0, 0]},
        "tasks": [
            {"title": "Darcy smooth 64x64", "data": {}, "recipe": {}, "commands": {},
             "paper": {"mgno": {"rel_l2": 0.176e-2, "rel_h1": 0.576e-2}},
             "models": {"mgno": row, "fno": {**row, "rel_l2": 0.03}}},
            {"title": "mixed", "data": {}, "recipe": {}, "commands": {},
             "models": {"mgno": row}},
        ],
    }
    text = format_results(results)
    first, second = text.split("## mixed")
    header = next(line for line in first.splitlines() if line.startswith("| model"))
    cells = [c.strip() for c in header.strip("|").split("|")]
    assert cells[3:7] == ["test rel. L2", "paper rel. L2", "test rel. H1", "paper rel. H1"]
    mgno_row = next(line for line in first.splitlines() if line.startswith("| mgno"))
    assert [c.strip() for c in mgno_row.strip("|").split("|")][3:7] == [
        "0.0123", "0.00176", "0.045", "0.00576"]
    fno_row = next(line for line in first.splitlines() if line.startswith("| fno"))
    assert [c.strip() for c in fno_row.strip("|").split("|")][3:7] == [
        "0.03", "-", "0.045", "-"]
    assert "MgNO paper" in first
    # a task without paper figures keeps the table it had
    assert "paper rel." not in second and "MgNO paper" not in second



def test_a_task_without_its_generator_is_refused_before_anything_is_written(tmp_path,
                                                                           monkeypatch):
    import mgno.pde.registry as registry
    from mgno.bench import run_bench

    real = registry.get_pde

    def without_pipe(name):  # a build of mgno that cannot generate the pipe set
        if name == "pipe":
            raise InputError("unknown PDE 'pipe'")
        return real(name)

    monkeypatch.setattr(registry, "get_pde", without_pipe)
    out = tmp_path / "bench"
    with pytest.raises(InputError) as err:
        run_bench(out, profile="paper-cpu-quick", tasks=["pipe"], progress=False)
    message = str(err.value)
    assert "\n" not in message and "task 'pipe'" in message and "--tasks" in message
    assert not out.exists()
