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


def test_computing_verbs_flush_denormals(tmp_path, capsys):
    try:
        torch.set_flush_denormal(False)
        assert main(["presets"]) == 0 and not denormals_flushed()
        assert main(["eval", str(tmp_path / "no_run"), "--data", "x.h5"]) == 2
        assert denormals_flushed()
    finally:
        torch.set_flush_denormal(False)
    capsys.readouterr()
