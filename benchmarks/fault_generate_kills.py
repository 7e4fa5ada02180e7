"""Kill `mgno generate` at random points, resume it, compare with an uninterrupted run.

Each trial starts a fresh generation in a child process and picks its kill
point (seeded): a sample count ``k`` uniform in [0, n - 8) (two batches of 4
are left, so that the kill lands before the final rename) and a delay ``d``
uniform in [0, one batch's time of the uninterrupted run). Once ``k`` samples
carry a checksum in ``OUT.partial`` (read without HDF5 file locking), it waits
``d`` and sends SIGKILL, so the kills spread over the whole writing phase and
inside batches. It then runs the same command again to completion and
compares the final file, sample for sample and bit for bit, with the
uninterrupted one.

    nice -n 10 python benchmarks/fault_generate_kills.py \
        [--trials 20] [--seed 0] [--n 64] [--out benchmarks/results_fault_generate_kills.json]

The children run with one torch thread (OMP_NUM_THREADS=1): the figures are
about correctness, and one thread keeps a loaded machine from slowing the
solver down by oversubscription.

Raw results (every trial) go to the JSON file.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from mgno.atomic import atomic_write_json

COMMAND = ["generate", "darcy", "--resolution", "33", "--batch-size", "4", "--seed", "0",
           "--no-progress"]


def _checksummed(partial: Path) -> int | None:
    """Samples with a checksum in a partial file being written (None: not there yet)."""
    try:
        with h5py.File(partial, "r", locking=False) as f:
            return int(np.count_nonzero(f["sample_checksums"][...]))
    except (OSError, KeyError, ValueError, RuntimeError):
        return None


def _run(command: list[str], out: Path, kill: tuple[int, float] | None = None) -> dict:
    """Run the generation; with ``kill = (k, d)``, SIGKILL it ``d`` s after ``k`` samples."""
    t0 = time.monotonic()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "mgno.cli", *command, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    partial = Path(f"{out}.partial")
    seen_partial = reached = None
    while proc.poll() is None:
        now = time.monotonic() - t0
        if seen_partial is None and partial.exists():
            seen_partial = now
        if kill is not None and reached is None and seen_partial is not None:
            done = _checksummed(partial)
            if done is not None and done >= kill[0]:
                reached = now
        if reached is not None and now >= reached + kill[1]:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    _out, err = proc.communicate()
    return {"rc": proc.returncode, "seconds": time.monotonic() - t0, "partial_at": seen_partial,
            "stderr": err.strip().splitlines()[-3:]}


def _written(partial: Path) -> int | None:
    """Samples with a checksum in a partial file (None when there is none)."""
    if not partial.exists():
        return None
    with h5py.File(partial, "r") as f:
        return int(np.count_nonzero(f["sample_checksums"][...]))


def _compare(path: Path, reference: Path) -> dict:
    with h5py.File(path, "r") as a, h5py.File(reference, "r") as b:
        differing = 0
        for key in ("inputs", "outputs"):
            x, y = a[key][...], b[key][...]
            same = np.all(x.reshape(len(x), -1) == y.reshape(len(y), -1), axis=1)
            differing = max(differing, int((~same).sum()))
        complete = bool(a.attrs["complete"])
    return {"identical": differing == 0 and complete, "samples_differing": differing,
            "complete": complete}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=64, help="samples per generation")
    parser.add_argument("--out", default=str(Path(__file__).with_name(
        "results_fault_generate_kills.json")))
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    command = [*COMMAND, "--n", str(args.n)]
    with tempfile.TemporaryDirectory(prefix="mgno_kills_") as tmp:
        reference = Path(tmp) / "reference.h5"
        ref = _run(command, reference)
        assert ref["rc"] == 0, ref
        batch_s = (ref["seconds"] - (ref["partial_at"] or 0.0)) / -(-args.n // 4)
        trials = []
        for i in range(args.trials):
            out = Path(tmp) / f"trial{i}.h5"
            kill = (int(rng.integers(0, max(1, args.n - 8))), float(rng.uniform(0.0, batch_s)))
            killed = _run(command, out, kill)
            written = _written(Path(f"{out}.partial"))
            resumed = _run(command, out)
            row = {"trial": i, "kill_after_samples": kill[0], "kill_delay_s": round(kill[1], 3),
                   "partial_appeared_s": killed["partial_at"], "killed_rc": killed["rc"],
                   "finished_before_kill": killed["rc"] == 0,
                   "samples_checksummed_at_kill": written, "resume_rc": resumed["rc"],
                   "resume_seconds": round(resumed["seconds"], 2),
                   "resume_stderr": resumed["stderr"]}
            row.update(_compare(out, reference) if out.exists() else {"identical": False})
            trials.append(row)
            print(f"trial {i}: kill {kill[1]:.2f} s after {kill[0]} samples, {written} written, "
                  f"resume rc {resumed['rc']}, identical {row['identical']}", file=sys.stderr)
    summary = {
        "trials": len(trials),
        "identical": sum(t["identical"] for t in trials),
        "killed_by_sigkill": sum(t["killed_rc"] == -signal.SIGKILL for t in trials),
        "killed_while_writing": sum(t["killed_rc"] == -signal.SIGKILL
                                    and t["samples_checksummed_at_kill"] is not None
                                    for t in trials),
        "killed_after_rename": sum(t["killed_rc"] == -signal.SIGKILL
                                   and t["samples_checksummed_at_kill"] is None
                                   for t in trials),
        "resume_exit_0": sum(t["resume_rc"] == 0 for t in trials),
        "resume_refused_complete_file": sum(t["resume_rc"] == 2 for t in trials),
        "partial_samples_at_kill": [t["samples_checksummed_at_kill"] for t in trials],
    }
    atomic_write_json(args.out, {
        "command": "mgno " + " ".join(command) + " --out FILE.h5",
        "benchmark": "nice -n 10 python benchmarks/fault_generate_kills.py "
                     f"--trials {args.trials} --seed {args.seed} --n {args.n}",
        "reference": {"seconds": round(ref["seconds"], 2),
                      "partial_appeared_s": ref["partial_at"], "batch_seconds": batch_s},
        "load_average_at_end": list(os.getloadavg()),
        "summary": summary,
        "trials": trials,
    })
    print(summary)


if __name__ == "__main__":
    main()
