"""Helmholtz with one width on every level: mgno's network before issue 14.

The ``helmholtz`` preset before it became the authors' growing layout, kept
as a variant to train anew (runs trained with it rebuild from their own
config.json either way): 64 channels on all five levels, group norm after
each prolongation, post-smoothing, a 1x1 projection.
"""

from mgno.nn.mgno import MgNOConfig
from mgno.presets import Preset, helmholtz

PRESET = Preset(
    name="helmholtz-uniform",
    description="Helmholtz, the single-width variant: 64 channels on every level, 101x101",
    model=MgNOConfig(
        in_channels=1,
        out_channels=1,
        dim=2,
        channels=64,
        layers=5,
        levels=5,  # 101 -> 51 -> 26 -> 13 -> 7
        grid=(101, 101),
        boundary=("neumann", "neumann"),
        pre_smooth=(1, 1, 1, 2, 2),
        post_smooth=(1, 1, 1, 1, 0),
        restrict="f",
        bias="conv",
        norm="group",
        skip=False,
    ),
    train=helmholtz.PRESET.train,
    paper=helmholtz.PRESET.paper,
)
