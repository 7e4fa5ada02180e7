"""Child processes of the bench: start, watch, stop at a deadline, pass signals on.

Every training, evaluation and data generation of ``mgno bench`` runs in its
own process, so that its peak resident memory comes from the kernel
(``os.wait4``) and a deadline can stop it with SIGTERM: a training then saves
a checkpoint at its next step and exits 130. A SIGTERM to the bench itself is
turned into :class:`KeyboardInterrupt` (:func:`sigterm_stops_children`), so
the bench stops its children in turn and waits for them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: Seconds a stopped child gets to write its checkpoint before it is killed.
STOP_GRACE_S = 300.0


def child_env(threads: int | None) -> dict[str, str]:
    """Our environment, with OpenMP/MKL threads set to ``threads`` when given."""
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    return env


def job_argv(job_file: Path) -> list[str]:
    """The command running one job file (:mod:`mgno.bench.job`)."""
    return [sys.executable, "-m", "mgno.bench.job", str(job_file)]


class Child:
    """A child process watched by ``wait4`` (for its peak RSS), stopped at a deadline.

    Its stdout goes to our stderr: ``mgno bench --json`` owns stdout.

    Attributes
    ----------
    result:
        ``(exit code, resource.struct_rusage, stopped at the deadline)`` once done.
    """

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(argv, env=env, stdout=2)
        self.stopped_at: float | None = None
        self.result: tuple[int, Any, bool] | None = None

    def stop(self) -> None:
        """SIGTERM: a training saves a checkpoint and exits 130."""
        if self.stopped_at is None and self.result is None:
            self.proc.send_signal(signal.SIGTERM)
            self.stopped_at = time.monotonic()

    def poll(self, deadline: float | None) -> bool:
        """True once the child has exited; stops it at ``deadline``, kills it after a grace."""
        if self.result is not None:
            return True
        pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
        if pid:
            self._done(status, usage)
            return True
        now = time.monotonic()
        if deadline is not None and self.stopped_at is None and now >= deadline:
            self.stop()
        elif self.stopped_at is not None and now - self.stopped_at > STOP_GRACE_S:
            self.proc.kill()
        return False

    def wait(self) -> None:
        """Block until the child exits (after :meth:`stop`)."""
        if self.result is None:
            _pid, status, usage = os.wait4(self.proc.pid, 0)
            self._done(status, usage)

    def _done(self, status: int, usage: Any) -> None:
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.result = (self.proc.returncode, usage, self.stopped_at is not None)


def run_process(
    argv: list[str], env: dict[str, str], deadline: float | None
) -> tuple[int, Any, bool]:
    """Run ``argv`` to its end; SIGTERM at ``deadline`` (then SIGKILL after a grace period).

    Returns
    -------
    tuple
        The exit code, the child's ``resource.struct_rusage`` and whether it
        was stopped at the deadline.
    """
    child = Child(argv, env)
    try:
        while not child.poll(deadline):
            time.sleep(0.2)
    except KeyboardInterrupt:
        child.stop()
        child.wait()
        raise
    assert child.result is not None
    return child.result


def exit_state(code: int, stopped: bool) -> str:
    """``finished``, ``interrupted`` (exit 130, SIGTERM or stopped by us) or ``failed``."""
    if code == 0:
        return "finished"
    if code in (130, -signal.SIGTERM) or stopped:
        return "interrupted"
    return "failed"


@contextmanager
def sigterm_stops_children() -> Iterator[None]:
    """Within the block, SIGTERM to the bench acts like Ctrl-C.

    The running children then get SIGTERM in turn, save their checkpoints and
    are waited for, instead of being orphaned by a parent that dies at once.
    Only the main thread can set signal handlers; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
