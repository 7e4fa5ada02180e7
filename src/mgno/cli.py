"""The ``mgno`` command line: parses arguments and calls public functions.

Every verb is a thin wrapper over a function a user can call from Python.
Bad input prints ``mgno: error: <one line>`` on stderr and exits with status 2;
``--json`` prints exactly one JSON object on stdout and nothing else there.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence

from mgno.errors import InputError, OutputFault
from mgno.vocab import (
    BOUNDARY_CONDITIONS,
    CARRY_MODES,
    GRID_SCHEDULES,
    LAYOUTS,
    LOGGERS,
    LOSSES,
    MGNO_NORMS,
    NORMALIZERS,
    OPTIMIZERS,
    PROTOCOLS,
    RESOLUTION_STRATEGIES,
    SCHEDULER_STEPS,
    SCHEDULERS,
    UNROLL_GRADIENTS,
)

EXIT_BAD_INPUT = 2
#: Exit status of a refinement (``predict --refine``) that stopped above its tolerance.
EXIT_NOT_CONVERGED = 3
#: Exit status of a fault of the machine (disk full, file size limit), not of the input.
EXIT_FAULT = 1
#: Errors of the file system that are not the user's input: one line, exit 1.
FAULT_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})
#: File errors that name a path the user gave (one that is missing, unwritable,
#: read-only, a folder where a file is due...): one line, exit 2.
FILE_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)
FILE_ERRNOS = frozenset({errno.EROFS})


#: verbs that compute and take --threads (bench has its own: threads per child process)
_THREADED = ("train", "eval", "predict", "plot", "export", "generate", "convert")


def _add_threads(p: argparse.ArgumentParser) -> None:
    from mgno.threads import parse_threads

    p.add_argument("--threads", type=parse_threads, default="auto", metavar="N|auto",
                   help="torch threads (default auto: the cores this process may use, less "
                   "those other processes keep busy; see docs/performance.md)")


def _use_threads(args: argparse.Namespace) -> None:
    """Set torch's threads for a computing verb; a resumed run keeps its recorded count."""
    from mgno.threads import use_threads

    value = args.threads
    if args.verb == "train" and args.resume and value == "auto":
        from mgno.train.run_dir import recorded_threads

        value = recorded_threads(args.out) or value
    args.threads = use_threads(value)


def _print_json(obj: object) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False) + "\n")


