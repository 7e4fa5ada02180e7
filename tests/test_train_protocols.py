"""Recipe options and the time-dependent protocols on tiny problems."""

from __future__ import annotations

import json

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from helpers_train import TINY_NET, make_steady, make_trajectories
from mgno.data.datasets import WindowDataset
from mgno.data.schema import read_arrays, write_trajectories
from mgno.errors import InputError
from mgno.train import TrainConfig, evaluate, train
from mgno.train.checkpoint import read_safetensors


def test_recipe_options_run(tmp_path):
    data = make_steady(tmp_path / "d.h5", n=10)
    res = train(
        data,
        tmp_path / "r",
        epochs=2,
        batch_size=4,
        optimizer="adamw",
        loss="rel_h1_fd",
        normalizer_inputs="scalar",
        normalizer_outputs="none",
        grad_clip=0.5,
        scheduler="none",
        model_overrides=TINY_NET,
        progress=False,
    )
    assert res.status == "finished" and res.epochs_done == 2
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["train"]["optimizer"] == "adamw" and cfg["train"]["grad_clip"] == 0.5
    assert cfg["normalizer"]["inputs"]["kind"] == "scalar"
    assert all(h["lr"] == 1e-3 for h in res.history)  # no scheduler


@pytest.mark.parametrize("k_max, stored", [("all", None), (3, 3)])
def test_fourier_loss_cut_reaches_the_loss(tmp_path, k_max, stored):
    data = make_steady(tmp_path / "d.h5", n=8)
    common = dict(epochs=1, batch_size=4, loss="rel_h1_fourier", scheduler="none",
                  model_overrides=TINY_NET, progress=False, val_fraction=0.25)
    cut = train(data, tmp_path / "cut", k_max=k_max, **common)
    cfg = json.loads((tmp_path / "cut" / "config.json").read_text())
    assert cfg["train"]["k_max"] == stored
    default = train(data, tmp_path / "default", **common)  # k_max 20 keeps every mode here
    same = train(data, tmp_path / "all", k_max="all", **common)
    assert same.history[0]["train_loss"] == default.history[0]["train_loss"]
    if stored == 3:
        assert cut.history[0]["train_loss"] != default.history[0]["train_loss"]
    # the same option is accepted again on --resume (the bench passes it every call)
    again = train(data, tmp_path / "cut", k_max=k_max, resume=True, **common)
    assert again.status == "finished" and again.epochs_done == 1
    with pytest.raises(InputError, match="--k-max"):
        train(data, tmp_path / "cut", k_max=5, resume=True, **common)


def test_ten_to_ten_protocol(tmp_path):
    data = make_trajectories(tmp_path / "t.h5", n=4, t=6)
    res = train(
        data,
        tmp_path / "r",
        epochs=1,
        batch_size=2,
        protocol="10-10",
        steps_in=2,
        steps_out=3,
        val_fraction=0.25,
        model_overrides=TINY_NET,
        progress=False,
    )
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["model"]["in_channels"] == 2 and cfg["model"]["out_channels"] == 1
    assert res.best_val is not None
    out = evaluate(tmp_path / "r", data)
    assert out["steps"] == 3 and len(out["rel_l2_per_step"]) == 3


def test_protocol_must_fit_the_data(tmp_path):
    steady = make_steady(tmp_path / "d.h5", n=4)
    with pytest.raises(InputError, match="steady pairs.*one-step"):
        train(steady, tmp_path / "r", protocol="one-step", progress=False)
    traj = make_trajectories(tmp_path / "t.h5", n=2, t=3)
    with pytest.raises(InputError, match="trajectories.*'steady'"):
        train(traj, tmp_path / "r", protocol="steady", progress=False)
    with pytest.raises(InputError, match="frames"):
        train(traj, tmp_path / "r", protocol="10-10", steps_in=3, progress=False)
    assert not (tmp_path / "r").exists()


def test_window_dataset_indexing():
    traj = torch.arange(2 * 5, dtype=torch.float32).view(2, 5, 1, 1, 1).expand(2, 5, 1, 2, 2)
    ds = WindowDataset(traj, 1, 1, starts=range(4))
    assert len(ds) == 8
    x, y = ds.get_batch(torch.tensor([0, 5]))
    assert x[:, 0, 0, 0, 0].tolist() == [0.0, 6.0] and y[:, 0, 0, 0, 0].tolist() == [1.0, 7.0]
    w = WindowDataset(traj, 2, 3)
    x, y = w[1]
    assert x[:, 0, 0, 0].tolist() == [5.0, 6.0] and y[:, 0, 0, 0].tolist() == [7.0, 8.0, 9.0]


def test_train_config_validation():
    with pytest.raises(InputError, match="'loss' is 'mse'"):
        TrainConfig(loss="mse")
    with pytest.raises(InputError, match="'epochs'"):
        TrainConfig(epochs=0)
    with pytest.raises(InputError, match="unknown field 'lrate'"):
        TrainConfig.from_dict({"lrate": 1})
    assert TrainConfig(k_max="all").k_max is None and TrainConfig(k_max=12).k_max == 12
    for bad in (0, -3, 2.5, "none", True):
        with pytest.raises(InputError, match="'k_max'"):
            TrainConfig(k_max=bad)
    from mgno.presets import get_preset, list_presets

    for name in list_presets():
        TrainConfig.from_dict(get_preset(name)["train"])  # every preset recipe is accepted


