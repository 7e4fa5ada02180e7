"""mgno export: the exported graph (normalisers folded in) agrees with PyTorch on two grids."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from helpers_train import TINY_NET, make_steady, make_trajectories
from mgno.errors import InputError
from mgno.export import PARITY_TOLERANCE, export_run
from mgno.presets import list_presets
from mgno.train import load_run, train

onnxruntime = pytest.importorskip("onnxruntime")
SCALAR = {"normalizer_inputs": "scalar", "normalizer_outputs": "scalar"}


def _run(tmp_path, name, data=None, net=TINY_NET, **kw):
    data = data or make_steady(tmp_path / f"{name}.h5", n=12, grid=17)
    out = tmp_path / name
    train(data, out, model_overrides=dict(net), epochs=1, batch_size=4, progress=False, **kw)
    return out


@pytest.fixture(scope="module")
def scalar_run(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("export"), "scalar", **SCALAR)


def test_onnx_maps_raw_inputs_to_raw_outputs_on_two_grids(scalar_run, tmp_path):
    out = tmp_path / "m.onnx"
    report = export_run(scalar_run, out)
    assert report.dynamic_axes == ["batch", "n0", "n1"] and report.grid == "resample"
    assert set(report.parity) == {"17x17", "13x13"}
    assert max(report.parity.values()) <= PARITY_TOLERANCE
    # independently of the report: onnxruntime against the run's own predictor
    run = load_run(scalar_run, device="cpu")
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = torch.rand(3, 1, 21, 19, generator=torch.Generator().manual_seed(5)) * 3 + 1
    with torch.no_grad():  # the predictor's own resample strategy on another grid
        ref = run.predictor(x).numpy()
    got = session.run(None, {"x": x.numpy()})[0]
    assert np.abs(got - ref).max() <= PARITY_TOLERANCE * np.abs(ref).max()


def test_pointwise_normaliser_on_any_grid_and_the_fixed_grid_export(tmp_path):
    run = _run(tmp_path, "pointwise", normalizer_inputs="pointwise", normalizer_outputs="pointwise")
    report = export_run(run, tmp_path / "m.onnx")
    assert report.dynamic_axes == ["batch", "n0", "n1"]
    assert max(report.parity.values()) <= PARITY_TOLERANCE
    fixed = export_run(run, tmp_path / "f.onnx", grid="fixed")
    assert fixed.grid == "fixed" and fixed.dynamic_axes == ["batch"]
    assert list(fixed.parity) == ["17x17"] and fixed.parity["17x17"] <= PARITY_TOLERANCE


def test_trajectory_run_exports_one_step(tmp_path):
    data = make_trajectories(tmp_path / "t.h5", n=4, t=6, grid=16)
    run = _run(tmp_path, "traj", data=data, protocol="10-10", steps_in=2, steps_out=2, **SCALAR)
    report = export_run(run, tmp_path / "t.pt2", fmt="pt2")
    assert report.input_shape[1:3] == [2, 1]  # a window of 2 frames of 1 channel
    assert max(report.parity.values()) <= PARITY_TOLERANCE


def test_refusals_are_one_line_input_errors(scalar_run, tmp_path):
    out = tmp_path / "exists.onnx"
    out.write_bytes(b"keep me")
    with pytest.raises(InputError, match="exists; expected another --out, or --force"):
        export_run(scalar_run, out)
    assert out.read_bytes() == b"keep me"
    with pytest.raises(InputError, match="unknown format"):
        export_run(scalar_run, tmp_path / "x.bin", fmt="tflite")
    fno = _run(tmp_path, "fno", model="fno", net={"width": 4, "modes": 3, "layers": 1})
    with pytest.raises(InputError, match="complex tensors"):
        export_run(fno, tmp_path / "f.onnx")


def test_cli_export_missing_run_is_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mgno.cli", "export", str(tmp_path / "nope"),
                           "--out", str(tmp_path / "m.onnx")], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("mgno: error:") and not (tmp_path / "m.onnx").exists()


@pytest.mark.slow
@pytest.mark.parametrize("preset", list_presets())
def test_every_mgno_preset_exports_with_parity(tmp_path, preset):
    # each preset's own network (channels, layers, levels, boundary, norm), on a
    # small grid; the NS preset is also exported with its coordinate channels
    from mgno.presets import get_preset

    model = get_preset(preset)["model"]
    if preset == "navier-stokes":
        data = make_trajectories(tmp_path / "d.h5", n=2, t=3, grid=32)
        extra = {"positional": "coords"}
    else:
        data = make_steady(tmp_path / "d.h5", n=2, grid=33, cin=model["in_channels"])
        extra = {}
    out = tmp_path / "run"
    train(data, out, preset=preset, epochs=1, batch_size=2, progress=False,
          model_overrides=extra)
    report = export_run(out, tmp_path / "m.onnx")
    assert report.dynamic_axes[1:] == ["n0", "n1"]
    assert len(report.parity) == 2 and max(report.parity.values()) <= PARITY_TOLERANCE
