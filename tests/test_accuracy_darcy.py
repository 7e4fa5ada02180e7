"""Deterministic accuracy check: MgNO learns a small Darcy problem (fixed seeds and epochs).

Not a timing test. Measured on the reference machine (2 CPU cores, torch 2.13,
one thread): test rel. L2 0.065 after 20 epochs; the threshold leaves a wide
margin for other BLAS builds. Predicting the training mean gives about 0.25.
"""

from __future__ import annotations

import numpy as np

from mgno.data.schema import write_steady
from mgno.train import evaluate, train

RESOLUTION = 17
N_TRAIN, N_TEST = 128, 32
THRESHOLD = 0.10


def test_mgno_reaches_threshold_on_small_darcy(tmp_path):
    from mgno.pde.darcy import generate_darcy

    d = generate_darcy([np.random.default_rng([0, i]) for i in range(N_TRAIN + N_TEST)], RESOLUTION)
    kw = dict(pde="darcy", params={"variant": "smooth"}, boundary="dirichlet")
    write_steady(tmp_path / "train.h5", d["inputs"][:N_TRAIN], d["outputs"][:N_TRAIN], **kw)
    write_steady(tmp_path / "test.h5", d["inputs"][N_TRAIN:], d["outputs"][N_TRAIN:], **kw)
    result = train(
        tmp_path / "train.h5",
        tmp_path / "run",
        epochs=20,
        batch_size=8,
        lr=2e-3,
        scheduler_step="step",
        val_fraction=0.0,
        seed=0,
        progress=False,
        model_overrides={"channels": 16, "layers": 3},
    )
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < 0.5 * losses[0]
    res = evaluate(tmp_path / "run", tmp_path / "test.h5", device="cpu")
    assert res["rel_l2"] < THRESHOLD, res
