"""Human- and machine-readable summaries of models and presets (``mgno info``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from mgno.errors import InputError
from mgno.nn.factory import build_model, count_parameters
from mgno.nn.multigrid import level_shapes, level_widths
from mgno.presets import lookup_preset


def grid_tied_norm_parameters(config: dict[str, Any], grid: Sequence[int]) -> int:
    """Affine weights a grid-tied LayerNorm([width, *level grid]) in place of the
    per-channel norm would add (the authors' Navier-Stokes/Helmholtz code, mgno's
    ``norm="layer-grid"``): after every prolongation (``norm_at="prolongation"``,
    at each level's width) or on every layer's output (``norm_at="output"``).
    Zero for models without a norm, and for those that have the grid-tied one already."""
    if config.get("norm", "none") in ("none", "layer-grid"):
        return 0
    shapes = level_shapes(grid, config["levels"])
    widths = level_widths(config["channels"], config.get("level_channels"), config["levels"])
    if config.get("norm_at", "prolongation") == "output":
        places = [(widths[0], shapes[0])]
    else:
        places = list(zip(widths, shapes, strict=True))[:-1]
    per_layer = sum(2 * c * _prod(s) - 2 * c for c, s in places)
    return per_layer * config["layers"]


def _prod(shape: Sequence[int]) -> int:
    out = 1
    for n in shape:
        out *= int(n)
    return out


def summarize_model(model: nn.Module, grid: Sequence[int] | None = None) -> dict[str, Any]:
    """Summary of a built model: family, parameters, channels, layers, levels, level grids."""
    config = dict(getattr(model, "config", {}))
    grid = list(grid) if grid is not None else config.get("grid")
    out: dict[str, Any] = {
        "model": config.get("model"),
        "parameters": count_parameters(model),
        "in_channels": config.get("in_channels"),
        "out_channels": config.get("out_channels"),
        "channels": config.get("channels"),
        "level_channels": config.get("level_channels"),
        "layers": config.get("layers"),
        "levels": config.get("levels"),
        "boundary": config.get("boundary"),
        "grid": grid,
    }
    operator = getattr(model, "operators", [None])[0]
    if operator is not None:
        out["pre_smooth"] = list(operator.pre_smooth)
        out["post_smooth"] = list(operator.post_smooth)
    if grid is not None and config.get("levels"):
        out["level_grids"] = [list(s) for s in level_shapes(grid, config["levels"])]
    out["config"] = config
    return out


def summarize_preset(name: str, grid: Sequence[int] | None = None) -> dict[str, Any]:
    """Summary of preset ``name`` with the paper's figures beside ours.

    Parameters
    ----------
    name
        Preset name (``mgno.presets.list_presets()``).
    grid
        Grid used to list the level sizes (default: the preset's training grid).
    """
    preset = lookup_preset(name).to_dict()
    model = build_model(preset["model"])
    if grid is not None:
        _check_grid(grid, len(model.config.get("boundary") or ()) or len(grid))
    summary = {"preset": name, "description": preset["description"]}
    summary.update(summarize_model(model, grid))
    summary["paper"] = preset["paper"]
    tied = grid_tied_norm_parameters(model.config, summary["grid"]) if summary["grid"] else 0
    if tied:
        summary["grid_tied_norm_parameters"] = tied
        summary["parameters_with_grid_tied_norm"] = summary["parameters"] + tied
    summary["train"] = preset["train"]
    return summary


def _check_grid(grid: Sequence[int], dims: int) -> None:
    """Refuse a ``--grid`` without one size >= 2 per axis of the model."""
    grid = list(grid)
    bad = [n for n in grid if isinstance(n, bool) or not isinstance(n, int) or n < 2]
    if bad or len(grid) != dims:
        found = bad[0] if bad else f"{len(grid)} size{'s' * (len(grid) != 1)}"
        raise InputError(f"--grid: found {found}, expected {dims} integers >= 2 "
                         "(points per axis)")


def format_summary(summary: dict[str, Any]) -> str:
    """Plain-text rendering of :func:`summarize_preset`'s dict."""
    lines = [f"preset       {summary['preset']}: {summary['description']}"]
    lines.append(f"parameters   {summary['parameters']:,}")
    paper = summary.get("paper", {})
    if "parameters" in paper:
        lines[-1] += f"   (paper: {paper['parameters'] / 1e6:.2f} M)"
    if "parameters_with_grid_tied_norm" in summary:
        lines.append(
            f"             {summary['parameters_with_grid_tied_norm']:,} with the authors' "
            "grid-tied LayerNorm affine weights (--norm layer-grid)"
        )
    lines.append(
        f"channels     {summary['in_channels']} -> {summary['channels']} -> "
        f"{summary['out_channels']}"
    )
    if summary.get("level_channels"):
        lines[-1] += f"   (per level {' -> '.join(map(str, summary['level_channels']))})"
    lines.append(f"layers       {summary['layers']}")
    lines.append(f"levels       {summary['levels']}")
    if summary.get("level_grids"):
        grids = " -> ".join("x".join(map(str, g)) for g in summary["level_grids"])
        lines.append(f"level grids  {grids}")
    lines.append(f"boundary     {', '.join(summary['boundary'])}")
    cfg = summary["config"]
    lines.append(
        f"cycle        pre-smoothing {summary['pre_smooth']}, post-smoothing "
        f"{summary['post_smooth']}, "
        f"restrict {cfg['restrict']}, bias {cfg['bias']}, norm {cfg['norm']}"
        f"{' on each output' if cfg.get('norm_at') == 'output' else ''}, skip {cfg['skip']}"
        f"{', multigrid projection' if cfg.get('projection') == 'multigrid' else ''}"
    )
    train = summary.get("train", {})
    if train:
        lines.append(
            f"recipe       {train['optimizer']} lr {train['lr']:g} wd {train['weight_decay']:g}, "
            f"{train['epochs']} epochs, batch {train['batch_size']}, loss {train['loss']}"
        )
    return "\n".join(lines)
