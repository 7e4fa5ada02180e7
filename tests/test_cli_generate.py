"""`mgno generate` / `mgno convert`: the CLI contract, reproducibility, sharding,
resuming and bad input."""

import h5py
import numpy as np
import pytest
import scipy.io

import mgno.data.generate as gen
from mgno.cli import main
from mgno.data.schema import open_dataset, read_arrays


def _gen(tmp_path, name, *extra, pde="darcy", n=5, res=17):
    out = tmp_path / name
    argv = ["generate", pde, "--n", str(n), "--resolution", str(res), "--seed", "3",
            "--out", str(out), "--no-progress", "--batch-size", "2", *extra]
    assert main(argv) == 0
    return out


def test_generate_darcy_and_same_seed_same_file(tmp_path, capsys):
    a = _gen(tmp_path, "a.h5", "--solve-resolution", "33")
    b = _gen(tmp_path, "b.h5", "--solve-resolution", "33")
    info = open_dataset(a)
    assert info.pde == "darcy-smooth" and info.n_samples == 5 and info.grid == (17, 17)
    assert info.params["solve_resolution"] == 33 and info.attrs["seed"] == 3
    assert info.attrs["command"].startswith("mgno ")
    assert info.attrs["complete"] is True or info.attrs["complete"] == 1
    ra, rb = read_arrays(a), read_arrays(b)
    np.testing.assert_array_equal(ra["inputs"], rb["inputs"])
    np.testing.assert_array_equal(ra["outputs"], rb["outputs"])
    assert not list(tmp_path.glob("*.partial"))
    assert str(a) in capsys.readouterr().out


def test_shards_and_workers_reproduce_the_full_set(tmp_path):
    full = read_arrays(_gen(tmp_path, "full.h5", pde="poisson",
                            n=7, res=17))
    s0 = read_arrays(_gen(tmp_path, "s0.h5", "--shard", "0/2", pde="poisson", n=7))
    s1 = read_arrays(_gen(tmp_path, "s1.h5", "--shard", "1/2", "--workers", "2",
                          pde="poisson", n=7))
    joined = np.concatenate([s0["outputs"], s1["outputs"]])
    np.testing.assert_array_equal(joined, full["outputs"])
    np.testing.assert_array_equal(np.concatenate([s0["inputs"], s1["inputs"]]), full["inputs"])


def test_navier_stokes_and_burgers_cli(tmp_path):
    ns = _gen(tmp_path, "ns.h5", "--param", "nu=1e-3", "--param", "T=1",
              "--param", "solve_resolution=32", pde="navier-stokes", n=2, res=16)
    info = open_dataset(ns)
    assert info.kind == "trajectory" and info.n_times == 2 and info.boundary == ("periodic",) * 2
    bu = _gen(tmp_path, "bu.h5", "--param", "solve_resolution=256", "--param", "T=0.5",
              "--param", "record_every=0.25", pde="burgers", n=2, res=64)
    assert open_dataset(bu).n_times == 3


def test_interrupted_generation_resumes(tmp_path, monkeypatch):
    out = tmp_path / "r.h5"
    real = gen._run_batch
    calls = {"n": 0}

    def flaky(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(gen, "_run_batch", flaky)
    argv = ["generate", "poisson", "--n", "5", "--resolution", "17", "--seed", "3",
            "--out", str(out), "--batch-size", "2", "--no-progress"]
    assert main(argv) == 130
    assert not out.exists()
    partial = tmp_path / "r.h5.partial"
    with h5py.File(partial) as f:
        assert (f["sample_checksums"][...] != 0).tolist() == [True, True, False, False, False]
    with pytest.raises(Exception, match="complete"):
        open_dataset(partial)
    monkeypatch.setattr(gen, "_run_batch", real)
    assert main(argv) == 0 and not partial.exists()
    clean = _gen(tmp_path, "clean.h5", pde="poisson", n=5)
    np.testing.assert_array_equal(read_arrays(out)["outputs"], read_arrays(clean)["outputs"])


@pytest.mark.parametrize("argv, needle", [
    (["generate", "heat", "--n", "2", "--out", "{d}/x.h5"], "unknown"),
    (["generate", "darcy", "--n", "2", "--resolution", "3", "--out", "{d}/x.h5"], "minimum"),
    (["generate", "ns", "--n", "2", "--param", "nu=nan", "--out", "{d}/x.h5"], "nu"),
    (["generate", "ns", "--n", "2", "--param", "nu=-1e-3", "--out", "{d}/x.h5"], "nu"),
    (["generate", "darcy", "--n", "2", "--out", "{d}/missing/x.h5"], "does not exist"),
    (["generate", "darcy", "--n", "2", "--out", "{d}"], "folder"),
    (["generate", "darcy", "--n", "2", "--shard", "2/2", "--out", "{d}/x.h5"], "shard"),
    (["generate", "poisson", "--n", "2", "--param", "bc=robin", "--out", "{d}/x.h5"], "robin"),
    (["convert", "{d}/nokeys.mat", "--out", "{d}/x.h5"], "no recognised keys"),
    (["convert", "{d}/trunc.h5", "--out", "{d}/x.h5"], "trunc.h5"),
    (["convert", "{d}/absent.mat", "--out", "{d}/x.h5"], "absent.mat"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, argv, needle):
    scipy.io.savemat(tmp_path / "nokeys.mat", {"foo": np.zeros((2, 4, 4))})
    good = tmp_path / "good.h5"
    with h5py.File(good, "w") as f:
        f["inputs"] = np.zeros((2, 1, 8, 8))
        f["outputs"] = np.zeros((2, 1, 8, 8))
    data = good.read_bytes()
    (tmp_path / "trunc.h5").write_bytes(data[: len(data) // 2])
    argv = [a.replace("{d}", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mgno: error:") and "\n" not in err and needle in err
    assert not (tmp_path / "x.h5").exists()
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob(".*.tmp"))


def test_convert_cli(tmp_path, capsys):
    src = tmp_path / "piececonst.mat"
    scipy.io.savemat(src, {"coeff": np.ones((2, 9, 9)), "sol": np.zeros((2, 9, 9))})
    assert main(["convert", str(src), "--out", str(tmp_path / "c.h5")]) == 0
    info = open_dataset(tmp_path / "c.h5")
    assert info.attrs["source_format"] == "mat5" and info.attrs["command"].startswith("mgno")
