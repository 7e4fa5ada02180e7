"""Side-by-side comparison of MgNO with FNO, TFNO, UNO and a U-Net: ``mgno bench``.

:func:`run_bench` trains several model families on the same data, with the
same recipe (normalisers, loss, optimiser, schedule, epochs, seed), and writes
one markdown table per task: test rel. L2 and rel. H1, parameters, seconds
per epoch, inference milliseconds per sample and peak memory, with the
machine and the exact command.

Layout of a bench directory::

    BENCH_DIR/data/<task>_{train,val,test}.h5     generated if missing (seeded)
    BENCH_DIR/runs/<task>/<model>/                one `mgno train` run directory each
    BENCH_DIR/results.md, results.json            the tables

Every training runs in a child process (``python -m mgno.bench --child``),
so its peak resident memory is read from the kernel (``os.wait4``) and a
``time_limit`` can stop it with SIGTERM, which makes the trainer save a
checkpoint at the next step; ``resume=True`` continues interrupted runs and
skips finished ones, so a long profile runs in slices.
"""

from __future__ import annotations

import copy
import json
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mgno.atomic import atomic_write_json, atomic_write_text
from mgno.errors import InputError
from mgno.nn.registry import MODEL_FAMILIES as FAMILIES  # families ``mgno bench`` can train

#: Models of the profiles unless ``models`` says otherwise.
DEFAULT_MODELS = ("mgno", "fno", "tfno", "unet")
#: Bench-directory files.
RESULTS_MD, RESULTS_JSON = "results.md", "results.json"
#: Per-run files written next to the trainer's.
RUNS_FILE, EVAL_FILE, CHILD_FILE = "bench_runs.json", "bench_eval.json", "bench_child.json"
#: Per-task file (next to the run directories) of the equal-load step costs.
STEPS_FILE = "bench_steps.json"
#: Seconds a stopped child gets to write its checkpoint before it is killed.
STOP_GRACE_S = 300.0


@dataclass(frozen=True)
class DataSpec:
    """How a task's data are generated (see :func:`mgno.data.generate.generate_dataset`).

    Attributes
    ----------
    pde:
        Generator name.
    resolution:
        Stored nodes per axis.
    params:
        PDE parameters (``solve_resolution`` included where the solve is finer).
    n_train, n_val, n_test:
        Samples (trajectories) per split.
    seed:
        Seed of the training split; validation and test use ``seed + 1`` and ``seed + 2``.
    """

    pde: str
    resolution: int
    params: dict[str, Any]
    n_train: int
    n_val: int
    n_test: int
    seed: int


@dataclass(frozen=True)
class Task:
    """One comparison: a data set, a recipe and per-family network options.

    Attributes
    ----------
    name:
        Short name (used in paths).
    title:
        One line for the tables.
    data:
        How to generate the data, or None when ``paths`` are given.
    preset:
        Preset whose recipe (and, for MgNO, network) is the starting point.
    train:
        :class:`mgno.train.TrainConfig` fields given to every model.
    models:
        Network options per family (``mgno.train.train``'s ``model_overrides``).
    paths:
        ``(train, val, test)`` files of a free-form task.
    """

    name: str
    title: str
    data: DataSpec | None
    preset: str | None
    train: dict[str, Any]
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    paths: tuple[str, str | None, str] | None = None


def _cpu_profile(quick: bool) -> list[Task]:
    """Darcy smooth, Navier-Stokes NS2 and mixed-boundary elliptic on a CPU budget."""
    res = 32 if quick else 64
    n_darcy = (200, 50, 50) if quick else (1000, 100, 100)
    n_ns = (20, 5, 10) if quick else (100, 10, 20)
    n_mixed = (200, 50, 50) if quick else (500, 100, 100)
    epochs = 10 if quick else 12
    recipe = {"epochs": epochs, "lr": 1e-3, "scheduler_step": "step", "seed": 0}
    # The presets' Fourier H1 loss drops |k_i| >= 20, a cut chosen at 211x211. At
    # 64x64 it hides the top third of the spectrum, where a 12-epoch MgNO keeps
    # most of its error (benchmarks/RESULTS.md): every model here sees all modes.
    darcy_recipe = {**recipe, "batch_size": 8, "k_max": "all"}
    unet = {"unet": {"channels": 16}}
    return [
        Task(
            "darcy", f"Darcy smooth {res}x{res} (solved on {2 * res - 1}x{2 * res - 1})",
            DataSpec("darcy-smooth", res, {"solve_resolution": 2 * res - 1}, *n_darcy, seed=100),
            "darcy-smooth", darcy_recipe, unet,
        ),
        Task(
            "ns", f"Navier-Stokes nu=1e-5 {res}x{res}, NS2 (one step, 10-step rollout)",
            DataSpec("navier-stokes", res,
                     {"nu": 1e-5, "T": 11.0, "solve_resolution": 128 if quick else 256},
                     *n_ns, seed=200),
            "navier-stokes", {**recipe, "batch_size": 10}, unet,
        ),
        Task(
            "mixed", f"Elliptic -div(a grad u) = f {res}x{res}, Dirichlet in x, Neumann in y",
            DataSpec("elliptic", res, {"bc": "dirichlet,neumann"}, *n_mixed, seed=300),
            None, {**recipe, "batch_size": 8, "loss": "rel_l2"}, unet,
        ),
    ]


