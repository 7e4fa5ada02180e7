"""Pickle-free checkpoints: round trips, refusals, atomic writes."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest
import torch

from mgno.errors import InputError
from mgno.train import checkpoint as ck


def _opt_and_sched():
    torch.manual_seed(0)
    m = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=10)
    for _ in range(3):
        opt.zero_grad()
        m(torch.randn(4, 3)).pow(2).sum().backward()
        opt.step()
        sched.step()
    return m, opt, sched


def test_tree_roundtrip_optimizer_scheduler(tmp_path):
    m, opt, sched = _opt_and_sched()
    tree = {
        "model": m.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "misc": {"t": (1, 2.5, None), 3: [np.arange(3)]},
    }
    ck.save_tree(tmp_path / "s.safetensors", tree)
    back = ck.load_tree(tmp_path / "s.safetensors")
    assert back["scheduler"] == sched.state_dict()
    assert back["misc"]["t"] == (1, 2.5, None)
    assert np.array_equal(back["misc"][3][0], np.arange(3))
    o = back["optimizer"]
    assert o["param_groups"] == opt.state_dict()["param_groups"]
    for k, st in opt.state_dict()["state"].items():
        for name, t in st.items():
            assert torch.equal(o["state"][k][name], t)
    # the restored states drive identical updates
    m2 = torch.nn.Linear(3, 2)
    m2.load_state_dict(back["model"])
    opt2 = torch.optim.Adam(m2.parameters(), lr=1e-3)
    sched2 = torch.optim.lr_scheduler.OneCycleLR(opt2, max_lr=1e-3, total_steps=10)
    opt2.load_state_dict(o)
    sched2.load_state_dict(back["scheduler"])
    x = torch.randn(4, 3)
    for mm, oo, ss in ((m, opt, sched), (m2, opt2, sched2)):
        oo.zero_grad()
        mm(x).pow(2).sum().backward()
        oo.step()
        ss.step()
    assert torch.equal(m.weight, m2.weight)


def test_rng_roundtrip():
    state = ck.rng_state()
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    ck.set_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a


def test_pickles_are_refused(tmp_path):
    p = tmp_path / "evil.safetensors"
    p.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(InputError, match="pickle"):
        ck.read_safetensors(p)
    z = tmp_path / "model.pt"
    torch.save({"w": torch.ones(2)}, z)
    with pytest.raises(InputError, match="never unpickles"):
        ck.read_safetensors(z)


def test_truncated_and_garbage_refused(tmp_path):
    good = tmp_path / "g.safetensors"
    ck.write_safetensors(good, {"w": torch.arange(100.0)})
    data = good.read_bytes()
    bad = tmp_path / "t.safetensors"
    for cut in (5, 20, len(data) - 7):
        bad.write_bytes(data[:cut])
        with pytest.raises(InputError, match="safetensors"):
            ck.read_safetensors(bad)
    bad.write_bytes(b"hello world, not a checkpoint")
    with pytest.raises(InputError):
        ck.read_safetensors(bad)
    with pytest.raises(FileNotFoundError):
        ck.read_safetensors(tmp_path / "missing.safetensors")
    with pytest.raises(InputError, match="mgno_kind"):
        ck.load_tree(good)

