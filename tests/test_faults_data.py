"""Fault injection on `mgno generate` and `mgno convert` (issue 20): kills at random
points, a full disk, read-only folders, two writers, hostile HDF5 files, overwrites.

A generation that is interrupted in any way and then run again must give a file
identical, sample for sample, to an uninterrupted run, or be refused; never a
file marked complete with other samples, a traceback or a signal.
"""

from __future__ import annotations

import errno
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import mgno
import mgno.data.generate as gen
from mgno.cli import main
from mgno.data.convert import convert
from mgno.data.schema import open_dataset, read_arrays
from mgno.errors import InputError

ARGV = ["generate", "poisson", "--n", "24", "--resolution", "17", "--seed", "3",
        "--batch-size", "2", "--no-progress"]
BATCHES = 12

# Runs `mgno ARGS` with h5py's dataset writes instrumented: on write number K
# (counting inputs, outputs and checksum writes) "kill" lands half of it (or
# garbage, for one sample) and SIGKILLs the process; "pause" writes it, says
# so on stdout and sleeps; "nocheck" skips the free-space check up front so
# that HDF5 itself meets the file size limit.
HOOK = r"""
import os, signal, sys, time
import h5py, numpy as np
mode, k, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
argv = sys.argv[4:]
calls = [0]
real = h5py.Dataset.__setitem__

def setitem(self, key, value):
    calls[0] += 1
    if calls[0] == k and mode == "kill":
        value = np.asarray(value)
        if isinstance(key, slice) and len(value) > 1:
            real(self, slice(key.start, key.start + len(value) // 2), value[: len(value) // 2])
        else:
            real(self, key, np.full_like(value, 7))
        self.file.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    real(self, key, value)
    if calls[0] == k and mode == "pause":
        print("paused", flush=True)
        time.sleep(pause)

h5py.Dataset.__setitem__ = setitem
from mgno.cli import main
if mode == "nocheck":
    import mgno.data.convert as c
    import mgno.data.generate as g
    print("checked", main(argv), flush=True)
    g.writable_bytes = c.writable_bytes = lambda folder: (None, "")
sys.exit(main(argv))
"""


def _env() -> dict:
    src = str(Path(mgno.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _hook(tmp_path, mode, k, argv, pause=0.0, **kw):
    return subprocess.Popen(
        [sys.executable, "-c", HOOK, mode, str(k), str(pause), *argv], cwd=tmp_path,
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw,
    )


def _one_line_error(err: str) -> str:
    err = err.strip()
    assert err.startswith("mgno: error:") and "\n" not in err and "Traceback" not in err, err
    return err


def _same(path, reference) -> None:
    got, ref = read_arrays(path), read_arrays(reference)
    for key in ref:
        np.testing.assert_array_equal(got[key], ref[key])
    assert open_dataset(path).attrs["complete"] in (True, 1)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "ref.h5"
    assert main([*ARGV, "--out", str(out)]) == 0
    return out


# --------------------------------------------------------------------------- kills
def test_sigkill_at_random_points_then_resume_is_identical(tmp_path, reference, capsys):
    out = tmp_path / "k.h5"
    rng = np.random.default_rng(20)
    # three processes in a row, each killed at a random write (torn: half of it
    # landed); every write of a batch is a candidate: inputs, outputs, checksums
    for high in (12, 6, 6):
        k = int(rng.integers(1, high + 1))
        proc = _hook(tmp_path, "kill", k, [*ARGV, "--out", str(out)])
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == -signal.SIGKILL, err
        assert not out.exists() and Path(f"{out}.partial").exists()
    capsys.readouterr()
    assert main([*ARGV, "--out", str(out)]) == 0
    assert "resuming" in capsys.readouterr().err
    _same(out, reference)
    assert not list(tmp_path.glob("k.h5.*"))  # no partial, lock or temporary file left


def test_corrupted_sample_in_partial_is_generated_again(tmp_path, reference, capsys,
                                                        monkeypatch):
    out = tmp_path / "c.h5"
    real, calls = gen._run_batch, [0]

    def stop_after_three(*args, **kw):
        calls[0] += 1
        if calls[0] == 4:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(gen, "_run_batch", stop_after_three)
    assert main([*ARGV, "--out", str(out)]) == 130
    monkeypatch.setattr(gen, "_run_batch", real)
    with h5py.File(f"{out}.partial", "r+") as f:  # bit rot in a sample marked done
        assert np.count_nonzero(f["sample_checksums"][...]) == 6
        f["outputs"][1] = f["outputs"][1] + 1.0
    capsys.readouterr()
    assert main([*ARGV, "--out", str(out)]) == 0
    assert "1 failed their checksum" in capsys.readouterr().err
    _same(out, reference)


# --------------------------------------------------------------------------- full disk
def _fsize_limit(kib: int):
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (kib * 1024, kib * 1024))
    return limit


def test_file_size_limit_then_rerun_is_identical(tmp_path, reference):
    out = tmp_path / "f.h5"
    # the check up front, then HDF5 itself against the limit (the check disabled)
    proc = _hook(tmp_path, "nocheck", 0, [*ARGV, "--out", str(out)],
                 preexec_fn=_fsize_limit(40))
    stdout, err = proc.communicate(timeout=120)
    assert "checked 1" in stdout and proc.returncode == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("mgno: error:") for line in lines), err
    assert "file size limit" in lines[0] and "need about" in lines[0]
    assert "f.h5" in lines[1] and "File too large" in lines[1]
    assert not list(tmp_path.glob("f.h5*"))
    assert main([*ARGV, "--out", str(out)]) == 0
    _same(out, reference)


