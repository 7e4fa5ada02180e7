"""``mgno predict --estimate / --refine`` end to end on a tiny Darcy run (issue 15).

A tiny MgNO trained two epochs on 17 x 17 Darcy data (solved on 33 x 33 and
subsampled, as ``mgno generate`` does) predicts a test set; the estimate adds
residuals, indicators, estimates and flags, the calibration is fitted on the
run's validation split and cached, refinement reaches its tolerance. Every
refusal is exit 2 (a refinement that stops short: 3) with one ``mgno: error:``
line, and writes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from helpers_cli import one_error_line as _one_error_line
from helpers_cli import run_cli as _cli
from helpers_train import TINY_NET, make_steady, make_trajectories
from mgno.data.equation import rebuild_equation
from mgno.data.generate import generate_dataset
from mgno.data.schema import CHECK_DATASETS, open_dataset, read_arrays, write_steady
from mgno.train import calibrate, predict, prediction_checks, train
from mgno.train.hybrid import Calibration, fit_calibration, refine, relative_errors


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("checks")
    data = generate_dataset("darcy", 12, 17, 0, tmp / "train.h5", progress=False)
    test = generate_dataset("darcy", 4, 17, 1, tmp / "test.h5", progress=False)
    run = tmp / "run"
    train(data, run, epochs=2, batch_size=4, seed=0, model_overrides=dict(TINY_NET),
          progress=False, val_fraction=0.25, device="cpu")
    return {"tmp": tmp, "data": data, "test": test, "run": run}




def _predict(made, out: Path, *extra) -> list:
    return ["predict", made["run"], "--input", made["test"], "--out", out, "--device", "cpu",
            *extra]


def test_estimate_and_refine_through_the_cli(made, tmp_path, capsys):
    out = tmp_path / "pred.h5"
    rc, stdout, err = _cli(_predict(made, out, "--estimate", "--refine", "1e-6", "--json"),
                           capsys)
    assert rc == 0, err
    report = json.loads(stdout)
    assert report["out"] == str(out) and report["n_samples"] == 4
    assert report["iterations"]["max"] >= 1 and report["refine_residual"]["max"] <= 1e-6
    assert "train.h5 [9:12]" in report["calibration"]  # the run's validation split
    assert (made["run"] / "calibration.json").is_file()
    with h5py.File(out, "r") as f:
        assert set(CHECK_DATASETS) <= set(f.keys())
        assert f["outputs"].dtype == np.float64  # float32 would undo the refinement
        assert f["error_flag"].dtype == np.uint8
        record = json.loads(f.attrs["checks"])
    assert record["refine"]["tol"] == 1e-6 and record["estimate"]["n_samples"] == 3
    # the refined fields satisfy the test data's equation to the tolerance
    arr = read_arrays(out, dtype=np.float64)
    eq = rebuild_equation(open_dataset(made["test"]), arr["inputs"])
    assert float(eq.relative_residual(torch.from_numpy(arr["outputs"][:, 0])).max()) <= 1e-6
    rc, stdout, err = _cli(_predict(made, tmp_path / "p2.h5", "--estimate"), capsys)
    assert rc == 0, err
    assert "estimate: 4 samples" in stdout and "cached in" in stdout


def test_residuals_and_estimates_in_the_file_match_a_recomputation(made, tmp_path):
    out = predict(made["run"], made["test"], tmp_path / "p.h5", device="cpu", estimate=True)
    arr = read_arrays(out, dtype=np.float64)
    truth = read_arrays(made["test"], dtype=np.float64)["outputs"]
    with h5py.File(out, "r") as f:
        res, ind = f["residual"][...], f["error_indicator"][...]
        est, flag = f["error_estimate"][...], f["error_flag"][...]
    eq = rebuild_equation(open_dataset(made["test"]), arr["inputs"])
    u = torch.from_numpy(arr["outputs"][:, 0])
    np.testing.assert_allclose(res, eq.relative_residual(u).numpy(), rtol=1e-6)
    np.testing.assert_allclose(ind, eq.distance(u).numpy(), rtol=1e-6)
    cal = calibrate(made["run"], device="cpu")
    np.testing.assert_allclose(est, cal.estimate(ind), rtol=1e-12)
    assert np.array_equal(flag.astype(bool), est > cal.flag_threshold)
    # the raw outputs are the plain prediction, and the estimate is of the right size
    plain = predict(made["run"], made["test"], tmp_path / "plain.h5", device="cpu")
    assert np.array_equal(read_arrays(plain)["outputs"], read_arrays(out)["outputs"])
    true = relative_errors(arr["outputs"], truth)
    assert np.all(est < 3 * true) and np.all(est > true / 3)
    checks = prediction_checks(out)
    assert checks["flagged"] == int(flag.sum()) and "iterations" not in checks
    assert prediction_checks(plain) == {}


def test_refinement_from_predictions_takes_no_more_iterations_than_from_zero(made):
    arr = read_arrays(made["test"], dtype=np.float64)
    from mgno.train import load_run

    run = load_run(made["run"], device="cpu")
    pred = run.predict_arrays(arr["inputs"])
    eq = rebuild_equation(open_dataset(made["test"]), arr["inputs"])
    for tol in (1e-4, 1e-6):
        warm, cold = refine(eq, pred, tol), refine(eq, None, tol)
        assert warm.converged.all() and cold.converged.all()
        assert np.all(warm.iterations <= cold.iterations), (tol, warm.iterations,
                                                            cold.iterations)
        assert np.all(warm.residual <= tol)
    exact = refine(eq, None, 1e-12).outputs
    assert refine(eq, exact, 1e-8).iterations.tolist() == [0] * 4


def test_a_calibration_of_other_weights_is_refitted(made, tmp_path):
    path = made["run"] / "calibration.json"
    calibrate(made["run"], device="cpu")
    record = json.loads(path.read_text())
    record["weights_sha256"] = "0" * 64
    record["floor_sq"] = 123.0
    path.write_text(json.dumps(record))
    predict(made["run"], made["test"], tmp_path / "p.h5", device="cpu", estimate=True)
    assert json.loads(path.read_text())["floor_sq"] != 123.0


def test_calibration_maps_indicators_far_above_the_floor_to_themselves():
    t = np.array([0.010, 0.012, 0.011, 0.020])
    d = np.sqrt(t**2 + 0.005**2)  # a floor of 0.005 beside the true error
    cal = fit_calibration(t, d, np.ones(4), {"path": "x"}, "h")
    np.testing.assert_allclose(cal.estimate(d), t, rtol=0.15)
    np.testing.assert_allclose(cal.estimate(np.array([1.0])), [1.0], rtol=1e-3)
    assert cal.flag_threshold == pytest.approx(3 * np.median(t))
    again = Calibration.from_dict(json.loads(json.dumps(cal.to_dict())), "x")
    assert again == cal


# --------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("tol", ["0", "1", "-1e-3", "1.5", "nan", "inf", "abc"])
def test_a_tolerance_outside_0_1_is_refused_in_one_line(made, tmp_path, capsys, tol):
    out = tmp_path / "p.h5"
    rc, stdout, err = _cli(_predict(made, out, f"--refine={tol}"), capsys)
    assert rc == 2 and stdout == ""
    assert "--refine" in _one_error_line(err) and "0 < TOL < 1" in err
    assert not out.exists()


def test_a_refinement_that_stops_short_exits_3_and_writes_nothing(made, tmp_path, capsys):
    out = tmp_path / "p.h5"
    rc, stdout, err = _cli(_predict(made, out, "--refine", "1e-12", "--refine-maxiter", "1"),
                           capsys)
    assert rc == 3 and stdout == ""
    line = _one_error_line(err)
    assert "--refine-maxiter 1" in line and "relative residual" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("extra, words", [
    (["--calibrate", "x.h5"], "--calibrate x.h5: calibrates --estimate"),
    (["--refine-maxiter", "5"], "--refine-maxiter 5: limits --refine"),
    (["--refine", "1e-6", "--refine-maxiter", "0"], "--refine-maxiter: found 0"),
])
def test_options_without_their_partner_are_refused(made, tmp_path, capsys, extra, words):
    out = tmp_path / "p.h5"
    rc, _, err = _cli(_predict(made, out, *extra), capsys)
    assert rc == 2 and words in _one_error_line(err)
    assert not out.exists()


def test_data_without_an_equation_are_refused(made, tmp_path, capsys):
    toy = make_steady(tmp_path / "toy.h5", n=2, grid=17)
    rc, _, err = _cli(["predict", made["run"], "--input", toy, "--out", tmp_path / "p.h5",
                       "--refine", "1e-6", "--device", "cpu"], capsys)
    assert rc == 2 and "no steady equation to rebuild" in _one_error_line(err)
    x = read_arrays(made["test"])
    imported = write_steady(tmp_path / "imp.h5", x["inputs"], x["outputs"], pde="darcy-smooth",
                            params={}, boundary="dirichlet", extra_attrs={"source_format": "mat"})
    rc, _, err = _cli(["predict", made["run"], "--input", imported, "--out", tmp_path / "q.h5",
                       "--estimate", "--device", "cpu"], capsys)
    assert rc == 2 and "imported by mgno convert" in _one_error_line(err)
    rc, _, err = _cli(_predict(made, tmp_path / "r.h5", "--estimate", "--calibrate", toy),
                      capsys)
    assert rc == 2 and "--calibrate" in _one_error_line(err) and "toy" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imp.h5", "toy.h5"]


def test_a_trajectory_run_is_refused(tmp_path, capsys):
    data = make_trajectories(tmp_path / "t.h5", n=4, t=5)
    run = tmp_path / "run"
    train(data, run, epochs=1, batch_size=2, seed=0, model_overrides=dict(TINY_NET),
          progress=False, protocol="one-step", steps_out=2, device="cpu")
    rc, _, err = _cli(["predict", run, "--input", data, "--out", tmp_path / "p.h5",
                       "--estimate", "--device", "cpu"], capsys)
    assert rc == 2 and "time-dependent" in _one_error_line(err)
    assert not (tmp_path / "p.h5").exists()


def test_a_run_without_validation_or_calibration_asks_for_one(made, tmp_path, capsys):
    run = tmp_path / "run"
    train(made["data"], run, epochs=1, batch_size=4, seed=0, model_overrides=dict(TINY_NET),
          progress=False, val_fraction=0.0, device="cpu")
    rc, _, err = _cli(["predict", run, "--input", made["test"], "--out", tmp_path / "p.h5",
                       "--estimate", "--device", "cpu"], capsys)
    assert rc == 2 and "--calibrate VAL.h5" in _one_error_line(err)
    rc, _, err = _cli(["predict", run, "--input", made["test"], "--out", tmp_path / "p.h5",
                       "--estimate", "--calibrate", made["test"], "--device", "cpu"], capsys)
    assert rc == 0, err
    assert (run / "calibration.json").is_file()


def test_helmholtz_predictions_get_estimates_and_refinement(tmp_path, capsys):
    data = generate_dataset("helmholtz", 8, 11, 0, tmp_path / "h.h5", progress=False,
                            params=["omega=20"])
    run = tmp_path / "run"
    train(data, run, epochs=1, batch_size=4, seed=0, model_overrides=dict(TINY_NET),
          progress=False, val_fraction=0.25, device="cpu")
    argv = ["predict", run, "--input", data, "--device", "cpu"]
    rc, stdout, err = _cli([*argv, "--out", tmp_path / "p.h5", "--refine", "1e-7", "--json"],
                           capsys)
    assert rc == 0, err
    refined = read_arrays(tmp_path / "p.h5", dtype=np.float64)
    eq = rebuild_equation(open_dataset(data), refined["inputs"])
    assert float(eq.relative_residual(refined["outputs"][:, 0]).max()) <= 1e-7
    assert json.loads(stdout)["iterations"]["max"] >= 1
    with h5py.File(tmp_path / "p.h5", "r") as f:
        record = json.loads(f.attrs["checks"])["refine"]
    # GMRES's own method and default iteration limit (multigrid-CG's is 200)
    assert (record["method"], record["maxiter"]) == ("fgmres-shifted-laplacian-mg", 500)
    rc, stdout, err = _cli([*argv, "--out", tmp_path / "q.h5", "--estimate", "--json"], capsys)
    assert rc == 0, err
    assert json.loads(stdout)["error_estimate"]["median"] > 0


def test_a_damaged_calibration_file_is_named_in_one_line(made, tmp_path, capsys):
    path = made["run"] / "calibration.json"
    kept = path.read_text() if path.exists() else None
    try:
        path.write_text('{"floor_sq": "x"}')
        rc, _, err = _cli(_predict(made, tmp_path / "p.h5", "--estimate"), capsys)
        assert rc == 2 and "calibration.json" in _one_error_line(err) and "floor_sq" in err
        assert not (tmp_path / "p.h5").exists()
    finally:
        if kept is not None:
            path.write_text(kept)
        else:
            path.unlink()
