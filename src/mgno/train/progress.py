"""Progress reporting on stderr: tqdm bars on a terminal, one line per epoch otherwise."""

from __future__ import annotations

import sys
import time

from tqdm import tqdm


class Progress:
    """Epoch and step bars (epoch, step, loss, ETA) or plain per-epoch lines.

    Parameters
    ----------
    epochs, steps_per_epoch:
        Sizes of the two bars.
    enabled:
        False prints nothing (other ranks, ``--quiet``).
    bars:
        Force bars on (True) or off (False); default: bars when stderr is a TTY.
    """

    def __init__(
        self, epochs: int, steps_per_epoch: int, enabled: bool = True, bars: bool | None = None
    ) -> None:
        self.enabled = enabled
        self.bars = enabled and (sys.stderr.isatty() if bars is None else bars)
        self.epochs = epochs
        self.steps = steps_per_epoch
        self._outer = None
        self._inner = None
        self._t0 = time.perf_counter()
        self._first_epoch = None

    def __enter__(self) -> Progress:
        if self.bars:
            self._outer = tqdm(
                total=self.epochs,
                desc="epochs",
                unit="epoch",
                file=sys.stderr,
                position=0,
                dynamic_ncols=True,
            )
        return self

    def start_epoch(self, epoch: int, step: int = 0) -> None:
        """Begin epoch ``epoch`` (0-based) at step ``step``."""
        if self._first_epoch is None:
            self._first_epoch = epoch
            if self._outer is not None:
                self._outer.n = epoch
                self._outer.refresh()
        if self.bars:
            if self._inner is not None:
                self._inner.close()
            self._inner = tqdm(
                total=self.steps,
                initial=step,
                desc=f"epoch {epoch + 1}",
                unit="step",
                file=sys.stderr,
                position=1,
                leave=False,
                dynamic_ncols=True,
            )

    def step(self, loss: float) -> None:
        """One optimiser step with its loss."""
        if self._inner is not None:
            self._inner.update(1)
            self._inner.set_postfix(loss=f"{loss:.4g}", refresh=False)

    def end_epoch(self, record: dict) -> None:
        """An epoch finished; ``record`` is its metrics line."""
        if not self.enabled:
            return
        shown = {k: v for k, v in record.items()
                 if k in ("train_loss", "val_rel_l2", "coarse_val_rel_l2")}
        text = " ".join(f"{k}={v:.4g}" for k, v in shown.items())
        if "grid" in record:  # a coarse-to-fine run: the grid of the epoch's phase
            text += " grid=" + "x".join(str(n) for n in record["grid"])
        if self._outer is not None:
            self._outer.update(1)
            self._outer.set_postfix_str(text)
            return
        done = record["epoch"] - (self._first_epoch or 0)
        elapsed = time.perf_counter() - self._t0
        eta = elapsed / max(done, 1) * (self.epochs - record["epoch"])
        best = " *" if record.get("best") else ""
        print(
            f"epoch {record['epoch']}/{self.epochs} {text} lr={record.get('lr', 0):.3g} "
            f"[{elapsed:.1f}s, eta {eta:.1f}s]{best}",
            file=sys.stderr,
            flush=True,
        )

    def __exit__(self, *exc) -> None:
        for b in (self._inner, self._outer):
            if b is not None:
                b.close()