# --------------------------------------------------------------------------- info
def _add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="model summary and parameter count of a preset")
    p.add_argument("--preset", required=True, help="preset name (see `mgno info --list`)")
    p.add_argument(
        "--grid",
        type=int,
        nargs="+",
        default=None,
        metavar="N",
        help="grid size per axis used to report the level sizes (default: the preset's grid)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _run_info(args: argparse.Namespace) -> int:
    from mgno.nn.summary import format_summary, summarize_preset

    summary = summarize_preset(args.preset, grid=args.grid)
    if args.json:
        _print_json(summary)
    else:
        print(format_summary(summary))
    return 0


def _add_presets(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("presets", help="list the model presets")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _run_presets(args: argparse.Namespace) -> int:
    from mgno.presets import list_presets, preset_description

    names = list_presets()
    if args.json:
        _print_json({name: preset_description(name) for name in names})
    else:
        for name in names:
            print(f"{name:20s} {preset_description(name)}")
    return 0


# --------------------------------------------------------------------------- demo
def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the main job on an embedded default (used by `make demo`)")
    p.add_argument("--out", default="demo_out", help="folder for what the demo writes")
    p.add_argument("--seed", type=int, default=0)


def _run_demo(args: argparse.Namespace) -> int:
    from mgno.demo import run_demo

    run_demo(out_dir=args.out, seed=args.seed)
    return 0


# --------------------------------------------------------------------------- train
class _ModelFamilies:
    """``--model``'s choices: the registered families, looked up (importing torch)
    only when a value is checked or the help is printed, so that building the
    parser stays cheap."""

    def _names(self) -> Sequence[str]:
        from mgno.nn.registry import MODEL_FAMILIES

        return MODEL_FAMILIES

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __iter__(self):
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a neural operator on an HDF5 data set")
    p.add_argument("--data", required=True, help="training set (.h5)")
    p.add_argument("--val", default=None, help="validation set (default: hold out --val-fraction)")
    p.add_argument("--out", required=True, help="run directory to create (or to --resume)")
    p.add_argument("--preset", default=None, help="model and recipe of a paper experiment")
    p.add_argument("--model", default=None, choices=_ModelFamilies(), metavar="MODEL",
                   help="network family: %(choices)s")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None, help="global batch size")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    g = p.add_argument_group("recipe (default: the preset's, else derived from the data)")
    g.add_argument("--optimizer", choices=OPTIMIZERS, default=None)
    g.add_argument("--weight-decay", type=float, default=None)
    g.add_argument("--scheduler", choices=SCHEDULERS, default=None)
    g.add_argument("--scheduler-step", choices=SCHEDULER_STEPS, default=None)
    g.add_argument("--loss", choices=LOSSES, default=None)
    g.add_argument("--k-max", type=_k_max, default=None, metavar="N|all",
                   help="rel_h1_fourier: drop modes with some |k_i| >= N (the presets' 20), "
                   "or keep all")
    g.add_argument("--normalizer", choices=NORMALIZERS, default=None,
                   help="normaliser of inputs and outputs")
    g.add_argument("--grad-clip", type=float, default=None, help="clip the gradient norm")
    _add_trajectory_options(g)
    g.add_argument("--val-fraction", type=float, default=None)
    _add_grid_schedule_options(p.add_argument_group("coarse-to-fine training (MgNO)"))
    g = p.add_argument_group("network (default: the preset's, else derived from the data)")
    g.add_argument("--channels", type=int, default=None)
    g.add_argument("--layers", type=int, default=None)
    g.add_argument("--levels", type=int, default=None)
    g.add_argument("--boundary", nargs="+", default=None,
                   choices=BOUNDARY_CONDITIONS,
                   help="padding per axis (default: the data's metadata)")
    g.add_argument("--norm", choices=MGNO_NORMS, default=None,
                   help="mgno: normalisation after each prolongation (default: the preset's, "
                   "else none); layer-grid is the authors' LayerNorm with weights per node, "
                   "tied to the training grid")
    g.add_argument("--positional", choices=["none", "coords"], default=None,
                   help="mgno, unet: append the node coordinates as input channels (sin/cos "
                   "pairs on periodic axes), computed on any grid (default: none)")
    _add_output_options(p.add_argument_group("hardware and output"))


def _add_output_options(g: argparse._ArgumentGroup) -> None:
    """Where and how ``mgno train`` runs and what it reports and logs."""
    g.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N")
    g.add_argument("--bf16", action="store_true", default=None, help="bfloat16 autocast (GPU)")
    g.add_argument("--compile", action="store_true", default=None,
                   help="torch.compile the network (slow first step, faster afterwards)")
    g.add_argument("--activation-checkpointing", action="store_true", default=None,
                   help="MgNO: recompute activations in the backward pass (large grids, "
                   "about half the memory)")
    g.add_argument("--quiet", action="store_true", help="no progress output on stderr")
    g.add_argument("--json", action="store_true", help="print one JSON summary on stdout")
    # --logger: the spelling torchrun lets through (its parser takes --log for a
    # shortening of its own --log-dir / --logs-specs and stops)
    g.add_argument("--log", "--logger", dest="log", choices=LOGGERS, default=None,
                   help="experiment logger besides metrics.jsonl: tensorboard writes "
                   "RUN_DIR/tensorboard/ (pip install 'mgno[log]'); default none. Under "
                   "torchrun spell it --logger")
    g.add_argument("--log-images-every", type=int, default=None, metavar="N",
                   help="with --log: an image of a validation prediction, its truth and "
                   "error every N epochs and at the last (default 5; 0: never)")


def _add_trajectory_options(g: argparse._ArgumentGroup) -> None:
    """The recipe options of time-dependent data: protocol, frames, unrolling, noise."""
    g.add_argument("--protocol", choices=PROTOCOLS, default=None)
    g.add_argument("--steps-in", type=int, default=None, metavar="N",
                   help="10-10 protocol: frames in the input window (default 10)")
    g.add_argument("--steps-out", type=int, default=None, metavar="N",
                   help="trajectories: frames predicted (10-10) or rolled out in validation "
                   "and eval (one-step); default 10")
    g.add_argument("--start-frame", type=int, default=None, metavar="N",
                   help="trajectories: leave out the frames before N in training, evaluation "
                   "and rollouts (the navier-stokes preset: 1, skipping the initial field)")
    g.add_argument("--unroll", type=int, default=None, metavar="K",
                   help="one-step protocol: train on windows of K steps from a true frame, "
                   "the loss on the last step (default 1: plain one-step training)")
    g.add_argument("--unroll-grad", choices=UNROLL_GRADIENTS, default=None,
                   help="with --unroll K > 1: gradients through the last step only (last, "
                   "the pushforward trick; default) or through all K steps (all)")
    g.add_argument("--input-noise", type=float, default=None, metavar="SIGMA",
                   help="trajectories: add Gaussian noise of SIGMA times the frames' std "
                   "to the training inputs (default 0: none)")


def _add_grid_schedule_options(g: argparse._ArgumentGroup) -> None:
    """Coarse-to-fine training: the grids, the epochs per grid, what is carried."""
    g.add_argument("--grid-schedule", choices=GRID_SCHEDULES, default=None,
                   help="mgno: fine (default) trains on the data's grid; coarse-to-fine first "
                   "on the data restricted to coarser grids, then on the data's grid, the "
                   "weights carried over (docs/coarse_to_fine.md)")
    g.add_argument("--coarse-levels", type=int, default=None, metavar="N",
                   help="coarse-to-fine: number of coarse grids, each every other node of "
                   "the next (default 1)")
    g.add_argument("--phase-epochs", default=None, metavar="E1,E2,...",
                   help="coarse-to-fine: epochs per grid, coarsest first, one per coarse grid "
                   "and one for the data's grid, summing to --epochs (default: equal shares, "
                   "the rest to the data's grid)")
    g.add_argument("--carry", choices=CARRY_MODES, default=None,
                   help="coarse-to-fine: levels (default; the coarse network becomes the "
                   "finer one's levels 2..L) or all (one network on every grid)")


def _k_max(text: str) -> int | str:
    if text.strip().lower() == "all":
        return "all"
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1 or 'all', got {text!r}")
    return value


def _run_train(args: argparse.Namespace) -> int:
    from mgno.train import TrainingDiverged, train

    norm = args.normalizer
    try:
        result = train(
            args.data, args.out, val=args.val, preset=args.preset, model=args.model,
            resume=args.resume, progress=not args.quiet,
            model_overrides={"channels": args.channels, "layers": args.layers,
                             "levels": args.levels, "boundary": args.boundary,
                             "checkpointing": args.activation_checkpointing,
                             "positional": args.positional, "norm": args.norm},
            epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
            optimizer=args.optimizer, weight_decay=args.weight_decay, scheduler=args.scheduler,
            scheduler_step=args.scheduler_step, loss=args.loss, k_max=args.k_max,
            normalizer_inputs=norm,
            normalizer_outputs=norm, grad_clip=args.grad_clip, protocol=args.protocol,
            val_fraction=args.val_fraction, device=args.device, bf16=args.bf16,
            compile=args.compile, start_frame=args.start_frame, steps_in=args.steps_in,
            steps_out=args.steps_out, unroll=args.unroll, unroll_grad=args.unroll_grad,
            input_noise=args.input_noise, log=args.log,
            log_images_every=args.log_images_every, grid_schedule=args.grid_schedule,
            coarse_levels=args.coarse_levels, phase_epochs=args.phase_epochs, carry=args.carry,
        )
    except TrainingDiverged as err:
        print(f"mgno: error: {err}", file=sys.stderr)
        return 3
    if result.rank != 0:  # under torchrun only rank 0 reports
        pass
    elif args.json:
        _print_json(result.to_dict())
    elif result.best_epoch:
        val = "" if result.best_val is None else f", val rel_l2 {result.best_val:.4g}"
        print(f"{result.status}: {result.epochs_done} epochs; best epoch {result.best_epoch}"
              f"{val}; run in {result.run_dir}")
    return 130 if result.status == "interrupted" else 0


def _add_strategy(p: argparse.ArgumentParser) -> None:
    p.add_argument("--resolution-strategy", "--strategy", dest="strategy",
                   choices=RESOLUTION_STRATEGIES, default="resample",
                   help="how to run on a grid other than the training grid: resample "
                        "(default; interpolate to the training grid and back), multilevel "
                        "(MgNO: multigrid operators on the training grid), native (as-is)")


def _say_transfer(run_dir: str, data: str, strategy: str) -> None:
    """Print, on stderr, how the run is applied when the data grid is not the training grid."""
    from mgno.train.loaded_run import describe_run_transfer

    line = describe_run_transfer(run_dir, data, strategy)
    if line is not None:
        print(f"mgno: {line}", file=sys.stderr, flush=True)


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="error metrics of a trained run on a data set")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--data", required=True, help="test set (.h5)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--which", choices=["best", "last"], default="best",
                   help="weights of the best validation epoch (default) or the last checkpoint")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    _add_strategy(p)