def test_disk_full_mid_generation_is_one_line_and_resumes(tmp_path, reference, capsys,
                                                          monkeypatch):
    out = tmp_path / "d.h5"
    real, calls = gen.fsync_path, [0]

    def full_on_fifth(path):
        calls[0] += 1
        if calls[0] == 5:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path)

    monkeypatch.setattr(gen, "fsync_path", full_on_fifth)
    assert main([*ARGV, "--out", str(out)]) == 1
    err = _one_line_error(capsys.readouterr().err)
    assert "No space left on device" in err and "run the same command again" in err
    monkeypatch.setattr(gen, "fsync_path", real)
    assert not out.exists()
    assert main([*ARGV, "--out", str(out)]) == 0
    _same(out, reference)


# --------------------------------------------------------------------------- folders
@pytest.mark.parametrize("where", ["sys", "file-as-folder", "missing"])
@pytest.mark.parametrize("verb", ["generate", "convert"])
def test_unwritable_output_folder_is_one_line(tmp_path, capsys, where, verb):
    # the tests run as root, where chmod stops nothing: /sys refuses even root
    (tmp_path / "afile").write_text("x")
    out = {"sys": Path("/sys/mgno_test.h5"), "file-as-folder": tmp_path / "afile" / "x.h5",
           "missing": tmp_path / "missing" / "x.h5"}[where]
    src = tmp_path / "s.npz"
    np.savez(src, x=np.zeros((2, 9, 9)), y=np.ones((2, 9, 9)))
    argv = ([*ARGV, "--out", str(out)] if verb == "generate"
            else ["convert", str(src), "--out", str(out)])
    assert main(argv) == 2
    err = _one_line_error(capsys.readouterr().err)
    assert str(out) in err
    assert not out.exists()


@pytest.mark.parametrize("verb", ["generate", "convert"])
def test_read_only_file_system_is_one_line(tmp_path, capsys, monkeypatch, verb):
    # root writes through chmod and no read-only mount is at hand: every file
    # creation under ro/ fails as on a read-only file system
    ro = tmp_path / "ro"
    ro.mkdir()
    real_open = os.open

    def open_ro(path, flags, *args, **kw):
        if str(path).startswith(str(ro)) and flags & (os.O_CREAT | os.O_WRONLY | os.O_RDWR):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", open_ro)
    src = tmp_path / "s.npz"
    np.savez(src, x=np.zeros((2, 9, 9)), y=np.ones((2, 9, 9)))
    out = ro / "x.h5"
    argv = ([*ARGV, "--out", str(out)] if verb == "generate"
            else ["convert", str(src), "--out", str(out)])
    assert main(argv) == 2
    err = _one_line_error(capsys.readouterr().err)
    assert str(out) in err and "Read-only file system" in err
    assert not list(ro.iterdir())


