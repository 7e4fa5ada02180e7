"""`mgno --help` does not pay for torch: the CLI imports a verb's modules only to run it."""

from __future__ import annotations

import subprocess
import sys


def _modules_after(code: str) -> set[str]:
    probe = code + "\nimport sys\nprint(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe],
                         capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_building_the_parser_imports_no_torch():
    mods = _modules_after("from mgno.cli import build_parser\nbuild_parser()")
    assert "torch" not in mods and "mgno.nn" not in mods


def test_help_runs_without_torch_and_lists_the_families_on_demand():
    code = ("import contextlib, io\nfrom mgno.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
            "    main(['--help'])")
    assert "torch" not in _modules_after(code)
    out = subprocess.run([sys.executable, "-m", "mgno.cli", "train", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "network family: mgno, fno" in out


def test_mgno_package_names_load_on_first_use():
    mods = _modules_after("import mgno\nassert 'create_model' in dir(mgno)")
    assert "torch" not in mods
    mods = _modules_after("import mgno\nmgno.create_model")
    assert "torch" in mods
