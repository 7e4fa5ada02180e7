"""The house rules of issue 13 that a grep can check: one home for the run's file
names (train/run_dir.py) and one for data-kind / protocol comparisons (train/task.py).
"""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "mgno"
RUN_FILES = ("config.json", "model.safetensors", "checkpoint.safetensors",
             "normalizer.safetensors", "metrics.jsonl", "calibration.json")
KIND_WORDS = r"(steady|trajectory|one-step|10-10|STEADY|TRAJECTORY|ONE_STEP|K_TO_K)"
COMPARISON = re.compile(rf"""[!=]=\s*["']?{KIND_WORDS}\b|\b{KIND_WORDS}["']?\s*[!=]=""")


def _sources(*skip: str):
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel in skip:
            continue
        yield rel, path.read_text(encoding="utf-8")


def test_run_file_names_live_in_run_dir_only():
    found = [(rel, name) for rel, text in _sources("train/run_dir.py")
             for name in RUN_FILES if f'"{name}"' in text or f"'{name}'" in text]
    assert found == []


def test_kind_and_protocol_comparisons_live_in_task_only():
    found = []
    for rel, text in _sources("train/task.py"):
        if rel.startswith(("data/", "pde/")):
            continue  # the schema's own layout, below train/
        found += [(rel, n + 1) for n, line in enumerate(text.splitlines())
                  if COMPARISON.search(line.split("#")[0])]
    assert found == []
