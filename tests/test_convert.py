"""Importers: FNO .mat (v5 and v7.3), .pt {x, y}, .npz, PDEBench .h5; damaged files."""

import h5py
import numpy as np
import pytest
import scipy.io
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mgno.data.convert import convert, sniff_format
from mgno.data.schema import open_dataset, read_arrays
from mgno.errors import InputError

RNG = np.random.default_rng(0)
COEFF = RNG.standard_normal((3, 11, 11))
SOL = RNG.standard_normal((3, 11, 11))


def _mat73(path, arrays):
    with h5py.File(path, "w", userblock_size=512) as f:
        for k, v in arrays.items():
            f[k] = np.asarray(v).T  # MATLAB is column-major
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: x HDF5 schema 1.00 ."
    with open(path, "r+b") as fh:
        fh.write(header.ljust(116, b" "))


def test_mat_v5_darcy(tmp_path):
    src = tmp_path / "piececonst_r11.mat"
    scipy.io.savemat(src, {"coeff": COEFF, "sol": SOL, "Kcoeff": COEFF})
    assert sniff_format(src) == "mat5"
    out = convert(src, tmp_path / "d.h5")
    info = open_dataset(out)
    assert info.kind == "steady" and info.grid == (11, 11) and info.pde == "darcy"
    assert info.boundary == ("dirichlet", "dirichlet")
    arr = read_arrays(out, dtype=np.float64)
    np.testing.assert_array_equal(arr["inputs"][:, 0], COEFF)
    np.testing.assert_array_equal(arr["outputs"][:, 0], SOL)


def test_mat_v73_navier_stokes(tmp_path):
    a = RNG.standard_normal((2, 8, 8))
    u = RNG.standard_normal((2, 8, 8, 5))
    src = tmp_path / "ns.mat"
    _mat73(src, {"a": a, "u": u, "t": np.arange(1, 6)[None, :] * 1.0})
    assert sniff_format(src) == "mat73"
    out = convert(src, tmp_path / "ns.h5")
    info = open_dataset(out)
    assert info.kind == "trajectory" and info.n_times == 6 and info.boundary == ("periodic",) * 2
    arr = read_arrays(out, dtype=np.float64)
    np.testing.assert_array_equal(arr["trajectories"][:, 0, 0], a)
    np.testing.assert_array_equal(arr["trajectories"][:, 3, 0], u[..., 2])
    assert arr["times"].tolist() == [0, 1, 2, 3, 4, 5]


def test_mat_burgers_is_1d_periodic(tmp_path):
    src = tmp_path / "burgers.mat"
    scipy.io.savemat(src, {"a": RNG.standard_normal((4, 64)), "u": RNG.standard_normal((4, 64))})
    info = open_dataset(convert(src, tmp_path / "b.h5"))
    assert info.grid == (64,) and info.boundary == ("periodic",) and info.pde == "burgers"


def test_torch_pt_and_npz(tmp_path):
    pt = tmp_path / "darcy_train_16.pt"
    torch.save({"x": torch.tensor(COEFF, dtype=torch.float32),
                "y": torch.tensor(SOL, dtype=torch.float32)[:, None]}, pt)
    assert sniff_format(pt) == "torch"
    info = open_dataset(convert(pt, tmp_path / "pt.h5", boundary="neumann"))
    assert info.in_channels == 1 and info.out_channels == 1 and info.boundary == ("neumann",) * 2
    npz = tmp_path / "d.npz"
    np.savez(npz, x=np.moveaxis(np.stack([COEFF, SOL], 1), 1, -1), y=SOL)  # channels-last x
    info = open_dataset(convert(npz, tmp_path / "npz.h5"))
    assert info.in_channels == 2 and info.grid == (11, 11)
    with pytest.raises(InputError, match="no recognised keys"):
        np.savez(tmp_path / "k.npz", foo=COEFF)
        convert(tmp_path / "k.npz", tmp_path / "k.h5")
    assert not (tmp_path / "k.h5").exists()
    info = open_dataset(convert(tmp_path / "k.npz", tmp_path / "k.h5", keys=("foo", "foo")))
    assert info.n_samples == 3


def test_pdebench(tmp_path):
    darcy = tmp_path / "2D_DarcyFlow_beta1.0_Train.hdf5"
    with h5py.File(darcy, "w") as f:
        f["nu"] = COEFF
        f["tensor"] = SOL[:, None]
        f["x-coordinate"] = np.linspace(0, 1, 11)
    info = open_dataset(convert(darcy, tmp_path / "pd.h5"))
    assert info.kind == "steady" and info.pde == "darcy" and info.grid == (11, 11)
    adv = tmp_path / "1D_Advection.hdf5"
    with h5py.File(adv, "w") as f:
        f["tensor"] = RNG.standard_normal((2, 6, 32))
        f["t-coordinate"] = np.linspace(0, 2, 7)
        f["x-coordinate"] = np.linspace(0, 1, 32)
    info = open_dataset(convert(adv, tmp_path / "adv.h5"))
    assert info.kind == "trajectory" and info.grid == (32,) and info.n_times == 6
    cfd = tmp_path / "2D_CFD.hdf5"
    with h5py.File(cfd, "w") as f:
        for k in ("density", "pressure", "Vx", "Vy"):
            f[k] = RNG.standard_normal((2, 3, 8, 8))
    info = open_dataset(convert(cfd, tmp_path / "cfd.h5"))
    assert info.in_channels == 4 and info.n_times == 3
    grouped = tmp_path / "2D_diff-react.h5"
    with h5py.File(grouped, "w") as f:
        for i in range(2):
            f[f"{i:04d}/data"] = RNG.standard_normal((4, 8, 8, 2))
            f[f"{i:04d}/grid/t"] = np.linspace(0, 1, 4)
    info = open_dataset(convert(grouped, tmp_path / "dr.h5"))
    assert info.n_samples == 2 and info.in_channels == 2 and info.n_times == 4


def test_unknown_format(tmp_path):
    src = tmp_path / "x.txt"
    src.write_text("coeff sol")
    with pytest.raises(InputError, match="unrecognised format"):
        convert(src, tmp_path / "x.h5")
    with pytest.raises(FileNotFoundError):
        convert(tmp_path / "missing.mat", tmp_path / "x.h5")


def _source(tmp_path, which):
    path = tmp_path / ["a.mat", "a.pt", "a.npz", "b.mat"][which]
    if path.exists():
        return path
    if which == 0:
        scipy.io.savemat(path, {"coeff": COEFF, "sol": SOL})
    elif which == 1:
        torch.save({"x": torch.tensor(COEFF), "y": torch.tensor(SOL)}, path)
    elif which == 2:
        np.savez(path, x=COEFF, y=SOL)
    else:
        _mat73(path, {"coeff": COEFF, "sol": SOL})
    return path


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.integers(0, 3), frac=st.floats(0.0, 0.98), junk=st.binary(max_size=32),
       truncate=st.booleans())
def test_damaged_sources_give_input_errors(tmp_path, which, frac, junk, truncate):
    src = _source(tmp_path, which)
    data = bytearray(src.read_bytes())
    at = int(len(data) * frac)
    if truncate:
        data = data[:at]
    else:
        data[at : at + len(junk)] = junk
        data = data[: len(src.read_bytes())]
    bad = tmp_path / ("bad" + src.suffix)
    bad.write_bytes(bytes(data))
    out = tmp_path / "out.h5"
    out.unlink(missing_ok=True)
    try:
        convert(bad, out)
    except InputError as err:
        assert "bad" in str(err) or "out.h5" in str(err)
        assert not out.exists()
    else:
        assert open_dataset(out).n_samples >= 1
