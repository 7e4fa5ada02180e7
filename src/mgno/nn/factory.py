"""Build models from plain config dicts or from named presets (timm style)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from mgno.nn.baselines import UNet, build_fno, build_tfno, build_uno
from mgno.nn.mgno import MgNO
from mgno.presets import get_preset

# Model families: config["model"] -> a function building the model from the config.
MODEL_FAMILIES: dict[str, Callable[[dict[str, Any]], nn.Module]] = {
    "mgno": MgNO.from_config,
    "fno": build_fno,
    "tfno": build_tfno,
    "uno": build_uno,
    "unet": UNet.from_config,
}


def build_model(config: dict[str, Any]) -> nn.Module:
    """Build a model from a config dict such as ``model.config``.

    Parameters
    ----------
    config
        ``{"model": FAMILY, ...}``: the family name and its constructor keywords.
        Every model built here carries ``.config`` such that
        ``build_model(model.config)`` rebuilds the same architecture.

    Raises
    ------
    ValueError
        On an unknown family or unknown keys.
    """
    family = config.get("model", "mgno")
    if family not in MODEL_FAMILIES:
        raise ValueError(
            f"model: unknown family {family!r}; expected one of {', '.join(MODEL_FAMILIES)}"
        )
    return MODEL_FAMILIES[family](dict(config))


def preset_config(name: str, **overrides: Any) -> dict[str, Any]:
    """The model config of preset ``name`` with ``overrides`` applied."""
    config = get_preset(name)["model"]
    config.update(overrides)
    return config


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Create the model of preset ``name``, with keyword overrides of its config.

    Examples
    --------
    >>> model = create_model("darcy-rough")                      # 0.57 M parameters
    >>> model = create_model("darcy-smooth", channels=32, grid=[85, 85], levels=None)
    """
    return build_model(preset_config(name, **overrides))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
