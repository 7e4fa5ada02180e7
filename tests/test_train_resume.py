"""Exact resume, signals and divergence of the training loop."""

from __future__ import annotations

import os
import signal

import pytest
import torch

from helpers_train import TINY_NET, make_steady, make_trajectories
from mgno.train import TrainingDiverged, train
from mgno.train.checkpoint import load_tree, read_safetensors
from mgno.train.task import Task

KW = dict(
    batch_size=4, model_overrides=TINY_NET, progress=False, scheduler_step="step", val_fraction=0.25
)


def _losses(history):
    return [(h["epoch"], h["train_loss"], h.get("val_rel_l2"), h["lr"]) for h in history]


def test_resume_equals_uninterrupted_run(tmp_path):
    data = make_steady(tmp_path / "d.h5", n=16)  # 12 train (3 steps), 4 validation
    full = train(data, tmp_path / "full", epochs=4, **KW)
    # stop after 2 of 4 epochs by sending SIGINT at the start of epoch 3's first step
    calls = {"n": 0}
    real = Task.loss

    def interrupt_in_epoch_3(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2 * 3:  # last step of epoch 2: stop at the epoch boundary
            os.kill(os.getpid(), signal.SIGINT)
        return real(*a, **k)

    Task.loss = interrupt_in_epoch_3
    try:
        first = train(data, tmp_path / "part", epochs=4, **KW)
    finally:
        Task.loss = real
    assert first.status == "interrupted" and first.epochs_done == 2
    second = train(data, tmp_path / "part", epochs=4, resume=True, **KW)
    assert second.status == "finished"
    assert _losses(second.history) == _losses(full.history)  # bit for bit
    a, _ = read_safetensors(tmp_path / "full" / "model.safetensors")
    b, _ = read_safetensors(tmp_path / "part" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    lines = (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 4


def test_mid_epoch_signal_resumes_exactly(tmp_path):
    data = make_trajectories(tmp_path / "t.h5", n=5, t=4)  # one-step pairs: 4*3 train samples
    kw = dict(KW, batch_size=4, protocol="one-step", steps_out=3)
    full = train(data, tmp_path / "full", epochs=3, **kw)
    calls = {"n": 0}
    real = Task.loss

    def interrupt(*a, **k):
        calls["n"] += 1
        if calls["n"] == 5:  # second step of epoch 2
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*a, **k)

    Task.loss = interrupt
    try:
        first = train(data, tmp_path / "part", epochs=3, **kw)
    finally:
        Task.loss = real
    assert first.status == "interrupted"
    counters = load_tree(tmp_path / "part" / "checkpoint.safetensors")["counters"]
    assert (counters["epoch"], counters["step"]) == (1, 2)
    second = train(data, tmp_path / "part", epochs=3, resume=True, **kw)
    assert _losses(second.history) == _losses(full.history)


def test_nan_loss_stops_and_keeps_last_checkpoint(tmp_path):
    data = make_steady(tmp_path / "d.h5", n=16)
    calls = {"n": 0}
    real = Task.loss

    def nan_in_epoch_2(*a, **k):
        calls["n"] += 1
        loss = real(*a, **k)
        return loss * float("nan") if calls["n"] == 5 else loss

    Task.loss = nan_in_epoch_2
    try:
        with pytest.raises(TrainingDiverged, match="epoch 2, step 2.*last good checkpoint"):
            train(data, tmp_path / "run", epochs=4, **KW)
    finally:
        Task.loss = real
    counters = load_tree(tmp_path / "run" / "checkpoint.safetensors")["counters"]
    assert counters["epoch"] == 1
    weights, _ = read_safetensors(tmp_path / "run" / "model.safetensors")
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_same_seed_same_numbers_other_seed_differs(tmp_path):
    data = make_steady(tmp_path / "d.h5", n=10)
    a = train(data, tmp_path / "a", epochs=2, seed=3, **KW)
    b = train(data, tmp_path / "b", epochs=2, seed=3, **KW)
    c = train(data, tmp_path / "c", epochs=2, seed=4, **KW)
    assert _losses(a.history) == _losses(b.history)
    assert _losses(a.history) != _losses(c.history)
