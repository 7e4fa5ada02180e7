"""Data and a trained run shared by the hybrid benchmarks (issue 15); no benchmark here.

``data_file`` generates (or reuses) a Darcy file of ``mgno generate``;
``trained_run`` trains (or reuses) an MgNO run on one. Everything lands in
the benchmark's ``--out`` folder, so a second call reuses it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

#: Network and recipe of the run the benchmarks train (full size / --quick).
FULL_NET = {"channels": 24, "layers": 4, "levels": 5}
QUICK_NET = {"channels": 8, "layers": 2, "levels": 3}


def data_file(folder: Path, name: str, pde: str, n: int, resolution: int, seed: int,
              params: dict | None = None) -> Path:
    """``folder/name.h5``: ``n`` samples of ``pde`` at ``resolution`` (generated once)."""
    from mgno.data.generate import generate_dataset
    from mgno.data.schema import open_dataset

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.h5"
    if not path.is_file():
        t0 = time.perf_counter()
        generate_dataset(pde, n, resolution, seed, path, params=params or {}, progress=False,
                         command=f"benchmarks hybrid ({name}, seed {seed})")
        print(f"generated {path} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    if open_dataset(path).n_samples != n:
        raise SystemExit(f"{path} holds another number of samples; remove it or change --out")
    return path


def trained_run(out: Path, data: Path, *, net: dict, epochs: int, batch_size: int,
                seed: int = 0) -> Path:
    """``out/run``: MgNO trained on ``data`` with its last 10 % held out for validation."""
    from mgno.train import train
    from mgno.train.run_dir import RunDir

    run = out / "run"
    if RunDir(run).weights_path.is_file():
        return run
    t0 = time.perf_counter()
    train(data, run, epochs=epochs, batch_size=batch_size, seed=seed, val_fraction=0.1,
          model_overrides=dict(net), progress=False)
    print(f"trained {run} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return run


def given_or_trained_run(given: Path | None, out: Path, *, n_train: int, resolution: int,
                         net: dict, epochs: int) -> Path:
    """``given`` (resolved), else a darcy-smooth run trained on ``n_train`` samples (seed 0)."""
    if given is not None:
        return given.resolve()
    train = data_file(out / "data", "train", "darcy-smooth", n_train, resolution, 0)
    return trained_run(out, train, net=net, epochs=epochs, batch_size=8)


def machine() -> dict:
    """The machine and software a measurement ran on."""
    import os
    import platform

    import torch

    from mgno import __version__

    return {"python": platform.python_version(), "torch": torch.__version__,
            "mgno": __version__, "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(),
            "platform": platform.platform()}


def emit(result: dict, json_path: Path | None) -> None:
    """Print ``result`` as JSON and, with ``json_path``, write it there (temp file + rename)."""
    import json

    from mgno.atomic import atomic_write_text

    text = json.dumps(result, indent=2, default=float)
    if json_path is not None:
        atomic_write_text(json_path, text + "\n")
    print(text)

