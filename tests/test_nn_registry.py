"""The vocabulary (mgno.vocab), the model registry (mgno.nn.registry) and typed presets."""

from __future__ import annotations

import dataclasses
import json
import pickle
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
import torch

import mgno.cli
import mgno.data.schema
import mgno.pde.elliptic
import mgno.train.config
import mgno.train.losses
from mgno import vocab
from mgno.errors import InputError
from mgno.nn import registry
from mgno.nn.factory import build_model, count_parameters, create_model
from mgno.nn.registry import MODEL_FAMILIES, ModelConfig, RegisteredModel, register_model
from mgno.nn.summary import summarize_model, summarize_preset
from mgno.presets import Preset, get_preset, list_presets, lookup_preset

# Config dicts and parameter counts as written by the code before the registry
# (commit 0742d75: `json.dumps(build_model(c).config)`, `count_parameters`).
OLD_CONFIGS = [
    (
        '{"model": "mgno", "in_channels": 2, "out_channels": 1, "dim": 2, "channels": 8, '
        '"layers": 2, "levels": 4, "grid": [33, 33], "min_coarse": 4, "boundary": '
        '["periodic", "periodic"], "pre_smooth": [1, 2, 2, 2], "post_smooth": 1, "restrict": '
        '"f", "kernel_size": 3, "prolongation_kernel_size": 4, "bias": "conv", "norm": '
        '"group", "skip": false, "activation": "silu", "channels_last": true, '
        '"checkpointing": false}',
        25597,
    ),
    (
        '{"model": "mgno", "in_channels": 1, "out_channels": 1, "dim": 1, "channels": 6, '
        '"layers": 3, "levels": 3, "grid": null, "min_coarse": 4, "boundary": ["dirichlet"], '
        '"pre_smooth": null, "post_smooth": 0, "restrict": "f", "kernel_size": 3, '
        '"prolongation_kernel_size": 4, "bias": "linear", "norm": "none", "skip": true, '
        '"activation": "gelu", "channels_last": true, "checkpointing": false}',
        3691,
    ),
    (
        '{"model": "fno", "in_channels": 1, "out_channels": 1, "dim": 2, "width": 8, "modes": '
        '[4, 5], "layers": 2, "domain_padding": 0.125, "rank": 0.42, "grid": [32, 32], '
        '"boundary": ["dirichlet", "dirichlet"]}',
        2209,
    ),
    (
        '{"model": "tfno", "in_channels": 1, "out_channels": 2, "dim": 2, "width": 8, "modes": '
        '[4, 4], "layers": 2, "domain_padding": null, "rank": 0.5, "grid": null, "boundary": '
        "null}",
        1350,
    ),
    (
        '{"model": "uno", "in_channels": 1, "out_channels": 1, "dim": 2, "width": 8, "modes": 4, '
        '"layers": 4, "grid": [32, 32], "boundary": ["periodic", "periodic"]}',
        8865,
    ),
    (
        '{"model": "unet", "in_channels": 3, "out_channels": 1, "dim": 2, "width": 4, "depth": '
        '2, "boundary": ["dirichlet", "neumann"], "grid": [31, 31], "channels_last": true}',
        13013,
    ),
]

# Parameter counts of every preset (those of the presets before they became
# typed; navier-stokes since it takes coordinate channels, issue 12: 1,147,471
# without them; the single-width Helmholtz network of then is the
# helmholtz-uniform variant since issue 14, when helmholtz became the authors'
# growing layout).
OLD_PRESET_PARAMETERS = {
    "darcy-smooth": 738574,
    "darcy-rough": 572662,
    "darcy-multiscale": 572662,
    "navier-stokes": 1163351,
    "helmholtz": 5683917,
    "pipe": 1315573,
    "helmholtz-uniform": 5758835,
}

#: keys that configs gained after the old ones above were written, with the value
#: that reproduces the old model
ADDED_KEYS = {"positional": "none", "norm_at": "prolongation", "level_channels": None,
              "projection": "pointwise"}

