"""Pipe flow (Geo-FNO): deformed-mesh coordinates -> horizontal velocity, 129x129."""

PRESET = {
    "name": "pipe",
    "description": "Pipe flow (Geo-FNO): mesh coordinates (x, y) -> horizontal velocity, 129x129",
    "model": {
        "model": "mgno",
        "in_channels": 2,
        "out_channels": 1,
        "dim": 2,
        "channels": 32,
        "layers": 5,
        "levels": 6,  # 129 -> 65 -> 33 -> 17 -> 9 -> 5
        "grid": [129, 129],
        "boundary": ["dirichlet", "dirichlet"],
        "pre_smooth": None,  # the paper: one step per level, two on the coarsest
        "post_smooth": 0,
        "restrict": "f",
        "bias": "linear",
        "norm": "none",
        "skip": False,
    },
    "train": {
        "optimizer": "adam",
        "lr": 3e-4,
        "weight_decay": 1e-4,
        "epochs": 500,
        "batch_size": 8,
        "scheduler": "onecycle",
        "scheduler_step": "epoch",
        "loss": "rel_l2",
        "normalizer_inputs": "pointwise",
        "normalizer_outputs": "pointwise",
        "grad_clip": None,
        "protocol": "steady",
    },
    "paper": {"rel_l2": 0.24e-2, "parameters": 2.89e6, "seconds_per_epoch_a100": 6.4},
}
