"""Helmholtz wave speed -> wave field, 101x101, Neumann boundaries."""

from mgno.nn.mgno import MgNOConfig
from mgno.presets import Preset

PRESET = Preset(
    name="helmholtz",
    description="Helmholtz (-Laplace - omega^2/c^2) u = 0, omega=1000, 101x101, Neumann",
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
    train={
        "optimizer": "adam",
        "lr": 3e-4,
        "weight_decay": 1e-5,
        "epochs": 100,
        "batch_size": 8,
        "scheduler": "onecycle",
        "scheduler_step": "epoch",
        "loss": "rel_l2",
        "normalizer_inputs": "pointwise",
        "normalizer_outputs": "pointwise",
        "grad_clip": None,
        "protocol": "steady",
    },
    paper={
        "rel_l2": 0.71e-2,
        "rel_h1": 4.02e-2,
        "parameters": 7.58e6,
        "seconds_per_epoch_a100": 15.1,
    },
)
