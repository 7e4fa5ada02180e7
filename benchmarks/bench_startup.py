"""Start-up cost of each `mgno` verb: what a fresh process pays before it works.

    .venv/bin/python benchmarks/bench_startup.py [--repeats 5] [--json OUT.json]

For each verb, a fresh interpreter imports ``mgno.cli`` and the modules that
verb's run function imports (the CLI imports them only once it knows the
verb), timed inside the process; and the wall time of ``mgno --help`` and
``mgno VERB --help`` as whole commands. Median of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

#: verb -> the modules its run function in mgno/cli.py imports
VERB_MODULES = {
    "--help": [],
    "info": ["mgno.nn.summary"],
    "presets": ["mgno.presets"],
    "generate": ["mgno.data.generate"],
    "convert": ["mgno.data.convert"],
    "train": ["mgno.train"],
    "eval": ["mgno.train", "mgno.train.evaluate"],
    "predict": ["mgno.train"],
    "plot": ["mgno.viz"],
    "bench": ["mgno.bench"],
}

PROBE = (
    "import time, importlib\n"
    "t = time.perf_counter()\n"
    "import mgno.cli\n"
    "for m in {mods!r}:\n"
    "    importlib.import_module(m)\n"
    "print(time.perf_counter() - t)\n"
)


def import_seconds(modules: list[str], repeats: int) -> float:
    """Median seconds to import mgno.cli and ``modules`` in a fresh interpreter."""
    times = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", PROBE.format(mods=modules)],
                             capture_output=True, text=True, check=True).stdout
        times.append(float(out.strip()))
    return statistics.median(times)


def command_seconds(argv: list[str], repeats: int) -> float:
    """Median wall seconds of ``python -m mgno.cli ARGV`` (help only, exits 0)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mgno.cli", *argv], capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None, help="also write the raw numbers to this file")
    args = parser.parse_args(argv)
    rows = []
    print("| verb | imports (s) | `mgno VERB --help` (s) |\n|---|---|---|")
    for verb, modules in VERB_MODULES.items():
        help_argv = ["--help"] if verb == "--help" else [verb, "--help"]
        row = {"verb": verb, "modules": modules,
               "import_s": import_seconds(modules, args.repeats),
               "help_command_s": command_seconds(help_argv, args.repeats)}
        rows.append(row)
        print(f"| {verb} | {row['import_s']:.2f} | {row['help_command_s']:.2f} |")
    if args.json:
        record = {"command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
                  "load_at_start": os.getloadavg(), "rows": rows}
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