def _run_eval(args: argparse.Namespace) -> int:
    from mgno.train import evaluate

    _say_transfer(args.run_dir, args.data, args.strategy)
    res = evaluate(args.run_dir, args.data, batch_size=args.batch_size, device=args.device,
                   which=args.which, strategy=args.strategy)
    if args.json:
        _print_json(res)
        return 0
    for key, value in res.items():
        if key == "transfer":
            continue  # already said on stderr
        if isinstance(value, float):
            print(f"{key:16s} {value:.6g}")
        elif isinstance(value, dict):
            print(f"{key:16s} {json.dumps(value)}")
        elif isinstance(value, list):
            print(f"{key:16s} " + " ".join(f"{v:.4g}" for v in value))
        else:
            print(f"{key:16s} {value}")
    return 0


def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="write a trained run's predictions to HDF5")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--input", required=True, help="data set with the inputs (.h5)")
    p.add_argument("--out", required=True, help="predictions (.h5), same schema")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--start-frame", type=int, default=None, metavar="N",
                   help="trajectories: roll out from frame N (default: the run's start frame; "
                   "0 for a file of initial states)")
    p.add_argument("--force", action="store_true", help="replace an existing --out file")
    _add_strategy(p)
    g = p.add_argument_group("checks against the data's equation (steady data of mgno "
                             "generate; docs/hybrid.md)")
    g.add_argument("--estimate", action="store_true",
                   help="add per sample the relative residual in the data's discrete equation, "
                   "a calibrated error estimate and a flag")
    g.add_argument("--calibrate", default=None, metavar="VAL.h5",
                   help="with --estimate: data with true outputs to calibrate on, cached in "
                   "RUN_DIR/calibration.json (default: the cached calibration, else the run's "
                   "validation data)")
    g.add_argument("--refine", default=None, metavar="TOL",
                   help="iterate the equation's solver (multigrid-CG; Helmholtz: GMRES with a "
                   "shifted-Laplacian multigrid) from each prediction to relative residual TOL "
                   "(0 < TOL < 1) and write the refined fields (float64)")
    g.add_argument("--refine-maxiter", type=int, default=None, metavar="N",
                   help="most iterations of --refine (default 200; Helmholtz 500); a sample "
                   "that misses TOL "
                   "stops the command (exit 3), nothing written")
    g.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _run_predict(args: argparse.Namespace) -> int:
    from mgno.errors import NotConverged
    from mgno.train import predict, prediction_checks

    _say_transfer(args.run_dir, args.input, args.strategy)
    if args.refine_maxiter is not None and args.refine is None:
        raise InputError(f"--refine-maxiter {args.refine_maxiter}: limits --refine, which was "
                         "not given; expected --refine TOL with it")
    try:
        path = predict(args.run_dir, args.input, args.out, batch_size=args.batch_size,
                       device=args.device, strategy=args.strategy, start_frame=args.start_frame,
                       force=args.force, estimate=args.estimate, calibrate=args.calibrate,
                       refine=args.refine, refine_maxiter=args.refine_maxiter)
    except NotConverged as err:
        print(f"mgno: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_NOT_CONVERGED
    checks = prediction_checks(path) if args.estimate or args.refine is not None else {}
    if args.json:
        _print_json({"out": str(path), **checks})
        return 0
    print(path)
    for line in _checks_lines(checks):
        print(line)
    return 0


def _checks_lines(c: dict) -> list[str]:
    """The short summary of ``prediction_checks`` printed by ``mgno predict``."""
    lines = []
    if "error_estimate" in c:
        est, res = c["error_estimate"], c["residual"]
        lines.append(f"estimate: {c['n_samples']} samples; relative residual median "
                     f"{res['median']:.3g}; error estimate median {est['median']:.3g}, max "
                     f"{est['max']:.3g}; {c['flagged']} flagged (> {c['flag_threshold']:.3g})")
        if c["flagged"]:
            shown = c["flagged_samples"][:10]
            more = " ..." if c["flagged"] > len(shown) else ""
            lines.append("flagged samples: " + " ".join(map(str, shown)) + more)
        lines.append(f"calibration: {c['calibration']}")
    if "iterations" in c:
        its = c["iterations"]
        lines.append(f"refine: tol {c['tol']:g}; iterations median {its['median']:g}, max "
                     f"{its['max']:g}; relative residual max {c['refine_residual']['max']:.3g}; "
                     f"{c['refine_seconds']:.3g} s (inference {c['inference_seconds']:.3g} s)")
    return lines


def _add_plot(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help="PNGs of input, truth, prediction, error and loss curves")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--data", required=True, help="data set with the truth (.h5)")
    p.add_argument("--out", required=True, help="FIG.png (loss curves go to FIG_loss.png)")
    p.add_argument("--index", type=int, default=0, help="sample to draw")
    p.add_argument("--device", default="auto")
    p.add_argument("--force", action="store_true", help="replace existing figures")
    _add_strategy(p)


def _run_plot(args: argparse.Namespace) -> int:
    from mgno.viz import plot_run

    _say_transfer(args.run_dir, args.data, args.strategy)
    for path in plot_run(args.run_dir, args.data, args.out, index=args.index, device=args.device,
                         strategy=args.strategy, force=args.force):
        print(path)
    return 0


# --------------------------------------------------------------------------- export
def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="export a trained run to ONNX or torch.export (normalisers folded in)",
        description="Export a run's best weights with its normalisers folded in, so the "
        "exported graph maps raw inputs to raw outputs (docs/export.md).")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--format", dest="fmt", default="onnx", choices=("onnx", "pt2"),
                   help="onnx (needs pip install 'mgno[export]') or pt2 (torch.export)")
    p.add_argument("--out", required=True, help="the file to write")
    p.add_argument("--grid", default="resample", choices=("resample", "fixed"),
                   help="resample (default): any input grid, interpolated to the training grid "
                   "and back inside the graph; fixed: the training grid only")
    p.add_argument("--force", action="store_true", help="replace an existing --out file")
    p.add_argument("--no-check", dest="check", action="store_false",
                   help="skip the comparison of the written file with PyTorch")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _run_export(args: argparse.Namespace) -> int:
    from mgno.export import export_run

    report = export_run(args.run_dir, args.out, fmt=args.fmt, grid=args.grid, force=args.force,
                        check=args.check)
    for note in report.notes:
        print(f"mgno: {note}", file=sys.stderr)
    if args.json:
        _print_json(report.to_dict())
        return 0
    checked = ", ".join(f"{grid}: {diff:.1e}" for grid, diff in report.parity.items())
    print(f"{report.path} ({report.format}, epoch {report.epoch} weights, grid {report.grid}; "
          f"dynamic axes: {', '.join(report.dynamic_axes)}; parity {checked or 'not checked'})")
    return 0


