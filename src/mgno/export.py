"""Export a trained run to the places users run models: ONNX and torch.export (pt2).

The exported graph maps raw inputs to raw outputs: the run's input and
output normalisers are folded in, so a user feeds physical fields and gets
physical fields back. What is exported is one application of the run's
predictor:

* steady runs: ``(B, C_in, *grid) -> (B, C_out, *grid)``;
* trajectory runs: one step, window ``(B, T_in, C, *grid) -> (B, C, *grid)``
  (roll it out by feeding each new frame back, as ``mgno predict`` does).

Grids: by default the graph bakes in the ``resample`` strategy of
:mod:`mgno.nn.resolution` (``mgno predict``'s default): an input on any grid
is interpolated to the training grid, the network and its normalisers run
there, and the output is interpolated back, so the batch and spatial axes are
dynamic. ``grid="fixed"`` exports the training grid alone.
FFT-based baselines (FNO, TFNO, UNO) compute with complex tensors, which the
ONNX exporter cannot translate: they are refused with one line.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import os
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mgno.atomic import atomic_path
from mgno.errors import InputError
from mgno.lock import lock_holder
from mgno.train.loaded_run import LoadedRun, load_run
from mgno.train.run_dir import RunDir

FORMATS = ("onnx", "pt2")
#: what the exported graph does with the input grid (see export_run)
GRIDS = ("resample", "fixed")
#: families whose spectral layers use complex tensors (no ONNX translation)
_FFT_FAMILIES = ("fno", "tfno", "uno")
#: largest relative max difference between the export and PyTorch accepted as parity
PARITY_TOLERANCE = 1e-5


class _OneApplication(nn.Module):
    """The run's predictor, once, normalisers folded in.

    ``resample``: any input grid is interpolated to the training grid, the
    network runs there, and the output is interpolated back (exact on the
    training grid itself); ``fixed``: inputs must be on the training grid.
    """

    def __init__(self, run: LoadedRun, resample: bool) -> None:
        super().__init__()
        self.predictor = run.predictor
        self.resample = resample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from mgno.nn.resolution import resample

        if not self.resample:
            return self.predictor._on_training_grid(x)
        p = self.predictor
        ndim = len(p.grid)
        lead, grid = x.shape[: x.ndim - ndim], x.shape[x.ndim - ndim :]
        flat = x.reshape(x.shape[0], -1, *grid)
        z = resample(flat, p.grid, p.boundary).reshape(*lead, *p.grid)
        return resample(p._on_training_grid(z), grid, p.boundary)


@dataclass
class ExportReport:
    """What :func:`export_run` wrote and how it was checked.

    Attributes
    ----------
    path, format
        The file written and its format.
    input_shape
        An example input shape; ``dynamic_axes`` names the axes that may change.
    grid
        ``resample`` (spatial axes dynamic, interpolated to the training grid
        and back inside the graph) or ``fixed`` (the training grid only).
    weights, epoch
        Which weights were exported (``best``: model.safetensors) and their epoch.
    parity
        Per checked grid: relative max difference between the exported model
        (onnxruntime or the loaded pt2 program) and PyTorch.
    notes
        One-line remarks (a run still training, a grid left unchecked...).
    """

    path: str
    format: str
    input_shape: list[int]
    dynamic_axes: list[str]
    grid: str
    weights: str
    epoch: int
    parity: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready dict."""
        return asdict(self)


def _require_onnx() -> None:
    missing = [m for m in ("onnx", "onnxscript") if importlib.util.find_spec(m) is None]
    if missing:
        raise InputError(
            f"--format onnx needs the package(s) {', '.join(missing)}, which are not "
            "installed; expected them from: pip install 'mgno[export]'"
        )


def _check_request(run_dir: RunDir, out: Path, fmt: str, force: bool, grid: str) -> None:
    run_dir.require()
    if fmt not in FORMATS:
        raise InputError(f"--format {fmt!r}: unknown format; expected one of {', '.join(FORMATS)}")
    if grid not in GRIDS:
        raise InputError(f"--grid {grid!r}: unknown; expected one of {', '.join(GRIDS)}")
    family = run_dir.read_config()["model"].get("model")
    if family in _FFT_FAMILIES:
        raise InputError(
            f"{run_dir.path}: a {family} run cannot be exported to {fmt}: its spectral "
            "layers compute with complex tensors (FFTs), which the exporter cannot "
            "translate; expected an MgNO or U-Net run"
        )
    if out.is_dir():
        raise InputError(f"{out}: is a folder, expected the exported file's name")
    if out.exists() and not force:
        raise InputError(f"{out}: exists; expected another --out, or --force to replace it")
    if fmt == "onnx":
        _require_onnx()


