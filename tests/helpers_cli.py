"""Shared helpers of the command-line tests: run ``mgno`` in-process (no tests here)."""

from __future__ import annotations

from mgno.cli import main


def run_cli(argv, capsys) -> tuple[int, str, str]:
    """``mgno ARGV`` in this process: exit status, stdout, stderr."""
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def one_error_line(err: str) -> str:
    """The single ``mgno: error:`` line of a refusal (and nothing else on stderr)."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one stderr line, got {lines}"
    assert lines[0].startswith("mgno: error: "), lines[0]
    return lines[0]
