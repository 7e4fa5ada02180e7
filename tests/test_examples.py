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
    out = _run("own_training_loop.py", "--n", "16", "--grid", "17", "--epochs", "1")
    assert "reloaded model predicts the same: True" in out
    assert out.count("test rel. L2") == 2


def test_predict_numpy_on_a_run_directory():
    run = Path(__file__).resolve().parent / "data" / "old_run"
    out = _run("predict_numpy.py", str(run))
    assert "mgno trained on the grid 8x8" in out
    assert "predictions (2, 1, 8, 8)" in out and "on another grid [12, 12]" in out


def test_predict_arrays_matches_the_predictor_and_refuses_wrong_axes():
    import numpy as np
    import pytest
    import torch

    from mgno.errors import InputError
    from mgno.train import load_run

    run = load_run(Path(__file__).resolve().parent / "data" / "old_run", device="cpu")
    x = np.random.default_rng(0).random((5, 1, 8, 8), dtype=np.float32)
    with torch.no_grad():
        ref = run.predictor(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(run.predict_arrays(x, batch_size=2), ref, rtol=1e-5, atol=1e-6)
    with pytest.raises(InputError, match="expected 4"):
        run.predict_arrays(x[0])
