"""Per-level channel widths (``level_channels``): the authors' growing Helmholtz layout,
its parameter count, shapes in 1-D/2-D/3-D, validation, presets and old configs."""

from __future__ import annotations

import json

import pytest
import torch

import mgno
from helpers_train import make_steady
from mgno.data.schema import open_dataset
from mgno.errors import InputError
from mgno.nn import MgNO, build_model
from mgno.nn.factory import count_parameters
from mgno.nn.mgno import MgNOConfig, scale_level_channels
from mgno.nn.multigrid import MultigridOperator, level_widths
from mgno.nn.summary import grid_tied_norm_parameters, summarize_preset
from mgno.presets import get_preset
from mgno.train import TrainConfig
from mgno.train.defaults import build_model_config

PAPER_HELMHOLTZ = 7.58e6


def _operator_parameters(f: list[int], u: list[int], pre: list[int], k: int = 3,
                         kp: int = 4, dim: int = 2) -> int:
    """Weights and biases of one cycle with level widths ``f``/``u``, written out:
    smoothers A (u -> f) and S (f -> u), the finest level's first step S only;
    Pi (u_l -> u_l+1), R (f_l -> f_l+1), P^T (u_l+1 -> u_l); every one with a bias."""
    s, p = k**dim, kp**dim
    n = 0
    for lvl, steps in enumerate(pre):
        for i in range(steps):
            n += s * f[lvl] * u[lvl] + u[lvl]  # S
            if not (lvl == 0 and i == 0):
                n += s * u[lvl] * f[lvl] + f[lvl]  # A
        if lvl + 1 < len(pre):
            n += s * u[lvl] * u[lvl + 1] + u[lvl + 1]  # Pi
            n += s * f[lvl] * f[lvl + 1] + f[lvl + 1]  # R
            n += p * u[lvl + 1] * u[lvl] + u[lvl]  # P^T
    return n


def test_helmholtz_preset_is_the_authors_growing_layout_within_3_percent_of_the_paper():
    cfg = get_preset("helmholtz")["model"]
    assert cfg["level_channels"] == [24, 48, 72, 96, 120] and cfg["layers"] == 4
    assert (cfg["norm_at"], cfg["projection"], cfg["pre_smooth"]) == (
        "output", "multigrid", [1, 1, 1, 1, 2])
    widths = [24, 48, 72, 96, 120]
    pre = [1, 1, 1, 1, 2]
    first = _operator_parameters([1, 2, 3, 4, 5], widths, pre) + 2 * 24  # + GroupNorm(1, 24)
    hidden = _operator_parameters(widths, widths, pre) + 2 * 24
    projection = _operator_parameters(widths, [1, 2, 3, 4, 5], pre)
    expected = first + 3 * hidden + projection
    group = build_model(cfg)
    assert count_parameters(group) == expected == 5_683_917
    tied = build_model({**cfg, "norm": "layer-grid"})
    # the authors' LayerNorm([24, 101, 101]) on each of the 4 layers' outputs
    assert count_parameters(tied) == expected + 4 * 2 * 24 * (101 * 101 - 1) == 7_642_317
    assert abs(count_parameters(tied) - PAPER_HELMHOLTZ) / PAPER_HELMHOLTZ < 0.03
    assert grid_tied_norm_parameters(group.config, [101, 101]) == 7_642_317 - 5_683_917
    summary = summarize_preset("helmholtz")
    assert summary["parameters_with_grid_tied_norm"] == 7_642_317
    assert summary["level_channels"] == widths


def test_the_single_width_network_stays_reachable_as_helmholtz_uniform():
    uniform = get_preset("helmholtz-uniform")
    assert uniform["model"]["level_channels"] is None and uniform["model"]["channels"] == 64
    assert uniform["train"] == get_preset("helmholtz")["train"]
    model = mgno.create_model("helmholtz-uniform")
    assert count_parameters(model) == 5_758_835
    assert summarize_preset("helmholtz-uniform")["parameters_with_grid_tied_norm"] == 14_490_355


def test_an_old_helmholtz_run_config_without_the_new_keys_builds_the_same_network():
    old = {"model": "mgno", "in_channels": 1, "out_channels": 1, "dim": 2, "channels": 64,
           "layers": 5, "levels": 5, "grid": [101, 101], "min_coarse": 4,
           "boundary": ["neumann", "neumann"], "pre_smooth": [1, 1, 1, 2, 2],
           "post_smooth": [1, 1, 1, 1, 0], "restrict": "f", "kernel_size": 3,
           "prolongation_kernel_size": 4, "bias": "conv", "norm": "group", "skip": False,
           "positional": "none", "activation": "gelu", "channels_last": True,
           "checkpointing": False}
    model = build_model(json.loads(json.dumps(old)))
    assert count_parameters(model) == 5_758_835
    assert model.config == get_preset("helmholtz-uniform")["model"]
    assert (model.config["level_channels"], model.config["norm_at"],
            model.config["projection"]) == (None, "prolongation", "pointwise")


