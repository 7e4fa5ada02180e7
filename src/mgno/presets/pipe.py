"""Pipe flow (Geo-FNO): deformed-mesh coordinates -> horizontal velocity, 129x129."""

from mgno.presets import Preset, darcy_smooth

PRESET = Preset(
    name="pipe",
    description="Pipe flow (Geo-FNO): mesh coordinates (x, y) -> horizontal velocity, 129x129",
    # The Darcy network (linear bias, Dirichlet padding) at width 32 on the mesh
    # coordinates: 129 -> 65 -> 33 -> 17 -> 9 -> 5.
    model=darcy_smooth.PRESET.model.replace(in_channels=2, channels=32, grid=(129, 129)),
    train=dict(darcy_smooth.PRESET.train, lr=3e-4, loss="rel_l2"),
    paper={"rel_l2": 0.24e-2, "parameters": 2.89e6, "seconds_per_epoch_a100": 6.4},
)