# --------------------------------------------------------------------------- writers
def test_second_writer_is_refused_and_leaves_the_first_alone(tmp_path, reference, capsys):
    out = tmp_path / "w.h5"
    first = _hook(tmp_path, "pause", 3, [*ARGV, "--out", str(out)], pause=3.0)
    try:
        assert first.stdout.readline().strip() == "paused"
        partial = Path(f"{out}.partial")
        before = (partial.stat().st_ino, partial.stat().st_size, partial.read_bytes())
        src = tmp_path / "s.npz"
        np.savez(src, x=np.zeros((2, 9, 9)), y=np.ones((2, 9, 9)))
        other = [a if a != "3" else "4" for a in ARGV]  # seed 4
        for argv in ([*other, "--out", str(out)], [*other, "--out", str(out), "--force"],
                     ["convert", str(src), "--out", str(out), "--force"]):
            assert main(argv) == 2
            err = _one_line_error(capsys.readouterr().err)
            assert f"process {first.pid}" in err
        assert (partial.stat().st_ino, partial.stat().st_size, partial.read_bytes()) == before
    finally:
        _out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    _same(out, reference)
    assert open_dataset(out).attrs["seed"] == 3


def test_partial_of_another_command_is_refused_not_deleted(tmp_path, capsys, monkeypatch):
    out = tmp_path / "o.h5"
    real = gen._run_batch
    monkeypatch.setattr(gen, "_run_batch", lambda *a, **k: (_ for _ in ()).throw(
        KeyboardInterrupt) if a[1][0] >= 2 else real(*a, **k))
    assert main([*ARGV, "--out", str(out)]) == 130
    monkeypatch.setattr(gen, "_run_batch", real)
    partial = Path(f"{out}.partial")
    kept = partial.read_bytes()
    other = [a if a != "3" else "4" for a in ARGV]
    capsys.readouterr()
    assert main([*other, "--out", str(out)]) == 2
    err = _one_line_error(capsys.readouterr().err)
    assert "another command" in err and "seed 3 there, 4 here" in err and "--force" in err
    assert partial.read_bytes() == kept
    assert main([*other, "--out", str(out), "--force"]) == 0
    assert open_dataset(out).attrs["seed"] == 4 and not partial.exists()


def test_no_overwrite_without_force(tmp_path, reference, capsys):
    out = tmp_path / "x.h5"
    out.write_bytes(b"precious")
    src = tmp_path / "s.npz"
    np.savez(src, x=np.zeros((2, 9, 9)), y=np.ones((2, 9, 9)))
    for argv in ([*ARGV, "--out", str(out)], ["convert", str(src), "--out", str(out)]):
        assert main(argv) == 2
        assert "--force" in _one_line_error(capsys.readouterr().err)
        assert out.read_bytes() == b"precious"
    assert main(["convert", str(src), "--out", str(out), "--force"]) == 0
    assert open_dataset(out).n_samples == 2
    assert main([*ARGV, "--out", str(out), "--force"]) == 0
    _same(out, reference)


# --------------------------------------------------------------------------- sizes
SIZES = r"""
import resource, sys
from mgno.cli import main
resource.setrlimit(resource.RLIMIT_AS, (8 << 30, resource.getrlimit(resource.RLIMIT_AS)[1]))
for extra in (["--n", str(10**9)], ["--resolution", str(10**6)]):
    print("rc", main(sys.argv[1:] + extra), flush=True)
"""


