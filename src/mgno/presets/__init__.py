"""Named presets, one small file per experiment of the MgNO paper.

A preset (:class:`Preset`) is a name and description, a model config (a
registered family's frozen config dataclass, see :mod:`mgno.nn.registry`),
the paper's training recipe (the ``"train"`` fields of
:class:`mgno.train.TrainConfig`) and the figures the paper reports.
:func:`get_preset` gives the same as a plain dict.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from mgno.nn.registry import ModelConfig
from mgno.vocab import one_of


@dataclass(frozen=True)
class Preset:
    """One paper experiment: a model config and its training recipe.

    Attributes
    ----------
    name, description
        How users call it (``--preset NAME``) and one line about it.
    model
        The network: a registered family's config dataclass.
    train
        The paper's training recipe (fields of :class:`mgno.train.TrainConfig`).
    paper
        The figures the paper reports (``rel_l2``, ``parameters``...).
    """

    name: str
    description: str
    model: ModelConfig
    train: Mapping[str, Any]
    paper: Mapping[str, float]

    def __post_init__(self) -> None:
        object.__setattr__(self, "train", MappingProxyType(dict(self.train)))
        object.__setattr__(self, "paper", MappingProxyType(dict(self.paper)))

    def to_dict(self) -> dict[str, Any]:
        """The preset as a plain dict: name, description, model (config dict), train, paper."""
        return {
            "name": self.name,
            "description": self.description,
            "model": self.model.to_dict(),
            "train": copy.deepcopy(dict(self.train)),
            "paper": dict(self.paper),
        }


def _presets() -> dict[str, Preset]:
    """The presets by name, in the paper's order."""
    from mgno.presets import (
        darcy_multiscale,
        darcy_rough,
        darcy_smooth,
        helmholtz,
        helmholtz_uniform,
        navier_stokes,
        pipe,
    )

    modules = (darcy_smooth, darcy_rough, darcy_multiscale, navier_stokes, helmholtz, pipe,
               helmholtz_uniform)
    return {m.PRESET.name: m.PRESET for m in modules}


def list_presets() -> list[str]:
    """Names of all presets, in the paper's order."""
    return list(_presets())


def lookup_preset(name: str) -> Preset:
    """The preset ``name`` (frozen, shared; use :func:`get_preset` for a dict to edit).

    Raises
    ------
    InputError
        If there is no such preset; the one-line message lists the known names.
    """
    presets = _presets()
    return presets[one_of(name, presets, "preset", "name")]


def get_preset(name: str) -> dict[str, Any]:
    """The preset ``name`` as a fresh plain dict (see :meth:`Preset.to_dict`).

    Raises
    ------
    InputError
        If there is no such preset; the one-line message lists the known names.
    """
    return lookup_preset(name).to_dict()


def preset_description(name: str) -> str:
    """One-line description of a preset."""
    return lookup_preset(name).description


__all__ = ["Preset", "get_preset", "list_presets", "lookup_preset", "preset_description"]