def _gpu_profile() -> list[Task]:
    """The paper's data sizes and recipes (500 epochs): Darcy smooth/rough, NS2."""
    return [
        Task(
            "darcy-smooth", "Darcy smooth 211x211 (solved on 421x421), paper recipe",
            DataSpec("darcy-smooth", 211, {"solve_resolution": 421}, 1000, 100, 100, seed=100),
            "darcy-smooth", {"seed": 0},
        ),
        Task(
            "darcy-rough", "Darcy rough 256x256 (solved on 511x511), paper recipe",
            DataSpec("darcy-rough", 256, {"solve_resolution": 511}, 1280, 112, 112, seed=400),
            "darcy-rough", {"seed": 0},
        ),
        Task(
            "ns", "Navier-Stokes nu=1e-5 64x64, NS2, paper recipe",
            DataSpec("navier-stokes", 64, {"nu": 1e-5, "T": 11.0, "solve_resolution": 256},
                     1000, 100, 100, seed=200),
            "navier-stokes", {"seed": 0},
        ),
    ]


def list_profiles() -> dict[str, str]:
    """Names of the built-in profiles with one line each."""
    return {
        "cpu": "Darcy smooth 64x64 1000/100/100, NS nu=1e-5 64x64 NS2 100/10/20 trajectories, "
        "mixed-BC elliptic 500/100/100; 12 epochs; about 2 h on 2 cores with --jobs 2 "
        "--threads 1 (estimated from the runs of each task)",
        "cpu-quick": "the cpu profile at 32x32 with 200/50/50 samples (NS 20/5/10), 10 epochs; "
        "8.5 min on 2 idle cores with --jobs 2 --threads 1",
        "gpu": "the paper's settings: Darcy smooth 211x211, rough 256x256, NS2 64x64, "
        "500 epochs; run in slices with time_limit and resume",
    }


def get_profile(name: str) -> list[Task]:
    """The tasks of profile ``name`` (``cpu``, ``cpu-quick`` or ``gpu``).

    Raises
    ------
    InputError
        On an unknown name.
    """
    if name == "cpu":
        return _cpu_profile(False)
    if name == "cpu-quick":
        return _cpu_profile(True)
    if name == "gpu":
        return _gpu_profile()
    raise InputError(f"--profile: found {name!r}, expected one of {', '.join(list_profiles())}")


# ----------------------------------------------------------------------------- machine
def machine_info(threads: int | None = None) -> dict[str, Any]:
    """CPU model, cores, load average, torch/neuraloperator versions, threads, GPU."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        from importlib.metadata import version

        neuralop = version("neuraloperator")
    except Exception:  # noqa: BLE001 - informational only
        neuralop = "unknown"
    from mgno import __version__

    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_avg": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "neuraloperator": neuralop,
        "mgno": __version__,
        "torch_threads": threads if threads is not None else torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    return info


# ----------------------------------------------------------------------------- data
def _data_paths(out: Path, task: Task) -> tuple[Path, Path | None, Path]:
    if task.paths is not None:
        tr, va, te = task.paths
        return Path(tr), (Path(va) if va else None), Path(te)
    d = out / "data"
    return d / f"{task.name}_train.h5", d / f"{task.name}_val.h5", d / f"{task.name}_test.h5"


def ensure_data(
    out: Path,
    task: Task,
    *,
    device: str | None,
    progress: bool,
    deadline: float | None = None,
    threads: int | None = None,
    workers: int = 1,
) -> bool:
    """Generate the task's missing splits, each by ``mgno generate`` in a child process.

    ``workers`` > 1 generates every split in that many processes (``--workers``).

    Finished files are kept; a generation stopped at ``deadline`` (SIGTERM)
    leaves its ``.partial`` file, which the next call continues.

    Returns
    -------
    bool
        True when every split is on disk, False when stopped at the deadline.
    """
    if task.data is None:
        for p in _data_paths(out, task):
            if p is not None and not p.is_file():
                raise InputError(f"{p}: no such data file; expected an mgno HDF5 data set")
        return True
    spec = task.data
    paths = _data_paths(out, task)
    sizes = (spec.n_train, spec.n_val, spec.n_test)
    for i, (path, n) in enumerate(zip(paths, sizes, strict=True)):
        if path is None or path.is_file():
            continue
        if deadline is not None and time.monotonic() >= deadline:
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        argv = ["generate", spec.pde, "--n", str(n), "--resolution", str(spec.resolution),
                "--seed", str(spec.seed + i), "--out", str(path)]
        for k, v in spec.params.items():
            argv += ["--param", f"{k}={v}"]
        if device:
            argv += ["--device", device]
        elif workers > 1:
            argv += ["--workers", str(workers)]
        if not progress:
            argv.append("--no-progress")
        code, _usage, stopped = _run_process(
            [sys.executable, "-m", "mgno.cli", *argv], _child_env(threads), deadline)
        if stopped:
            return False
        if code != 0:
            raise RuntimeError(f"mgno {' '.join(argv)}: exit status {code}")
    return True


def _child_env(threads: int | None) -> dict[str, str]:
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    return env


class _Child:
    """A child process watched by ``wait4`` (for its peak RSS), stopped at a deadline.

    Its stdout goes to our stderr: ``mgno bench --json`` owns stdout.
    """

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(argv, env=env, stdout=2)
        self.stopped_at: float | None = None
        #: (exit code, ``resource.struct_rusage``, stopped at the deadline) once done
        self.result: tuple[int, Any, bool] | None = None

    def stop(self) -> None:
        """SIGTERM: the trainer saves a checkpoint and exits 130."""
        if self.stopped_at is None and self.result is None:
            self.proc.send_signal(signal.SIGTERM)
            self.stopped_at = time.monotonic()

    def poll(self, deadline: float | None) -> bool:
        """True once the child has exited; stops it at ``deadline``, kills it after a grace."""
        if self.result is not None:
            return True
        pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
        if pid:
            self._done(status, usage)
            return True
        now = time.monotonic()
        if deadline is not None and self.stopped_at is None and now >= deadline:
            self.stop()
        elif self.stopped_at is not None and now - self.stopped_at > STOP_GRACE_S:
            self.proc.kill()
        return False

    def wait(self) -> None:
        """Block until the child exits (after :meth:`stop`)."""
        if self.result is None:
            _pid, status, usage = os.wait4(self.proc.pid, 0)
            self._done(status, usage)

    def _done(self, status: int, usage: Any) -> None:
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.result = (self.proc.returncode, usage, self.stopped_at is not None)


def _run_process(
    argv: list[str], env: dict[str, str], deadline: float | None
) -> tuple[int, Any, bool]:
    """Run ``argv``; SIGTERM at ``deadline`` (then SIGKILL after a grace period).

    Returns the exit code, the child's ``resource.struct_rusage`` and whether
    it was stopped at the deadline.
    """
    child = _Child(argv, env)
    try:
        while not child.poll(deadline):
            time.sleep(0.2)
    except KeyboardInterrupt:
        child.stop()
        child.wait()
        raise
    assert child.result is not None
    return child.result


@contextmanager
def _sigterm_stops_children() -> Iterator[None]:
    """Within the block, SIGTERM to the bench acts like Ctrl-C.

    The running children then get SIGTERM in turn, save their checkpoints and
    are waited for, instead of being orphaned by a parent that dies at once.
    Only the main thread can set signal handlers; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ----------------------------------------------------------------------------- child
