"""Baselines: neuraloperator's FNO/TFNO/UNO wrapped, and the U-Net."""

from __future__ import annotations

import json

import pytest
import torch

from mgno import build_model, count_parameters
from mgno.nn.baselines import NeuralOperatorModel, UNet

SMALL = {
    "fno": {"width": 8, "modes": 4, "layers": 2},
    "tfno": {"width": 8, "modes": 4, "layers": 2},
    "uno": {"width": 8, "modes": 4, "layers": 3},
    "unet": {"width": 4, "depth": 2},
}


@pytest.mark.parametrize("family", list(SMALL))
@pytest.mark.parametrize("grid", [(32, 32), (33, 21)])
def test_baselines_map_any_grid_to_itself(family, grid):
    torch.manual_seed(0)
    model = build_model({"model": family, "in_channels": 2, "out_channels": 3, **SMALL[family]})
    out = model(torch.randn(2, 2, *grid))
    assert out.shape == (2, 3, *grid)
    out.square().mean().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("family", list(SMALL))
def test_config_is_json_and_rebuilds_the_model(family):
    torch.manual_seed(0)
    model = build_model({"model": family, "in_channels": 1, "out_channels": 1, **SMALL[family]})
    config = json.loads(json.dumps(model.config))
    clone = build_model(config)
    clone.load_state_dict(model.state_dict())
    x = torch.randn(1, 1, 24, 24)
    with torch.no_grad():
        torch.testing.assert_close(clone(x), model(x))


def test_fno_is_neuraloperators_model():
    from neuralop.models import FNO, TFNO

    fno = build_model({"model": "fno", "in_channels": 1, "out_channels": 1})
    tfno = build_model({"model": "tfno", "in_channels": 1, "out_channels": 1})
    assert isinstance(fno, NeuralOperatorModel) and type(fno.inner) is FNO
    assert isinstance(tfno.inner, TFNO)
    assert count_parameters(tfno) < count_parameters(fno)


def test_unet_one_and_three_dimensions_and_periodic_padding():
    torch.manual_seed(0)
    assert UNet(1, 1, dim=1, width=4, depth=3)(torch.randn(1, 1, 50)).shape == (1, 1, 50)
    assert UNet(1, 2, dim=3, width=2, depth=1)(torch.randn(1, 1, 9, 8, 7)).shape == (1, 2, 9, 8, 7)
    net = UNet(1, 1, width=4, depth=2, boundary="periodic").double().eval()
    x = torch.randn(1, 1, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(net(torch.roll(x, 4, 2)), torch.roll(net(x), 4, 2))


def test_unet_layouts_give_the_same_numbers():
    x = torch.randn(2, 1, 19, 16, dtype=torch.float64)
    results = []
    for channels_last in (False, True):
        torch.manual_seed(0)
        net = UNet(1, 1, width=4, depth=2, channels_last=channels_last).double()
        weight = net.encoders[1].conv1.weight  # (8, 4, 3, 3): the layouts differ
        assert weight.is_contiguous(memory_format=torch.channels_last) is channels_last
        out = net(x)
        out.square().sum().backward()
        assert out.is_contiguous()
        results.append([out.detach()] + [p.grad for p in net.parameters()])
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b)


def test_bad_baseline_configs_and_inputs_are_named():
    with pytest.raises(ValueError, match="fno config: unknown key.*hidden"):
        build_model({"model": "fno", "in_channels": 1, "out_channels": 1, "hidden": 3})
    with pytest.raises(ValueError, match="missing key.*in_channels"):
        build_model({"model": "unet", "out_channels": 1})
    model = build_model({"model": "fno", "in_channels": 1, "out_channels": 1, **SMALL["fno"]})
    with pytest.raises(ValueError, match=r"fno input: expected shape \(batch, 1, n, n\)"):
        model(torch.randn(1, 2, 16, 16))