# Small, non-default settings of every family: a field the JSON dict dropped
# would come back at its default and change the parameter count.
SAMPLES: dict[str, dict[str, Any]] = {
    "mgno": dict(channels=5, layers=2, grid=(16, 16), kernel_size=5, bias="conv", norm="group"),
    "fno": dict(width=6, modes=(3, 4), layers=2),
    "tfno": dict(width=6, modes=3, layers=2, rank=0.3),
    "uno": dict(width=4, modes=3, layers=3),
    "unet": dict(width=4, depth=2, boundary="periodic"),
}


@pytest.mark.parametrize("text,parameters", OLD_CONFIGS, ids=lambda v: str(v)[15:20])
def test_old_config_dicts_build_the_same_model(text, parameters):
    old = json.loads(text)
    model = build_model(old)
    assert count_parameters(model) == parameters
    # config.json is written as before, plus keys added since, at their defaults
    new = {k: v for k, v in model.config.items() if k not in old}
    assert new == {k: v for k, v in ADDED_KEYS.items() if k in model.config}
    assert json.dumps({k: v for k, v in model.config.items() if k in old}) == text


def test_every_family_round_trips_through_its_json_dict():
    assert set(SAMPLES) == set(MODEL_FAMILIES), "give every registered family a sample"
    for family, options in SAMPLES.items():
        entry = registry.model_entry(family)
        cfg = entry.config_class(in_channels=2, out_channels=1, **options)
        as_json = json.loads(json.dumps(cfg.to_dict()))
        assert as_json["model"] == family
        from_dict = build_model(as_json)
        from_object = build_model(cfg)
        assert type(from_dict) is entry.model_class
        assert from_dict.model_config == cfg
        assert count_parameters(from_dict) == count_parameters(from_object)
        default = build_model({"model": family, "in_channels": 2, "out_channels": 1,
                               "grid": [16, 16]})
        assert count_parameters(from_dict) != count_parameters(default), family
        with pytest.raises(dataclasses.FrozenInstanceError):
            cfg.dim = 3


def test_unknown_names_give_one_line_input_errors_listing_the_choices():
    cases = [
        (lambda: build_model({"model": "transformer", "in_channels": 1, "out_channels": 1}),
         ["model", "'transformer'", *MODEL_FAMILIES]),
        (lambda: get_preset("darcy"), ["preset", "'darcy'", *list_presets()]),
        (lambda: create_model("darcy"), ["preset", "'darcy'", *list_presets()]),
        (lambda: vocab.LOSSES.check("mse", "--loss"), ["--loss", "'mse'", *vocab.LOSSES]),
        (lambda: vocab.PROTOCOLS.check("2-2"), ["protocol", "'2-2'", *vocab.PROTOCOLS]),
        (lambda: vocab.DATA_KINDS.check("movie"), ["kind", "'movie'", *vocab.DATA_KINDS]),
        (lambda: vocab.NORMALIZERS.check("minmax"), ["normalizer", "'minmax'", "pointwise"]),
        (lambda: build_model({"model": "mgno", "in_channels": 1, "out_channels": 1,
                              "grid": [8, 8], "boundary": "robin"}),
         ["boundary", "'robin'", *vocab.BOUNDARY_CONDITIONS]),
        (lambda: build_model({"model": "unet", "in_channels": 1, "out_channels": 1,
                              "depth": 2, "widht": 3}), ["unet config", "widht", "width"]),
        (lambda: build_model({"model": "mgno", "in_channels": 1, "out_channels": 1,
                              "grid": [8, 8], "channels": "many"}), ["'channels'", "'many'"]),
        (lambda: build_model({"model": "mgno", "in_channels": 1, "out_channels": 1,
                              "grid": [8, 8], "activation": "relu6"}),
         ["activation", "'relu6'", "gelu", "tanh"]),
    ]
    for call, words in cases:
        with pytest.raises(InputError) as err:
            call()
        message = str(err.value)
        assert "\n" not in message
        for word in words:
            assert word in message, (word, message)


