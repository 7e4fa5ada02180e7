"""The hostile battery of issue 20: the CLI as a hostile user and a flaky machine would use it.

Every case runs ``python -m mgno.cli ...`` as a subprocess from a temporary
folder outside the repository (the interpreter given by ``--python``, the
sources by ``--src``, which goes first on ``PYTHONPATH``) and classifies the
outcome:

``clean``
    exit 0 where success is expected, or exit 1/2 (as the case expects) with
    exactly one line matching ``mgno: error:`` (argparse's ``mgno VERB:
    error:`` counts too) and that line the last one on stderr;
``traceback``
    stderr holds "Traceback";
``signal``
    a negative return code or an exit status >= 128;
``overwrite``
    an output that existed before changed although ``--force`` was not given;
``corrupt``
    a file marked complete that differs from an uninterrupted run (or two
    writers both reported success into one output: a mixed result);
``other``
    everything else: a wrong exit code, bad input accepted, a message of
    several lines, a pointer followed out of a data file, a partial output
    left behind, a hang.

Cases are grouped by the items 1-8 of issue 20 (``cli`` collects the bad
values of every verb and flag). Cases that need privileges (a read-only or
full tmpfs mounted in a private mount namespace with ``unshare -m``) are
skipped where ``unshare -m`` cannot mount.

Usage::

    python benchmarks/hostile_battery.py --src /work/main/src \\
        --json benchmarks/results_hostile_battery_before.json --jobs 2
    python benchmarks/hostile_battery.py --src src --only 'h5-*' --jobs 2

The summary table goes to stdout, one JSON object per case to ``--json``.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import fnmatch
import hashlib
import json
import os
import random
import re
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

CLEAN, TRACEBACK, SIGNAL, OVERWRITE, CORRUPT, OTHER, SKIPPED = (
    "clean", "traceback", "signal", "overwrite", "corrupt", "other", "skipped")
SEVERITY = [SIGNAL, TRACEBACK, CORRUPT, OVERWRITE, OTHER, SKIPPED, CLEAN]
ERROR_LINE = re.compile(r"^mgno(?: [a-z-]+)?: error: ")
OK, BAD, FAULT, FAILS, ANY = (0,), (2,), (1,), (1, 2), (0, 2)

# the tiny problem every case uses
GEN = ["generate", "darcy", "--n", "8", "--resolution", "9", "--seed", "0", "--no-progress"]
NET = ["--channels", "4", "--layers", "1", "--levels", "2"]
TRAIN = ["train", "--data", "{train}", "--out", "run", "--epochs", "1", "--batch-size", "4",
         *NET, "--quiet"]
BIG = ["--n", "24", "--resolution", "33", "--batch-size", "4", "--no-progress"]


# --------------------------------------------------------------------------- running
@dataclass
class Ctx:
    """Where and how the cases run."""

    python: str
    src: Path | None
    root: Path
    timeout: float
    seed: int
    can_mount: bool = False
    mem_limit: int = 0
    fx: dict = field(default_factory=dict)

    def env(self) -> dict:
        env = dict(os.environ)
        paths = [str(self.src)] if self.src else []
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(paths)
        env["OMP_NUM_THREADS"] = env.get("OMP_NUM_THREADS", "1")
        env["MPLBACKEND"] = "Agg"
        return env

    def argv(self, args: list[str], w: Path) -> list[str]:
        subst = {k: str(v) for k, v in self.fx.items()} | {"w": str(w)}
        return [self.python, "-m", "mgno.cli", *[a.format(**subst) for a in args]]

    def popen(self, args, w, fsize=None, wrap=None) -> subprocess.Popen:
        cmd = self.argv(args, w)
        if wrap:
            cmd = [*wrap, *cmd]

        def limit():
            os.setpgrp()
            if fsize is not None:
                resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
            if self.mem_limit:  # keep a runaway allocation from starving the machine
                resource.setrlimit(resource.RLIMIT_AS, (self.mem_limit, self.mem_limit))

        return subprocess.Popen(cmd, cwd=w, env=self.env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, preexec_fn=limit)

    def cli(self, args, w, fsize=None, wrap=None, timeout=None) -> dict:
        t0 = time.monotonic()
        proc = self.popen(args, w, fsize, wrap)
        return finish_proc(proc, args, t0, timeout or self.timeout)


def finish_proc(proc: subprocess.Popen, args, t0: float, timeout: float) -> dict:
    """Wait for ``proc`` (killing its group after ``timeout``) and record it."""
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    return {"argv": list(args), "rc": proc.returncode, "stdout": out[-2000:],
            "traceback": "Traceback" in err,
            "stderr": err[-4000:], "seconds": round(time.monotonic() - t0, 2),
            "timed_out": timed_out, "pid": proc.pid}


def classify(p: dict, expect: tuple[int, ...]) -> tuple[str, str]:
    """The category of one process outcome against the exit codes a case allows."""
    rc, err = p["rc"], p["stderr"]
    if p["timed_out"]:
        return OTHER, f"timed out after {p['seconds']} s"
    if rc < 0 or rc >= 128:
        return SIGNAL, f"exit {rc}"
    if p.get("traceback") or "Traceback" in err:
        last = [ln for ln in err.splitlines() if ln.strip()][-1:]
        return TRACEBACK, f"exit {rc}: {last[0][:160] if last else ''}"
    if rc == 0:
        if 0 in expect:
            return CLEAN, "exit 0"
        return OTHER, f"accepted (exit 0), expected {expect}"
    lines = [ln for ln in err.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ERROR_LINE.match(ln)]
    if rc in (1, 2) and len(errors) == 1 and lines[-1] == errors[0]:
        if rc in expect:
            return CLEAN, f"exit {rc}: {errors[0][:160]}"
        return OTHER, f"exit {rc}, expected {expect}: {errors[0][:160]}"
    last = (lines or [""])[-1][:160]
    return OTHER, f"exit {rc}, {len(errors)} error lines of {len(lines)}: {last}"


def worst(verdicts: list[tuple[str, str]]) -> tuple[str, str]:
    """The most severe verdict (ties: the first)."""
    verdicts = [v for v in verdicts if v is not None]
    return min(verdicts, key=lambda v: SEVERITY.index(v[0]))


def digest(path: Path) -> str | None:
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    if path.is_dir():
        return "dir:" + ",".join(sorted(f"{p.name}={digest(p)}" for p in path.iterdir()
                                        if p.name != ".lock"))
    return None


def has_force(args) -> bool:
    return "--force" in args


# --------------------------------------------------------------------------- cases
@dataclass
class Case:
    """One hostile case: ``fn(ctx, workdir) -> (verdicts, processes)``."""

    name: str
    item: str
    fn: Callable
    what: str = ""


CASES: list[Case] = []


def case(name: str, item: str, what: str = ""):
    def register(fn):
        CASES.append(Case(name, item, fn, what or (fn.__doc__ or "").strip()))
        return fn
    return register


def simple(name, item, args, expect, setup=None, guard=(), check=None, fsize=None,
           wrap=None, what="", timeout=None):
    """Register a one-command case: optional setup, guarded outputs, an extra check."""

    def fn(ctx: Ctx, w: Path):
        if setup is not None:
            setup(ctx, w)
        before = {g: digest(w / g) for g in guard}
        p = ctx.cli(args, w, fsize=fsize, wrap=wrap(ctx, w) if callable(wrap) else wrap,
                    timeout=timeout)
        verdicts = [classify(p, expect)]
        for g, h in before.items():
            if h is not None and digest(w / g) != h and not has_force(args):
                verdicts.append((OVERWRITE, f"{g} changed without --force"))
        if check is not None:
            verdicts.append(check(ctx, w, p))
        return verdicts, [p]

    CASES.append(Case(name, item, fn, what or " ".join(args)))


# --------------------------------------------------------------------------- helpers
def copy_fx(ctx: Ctx, key: str, w: Path, name: str | None = None) -> Path:
    src = Path(ctx.fx[key])
    dst = w / (name or src.name)
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        shutil.copy2(src, dst)
    return dst


def same_steady(a: Path, b: Path) -> bool:
    """Whether two steady files hold the same inputs and outputs."""
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        return all(np.array_equal(fa[k][...], fb[k][...], equal_nan=True)
                   for k in ("inputs", "outputs"))


def marked_complete(path: Path) -> bool:
    try:
        with h5py.File(path, "r") as f:
            return bool(f.attrs.get("complete", True)) and "inputs" in f
    except OSError:
        return False


def check_against(ref_key: str, out: str = "out.h5"):
    """A check: the output, if marked complete, equals the reference file."""

    def check(ctx, w, p):
        path = w / out
        if not path.exists() or not marked_complete(path):
            return None
        if not same_steady(path, Path(ctx.fx[ref_key])):
            return CORRUPT, f"{out} is marked complete but differs from an uninterrupted run"
        return None
    return check


def no_output(*names):
    """A check: a failed command leaves none of ``names`` behind."""

    def check(ctx, w, p):
        if p["rc"] == 0:
            return None
        left = [n for n in names if (w / n).exists()]
        return (OTHER, f"partial output left after failure: {left}") if left else None
    return check


def read_safetensors_raw(path: Path) -> tuple[dict, bytes]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def write_safetensors_raw(path: Path, header, data: bytes, length: int | None = None) -> None:
    blob = json.dumps(header).encode() if not isinstance(header, bytes) else header
    n = len(blob) if length is None else length
    path.write_bytes(struct.pack("<Q", n) + blob + data)


def tensors_of(path: Path) -> dict[str, bytes]:
    header, data = read_safetensors_raw(path)
    return {k: data[v["data_offsets"][0]:v["data_offsets"][1]]
            for k, v in header.items() if k != "__metadata__"}


def one_line_names_process(p: dict) -> bool:
    lines = [ln for ln in p["stderr"].splitlines() if ERROR_LINE.match(ln)]
    return p["rc"] == 2 and len(lines) == 1 and re.search(r"process \d+", lines[0]) is not None


def one_line_refuses_existing(p: dict) -> bool:
    lines = [ln for ln in p["stderr"].splitlines() if ERROR_LINE.match(ln)]
    return p["rc"] == 2 and len(lines) == 1 and "--force" in lines[0]


def ns_wrap(script: str):
    """``unshare -m`` wrapper: run ``script`` (mounts) in a private namespace, then the command."""

    def wrap(ctx, w):
        return ["unshare", "-m", "sh", "-c", f"cd {w} && {script} && exec \"$@\"", "sh"]
    return wrap


# --------------------------------------------------------------------------- item "cli": bad values
def with_value(base: list[str], flag: str, value: str) -> list[str]:
    """``base`` with ``flag`` set to ``value`` (replaced when present, else appended)."""
    args = list(base)
    if flag.startswith("-") and flag in args:
        args[args.index(flag) + 1] = value
        return args
    if flag.startswith("-"):
        return [*args, flag, value]
    args[int(flag)] = value  # a positional, by index
    return args


HUGE = "1000000000"
BAD_VALUES = {
    "generate": (["generate", "darcy", "--n", "4", "--resolution", "9", "--seed", "0",
                  "--out", "out.h5", "--no-progress"], {
        "--n": ["-1", "0", "nan", "2.5", HUGE],
        "--resolution": ["0", "1", "abc", "1000000"],
        "--seed": ["-1", "nan"],
        "--batch-size": ["0", "-1"],
        "--workers": ["0", "abc"],
        "--shard": ["0/0", "3/2", "a/b", "1"],
        "--solve-resolution": ["-1", "1000000"],
        "--param": ["nu=1", "alpha=nan", "tau=-1", "alpha", "a_low=inf"],
        "--device": ["bogus", "cuda:99"],
        "1": ["heat", ""],
    }),
    "train": (TRAIN, {
        "--epochs": ["0", "-1", "abc"],
        "--batch-size": ["0", "-1"],
        "--lr": ["0", "-1", "nan", "inf"],
        "--seed": ["-1", "nan"],
        "--weight-decay": ["-1", "nan"],
        "--grad-clip": ["0", "-1", "nan"],
        "--k-max": ["0", "abc"],
        "--start-frame": ["-1"],
        "--val-fraction": ["-0.1", "1", "nan"],
        "--channels": ["0", "-1", HUGE],
        "--layers": ["0", "-1", HUGE],
        "--levels": ["0", "-1", "100"],
        "--preset": ["bogus"],
        "--model": ["bogus"],
        "--optimizer": ["sgd"],
        "--device": ["bogus", "cuda:7"],
        # (--data {traj} is valid: trajectories train with the one-step protocol)
        "--data": ["missing.h5", "{w}"],
        "--val": ["missing.h5", "{traj}"],
        "--protocol": ["one-step", "10-10"],
        "--scheduler-step": ["month"],
        "--unroll": ["0", "-1", "abc", "2"],  # 2: steady data have no frames to unroll
        "--unroll-grad": ["some"],
        "--input-noise": ["-1", "nan", "0.1"],  # 0.1: steady data
        "--norm": ["bogus"],
        "--log": ["bogus"],
        "--log-images-every": ["-1"],
        "--steps-in": ["0"],
    }),
    "eval": (["eval", "{run}", "--data", "{test}", "--json"], {
        "1": ["missing", "{test}", "{w}"],
        "--data": ["missing.h5", "{traj}", "{run}"],
        "--batch-size": ["0", "-1"],
        "--device": ["bogus"],
        "--which": ["bogus"],
        "--resolution-strategy": ["bicubic"],
    }),
    "predict": (["predict", "{run}", "--input", "{test}", "--out", "pred.h5"], {
        "--batch-size": ["0", "-1"],
        "--input": ["missing.h5", "{traj}"],
        "--start-frame": ["-1"],
        "--out": ["{w}"],
        "--device": ["bogus"],
    }),
    "plot": (["plot", "{run}", "--data", "{test}", "--out", "fig.png"], {
        "--index": ["-1", HUGE, "nan"],
        "--data": ["missing.h5", "{traj}"],
        "--out": ["{w}"],
    }),
    "info": (["info", "--preset", "darcy-smooth"], {
        "--preset": ["bogus"],
        "--grid": ["0", "-5", "nan"],
    }),
    "convert": (["convert", "src.npz", "--out", "out.h5"], {
        "--layout": ["bogus"],
        "--boundary": ["banana", "periodic,periodic,periodic"],
        "--keys": ["a", "x,y,z", "nope,nothere"],
        "1": ["missing.npz", "{w}", "{train}.txt"],
    }),
    "bench": (["bench", "--data", "{train}", "--test", "{test}", "--models", "mgno",
               "--epochs", "1", "--out", "B", "--quiet"], {
        "--epochs": ["0", "-1"],
        "--lr": ["-1", "nan"],
        "--batch-size": ["0"],
        "--jobs": ["0"],
        "--threads": ["0"],
        "--time-limit": ["-1"],
        "--models": ["bogus"],
        "--profile": ["bogus"],
    }),
    "demo": (["demo", "--out", "demo"], {"--seed": ["nan", "abc"], "--out": ["{train}"]}),
}


def _valid_npz(ctx, w):
    rng = np.random.default_rng(0)
    np.savez(w / "src.npz", x=rng.random((4, 9, 9), dtype=np.float32),
             y=rng.random((4, 9, 9), dtype=np.float32))


def register_bad_values() -> None:
    """Every verb, every flag: negative, zero, NaN, huge, wrong types."""
    for verb, (base, flags) in BAD_VALUES.items():
        for flag, values in flags.items():
            for value in values:
                label = re.sub(r"[^A-Za-z0-9.=-]+", "_", value.strip("{}")) or "empty"
                name = f"cli-{verb}{flag if flag.startswith('-') else '-arg' + flag}={label}"
                setup = _valid_npz if verb == "convert" else None
                # a data set beyond the free disk is refused up front as a fault of the
                # machine (exit 1: the same command fits a larger disk), beyond memory exit 2
                expect = FAILS if (verb, flag, value) == ("generate", "--n", HUGE) else BAD
                simple(name, "cli", with_value(base, flag, value), expect, setup=setup,
                       timeout=120 if HUGE in value else None, what=f"{verb} {flag} {value}")
    # sizes that look fine but are beyond memory must be refused before allocating
    simple("cli-generate-huge-grid-x-n", "cli",
           ["generate", "darcy", "--n", "100000", "--resolution", "4097", "--out", "out.h5",
            "--no-progress"], BAD, timeout=120)
    simple("cli-train-huge-batch", "cli", with_value(TRAIN, "--batch-size", HUGE), ANY,
           what="a batch larger than the data set is clamped or refused")


# --------------------------------------------------------------------------- items 4, 6: HDF5
def _base_steady(ctx, path: Path) -> h5py.File:
    shutil.copy2(ctx.fx["train"], path)
    return h5py.File(path, "a")


def _replace(f: h5py.File, key: str, data) -> None:
    del f[key]
    f[key] = data


def _h5_mutations() -> dict:
    """name -> (builder(ctx, w, path), expected exit of convert)."""
    def mut(fn, conv=BAD):
        return fn, conv

    def edit(change):
        def build(ctx, w, path):
            with _base_steady(ctx, path) as f:
                change(ctx, w, f)
        return build

    def rand(*shape, dtype=np.float32):
        return np.random.default_rng(0).random(shape).astype(dtype)

    def raw(content: bytes):
        def build(ctx, w, path):
            path.write_bytes(content)
        return build

    def truncated(ctx, w, path):
        data = Path(ctx.fx["train"]).read_bytes()
        path.write_bytes(data[: len(data) // 2])

    def external(target):
        def change(ctx, w, f):
            del f["inputs"]
            tgt = str(ctx.fx["secret"]) if target == "secret" else target
            f.create_dataset("inputs", shape=(8, 1, 9, 9), dtype="f4",
                             external=[(tgt, 0, h5py.h5f.UNLIMITED)])
        return edit(change)

    def virtual(ctx, w, f):
        other = w / "other.h5"
        with h5py.File(other, "w") as g:
            g["data"] = rand(8, 1, 9, 9)
        layout = h5py.VirtualLayout(shape=(8, 1, 9, 9), dtype="f4")
        layout[...] = h5py.VirtualSource(str(other), "data", shape=(8, 1, 9, 9))
        del f["inputs"]
        f.create_virtual_dataset("inputs", layout)

    def ext_link(ctx, w, f):
        with h5py.File(w / "other.h5", "w") as g:
            g["data"] = rand(8, 1, 9, 9)
        del f["inputs"]
        f["inputs"] = h5py.ExternalLink(str(w / "other.h5"), "/data")

    def soft(target):
        def change(ctx, w, f):
            if target == "inside":
                f["hidden/inputs"] = f["inputs"][...]
            del f["inputs"]
            f["inputs"] = h5py.SoftLink("/hidden/inputs" if target == "inside" else "/nowhere")
        return edit(change)

    def huge(ctx, w, f):
        for key in ("inputs", "outputs"):
            del f[key]
            f.create_dataset(key, shape=(10**10, 1, 9, 9), chunks=(1, 1, 9, 9), dtype="f4")

    def attr(key, value):
        return edit(lambda ctx, w, f: f.attrs.__setitem__(key, value))

    return {
        "no-outputs": mut(edit(lambda c, w, f: f.__delitem__("outputs"))),
        "no-inputs": mut(edit(lambda c, w, f: f.__delitem__("inputs"))),
        "no-channel-axis": mut(edit(lambda c, w, f: _replace(f, "inputs", rand(8, 9, 9))), ANY),
        "n-mismatch": mut(edit(lambda c, w, f: _replace(f, "outputs", rand(7, 1, 9, 9)))),
        "grid-mismatch": mut(edit(lambda c, w, f: _replace(f, "outputs", rand(8, 1, 5, 5)))),
        "complex-dtype": mut(edit(lambda c, w, f: _replace(
            f, "inputs", rand(8, 1, 9, 9).astype(np.complex64)))),
        "string-dtype": mut(edit(lambda c, w, f: _replace(
            f, "inputs", np.full((8, 1, 9, 9), b"ab", dtype="S2")))),
        "nan-values": mut(edit(lambda c, w, f: _replace(
            f, "inputs", np.full((8, 1, 9, 9), np.nan, np.float32))), ANY + (1,)),
        "zero-samples": mut(edit(lambda c, w, f: [_replace(f, k, rand(0, 1, 9, 9))
                                                   for k in ("inputs", "outputs")])),
        "one-node-grid": mut(edit(lambda c, w, f: [_replace(f, k, rand(8, 1, 1, 1))
                                                    for k in ("inputs", "outputs")])),
        "group-not-dataset": mut(edit(lambda c, w, f: [f.__delitem__("inputs"),
                                                        f.create_group("inputs")])),
        "empty-file": mut(raw(b"")),
        "garbage-file": mut(raw(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 8)),
        "truncated-file": mut(truncated),
        "huge-declared-shape": mut(edit(huge)),
        "external-storage-secret": mut(external("secret")),
        "external-storage-etc-passwd": mut(external("/etc/passwd")),
        "virtual-dataset": mut(edit(virtual)),
        "external-link": mut(edit(ext_link)),
        "soft-link-dangling": mut(soft("nowhere")),
        "soft-link-inside": mut(soft("inside"), ANY),
        "attr-boundary-int": mut(attr("boundary", 7), ANY),
        "attr-boundary-banana": mut(attr("boundary", np.array(["banana", "x"], dtype=object)),
                                    ANY),
        "attr-complete-false": mut(attr("complete", False)),
        "attr-kind-bogus": mut(attr("kind", "bogus"), ANY),
    }


POINTERS = ("external-storage-secret", "external-storage-etc-passwd", "virtual-dataset",
            "external-link", "soft-link-dangling")
TRAIN_TOO = ("no-outputs", "n-mismatch", "complex-dtype", "huge-declared-shape",
             "truncated-file", "attr-complete-false", "nan-values", "zero-samples")
H5_VERBS = {
    "eval": ["eval", "{run}", "--data", "bad.h5"],
    "convert": ["convert", "bad.h5", "--out", "conv.h5"],
    "train": ["train", "--data", "bad.h5", "--out", "run", "--epochs", "1", "--batch-size", "4",
              *NET, "--quiet"],
    "predict": ["predict", "{run}", "--input", "bad.h5", "--out", "pred.h5"],
    "plot": ["plot", "{run}", "--data", "bad.h5", "--out", "fig.png"],
}


def pointer_check(ctx, w, p):
    if p["rc"] == 0:
        return OTHER, "read a dataset whose bytes live outside the file"
    return None


def register_hdf5() -> None:
    """Malformed and hostile HDF5 (items 4 and 6), built with h5py."""
    for name, (build, conv_expect) in _h5_mutations().items():
        verbs = ["eval", "convert"]
        if name in POINTERS:
            verbs = list(H5_VERBS)
        elif name in TRAIN_TOO:
            verbs.append("train")
        for verb in verbs:
            expect = conv_expect if verb == "convert" or name == "soft-link-inside" else BAD
            if name == "nan-values" and verb != "convert":
                expect = (2,)
            item = "4" if name in POINTERS else "6"

            def setup(ctx, w, build=build):
                build(ctx, w, w / "bad.h5")

            simple(f"h5-{name}-{verb}", item, H5_VERBS[verb], expect, setup=setup,
                   check=pointer_check if name in POINTERS else None,
                   timeout=120 if name == "huge-declared-shape" else None,
                   what=f"{verb} on an HDF5 file: {name}")


# --------------------------------------------------------------------------- item 6: run dirs
def _config_edit(change):
    def setup(ctx, w):
        run = copy_fx(ctx, "run", w)
        cfg = json.loads((run / "config.json").read_text())
        text = change(cfg)
        (run / "config.json").write_text(text if isinstance(text, str) else json.dumps(cfg))
    return setup


def _st_edit(file: str, change):
    def setup(ctx, w):
        run = copy_fx(ctx, "run", w)
        header, data = read_safetensors_raw(run / file)
        change(run / file, header, data)
    return setup


def _set(cfg, path, value):
    node = cfg
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def _first(header):
    return next(k for k in header if k != "__metadata__")


def _st_mutations() -> dict:
    def rewrite(fn):
        def change(path, header, data):
            out = fn(header, data)
            if isinstance(out, bytes):
                path.write_bytes(out)
            else:
                write_safetensors_raw(path, header, data)
        return change

    def key_edit(field_, value):
        def fn(h, d):
            h[_first(h)][field_] = value
        return rewrite(fn)

    def first_offsets(h, d):
        k = _first(h)
        a, b = h[k]["data_offsets"]
        h[k]["data_offsets"] = [b, a]

    return {
        "empty": rewrite(lambda h, d: b""),
        "short": rewrite(lambda h, d: b"\x10\x00\x00"),
        "header-len-huge": rewrite(lambda h, d: struct.pack("<Q", 2**62) + b"{}"),
        "header-len-beyond-file": rewrite(
            lambda h, d: struct.pack("<Q", 10**6) + json.dumps(h).encode()),
        "header-not-json": rewrite(lambda h, d: struct.pack("<Q", 9) + b"not json!" + d),
        "header-list": rewrite(lambda h, d: struct.pack("<Q", 2) + b"[]" + d),
        "header-nested": rewrite(lambda h, d: struct.pack("<Q", 200001) + b"[" * 100000
                                 + b"1" + b"]" * 100000 + d),
        "dtype-bogus": key_edit("dtype", "Z9"),
        "shape-negative": key_edit("shape", [-4]),
        "shape-too-big": key_edit("shape", [4096, 4096]),
        "offsets-beyond-file": key_edit("data_offsets", [0, 10**9]),
        "offsets-reversed": rewrite(first_offsets),
        "tensor-missing": rewrite(lambda h, d: h.pop(_first(h))),
        "metadata-not-strings": rewrite(lambda h, d: h.__setitem__("__metadata__", {"a": [1]})),
        "garbage-data": rewrite(lambda h, d: struct.pack("<Q", len(json.dumps(h)))
                                + json.dumps(h).encode() + os.urandom(len(d) // 2)),
    }


CONFIG_MUTATIONS = {
    "not-json": lambda c: "{not json",
    "empty": lambda c: "",
    "a-list": lambda c: "[]",
    "nested": lambda c: "[" * 100000 + "]" * 100000,
    "model-a-string": lambda c: _set(c, ["model"], "mgno"),
    "channels-a-string": lambda c: _set(c, ["model", "channels"], "four"),
    "channels-huge": lambda c: _set(c, ["model", "channels"], 10**9),
    "grid-a-string": lambda c: _set(c, ["model", "grid"], "9x9"),
    "no-model": lambda c: c.pop("model"),
    "train-a-list": lambda c: _set(c, ["train"], []),
    "normalizer-an-int": lambda c: _set(c, ["normalizer"], 5),
    "training-grid-bad": lambda c: _set(c, ["training_grid"], {"shape": "x"}),
    "boundary-bogus": lambda c: _set(c, ["model", "boundary"], ["banana", "x"]),
}


def register_run_dirs() -> None:
    """Malformed run directories: config.json, safetensors headers, metrics (item 6)."""
    ev = ["eval", "run", "--data", "{test}"]
    for name, change in CONFIG_MUTATIONS.items():
        simple(f"rundir-config-{name}-eval", "6", ev, BAD, setup=_config_edit(change),
               what=f"eval of a run whose config.json is {name}")
    resume = [*TRAIN[:-1], "--epochs", "3", "--resume", "--quiet"]
    for name in ("channels-a-string", "train-a-list", "nested"):
        simple(f"rundir-config-{name}-resume", "6", resume, BAD,
               setup=_config_edit(CONFIG_MUTATIONS[name]), guard=("run/model.safetensors",),
               what=f"train --resume of a run whose config.json is {name}")
    for name, change in _st_mutations().items():
        simple(f"rundir-weights-{name}-eval", "6", ev, BAD,
               setup=_st_edit("model.safetensors", change),
               what=f"eval of a run whose model.safetensors is {name}")
    st = _st_mutations()
    simple("rundir-normalizer-dtype-bogus-eval", "6", ev, BAD,
           setup=_st_edit("normalizer.safetensors", st["dtype-bogus"]))
    simple("rundir-weights-shape-too-big-predict", "6",
           ["predict", "run", "--input", "{test}", "--out", "pred.h5"], BAD,
           setup=_st_edit("model.safetensors", st["shape-too-big"]), check=no_output("pred.h5"))
    for name in ("header-len-huge", "dtype-bogus", "offsets-beyond-file"):
        simple(f"rundir-checkpoint-{name}-resume", "6", resume, BAD,
               setup=_st_edit("checkpoint.safetensors", st[name]))

    def metrics(text):
        def setup(ctx, w):
            copy_fx(ctx, "run", w)
            (w / "run" / "metrics.jsonl").write_text(text)
        return setup

    for name, text in {"garbage": "not json\n{\n", "wrong-types": '{"epoch": "one", '
                       '"train_loss": [1], "val_rel_l2": {}}\n', "a-list": "[1, 2]\n"}.items():
        simple(f"rundir-metrics-{name}-plot", "6",
               ["plot", "run", "--data", "{test}", "--out", "fig.png"], BAD,
               setup=metrics(text), check=no_output("fig.png", "fig_loss.png"))
        simple(f"rundir-metrics-{name}-resume", "6", resume, BAD, setup=metrics(text))
# --------------------------------------------------------------------------- items 1, 6: disk full
def two_step(name, item, first_args, first_expect, fsize=None, wrap=None, setup=None,
             again_args=None, check=None, first_check=None, what=""):
    """A faulty first command, then the same (or ``again_args``) on a healthy machine."""

    def fn(ctx: Ctx, w: Path):
        if setup is not None:
            setup(ctx, w)
        limit = fsize(ctx) if callable(fsize) else fsize
        p1 = ctx.cli(first_args, w, fsize=limit, wrap=wrap(ctx, w) if callable(wrap) else wrap)
        verdicts = [classify(p1, first_expect)]
        if first_check is not None:
            verdicts.append(first_check(ctx, w, p1))
        p2 = ctx.cli(again_args or first_args, w)
        verdicts.append(classify(p2, OK))
        if check is not None:
            verdicts.append(check(ctx, w, p2))
        return verdicts, [p1, p2]

    CASES.append(Case(name, item, fn, what or " ".join(first_args)))


def gen_big(seed=3, out="out.h5"):
    return ["generate", "darcy", *BIG, "--seed", str(seed), "--out", out]


def register_disk_full() -> None:
    """``ulimit -f`` while generate/convert/train/predict/plot write; then a clean rerun."""
    for frac in (0.1, 0.35, 0.6, 0.85):
        two_step(f"fsize-generate-{int(frac * 100)}pct", "1", gen_big(), FAULT,
                 fsize=lambda ctx, frac=frac: int(ctx.fx["ref3_bytes"] * frac),
                 check=check_against("ref3"), first_check=_no_complete("out.h5"),
                 what=f"generate with the file size limited to {frac:.0%} of the result, "
                      "then again without the limit: equal to an uninterrupted run")
    for frac in (0.2, 0.7):
        two_step(f"fsize-convert-{int(frac * 100)}pct", "1",
                 ["convert", "{ref3}", "--out", "out.h5"], FAULT,
                 fsize=lambda ctx, frac=frac: int(ctx.fx["ref3_bytes"] * frac),
                 check=check_against("refconv"), first_check=_no_complete("out.h5"))
    for kib in (4, 24):
        two_step(f"fsize-train-{kib}k", "6", [*TRAIN[:-1], "--epochs", "2", "--quiet"], FAULT,
                 fsize=kib * 1024, again_args=[*TRAIN[:-1], "--epochs", "2", "--resume",
                                               "--quiet"],
                 what=f"train with files limited to {kib} KiB, then --resume")
    simple("fsize-predict", "6", ["predict", "{run}", "--input", "{ref3}", "--out", "pred.h5"],
           FAULT, fsize=16 * 1024, check=no_output("pred.h5"))
    simple("fsize-plot", "6", ["plot", "{run}", "--data", "{test}", "--out", "fig.png"],
           FAULT, fsize=2048, check=no_output("fig.png", "fig_loss.png"))
    for verb, args in {
        "generate": gen_big(out="full/out.h5"),
        "convert": ["convert", "{ref3}", "--out", "full/out.h5"],
        "train": [*TRAIN[:4], "full/run", *TRAIN[5:]],
        "predict": ["predict", "{run}", "--input", "{ref3}", "--out", "full/pred.h5"],
    }.items():
        size = "16k" if verb == "train" else "64k"  # a tiny run dir fits in 64 KiB
        tmpfs = ns_wrap(f"mkdir -p full && mount -t tmpfs -o size={size} tmpfs full")
        simple(f"enospc-{verb}", "6", args, FAULT, wrap=_needs_mount(tmpfs),
               what=f"{verb} into a {size} tmpfs (ENOSPC)")


def _no_complete(name):
    def check(ctx, w, p):
        if p["rc"] != 0 and (w / name).exists() and marked_complete(w / name):
            return CORRUPT, f"{name} marked complete after a failed write"
        return None
    return check


def _needs_mount(wrap):
    def outer(ctx, w):
        if not ctx.can_mount:
            raise Skip("unshare -m cannot mount here")
        return wrap(ctx, w)
    return outer


# --------------------------------------------------------------------------- item 6: read-only
def register_read_only() -> None:
    """Unwritable targets: a read-only mount, a file where a folder is expected, /proc."""
    targets = {
        "ro-mount": (ns_wrap("mkdir -p ro && mount -t tmpfs -o ro,size=64k tmpfs ro"), "ro"),
        "file-as-dir": (None, "afile"),
        "proc": (None, "/proc/self/nope"),
    }
    for label, (wrap, d) in targets.items():
        verbs = {
            "generate": ["generate", "darcy", "--n", "4", "--resolution", "9", "--out",
                         f"{d}/out.h5", "--no-progress"],
            "convert": ["convert", "{train}", "--out", f"{d}/out.h5"],
            "train": [*TRAIN[:4], f"{d}/run", *TRAIN[5:]],
            "predict": ["predict", "{run}", "--input", "{test}", "--out", f"{d}/pred.h5"],
            "plot": ["plot", "{run}", "--data", "{test}", "--out", f"{d}/fig.png"],
            "bench": [*BAD_VALUES["bench"][0][:-3], f"{d}/B", "--quiet"],
            "demo": ["demo", "--out", f"{d}/demo"],
        }
        for verb, args in verbs.items():
            simple(f"readonly-{label}-{verb}", "6", args, FAILS,
                   wrap=_needs_mount(wrap) if wrap else None,
                   setup=lambda ctx, w: (w / "afile").write_text("a file, not a folder\n"),
                   what=f"{verb} into an unwritable target ({label})")
    ro_run = ns_wrap("mount --bind run run && mount -o remount,ro,bind run")
    simple("readonly-ro-mount-train-resume", "6",
           [*TRAIN[:-1], "--epochs", "3", "--resume", "--quiet"], FAILS,
           wrap=_needs_mount(ro_run), setup=lambda ctx, w: copy_fx(ctx, "run", w),
           what="train --resume of a run dir mounted read-only")


# --------------------------------------------------------------------------- items 2, 3: writers
def concurrent(name, item, args_a, args_b, delay, setup=None, check=None, what=""):
    """Two writers into one output, ``delay`` seconds apart: one wins, one is refused."""

    def fn(ctx: Ctx, w: Path):
        if setup is not None:
            setup(ctx, w)
        t0 = time.monotonic()
        pa = ctx.popen(args_a, w)
        time.sleep(delay)
        pb = ctx.popen(args_b, w)
        a = finish_proc(pa, args_a, t0, ctx.timeout)
        b = finish_proc(pb, args_b, t0, ctx.timeout)
        verdicts = [classify(a, ANY), classify(b, ANY)]
        ok = [p for p in (a, b) if p["rc"] == 0]
        if len(ok) == 2:
            verdicts.append((CORRUPT, "both writers exited 0 into one output"))
        elif len(ok) == 1:
            loser = b if ok[0] is a else a
            # the loser either met the lock (names the holder) or came after the
            # winner had finished (refused: the output exists, --force to replace)
            if not (one_line_names_process(loser) or one_line_refuses_existing(loser)):
                verdicts.append((OTHER, "the refused writer's line names no holder process"))
        else:
            verdicts.append((OTHER, "neither writer succeeded"))
        if check is not None:
            verdicts.append(check(ctx, w, ok[0] if ok else None))
        return verdicts, [a, b]

    CASES.append(Case(name, item, fn, what))


def _gen_winner(ctx, w, winner):
    if winner is None or not (w / "out.h5").exists():
        return None
    seed = winner["argv"][winner["argv"].index("--seed") + 1]
    if not same_steady(w / "out.h5", Path(ctx.fx[f"ref{seed}"])):
        return CORRUPT, f"out.h5 is not seed {seed}'s data (the writer that exited 0)"
    with h5py.File(w / "out.h5", "r") as f:
        if int(f.attrs.get("seed", -1)) != int(seed):
            return CORRUPT, f"out.h5 says seed {f.attrs.get('seed')}, data is seed {seed}'s"
    return None


def register_concurrent() -> None:
    train2 = [*TRAIN[:-1], "--epochs", "3", "--seed", "1", "--quiet"]
    concurrent("concurrent-train-train", "2", [*TRAIN[:-1], "--epochs", "3", "--quiet"],
               train2, 1.0, what="two train into one --out, 1 s apart")
    # a fresh training and a --resume of the same run dir while it trains
    concurrent("concurrent-train-resume", "2", [*TRAIN[:-1], "--epochs", "3", "--quiet"],
               [*TRAIN[:-1], "--epochs", "3", "--resume", "--quiet"], 1.0,
               what="train, and 1 s later train --resume of the same run dir")
    for delay in (0.3, 1.5):
        concurrent(f"concurrent-generate-{delay}s", "3", gen_big(3), gen_big(4), delay,
                   check=_gen_winner, what=f"generate seeds 3 and 4 into one file, {delay} s apart")
    concurrent("concurrent-convert", "3", ["convert", "{ref3}", "--out", "out.h5"],
               ["convert", "{ref4}", "--out", "out.h5"], 0.3, check=_gen_winner_conv)


def _gen_winner_conv(ctx, w, winner):
    if winner is None or not (w / "out.h5").exists():
        return None
    src = ctx.argv(winner["argv"], w)[4]  # python -m mgno.cli convert SRC ...
    if not same_steady(w / "out.h5", Path(src)):
        return CORRUPT, "out.h5 holds neither source wholly"
    return None


# --------------------------------------------------------------------------- item 1: SIGKILL
def killed(name, item, args, delay, again=None, check=None, what="", when=None, done=None):
    """SIGKILL ``args`` ``delay(ctx)`` seconds after ``when(w)`` first holds; run ``again``.

    ``done(w)``: the first run had already put its complete output in place when
    the kill landed (after the final rename), so the rerun must refuse to replace it.
    """

    def fn(ctx: Ctx, w: Path):
        t0 = time.monotonic()
        p = ctx.popen(args, w)
        while p.poll() is None and when is not None and not when(w):
            if time.monotonic() - t0 > ctx.timeout:
                break
            time.sleep(0.02)
        end = time.monotonic() + delay(ctx)
        while p.poll() is None and time.monotonic() < end:
            time.sleep(0.02)
        was_killed = p.poll() is None
        if was_killed:
            os.killpg(p.pid, signal.SIGKILL)
        first = finish_proc(p, args, t0, 30)
        # looked at before the rerun, which makes the output itself when it may
        in_place = done is not None and done(w)
        p2 = ctx.cli(again or args, w)
        # a first run that finished before its kill point left a complete output:
        # the same command again must then refuse to replace it (no --force)
        finished = again is None and ((not was_killed and first["rc"] == 0) or in_place)
        verdicts = [classify(p2, BAD if finished else OK)]
        if check is not None:
            verdicts.append(check(ctx, w, p2))
        return verdicts, [first, p2]

    CASES.append(Case(name, item, fn, what))


def _writing_seconds(ctx: Ctx, fx: Path) -> float:
    """Seconds from the ``.partial`` file's appearance to the end of the ref3 command.

    The kill points of ``kill-generate-*`` are fractions of this span (the
    whole command's time also counts the interpreter's start, before any write).
    """
    out = fx / "ref3-again.h5"
    p = ctx.popen(["generate", "darcy", *BIG, "--seed", "3", "--out", out.name], fx)
    t0 = time.monotonic()
    while p.poll() is None and not Path(str(out) + ".partial").exists():
        time.sleep(0.01)
    seen = time.monotonic()
    p.wait(timeout=600)
    out.unlink(missing_ok=True)
    return max(0.05, round(time.monotonic() - seen, 2)) if seen > t0 else 0.05


def _exists(*names):
    return lambda w: any((w / n).exists() for n in names)


def register_kills(seed: int) -> None:
    """SIGKILL at random points (fractions of the fixture's own run time), then rerun."""
    rng = random.Random(seed)
    for k in range(6):
        frac = rng.uniform(0.0, 0.7)
        killed(f"kill-generate-{k}", "1", gen_big(),
               lambda ctx, f=frac: f * ctx.fx["ref3_write_seconds"],
               when=_exists("out.h5.partial"),
               check=check_against("ref3"), done=_exists("out.h5"),
               what=f"generate killed {frac:.2f} x its run time after the partial file "
                    "appears, rerun: equal to an uninterrupted run")
    for k in range(2):
        frac = rng.uniform(0.3, 1.0)
        killed(f"kill-convert-{k}", "1", ["convert", "{ref3}", "--out", "out.h5"],
               lambda ctx, f=frac: f * ctx.fx["refconv_seconds"], check=check_against("refconv"),
               done=_exists("out.h5"),
               what=f"convert killed at {frac:.2f} x its run time, rerun")
    full = ["train", "--data", "{train}", "--out", "run", "--epochs", "2", "--batch-size", "4",
            "--seed", "0", *NET, "--quiet"]
    for k in range(3):
        frac = rng.uniform(0.0, 0.6)
        killed(f"kill-train-{k}", "8", full, lambda ctx, f=frac: f * ctx.fx["run_seconds"],
               when=_exists("run/config.json"), again=[*full, "--resume"], check=_same_weights,
               what=f"train killed {frac:.2f} x its run time after config.json appears, "
                    "then --resume: finishes with the uninterrupted run's weights")


def _same_weights(ctx, w, p):
    if p["rc"] != 0:
        return None
    got, want = w / "run" / "model.safetensors", Path(ctx.fx["run"]) / "model.safetensors"
    if not got.exists():
        return OTHER, "no model.safetensors after the resumed run"
    if tensors_of(got) != tensors_of(want):
        return CORRUPT, "resumed weights differ from an uninterrupted run"
    return None


# --------------------------------------------------------------------------- item 7: overwrites
def _write(name, text="precious user data\n"):
    def setup(ctx, w):
        (w / name).parent.mkdir(parents=True, exist_ok=True)
        (w / name).write_text(text)
    return setup


def register_overwrites() -> None:
    small = ["generate", "darcy", "--n", "4", "--resolution", "9", "--no-progress"]
    simple("overwrite-generate-foreign", "7", [*small, "--out", "out.h5"], BAD,
           setup=_write("out.h5"), guard=("out.h5",))
    simple("overwrite-generate-other-seed", "7", [*small, "--seed", "5", "--out", "test.h5"],
           BAD, setup=lambda ctx, w: copy_fx(ctx, "test", w), guard=("test.h5",))
    simple("overwrite-generate-force", "7", [*small, "--out", "out.h5", "--force"], OK,
           setup=_write("out.h5"), check=_changed("out.h5"))
    simple("overwrite-convert", "7", ["convert", "{train}", "--out", "out.h5"], BAD,
           setup=_write("out.h5"), guard=("out.h5",))
    simple("overwrite-convert-force", "7", ["convert", "{train}", "--out", "out.h5", "--force"],
           OK, setup=_write("out.h5"), check=_changed("out.h5"))
    pred = ["predict", "{run}", "--input", "{test}", "--out", "pred.h5"]
    simple("overwrite-predict", "7", pred, BAD, setup=_write("pred.h5"), guard=("pred.h5",))
    simple("overwrite-predict-force", "7", [*pred, "--force"], OK, setup=_write("pred.h5"),
           check=_changed("pred.h5"))
    plot = ["plot", "{run}", "--data", "{test}", "--out", "fig.png"]
    simple("overwrite-plot", "7", plot, BAD, setup=_write("fig.png"), guard=("fig.png",))
    simple("overwrite-plot-loss-png", "7", plot, BAD, setup=_write("fig_loss.png"),
           guard=("fig_loss.png",), what="plot when only FIG_loss.png exists")
    simple("overwrite-plot-force", "7", [*plot, "--force"], OK, setup=_write("fig.png"),
           check=_changed("fig.png"))
    simple("overwrite-train-foreign-metrics", "7", TRAIN, BAD,
           setup=_write("run/metrics.jsonl", '{"epoch": 1, "mine": true}\n'),
           guard=("run/metrics.jsonl",))
    simple("overwrite-train-foreign-file", "7", TRAIN, BAD, setup=_write("run/notes.txt"),
           guard=("run",))
    simple("overwrite-train-finished-run", "7", TRAIN, BAD,
           setup=lambda ctx, w: copy_fx(ctx, "run", w), guard=("run",),
           what="train (no --resume) into a finished run dir")
    simple("overwrite-bench-foreign", "7", BAD_VALUES["bench"][0], BAD,
           setup=_write("B/results.json", '{"mine": 1}\n'), guard=("B",))


def _changed(name):
    def check(ctx, w, p):
        if p["rc"] == 0 and (w / name).read_bytes() == b"precious user data\n":
            return OTHER, f"--force given, {name} unchanged"
        return None
    return check


# --------------------------------------------------------------------------- item 8
def _says_restart(ctx, w, p):
    if p["rc"] == 0 and not re.search(r"restart|from the (beginning|start)|from scratch",
                                      p["stderr"], re.I):
        return OTHER, "--resume restarted without saying so on stderr"
    return None


def register_before_checkpoint() -> None:
    full = ["train", "--data", "{train}", "--out", "run", "--epochs", "2", "--batch-size", "4",
            "--seed", "0", *NET]
    killed("early-kill-train-resume", "8", full, lambda ctx: 0.0, again=[*full, "--resume"],
           when=lambda w: (w / "run" / "config.json").exists(),
           check=lambda ctx, w, p: _says_restart(ctx, w, p) or _same_weights(ctx, w, p),
           what="train killed as soon as config.json exists, then --resume")

    def config_only(ctx, w):
        (w / "run").mkdir()
        shutil.copy2(Path(ctx.fx["run"]) / "config.json", w / "run" / "config.json")

    simple("early-config-only-resume", "8", [*full, "--resume"], OK, setup=config_only,
           check=_says_restart, what="--resume of a run dir holding only config.json")

    def config_and_stale_lock(ctx, w):
        config_only(ctx, w)
        (w / "run" / ".lock").write_text('{"pid": 999999, "host": "gone"}')

    simple("early-stale-lock-resume", "8", [*full, "--resume"], OK, setup=config_and_stale_lock,
           check=_says_restart, what="--resume with only config.json and a stale lock")


# --------------------------------------------------------------------------- item 5
def register_bench(slow: bool) -> None:
    base = [*BAD_VALUES["bench"][0], "--json"]

    def fn(ctx: Ctx, w: Path):
        if not slow:
            raise Skip("bench cases need --slow")
        p1 = ctx.cli([*base, "--lr", "1e-3"], w)
        p2 = ctx.cli([*base, "--lr", "0.05"], w)
        p3 = ctx.cli([*with_value(base, "--out", "B2"), "--lr", "0.05"], w)
        # a changed spec may be recomputed, or refused in one line naming the change
        verdicts = [classify(p1, OK), _recomputed_or_refused(p2, "lr"), classify(p3, OK)]
        if all(p["rc"] == 0 for p in (p1, p2, p3)):
            if p2["stdout"] == p1["stdout"] or _bench_numbers(p2) != _bench_numbers(p3):
                verdicts.append((CORRUPT, "re-run with a new --lr reused the old results"))
        return verdicts, [p1, p2, p3]

    CASES.append(Case("bench-rerun-changed-lr", "5", fn,
                      "bench, then again with --lr 0.05: equal to a fresh bench with 0.05"))

    def fn_data(ctx: Ctx, w: Path):
        if not slow:
            raise Skip("bench cases need --slow")
        p1 = ctx.cli(base, w)
        p2 = ctx.cli(with_value(base, "--data", "{ref3}"), w)
        verdicts = [classify(p1, OK), _recomputed_or_refused(p2, "data")]
        if p1["rc"] == 0 and p2["rc"] == 0 and _bench_numbers(p1) == _bench_numbers(p2):
            verdicts.append((CORRUPT, "re-run with other --data reused the old results"))
        return verdicts, [p1, p2]

    CASES.append(Case("bench-rerun-changed-data", "5", fn_data,
                      "bench, then again with other --data: recomputed"))


def _recomputed_or_refused(p, field: str) -> tuple[str, str]:
    """A bench re-run with a changed setting: exit 0, or one line naming the change."""
    verdict = classify(p, ANY)
    if p["rc"] == 2 and verdict[0] == CLEAN and field not in p["stderr"]:
        return OTHER, f"refused without naming the changed {field}"
    return verdict


def _bench_numbers(p) -> str:
    return ",".join(re.findall(r"\d\.\d{3,}e?-?\d*", p["stdout"]))


def register_all(slow: bool = False, seed: int = 0) -> None:
    """Fill :data:`CASES` (once)."""
    if CASES:
        return
    # the long fault cases first, so that they overlap the many short ones
    register_concurrent()
    register_kills(seed)
    register_disk_full()
    register_overwrites()
    register_before_checkpoint()
    register_bench(slow)
    register_read_only()
    register_hdf5()
    register_run_dirs()
    register_bad_values()


# --------------------------------------------------------------------------- fixtures
def build_fixtures(ctx: Ctx) -> None:
    """The shared inputs (made once, never written by a case)."""
    fx = ctx.root / "fixtures"
    fx.mkdir()
    steps = [
        ("train", "train.h5", [*GEN, "--out", "train.h5"]),
        ("test", "test.h5", ["generate", "darcy", "--n", "4", "--resolution", "9", "--seed", "1",
                             "--no-progress", "--out", "test.h5"]),
        ("ref3", "ref3.h5", ["generate", "darcy", *BIG, "--seed", "3", "--out", "ref3.h5"]),
        ("ref4", "ref4.h5", ["generate", "darcy", *BIG, "--seed", "4", "--out", "ref4.h5"]),
        ("refconv", "refconv.h5", ["convert", "ref3.h5", "--out", "refconv.h5"]),
        ("run", "run", ["train", "--data", "train.h5", "--out", "run", "--epochs", "2",
                        "--batch-size", "4", "--seed", "0", *NET, "--quiet"]),
    ]
    for key, name, args in steps:
        t0 = time.monotonic()
        p = ctx.cli(args, fx, timeout=600)
        if p["rc"] != 0:
            raise SystemExit(f"fixture {name} failed (exit {p['rc']}):\n{p['stderr'][-3000:]}")
        ctx.fx[key] = fx / name
        ctx.fx[key + "_seconds"] = round(time.monotonic() - t0, 2)
    ctx.fx["ref3_bytes"] = (fx / "ref3.h5").stat().st_size
    ctx.fx["ref3_write_seconds"] = _writing_seconds(ctx, fx)
    traj = fx / "traj.h5"
    _write_trajectories(traj)
    ctx.fx["traj"] = traj
    secret = fx / "secret.bin"
    secret.write_bytes(b"SECRET-" * 600)
    ctx.fx["secret"] = secret


def _write_trajectories(path: Path) -> None:
    """A tiny periodic trajectory file written with h5py after the schema's names."""
    rng = np.random.default_rng(0)
    u0 = rng.standard_normal((3, 1, 8, 8)).astype(np.float32)
    traj = np.stack([np.roll(u0, s, axis=-1) * 0.9**s for s in range(5)], axis=1)
    with h5py.File(path, "w") as f:
        f["trajectories"] = traj  # (N, T, C, X, Y)
        f["times"] = np.arange(5, dtype=np.float64)
        f.attrs.update({"kind": "trajectory", "pde": "toy", "params": "{}",
                        "boundary": np.array(["periodic", "periodic"], dtype=object),
                        "domain": np.array([[0.0, 1.0], [0.0, 1.0]]),
                        "grid_convention": "nodes-including-boundary",
                        "mgno_schema_version": "1.0", "complete": True, "seed": -1})


def probe_mount(root: Path) -> bool:
    d = root / "probe"
    d.mkdir()
    try:
        r = subprocess.run(["unshare", "-m", "sh", "-c",
                            f"mount -t tmpfs -o ro,size=64k tmpfs {d} && ! touch {d}/x"],
                           capture_output=True, timeout=20)
        return r.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


# --------------------------------------------------------------------------- driver
def run_case(ctx: Ctx, c: Case) -> dict:
    w = ctx.root / "cases" / c.name
    w.mkdir(parents=True)
    t0 = time.monotonic()
    try:
        verdicts, procs = c.fn(ctx, w)
        verdicts = [v for v in verdicts if v is not None]
        category, detail = worst(verdicts)
    except Skip as why:
        category, detail, procs, verdicts = SKIPPED, str(why), [], []
    except Exception as err:  # a bug of the battery itself: say so, do not hide it
        category, detail = OTHER, f"battery error: {type(err).__name__}: {err}"
        procs, verdicts = [], []
    return {"name": c.name, "item": c.item, "what": c.what, "category": category,
            "detail": detail, "verdicts": [list(v) for v in verdicts],
            "seconds": round(time.monotonic() - t0, 2),
            "runs": [{k: p[k] for k in ("argv", "rc", "seconds", "timed_out", "stderr")}
                     for p in procs]}


class Skip(Exception):
    """A case that cannot run on this machine (said in the results)."""


def summary(results: list[dict]) -> str:
    items = sorted({r["item"] for r in results}, key=lambda s: (len(s), s))
    cats = [CLEAN, TRACEBACK, SIGNAL, OVERWRITE, CORRUPT, OTHER, SKIPPED]
    rows = [["item", "cases", *cats]]
    for item in [*items, "all"]:
        sel = [r for r in results if item in ("all", r["item"])]
        n = Counter(r["category"] for r in sel)
        rows.append([item, str(len(sel)), *[str(n.get(c, 0)) for c in cats]])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(v.rjust(wd) for v, wd in zip(r, widths, strict=True)) for r in rows]
    bad = [r for r in results if r["category"] not in (CLEAN, SKIPPED)]
    lines += ["", f"{len(bad)} not clean:"]
    lines += [f"  {r['category']:<9} {r['name']:<38} {r['detail'][:110]}" for r in bad]
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", default=sys.executable, help="interpreter that runs mgno")
    ap.add_argument("--src", type=Path, help="source tree put first on PYTHONPATH")
    ap.add_argument("--json", type=Path, help="write one JSON object per case here")
    ap.add_argument("--jobs", type=int, default=1, help="cases run at once")
    ap.add_argument("--only", action="append", default=[],
                    help="glob on case names or items (repeatable), e.g. 'h5-*' or 'item:4'")
    ap.add_argument("--slow", action="store_true", help="include the bench cases (item 5)")
    ap.add_argument("--timeout", type=float, default=180.0, help="seconds per command")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random kill points")
    ap.add_argument("--mem-limit-gib", type=float, default=8.0,
                    help="address-space limit of every command (0: none)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--skip", type=Path,
                    help="file of case names (one a line) not to run, e.g. from an earlier run")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    return ap.parse_args(argv)