def _train_command(spec: dict[str, Any]) -> str:
    """The ``mgno train`` command equivalent to a child spec (for the record)."""
    words = ["mgno", "train", "--data", spec["data"]]
    if spec.get("val"):
        words += ["--val", spec["val"]]
    words += ["--out", spec["out"], "--model", spec["model"]]
    if spec.get("preset"):
        words += ["--preset", spec["preset"]]
    for k, v in spec["train"].items():
        if v is not None:
            words += [f"--{k.replace('_', '-')}", str(v)]
    for k, v in spec["model_overrides"].items():
        if v is None:
            continue
        words += [f"--{k}"] + ([str(x) for x in v] if isinstance(v, list) else [str(v)])
    return " ".join(shlex.quote(w) for w in words)


def _child_main(spec_path: str) -> int:
    """Run one training from a JSON spec; record the GPU peak; exit 0, 130 or 1."""
    import torch

    from mgno.train import train

    spec = json.loads(Path(spec_path).read_text())
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    result = train(
        spec["data"], spec["out"], val=spec.get("val"), preset=spec.get("preset"),
        model=spec["model"], model_overrides=spec["model_overrides"], resume=spec["resume"],
        progress=spec.get("progress", True), **spec["train"],
    )
    record = {
        "status": result.status,
        "epochs_done": result.epochs_done,
        "cuda_peak_bytes": torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None,
    }
    atomic_write_json(spec["result"], record)
    return 130 if result.status == "interrupted" else 0


