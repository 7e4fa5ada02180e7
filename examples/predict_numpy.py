"""Load a trained run and predict on NumPy arrays.

    python examples/predict_numpy.py RUN_DIR                # a run of yours
    python examples/predict_numpy.py --demo [--grid 33]      # trains a small one first

A run directory written by ``mgno train`` holds the network, its normalisers
and its recipe (safetensors + JSON). ``mgno.train.load_run`` rebuilds all of
it; ``predict_arrays`` takes raw NumPy inputs and returns raw predictions, on
the training grid or any other (the run's resolution strategy interpolates).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from mgno.data.generate import generate_dataset
from mgno.train import load_run, train


def demo_run(folder: Path, grid: int) -> tuple[Path, Path]:
    """Generate a small Darcy set and train a small MgNO on it: (run dir, test file)."""
    data, test = folder / "train.h5", folder / "test.h5"
    generate_dataset("darcy", 48, grid, seed=0, out=data, progress=False)
    generate_dataset("darcy", 8, grid, seed=1, out=test, progress=False)
    train(data, folder / "run", model="mgno", epochs=3, batch_size=8, progress=False,
          model_overrides={"channels": 8, "layers": 2})
    return folder / "run", test


def a_channels(run) -> int:
    """Input channels of a steady run's network."""
    return int(run.config["model"]["in_channels"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", nargs="?", help="a run directory written by mgno train")
    parser.add_argument("--demo", action="store_true", help="train a small run first")
    parser.add_argument("--grid", type=int, default=33, help="--demo: nodes per axis")
    args = parser.parse_args(argv)
    if not args.demo and not args.run_dir:
        parser.error("give a RUN_DIR or --demo")
    with tempfile.TemporaryDirectory() as tmp:
        if args.demo:
            run_dir, test = demo_run(Path(tmp), args.grid)
        else:
            run_dir, test = Path(args.run_dir), None
        run = load_run(run_dir, device="cpu")
        print(f"{run_dir}: {run.config['model']['model']} trained on the grid "
              f"{'x'.join(map(str, run.predictor.grid))}, epoch {run.epoch} weights")

        # your arrays: here the test file's inputs, read with h5py like any HDF5 file
        if test is not None:
            import h5py

            with h5py.File(test, "r") as f:
                a, u = f["inputs"][:], f["outputs"][:]
            pred = run.predict_arrays(a)
            err = np.linalg.norm((pred - u).reshape(len(u), -1), axis=1)
            rel = err / np.linalg.norm(u.reshape(len(u), -1), axis=1)
            print(f"inputs {a.shape} -> predictions {pred.shape}; test rel. L2 {rel.mean():.3f}")
        else:
            shape = (2, a_channels(run), *run.predictor.grid)
            pred = run.predict_arrays(np.random.default_rng(0).random(shape, dtype=np.float32))
            print(f"inputs {shape} -> predictions {pred.shape}")
        if run.task.steady:  # any other grid works the same way (the run's resolution strategy)
            other = [n + n // 2 for n in run.predictor.grid]
            x = np.random.default_rng(1).random((1, a_channels(run), *other), dtype=np.float32)
            print(f"on another grid {other}: predictions {run.predict_arrays(x).shape}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
