"""Darcy flow, rough coefficient (512 -> 256 nodes): 4 layers, 0.57 M parameters."""

from mgno.presets import Preset, darcy_smooth

PRESET = Preset(
    name="darcy-rough",
    description="Darcy flow, rough 12/2 coefficient (alpha 2, tau 5), 256x256, Dirichlet",
    model=darcy_smooth.PRESET.model.replace(layers=4, grid=(256, 256)),  # 256 -> ... -> 8
    train=darcy_smooth.PRESET.train,
    paper={
        "rel_l2": 0.339e-2,
        "rel_h1": 1.380e-2,
        "parameters": 0.57e6,
        "seconds_per_epoch_a100": 6.6,
    },
)
