"""Markdown tables of the NS2 variant runs (benchmarks/results_ns_positional_*.json).

One row per run: the 10-step rollout rel. L2 from frame 1, the rolled-out
error after steps 1 / 5 / 10, teacher-forced single-step errors on the test
file (t = 1, 2, 3, 5, 10), best validation error and the median seconds per
epoch; then the mean and spread (min-max) of every variant over its seeds.
The bench's seed-0 MgNO and FNO (``results_bench_cpu_ns_start1.json``) are
listed first for comparison::

    .venv/bin/python benchmarks/ns_positional_table.py
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TF_STEPS = (1, 2, 3, 5, 10)


def _rows() -> list[tuple[str, int, dict]]:
    rows = []
    bench = HERE / "results_bench_cpu_ns_start1.json"
    if bench.is_file():
        task = json.loads(bench.read_text())["tasks"][0]["models"]
        for family in ("mgno", "fno"):
            m = task[family]
            rows.append((f"{family} (bench)", 0, {
                "rel_l2": m["rel_l2"], "per_step": m["rel_l2_per_step"], "tf": None,
                "val": m["best_val_rel_l2"], "s_epoch": m["seconds_per_epoch_median"]}))
    for path in sorted(HERE.glob("results_ns_positional_*.json")):
        match = re.fullmatch(r"results_ns_positional_(.+)_s(\d+)\.json", path.name)
        if match is None:
            continue
        r = json.loads(path.read_text())
        vals = [v for _e, v, _s in r["val_curve"] if v is not None]
        secs = [s for _e, _v, s in r["val_curve"] if s is not None]
        rows.append((match.group(1), int(match.group(2)), {
            "rel_l2": r["eval"]["rel_l2"], "per_step": r["eval"]["rel_l2_per_step"],
            "tf": r["teacher_forced"]["ns_test.h5"]["model"],
            "val": min(vals) if vals else None,
            "s_epoch": statistics.median(secs) if secs else None}))
    return rows


def _f(x: float | None, fmt: str = ".3f") -> str:
    return "-" if x is None else format(x, fmt)


def main() -> int:
    rows = _rows()
    print("| variant | seed | rollout rel. L2 | after step 1 / 5 / 10 | teacher-forced t = "
          + " / ".join(map(str, TF_STEPS)) + " | best val | s/epoch |")
    print("|---|---|---|---|---|---|---|")
    for name, seed, m in rows:
        ps = m["per_step"]
        tf = " / ".join(_f(m["tf"][t]) for t in TF_STEPS) if m["tf"] else "-"
        print(f"| {name} | {seed} | {_f(m['rel_l2'], '.4f')} | {_f(ps[0])} / {_f(ps[4])} / "
              f"{_f(ps[9])} | {tf} | {_f(m['val'])} | {_f(m['s_epoch'], '.0f')} |")
    groups: dict[str, list[float]] = {}
    for name, _seed, m in rows:
        groups.setdefault(name.replace(" (bench)", ""), []).append(m["rel_l2"])
    print("\n| variant | seeds | mean rollout rel. L2 | min - max |")
    print("|---|---|---|---|")
    for name, errs in groups.items():
        print(f"| {name} | {len(errs)} | {statistics.mean(errs):.4f} | "
              f"{min(errs):.4f} - {max(errs):.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
