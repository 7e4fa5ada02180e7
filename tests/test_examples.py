"""The scripts in examples/ run as a user would run them (tiny sizes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(script: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_own_training_loop_learns_and_reloads():
    out = _run("own_training_loop.py", "--n", "32", "--grid", "17", "--epochs", "2")
    assert "reloaded model predicts the same: True" in out
    assert out.count("test rel. L2") == 3
