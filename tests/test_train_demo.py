"""`mgno demo` end to end on a miniature of its embedded default."""

from __future__ import annotations

from pathlib import Path

import torch

from mgno.demo import run_demo

MINI = dict(resolution=9, n_train=16, n_test=4, epochs=1, channels=4, layers=1)


def test_demo_miniature(tmp_path, capsys):
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = run_demo(tmp_path, seed=0, **MINI)
        out = capsys.readouterr().out
        # a second call reuses the data and trains into a new run folder
        res2 = run_demo(tmp_path, seed=0, **MINI)
    finally:
        torch.set_num_threads(old)
    assert "test rel. L2" in out and "plot:" in out
    assert all(Path(f).is_file() for f in res["figures"])
    assert res["rel_l2"] > 0
    assert res2["run_dir"] != res["run_dir"]
    assert res2["rel_l2"] == res["rel_l2"]