# --------------------------------------------------------------------------- generate
def _add_generate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="generate a PDE data set into one HDF5 file",
        description="Generate a PDE data set (see docs/data.md). PDEs: darcy (= darcy-smooth), "
        "darcy-rough, darcy-multiscale, poisson, elliptic, helmholtz, pipe, navier-stokes, "
        "burgers.",
    )
    p.add_argument("pde", metavar="PDE", help="generator name, e.g. darcy, navier-stokes")
    p.add_argument("--n", type=int, required=True, help="number of samples (over all shards)")
    p.add_argument("--resolution", type=int, default=None,
                   help="stored grid points per axis (default: the paper's)")
    p.add_argument("--solve-resolution", type=int, default=None,
                   help="grid points per axis of the solve grid, subsampled to --resolution "
                   "(e.g. 421 for 211/141/106/85)")
    p.add_argument("--seed", type=int, default=0, help="seed; sample i depends on (seed, i) only")
    p.add_argument("--out", required=True, help="output .h5 file")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="PDE parameter, repeatable (e.g. --param nu=1e-4 --param T=30)")
    p.add_argument("--workers", type=int, default=1, help="worker processes")
    p.add_argument("--shard", default=None, metavar="I/N", help="write only shard I of N")
    p.add_argument("--batch-size", type=int, default=None, help="samples solved together")
    p.add_argument("--device", default=None, help="torch device of the solvers (e.g. cuda)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--force", action="store_true",
                   help="replace an existing --out and discard an unfinished FILE.partial of "
                   "another command (the same command resumes its own without --force)")


