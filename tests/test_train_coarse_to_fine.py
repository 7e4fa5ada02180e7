"""Coarse-to-fine training (--grid-schedule coarse-to-fine, issue 18): phases, carry, resume."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch

from helpers_train import make_steady, make_trajectories
from mgno.cli import main
from mgno.data.datasets import LoadedData, coarsen_data, inject
from mgno.errors import InputError
from mgno.nn import build_model
from mgno.train import TrainConfig, evaluate, train
from mgno.train.checkpoint import load_tree, read_safetensors
from mgno.train.config import default_phase_epochs
from mgno.train.engine import Callbacks, TrainState
from mgno.train.phases import Phase, carry_levels, phase_model_config, resolved_config
from mgno.train.run_dir import run_fingerprint
from mgno.train.task import Task

NET = {"channels": 4, "layers": 2, "levels": 3}
KW = dict(batch_size=4, model_overrides=NET, progress=False, scheduler_step="step",
          val_fraction=0.25, grid_schedule="coarse-to-fine")


def _losses(history):
    return [(h["epoch"], h["train_loss"], h.get("val_rel_l2"), h.get("coarse_val_rel_l2"),
             h["lr"], h.get("phase")) for h in history]


def _fine_and_coarse(grid: int, boundary: str, seed: int = 0):
    full = resolved_config({"model": "mgno", "in_channels": 1, "out_channels": 1, "dim": 2,
                            "grid": [grid, grid], "boundary": boundary, "layers": 2,
                            "channels": 3, "levels": 3})
    coarse_grid = tuple(len(range(0, grid, 2)) for _ in range(2))
    phase = Phase(0, 1, 0, 1, coarse_grid)
    torch.manual_seed(seed)
    coarse = build_model(phase_model_config(full, phase, "levels"))
    fine = build_model(full)
    for p in coarse.parameters():  # weights far from their initial values
        p.data.normal_(0, 0.3)
    return coarse, fine


@pytest.mark.parametrize("grid,boundary", [(17, "dirichlet"), (16, "periodic")])
def test_carry_levels_maps_level_j_to_j_plus_1_and_embeds_the_coarse_network(grid, boundary):
    coarse, fine = _fine_and_coarse(grid, boundary)
    before = {k: v.clone() for k, v in fine.state_dict().items()}
    carry_levels(coarse, fine)
    src, dst = coarse.state_dict(), fine.state_dict()
    for name, tensor in src.items():
        parts = name.split(".")
        if parts[0] == "operators":
            parts[3] = str(int(parts[3]) + 1)  # operators.{layer}.levels.{j}.* -> j + 1
        assert torch.equal(dst[".".join(parts)], tensor), name
    a_new = "operators.0.levels.1.pre.0.A.weight"  # the coarse finest level had no A
    assert "operators.0.levels.0.pre.0.A.weight" not in src
    assert torch.equal(dst[a_new], before[a_new])
    r = dst["operators.1.levels.0.R.weight"]
    assert r[0, 0, 1, 1] == 1 and r.abs().sum() == r.shape[0]  # injection per channel
    assert dst["operators.1.levels.0.pre.0.S.weight"].abs().sum() == 0
    # the fine network on the even nodes is the coarse network on the injected input
    x = torch.randn(2, 1, grid, grid)
    with torch.no_grad():
        want = coarse(inject(x, 1, 2))
        got = fine(x)[..., ::2, ::2]
    assert torch.allclose(got, want, atol=1e-5)


def test_inject_and_coarsen_data_keep_every_other_node():
    x = torch.arange(2 * 7 * 7, dtype=torch.float32).reshape(2, 1, 7, 7)
    assert inject(x, 1, 2).shape == (2, 1, 4, 4) and inject(x, 2, 2).shape == (2, 1, 2, 2)
    assert torch.equal(inject(x, 1, 2), x[..., ::2, ::2])
    from mgno.data.schema import DatasetInfo

    info = DatasetInfo("f.h5", "steady", 2, (64, 65), 1, 1, ("dirichlet", "periodic"),
                       ((0.0, 1.0), (0.0, 1.0)), "toy", {}, {})
    data = coarsen_data(LoadedData(info, {"inputs": torch.zeros(2, 1, 64, 65),
                                          "outputs": torch.zeros(2, 1, 64, 65)}), 1)
    assert data.info.grid == (32, 33) and data.arrays["inputs"].shape == (2, 1, 32, 33)
    # the spacing doubles: a non-periodic 64 -> 32 spans 62 of the 63 cells
    assert data.info.domain[0] == pytest.approx((0.0, 62 / 63)) and data.info.domain[1] == (0, 1)


class _Watch(Callbacks):
    """Keeps the weights at every checkpoint and the network each phase starts with."""

    def __init__(self):
        self.saved: dict[int, dict] = {}
        self.started: list[tuple[int, dict, dict]] = []

    def on_checkpoint(self, fitting, state):
        self.saved[state.epoch] = {k: v.clone() for k, v in fitting.model.state_dict().items()}

    def on_phase_start(self, fitting, state):
        weights = {k: v.clone() for k, v in fitting.model.state_dict().items()}
        self.started.append((state.epoch, weights, dict(fitting.optimizer.state)))


def test_carry_all_fine_phase_starts_from_the_coarse_phase_weights(tmp_path):
    data = make_steady(tmp_path / "d.h5", n=16, grid=17)
    watch = _Watch()
    res = train(data, tmp_path / "run", epochs=4, carry="all", coarse_levels=1,
                callbacks=[watch], **KW)
    assert res.status == "finished" and res.epochs_done == 4
    assert [(h["phase"], h["grid"]) for h in res.history] == [(0, [9, 9])] * 2 + [(1, [17, 17])] * 2
    assert all("coarse_val_rel_l2" in h and "val_rel_l2" not in h for h in res.history[:2])
    assert res.best_epoch in (3, 4)  # only the data's grid competes for the best weights
    (epoch, weights, opt_state), = watch.started
    assert epoch == 2 and opt_state == {}  # a fresh optimiser per phase
    coarse_end = watch.saved[2]
    assert weights.keys() == coarse_end.keys()
    assert all(torch.equal(weights[k], coarse_end[k]) for k in weights)
    assert any(not torch.equal(watch.saved[4][k], coarse_end[k]) for k in weights)  # it trains


def test_carry_levels_fine_phase_starts_from_the_mapped_levels(tmp_path):
    data = make_steady(tmp_path / "d.h5", n=16, grid=17)
    watch = _Watch()
    res = train(data, tmp_path / "run", epochs=4, callbacks=[watch], **KW)  # carry levels
    (_, weights, _), = watch.started
    coarse_end = watch.saved[2]
    assert "operators.0.levels.2.R.weight" not in coarse_end  # the coarse network: 2 levels
    for name, tensor in coarse_end.items():
        parts = name.split(".")
        if parts[0] == "operators":
            parts[3] = str(int(parts[3]) + 1)
        assert torch.equal(weights[".".join(parts)], tensor), name
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["model"]["levels"] == 3
    assert [p["levels"] for p in config["grid_phases"]] == [2, 3]
    best, _ = read_safetensors(tmp_path / "run" / "model.safetensors")
    assert best.keys() == weights.keys() and res.best_epoch >= 3


@pytest.mark.parametrize("carry,coarse_levels,stop_call,done,phase", [
    ("levels", 1, 6, 2, 0),   # the last step of the coarse phase: a checkpoint at the boundary
    ("levels", 1, 7, 2, 1),   # the first step on the fine grid: mid-epoch, in phase 1
    ("all", 1, 4, 1, 0),      # mid-epoch in the coarse phase
    ("levels", 2, 3, 1, 0),   # the end of the coarsest of three phases
])
def test_resume_across_a_phase_boundary_is_bit_identical(
    tmp_path, carry, coarse_levels, stop_call, done, phase
):
    data = make_steady(tmp_path / "d.h5", n=16, grid=17)
    kw = dict(KW, carry=carry, coarse_levels=coarse_levels, epochs=4,
              phase_epochs=[1, 1, 2] if coarse_levels == 2 else [2, 2])
    full = train(data, tmp_path / "full", **kw)
    calls = {"n": 0}
    real = Task.loss

    def stop(*a, **k):
        calls["n"] += 1
        if calls["n"] == stop_call:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*a, **k)

    Task.loss = stop
    try:
        first = train(data, tmp_path / "part", **kw)
    finally:
        Task.loss = real
    assert first.status == "interrupted" and first.epochs_done == done
    assert load_tree(tmp_path / "part" / "checkpoint.safetensors")["counters"]["phase"] == phase
    if phase < coarse_levels:  # the last weights are a coarse phase's: not for eval
        with pytest.raises(InputError, match=f"coarse grid phase {phase} .* --resume"):
            evaluate(tmp_path / "part", data, which="last")
    second = train(data, tmp_path / "part", resume=True, **kw)
    assert second.status == "finished"
    assert _losses(second.history) == _losses(full.history)  # bit for bit
    a, _ = read_safetensors(tmp_path / "full" / "model.safetensors")
    b, _ = read_safetensors(tmp_path / "part" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_trajectories_train_coarse_to_fine(tmp_path):
    data = make_trajectories(tmp_path / "t.h5", n=4, t=4, grid=16)  # periodic 16 -> 8
    res = train(data, tmp_path / "run", epochs=2, protocol="one-step", steps_out=2,
                **dict(KW, model_overrides={"channels": 4, "layers": 1, "levels": 2}))
    assert [h["grid"] for h in res.history] == [[8, 8], [16, 16]]


def test_config_records_the_schedule_and_phase_epochs_give_the_epochs(tmp_path):
    data = make_steady(tmp_path / "d.h5", n=16, grid=17)
    res = train(data, tmp_path / "run", phase_epochs="1,2", **KW)
    assert res.epochs_done == 3
    train_cfg = json.loads((tmp_path / "run" / "config.json").read_text())["train"]
    assert {k: train_cfg[k] for k in ("grid_schedule", "coarse_levels", "phase_epochs",
                                      "carry", "epochs")} == {
        "grid_schedule": "coarse-to-fine", "coarse_levels": 1, "phase_epochs": [1, 2],
        "carry": "levels", "epochs": 3}
    with pytest.raises(InputError, match="--grid-schedule: 'fine' differs"):
        train(data, tmp_path / "run", resume=True, **dict(KW, grid_schedule="fine"))


def test_old_configs_and_checkpoints_without_the_fields_mean_no_schedule():
    old = {k: v for k, v in TrainConfig().to_dict().items()
           if k not in ("grid_schedule", "coarse_levels", "phase_epochs", "carry")}
    cfg = TrainConfig.from_dict(old, source="config.json")
    assert (cfg.grid_schedule, cfg.coarse_levels, cfg.phase_epochs, cfg.carry) == (
        "fine", None, None, None)
    assert run_fingerprint({"train": old}) == run_fingerprint({"train": cfg.to_dict()})
    counters = {k: v for k, v in TrainState(epoch=2).to_dict().items() if k != "phase"}
    assert TrainState.from_dict(counters, "checkpoint").phase == 0


def test_default_phase_epochs_split_equally_the_rest_to_the_fine_grid():
    assert default_phase_epochs(12, 3) == [4, 4, 4]
    assert default_phase_epochs(10, 3) == [3, 3, 4]
    assert TrainConfig(epochs=12, grid_schedule="coarse-to-fine").phase_epochs == [6, 6]


@pytest.mark.parametrize("options,match", [
    (dict(phase_epochs="2,2,2", epochs=6), "--phase-epochs: 3 phases .* expected 2"),
    (dict(phase_epochs="2,2", epochs=5), "--phase-epochs: 2,2 sum to 4 epochs, but --epochs is 5"),
    (dict(phase_epochs="2,x"), "--phase-epochs: found '2,x'"),
    (dict(phase_epochs="0,2"), "--phase-epochs: .* expected one integer >= 1"),
    (dict(coarse_levels=5, epochs=6), "--coarse-levels: 5 coarse grids asked, but the grid 17x17"),
    (dict(coarse_levels=3), "--coarse-levels: 3 coarse grids need a network of more than 3"),
    (dict(coarse_levels=3, carry="all"), "--carry all: on the coarsest grid 3x3"),
    (dict(coarse_levels=0), "--coarse-levels: found 0, expected an integer >= 1"),
    (dict(epochs=1), "--epochs: 1 epochs cannot give each of the 2 grid phases"),
    (dict(grid_schedule="fine", coarse_levels=1), "--coarse-levels: found 1 with --grid-sched"),
    (dict(grid_schedule="fine", carry="all"), "--carry: found 'all' with --grid-schedule fine"),
    (dict(model="fno"), "--grid-schedule coarse-to-fine: --model fno has no multigrid levels"),
])
def test_bad_schedules_are_refused_in_one_line_before_anything_is_written(
    tmp_path, options, match
):
    data = make_steady(tmp_path / "d.h5", n=16, grid=17)
    kw = dict(KW, epochs=4)
    kw.update(options)
    model = kw.pop("model", None)
    if model is not None:
        kw["model_overrides"] = {}
    with pytest.raises(InputError, match=match) as err:
        train(data, tmp_path / "run", model=model, **kw)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "run").exists()


def test_periodic_grid_must_halve_exactly(tmp_path):
    data = make_trajectories(tmp_path / "t.h5", n=4, t=4, grid=18)  # 18 -> 9 -> no
    with pytest.raises(InputError, match="--coarse-levels: 2 coarse grids .* can be coarsened 1"):
        train(data, tmp_path / "run", protocol="one-step", coarse_levels=2, epochs=3, **KW)


def test_cli_exits_2_naming_the_option(tmp_path, capsys):
    data = make_steady(tmp_path / "d.h5", n=16, grid=17)
    code = main(["train", "--data", str(data), "--out", str(tmp_path / "run"), "--quiet",
                 "--grid-schedule", "coarse-to-fine", "--phase-epochs", "1,1,1", "--levels",
                 "3", "--channels", "4"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--phase-epochs" in err


def test_cli_trains_coarse_to_fine(tmp_path, capsys):
    data = make_steady(tmp_path / "d.h5", n=16, grid=17)
    code = main(["train", "--data", str(data), "--out", str(tmp_path / "run"), "--quiet",
                 "--json", "--grid-schedule", "coarse-to-fine", "--coarse-levels", "1",
                 "--phase-epochs", "1,1", "--carry", "all", "--levels", "3", "--channels", "4",
                 "--layers", "1", "--batch-size", "4"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["epochs_done"] == 2 and out["last"]["grid"] == [17, 17]
