"""Model and training configuration derived from a data set, a preset and options.

Precedence, lowest first: what the data imply (grid, channels, levels, the
boundary condition of each axis from the file's metadata) < the preset <
explicit options. Grid and channel counts always come from the data.
"""

from __future__ import annotations

import sys
from typing import Any

from mgno.data.schema import DatasetInfo
from mgno.errors import InputError
from mgno.nn.registry import BASELINE_FAMILIES  # families built from neuraloperator, the U-Net
from mgno.train.config import TrainConfig
from mgno.train.task import Task, check_protocol, check_rollout_training, default_recipe

default_train_config = default_recipe

#: Hidden channels and layers when neither a preset nor an option gives them.
DEFAULT_CHANNELS = 24
DEFAULT_LAYERS = 4


def build_train_config(
    info: DatasetInfo, preset: dict | None, overrides: dict[str, Any]
) -> TrainConfig:
    """Data defaults, then the preset's ``"train"`` recipe, then the non-None ``overrides``."""
    d: dict[str, Any] = default_train_config(info)
    source = "data's"
    if preset is not None:
        d.update(preset.get("train", {}))
        source = f"preset {preset.get('name')!r}"
    given = {k: v for k, v in overrides.items() if v is not None}
    d.update(given)
    if "phase_epochs" in given and "epochs" not in given:
        # the phases' budgets give the run's length (TrainConfig checks the sum otherwise)
        phase_epochs = TrainConfig.canonical("phase_epochs", given["phase_epochs"])
        if isinstance(phase_epochs, list) and all(isinstance(e, int) for e in phase_epochs):
            d["epochs"] = sum(phase_epochs)
    if "protocol" in given:
        source = "requested"
    cfg = TrainConfig.from_dict(d, source="train options")
    check_protocol(info, cfg.protocol, source)
    check_rollout_training(info, cfg)
    return cfg


#: Fourier modes kept per axis by FNO/TFNO/UNO, as in the FNO paper (capped at n // 2).
DEFAULT_MODES = 12
#: Fraction of the grid FNO/TFNO pad by on non-periodic data (the FNO paper pads
#: Darcy's 85 nodes by 9, about a tenth; neuraloperator's ``domain_padding``).
DEFAULT_DOMAIN_PADDING = 0.125


