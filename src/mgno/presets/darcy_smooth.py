"""Darcy flow, smooth coefficient (FNO data, 421 -> 211 nodes): 5 layers."""

from mgno.nn.mgno import MgNOConfig
from mgno.presets import Preset

PRESET = Preset(
    name="darcy-smooth",
    description="Darcy flow -div(a grad u) = 1, smooth 12/3 coefficient, 211x211, Dirichlet",
    model=MgNOConfig(
        in_channels=1,
        out_channels=1,
        dim=2,
        channels=24,
        layers=5,
        levels=6,  # 211 -> 106 -> 53 -> 27 -> 14 -> 7
        grid=(211, 211),
        boundary=("dirichlet", "dirichlet"),
        pre_smooth=None,  # the paper: one step per level, two on the coarsest
        post_smooth=0,
        restrict="f",
        bias="linear",
        norm="none",
        skip=False,
    ),
    train={
        "optimizer": "adam",
        "lr": 5e-4,
        "weight_decay": 1e-4,
        "epochs": 500,
        "batch_size": 8,
        "scheduler": "onecycle",
        "scheduler_step": "epoch",
        "loss": "rel_h1_fourier",
        "normalizer_inputs": "pointwise",
        "normalizer_outputs": "pointwise",
        "grad_clip": None,
        "protocol": "steady",
    },
    paper={
        "rel_l2": 0.176e-2,
        "rel_h1": 0.576e-2,
        "parameters": 0.57e6,
        "seconds_per_epoch_a100": 6.6,
    },
)
