"""`mgno convert` on real files (issue 16): boolean and integer arrays, arrays without a
channel axis or with the channels last, and the refusal of layouts it cannot tell."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import scipy.io
import torch

from mgno.cli import main
from mgno.data.convert import convert
from mgno.data.layout import parse_layout
from mgno.data.schema import open_dataset, read_arrays, write_steady
from mgno.errors import InputError

RNG = np.random.default_rng(3)
MASK = RNG.random((3, 11, 11)) > 0.5
COUNTS = RNG.integers(-50, 50, (3, 11, 11)).astype(np.int16)


def _attrs(path) -> dict:
    with h5py.File(path, "r") as f:
        return {k: json.loads(f.attrs[k]) for k in ("source_layout", "source_cast")
                if k in f.attrs}


def _write(fmt: str, path, x, y):
    if fmt == "npz":
        np.savez(path, x=x, y=y)
    elif fmt == "mat5":
        scipy.io.savemat(path, {"x": x, "y": y})
    elif fmt == "mat73":  # MATLAB v7.3: column-major, logical stored as uint8 + its class
        with h5py.File(path, "w", userblock_size=512) as f:
            for k, v in (("x", x), ("y", y)):
                v = np.asarray(v)
                f[k] = (v.astype(np.uint8) if v.dtype == bool else v).T
                f[k].attrs["MATLAB_class"] = np.bytes_("logical" if v.dtype == bool else "int16")
        with open(path, "r+b") as fh:
            fh.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64".ljust(116, b" "))
    elif fmt == "h5":
        with h5py.File(path, "w") as f:
            f["x"], f["y"] = x, y
    else:
        torch.save({"x": torch.from_numpy(x), "y": torch.from_numpy(y)}, path)
    return path


@pytest.mark.parametrize("fmt", ["npz", "mat5", "mat73", "h5", "pt"])
def test_bool_and_int_arrays_become_float32_with_a_note(tmp_path, fmt):
    src = _write(fmt, tmp_path / f"mask.{fmt}", MASK, COUNTS)
    out = convert(src, tmp_path / "m.h5")
    arrays = read_arrays(out, dtype=np.float64)
    np.testing.assert_array_equal(arrays["inputs"][:, 0], MASK.astype(np.float64))
    np.testing.assert_array_equal(arrays["outputs"][:, 0], COUNTS.astype(np.float64))
    notes = _attrs(out)
    assert notes["source_cast"] == {"x": "bool -> float32", "y": "int16 -> float32"}
    assert notes["source_layout"] == {"x": "no-channel", "y": "no-channel"}


def test_float_sources_note_no_cast(tmp_path):
    src = _write("npz", tmp_path / "f.npz", MASK.astype(np.float32), COUNTS.astype(np.float64))
    assert "source_cast" not in _attrs(convert(src, tmp_path / "f.h5"))


def test_no_channel_and_channels_last_are_recognised(tmp_path):
    x = RNG.standard_normal((3, 11, 13, 2)).astype(np.float32)  # channels last
    y = RNG.standard_normal((3, 11, 13)).astype(np.float32)  # no channel axis
    out = convert(_write("npz", tmp_path / "cl.npz", x, y), tmp_path / "cl.h5")
    info = open_dataset(out)
    assert info.grid == (11, 13) and (info.in_channels, info.out_channels) == (2, 1)
    arrays = read_arrays(out, dtype=np.float32)
    np.testing.assert_array_equal(arrays["inputs"], np.moveaxis(x, -1, 1))
    np.testing.assert_array_equal(arrays["outputs"][:, 0], y)
    assert _attrs(out)["source_layout"] == {"x": "channels-last", "y": "no-channel"}
    # trajectories (N, T, *grid) without a channel axis
    np.savez(tmp_path / "t.npz", trajectories=RNG.standard_normal((2, 4, 11, 11)))
    info = open_dataset(convert(tmp_path / "t.npz", tmp_path / "t.h5"))
    assert info.kind == "trajectory" and info.grid == (11, 11) and info.in_channels == 1


def test_ambiguous_layout_is_refused_on_one_line_naming_layout(tmp_path, capsys):
    x = RNG.standard_normal((3, 11, 11, 6)).astype(np.float32)
    src = _write("npz", tmp_path / "amb.npz", x, x + 1)  # 6 channels on 11x11, or 11x11x6?
    with pytest.raises(InputError) as err:
        convert(src, tmp_path / "a.h5")
    msg = str(err.value)
    assert "channels-last (grid 11x11)" in msg and "no-channel (grid 11x11x6)" in msg
    assert "pass --layout" in msg and "--layout channels-last" in msg
    assert "--layout no-channel" in msg
    assert main(["convert", str(src), "--out", str(tmp_path / "a.h5")]) == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith("mgno: error:") and "\n" not in line and "--layout" in line, line
    assert not (tmp_path / "a.h5").exists()
    # told: channels last, or a 3-D grid
    assert main(["convert", str(src), "--out", str(tmp_path / "a.h5"),
                 "--layout", "channels-last"]) == 0
    info = open_dataset(tmp_path / "a.h5")
    assert info.grid == (11, 11) and info.in_channels == 6
    assert _attrs(tmp_path / "a.h5")["source_layout"]["x"] == "channels-last"
    info = open_dataset(convert(src, tmp_path / "b.h5", layout="no-channel"))
    assert info.grid == (11, 11, 6) and info.in_channels == 1


def test_layout_for_input_and_output_apart(tmp_path, capsys):
    x = RNG.standard_normal((3, 11, 11, 2)).astype(np.float32)
    y = RNG.standard_normal((3, 11, 11)).astype(np.float32)
    src = _write("npz", tmp_path / "io.npz", x, y)
    # one word for both: y (3, 11, 11) channels last is a 1-D grid of 11 with 11 channels
    assert main(["convert", str(src), "--out", str(tmp_path / "o.h5"),
                 "--layout", "channels-last"]) == 2
    line = capsys.readouterr().err.strip()
    assert "fit no layout with one grid" in line and "--layout IN,OUT" in line, line
    info = open_dataset(convert(src, tmp_path / "o.h5", layout="channels-last,no-channel"))
    assert info.grid == (11, 11) and info.in_channels == 2


def test_shapes_that_fit_no_common_grid_name_what_was_found(tmp_path):
    src = _write("npz", tmp_path / "g.npz", np.zeros((3, 11, 11)), np.zeros((3, 12, 12)))
    with pytest.raises(InputError, match=r"'x' as no-channel \(grid 11x11\); 'y' as no-channel "
                                         r"\(grid 12x12\).*--layout IN,OUT"):
        convert(src, tmp_path / "g.h5")


def test_mgno_files_stay_channels_first_and_fixed_formats_refuse_layout(tmp_path):
    a = RNG.standard_normal((3, 6, 11, 11)).astype(np.float32)  # 6 channels: ambiguous alone
    write_steady(tmp_path / "own.h5", a, a, pde="toy", params={}, boundary=["dirichlet"] * 2)
    info = open_dataset(convert(tmp_path / "own.h5", tmp_path / "again.h5"))
    assert info.grid == (11, 11) and info.in_channels == 6
    pdebench = tmp_path / "1D_Advection.hdf5"
    with h5py.File(pdebench, "w") as f:
        f["tensor"] = RNG.standard_normal((2, 6, 32))
    with pytest.raises(InputError, match="PDEBench file.*expected --layout auto"):
        convert(pdebench, tmp_path / "p.h5", layout="channels-last")


def test_parse_layout():
    assert parse_layout("auto") == ("auto", "auto")
    assert parse_layout("Channels-Last, no-channel") == ("channels-last", "no-channel")
    assert parse_layout(None, 1) == ("auto",)
    with pytest.raises(InputError, match="--layout: unknown layout 'nhwc'"):
        parse_layout("nhwc")
    with pytest.raises(InputError, match="expected one"):
        parse_layout("auto,auto,auto")
