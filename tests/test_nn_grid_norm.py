"""The authors' grid-tied normalisation (MgNO ``norm="layer-grid"``): its parameters,
its refusal of other grids, and runs that keep to their grid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from helpers_train import TINY_NET, make_trajectories
from mgno.cli import main
from mgno.errors import InputError
from mgno.nn import MgNO, build_model
from mgno.nn.factory import count_parameters
from mgno.nn.multigrid import MultigridOperator, level_shapes
from mgno.nn.summary import grid_tied_norm_parameters, summarize_model
from mgno.presets import get_preset
from mgno.train import evaluate, load_run, predict, train

NS = Path(__file__).parent / "data" / "ns_tiny.h5"  # 3 trajectories, 5 frames, 16x16


def _ns_config(**changes) -> dict:
    """The NS preset's network, by default without its coordinate channels (the paper's)."""
    return {**get_preset("navier-stokes")["model"], "positional": "none", **changes}


def test_parameter_count_of_the_navier_stokes_network_with_grid_tied_norm():
    group = build_model(_ns_config())
    tied = build_model(_ns_config(norm="layer-grid"))
    c, layers, levels = 32, 5, 5
    nodes = sum(n * m for n, m in level_shapes((64, 64), levels)[:-1])  # 64^2 + ... + 8^2
    assert nodes == 4096 + 1024 + 256 + 64
    # per layer and level but the coarsest: 2 * c * nodes affine weights, not 2 * c
    expected = count_parameters(group) + layers * 2 * c * (nodes - (levels - 1))
    assert count_parameters(tied) == expected == 2_886_991  # the paper: 2.89 M
    assert count_parameters(tied) == count_parameters(group) + grid_tied_norm_parameters(
        group.config, [64, 64])
    assert grid_tied_norm_parameters(tied.config, [64, 64]) == 0  # already in the count
    assert count_parameters(build_model(_ns_config(norm="layer-grid", positional="coords"))) == (
        2_886_991 + 15_880)
    # the weights follow the training grid: 32x32 has a quarter of the nodes per level
    small = build_model(_ns_config(norm="layer-grid", grid=[32, 32]))
    assert summarize_model(small)["parameters"] == count_parameters(build_model(
        _ns_config(grid=[32, 32]))) + layers * 2 * c * (1024 + 256 + 64 + 16 - 4)


def test_another_grid_is_refused_in_one_line_naming_both_grids():
    torch.manual_seed(0)
    model = MgNO(1, 1, channels=4, layers=2, levels=3, grid=(16, 12), norm="layer-grid",
                 bias="conv", boundary="periodic")
    assert model(torch.randn(2, 1, 16, 12)).shape == (2, 1, 16, 12)
    with pytest.raises(InputError) as err:
        model(torch.randn(2, 1, 32, 24))
    msg = str(err.value)
    assert "\n" not in msg and "32x24" in msg and "16x12" in msg and "layer-grid" in msg
    with pytest.raises(InputError, match="training grid 16x12"):
        model(torch.randn(1, 1, 32, 24), operator_grid=(32, 24))
    # the multilevel strategy runs every operator on the training grid: accepted
    assert model(torch.randn(1, 1, 32, 24), operator_grid=(16, 12)).shape == (1, 1, 32, 24)


def test_grid_tied_norm_needs_a_grid():
    with pytest.raises(InputError, match="'norm': 'layer-grid' sizes its weights"):
        MgNO(1, 1, channels=4, layers=1, levels=2, norm="layer-grid")
    with pytest.raises(InputError, match="norm 'layer-grid': needs the training grid"):
        MultigridOperator(2, 2, levels=2, norm="layer-grid")
    with pytest.raises(InputError, match="unknown kind 'layer'"):
        MgNO(1, 1, channels=4, layers=1, levels=2, grid=(8, 8), norm="layer")


@pytest.fixture(scope="module")
def tied_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tied")
    run = tmp / "run"
    train(NS, run, epochs=1, batch_size=2, model_overrides={**TINY_NET, "norm": "layer-grid"},
          val_fraction=0.34, progress=False)
    make_trajectories(tmp / "t32.h5", n=2, t=5, grid=32)
    return run, tmp


def test_a_run_with_grid_tied_norm_predicts_and_exports_on_its_grid(tied_run, tmp_path):
    run, _ = tied_run
    cfg = json.loads((run / "config.json").read_text())["model"]
    assert cfg["norm"] == "layer-grid" and cfg["grid"] == [16, 16]
    assert load_run(run, device="cpu").predictor.model.operators[0].tied_grid == (16, 16)
    res = evaluate(run, NS)
    assert res["steps"] == 4 and res["transfer"] is None
    assert predict(run, NS, tmp_path / "p.h5").exists()
    from mgno.export import export_run

    report = export_run(run, tmp_path / "m.pt2", fmt="pt2", grid="fixed")
    assert list(report.parity) == ["1x16x16"]


def test_other_grids_native_is_refused_resample_and_multilevel_run(tied_run, tmp_path, capsys):
    run, tmp = tied_run
    other = tmp / "t32.h5"
    with pytest.raises(InputError, match="--resolution-strategy native: grid 32x32.*16x16"):
        evaluate(run, other, strategy="native")
    with pytest.raises(InputError, match="native: grid 32x32"):
        predict(run, other, tmp_path / "p.h5", strategy="native")
    assert not (tmp_path / "p.h5").exists()
    capsys.readouterr()
    assert main(["eval", str(run), "--data", str(other), "--resolution-strategy", "native",
                 "--threads", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mgno: error:") and "\n" not in err and "16x16" in err
    for strategy in ("resample", "multilevel"):
        assert evaluate(run, other, strategy=strategy)["grid"] == [32, 32]


def test_norm_option_reaches_mgno_only(tmp_path):
    with pytest.raises(InputError, match="--norm: found 'layer-grid' for --model unet"):
        train(NS, tmp_path / "r", model="unet", model_overrides={"norm": "layer-grid"},
              progress=False)
    assert not (tmp_path / "r").exists()
