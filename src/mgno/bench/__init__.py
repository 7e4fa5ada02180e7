"""Side-by-side comparison of MgNO with FNO, TFNO, UNO and a U-Net: ``mgno bench``.

:func:`run_bench` trains several model families on the same data, with the
same recipe (normalisers, loss, optimiser, schedule, epochs, seed), and writes
one markdown table per task: test rel. L2 and rel. H1, parameters, seconds
per epoch, inference milliseconds per sample and peak memory, with the
machine and the exact command.

Layout of a bench directory::

    BENCH_DIR/data/<task>_{train,val,test}.h5    generated if missing (seeded)
    BENCH_DIR/runs/<task>/<model>/               one `mgno train` run directory each
    BENCH_DIR/runs/<task>/<model>.bench.json     its run spec, attempts, cached evaluation
    BENCH_DIR/runs/<task>/bench_steps.json       equal-load step costs (with their key)
    BENCH_DIR/results.md, results.json           the tables

The package, one idea per module: :mod:`~mgno.bench.profiles` (the built-in
tasks), :mod:`~mgno.bench.data` (data files and their fingerprints),
:mod:`~mgno.bench.spec` (run specs, their keys, child job files),
:mod:`~mgno.bench.supervise` (child processes and signals),
:mod:`~mgno.bench.schedule` (running the jobs), :mod:`~mgno.bench.job` (the
child side), :mod:`~mgno.bench.records` (what may be reused),
:mod:`~mgno.bench.measure` (metrics and timings), :mod:`~mgno.bench.report`
(target ratios, markdown) and :mod:`~mgno.bench.runner` (the order of the work).
"""

from __future__ import annotations

from mgno.bench.data import ensure_data, fingerprint
from mgno.bench.measure import inference_ms_per_sample, interleaved_step_costs, machine_info
from mgno.bench.profiles import DEFAULT_MODELS, DataSpec, Task, get_profile, list_profiles
from mgno.bench.records import STEPS_FILE, record_path
from mgno.bench.report import compare_targets, format_results, time_to_accuracy
from mgno.bench.runner import RESULTS_JSON, RESULTS_MD, BenchConfig, run_bench
from mgno.bench.spec import RunSpec, code_version, read_job, write_job

__all__ = [
    "DEFAULT_MODELS",
    "RESULTS_JSON",
    "RESULTS_MD",
    "STEPS_FILE",
    "BenchConfig",
    "DataSpec",
    "RunSpec",
    "Task",
    "code_version",
    "compare_targets",
    "ensure_data",
    "fingerprint",
    "format_results",
    "get_profile",
    "inference_ms_per_sample",
    "interleaved_step_costs",
    "list_profiles",
    "machine_info",
    "read_job",
    "record_path",
    "run_bench",
    "time_to_accuracy",
    "write_job",
]