def baseline_overrides(family: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Translate mgno's network options to a baseline family's config keys.

    ``channels`` becomes ``width`` (hidden channels of FNO/TFNO/UNO, first-block
    channels of the U-Net); ``levels`` becomes the U-Net's ``depth``
    (``levels - 1`` downsamplings) and is refused for the FNO family.

    Raises
    ------
    InputError
        On ``levels`` for a Fourier model.
    """
    out = dict(overrides)
    if "channels" in out:
        out["width"] = out.pop("channels")
    if "levels" in out:
        levels = out.pop("levels")
        if family != "unet":
            raise InputError(
                f"--levels: found {levels} for --model {family}, which has no multigrid "
                "levels; expected --levels only with --model mgno or unet"
            )
        if int(levels) < 2:
            raise InputError(f"--levels: found {levels} for --model unet, expected >= 2")
        out["depth"] = int(levels) - 1
    if "norm" in out:
        raise InputError(
            f"--norm: found {out['norm']!r} for --model {family}, which has no multigrid "
            "normalisation; expected --norm only with --model mgno"
        )
    if family != "unet" and "positional" in out:
        raise InputError(
            f"--positional: found {out['positional']!r} for --model {family}, whose "
            "neuraloperator model appends its own grid; expected --positional only with "
            "--model mgno or unet"
        )
    if family == "unet" and "layers" in out:
        raise InputError(
            f"--layers: found {out['layers']} for --model unet, whose size is set by "
            "--channels and --levels; expected no --layers"
        )
    return out


def baseline_defaults(family: str, grid: list[int], boundary: list[str]) -> dict[str, Any]:
    """Config entries a baseline takes from the data when nothing else sets them.

    FNO/TFNO: ``modes`` = min(12, n // 2) per axis, and ``domain_padding``
    0.125 when some axis is not periodic (None on a torus). UNO: ``modes``
    capped the same way. U-Net: ``depth`` = the most halvings (at most 4) that
    leave at least 4 nodes per axis.
    """
    if family in ("fno", "tfno"):
        periodic = all(b == "periodic" for b in boundary)
        return {
            "modes": [max(1, min(DEFAULT_MODES, n // 2)) for n in grid],
            "domain_padding": None if periodic else DEFAULT_DOMAIN_PADDING,
        }
    if family == "uno":
        return {"modes": max(1, min(DEFAULT_MODES, min(grid) // 2))}
    if family == "unet":
        depth = 0
        while depth < 4 and min(grid) // 2 ** (depth + 1) >= 4:
            depth += 1
        return {"depth": max(depth, 1)}
    return {}


def _max_levels(grid: list[int]) -> int:
    from mgno.nn.multigrid import derive_levels

    return derive_levels(grid, min_coarse=2)


def _base_config(info: DatasetInfo, family: str | None, preset: dict | None) -> dict[str, Any]:
    """The preset's network (unless another family is asked), else just the family."""
    if preset is None:
        return {"model": family or "mgno"}
    cfg = dict(preset["model"])
    dim, pdim = len(info.grid), cfg.get("dim", len(info.grid))
    if pdim != dim:
        raise InputError(
            f"{info.path}: data on a {dim}-D grid {list(info.grid)}, but preset "
            f"{preset['name']!r} is {pdim}-D; expected {pdim}-D data"
        )
    if family is not None and family != cfg.get("model", "mgno"):
        cfg = {"model": family}
    return cfg


def _data_defaults(cfg: dict[str, Any], info: DatasetInfo, one_step_default: bool) -> None:
    """Entries the data imply, where nothing set them (MgNO: skip for one-step rollouts)."""
    if cfg["model"] == "mgno":
        cfg.setdefault("channels", DEFAULT_CHANNELS)
        cfg.setdefault("layers", DEFAULT_LAYERS)
        cfg.setdefault("levels", None)
        cfg.setdefault("boundary", list(info.boundary))
        if one_step_default:
            cfg.setdefault("skip", True)
        return
    cfg.setdefault("boundary", list(info.boundary))
    for key, value in baseline_defaults(cfg["model"], list(info.grid),
                                        list(info.boundary)).items():
        cfg.setdefault(key, value)


def _warn_boundary(cfg: dict[str, Any], info: DatasetInfo, preset: dict) -> None:
    if list(cfg.get("boundary", [])) != list(info.boundary):
        print(
            f"mgno: warning: preset {preset['name']!r} pads with {cfg['boundary']} but "
            f"{info.path} says {list(info.boundary)}; keeping the preset's (use --boundary)",
            file=sys.stderr,
        )


def _fit_levels(cfg: dict[str, Any], info: DatasetInfo, explicit: bool) -> None:
    """Cap MgNO's levels at what the grid allows (refused when asked for explicitly)."""
    grid = list(info.grid)
    top = _max_levels(grid)
    if cfg["levels"] <= top:
        return
    if explicit:
        raise InputError(
            f"--levels: {cfg['levels']} levels do not fit the grid {grid} of {info.path}; "
            f"expected at most {top}"
        )
    print(
        f"mgno: warning: {cfg['levels']} levels do not fit the grid {grid}; using {top}",
        file=sys.stderr,
    )
    for key in ("pre_smooth", "post_smooth"):
        counts = cfg.get(key)
        if isinstance(counts, list):
            cfg[key] = counts[: top - 1] + [counts[-1]]
    if cfg.get("level_channels"):
        cfg["level_channels"] = list(cfg["level_channels"])[:top]  # the finest widths
    cfg["levels"] = top


def build_model_config(
    info: DatasetInfo,
    train_cfg: TrainConfig,
    *,
    family: str | None = None,
    preset: dict | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The network config for :func:`mgno.nn.build_model`.

    Parameters
    ----------
    info:
        The training data (grid, channels, boundary from its metadata).
    train_cfg:
        Gives the protocol (which fixes the channel counts for trajectories).
    family:
        ``"mgno"``, ``"fno"``... (default: the preset's, else ``"mgno"``).
    preset:
        A preset dict; its ``"model"`` entries take precedence over the data's
        defaults except grid and channel counts.
    overrides:
        Explicit options (``channels``, ``layers``, ``levels``, ``boundary``...);
        ``None`` values are ignored.
    """
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    task = Task.from_config(info.kind, train_cfg)
    cin, cout = task.channels(info)
    grid = list(info.grid)
    chosen = family or (preset["model"].get("model", "mgno") if preset is not None else "mgno")
    if chosen in BASELINE_FAMILIES:
        overrides = baseline_overrides(chosen, overrides)
    cfg = _base_config(info, family, preset)
    cfg.update({"in_channels": cin, "out_channels": cout, "dim": len(grid), "grid": grid})
    _data_defaults(cfg, info, one_step_default=preset is None and task.one_step)
    if preset is not None and "boundary" not in overrides:
        _warn_boundary(cfg, info, preset)
    if cfg.get("level_channels") and "level_channels" not in overrides:
        from mgno.nn.mgno import scale_level_channels

        cfg["level_channels"] = scale_level_channels(
            cfg["level_channels"], overrides.get("channels"), overrides.get("levels"))
    cfg.update(overrides)
    if "boundary" in cfg and isinstance(cfg["boundary"], str):
        cfg["boundary"] = [cfg["boundary"]] * len(grid)
    if cfg["model"] == "mgno" and cfg.get("levels") is not None:
        _fit_levels(cfg, info, explicit="levels" in overrides)
    if cfg.get("skip") and cin != cout:
        cfg["skip"] = False
    return cfg