def _run_generate(args: argparse.Namespace) -> int:
    import shlex

    from mgno.data.generate import generate_dataset

    params = list(args.param)
    if args.solve_resolution is not None:
        params.append(f"solve_resolution={args.solve_resolution}")
    command = "mgno " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    out = generate_dataset(
        args.pde, args.n, args.resolution, args.seed, args.out, params=params,
        workers=args.workers, shard=args.shard, batch_size=args.batch_size,
        progress=not args.no_progress, command=command, device=args.device,
        force=args.force, threads=args.threads,
    )
    print(out)
    return 0


# --------------------------------------------------------------------------- convert
def _add_convert(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert",
        help="import FNO .mat, neuraloperator .pt {x, y}, .npz or PDEBench .h5 into one HDF5 file",
    )
    p.add_argument("src", metavar="SRC", help="file to import")
    p.add_argument("--out", required=True, help="output .h5 file")
    p.add_argument("--boundary", default=None,
                   help="boundary condition per axis, e.g. periodic or dirichlet,periodic "
                   "(default: guessed from the source, else dirichlet)")
    p.add_argument("--pde", default=None, help="PDE name to record (default: guessed)")
    p.add_argument("--keys", default=None, metavar="IN,OUT",
                   help="names of the input and output arrays (default: recognised names)")
    p.add_argument("--layout", default="auto", metavar="LAYOUT[,LAYOUT]",
                   help=f"where the arrays keep their channels, one of {', '.join(LAYOUTS)} "
                   "(channels-first (N, C, *grid), channels-last (N, *grid, C), no-channel "
                   "(N, *grid)), or IN,OUT for the input and output; default auto: told "
                   "from the shapes, refused when ambiguous")
    p.add_argument("--force", action="store_true", help="replace an existing --out")