def select(cases: list[Case], only: list[str]) -> list[Case]:
    if not only:
        return cases
    return [c for c in cases if any(
        fnmatch.fnmatch(c.name, pat) or pat == f"item:{c.item}" for pat in only)]


def main(argv=None) -> int:
    args = parse_args(argv)
    src = args.src.resolve() if args.src else None
    register_all(slow=args.slow, seed=args.seed)
    cases = select(CASES, args.only)
    if args.skip:
        done = set(args.skip.read_text().split())
        cases = [c for c in cases if c.name not in done]
    if args.list:
        print("\n".join(f"{c.item:>4}  {c.name:<40} {c.what[:90]}" for c in cases))
        print(f"{len(cases)} cases")
        return 0
    root = Path(tempfile.mkdtemp(prefix="mgno-hostile-"))
    ctx = Ctx(args.python, src, root, args.timeout, args.seed,
              mem_limit=int(args.mem_limit_gib * 2**30))
    t0 = time.monotonic()
    try:
        ctx.can_mount = probe_mount(root)
        build_fixtures(ctx)
        print(f"fixtures ready in {time.monotonic() - t0:.0f} s under {root}; "
              f"{len(cases)} cases, {args.jobs} at once; unshare -m mounts: {ctx.can_mount}",
              file=sys.stderr)
        results: list[dict] = []
        with cf.ThreadPoolExecutor(max(1, args.jobs)) as pool:
            futures = [pool.submit(run_case, ctx, c) for c in cases]
            for fut in cf.as_completed(futures):
                r = fut.result()
                results.append(r)
                print(f"  {r['category']:<9} {r['name']:<40} {r['seconds']:6.1f} s",
                      file=sys.stderr)
                write_json(args, ctx, results, t0, len(cases))  # a partial run keeps its data
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(summary(results))
    print(f"\n{len(results)} cases in {time.monotonic() - t0:.0f} s; src={src}")
    return 0


def write_json(args, ctx: Ctx, results: list[dict], t0: float, planned: int) -> None:
    """All results so far (rewritten after every case) to ``--json``."""
    if not args.json:
        return
    meta = {"src": str(ctx.src), "python": args.python, "seed": args.seed,
            "can_mount": ctx.can_mount, "seconds": round(time.monotonic() - t0, 1),
            "planned": planned, "finished": len(results),
            "counts": dict(Counter(r["category"] for r in results))}
    tmp = args.json.with_name(args.json.name + ".tmp")
    tmp.write_text(json.dumps({"meta": meta, "cases": results}, indent=1) + "\n")
    os.replace(tmp, args.json)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