def test_absurd_sizes_are_refused_before_allocating(tmp_path):
    # in a child limited to 8 GiB of address space: a check that comes too late
    # dies there with a MemoryError, not in the test runner
    proc = subprocess.run([sys.executable, "-c", SIZES, *ARGV, "--out", "a.h5"], cwd=tmp_path,
                          env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["rc", "1", "rc", "2"], proc.stderr
    disk, memory = proc.stderr.strip().splitlines()
    assert disk.startswith("mgno: error:") and "need about" in disk and "TiB" in disk
    assert memory.startswith("mgno: error:") and "of memory" in memory and "--resolution" in memory
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("extra, needle", [
    (["--seed", str(2**70)], "--seed"),
    (["--param", "sigma=nan"], "sigma"),
    (["--param", "tau=garbage"], "tau"),
    (["--workers", "100000"], "--workers"),
    (["--batch-size", "0"], "--batch-size"),
])
def test_garbage_options_are_one_line(tmp_path, capsys, extra, needle):
    out = tmp_path / "a.h5"
    assert main([*ARGV, *extra, "--out", str(out)]) == 2
    err = _one_line_error(capsys.readouterr().err)
    assert needle in err
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------- hostile HDF5
def _hostile(tmp_path: Path, kind: str) -> Path:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(2 * 81, dtype=np.float64).tobytes())
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.ones((2, 9, 9))
    path = tmp_path / f"{kind}.h5"
    with h5py.File(path, "w") as f:
        f["outputs"] = np.zeros((2, 1, 9, 9))
        if kind == "external-storage":
            f.create_dataset("inputs", shape=(2, 1, 9, 9), dtype="f8",
                             external=[(str(secret), 0, 2 * 81 * 8)])
        elif kind == "virtual":
            layout = h5py.VirtualLayout(shape=(2, 1, 9, 9), dtype="f8")
            layout[:, 0] = h5py.VirtualSource(str(other), "x", shape=(2, 9, 9))
            f.create_virtual_dataset("inputs", layout)
        elif kind == "external-link":
            f["inputs"] = h5py.ExternalLink(str(other), "/x")
        elif kind == "soft-link-out":
            f["far"] = h5py.ExternalLink(str(other), "/")
            f["inputs"] = h5py.SoftLink("/far/x")
    return path


KINDS = ["external-storage", "virtual", "external-link", "soft-link-out"]


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_hdf5_is_refused_naming_the_dataset(tmp_path, capsys, kind):
    path = _hostile(tmp_path, kind)
    with pytest.raises(InputError, match=r"dataset 'inputs'.*expected data stored in the file"):
        open_dataset(path)
    with pytest.raises(InputError, match="'inputs'"):
        read_arrays(path)
    out = tmp_path / "conv.h5"
    assert main(["convert", str(path), "--out", str(out)]) == 2
    err = _one_line_error(capsys.readouterr().err)
    named = "'far'" if kind == "soft-link-out" else "'inputs'"  # convert reads every member
    assert named in err and str(path) in err and "expected data stored in the file" in err
    assert not out.exists()


def test_soft_links_inside_the_file_still_read(tmp_path):
    path = tmp_path / "soft.h5"
    x = np.arange(2 * 81, dtype=np.float32).reshape(2, 1, 9, 9)
    with h5py.File(path, "w") as f:
        f["store/x"] = x
        f["outputs"] = x + 1
        f["inputs"] = h5py.SoftLink("/store/x")
    np.testing.assert_array_equal(read_arrays(path)["inputs"], x)
    out = convert(path, tmp_path / "c.h5")
    np.testing.assert_array_equal(read_arrays(out)["inputs"], x)


