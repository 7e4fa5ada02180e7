"""`mgno info` and `mgno presets`: output contract and errors."""

from __future__ import annotations

import json

from mgno.cli import main


def test_info_json_prints_exactly_one_object(capsys):
    assert main(["info", "--preset", "darcy-rough", "--json"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out)
    assert summary["parameters"] == 572662
    assert summary["levels"] == 6 and summary["channels"] == 24 and summary["layers"] == 4
    assert summary["level_grids"][-1] == [8, 8]


def test_info_text_and_custom_grid(capsys):
    assert main(["info", "--preset", "darcy-smooth", "--grid", "211", "211"]) == 0
    out = capsys.readouterr().out
    assert "parameters   738,574" in out
    assert "211x211 -> 106x106 -> 53x53 -> 27x27 -> 14x14 -> 7x7" in out


def test_unknown_preset_is_a_one_line_error_with_exit_code_2(capsys):
    assert main(["info", "--preset", "darcy-wet"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mgno: error: preset: unknown name 'darcy-wet'")


def test_presets_listing(capsys):
    assert main(["presets", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) >= {"darcy-smooth", "navier-stokes"}
