"""What ``make demo`` runs: the main job end to end on an embedded default.

Generate a small Darcy set (smooth coefficient, Dirichlet boundary), train
MgNO on it for a few minutes on CPU, evaluate on held-out samples, draw the
figures, and print the test rel. L2 and where the plots are. Every step is a
public function a user can call (:func:`mgno.pde.darcy.generate_darcy`,
:func:`mgno.train.train`, :func:`mgno.train.evaluate`,
:func:`mgno.viz.plot_run`).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from mgno.data.schema import open_dataset, write_steady
from mgno.errors import InputError

#: The embedded default: 33x33 Darcy (solved on 65x65), 256 training samples.
DEMO = {
    "resolution": 33,
    "n_train": 256,
    "n_test": 64,
    "epochs": 40,
    "batch_size": 8,
    "lr": 2e-3,
    "channels": 16,
    "layers": 4,
}


def darcy_files(
    out_dir: Path, resolution: int, n_train: int, n_test: int, seed: int
) -> tuple[Path, Path]:
    """Generate (or reuse) ``train`` and ``test`` Darcy files in ``out_dir``.

    Sample ``i`` is drawn with ``numpy.random.default_rng([seed, i])``; the test
    samples follow the training ones, so the two sets never overlap. Files that
    already hold the requested sizes are reused.
    """
    from mgno.pde.darcy import generate_darcy

    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir}: exists and is not a folder; expected a folder "
                         "for the demo's data, run and figures")
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"darcy_r{resolution}_s{seed}"
    paths = (out_dir / f"{stem}_train.h5", out_dir / f"{stem}_test.h5")
    counts = (n_train, n_test)
    ranges = ((0, n_train), (n_train, n_train + n_test))
    for path, n, (lo, hi) in zip(paths, counts, ranges, strict=True):
        if path.exists() or path.is_symlink():
            if _reusable(path, n, resolution):
                continue
            raise InputError(f"{path}: exists and is not the demo's {n}-sample "
                             f"{resolution}x{resolution} Darcy file; remove it or use "
                             "another --out")
        t0 = time.perf_counter()
        parts = [
            generate_darcy(
                [np.random.default_rng([seed, i]) for i in range(a, min(a + 64, hi))], resolution
            )
            for a in range(lo, hi, 64)
        ]
        inputs = np.concatenate([p["inputs"] for p in parts])
        outputs = np.concatenate([p["outputs"] for p in parts])
        write_steady(
            path,
            inputs,
            outputs,
            pde="darcy",
            params={"variant": "smooth", "f": 1.0},
            boundary="dirichlet",
            seed=seed,
            command=f"mgno demo (samples {lo}:{hi})",
        )
        print(
            f"mgno demo: generated {n} Darcy samples at {resolution}x{resolution} -> {path} "
            f"({time.perf_counter() - t0:.1f} s)",
            file=sys.stderr,
            flush=True,
        )
    return paths


def _reusable(path: Path, n: int, resolution: int) -> bool:
    """Whether ``path`` is a data file this demo wrote with these sizes."""
    if not path.is_file():
        return False
    try:
        info = open_dataset(path)
    except ValueError:
        return False
    return info.n_samples == n and info.grid == (resolution, resolution)


def _fresh(path: Path) -> Path:
    if not path.exists():
        return path
    k = 2
    while path.with_name(f"{path.name}_{k}").exists():
        k += 1
    return path.with_name(f"{path.name}_{k}")


def _report(metrics: dict, run_dir: Path, figures: list[Path], seconds: float) -> None:
    print(
        f"test rel. L2 {metrics['rel_l2']:.4f}  rel. H1 {metrics['rel_h1']:.4f}  "
        f"({metrics['n_samples']} test samples, best epoch {metrics['epoch']}, "
        f"{seconds:.0f} s in all)"
    )
    print(f"run directory: {run_dir}")
    for fig in figures:
        print(f"plot: {fig}")


def run_demo(out_dir: str | Path = "demo_out", seed: int = 0, **options) -> dict:
    """Generate a small Darcy set, train MgNO, evaluate and plot.

    Parameters
    ----------
    out_dir:
        Folder for the data, the run directory and the figures. Data files are
        reused on a second call; each call trains into a new run folder.
    seed:
        Seeds the data and the training.
    **options:
        Overrides of :data:`DEMO` (``resolution``, ``n_train``, ``n_test``,
        ``epochs``, ``batch_size``, ``lr``, ``channels``, ``layers``).

    Returns a dict: ``run_dir``, ``rel_l2`` and ``rel_h1`` on the test set,
    ``figures``, ``seconds``.
    """
    from mgno.train import evaluate, train
    from mgno.viz import plot_run

    unknown = sorted(set(options) - set(DEMO))
    if unknown:
        raise InputError(f"run_demo: unknown option {unknown[0]!r}; expected any of {sorted(DEMO)}")
    o = {**DEMO, **options}
    out = Path(out_dir)
    t0 = time.perf_counter()
    train_h5, test_h5 = darcy_files(out, o["resolution"], o["n_train"], o["n_test"], seed)
    run_dir = _fresh(out / f"run_s{seed}")
    result = train(
        train_h5,
        run_dir,
        seed=seed,
        epochs=o["epochs"],
        batch_size=o["batch_size"],
        lr=o["lr"],
        scheduler_step="step",
        val_fraction=0.125,
        model_overrides={"channels": o["channels"], "layers": o["layers"]},
    )
    if result.status != "finished":
        print(
            f"mgno demo: training {result.status}; resume with "
            f"`mgno train --data {train_h5} --out {run_dir} --resume`",
            file=sys.stderr,
        )
        raise KeyboardInterrupt
    metrics = evaluate(run_dir, test_h5)
    # the demo redraws its own figure of the newest run on every call
    figures = plot_run(run_dir, test_h5, out / f"darcy_s{seed}.png", force=True)
    seconds = time.perf_counter() - t0
    _report(metrics, run_dir, figures, seconds)
    return {
        "run_dir": str(run_dir),
        "rel_l2": metrics["rel_l2"],
        "rel_h1": metrics["rel_h1"],
        "figures": [str(f) for f in figures],
        "seconds": seconds,
    }
