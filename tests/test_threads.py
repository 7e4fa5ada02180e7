"""--threads: the default follows CPU affinity; bad values are one-line errors, too many clamp."""

from __future__ import annotations

import argparse
import os

import pytest
import torch

from mgno import threads
from mgno.errors import InputError
from mgno.threads import available_cores, parse_threads, resolve_threads, use_threads


def test_cores_are_the_affinity_not_the_machine():
    if hasattr(os, "sched_getaffinity"):
        assert available_cores() == len(os.sched_getaffinity(0))


def test_auto_leaves_out_cores_that_other_work_keeps_busy(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    monkeypatch.setattr(threads, "busy_cores", lambda *a: 0.1)
    assert resolve_threads(None) == 2 == resolve_threads("auto")
    monkeypatch.setattr(threads, "busy_cores", lambda *a: 0.55)  # the machine's own noise
    assert resolve_threads("auto") == 2
    monkeypatch.setattr(threads, "busy_cores", lambda *a: 0.75)  # a busy process
    assert resolve_threads("auto") == 1
    monkeypatch.setattr(threads, "busy_cores", lambda *a: 2.0)
    assert resolve_threads("auto") == 1  # never below one


@pytest.mark.parametrize(("env", "expected"), [("1", 1), ("3", 3), ("16", 4), ("0", 4), ("2,1", 2),
                                               ("x", 4), ("", 4)])
def test_auto_takes_no_more_than_omp_num_threads(monkeypatch, env, expected):
    # a bench child (OMP_NUM_THREADS=1) on an idle machine took both cores with auto,
    # then slowed ~10x when the bench's other job started (benchmarks/RESULTS.md)
    monkeypatch.setenv("OMP_NUM_THREADS", env)
    monkeypatch.setattr(threads, "available_cores", lambda: 4)
    monkeypatch.setattr(threads, "busy_cores", lambda *a: 0.0)
    assert resolve_threads("auto") == expected
    assert resolve_threads(2) == 2  # an explicit count is not capped


def test_busy_fraction_from_two_stat_readings(tmp_path):
    head = "cpu  1 2 3 4 5 6 7 8 0 0\n"
    first = tmp_path / "a"
    second = tmp_path / "b"
    # cpu0: 100 ticks, all idle; cpu1: 100 ticks, 25 idle (+ iowait); cpu2 outside the set
    first.write_text(head + "cpu0 0 0 0 100 0 0 0 0 0 0\ncpu1 0 0 0 0 0 0 0 0 0 0\n"
                     "cpu2 0 0 0 0 0 0 0 0 0 0\n")
    second.write_text(head + "cpu0 0 0 0 200 0 0 0 0 0 0\ncpu1 70 0 5 20 5 0 0 0 0 0\n"
                      "cpu2 100 0 0 0 0 0 0 0 0 0\n")
    before, after = threads._cpu_times(first), threads._cpu_times(second)
    assert threads.busy_fraction(before, after, {0, 1}) == pytest.approx(0.75)
    assert threads.busy_fraction(before, after, {0, 1, 2}) == pytest.approx(1.75)


def test_busy_cores_is_within_the_available_cores():
    assert 0.0 <= threads.busy_cores(0.05) <= available_cores()


@pytest.mark.parametrize("bad", [0, -3, "x", 1.5])
def test_bad_values_are_input_errors(bad):
    with pytest.raises(InputError, match="--threads"):
        resolve_threads(bad)


def test_too_many_is_clamped_with_a_warning(capsys):
    assert resolve_threads(available_cores() + 5) == available_cores()
    assert "warning" in capsys.readouterr().err


def test_use_threads_sets_torch():
    before = torch.get_num_threads()
    try:
        assert use_threads(1) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_parse_threads():
    assert parse_threads(" 2 ") == 2 and parse_threads("AUTO") == "auto"
    with pytest.raises(argparse.ArgumentTypeError):
        parse_threads("two")
