"""The bench's conclusions and tables: MgNO/FNO target ratios and the markdown report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: Issue 5's targets: MgNO's error over FNO's, and its time to FNO's best over FNO's time.
ERROR_TARGET, TIME_TARGET = 0.5, 1 / 3


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
    see :func:`mgno.bench.measure.interleaved_step_costs`), which a change of
    load between the two runs does not move.
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
    out["error_target_met"] = out["error_ratio"] is not None and out["error_ratio"] <= ERROR_TARGET
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
    out["time_target_met"] = out["time_ratio"] is not None and out["time_ratio"] <= TIME_TARGET
    # the same ratio with every epoch costed by the equal-load step time (not
    # defined for a grid schedule: its coarse epochs, without val_rel_l2, cost less)
    c_m, c_f = m.get("step_ms_per_sample"), f.get("step_ms_per_sample")
    equal = None
    coarse = any(v is None for _e, v, _s in m["val_curve"])
    if c_m and c_f and reached and f["epochs_done"] and not coarse:
        equal = reached[0] * c_m / (f["epochs_done"] * c_f)
    out["time_ratio_equal_load"] = equal
    out["time_target_met_equal_load"] = equal is not None and equal <= TIME_TARGET
    return out


def _fmt(v: Any, spec: str = ".4g") -> str:
    if v is None:
        return "-"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    return format(v, spec)


def _header(results: dict[str, Any]) -> list[str]:
    m = results["machine"]
    return [
        f"# mgno bench: {results.get('profile') or 'custom'}",
        "",
        f"- date: {m['date_utc']} (finished {results.get('finished_utc', '-')})",
        f"- command: `{results['command']}`",
        f"- machine: {m['cpu']}, {m['cores']} cores, GPU: {m['gpu'] or 'none'}; "
        f"torch {m['torch']}, neuraloperator {m['neuraloperator']}, mgno {m['mgno']}, "
        f"python {m['python']}; torch threads {m['torch_threads']}",
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


def _table(models: dict[str, dict], paper: dict[str, dict] | None = None) -> list[str]:
    """One row per model; with ``paper`` figures, the paper's rel. L2 and H1 beside ours."""
    paper = paper or {}
    extra = ("| paper rel. L2 ", "| paper rel. H1 ") if paper else ("", "")
    lines = [f"| model | params | epochs | test rel. L2 {extra[0]}| test rel. H1 {extra[1]}"
             "| best val rel. L2 | s/epoch | train s | step ms/sample (equal load) "
             "| inference ms/sample | peak MiB | status |",
             "|---" * (12 + 2 * bool(paper)) + "|"]
    for name, r in models.items():
        peak = r.get("peak_gpu_mib") if r.get("peak_gpu_mib") is not None else r.get(
            "peak_rss_mib")
        reported = paper.get(name, {})
        l2 = f" | {_fmt(reported.get('rel_l2'))}" if paper else ""
        h1 = f" | {_fmt(reported.get('rel_h1'))}" if paper else ""
        lines.append(
            f"| {name} | {_fmt(r.get('parameters'), ',')} | {r.get('epochs_done')} "
            f"| {_fmt(r.get('rel_l2'))}{l2} | {_fmt(r.get('rel_h1'))}{h1} "
            f"| {_fmt(r.get('best_val_rel_l2'))} "
            f"| {_fmt(r.get('seconds_per_epoch_median'), '.3g')} "
            f"| {_fmt(r.get('train_seconds'), '.0f')} "
            f"| {_fmt(r.get('step_ms_per_sample'), '.3g')} "
            f"| {_fmt(r.get('inference_ms_per_sample'), '.3g')} | {_fmt(peak, '.0f')} "
            f"| {r.get('status')} |"
        )
    return lines


def _targets(t: dict[str, Any]) -> str:
    return (
        f"MgNO / FNO test rel. L2 after the same epochs: {_fmt(t['error_ratio'], '.3f')} "
        f"(target <= 0.5: {'met' if t['error_target_met'] else 'missed'}). "
        f"MgNO reaches FNO's best validation rel. L2 ({_fmt(t['fno_best_val_rel_l2'])}) "
        f"at epoch {_fmt(t.get('mgno_epochs_to_fno_best'))} of {t.get('fno_epochs')}, "
        f"after {_fmt(t['mgno_seconds_to_fno_best'], '.0f')} s of training vs FNO's "
        f"{_fmt(t['fno_train_seconds'], '.0f')} s: ratio {_fmt(t['time_ratio'], '.3f')} "
        f"(target <= 1/3: {'met' if t['time_target_met'] else 'missed'}); "
        f"costed by the equal-load step times: "
        f"{_fmt(t.get('time_ratio_equal_load'), '.3f')} "
        f"({'met' if t.get('time_target_met_equal_load') else 'missed'})."
    )


def format_results(results: dict[str, Any]) -> str:
    """The markdown report of a :func:`mgno.bench.run_bench` result."""
    lines = _header(results)
    for task in results["tasks"]:
        lines += [f"## {task['title']}", ""]
        lines += [f"data: {task['data']}; recipe: {task['recipe']}", ""]
        lines += _table(task["models"], task.get("paper"))
        if task.get("paper"):
            lines += ["", "paper: the test errors the MgNO paper (ICLR 2024) reports for this "
                      "experiment at its full size (FNO on NS 10 -> 10: the FNO paper's), "
                      "not at this task's size and budget"]
        if task.get("targets"):
            lines += ["", _targets(task["targets"])]
        lines += ["", "Equivalent training commands:", ""]
        lines += [f"    {c}" for c in task["commands"].values()]
        lines.append("")
    return "\n".join(lines)
