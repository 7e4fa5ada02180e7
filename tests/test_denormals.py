"""Subnormal floats are flushed to zero by the commands that compute."""

from __future__ import annotations

import torch

from mgno.cli import main
from mgno.denormals import denormals_flushed, flush_denormals


def test_flush_and_probe():
    try:
        torch.set_flush_denormal(False)
        assert not denormals_flushed()
        assert flush_denormals() and denormals_flushed()
    finally:
        torch.set_flush_denormal(False)


def test_computing_verbs_flush_denormals(tmp_path, capsys, monkeypatch):
    import mgno.cli

    seen = []
    real = mgno.cli._dispatch
    monkeypatch.setattr(mgno.cli, "_dispatch",
                        lambda run, args: seen.append(denormals_flushed()) or real(run, args))
    try:
        torch.set_flush_denormal(False)
        assert main(["presets"]) == 0
        assert main(["eval", str(tmp_path / "no_run"), "--data", "x.h5"]) == 2
        assert seen == [False, True]  # flushed while a computing verb ran
        assert not denormals_flushed()  # and the caller's setting is back
    finally:
        torch.set_flush_denormal(False)
    capsys.readouterr()