def test_the_cli_takes_its_choices_from_the_registry_and_the_vocabulary(capsys):
    with pytest.raises(SystemExit) as stop:
        mgno.cli.main(["train", "--data", "d.h5", "--out", "run", "--model", "transformer"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert all(f"'{family}'" in err for family in MODEL_FAMILIES)
    with pytest.raises(SystemExit) as stop:
        mgno.cli.main(["train", "--data", "d.h5", "--out", "run", "--loss", "mse"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert all(f"'{loss}'" in err for loss in vocab.LOSSES)


def test_each_word_list_has_one_home():
    assert mgno.data.schema.BOUNDARY_CONDITIONS is vocab.BOUNDARY_CONDITIONS
    assert mgno.pde.elliptic.BOUNDARY_CONDITIONS is vocab.BOUNDARY_CONDITIONS
    assert mgno.train.losses.LOSSES is vocab.LOSSES
    assert mgno.train.config.LOSS_NAMES is vocab.LOSSES
    assert mgno.train.config.PROTOCOLS is vocab.PROTOCOLS
    assert mgno.train.config.NORMALIZERS is vocab.NORMALIZERS


def test_word_lists_behave_as_tuples_and_resolve_aliases():
    bc = vocab.BOUNDARY_CONDITIONS
    assert bc.check("reflect") == "neumann" and bc.check("circular") == "periodic"
    assert "reflect" not in bc and "neumann" in bc
    assert json.loads(json.dumps(vocab.LOSSES)) == list(vocab.LOSSES)
    copy = pickle.loads(pickle.dumps(bc))
    assert copy == bc and copy.check("zeros") == "dirichlet"


def test_every_preset_is_typed_builds_and_keeps_its_size():
    assert list_presets() == list(OLD_PRESET_PARAMETERS)
    for name, parameters in OLD_PRESET_PARAMETERS.items():
        preset = lookup_preset(name)
        assert isinstance(preset, Preset) and isinstance(preset.model, ModelConfig)
        model = create_model(name)
        assert count_parameters(model) == parameters
        assert model.config == preset.model.to_dict() == get_preset(name)["model"]
        assert summarize_preset(name)["parameters"] == parameters
    recipe = get_preset("pipe")
    recipe["train"]["lr"] = 1.0  # a caller's copy; the preset itself stays
    assert lookup_preset("pipe").train["lr"] == 3e-4


@dataclass(frozen=True)
class _ToyConfig(ModelConfig):
    family: ClassVar[str] = "toy"
    scale: float = 2.0


class _Toy(RegisteredModel):
    def __init__(self, in_channels: int, out_channels: int, **options: Any) -> None:
        super().__init__()
        self.model_config = _ToyConfig(in_channels, out_channels, **options)
        self.map = torch.nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model_config.scale * self.map(x)


def test_adding_a_family_is_one_registration(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    register_model(_ToyConfig)(_Toy)
    assert "toy" in MODEL_FAMILIES and "toy" in registry.BASELINE_FAMILIES
    model = build_model({"model": "toy", "in_channels": 3, "out_channels": 2, "scale": 0.5})
    assert isinstance(model, _Toy) and model.config == {
        "model": "toy", "in_channels": 3, "out_channels": 2, "scale": 0.5
    }
    assert count_parameters(build_model(model.config)) == 3 * 2 + 2
    assert summarize_model(model)["model"] == "toy"
    parser = mgno.cli.build_parser()
    args = parser.parse_args(["train", "--data", "d.h5", "--out", "run", "--model", "toy"])
    assert args.model == "toy"
    with pytest.raises(RuntimeError, match="twice"):
        register_model(_ToyConfig)(_Toy)