def _run_convert(args: argparse.Namespace) -> int:
    import shlex

    from mgno.data.convert import convert

    keys = None if args.keys is None else tuple(k.strip() for k in args.keys.split(","))
    command = "mgno " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    out = convert(args.src, args.out, boundary=args.boundary, pde=args.pde, keys=keys,
                  layout=args.layout, command=command, force=args.force)
    print(out)
    return 0


# --------------------------------------------------------------------------- bench
#: The names of mgno.bench.profiles.list_profiles(), here so that building the parser
#: imports no torch (tests/test_bench_profiles.py checks that the two agree).
BENCH_PROFILES = ("cpu", "cpu-quick", "gpu", "paper", "paper-cpu", "paper-cpu-quick")


def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="train several models on the same data and budget; write a comparison table",
        description="Train MgNO and baselines (fno, tfno, uno, unet) side by side on a profile "
        f"({', '.join(BENCH_PROFILES)}) or on given files; writes OUT/results.md and "
        "OUT/results.json. See docs/benchmarks.md.",
    )
    p.add_argument("--profile", choices=BENCH_PROFILES, default=None,
                   help="built-in data sets and budgets (generated into OUT/data); the paper "
                   "profiles run the paper's seven experiments")
    p.add_argument("--data", default=None, help="free form: training set (.h5)")
    p.add_argument("--val", default=None, help="free form: validation set (.h5)")
    p.add_argument("--test", default=None, help="free form: test set (.h5)")
    p.add_argument("--out", required=True, help="bench directory (data, runs, results)")
    p.add_argument("--models", nargs="+", default=None, metavar="MODEL",
                   help="families to train (default: mgno fno tfno unet; paper profiles: "
                   "mgno fno unet)")
    p.add_argument("--tasks", nargs="+", default=None, metavar="TASK",
                   help="only these tasks of the profile (cpu: darcy ns ns10 mixed; paper: "
                   "darcy-smooth darcy-rough darcy-multiscale ns ns10 helmholtz pipe)")
    p.add_argument("--preset", default=None, help="free form: recipe of this preset for all")
    p.add_argument("--epochs", type=int, default=None, help="epochs of every run")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--resume", action="store_true", help="continue interrupted runs")
    p.add_argument("--force", action="store_true",
                   help="redo instead of refusing what cannot be reused as it stands: runs "
                        "of another spec (lr, data, code...) or without a bench record, "
                        "profile data generated with other settings")
    p.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                   help="stop (with a checkpoint) after this many seconds; rerun with --resume")
    p.add_argument("--threads", type=int, default=None, help="torch threads per process")
    p.add_argument("--jobs", type=int, default=1,
                   help="CPU: trainings run at once, each in its own process (default 1; "
                        "e.g. --jobs 2 --threads 1 on 2 cores)")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda")
    p.add_argument("--quiet", action="store_true", help="no progress output on stderr")
    p.add_argument("--json", action="store_true", help="print results.json on stdout")


