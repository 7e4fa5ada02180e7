"""Rollout-aware training for one-step protocols (--unroll, --unroll-grad, --input-noise)
and the 10 -> 10 protocol from the command line, on a tiny Navier-Stokes file.

``tests/data/ns_tiny.h5`` was written by ``mgno generate navier-stokes --n 3
--resolution 16 --param T=4 --seed 0`` (3 trajectories of 5 frames, 16x16).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import pytest
import torch

from helpers_train import TINY_NET, make_steady
from mgno.cli import main
from mgno.data.datasets import load_arrays
from mgno.data.normalize import GaussianNormalizer
from mgno.errors import InputError
from mgno.nn import build_model
from mgno.train import TrainConfig, train
from mgno.train.checkpoint import load_tree, read_safetensors
from mgno.train.losses import relative_l2
from mgno.train.noise import InputNoise
from mgno.train.rollout import Predictor
from mgno.train.run_dir import run_fingerprint
from mgno.train.task import Task

DATA = Path(__file__).parent / "data"
NS = DATA / "ns_tiny.h5"
# 2 trajectories train (4 one-step pairs each), 1 validates (a 4-step rollout)
KW = dict(epochs=2, batch_size=2, seed=0, model_overrides=TINY_NET, scheduler_step="step",
          val_fraction=0.34, progress=False)
#: (train_loss, val_rel_l2) per epoch of `train(NS, ..., **KW)` by the code before
#: these options (commit df04095), one torch thread.
BEFORE = [(1.4691452980041504, 6.081593990325928), (1.4349902868270874, 6.126702785491943)]


def _history(res) -> list[tuple[float, float]]:
    return [(h["train_loss"], h["val_rel_l2"]) for h in res.history]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return read_safetensors(run / "model.safetensors")[0]


def test_defaults_reproduce_the_training_before_the_options(tmp_path):
    plain = train(NS, tmp_path / "plain", **KW)
    given = train(NS, tmp_path / "given", unroll=1, unroll_grad="last", input_noise=0.0, **KW)
    assert _history(given) == _history(plain)  # bit for bit
    a, b = _weights(tmp_path / "plain"), _weights(tmp_path / "given")
    assert all(torch.equal(a[k], b[k]) for k in a)
    # the numbers of the code before the options (equal bit for bit on the machine that
    # recorded them; the tolerance only absorbs another CPU's kernels)
    for got, want in zip(_history(plain), BEFORE, strict=True):
        assert got == pytest.approx(want, rel=1e-6, abs=0)
    cfg = json.loads((tmp_path / "given" / "config.json").read_text())
    assert {k: cfg["train"][k] for k in ("unroll", "unroll_grad", "input_noise")} == {
        "unroll": 1, "unroll_grad": "last", "input_noise": 0.0}


def test_unroll_trains_on_windows_and_changes_the_loss(tmp_path):
    task = Task("trajectory", "one-step", unroll=3)
    view = task.train_view(load_arrays(NS))  # 4 pairs per trajectory -> 2 windows of 3 steps
    assert len(view) == 3 * 2
    x, y = view.get_batch(torch.tensor([0, 1]))
    assert x.shape == (2, 1, 1, 16, 16) and y.shape == (2, 3, 1, 16, 16)
    traj = load_arrays(NS).arrays["trajectories"]
    assert torch.equal(x[1, 0], traj[0, 1]) and torch.equal(y[1], traj[0, 2:5])
    base = train(NS, tmp_path / "one", **KW)
    for grad in ("last", "all"):
        res = train(NS, tmp_path / grad, unroll=2, unroll_grad=grad, **KW)
        assert res.history[0]["train_loss"] != base.history[0]["train_loss"]
        cfg = json.loads((tmp_path / grad / "config.json").read_text())
        assert (cfg["train"]["unroll"], cfg["train"]["unroll_grad"]) == (2, grad)


def _tiny_predictor(seed: int) -> Predictor:
    torch.manual_seed(seed)
    net = build_model({"model": "mgno", "in_channels": 1, "out_channels": 1, "dim": 2,
                       "channels": 4, "layers": 2, "levels": 2, "boundary": "periodic",
                       "bias": "conv", "norm": "group", "skip": True}).double()
    none = GaussianNormalizer("none")
    return Predictor(net, none, none, "trajectory").double()


def _grads(model) -> list[torch.Tensor]:
    return [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("k, seed", [(2, 0), (3, 1), (4, 2)])
def test_pushforward_gradients_flow_through_the_last_step_only(k, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 1, 1, 16, 16, generator=gen, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, k, 1, 16, 16, generator=gen, dtype=torch.float64)
    model = _tiny_predictor(seed)
    graded = []
    real_step = Predictor.step

    def step(self, window):
        graded.append(torch.is_grad_enabled())
        return real_step(self, window)

    Predictor.step = step
    try:
        Task("trajectory", "one-step", unroll=k).loss(model, relative_l2, x, y).backward()
        last = _grads(model)
        assert graded == [False] * (k - 1) + [True]  # one application keeps a graph
        assert x.grad is None or not x.grad.any()  # nothing reaches the input frame
        # the same gradient as a one-step loss from the detached (k-1)-step prediction
        model.zero_grad()
        with torch.no_grad():
            start = model(x, k - 1)[:, -1:]
        relative_l2(model(start, 1).flatten(1, 2), y[:, -1]).backward()
        for a, b in zip(last, _grads(model), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        model.zero_grad()
        graded.clear()
        Task("trajectory", "one-step", unroll=k, unroll_grad="all").loss(
            model, relative_l2, x, y).backward()
        assert graded == [True] * k
    finally:
        Predictor.step = real_step
    assert x.grad is not None and x.grad.abs().sum() > 0  # full backprop reaches frame t
    assert any(not torch.allclose(a, b) for a, b in zip(last, _grads(model), strict=True))


def test_input_noise_is_scaled_seeded_and_training_only(tmp_path):
    frames = load_arrays(NS).arrays["trajectories"].flatten(0, 1)
    noise = InputNoise.fit(frames, 0.5, seed=3)
    assert InputNoise.fit(frames, 0.0, seed=3) is None
    std = frames.double().std(unbiased=False).item()
    assert noise.std.shape == (1,) and noise.std.item() == pytest.approx(std, rel=1e-5)
    x = torch.zeros(3, 1, 1, 64, 64)
    idx = torch.tensor([5, 6, 7])
    noisy = noise(x, idx, epoch=2)
    assert noisy.std().item() == pytest.approx(0.5 * std, rel=0.05)
    # per sample: the same draws whatever the batch, another epoch or seed differs
    assert torch.equal(noise(x[1:2], idx[1:2], epoch=2), noisy[1:2])
    assert not torch.equal(noise(x, idx, epoch=3), noisy)
    assert not torch.equal(InputNoise.fit(frames, 0.5, seed=4)(x, idx, 2), noisy)
    base = train(NS, tmp_path / "base", **KW)
    seen = []
    real_call = InputNoise.__call__

    def record(self, x, idx, epoch):
        seen.extend((epoch, int(i)) for i in idx)
        return real_call(self, x, idx, epoch)

    InputNoise.__call__ = record
    try:
        res = train(NS, tmp_path / "noisy", input_noise=0.1, **KW)
    finally:
        InputNoise.__call__ = real_call
    assert sorted(seen) == [(e, i) for e in (0, 1) for i in range(8)]  # every pair, each epoch
    assert res.history[0]["train_loss"] != base.history[0]["train_loss"]
    res = train(NS, tmp_path / "noisy1", input_noise=0.1, **dict(KW, epochs=1))
    # validation sees clean frames: the 4-step rollout of the held-out trajectory
    # from its true first frame, scored with the run's (epoch 1) weights
    from mgno.train import load_run

    traj = load_arrays(NS).arrays["trajectories"][2:]
    with torch.no_grad():
        pred = load_run(tmp_path / "noisy1", device="cpu").predictor(traj[:, :1], 4)
    clean = relative_l2(pred.flatten(1, 2), traj[:, 1:].flatten(1, 2)).item()
    assert res.history[0]["val_rel_l2"] == pytest.approx(clean, rel=1e-6)


def _interrupt_at(call: int):
    calls = {"n": 0}
    real = Task.loss

    def loss(*a, **k):
        calls["n"] += 1
        if calls["n"] == call:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*a, **k)

    return loss, real


@pytest.mark.parametrize("options, call, stopped_at", [
    # 2 training trajectories: 3 windows of 2 steps each (3 batches per epoch) ...
    (dict(unroll=2, input_noise=0.05), 5, (1, 2)),
    # ... or 2 windows of 3 steps (2 batches per epoch)
    (dict(unroll=3, unroll_grad="all", input_noise=0.2), 3, (1, 1)),
])
def test_resume_across_a_stop_is_bit_identical(tmp_path, options, call, stopped_at):
    kw = dict(KW, epochs=3, **options)
    full = train(NS, tmp_path / "full", **kw)
    loss, real = _interrupt_at(call)  # SIGTERM in the middle of epoch 2
    Task.loss = loss
    try:
        first = train(NS, tmp_path / "part", **kw)
    finally:
        Task.loss = real
    assert first.status == "interrupted"
    counters = load_tree(tmp_path / "part" / "checkpoint.safetensors")["counters"]
    assert (counters["epoch"], counters["step"]) == stopped_at
    second = train(NS, tmp_path / "part", resume=True, **kw)
    assert _history(second) == _history(full)
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "part")
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("options, match", [
    (dict(unroll=0), "'unroll' is 0, expected an integer >= 1"),
    (dict(unroll=2.5), "'unroll' is 2.5"),
    (dict(unroll=5), "--unroll: 5 steps do not fit .*expected at most 4"),
    (dict(unroll=3, train_steps=2), "--unroll: 3 steps do not fit .*expected at most 2"),
    (dict(unroll=2, protocol="10-10", steps_in=2, steps_out=2), "--unroll: 2 .*'10-10'"),
    (dict(unroll_grad="some"), "'unroll_grad' is 'some', expected one of last, all"),
    (dict(input_noise=float("nan")), "'input_noise' is nan, expected a finite number"),
    (dict(input_noise=-0.1), "'input_noise' is -0.1, expected a number >= 0"),
    (dict(input_noise="0.1"), "'input_noise' is '0.1'"),
])
def test_bad_values_are_one_line_errors_naming_the_option(tmp_path, options, match):
    with pytest.raises(InputError, match=match) as err:
        train(NS, tmp_path / "r", **{**KW, **options})
    assert "\n" not in str(err.value)
    assert not (tmp_path / "r").exists()


def test_steady_data_refuse_unroll_and_noise(tmp_path):
    steady = make_steady(tmp_path / "d.h5", n=4)
    for options, match in ((dict(unroll=2), "--unroll: 2 .*steady pairs"),
                           (dict(input_noise=0.1), "--input-noise: 0.1 .*steady pairs")):
        with pytest.raises(InputError, match=match):
            train(steady, tmp_path / "r", **{**KW, **options})
    assert not (tmp_path / "r").exists()


def test_a_run_older_than_the_options_loads_and_resumes(tmp_path):
    run = tmp_path / "old_run"
    shutil.copytree(DATA / "old_run", run)
    cfg = json.loads((run / "config.json").read_text())
    assert "unroll" not in cfg["train"]
    assert TrainConfig.from_dict(cfg["train"]).unroll == 1
    newer = json.loads(json.dumps(cfg))
    newer["train"].update(unroll=1, unroll_grad="last", input_noise=0.0)
    assert run_fingerprint(newer) == run_fingerprint(cfg)
    newer["train"]["unroll"] = 2
    assert run_fingerprint(newer) != run_fingerprint(cfg)
    old_kw = dict(batch_size=2, seed=0, val_fraction=0.34, progress=False,
                  model_overrides={"channels": 2, "layers": 1, "levels": 2})
    with pytest.raises(InputError, match="--unroll: 2 differs from 1"):
        train(DATA / "old_run_train.h5", run, epochs=3, resume=True, unroll=2, **old_kw)
    done = train(DATA / "old_run_train.h5", run, epochs=3, resume=True, unroll=1,
                 input_noise=0.0, **old_kw)  # the defaults, given as the bench gives them
    assert done.status == "finished" and done.epochs_done == 3


def _cli(*args: str) -> int:
    return main([*args, "--threads", "1"])


def test_cli_records_the_options_and_refuses_bad_ones(tmp_path, capsys):
    tiny = ["--channels", "4", "--layers", "1", "--levels", "2", "--quiet", "--epochs", "1",
            "--batch-size", "2"]
    out = tmp_path / "run"
    assert _cli("train", "--data", str(NS), "--out", str(out), *tiny, "--unroll", "2",
                "--unroll-grad", "all", "--input-noise", "0.05") == 0
    cfg = json.loads((out / "config.json").read_text())["train"]
    assert (cfg["unroll"], cfg["unroll_grad"], cfg["input_noise"]) == (2, "all", 0.05)
    capsys.readouterr()
    for bad, word in ((["--unroll", "0"], "'unroll'"), (["--unroll", "9"], "--unroll"),
                      (["--input-noise", "nan"], "'input_noise'"),
                      (["--input-noise", "-1"], "'input_noise'")):
        assert _cli("train", "--data", str(NS), "--out", str(tmp_path / "bad"), *tiny,
                    *bad) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("mgno: error:") and word in err and "\n" not in err
        assert not (tmp_path / "bad").exists()


def test_cli_ten_to_ten_protocol_trains_and_evaluates(tmp_path, capsys):
    # the paper's 10 -> 10 as 2 -> 2 on 5 frames: frames 1, 2 in, 3, 4 out (start frame 1)
    out = tmp_path / "run"
    assert _cli("train", "--data", str(NS), "--out", str(out), "--protocol", "10-10",
                "--steps-in", "2", "--steps-out", "2", "--start-frame", "1", "--epochs", "1",
                "--batch-size", "2", "--channels", "4", "--layers", "1", "--levels", "2",
                "--quiet") == 0
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["train"]["protocol"], cfg["train"]["steps_in"], cfg["train"]["steps_out"]) == (
        "10-10", 2, 2)
    assert (cfg["model"]["in_channels"], cfg["model"]["out_channels"]) == (2, 1)
    capsys.readouterr()
    assert _cli("eval", str(out), "--data", str(NS), "--json") == 0
    res = json.loads(capsys.readouterr().out)
    assert res["steps"] == 2 and len(res["rel_l2_per_step"]) == 2 and res["n_samples"] == 3
    # rel_l2 is the relative L2 over both output frames together, per trajectory
    traj = load_arrays(NS).arrays["trajectories"]
    from mgno.train import load_run

    run = load_run(out, device="cpu")
    with torch.no_grad():
        pred = run.predictor(traj[:, 1:3], 2)
    want = relative_l2(pred.flatten(1, 2), traj[:, 3:5].flatten(1, 2), reduce=False).mean()
    assert res["rel_l2"] == pytest.approx(float(want), rel=1e-5)
