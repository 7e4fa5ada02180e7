"""--threads: the default follows CPU affinity; bad values are one-line errors, too many clamp."""

from __future__ import annotations

import argparse
import os

import pytest
import torch

from mgno.errors import InputError
from mgno.threads import available_cores, parse_threads, resolve_threads, use_threads


def test_default_is_the_affinity_not_the_machine():
    if hasattr(os, "sched_getaffinity"):
        assert available_cores() == len(os.sched_getaffinity(0))
    assert resolve_threads(None) == available_cores() == resolve_threads("auto")


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