#: `mgno bench` options recorded in the command line of results.md (in this order).
_BENCH_OPTIONS = ("profile", "data", "val", "test", "out", "models", "tasks", "preset", "epochs",
                  "batch_size", "lr", "resume", "force", "time_limit", "threads", "jobs",
                  "device", "quiet", "json")


def _bench_command(args: argparse.Namespace) -> str:
    import shlex

    words = ["mgno", "bench"]
    for name in _BENCH_OPTIONS:
        value = getattr(args, name)
        flag = "--" + name.replace("_", "-")
        if value is None or value is False or (name == "device" and value == "auto") or (
                name == "jobs" and value == 1):
            continue
        words += [flag] if value is True else [flag, *map(str, value if isinstance(
            value, list) else [value])]
    return " ".join(shlex.quote(w) for w in words)


def _run_bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mgno.bench import RESULTS_MD, BenchConfig, run_bench

    res = run_bench(BenchConfig(
        out=args.out, profile=args.profile, data=args.data, val=args.val, test=args.test,
        models=args.models, tasks=args.tasks, preset=args.preset, epochs=args.epochs,
        batch_size=args.batch_size, lr=args.lr, resume=args.resume, force=args.force,
        time_limit=args.time_limit, threads=args.threads, jobs=args.jobs, device=args.device,
        progress=not args.quiet, command=_bench_command(args),
    ))
    if args.json:
        _print_json(res)
    else:
        print(Path(args.out) / RESULTS_MD)
    if res["complete"]:
        return 0
    # stopped (Ctrl-C, SIGTERM, --time-limit): 130 as for any interrupted verb;
    # a run that failed: 1
    return 130 if res.get("interrupted", True) else 1