def test_file_size_limit_in_convert_is_one_line_and_leaves_nothing(tmp_path):
    x = np.zeros((4, 1, 64, 64), dtype=np.float32)
    src = tmp_path / "s.npz"
    np.savez(src, x=x, y=x)
    proc = _hook(tmp_path, "nocheck", 0, ["convert", str(src), "--out", "c.h5"],
                 preexec_fn=_fsize_limit(48))
    stdout, err = proc.communicate(timeout=120)
    assert "checked 1" in stdout and proc.returncode == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("mgno: error: c.h5") for line in lines), err
    assert "file size limit" in lines[0] and "File too large" in lines[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.npz"]


@pytest.mark.parametrize("failure", ["nan", "blew up"])
def test_solver_failure_from_parameters_is_one_line(tmp_path, capsys, monkeypatch, failure):
    import dataclasses

    real = gen.get_pde

    def broken(name):
        spec = real(name)

        def generate(rngs, resolution, params, device=None):
            arrays = spec.generate(rngs, resolution, params, device)
            if failure == "blew up":
                raise RuntimeError("poisson solution blew up; lower cfl")
            arrays["outputs"][-1, 0, 3, 3] = np.nan
            return arrays

        return dataclasses.replace(spec, generate=generate)

    monkeypatch.setattr(gen, "get_pde", broken)
    out = tmp_path / "n.h5"
    assert main([*ARGV, "--param", "sigma=3", "--out", str(out)]) == 2
    err = _one_line_error(capsys.readouterr().err)
    assert "'sigma': 3.0" in err and "expected parameters for which the solver converges" in err
    assert not out.exists()


@pytest.mark.parametrize("verb", ["generate", "convert"])
def test_links_and_devices_are_never_replaced_even_with_force(tmp_path, capsys, verb):
    target = tmp_path / "real.h5"
    target.write_bytes(b"keep")
    link = tmp_path / "link.h5"
    link.symlink_to(target)
    src = tmp_path / "s.npz"
    np.savez(src, x=np.zeros((2, 9, 9)), y=np.ones((2, 9, 9)))
    for out in (link, Path("/dev/null")):
        argv = ([*ARGV, "--out", str(out), "--force"] if verb == "generate"
                else ["convert", str(src), "--out", str(out), "--force"])
        assert main(argv) == 2
        assert "not a regular file" in _one_line_error(capsys.readouterr().err)
    assert link.is_symlink() and target.read_bytes() == b"keep"
    assert Path("/dev/null").is_char_device()


def test_convert_refuses_a_pipe_as_source(tmp_path, capsys):
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    assert main(["convert", str(fifo), "--out", str(tmp_path / "x.h5")]) == 2
    assert "not a regular file" in _one_line_error(capsys.readouterr().err)


def test_empty_sources_and_one_node_grids_are_refused(tmp_path, capsys):
    src = tmp_path / "empty.npz"
    np.savez(src, x=np.zeros((0, 9, 9)), y=np.zeros((0, 9, 9)))
    assert main(["convert", str(src), "--out", str(tmp_path / "e.h5")]) == 2
    assert "expected at least one sample" in _one_line_error(capsys.readouterr().err)
    tiny = tmp_path / "tiny.h5"
    with h5py.File(tiny, "w") as f:  # a grid of one node: no spacing, no stencil
        f["inputs"] = np.zeros((4, 1, 1, 1), np.float32)
        f["outputs"] = np.zeros((4, 1, 1, 1), np.float32)
    with pytest.raises(InputError, match="expected at least 2 nodes per axis"):
        open_dataset(tiny)
    assert not (tmp_path / "e.h5").exists()


def test_convert_refuses_an_unfinished_generation(tmp_path, capsys):
    src = tmp_path / "unfinished.h5"
    with h5py.File(src, "w") as f:
        f["inputs"] = np.zeros((4, 1, 9, 9), np.float32)
        f["outputs"] = np.zeros((4, 1, 9, 9), np.float32)
        f.attrs["complete"] = False
    assert main(["convert", str(src), "--out", str(tmp_path / "c.h5")]) == 2
    assert "'complete' is false" in _one_line_error(capsys.readouterr().err)
    assert not (tmp_path / "c.h5").exists()


@pytest.mark.parametrize("device", ["bogus", "cuda:99"])
def test_a_device_that_does_not_exist_is_one_line(tmp_path, capsys, device):
    out = tmp_path / "d.h5"
    assert main([*ARGV, "--out", str(out), "--device", device]) == 2
    assert "--device" in _one_line_error(capsys.readouterr().err)
    assert not out.exists() and not Path(f"{out}.partial").exists()
