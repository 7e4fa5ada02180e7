"""Two gloo processes under torchrun agree with one process on the same global batch."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest
import torch

from helpers_train import make_steady
from mgno.cli import main
from mgno.train.checkpoint import read_safetensors

ARGS = [
    "--epochs",
    "3",
    "--batch-size",
    "4",
    "--channels",
    "4",
    "--layers",
    "1",
    "--levels",
    "2",
    "--val-fraction",
    "0.2",
    "--seed",
    "5",
    "--scheduler-step",
    "step",
    "--quiet",
    "--device",
    "cpu",
]


#: The data-parallel run also logs to TensorBoard (numerically neutral), when installed;
#: under torchrun the option is spelt --logger (torchrun's parser stops at --log).
LOG = ["--logger", "tensorboard", "--log-images-every", "1"] if importlib.util.find_spec(
    "tensorboard") else []


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")
def test_two_processes_match_one(tmp_path):
    data = make_steady(tmp_path / "d.h5", n=20)
    env = dict(os.environ, OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")
    env.pop("WORLD_SIZE", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "mgno.cli",
            "train",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "ddp"),
            *ARGS,
            *LOG,
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    if LOG:  # rank 0 alone logs: one event file
        assert len(list((tmp_path / "ddp" / "tensorboard").iterdir())) == 1
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(["train", "--data", str(data), "--out", str(tmp_path / "one"), *ARGS]) == 0
    finally:
        torch.set_num_threads(old)

    def history(run):
        return [json.loads(x) for x in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]

    ddp, one = history("ddp"), history("one")
    assert len(ddp) == len(one) == 3
    for a, b in zip(ddp, one, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-5)
        assert a["val_rel_l2"] == pytest.approx(b["val_rel_l2"], abs=1e-5)
        assert a["lr"] == b["lr"]
    wa, _ = read_safetensors(tmp_path / "ddp" / "model.safetensors")
    wb, _ = read_safetensors(tmp_path / "one" / "model.safetensors")
    for k in wa:
        assert torch.allclose(wa[k], wb[k], atol=1e-5), k
    assert json.loads((tmp_path / "ddp" / "config.json").read_text())["world_size"] == 2
    # rank 0 alone wrote: no stray temporary files
    assert not [p for p in (tmp_path / "ddp").iterdir() if p.name.endswith(".tmp")]