def test_start_frame_leaves_the_first_frames_out_everywhere(tmp_path):
    # Frame 0 of a generated Navier-Stokes file is the random initial field; the
    # paper's NS2 starts from frame 1. Poisoning frame 0 must change nothing.
    data = make_trajectories(tmp_path / "t.h5", n=4, t=6)
    poisoned = tmp_path / "p.h5"
    arrays = read_arrays(data)
    traj = arrays["trajectories"].copy()
    traj[:, 0] = 1e6
    write_trajectories(poisoned, traj, arrays["times"], pde="toy", params={},
                       boundary=["periodic"] * 2)
    common = dict(epochs=1, batch_size=4, scheduler="none", model_overrides=TINY_NET,
                  progress=False, val_fraction=0.25, start_frame=1)
    clean = train(data, tmp_path / "clean", **common)
    dirty = train(poisoned, tmp_path / "dirty", **common)
    assert clean.history[0]["train_loss"] == dirty.history[0]["train_loss"]
    assert clean.history[0]["val_rel_l2"] == dirty.history[0]["val_rel_l2"]
    res = evaluate(tmp_path / "dirty", poisoned)
    assert res["steps"] == 4  # frames 1..5: a window of one and four steps
    assert res["rel_l2_per_step"] == evaluate(tmp_path / "clean", data)["rel_l2_per_step"]
    cfg = json.loads((tmp_path / "dirty" / "config.json").read_text())
    assert cfg["train"]["start_frame"] == 1


def test_start_frame_needs_enough_frames(tmp_path):
    data = make_trajectories(tmp_path / "t.h5", n=4, t=3)
    with pytest.raises(InputError, match="3 frames, expected at least 4"):
        train(data, tmp_path / "r", epochs=1, start_frame=2, model_overrides=TINY_NET,
              progress=False)
    with pytest.raises(InputError, match="start_frame"):
        TrainConfig(start_frame=-1)


def test_predict_refuses_a_negative_start_frame(tmp_path):
    from mgno.train import predict

    data = make_trajectories(tmp_path / "t.h5", n=2, t=4)
    train(data, tmp_path / "r", epochs=1, model_overrides=TINY_NET, progress=False)
    for bad in (-1, True):
        with pytest.raises(InputError, match="--start-frame"):
            predict(tmp_path / "r", data, tmp_path / "p.h5", start_frame=bad)
    assert not (tmp_path / "p.h5").exists()
    predict(tmp_path / "r", data, tmp_path / "p.h5", start_frame=1)
    assert read_arrays(tmp_path / "p.h5")["trajectories"].shape[1] == 3


def test_navier_stokes_preset_starts_after_the_initial_field():
    from mgno.presets import get_preset

    assert TrainConfig.from_dict(get_preset("navier-stokes")["train"]).start_frame == 1


def _grad_norms_per_step(record: list) -> object:
    """A global optimiser pre-step hook recording the total gradient norm of every step."""

    def hook(opt, args, kwargs):
        grads = [p.grad.detach().flatten() for g in opt.param_groups for p in g["params"]
                 if p.grad is not None]
        record.append(float(torch.cat(grads).norm()))

    return register_optimizer_step_pre_hook(hook)


@pytest.mark.parametrize("clip", [None, 1e-3])
def test_grad_clip_bounds_the_gradient_norm_of_every_step(tmp_path, clip):
    data = make_steady(tmp_path / "d.h5", n=8)
    norms: list[float] = []
    handle = _grad_norms_per_step(norms)
    try:
        train(data, tmp_path / "r", epochs=1, batch_size=2, grad_clip=clip, scheduler="none",
              weight_decay=0.0, model_overrides=TINY_NET, progress=False)
    finally:
        handle.remove()
    assert len(norms) >= 3  # one per optimiser step
    if clip is None:
        assert max(norms) > 10 * 1e-3  # so the clipped run below has something to clip
    else:
        assert max(norms) <= 1e-3 * (1 + 1e-4)


def _weight_norm(run) -> float:
    tensors, _ = read_safetensors(run / "model.safetensors")
    return float(torch.cat([t.flatten().double() for t in tensors.values()]).norm())


def test_adamw_decays_weights_where_adam_l2_cannot(tmp_path):
    # Decoupled decay multiplies every weight by (1 - lr * wd) per step, whatever
    # the gradient; Adam's L2 term is normalised away and moves a weight by at
    # most lr per step. With lr * wd = 0.5 and 7 steps, AdamW must shrink the
    # trained weights ~100-fold (the saved file also holds fixed buffers, which
    # do not decay) while Adam keeps them near where they started.
    data = make_steady(tmp_path / "d.h5", n=8)
    common = dict(epochs=1, batch_size=1, lr=1e-2, scheduler="none", val_fraction=0.125,
                  model_overrides=TINY_NET, progress=False, seed=0)
    norms = {}
    for name, opt, wd in (("adam", "adam", 50.0), ("adamw", "adamw", 50.0),
                          ("adamw0", "adamw", 0.0)):
        train(data, tmp_path / name, optimizer=opt, weight_decay=wd, **common)
        norms[name] = _weight_norm(tmp_path / name)
    assert norms["adamw"] < 0.2 * norms["adam"]
    assert norms["adamw"] < 0.2 * norms["adamw0"]
    assert abs(norms["adam"] - norms["adamw0"]) < 0.5 * norms["adamw0"]
