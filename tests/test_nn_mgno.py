"""The MgNO network, the model factory and the presets."""

from __future__ import annotations

import pytest
import torch

import mgno
from mgno.nn import MgNO, build_model, count_parameters, create_model
from mgno.nn.summary import grid_tied_norm_parameters, summarize_preset
from mgno.presets import get_preset, list_presets


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    model = MgNO(2, 1, channels=6, layers=2, levels=3, post_smooth=1, restrict="residual")
    model(torch.randn(2, 2, 20, 20)).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


def test_gradients_reach_every_parameter_with_conv_bias_norm_and_skip():
    torch.manual_seed(0)
    model = MgNO(
        1,
        1,
        channels=6,
        layers=2,
        levels=3,
        bias="conv",
        norm="group",
        skip=True,
        boundary="periodic",
    )
    model(torch.randn(2, 1, 16, 16)).square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_same_seed_same_output_other_seed_other_output():
    x = torch.randn(1, 1, 33, 33, generator=torch.Generator().manual_seed(3))

    def run(seed):
        torch.manual_seed(seed)
        with torch.no_grad():
            return create_model("darcy-rough", grid=[33, 33], levels=None, channels=8)(x)

    torch.testing.assert_close(run(5), run(5), rtol=0, atol=0)
    assert not torch.allclose(run(5), run(6))


@pytest.mark.parametrize("dim, grid", [(1, (100,)), (3, (17, 12, 16))])
def test_one_and_three_dimensional_models_run_and_train(dim, grid):
    torch.manual_seed(0)
    model = MgNO(2, 3, dim=dim, channels=4, layers=2, grid=grid, boundary="neumann")
    x = torch.randn(2, 2, *grid)
    out = model(x)
    assert out.shape == (2, 3, *grid)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_linear_bias_variant_is_an_input_dependent_affine_term():
    torch.manual_seed(0)
    model = MgNO(1, 1, channels=4, layers=1, levels=2, activation="tanh").double()
    # sigma(W u + B u + c): with W and B linear, tanh^-1 of the hidden state is affine in u
    x, y = torch.randn(2, 1, 1, 12, 12, dtype=torch.float64)
    op, bias = model.operators[0], model.biases[0]
    with torch.no_grad():
        pre = lambda u: op(u) + bias(u)  # noqa: E731
        torch.testing.assert_close(pre(x + y) - pre(y), pre(x) - pre(torch.zeros_like(x)))


def test_config_round_trip_rebuilds_the_same_model():
    torch.manual_seed(0)
    model = create_model("navier-stokes")
    clone = build_model(model.config)
    clone.load_state_dict(model.state_dict())
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), clone(x))
    assert clone.config == model.config


def test_levels_are_derived_from_the_grid():
    assert MgNO(1, 1, grid=[64, 64]).levels == 5
    assert MgNO(1, 1, grid=[211, 211], min_coarse=7).levels == 6
    with pytest.raises(ValueError, match="levels"):
        MgNO(1, 1)


def test_bad_configs_are_named():
    with pytest.raises(ValueError, match="unknown key.*chanels"):
        build_model({"model": "mgno", "in_channels": 1, "out_channels": 1, "chanels": 3})
    with pytest.raises(ValueError, match="unknown family 'transformer'"):
        build_model({"model": "transformer"})
    with pytest.raises(ValueError, match="skip.*in_channels == out_channels"):
        MgNO(2, 1, levels=2, skip=True)
    with pytest.raises(ValueError, match="grid: expected 2 sizes"):
        MgNO(1, 1, grid=[64])
    model = MgNO(1, 1, channels=4, layers=1, levels=3)
    with pytest.raises(ValueError, match="expected 1 channels"):
        model(torch.randn(1, 3, 32, 32))


def test_every_paper_experiment_has_a_preset_that_runs():
    assert list_presets() == [
        "darcy-smooth",
        "darcy-rough",
        "darcy-multiscale",
        "navier-stokes",
        "helmholtz",
        "pipe",
        "helmholtz-uniform",  # a variant: the single-width Helmholtz network
    ]
    for name in list_presets():
        preset = get_preset(name)
        assert set(preset["train"]) >= {
            "optimizer",
            "lr",
            "weight_decay",
            "epochs",
            "batch_size",
            "scheduler",
            "scheduler_step",
            "loss",
            "protocol",
        }
        model = mgno.create_model(name, channels=4)
        grid = preset["model"]["grid"]
        with torch.no_grad():
            out = model(torch.randn(1, preset["model"]["in_channels"], *grid))
        assert out.shape == (1, preset["model"]["out_channels"], *grid)
    with pytest.raises(ValueError, match="unknown name 'darcy'.*darcy-smooth"):
        create_model("darcy")


@pytest.mark.parametrize("name", ["darcy-rough", "darcy-multiscale"])
def test_darcy_parameter_count_within_3_percent_of_the_paper(name):
    count = count_parameters(create_model(name))
    assert abs(count - 0.57e6) / 0.57e6 < 0.03, count


def test_navier_stokes_matches_the_paper_up_to_its_grid_tied_layer_norm():
    # The authors' 2.89 M include LayerNorm([32, n, n]) affine weights on every
    # prolongated level of the 64x64 grid; mgno's norm is per channel instead.
    model = create_model("navier-stokes")
    ours = count_parameters(model)
    tied = grid_tied_norm_parameters(model.config, [64, 64])
    assert 1.1e6 < ours < 1.2e6
    assert abs(ours + tied - 2.89e6) / 2.89e6 < 0.03
    summary = summarize_preset("navier-stokes")
    assert summary["parameters_with_grid_tied_norm"] == ours + tied


def test_memory_layout_and_checkpointing_do_not_change_the_numbers():
    x = torch.randn(2, 1, 37, 30, dtype=torch.float64)

    def grads(**kw):
        torch.manual_seed(0)
        model = MgNO(1, 1, channels=4, layers=3, levels=3, **kw).double()
        out = model(x)
        out.square().sum().backward()
        return out.detach(), [p.grad for p in model.parameters()]

    ref_out, ref_grads = grads(channels_last=False)
    for kw in ({"channels_last": True}, {"checkpointing": True}):
        out, g = grads(**kw)
        assert out.is_contiguous()
        torch.testing.assert_close(out, ref_out)
        for a, b in zip(g, ref_grads, strict=True):
            torch.testing.assert_close(a, b)


def test_channels_last_holds_through_every_convolution():
    # A one-channel input is both NCHW and channels-last, so the layout must come
    # from the weights: with NCHW weights every layer used to fall back to NCHW.
    from mgno.nn.stencil import Prolongation, StencilConv

    model = MgNO(1, 1, channels=4, layers=2, levels=3, channels_last=True)
    layouts = []

    def record(module, inputs, out):
        if out.shape[1] > 1:
            layouts.append(out.is_contiguous(memory_format=torch.channels_last))

    for module in model.modules():
        if isinstance(module, StencilConv | Prolongation):
            module.register_forward_hook(record)
    model(torch.randn(2, 1, 20, 20))
    assert layouts and all(layouts)
    model.load_state_dict({k: v.contiguous() for k, v in model.state_dict().items()})
    weights = [p for p in model.parameters() if p.dim() == 4]
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)
