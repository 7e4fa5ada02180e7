"""The callbacks of a ``mgno train`` run: files, progress, signals and the run's lock.

:class:`RunCallbacks` connects :func:`mgno.train.engine.fit` to a
:class:`~mgno.train.run_dir.RunDir` (best weights, checkpoint, metrics), a
:class:`~mgno.train.progress.Progress` bar and a :class:`StopFlag` set by
SIGINT/SIGTERM. :class:`RunLock` holds the run directory's
:class:`~mgno.lock.OutputLock` on rank 0, agreed on by every process.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from mgno.errors import InputError
from mgno.lock import OutputLock
from mgno.train.checkpoint import rng_state
from mgno.train.distributed import DistContext, all_reduce_max
from mgno.train.engine import Callbacks, Fitting, TrainState
from mgno.train.progress import Progress
from mgno.train.run_dir import RunDir


class StopFlag:
    """Set by SIGINT/SIGTERM; a second signal interrupts at once."""

    def __init__(self) -> None:
        self.signum = 0

    def __call__(self, signum, frame) -> None:
        if self.signum:
            raise KeyboardInterrupt
        self.signum = signum
        print(
            f"mgno: {signal.Signals(signum).name} received; saving a checkpoint at the next "
            "step (send again to stop at once)",
            file=sys.stderr,
            flush=True,
        )


@contextmanager
def catch_signals(flag: StopFlag) -> Iterator[None]:
    """Route SIGINT and SIGTERM to ``flag`` (main thread only), restoring the old handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in old:
        signal.signal(s, flag)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


class RunCallbacks(Callbacks):
    """Write the run's files and drive the progress bar.

    Parameters
    ----------
    run_dir:
        Where the files go.
    training_grid:
        The grid record stored with the best weights.
    bar:
        Progress output.
    flag:
        The stop request set by signals.
    """

    def __init__(self, run_dir: RunDir, training_grid: dict, bar: Progress, flag: StopFlag):
        self.run_dir = run_dir
        self.training_grid = training_grid
        self.bar = bar
        self.flag = flag

    def should_stop(self) -> bool:
        return self.flag.signum > 0

    def on_epoch_start(self, epoch: int, step: int) -> None:
        self.bar.start_epoch(epoch, step)

    def on_step(self, loss: float) -> None:
        self.bar.step(loss)

    def on_best(self, fitting: Fitting, state: TrainState) -> None:
        meta = {
            "epoch": str(state.best_epoch),
            "val_rel_l2": json.dumps(state.best_val),
            "training_grid": json.dumps(self.training_grid),
        }
        self.run_dir.write_weights(fitting.model.state_dict(), meta)

    def on_checkpoint(self, fitting: Fitting, state: TrainState) -> None:
        sched = fitting.scheduler
        self.run_dir.save_state({
            "model": fitting.model.state_dict(),
            "optimizer": fitting.optimizer.state_dict(),
            "scheduler": sched.state_dict() if sched is not None else None,
            "rng": rng_state(),
            "counters": state.to_dict(),
        })

    def on_epoch_end(self, state: TrainState, record: dict) -> None:
        self.run_dir.write_metrics(state.history)
        self.bar.end_epoch(record)

    def diverged_message(self, state: TrainState, step: int, loss: float) -> str:
        kept = (
            f"the last good checkpoint {self.run_dir.state_path} (epoch {state.epoch}) is kept"
            if self.run_dir.has_state()
            else "no checkpoint was written yet"
        )
        return (
            f"training diverged: the loss is {loss} at epoch {state.epoch + 1}, "
            f"step {step + 1}; stopped, {kept}; expected a finite loss (try a lower --lr "
            "or gradient clipping)"
        )


class RunLock:
    """The run directory's lock, taken by rank 0 and agreed on by every process.

    Parameters
    ----------
    run_dir:
        The run directory (it must exist when :meth:`take` is called on rank 0).
    ctx:
        The process group.
    """

    def __init__(self, run_dir: RunDir, ctx: DistContext) -> None:
        self.run_dir = run_dir
        self.ctx = ctx
        self.taken = False
        self._lock: OutputLock | None = None

    def take(self, check: Callable[[], None] | None = None) -> None:
        """Take the lock (rank 0), then run ``check`` under it; all processes raise on failure."""
        error: InputError | None = None
        if self.ctx.is_main:
            try:
                self._lock = self.run_dir.lock().acquire()
                if self._lock.stale_holder:
                    print(f"mgno: {self.run_dir.path}: {self._lock.stale_holder} ended without "
                          "releasing the run; taking it over", file=sys.stderr, flush=True)
                if check is not None:
                    check()
            except InputError as err:
                self.release()
                error = err
        failed = torch.tensor([float(error is not None)], device=self.ctx.device)
        if all_reduce_max(failed, self.ctx).cpu()[0] > 0:
            raise error or InputError(
                f"{self.run_dir.path}: rank 0 could not take the run directory; see its message"
            )
        self.taken = True

    def release(self) -> None:
        """Drop the lock (a no-op when not held)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None
