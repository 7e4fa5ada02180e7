"""Build models from configs or from named presets (timm style).

Every family registered in :mod:`mgno.nn.registry` can be built here; importing
this module imports the model modules, which registers the built-in families.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from mgno.nn import baselines as _baselines  # noqa: F401  (registers fno, tfno, uno, unet)
from mgno.nn import mgno as _mgno  # noqa: F401  (registers mgno)
from mgno.nn.registry import MODEL_FAMILIES, ModelConfig, model_entry, parse_config

__all__ = ["MODEL_FAMILIES", "build_model", "count_parameters", "create_model", "preset_config"]


def build_model(config: ModelConfig | Mapping[str, Any]) -> nn.Module:
    """Build a model from a config dataclass or a config dict such as ``model.config``.

    Parameters
    ----------
    config
        A registered family's config dataclass, or ``{"model": FAMILY, ...}``:
        the family name (default ``"mgno"``) and its fields. Every model built
        here carries ``.config`` such that ``build_model(model.config)``
        rebuilds the same architecture.

    Raises
    ------
    InputError
        On an unknown family or unknown keys (one line listing the choices).
    """
    cfg = parse_config(config)
    return model_entry(cfg.family).model_class.from_config(cfg)


def preset_config(name: str, **overrides: Any) -> dict[str, Any]:
    """The model config dict of preset ``name`` with ``overrides`` applied.

    A preset with per-level widths (``level_channels``) keeps its layout under
    an override of ``channels`` (scaled in proportion) or ``levels`` (the
    finest ones kept), unless ``level_channels`` is overridden too.
    """
    from mgno.nn.mgno import scale_level_channels
    from mgno.presets import lookup_preset  # presets are built from nn's config classes

    config = lookup_preset(name).model.to_dict()
    if config.get("level_channels") and "level_channels" not in overrides:
        config["level_channels"] = scale_level_channels(
            config["level_channels"], overrides.get("channels"), overrides.get("levels"))
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