def test_level_widths_scale_every_channel_count_in_proportion():
    assert level_widths(24, (24, 48, 72), 3) == (24, 48, 72)
    assert level_widths(1, (24, 48, 72), 3) == (1, 2, 3)
    assert level_widths(5, (4, 6, 9), 3) == (5, 8, 12)  # rounded up
    assert level_widths(7, None, 2) == (7, 7)
    with pytest.raises(ValueError, match="expected 3 positive widths"):
        level_widths(4, (4, 8), 3)
    op = MultigridOperator(2, 6, levels=3, level_channels=(6, 12, 18), bias=True)
    assert (op.widths_f, op.widths_u) == ((2, 4, 6), (6, 12, 18))
    lvl = op.levels[0]
    assert tuple(lvl.Pi.weight.shape[:2]) == (12, 6) and tuple(lvl.R.weight.shape[:2]) == (4, 2)
    assert tuple(lvl.prolong.weight.shape[:2]) == (12, 6)  # (coarse, fine) channels
    assert op.levels[2].Pi is None


@pytest.mark.parametrize("dim,grid", [(1, (37,)), (2, (33, 21)), (3, (9, 10, 9))])
@pytest.mark.parametrize("channels_last", [False, True])
def test_a_growing_network_runs_and_trains_on_1d_2d_3d_grids(dim, grid, channels_last):
    torch.manual_seed(0)
    model = MgNO(2, 3, dim=dim, channels=4, layers=2, levels=3, level_channels=(4, 8, 12),
                 bias="conv", norm="group", norm_at="output", projection="multigrid",
                 channels_last=channels_last)
    x = torch.randn(2, 2, *grid)
    out = model(x)
    assert out.shape == (2, 3, *grid) and out.is_contiguous()
    out.square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    assert model.projection.widths_u == (3, 6, 9)


def test_layouts_agree_in_both_memory_layouts():
    torch.manual_seed(1)
    a = MgNO(1, 1, channels=4, layers=2, levels=3, level_channels=(4, 8, 12), bias="conv",
             norm="group", norm_at="output", projection="multigrid", channels_last=False)
    options = {k: v for k, v in a.config.items()
               if k not in ("model", "in_channels", "out_channels", "channels_last")}
    b = MgNO(1, 1, **options, channels_last=True)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 1, 29, 29)
    torch.testing.assert_close(a(x), b(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("value,words", [
    ((4, 8), ["level_channels", "expected 3 positive widths", "[4, 8]"]),
    ((4, 8, 0), ["level_channels", "expected 3 positive widths"]),
    ((5, 8, 12), ["level_channels", "finest level's width 5", "channels=4"]),
    ((4, "x", 12), ["level_channels", "'x'", "integer"]),
    ("4,8,12", ["level_channels", "list of widths"]),
])
def test_bad_level_widths_are_one_line_input_errors(value, words):
    with pytest.raises(InputError) as err:
        MgNOConfig(1, 1, channels=4, levels=3, level_channels=value)
    message = str(err.value)
    assert "\n" not in message and all(w in message for w in words), message


def test_other_bad_options_are_named():
    with pytest.raises(InputError, match="'norm_at'.*'layer'.*prolongation, output"):
        MgNOConfig(1, 1, levels=2, norm_at="layer")
    with pytest.raises(InputError, match="'projection'.*'mlp'.*pointwise, multigrid"):
        MgNOConfig(1, 1, levels=2, projection="mlp")
    # an empty list or null is the single width
    assert MgNOConfig(1, 1, levels=2, level_channels=[]).level_channels is None
    cfg = MgNOConfig(1, 1, channels=4, levels=2, level_channels=[4.0, "8"])
    assert cfg.level_channels == (4, 8)
    assert MgNOConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_overrides_of_channels_or_levels_keep_a_presets_layout():
    assert mgno.create_model("helmholtz", channels=12).config["level_channels"] == [
        12, 24, 36, 48, 60]
    small = mgno.create_model("helmholtz", levels=3, pre_smooth=1)
    assert small.config["level_channels"] == [24, 48, 72]
    mine = mgno.create_model("helmholtz", level_channels=[24, 24, 48, 48, 96])
    assert mine.config["level_channels"] == [24, 24, 48, 48, 96]
    assert scale_level_channels(None, 8, 2) is None
    with pytest.raises(InputError, match="levels: 6 levels, but level_channels gives widths for 5"):
        mgno.create_model("helmholtz", levels=6)


def test_training_on_a_coarse_grid_keeps_the_finest_widths(tmp_path):
    # 9x9 holds 4 levels (9, 5, 3, 2), not the preset's 5: the coarsest width goes
    info = open_dataset(make_steady(tmp_path / "d.h5", n=4, grid=9))
    preset = get_preset("helmholtz")
    cfg = build_model_config(info, TrainConfig(), preset=preset)
    assert cfg["levels"] == 4 and cfg["level_channels"] == [24, 48, 72, 96]
    assert cfg["pre_smooth"] == [1, 1, 1, 2]
    assert count_parameters(build_model(cfg)) > 0
    wide = build_model_config(info, TrainConfig(), preset=preset, overrides={"channels": 8})
    assert wide["level_channels"] == [8, 16, 24, 32]