# --------------------------------------------------------------------------- main
# Each verb: (name, add-parser function, run function). Add a verb by writing
# its two functions above and one line here.
_VERBS: list[tuple[str, Callable, Callable]] = [
    ("info", _add_info, _run_info),
    ("presets", _add_presets, _run_presets),
    ("demo", _add_demo, _run_demo),
    ("train", _add_train, _run_train),
    ("eval", _add_eval, _run_eval),
    ("predict", _add_predict, _run_predict),
    ("plot", _add_plot, _run_plot),
    ("export", _add_export, _run_export),
    ("generate", _add_generate, _run_generate),
    ("convert", _add_convert, _run_convert),
    ("bench", _add_bench, _run_bench),
]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``mgno`` command."""
    from mgno import __version__

    parser = argparse.ArgumentParser(
        prog="mgno",
        description="Multigrid neural operators: generate PDE data, train, evaluate, compare.",
    )
    parser.add_argument("--version", action="version", version=f"mgno {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    for name, add, _run in _VERBS:
        add(sub)
        if name in _THREADED:
            _add_threads(sub.choices[name])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mgno`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    runners = {name: run for name, _add, run in _VERBS}
    if args.verb in ("info", "presets"):
        return _dispatch(runners[args.verb], args)
    # The verbs that compute flush subnormal floats (mgno.denormals); a caller
    # of main() in Python gets its own setting back afterwards.
    from mgno.denormals import denormals_flushed, flush_denormals

    was = denormals_flushed()
    flush_denormals()
    run = runners[args.verb]
    try:
        if args.verb in _THREADED:
            return _dispatch(lambda a: _use_threads(a) or run(a), args)
        return _dispatch(run, args)
    finally:
        if not was:
            flush_denormals(False)


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _dispatch(run: Callable, args: argparse.Namespace) -> int:
    """Run one verb and map what it raises to an exit status.

    ``InputError`` and file errors naming a user's path (missing, unwritable,
    read-only file system): one line, exit 2. Disk full, file too large,
    quota (``OutputFault`` and those errnos): one line, exit 1.
    Ctrl-C: 130. Anything else is a bug of mgno: its traceback, a line asking
    to report it, exit 1.
    """
    try:
        return int(run(args) or 0)
    except (InputError, *FILE_ERRORS) as err:
        print(f"mgno: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("mgno: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # stdout closed early (`mgno eval ... | head`): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as err:
        if err.errno in FILE_ERRNOS:
            print(f"mgno: error: {_one_line(err)}", file=sys.stderr)
            return EXIT_BAD_INPUT
        if err.errno not in FAULT_ERRNOS and not isinstance(err, OutputFault):
            return _internal_error()
        print(f"mgno: error: {_one_line(err)} (a fault of the machine, not of the input)",
              file=sys.stderr)
        return EXIT_FAULT
    except Exception:
        return _internal_error()


def _internal_error() -> int:
    traceback.print_exc()
    print("mgno: internal error: this is a bug in mgno, not in your input; please report it "
          "with the command and the traceback above", file=sys.stderr)
    return EXIT_FAULT


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