class _Training:
    """One training run of the bench in its own child process."""

    def __init__(self, spec: dict[str, Any]) -> None:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(spec, f)
            self.spec_path = f.name
        self.spec = spec
        self.t0 = time.perf_counter()
        self.child = _Child([sys.executable, "-m", "mgno.bench", "--child", self.spec_path],
                            _child_env(spec.get("threads")))

    def record(self) -> dict[str, Any]:
        """Status, wall seconds, max RSS and GPU peak of the finished child."""
        assert self.child.result is not None
        code, usage, stopped = self.child.result
        Path(self.spec_path).unlink(missing_ok=True)
        result_path = Path(self.spec["result"])
        child = json.loads(result_path.read_text()) if result_path.is_file() else {}
        result_path.unlink(missing_ok=True)
        if code == 0:
            state = "finished"
        elif code in (130, -signal.SIGTERM) or stopped:
            state = "interrupted"
        else:
            state = "failed"
        return {
            "status": child.get("status", state) if code in (0, 130) else state,
            "exit_code": code,
            "wall_s": round(time.perf_counter() - self.t0, 2),
            # ru_maxrss is in KiB on Linux
            "max_rss_mib": round(usage.ru_maxrss / 1024, 1),
            "cuda_peak_mib": None
            if child.get("cuda_peak_bytes") is None
            else round(child["cuda_peak_bytes"] / 2**20, 1),
            "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        }


@dataclass
class _Plan:
    """A model of a task: its run directory, past attempts and training spec."""

    label: str
    run_dir: Path
    runs: list[dict[str, Any]]
    spec: dict[str, Any]
    finished: bool


def _train_pending(
    plans: list[_Plan], jobs: int, deadline: float | None, progress: bool
) -> bool:
    """Train the unfinished plans, up to ``jobs`` child processes at a time.

    Each attempt is appended to the plan's ``runs`` and written to its run
    directory as soon as the child exits. No new run starts after the deadline
    or after a run was interrupted; Ctrl-C stops every running child (each
    saves a checkpoint) and is raised again.

    Returns
    -------
    bool
        True when some run was interrupted (the bench then stops).
    """
    queue = [p for p in plans if not p.finished]
    active: list[tuple[_Plan, _Training]] = []
    stopped = False

    def collect(plan: _Plan, run: _Training) -> bool:
        rec = run.record()
        plan.runs.append(rec)
        plan.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(plan.run_dir / RUNS_FILE, plan.runs)
        plan.finished = rec["status"] == "finished"
        if rec["status"] == "failed":
            print(f"mgno bench: {plan.label}: training failed (exit {rec['exit_code']}); "
                  "see the messages above", file=sys.stderr, flush=True)
        elif progress and jobs > 1:
            print(f"mgno bench: {plan.label}: {rec['status']} after {rec['wall_s']:.0f} s",
                  file=sys.stderr, flush=True)
        return rec["status"] == "interrupted"

    try:
        while queue or active:
            while (queue and len(active) < jobs and not stopped
                   and not (deadline is not None and time.monotonic() >= deadline)):
                plan = queue.pop(0)
                plan.run_dir.parent.mkdir(parents=True, exist_ok=True)
                if progress:
                    print(f"mgno bench: {plan.label}: "
                          f"{'resuming' if plan.spec['resume'] else 'training'}",
                          file=sys.stderr, flush=True)
                active.append((plan, _Training(plan.spec)))
            if not active:
                break
            for item in list(active):
                if item[1].child.poll(deadline):
                    active.remove(item)
                    stopped = collect(*item) or stopped
            if active:
                time.sleep(0.2)
    except KeyboardInterrupt:
        for _plan, run in active:
            run.child.stop()
        for plan, run in active:
            run.child.wait()
            collect(plan, run)
        raise
    return stopped


# ----------------------------------------------------------------------------- measuring
def _read_json(path: Path, default: Any) -> Any:
    return json.loads(path.read_text()) if path.is_file() else default


def _history(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def inference_ms_per_sample(
    run_dir: Path, test: Path, *, device: str = "auto", repeats: int = 2
) -> float:
    """Milliseconds per test sample of the trained predictor (normalisers included).

    Steady data: one forward pass; trajectories: the whole rollout that
    ``mgno eval`` scores. One warm-up batch, then the best of ``repeats`` passes.
    """
    import torch

    from mgno.data.datasets import load_arrays, skip_frames
    from mgno.train import load_run

    run = load_run(run_dir, device=device)
    arrays = load_arrays(test).arrays
    if run.kind == "steady":
        x, steps = arrays["inputs"], None
    else:
        w = run.window
        traj = skip_frames(arrays["trajectories"], run.start_frame, test, need=w + 1)
        x, steps = traj[:, :w], min(run.train_config.steps_out, traj.shape[1] - w)
    bs = run.train_config.eval_batch_size or run.train_config.batch_size
    dev = run.device

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    def one(batch: torch.Tensor) -> None:
        batch = batch.to(dev)
        run.predictor(batch) if steps is None else run.predictor(batch, steps)

    best = float("inf")
    with torch.no_grad():
        one(x[:bs])
        for _ in range(max(1, repeats)):
            sync()
            t0 = time.perf_counter()
            for chunk in x.split(bs):
                one(chunk)
            sync()
            best = min(best, time.perf_counter() - t0)
    return 1000.0 * best / len(x)


def _measure(
    run_dir: Path, test: Path, device: str, threads: int | None = None
) -> dict[str, Any] | None:
    """Test metrics, parameters and inference time of a finished run (cached on disk).

    Runs in a child process (the same code and thread count as the training);
    None if the child fails (its message is on stderr).
    """
    cached = _read_json(run_dir / EVAL_FILE, None)
    if cached is not None:
        return cached
    argv = [sys.executable, "-m", "mgno.bench", "--measure", str(run_dir), str(test), device]
    if threads:
        argv.append(str(threads))
    code, _usage, _stopped = _run_process(argv, _child_env(threads), None)
    return _read_json(run_dir / EVAL_FILE, None) if code == 0 else None


def _measure_here(run_dir: Path, test: Path, device: str) -> dict[str, Any]:
    """The body of :func:`_measure` (in the child process); writes ``bench_eval.json``."""
    from mgno.train import evaluate, load_run

    res = evaluate(run_dir, test, device=device)
    run = load_run(run_dir, device="cpu")
    params = sum(p.numel() for p in run.predictor.parameters() if p.requires_grad)
    out = {
        "rel_l2": res.get("rel_l2"),
        "rel_h1": res.get("rel_h1"),
        "rel_h1_fourier": res.get("rel_h1_fourier"),
        "rel_l2_per_step": res.get("rel_l2_per_step"),
        "test_epoch": res.get("epoch"),
        "n_test": res.get("n_samples"),
        "parameters": params,
        "inference_ms_per_sample": round(inference_ms_per_sample(run_dir, test, device=device), 3),
    }
    atomic_write_json(run_dir / EVAL_FILE, out)
    return out


def _summarise(run_dir: Path, runs: list[dict], measured: dict | None) -> dict[str, Any]:
    hist = _history(run_dir)
    secs = [r["seconds"] for r in hist if "seconds" in r]
    vals = [r.get("val_rel_l2") for r in hist]
    best = min((v for v in vals if v is not None), default=None)
    rss = [r["max_rss_mib"] for r in runs if r.get("max_rss_mib") is not None]
    gpu = [r["cuda_peak_mib"] for r in runs if r.get("cuda_peak_mib") is not None]
    return {
        "epochs_done": len(hist),
        "seconds_per_epoch_median": round(statistics.median(secs), 3) if secs else None,
        "seconds_per_epoch_min": round(min(secs), 3) if secs else None,
        "train_seconds": round(sum(secs), 2) if secs else None,
        "best_val_rel_l2": best,
        "val_curve": [[r["epoch"], r.get("val_rel_l2"), r.get("seconds")] for r in hist],
        "peak_rss_mib": max(rss) if rss else None,
        "peak_gpu_mib": max(gpu) if gpu else None,
        **(measured or {}),
    }


def interleaved_step_costs(
    run_dirs: dict[str, Path],
    grid: Sequence[int],
    batch: int,
    *,
    rounds: int = 4,
    steps: int = 2,
    device: str = "cpu",
    seed: int = 0,
) -> dict[str, float]:
    """Milliseconds per sample of one training step of each run's network, at equal load.

    Whole-epoch timings of runs trained one after another carry whatever load
    the machine had at the time. Here every network is rebuilt from its run's
    ``config.json`` and timed on the same random input, (batch, in_channels,
    *grid): forward, backward and an Adam step, model after model within each
    round, keeping each model's fastest round. The ratios are then measured
    under the same load.
    """
    import torch

    from mgno.nn import build_model

    dev = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    nets = {}
    for name, run_dir in run_dirs.items():
        cfg = json.loads((Path(run_dir) / "config.json").read_text())["model"]
        net = build_model(cfg).to(dev)
        x = torch.randn(batch, cfg["in_channels"], *grid, generator=gen).to(dev)
        nets[name] = (net, torch.optim.Adam(net.parameters()), x)
    best = dict.fromkeys(nets, float("inf"))
    for _ in range(rounds):
        for name, (net, opt, x) in nets.items():
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            t0 = time.perf_counter()
            for _ in range(steps):
                opt.zero_grad(set_to_none=True)
                net(x).square().mean().backward()
                opt.step()
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            best[name] = min(best[name], (time.perf_counter() - t0) / steps / batch * 1e3)
    return {name: round(ms, 3) for name, ms in best.items()}


def _step_costs(
    task_dir: Path, names: list[str], test: Path, device: str, threads: int | None
) -> dict[str, float] | None:
    """:func:`interleaved_step_costs` of a task's finished runs, in a child (cached)."""
    cached = _read_json(task_dir / STEPS_FILE, None)
    if cached is not None and sorted(cached.get("ms_per_sample", {})) == sorted(names):
        return cached["ms_per_sample"]
    batch = _read_json(task_dir / names[0] / "config.json", {}).get("train", {}).get(
        "batch_size", 8)
    spec = {"runs": {n: str(task_dir / n) for n in names}, "test": str(test), "batch": batch,
            "device": device, "threads": threads, "out": str(task_dir / STEPS_FILE)}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
    try:
        code, _usage, _stopped = _run_process(
            [sys.executable, "-m", "mgno.bench", "--steps", f.name], _child_env(threads), None)
    finally:
        os.unlink(f.name)
    done = _read_json(task_dir / STEPS_FILE, None) if code == 0 else None
    return None if done is None else done["ms_per_sample"]


def _steps_main(spec_path: str) -> int:
    """``--steps SPEC.json``: the body of :func:`_step_costs` in the child process."""
    import torch

    from mgno.data.schema import open_dataset

    spec = json.loads(Path(spec_path).read_text())
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    device = spec["device"]
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    grid = open_dataset(spec["test"]).grid
    costs = interleaved_step_costs({k: Path(v) for k, v in spec["runs"].items()}, grid,
                                   int(spec["batch"]), device=device)
    atomic_write_json(spec["out"], {
        "ms_per_sample": costs, "grid": list(grid), "batch": spec["batch"], "device": device,
        "threads": torch.get_num_threads(),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    })
    return 0


def time_to_accuracy(curve: Sequence[Sequence[float]], target: float) -> float | None:
    """Cumulative training seconds at which a validation curve first reaches ``target``.

    Parameters
    ----------
    curve:
        ``[epoch, val_rel_l2, seconds]`` per epoch, in order.
    target:
        Validation rel. L2 to reach.

    Returns
    -------
    float or None
        None if the curve never reaches it.
    """
    total = 0.0
    for _epoch, val, secs in curve:
        total += secs or 0.0
        if val is not None and val <= target:
            return total
    return None


def compare_targets(models: dict[str, dict]) -> dict[str, Any] | None:
    """The issue's two targets of MgNO against FNO on one task (None without both).

    ``error_ratio``: MgNO's test rel. L2 over FNO's after the same epochs
    (target <= 0.5). ``time_ratio``: MgNO's cumulative training time until its
    validation rel. L2 first reaches FNO's best over FNO's whole training time
    (target <= 1/3), as measured. ``time_ratio_equal_load``: the same with each
    epoch costed by the models' equal-load step times (``step_ms_per_sample``,
    see :func:`interleaved_step_costs`), which a change of load between the two
    runs does not move.
    """
    m, f = models.get("mgno"), models.get("fno")
    if not m or not f or m.get("rel_l2") is None or f.get("rel_l2") is None:
        return None
    out: dict[str, Any] = {
        "mgno_rel_l2": m["rel_l2"],
        "fno_rel_l2": f["rel_l2"],
        "same_epochs": m["epochs_done"] == f["epochs_done"],
        "error_ratio": m["rel_l2"] / f["rel_l2"] if f["rel_l2"] else None,
    }
    out["error_target_met"] = out["error_ratio"] is not None and out["error_ratio"] <= 0.5
    target = f.get("best_val_rel_l2")
    t_m = None if target is None else time_to_accuracy(m["val_curve"], target)
    t_f = f.get("train_seconds")
    reached = [e for e, v, _s in m["val_curve"] if target is not None and v is not None
               and v <= target]
    out.update({
        "mgno_epochs_to_fno_best": reached[0] if reached else None,
        "fno_epochs": f["epochs_done"],
        "fno_best_val_rel_l2": target,
        "mgno_seconds_to_fno_best": t_m,
        "fno_train_seconds": t_f,
        "time_ratio": None if t_m is None or not t_f else t_m / t_f,
    })
    out["time_target_met"] = out["time_ratio"] is not None and out["time_ratio"] <= 1 / 3
    # the same ratio with every epoch costed by the equal-load step time
    c_m, c_f = m.get("step_ms_per_sample"), f.get("step_ms_per_sample")
    equal = None
    if c_m and c_f and reached and f["epochs_done"]:
        equal = reached[0] * c_m / (f["epochs_done"] * c_f)
    out["time_ratio_equal_load"] = equal
    out["time_target_met_equal_load"] = equal is not None and equal <= 1 / 3
    return out


# ----------------------------------------------------------------------------- report
def _fmt(v: Any, spec: str = ".4g") -> str:
    if v is None:
        return "-"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    return format(v, spec)


def format_results(results: dict[str, Any]) -> str:
    """The markdown report of a :func:`run_bench` result."""
    m = results["machine"]
    threads = m["torch_threads"]
    lines = [
        f"# mgno bench: {results.get('profile') or 'custom'}",
        "",
        f"- date: {m['date_utc']} (finished {results.get('finished_utc', '-')})",
        f"- command: `{results['command']}`",
        f"- machine: {m['cpu']}, {m['cores']} cores, GPU: {m['gpu'] or 'none'}; "
        f"torch {m['torch']}, neuraloperator {m['neuraloperator']}, mgno {m['mgno']}, "
        f"python {m['python']}; torch threads {threads}",
        f"- load average (1/5/15 min) at start {m['load_avg']}, at end "
        f"{results.get('load_avg_end')}",
        "- rel. L2 / rel. H1 (finite differences): test set, weights of the best validation "
        "epoch; s/epoch: median over epochs (training + validation); inference: ms per test "
        "sample (NS: the 10-step rollout); step ms/sample (equal load): one forward, "
        "backward and Adam step of each network on the same input, the models interleaved "
        "after training, fastest of 4 rounds; peak memory: max RSS of the training process "
        "(GPU: torch.cuda.max_memory_allocated)",
        "",
    ]
    for task in results["tasks"]:
        lines += [f"## {task['title']}", ""]
        lines.append(f"data: {task['data']}; recipe: {task['recipe']}")
        lines.append("")
        lines.append("| model | params | epochs | test rel. L2 | test rel. H1 | best val rel. L2 "
                     "| s/epoch | train s | step ms/sample (equal load) | inference ms/sample "
                     "| peak MiB | status |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for name, r in task["models"].items():
            peak = r.get("peak_gpu_mib") if r.get("peak_gpu_mib") is not None else r.get(
                "peak_rss_mib")
            lines.append(
                f"| {name} | {_fmt(r.get('parameters'), ',')} | {r.get('epochs_done')} "
                f"| {_fmt(r.get('rel_l2'))} | {_fmt(r.get('rel_h1'))} "
                f"| {_fmt(r.get('best_val_rel_l2'))} "
                f"| {_fmt(r.get('seconds_per_epoch_median'), '.3g')} "
                f"| {_fmt(r.get('train_seconds'), '.0f')} "
                f"| {_fmt(r.get('step_ms_per_sample'), '.3g')} "
                f"| {_fmt(r.get('inference_ms_per_sample'), '.3g')} | {_fmt(peak, '.0f')} "
                f"| {r.get('status')} |"
            )
        t = task.get("targets")
        if t:
            lines += [
                "",
                f"MgNO / FNO test rel. L2 after the same epochs: {_fmt(t['error_ratio'], '.3f')} "
                f"(target <= 0.5: {'met' if t['error_target_met'] else 'missed'}). "
                f"MgNO reaches FNO's best validation rel. L2 ({_fmt(t['fno_best_val_rel_l2'])}) "
                f"at epoch {_fmt(t.get('mgno_epochs_to_fno_best'))} of {t.get('fno_epochs')}, "
                f"after {_fmt(t['mgno_seconds_to_fno_best'], '.0f')} s of training vs FNO's "
                f"{_fmt(t['fno_train_seconds'], '.0f')} s: ratio {_fmt(t['time_ratio'], '.3f')} "
                f"(target <= 1/3: {'met' if t['time_target_met'] else 'missed'}); "
                f"costed by the equal-load step times: "
                f"{_fmt(t.get('time_ratio_equal_load'), '.3f')} "
                f"({'met' if t.get('time_target_met_equal_load') else 'missed'}).",
            ]
        lines += ["", "Equivalent training commands:", ""]
        lines += [f"    {c}" for c in task["commands"].values()]
        lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- driver
def _check_models(models: Sequence[str] | None) -> list[str]:
    chosen = list(models) if models else list(DEFAULT_MODELS)
    for m in chosen:
        if m not in FAMILIES:
            raise InputError(f"--models: found {m!r}, expected some of {', '.join(FAMILIES)}")
    return list(dict.fromkeys(chosen))


def _check_run(run_dir: Path, spec: dict[str, Any], resume: bool, label: str) -> _Plan:
    """The plan of one model: finished, to resume, or to start (refusals before any work)."""
    runs = _read_json(run_dir / RUNS_FILE, [])
    finished = bool(runs) and runs[-1]["status"] == "finished"
    if finished:
        saved = _read_json(run_dir / "config.json", {}).get("train", {})
        want = spec["train"].get("epochs")
        if want is not None and saved.get("epochs") != want:
            raise InputError(
                f"{run_dir}: finished with epochs={saved.get('epochs')}, but "
                f"epochs={want} was asked; expected a new bench directory for a new budget"
            )
    else:
        has_run = (run_dir / "config.json").is_file()
        if has_run and not resume:
            raise InputError(
                f"{run_dir}: holds an unfinished run; expected --resume to continue it"
            )
        spec["resume"] = has_run and (run_dir / "checkpoint.safetensors").is_file()
        if has_run and not spec["resume"]:
            raise InputError(f"{run_dir}: config.json without a checkpoint; expected "
                             "a complete run directory (remove it to start over)")
    return _Plan(label, run_dir, runs, spec, finished)


def run_bench(
    out: str | os.PathLike,
    *,
    profile: str | None = None,
    data: str | os.PathLike | None = None,
    val: str | os.PathLike | None = None,
    test: str | os.PathLike | None = None,
    models: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
    preset: str | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    resume: bool = False,
    time_limit: float | None = None,
    threads: int | None = None,
    jobs: int = 1,
    device: str = "auto",
    progress: bool = True,
    command: str | None = None,
) -> dict[str, Any]:
    """Train several models on the same data and budget; write results.md/json.

    Parameters
    ----------
    out:
        The bench directory (data, runs, results).
    profile:
        ``"cpu"``, ``"cpu-quick"`` or ``"gpu"`` (see :func:`list_profiles`);
        or None with ``data`` and ``test`` for a free-form comparison.
    data, val, test:
        Free form: training, validation (optional) and test files.
    models:
        Families to train (default: mgno, fno, tfno, unet).
    tasks:
        Only these tasks of the profile (e.g. ``["darcy"]``).
    preset:
        Free form: preset whose recipe every model uses (MgNO: also its network).
    epochs, batch_size, lr:
        Override the recipe of every task.
    resume:
        Continue interrupted runs (finished ones are always skipped).
    time_limit:
        Seconds for this call: the running training gets SIGTERM at the
        deadline, saves a checkpoint and the call returns; rerun with
        ``resume=True`` for the next slice.
    threads:
        torch threads of every process (default: torch's; with ``jobs > 1``,
        the cores shared out among the jobs).
    jobs:
        Trainings (and data-generation workers) run at once, each in its own
        process. On a CPU with a few cores, ``jobs`` = cores and ``threads=1``
        gives the shortest wall clock; the measured seconds per epoch then
        include the neighbours' share of memory bandwidth. CPU only.
    device:
        ``auto``, ``cpu`` or ``cuda``.
    progress:
        Progress on stderr.
    command:
        The command line to record (default: a ``run_bench(...)`` call).

    Returns
    -------
    dict
        What ``results.json`` holds: ``machine``, ``command``, ``tasks`` (per
        model metrics, runs and the MgNO/FNO ``targets``) and ``complete``.

    Raises
    ------
    InputError
        Unknown profile/model/task, missing files, or a run directory that
        holds an unfinished run without ``resume``.
    """
    import torch

    t_start = time.monotonic()
    deadline = None if time_limit is None else t_start + float(time_limit)
    if threads is not None:
        if threads < 1:
            raise InputError(f"--threads: found {threads}, expected an integer >= 1")
        torch.set_num_threads(int(threads))
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise InputError(f"--jobs: found {jobs!r}, expected an integer >= 1")
    if jobs > 1:
        if device not in ("auto", "cpu") or (device == "auto" and torch.cuda.is_available()):
            raise InputError(f"--jobs: found {jobs}, expected 1 on a GPU (one training per "
                             "device); use torchrun for several GPUs")
        if threads is None:
            threads = max(1, (os.cpu_count() or 1) // jobs)
            torch.set_num_threads(threads)
    out = Path(out)
    chosen = _check_models(models)
    if profile is not None:
        if data is not None or test is not None:
            raise InputError("--profile: given with --data/--test; expected one or the other")
        all_tasks = get_profile(profile)
    else:
        if data is None or test is None:
            raise InputError("--data/--test: missing; expected both (or --profile NAME)")
        all_tasks = [Task("custom", f"{Path(data).name} (test {Path(test).name})", None, preset,
                          {}, paths=(str(data), None if val is None else str(val), str(test)))]
    if tasks:
        names = [t.name for t in all_tasks]
        bad = [t for t in tasks if t not in names]
        if bad:
            raise InputError(f"--tasks: found {bad[0]!r}, expected some of {', '.join(names)}")
        all_tasks = [t for t in all_tasks if t.name in tasks]
    if command is None:
        command = f"mgno.bench.run_bench({str(out)!r}, profile={profile!r}, models={chosen})"
    out.mkdir(parents=True, exist_ok=True)
    gen_device = "cuda" if device in ("auto", "cuda") and torch.cuda.is_available() else None
    results: dict[str, Any] = {
        "profile": profile,
        "command": command,
        "machine": machine_info(threads),
        "models": chosen,
        "tasks": [],
    }
    # 1. data of every task, and what each model still has to train
    stopped = False
    task_plans: list[tuple[dict[str, Any], Path, list[_Plan]]] = []
    for task in all_tasks:
        recipe = dict(task.train)
        recipe.update({k: v for k, v in (("epochs", epochs), ("batch_size", batch_size),
                                          ("lr", lr)) if v is not None})
        if device != "auto":
            recipe["device"] = device
        tr, va, te = _data_paths(out, task)
        entry: dict[str, Any] = {
            "name": task.name,
            "title": task.title,
            "data": {"train": str(tr), "val": None if va is None else str(va),
                     "test": str(te)} if task.data is None else {
                "pde": task.data.pde, "resolution": task.data.resolution,
                "params": task.data.params, "n_train": task.data.n_train,
                "n_val": task.data.n_val, "n_test": task.data.n_test, "seed": task.data.seed},
            "preset": task.preset,
            "recipe": {**({"preset": task.preset} if task.preset else {}), **recipe},
            "models": {},
            "commands": {},
        }
        results["tasks"].append(entry)
        plans: list[_Plan] = []
        for family in chosen:
            run_dir = out / "runs" / task.name / family
            spec = {
                "data": str(tr), "val": None if va is None else str(va), "out": str(run_dir),
                "preset": task.preset, "model": family,
                "model_overrides": copy.deepcopy(task.models.get(family, {})),
                "train": recipe, "resume": False, "threads": threads,
                "progress": progress and jobs == 1,
                "result": str(run_dir.parent / f".{family}_{CHILD_FILE}"),
            }
            entry["commands"][family] = _train_command(spec)
            plans.append(_check_run(run_dir, spec, resume, f"{task.name}/{family}"))
        if not stopped and any(not p.finished for p in plans):
            with _sigterm_stops_children():
                stopped = not ensure_data(out, task, device=gen_device, progress=progress,
                                          deadline=deadline, threads=threads, workers=jobs)
        task_plans.append((entry, te, plans if not stopped else []))
    # 2. training, `jobs` runs at a time
    pending = [p for _e, _t, plans in task_plans for p in plans]
    with _sigterm_stops_children():
        stopped = _train_pending(pending, jobs, deadline, progress) or stopped
    # 3. test metrics and inference times, one process at a time
    complete = not stopped
    for entry, te, plans in task_plans:
        for family in chosen:
            plan = next((p for p in plans if p.spec["model"] == family), None)
            run_dir = out / "runs" / entry["name"] / family
            runs = plan.runs if plan is not None else _read_json(run_dir / RUNS_FILE, [])
            finished = bool(runs) and runs[-1]["status"] == "finished"
            measured = _measure(run_dir, te, device, threads) if finished else None
            summary = _summarise(run_dir, runs, measured)
            summary["status"] = "finished" if finished else (
                runs[-1]["status"] if runs else "not started")
            if finished and measured is None:
                summary["status"] = "trained; evaluation failed"
                finished = False
            entry["models"][family] = summary
            complete = complete and finished
        done = [k for k, v in entry["models"].items() if v["status"] == "finished"]
        if len(done) >= 2:
            costs = _step_costs(out / "runs" / entry["name"], done, te, device, threads) or {}
            for name, ms in costs.items():
                entry["models"][name]["step_ms_per_sample"] = ms
        entry["targets"] = compare_targets(
            {k: v for k, v in entry["models"].items() if v["status"] == "finished"})
    results["complete"] = complete
    results["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    results["finished_utc"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    atomic_write_json(out / RESULTS_JSON, results)
    atomic_write_text(out / RESULTS_MD, format_results(results))
    if not complete and progress:
        print(f"mgno bench: stopped before the end; continue with --resume (same --out {out})",
              file=sys.stderr, flush=True)
    return results


def _measure_main(argv: Sequence[str]) -> int:
    """``--measure RUN_DIR TEST DEVICE [THREADS]``: measure a finished run."""
    import torch

    if len(argv) > 3:
        torch.set_num_threads(int(argv[3]))
    _measure_here(Path(argv[0]), Path(argv[1]), argv[2])
    return 0


if __name__ == "__main__":  # the child processes of run_bench
    from mgno.denormals import flush_denormals

    flush_denormals()
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        sys.exit(_child_main(sys.argv[2]))
    if len(sys.argv) in (5, 6) and sys.argv[1] == "--measure":
        sys.exit(_measure_main(sys.argv[2:]))
    if len(sys.argv) == 3 and sys.argv[1] == "--steps":
        sys.exit(_steps_main(sys.argv[2]))
    sys.exit("usage: python -m mgno.bench --child SPEC.json | --measure RUN_DIR TEST DEVICE "
             "[THREADS] | --steps SPEC.json (internal; use `mgno bench`)")
