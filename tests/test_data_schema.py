"""The HDF5 schema: round trip, foreign files, validation, damaged files."""

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mgno.data.schema import (
    BOUNDARY_CONDITIONS,
    SCHEMA_VERSION,
    DatasetInfo,
    create_datasets,
    open_dataset,
    read_arrays,
    write_steady,
    write_trajectories,
)
from mgno.errors import InputError


def _steady(tmp_path, name="d.h5", n=4):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 1, 9, 9)).astype(np.float32)
    y = rng.standard_normal((n, 1, 9, 9)).astype(np.float32)
    path = write_steady(tmp_path / name, x, y, pde="darcy", params={"alpha": 2.0},
                        boundary=["dirichlet", "periodic"], seed=7, command="mgno generate ...")
    return path, x, y


def test_steady_round_trip(tmp_path):
    path, x, y = _steady(tmp_path)
    info = open_dataset(path)
    assert isinstance(info, DatasetInfo)
    assert (info.kind, info.n_samples, info.grid, info.in_channels) == ("steady", 4, (9, 9), 1)
    assert info.boundary == ("dirichlet", "periodic") and info.domain == ((0, 1), (0, 1))
    assert info.params == {"alpha": 2.0} and info.pde == "darcy" and info.n_times == 0
    assert info.attrs["seed"] == 7 and info.attrs["mgno_schema_version"] == SCHEMA_VERSION
    assert info.attrs["grid_convention"] == "nodes-including-boundary"
    arr = read_arrays(path, 1, 3)
    np.testing.assert_array_equal(arr["inputs"], x[1:3])
    np.testing.assert_array_equal(arr["outputs"], y[1:3])
    with h5py.File(path) as f:
        assert f["inputs"].chunks == (1, 1, 9, 9)
    assert not list(tmp_path.glob(".*tmp"))  # no temporary left behind


def test_trajectory_round_trip(tmp_path):
    u = np.random.default_rng(1).standard_normal((2, 3, 1, 8, 8))
    path = write_trajectories(tmp_path / "t.h5", u, [0.0, 1.0, 2.0], pde="navier-stokes",
                              params={"nu": 1e-3}, boundary="periodic")
    info = open_dataset(path)
    assert info.kind == "trajectory" and info.n_times == 3 and info.in_channels == 1
    arr = read_arrays(path)
    assert arr["trajectories"].dtype == np.float32 and arr["times"].tolist() == [0, 1, 2]


def test_foreign_file_without_attributes_opens(tmp_path):
    path = tmp_path / "foreign.h5"
    with h5py.File(path, "w") as f:
        f["inputs"] = np.zeros((3, 2, 5, 6))
        f["outputs"] = np.zeros((3, 1, 5, 6))
    info = open_dataset(path)
    assert info.boundary == ("dirichlet", "dirichlet") and info.pde == "unknown"
    assert (info.in_channels, info.out_channels, info.grid) == (2, 1, (5, 6))


@pytest.mark.parametrize("case", ["missing", "mismatch", "bad_bc", "partial", "not_h5"])
def test_invalid_files(tmp_path, case):
    path = tmp_path / "bad.h5"
    if case == "not_h5":
        path.write_text("hello")
    else:
        with h5py.File(path, "w") as f:
            f["inputs"] = np.zeros((3, 1, 5, 5))
            if case != "missing":
                f["outputs"] = np.zeros((2 if case == "mismatch" else 3, 1, 5, 5))
            if case == "bad_bc":
                f.attrs["boundary"] = ["dirichlet", "robin"]
            if case == "partial":
                f.attrs["complete"] = False
    with pytest.raises(InputError, match="bad.h5"):
        open_dataset(path)


def test_missing_file_and_bad_writes(tmp_path):
    with pytest.raises(FileNotFoundError):
        open_dataset(tmp_path / "nope.h5")
    x = np.zeros((2, 1, 4, 4))
    with pytest.raises(InputError, match="does not exist"):
        write_steady(tmp_path / "no" / "x.h5", x, x, pde="p", params={}, boundary="dirichlet")
    with pytest.raises(InputError, match="boundary"):
        write_steady(tmp_path / "x.h5", x, x, pde="p", params={}, boundary=["robin", "x"])
    with pytest.raises(InputError, match="disagree"):
        write_steady(tmp_path / "x.h5", x, x[:1], pde="p", params={}, boundary="dirichlet")
    assert not (tmp_path / "x.h5").exists()
    assert BOUNDARY_CONDITIONS == ("dirichlet", "neumann", "periodic")


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frac=st.floats(0.0, 0.999))
def test_truncated_files_give_clear_errors(tmp_path, frac):
    path, _, _ = _steady(tmp_path, "full.h5")
    data = path.read_bytes()
    bad = tmp_path / "trunc.h5"
    bad.write_bytes(data[: int(len(data) * frac)])
    with pytest.raises((InputError, FileNotFoundError)):
        open_dataset(bad)
        read_arrays(bad)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pos=st.floats(0.0, 0.999), junk=st.binary(min_size=8, max_size=64))
def test_corrupted_files_never_crash_unexpectedly(tmp_path, pos, junk):
    path, x, y = _steady(tmp_path, "full.h5")
    data = bytearray(path.read_bytes())
    at = int(len(data) * pos)
    data[at : at + len(junk)] = junk
    bad = tmp_path / "corrupt.h5"
    bad.write_bytes(bytes(data[: len(path.read_bytes())]))
    try:
        arr = read_arrays(bad)
    except InputError as err:
        assert "corrupt.h5" in str(err)
    else:  # the junk hit bytes that do not matter: the data must be intact
        np.testing.assert_array_equal(arr["inputs"], x)
        np.testing.assert_array_equal(arr["outputs"], y)


def test_preallocated_file_has_its_size_and_a_write_touches_only_its_chunk(tmp_path):
    # the ground of crash-consistent generation: after creation, writing a
    # sample changes the bytes of its chunk and nothing else of the file
    path = tmp_path / "p.h5"
    with h5py.File(path, "w") as f:
        create_datasets(f, {"inputs": (6, 1, 9, 9)}, np.float32, preallocate=True)
    before = path.read_bytes()
    assert len(before) > 6 * 81 * 4
    with h5py.File(path, "r+") as f:
        f["inputs"][2] = np.ones((1, 9, 9), dtype=np.float32)
        chunk = f["inputs"].id.get_chunk_info(2)
    after = path.read_bytes()
    assert len(after) == len(before)
    changed = np.flatnonzero(np.frombuffer(before, np.uint8) != np.frombuffer(after, np.uint8))
    assert changed.size and changed.min() >= chunk.byte_offset
    assert changed.max() < chunk.byte_offset + chunk.size


def test_writers_turn_a_full_disk_into_one_output_fault(tmp_path, monkeypatch):
    from mgno.data import h5safe
    from mgno.errors import OutputFault

    real = h5safe.fsync_path

    def full(path):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(h5safe, "fsync_path", full)
    with pytest.raises(OutputFault, match=r"d\.h5: writing failed \(.*No space left"):
        _steady(tmp_path)
    monkeypatch.setattr(h5safe, "fsync_path", real)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
