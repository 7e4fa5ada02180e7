"""Positional input channels (coordinates) for MgNO and the U-Net."""

from __future__ import annotations

import json
import math

import pytest
import torch

from helpers_train import make_trajectories
from mgno import build_model, count_parameters
from mgno.cli import main
from mgno.errors import InputError
from mgno.nn.positional import (
    PositionalChannels,
    coordinate_channels,
    positional_channel_count,
)
from mgno.train.defaults import baseline_overrides


@pytest.mark.parametrize(
    ("shape", "boundary", "channels"),
    [
        ((16, 16), ("periodic", "periodic"), 4),
        ((24, 40), ("periodic", "dirichlet"), 3),
        ((33,), ("neumann",), 1),
        ((5, 6, 7), ("dirichlet", "periodic", "neumann"), 4),
    ],
)
def test_shapes_follow_the_grid_and_the_boundary(shape, boundary, channels):
    coords = coordinate_channels(shape, boundary)
    assert coords.shape == (channels, *shape)
    assert positional_channel_count("coords", boundary) == channels
    x = torch.randn(3, 2, *shape)
    out = PositionalChannels("coords", boundary)(x)
    assert out.shape == (3, 2 + channels, *shape)
    torch.testing.assert_close(out[:, :2], x)
    torch.testing.assert_close(out[1, 2:], coords)


def test_nonperiodic_axis_is_the_node_coordinate_in_unit_interval():
    coords = coordinate_channels((5, 3), ("dirichlet", "neumann"))
    torch.testing.assert_close(coords[0, :, 0], torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0]))
    torch.testing.assert_close(coords[1, 0], torch.tensor([0.0, 0.5, 1.0]))
    # constant along the other axis
    assert torch.equal(coords[0], coords[0, :, :1].expand(5, 3))


@pytest.mark.parametrize("n", [7, 16, 64])
def test_periodic_pair_is_continuous_across_the_wrap(n):
    coords = coordinate_channels((n,), ("periodic",), dtype=torch.float64)
    points = coords.T  # (n, 2): points on the unit circle
    torch.testing.assert_close(points.norm(dim=1), torch.ones(n, dtype=torch.float64))
    # the step from the last node to the first equals every other step
    steps = (torch.roll(points, -1, dims=0) - points).norm(dim=1)
    expected = torch.full((n,), 2 * math.sin(math.pi / n), dtype=torch.float64)
    torch.testing.assert_close(steps, expected)
    # the stored period does not repeat its first node
    assert (points[-1] - points[0]).norm() > 1e-3


def test_none_appends_nothing():
    x = torch.randn(2, 1, 8, 8)
    assert PositionalChannels("none", ("periodic", "periodic"))(x) is x
    assert positional_channel_count(None, ("periodic",)) == 0
    with pytest.raises(ValueError, match="positional"):
        PositionalChannels("grid", ("periodic",))


SMALL = {
    "mgno": {"channels": 4, "layers": 2, "levels": 3, "boundary": "periodic"},
    "unet": {"width": 4, "depth": 2, "boundary": "periodic"},
}


def _shift_error(model: torch.nn.Module, shift: tuple[int, int]) -> float:
    torch.manual_seed(1)
    x = torch.randn(2, 1, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        shifted_out = model(torch.roll(x, shift, dims=(2, 3)))
        out_shifted = torch.roll(model(x), shift, dims=(2, 3))
    return float((shifted_out - out_shifted).abs().max() / out_shifted.abs().max())


@pytest.mark.parametrize("family", list(SMALL))
def test_coordinates_break_shift_equivariance(family):
    # Stride-2 coarsening commutes with shifts by multiples of 4 (3 levels, depth 2).
    shift = (4, 8)
    models = {}
    for positional in ("none", "coords"):
        torch.manual_seed(0)
        cfg = {"model": family, "in_channels": 1, "out_channels": 1, **SMALL[family]}
        models[positional] = build_model({**cfg, "positional": positional}).double().eval()
    assert _shift_error(models["none"], shift) < 1e-10
    assert _shift_error(models["coords"], shift) > 1e-3


@pytest.mark.parametrize("family", list(SMALL))
def test_parameters_grow_by_the_first_layers_extra_inputs_only(family):
    # 2-D periodic: 4 coordinate channels, so the first layer sees 1 + 4 inputs.
    base = {"model": family, "out_channels": 1, **SMALL[family]}
    plain = count_parameters(build_model({**base, "in_channels": 1}))
    coords = count_parameters(build_model({**base, "in_channels": 1, "positional": "coords"}))
    wide = count_parameters(build_model({**base, "in_channels": 5}))
    assert coords == wide > plain


@pytest.mark.parametrize("family", list(SMALL))
def test_config_records_the_option_and_rebuilds_the_model(family):
    torch.manual_seed(0)
    cfg = {"model": family, "in_channels": 1, "out_channels": 1, **SMALL[family]}
    model = build_model({**cfg, "positional": "coords"})
    config = json.loads(json.dumps(model.config))
    assert config["positional"] == "coords"
    assert build_model(cfg).config["positional"] == "none"
    clone = build_model(config)
    clone.load_state_dict(model.state_dict())
    x = torch.randn(1, 1, 24, 20)  # another grid than any training grid: coords follow it
    with torch.no_grad():
        torch.testing.assert_close(clone(x), model(x))


def test_mgno_skip_adds_the_input_not_the_coordinates():
    torch.manual_seed(0)
    cfg = {"model": "mgno", "in_channels": 1, "out_channels": 1, "skip": True, **SMALL["mgno"]}
    model = build_model({**cfg, "positional": "coords"})
    assert model(torch.randn(2, 1, 16, 16)).shape == (2, 1, 16, 16)


def test_fourier_models_refuse_the_option():
    with pytest.raises(InputError, match="--positional"):
        baseline_overrides("fno", {"positional": "coords"})
    assert baseline_overrides("unet", {"positional": "coords"}) == {"positional": "coords"}


def test_cli_train_records_the_option_and_refuses_it_for_fno(tmp_path, capsys):
    data = make_trajectories(tmp_path / "t.h5", n=4, t=4)
    tiny = ["--channels", "4", "--layers", "1", "--levels", "2", "--quiet"]
    common = ["train", "--data", str(data), "--epochs", "1", "--batch-size", "4",
              "--val-fraction", "0.25", *tiny]
    assert main([*common, "--out", str(tmp_path / "run"), "--positional", "coords"]) == 0
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["model"]["positional"] == "coords"
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "run"), "--data", str(data), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 3
    fno = ["train", "--data", str(data), "--epochs", "1", "--model", "fno", "--quiet"]
    assert main([*fno, "--out", str(tmp_path / "fno"), "--positional", "coords"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--positional: found 'coords' for --model fno" in err[0]