def _example(run: LoadedRun) -> torch.Tensor:
    """An input on the run's training grid: steady (2, C_in, *grid), else (2, T_in, C, *grid)."""
    grid = tuple(run.predictor.grid or ())
    if not grid:
        raise InputError(f"{run.run_dir}: config.json records no training grid, "
                         "expected a run written by mgno train")
    in_ch = int(run.config["model"]["in_channels"])
    task = run.task
    shape = (2, in_ch, *grid) if task.steady else (2, task.window, in_ch // task.window, *grid)
    return torch.rand(shape, generator=torch.Generator().manual_seed(0))


def _dynamic_shapes(x: torch.Tensor, tied: bool, ndim: int) -> tuple[dict, list[str]]:
    axes = {0: torch.export.Dim("batch", min=1)}
    names = ["batch"]
    if not tied:
        for k in range(ndim):
            axis = x.ndim - ndim + k
            axes[axis] = torch.export.Dim.AUTO  # the range the network allows
            names.append(f"n{k}")
    return {"x": axes}, names


def _other_grid(x: torch.Tensor, ndim: int) -> torch.Tensor:
    """The example input on a different grid (odd sizes, not a multiple of the first)."""
    grid = [max(5, (n * 3) // 4 + 1) for n in x.shape[x.ndim - ndim :]]
    return torch.rand(*x.shape[: x.ndim - ndim], *grid, generator=torch.Generator().manual_seed(1))


def _relative_max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    scale = float(b.abs().max())
    return float((a - b).abs().max()) / (scale if scale > 0 else 1.0)


def _check_parity(module: nn.Module, path: Path, fmt: str, inputs: list[torch.Tensor]
                  ) -> dict[str, float]:
    """Relative max difference of the written file against PyTorch, per input grid."""
    if fmt == "onnx":
        if importlib.util.find_spec("onnxruntime") is None:
            return {}
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name

        def run(x):
            return torch.from_numpy(session.run(None, {name: x.numpy()})[0])
    else:
        program = torch.export.load(str(path)).module()

        def run(x):
            return program(x)

    out = {}
    with torch.no_grad():
        for x in inputs:
            key = "x".join(str(n) for n in x.shape[2:])
            out[key] = _relative_max_diff(run(x), module(x))
    return out


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Hold back the exporters' own warnings and log lines (stderr is for one-line notes)."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _write(module: nn.Module, x: torch.Tensor, shapes: dict, fmt: str, tmp: Path) -> None:
    if fmt == "pt2":
        program = torch.export.export(module, (x,), dynamic_shapes=shapes)
        torch.export.save(program, str(tmp))
        return
    torch.onnx.export(module, (x,), str(tmp), dynamo=True, dynamic_shapes=shapes,
                      input_names=["x"], output_names=["y"], verbose=False)


def export_run(
    run_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    fmt: str = "onnx",
    grid: str = "resample",
    force: bool = False,
    check: bool = True,
) -> ExportReport:
    """Export a run's best weights, normalisers folded in, to ONNX or pt2.

    Parameters
    ----------
    run_dir
        A run directory written by ``mgno train``.
    out
        The file to write (refused when it exists, unless ``force``).
    fmt
        ``"onnx"`` (needs ``pip install 'mgno[export]'``) or ``"pt2"``
        (``torch.export``; load with ``torch.export.load(path).module()``).
    grid
        ``"resample"`` (default, as ``mgno predict``): any input grid, which the
        graph interpolates to the training grid and back; ``"fixed"``: the
        training grid only (a smaller graph, no interpolation).
    check
        Compare the written file with PyTorch on the training grid and, for
        ``resample``, one other grid (onnxruntime for ONNX).

    Returns
    -------
    ExportReport
    """
    t0 = time.perf_counter()
    rdir, dest = RunDir(run_dir), Path(out)
    _check_request(rdir, dest, fmt, force, grid)
    notes = []
    holder = lock_holder(rdir.lock().path)
    if holder:
        notes.append(f"{rdir.path} is still training ({holder}): exported its best weights so far")
    run = load_run(rdir.path, which="best", device="cpu")
    tied = grid == "fixed"
    module = _OneApplication(run, resample=not tied).eval()
    x = _example(run)
    ndim = len(run.predictor.grid)
    shapes, names = _dynamic_shapes(x, tied, ndim)
    with atomic_path(dest) as tmp, _quiet():
        _write(module, x, shapes, fmt, tmp)
        parity = _check_parity(module, tmp, fmt, [x] if tied else [x, _other_grid(x, ndim)]) \
            if check else {}
        worst = max(parity.values(), default=0.0)
        if worst > 100 * PARITY_TOLERANCE:  # a bug of the export, not the user's input
            raise RuntimeError(f"{dest}: the export differs from PyTorch by {worst:.2e}")
    return ExportReport(str(dest), fmt, list(x.shape), names, grid, "best", run.epoch,
                        parity, notes, time.perf_counter() - t0)


__all__ = ["FORMATS", "GRIDS", "PARITY_TOLERANCE", "ExportReport", "export_run"]
