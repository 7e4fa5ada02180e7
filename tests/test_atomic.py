"""Atomic writes: the old file survives a failed write; finished files follow the umask."""

from __future__ import annotations

import os
import stat

import pytest

from mgno import atomic
from mgno.errors import InputError


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "c.json"
    atomic.atomic_write_json(target, {"v": 1})

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", boom)
    with pytest.raises(OSError):
        atomic.atomic_write_json(target, {"v": 2})
    assert target.read_text().strip().endswith("}") and '"v": 1' in target.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["c.json"]


def test_exception_in_the_writer_leaves_nothing(tmp_path):
    target = tmp_path / "plot.png"
    with pytest.raises(RuntimeError), atomic.atomic_path(target) as tmp:
        assert tmp.suffix == ".png" and tmp.parent == tmp_path
        tmp.write_bytes(b"half")
        raise RuntimeError("writer failed")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_finished_files_follow_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        atomic.atomic_write_text(tmp_path / "a.txt", "x")
        with atomic.atomic_path(tmp_path / "b.h5") as tmp:
            tmp.write_bytes(b"y")
    finally:
        os.umask(old)
    for name in ("a.txt", "b.h5"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~mask


def test_bad_destinations(tmp_path):
    with pytest.raises(InputError, match="is a folder"), atomic.atomic_path(tmp_path):
        pass
    with pytest.raises(InputError, match="does not exist"):
        with atomic.atomic_path(tmp_path / "missing" / "f.h5"):
            pass
    atomic.atomic_write_text(tmp_path / "new" / "deep" / "f.txt", "made")
    assert (tmp_path / "new" / "deep" / "f.txt").read_text() == "made"
