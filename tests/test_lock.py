"""One writer per output: the lock refuses a second live writer and outlives no process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from mgno.lock import OutputBusyError, OutputLock, lock_holder, lock_path_for

HOLD = """
import sys, time
from mgno.lock import OutputLock
lock = OutputLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(60)
"""


def _holder(target):
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(target)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_lock_file_names(tmp_path):
    assert lock_path_for(tmp_path) == tmp_path / ".lock"
    assert lock_path_for(tmp_path / "a.h5") == tmp_path / "a.h5.lock"


def test_second_writer_is_refused_naming_the_holder(tmp_path):
    target = tmp_path / "data.h5"
    proc = _holder(target)
    try:
        with pytest.raises(OutputBusyError, match=rf"process {proc.pid} .*is writing it"):
            OutputLock(target).acquire()
    finally:
        proc.kill()
        proc.wait()


def test_killed_holder_leaves_a_stale_lock_that_is_taken_over(tmp_path):
    target = tmp_path / "data.h5"
    proc = _holder(target)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert lock_path_for(target).exists()  # the record stays behind...
    with OutputLock(target) as lock:  # ...but the kernel lock went with the process
        assert lock.stale_holder is not None and str(proc.pid) in lock.stale_holder
    assert not lock_path_for(target).exists()


def test_release_lets_the_next_writer_in(tmp_path):
    target = tmp_path / "run"
    target.mkdir()
    with OutputLock(target) as lock:
        assert lock.held
        with pytest.raises(OutputBusyError):
            OutputLock(target).acquire()
    assert not lock.held
    with OutputLock(target) as again:
        assert again.stale_holder is None


def test_unwritable_folder_is_one_line_input_error(tmp_path):
    if os.geteuid() == 0:
        target = tmp_path / "missing" / "data.h5"  # root writes anywhere: use a missing folder
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        target = ro / "data.h5"
    with pytest.raises(ValueError, match="cannot create the lock file"):
        OutputLock(target).acquire()


def test_lock_holder_names_a_live_holder_and_creates_nothing(tmp_path):
    target = tmp_path / "data.h5"
    assert lock_holder(lock_path_for(target)) is None
    assert not lock_path_for(target).exists()
    proc = _holder(target)
    try:
        assert str(proc.pid) in lock_holder(lock_path_for(target))
    finally:
        proc.kill()
        proc.wait()
    assert lock_holder(lock_path_for(target)) is None  # stale: nobody holds it
