"""How well ``mgno predict --estimate`` ranks and flags errors (issue 15, part 1).

An MgNO run is trained on Darcy smooth data (or given with ``--run``), its
estimate calibrated on its own validation split, then it predicts four test
sets: in distribution, another contrast (``a_low``), another GRF length scale
(``tau``) and another grid (``2 R - 1`` nodes, the run resampling to its
training grid). Over all test samples together the script reports

* Spearman's rank correlation of the estimate with the true relative L2
  error (target >= 0.8), and of the raw residual for comparison;
* the share of samples whose true error exceeds 3x the median true error
  that are flagged (target >= 90 %), and the flags raised on the others;

and the same per test set. Prints one JSON object (``--json FILE`` keeps it).

Usage (full size; about an hour of training on a quiet 8-core CPU)::

    .venv/bin/python benchmarks/bench_hybrid_estimate.py --out /tmp/bench_hyb_est \\
        --json benchmarks/results_hybrid_estimate.json

Quick (a minute or two on 2 cores; numbers only show the script works)::

    .venv/bin/python benchmarks/bench_hybrid_estimate.py --quick --out /tmp/bench_hyb_est_q
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hybrid_setup import FULL_NET, QUICK_NET, data_file, emit, given_or_trained_run, machine  # noqa: E402

#: The shifted test sets: name -> (generator parameters, grid factor).
SHIFTS = {
    "in-distribution": ({}, 1),
    "contrast": ({"a_low": 1.0}, 1),
    "length-scale": ({"tau": 6.0}, 1),
    "grid": ({}, 2),
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, type=Path, help="folder for data, run, predictions")
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks the script runs")
    p.add_argument("--run", type=Path, default=None,
                   help="an existing darcy-smooth run (default: train one in --out)")
    p.add_argument("--resolution", type=int, default=None, help="training grid (85; quick 33)")
    p.add_argument("--n-train", type=int, default=None, help="training samples (1000; quick 80)")
    p.add_argument("--n-test", type=int, default=None, help="samples per test set (50; quick 12)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (100; quick 8)")
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    p.add_argument("--json", type=Path, default=None, help="also write the JSON here")
    return p.parse_args(argv)


def sizes(args: argparse.Namespace) -> dict:
    full = {"resolution": 85, "n_train": 1000, "n_test": 50, "epochs": 100, "net": FULL_NET}
    quick = {"resolution": 33, "n_train": 80, "n_test": 12, "epochs": 8, "net": QUICK_NET}
    out = dict(quick if args.quick else full)
    for key in ("resolution", "n_train", "n_test", "epochs"):
        if getattr(args, key) is not None:
            out[key] = getattr(args, key)
    return out


def test_sets(folder: Path, size: dict) -> dict[str, Path]:
    """Generate (or reuse) the four test sets."""
    files = {}
    for k, (name, (params, factor)) in enumerate(SHIFTS.items()):
        res = factor * (size["resolution"] - 1) + 1
        files[name] = data_file(folder, f"test_{name}", "darcy-smooth", size["n_test"], res,
                                100 + k, params)
    return files


def measure(run: Path, name: str, test: Path, out: Path) -> dict:
    """Predict ``test`` with --estimate; per-sample true errors and the file's checks."""
    from mgno.data.schema import read_arrays, read_per_sample
    from mgno.train import predict
    from mgno.train.hybrid import relative_errors

    pred = out / f"pred_{name}.h5"
    t0 = time.perf_counter()
    predict(run, test, pred, estimate=True, force=True, device="cpu")
    seconds = time.perf_counter() - t0
    per = read_per_sample(pred)
    true = relative_errors(read_arrays(pred)["outputs"], read_arrays(test)["outputs"])
    return {"set": name, "seconds": seconds, "true": true, **per}


def flags(true: np.ndarray, est: np.ndarray, flagged: np.ndarray, factor: float = 3.0) -> dict:
    """Of the samples with true error above ``factor`` x the median: the share flagged."""
    bad = true > factor * np.median(true)
    return {"bad": int(bad.sum()),
            "bad_flagged": int((bad & flagged).sum()),
            "share_flagged": float((bad & flagged).sum() / bad.sum()) if bad.any() else None,
            "others_flagged": int((~bad & flagged).sum()),
            "others": int((~bad).sum()),
            # the same with a threshold fitted to these samples: 3x the median estimate
            "share_above_3x_median_estimate": float(
                (bad & (est > factor * np.median(est))).sum() / bad.sum()) if bad.any() else None}


def summary(rows: list[dict]) -> dict:
    """Rank correlations and flag shares over all samples and per set."""
    from mgno.train.hybrid import spearman

    def stats(sel: list[dict]) -> dict:
        true = np.concatenate([r["true"] for r in sel])
        est = np.concatenate([r["error_estimate"] for r in sel])
        res = np.concatenate([r["residual"] for r in sel])
        flagged = np.concatenate([r["error_flag"] for r in sel]).astype(bool)
        return {"n": int(len(true)), "median_true": float(np.median(true)),
                "median_estimate": float(np.median(est)),
                "spearman_estimate": spearman(est, true), "spearman_residual": spearman(res, true),
                "median_ratio_estimate_to_true": float(np.median(est / true)),
                "flags": flags(true, est, flagged)}

    return {"all": stats(rows), "per_set": {r["set"]: stats([r]) for r in rows}}


def main(argv=None) -> dict:
    args = parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    out = args.out.resolve()
    size = sizes(args)
    t0 = time.perf_counter()
    run = given_or_trained_run(args.run, out, n_train=size["n_train"],
                               resolution=size["resolution"], net=size["net"],
                               epochs=size["epochs"])
    files = test_sets(out / "data", size)
    rows = [measure(run, name, path, out) for name, path in files.items()]
    cal = json.loads((run / "calibration.json").read_text())
    result = {"benchmark": "hybrid_estimate", "quick": args.quick, "sizes": size,
              "shifts": {k: {"params": v[0], "grid_factor": v[1]} for k, v in SHIFTS.items()},
              "calibration": cal, **summary(rows), "seconds": time.perf_counter() - t0,
              "command": " ".join(sys.argv), "machine": machine()}
    emit(result, args.json)
    return result


if __name__ == "__main__":
    main()
