"""The benchmark scripts' own bookkeeping (not their measurements)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from mgno.errors import InputError

SCRIPTS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_coarse_to_fine_resume_keeps_only_runs_of_the_same_measurement(tmp_path):
    c2f = _load("bench_coarse_to_fine")
    meta = {"data": {"pde": "darcy-smooth", "resolution": 64}, "recipe": {"epochs": 12},
            "threads": 1}
    out = tmp_path / "r.json"
    assert c2f.finished_runs(str(out), meta) == []  # nothing yet
    runs = [{"spec": "fno", "seed": 0}]
    out.write_text(json.dumps({"meta": {**meta, "data": {**meta["data"], "paths": ["a"]}},
                               "runs": runs}))
    assert c2f.finished_runs(str(out), meta) == runs
    for other in ({**meta, "threads": 2}, {**meta, "recipe": {"epochs": 6}},
                  {**meta, "data": {"pde": "darcy-smooth", "resolution": 128}}):
        with pytest.raises(InputError, match="--resume: .* another"):
            c2f.finished_runs(str(out), other)
    legacy = {"meta": {k: v for k, v in meta.items() if k != "threads"}, "runs": runs}
    out.write_text(json.dumps(legacy))  # written before threads were recorded: one thread
    assert c2f.finished_runs(str(out), meta) == runs
    out.write_text("[1, 2")
    with pytest.raises(InputError, match="not a results file of this bench"):
        c2f.finished_runs(str(out), meta)
