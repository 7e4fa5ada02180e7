"""Darcy flow, trigonometric multiscale coefficient (1023 -> 256 nodes)."""

from mgno.presets import Preset, darcy_rough

PRESET = Preset(
    name="darcy-multiscale",
    description="Darcy flow, trigonometric multiscale coefficient, 256x256, Dirichlet",
    model=darcy_rough.PRESET.model,
    train=darcy_rough.PRESET.train,
    paper={
        "rel_l2": 0.715e-2,
        "rel_h1": 1.756e-2,
        "parameters": 0.57e6,
        "seconds_per_epoch_a100": 6.6,
    },
)
