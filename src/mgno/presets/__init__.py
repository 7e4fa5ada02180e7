"""Named presets, one small file per experiment of the MgNO paper.

A preset is a plain dict with keys ``name``, ``description``, ``model`` (a
config dict for :func:`mgno.nn.build_model`), ``train`` (the paper's training
recipe) and ``paper`` (the figures the paper reports, for comparison).
"""

from __future__ import annotations

import copy
from typing import Any

from mgno.errors import InputError
from mgno.presets import (
    darcy_multiscale,
    darcy_rough,
    darcy_smooth,
    helmholtz,
    navier_stokes,
    pipe,
)

_MODULES = (darcy_smooth, darcy_rough, darcy_multiscale, navier_stokes, helmholtz, pipe)
_PRESETS: dict[str, dict[str, Any]] = {m.PRESET["name"]: m.PRESET for m in _MODULES}


def list_presets() -> list[str]:
    """Names of all presets, in the paper's order."""
    return list(_PRESETS)


def get_preset(name: str) -> dict[str, Any]:
    """A deep copy of the preset ``name``.

    Raises
    ------
    InputError
        If there is no such preset; the message lists the known names.
    """
    if name not in _PRESETS:
        raise InputError(f"preset: unknown name {name!r}; expected one of {', '.join(_PRESETS)}")
    return copy.deepcopy(_PRESETS[name])


def preset_description(name: str) -> str:
    """One-line description of a preset."""
    return get_preset(name)["description"]
