"""Generate a data set into one HDF5 file: seeded, sharded, parallel, resumable.

Sample ``i`` of a data set is drawn from its own random stream
``SeedSequence(seed, spawn_key=(i,))`` and solved independently of the others,
so it is the same whatever the number of workers or the shard layout (and,
up to round-off of batched FFTs, whatever the batch size).
``shard = (k, K)`` writes a contiguous block of whole (global) batches, see
:func:`shard_range`; concatenating the shard files in order gives the
unsharded file.

Crash consistency. The file is built under ``OUT.partial`` while
``OUT.lock`` (:class:`mgno.lock.OutputLock`) keeps every other writer out.
``OUT.partial`` is created whole under ``OUT.partial.new`` -- every chunk
allocated and zero-filled, so a full disk shows before any sample is lost --
and renamed; from then on writing a batch changes only the bytes of its
chunks, never the file's structure, so a writer killed at any instant leaves
a readable file. A batch's data are written and flushed to the disk *before*
their per-sample checksums (``sample_checksums``, 0 = not written) are; a
rerun of the same command checks the file's fingerprint (PDE, parameters,
sizes, seed, shard, batch size, versions), re-reads every sample it would
keep, compares it with its checksum and generates the others again. The
``complete`` attribute is set (one byte, in place) only after every sample
has been read back and verified, and the rename to ``OUT`` comes last.

A partial file of another command is never deleted silently: the rerun is
refused with one line unless ``force``. An existing ``OUT`` is never replaced
without ``force`` either.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import multiprocessing as mp
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from mgno.atomic import check_replaceable, fsync_folder
from mgno.data.capacity import available_memory, human_bytes, writable_bytes
from mgno.data.h5safe import (
    H5_ERRORS,
    close_quietly,
    contained_dataset,
    fsync_path,
    h5_create,
    is_io_failure,
    one_line,
)
from mgno.data.schema import (
    SCHEMA_VERSION,
    STEADY,
    create_datasets,
    generator_version,
    root_attrs,
)
from mgno.devices import choose_device
from mgno.errors import InputError, OutputFault
from mgno.lock import OutputLock
from mgno.pde.registry import PDESpec, get_pde, parse_params, sample_cost

LAYOUT = 2
"""Version of the partial-file bookkeeping (part of the fingerprint): files of
layout 1 (a ``done`` mask without checksums) are not resumed."""

CHECKSUMS = "sample_checksums"
"""Per-sample checksum dataset: blake2b-64 of the sample's bytes, 0 = not written."""

_NUMERICAL = re.compile(r"blew up|did not (reach|converge)|solve failed|not converge")
"""Generator failures that come from the parameters (a blow-up, no convergence)."""

MAX_SEED = 2**63 - 1
_CHUNK_LIMIT = 2**32 - 1  # HDF5 chunks (one sample each) hold less than 4 GiB


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """The random generator of sample ``index`` of a data set drawn with ``seed``."""
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(int(index),)))


def parse_shard(shard: str | Sequence[int] | None) -> tuple[int, int]:
    """``"i/n"`` (or ``(i, n)``) -> ``(i, n)`` with ``0 <= i < n``; None -> ``(0, 1)``."""
    if shard is None:
        return 0, 1
    try:
        if isinstance(shard, str):
            a, b = shard.split("/")
            i, n = int(a), int(b)
        else:
            i, n = (int(v) for v in shard)
    except (ValueError, TypeError) as err:
        raise InputError(f"--shard {shard!r} is malformed, expected I/N such as 0/4") from err
    if n < 1 or not 0 <= i < n:
        raise InputError(f"--shard {shard!r} is out of range, expected 0 <= I < N")
    return i, n


def shard_range(n: int, shard: tuple[int, int], batch_size: int = 1) -> range:
    """Global sample indices of a shard: a contiguous block of whole batches.

    Batches are global (batch ``b`` holds samples ``[b B, (b + 1) B)``) and a
    shard takes whole batches, so every sample is solved in the same batch
    whatever the shard layout -- which makes the files bit-for-bit
    reproducible even where batched FFTs round differently for different
    batch compositions.
    """
    i, k = shard
    n_batches = -(-n // batch_size)
    lo, hi = i * n_batches // k, (i + 1) * n_batches // k
    return range(min(lo * batch_size, n), min(hi * batch_size, n))


def _check_out(out: Path) -> None:
    folder = out.parent if str(out.parent) else Path(".")
    if out.is_dir():
        raise InputError(f"--out {out} is a folder, expected a file name")
    if not folder.is_dir():
        raise InputError(f"--out {out}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"--out {out}: folder {folder} is not writable")


@dataclass(frozen=True)
class _Plan:
    """Everything one generation needs, validated."""

    spec: PDESpec
    params: dict
    n: int
    resolution: int
    seed: int
    shard: tuple[int, int]
    batch_size: int
    indices: range
    dtype: np.dtype
    out: Path
    fingerprint: str
    attrs: dict

    @property
    def partial(self) -> Path:
        return self.out.with_name(self.out.name + ".partial")

    @property
    def names(self) -> tuple[str, ...]:
        return ("inputs", "outputs") if self.spec.kind == STEADY else ("trajectories",)

    @property
    def offset(self) -> int:
        return self.indices[0]

    def batches(self) -> list[list[int]]:
        """Global batches ``[b B, (b + 1) B)`` of this shard, as lists of sample indices."""
        lo, hi = self.indices[0], self.indices[-1] + 1
        bs = self.batch_size
        return [list(range(s, min(s + bs, hi))) for s in range(lo, hi, bs)]


def _int_option(value: Any, option: str, low: int, high: int | None = None) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError) as err:
        raise InputError(f"{option} {value!r} is not an integer") from err
    if number < low or (high is not None and number > high):
        upper = "" if high is None else f" and <= {high}"
        raise InputError(f"{option} {value} is out of range, expected >= {low}{upper}")
    return number


def _plan(pde, n, resolution, seed, out, params, shard, batch_size, command, dtype) -> _Plan:
    spec: PDESpec = get_pde(pde)
    p = parse_params(spec, params)
    boundary = spec.boundary(p)
    if resolution is None:
        resolution = spec.default_resolution
    resolution = _int_option(resolution, "--resolution", 1)
    if resolution < spec.min_resolution:
        raise InputError(
            f"--resolution {resolution} is below the minimum for {spec.name}, "
            f"expected >= {spec.min_resolution}"
        )
    n = _int_option(n, "--n", 1)
    seed = _int_option(seed, "--seed", 0, MAX_SEED)
    shard_t = parse_shard(shard)
    bs = _int_option(spec.batch_size if batch_size is None else batch_size, "--batch-size", 1)
    indices = shard_range(n, shard_t, bs)
    if not indices:
        raise InputError(
            f"--shard {shard_t[0]}/{shard_t[1]} of {n} samples in batches of {bs} is empty, "
            "expected fewer shards than batches"
        )
    out = Path(out)
    dt = np.dtype(dtype)
    fp = _fingerprint(pde=spec.name, params=p, n=n, resolution=resolution, seed=seed,
                      shard=list(shard_t), schema=SCHEMA_VERSION, dtype=dt.name, batch_size=bs,
                      generator_version=generator_version(), layout=LAYOUT)
    extra = {"resolution": resolution, "n_total": n, "shard": f"{shard_t[0]}/{shard_t[1]}",
             "sample_offset": indices[0], "complete": False, "fingerprint": fp}
    attrs = root_attrs(kind=spec.kind, ndim=spec.ndim, pde=spec.name, params=p,
                       boundary=boundary,
                       seed=seed, command=command, extra_attrs=extra, where=str(out))
    return _Plan(spec, p, n, resolution, seed, shard_t, bs, indices, dt, out, fp, attrs)


def _check_memory(plan: _Plan, workers: int) -> None:
    """Refuse, before anything is allocated, a batch that cannot fit in memory."""
    stored, work = sample_cost(plan.spec, plan.resolution, plan.params)
    per_batch = min(plan.batch_size, len(plan.indices)) * (work + 2 * stored * plan.dtype.itemsize)
    at_once = min(workers, -(-len(plan.indices) // plan.batch_size))
    need = per_batch * at_once
    avail = available_memory()
    if avail is not None and need > avail:
        what = f"{at_once} batches of {plan.batch_size}" if at_once > 1 else (
            f"one batch of {min(plan.batch_size, len(plan.indices))}")
        raise InputError(
            f"--resolution {plan.resolution} / --batch-size {plan.batch_size} / --workers "
            f"{workers}: solving {what} {plan.spec.name} samples takes about "
            f"{human_bytes(need)} of memory, {human_bytes(avail)} available; expected a smaller "
            "size"
        )


def _check_disk(plan: _Plan, need: float) -> None:
    """Refuse, before the file is created, a data set the disk cannot hold."""
    folder = plan.out.parent if str(plan.out.parent) else Path(".")
    room, what = writable_bytes(folder)
    if room is not None and need > room:
        raise OutputFault(
            f"{plan.out}: {len(plan.indices)} samples of {plan.spec.name} at resolution "
            f"{plan.resolution} need about {human_bytes(need)}, {human_bytes(room)} {what} in "
            f"{folder}; free some space, or ask for fewer samples (--n) or a smaller --resolution"
        )


def _fingerprint(**kw: Any) -> str:
    return json.dumps(kw, sort_keys=True, default=str)


def _differences(stored: str, mine: str) -> str:
    """``"seed 3 there, 4 here"``: how a partial file's fingerprint differs from ours."""
    try:
        theirs = json.loads(stored)
        ours = json.loads(mine)
    except (TypeError, ValueError, RecursionError):
        return "an unrecognised fingerprint"
    if not isinstance(theirs, dict):
        return "an unrecognised fingerprint"
    keys = [k for k in sorted(set(theirs) | set(ours)) if theirs.get(k) != ours.get(k)]
    parts = [f"{k} {json.dumps(theirs.get(k))[:60]} there, {json.dumps(ours.get(k))[:60]} here"
             for k in keys[:3]]
    return "; ".join(parts) + ("; ..." if len(keys) > 3 else "")


def _digest(samples: Sequence[np.ndarray]) -> int:
    """Checksum of one sample (its arrays, as stored): a non-zero 64-bit integer."""
    h = hashlib.blake2b(digest_size=8)
    for a in samples:
        h.update(np.ascontiguousarray(a).tobytes())
    return int.from_bytes(h.digest(), "little") or 1


def _verified(f: h5py.File, plan: _Plan, which: np.ndarray) -> np.ndarray:
    """Which samples among ``which`` (local indices) read back equal to their checksums."""
    sums = np.asarray(f[CHECKSUMS][...], dtype=np.uint64)
    ok = np.zeros(len(sums), dtype=bool)
    datasets = [contained_dataset(f, k, str(plan.partial)) for k in plan.names]
    for i in which:
        if sums[i] == 0:
            continue
        try:
            got = _digest([np.asarray(ds[int(i)], dtype=plan.dtype) for ds in datasets])
        except H5_ERRORS:
            continue  # an unreadable chunk (bad Fletcher-32): generate it again
        ok[i] = got == int(sums[i])
    return ok


def _open_partial(plan: _Plan, force: bool) -> np.ndarray | None:
    """The verified samples of a resumable ``OUT.partial``, or None to start afresh.

    Refuses (InputError) a partial file of another command or an unreadable
    one unless ``force``, in which case it is discarded.
    """
    partial = plan.partial
    partial.with_name(partial.name + ".new").unlink(missing_ok=True)  # a dead creator's
    if not partial.exists():
        return None
    reason = None
    try:
        with h5py.File(partial, "r") as f:
            stored = f.attrs.get("fingerprint")
            stored = stored.decode() if isinstance(stored, bytes) else stored
            if stored != plan.fingerprint or CHECKSUMS not in f:
                diff = _differences(stored, plan.fingerprint)
                reason = f"holds an unfinished generation of another command ({diff})"
            else:
                n_local = len(plan.indices)
                trusted = _verified(f, plan, np.arange(n_local))
                marked = int(np.count_nonzero(f[CHECKSUMS][...]))
    except InputError:
        raise
    except H5_ERRORS as err:
        reason = f"is unreadable ({one_line(err, 120)})"
    if reason is not None:
        if not force:
            raise InputError(f"{partial} {reason}; pass --force to discard it and start "
                             "over, or remove it")
        print(f"mgno: {partial} {reason}: discarded (--force)", file=sys.stderr)
        partial.unlink()
        return None
    bad = marked - int(trusted.sum())
    print(f"mgno: resuming {partial}: {int(trusted.sum())} of {len(trusted)} samples verified"
          + (f", {bad} failed their checksum and are generated again" if bad else ""),
          file=sys.stderr)
    return trusted


def _create_partial(plan: _Plan, arrays: Mapping[str, np.ndarray]) -> None:
    """Create ``OUT.partial`` whole (every chunk allocated, zero-filled), then rename it."""
    n_local = len(plan.indices)
    shapes = {k: (n_local, *np.shape(arrays[k])[1:]) for k in plan.names}
    per_sample = 0
    for k, shape in shapes.items():
        nbytes = int(np.prod(shape[1:], dtype=np.float64)) * plan.dtype.itemsize
        if nbytes > _CHUNK_LIMIT:
            raise InputError(
                f"--resolution {plan.resolution}: one {plan.spec.name} sample of {k!r} "
                f"{shape[1:]} takes {human_bytes(nbytes)}, expected under 4 GiB (one HDF5 chunk)"
            )
        per_sample += nbytes + 4
    _check_disk(plan, n_local * (per_sample + 8 + 64) + 256 * 1024)
    new = plan.partial.with_name(plan.partial.name + ".new")
    with h5_create(new, plan.out) as f:
        f.attrs.update(plan.attrs)
        create_datasets(f, shapes, plan.dtype, preallocate=True)
        if plan.spec.kind != STEADY:
            f.create_dataset("times", data=np.asarray(arrays["times"], dtype=np.float64))
        f.create_dataset(CHECKSUMS, data=np.zeros(n_local, dtype=np.uint64))
    os.replace(new, plan.partial)
    fsync_folder(plan.partial.parent)


def _runs(local: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
    """Contiguous runs ``(lo, hi, positions)`` of sorted local indices."""
    order = np.argsort(local)
    runs: list[tuple[int, int, list[int]]] = []
    for pos in order:
        li = int(local[pos])
        if runs and runs[-1][1] == li:
            runs[-1] = (runs[-1][0], li + 1, [*runs[-1][2], int(pos)])
        else:
            runs.append((li, li + 1, [int(pos)]))
    return [(lo, hi, np.asarray(p)) for lo, hi, p in runs]


def _write_batch(plan: _Plan, idx: Sequence[int], arrays: Mapping[str, np.ndarray]) -> None:
    """Write one batch: its samples, a flush to the disk, then their checksums."""
    local = np.asarray(idx) - plan.offset
    data = {k: np.ascontiguousarray(arrays[k], dtype=plan.dtype) for k in plan.names}
    sums = np.asarray([_digest([data[k][j] for k in plan.names]) for j in range(len(idx))],
                      dtype=np.uint64)
    try:
        f = h5py.File(plan.partial, "r+")
    except H5_ERRORS as err:
        raise _batch_fault(plan, idx, err) from None
    try:
        for k in plan.names:
            ds = f[k]
            if ds.shape[1:] != data[k].shape[1:]:
                raise RuntimeError(f"{plan.partial}: batch {k} shape {data[k].shape} != {ds.shape}")
            for lo, hi, pos in _runs(local):
                ds[lo:hi] = data[k][pos]
        f.flush()
        fsync_path(plan.partial)  # the samples reach the disk before their checksums
        for lo, hi, pos in _runs(local):
            f[CHECKSUMS][lo:hi] = sums[pos]
        f.flush()
    except H5_ERRORS as err:
        close_quietly(f)
        if not is_io_failure(err):
            raise
        raise _batch_fault(plan, idx, err) from None
    except BaseException:
        close_quietly(f)
        raise
    f.close()


def _batch_fault(plan: _Plan, idx: Sequence[int], err: BaseException) -> OutputFault:
    return OutputFault(
        f"{plan.out}: writing samples {min(idx)}-{max(idx)} to {plan.partial} failed "
        f"({one_line(err, 120)}); the samples written before are kept: fix the disk and run "
        "the same command again to resume"
    )


def _finish(plan: _Plan) -> None:
    """Verify every sample, set ``complete`` (one byte, in place), rename to ``OUT``."""
    try:
        f = h5py.File(plan.partial, "r+")
    except H5_ERRORS as err:
        raise _batch_fault(plan, plan.indices, err) from None
    try:
        ok = _verified(f, plan, np.arange(len(plan.indices)))
        if not ok.all():
            bad = np.flatnonzero(~ok)
            f[CHECKSUMS][bad] = 0
            f.flush()
            raise OutputFault(
                f"{plan.out}: {len(bad)} samples (first: {plan.offset + int(bad[0])}) read "
                f"back from {plan.partial} differ from what was written (a disk or memory "
                "fault); run the same command again to generate them again"
            )
        f.attrs.modify("complete", True)
        f.flush()
    except H5_ERRORS as err:
        close_quietly(f)
        if not is_io_failure(err):
            raise
        raise _batch_fault(plan, plan.indices, err) from None
    except BaseException:
        close_quietly(f)
        raise
    f.close()
    fsync_path(plan.partial)
    os.replace(plan.partial, plan.out)
    fsync_folder(plan.out.parent if str(plan.out.parent) else Path("."))


def _run_batch(
    name: str, indices: list[int], seed: int, resolution: int, params: dict, device, threads: int
) -> tuple[list[int], dict[str, np.ndarray]]:
    if threads:
        import torch

        torch.set_num_threads(threads)
    spec = get_pde(name)
    rngs = [sample_rng(seed, i) for i in indices]
    changed = {k: v for k, v in params.items() if v != spec.defaults.get(k)}
    try:
        arrays = spec.generate(rngs, resolution, params, device)
    except RuntimeError as err:
        if not _NUMERICAL.search(str(err)):
            raise
        raise InputError(f"{spec.name} at --resolution {resolution} with parameters {changed}: "
                         f"{str(err)[:160]}; expected parameters for which the solver "
                         "converges") from None
    for key in ("inputs", "outputs", "trajectories"):
        if key in arrays and not np.all(np.isfinite(arrays[key])):
            raise InputError(
                f"{spec.name} at --resolution {resolution} with parameters {changed} gives "
                f"non-finite {key} (samples {indices[0]}-{indices[-1]}), expected parameters "
                "for which the solver converges"
            )
    return indices, arrays


def _results(name, batches, seed, resolution, params, device, workers, threads):
    if workers == 1 or len(batches) <= 1:
        for b in batches:
            yield _run_batch(name, b, seed, resolution, params, device, threads)
        return
    ctx = mp.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=min(workers, len(batches)), mp_context=ctx) as pool:
        futures = [
            pool.submit(_run_batch, name, b, seed, resolution, params, device, threads)
            for b in batches
        ]
        try:
            for fut in cf.as_completed(futures):
                yield fut.result()
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise


def generate_dataset(
    pde: str,
    n: int,
    resolution: int | None,
    seed: int,
    out: str | os.PathLike,
    *,
    params: Mapping[str, Any] | Iterable[str] | None = None,
    workers: int = 1,
    shard: str | Sequence[int] | None = None,
    batch_size: int | None = None,
    progress: bool = True,
    command: str | None = None,
    device: str | None = None,
    dtype: Any = np.float32,
    force: bool = False,
    threads: int | None = None,
) -> Path:
    """Generate ``n`` samples of a PDE data set into ``out`` (HDF5, see ``docs/data.md``).

    Parameters
    ----------
    pde : str
        Generator name (see :func:`mgno.pde.registry.list_pdes`).
    n : int
        Total number of samples (over all shards).
    resolution : int or None
        Stored grid points per axis (None: the generator's default).
    seed : int
        Seed of the data set; sample ``i`` depends on ``(seed, i)`` only.
    out : path-like
        Destination file.
    params : mapping or iterable of "KEY=VALUE"
        PDE parameters (see :func:`mgno.pde.registry.parse_params`).
    workers : int
        Worker processes (each with ``threads // workers`` torch threads).
    shard : "i/n" or (i, n), optional
        Write only shard ``i`` of ``n``.
    batch_size : int, optional
        Samples solved together (default per generator).
    progress : bool
        Show a progress bar on stderr.
    command : str, optional
        Command line recorded in the file.
    device : str, optional
        Torch device of the solvers (e.g. ``"cuda"``).
    dtype : numpy dtype
        Storage type.
    force : bool
        Replace an existing ``out`` and discard a partial file of another
        command (without it both are refused).
    threads : int, optional
        Torch threads of the whole generation (default: the current setting),
        split between ``workers``; recorded as the file's ``threads`` attribute.

    Returns
    -------
    Path
        The finished file.

    Raises
    ------
    InputError
        Bad options, sizes beyond memory, an existing ``out`` or a foreign
        partial file (without ``force``), another live writer of ``out``.
    OutputFault
        The disk is full or the file size limit is reached (the partial file
        keeps every sample written; the same command resumes).
    """
    plan = _plan(pde, n, resolution, seed, out, params, shard, batch_size, command, dtype)
    device, workers, threads = _settle_resources(plan, device, workers, threads)
    _write_locked(plan, workers, threads, device, progress, force)
    return plan.out


def _settle_resources(plan: _Plan, device: str | None, workers: int, threads: int | None
                      ) -> tuple[str | None, int, int]:
    """Check device, workers, threads, the output path and memory before anything is written."""
    if device is not None:
        device = str(choose_device(device))  # a device that does not exist: one line
    workers = _int_option(workers, "--workers", 1, 4 * (os.cpu_count() or 1))
    import torch

    threads = _int_option(threads or torch.get_num_threads(), "--threads", 1)
    plan.attrs["threads"] = threads
    _check_out(plan.out)
    _check_memory(plan, workers)
    return device, workers, threads


def _write_locked(plan: _Plan, workers: int, threads: int, device, progress, force) -> None:
    """Under the output's lock: reuse what a partial file holds, generate the rest, finish."""
    with OutputLock(plan.out) as lock:
        if lock.stale_holder:
            print(f"mgno: {plan.out}: the previous writer ({lock.stale_holder}) died; "
                  "taking over", file=sys.stderr)
        check_replaceable(plan.out, force)
        trusted = _open_partial(plan, force)
        if trusted is None:
            stored, _work = sample_cost(plan.spec, plan.resolution, plan.params)
            _check_disk(plan, len(plan.indices) * stored * plan.dtype.itemsize)
        _generate(plan, trusted, workers, threads, device, progress)
        _finish(plan)


def _generate(
    plan: _Plan, trusted: np.ndarray | None, workers: int, threads: int, device, progress
) -> None:
    batches = [b for b in plan.batches()
               if trusted is None or not trusted[np.asarray(b) - plan.offset].all()]
    todo = sum(len(b) for b in batches)
    # worker processes split the threads; in-process runs keep the caller's setting
    threads = max(1, threads // workers) if workers > 1 else 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(plan.indices), initial=len(plan.indices) - todo, file=sys.stderr,
                   desc=f"{plan.spec.name} {plan.out.name}", unit="sample", dynamic_ncols=True)
    try:
        for idx, arrays in _results(plan.spec.name, batches, plan.seed, plan.resolution,
                                    plan.params, device, workers, threads):
            if not plan.partial.exists():
                _create_partial(plan, arrays)
            _write_batch(plan, idx, arrays)
            if bar is not None:
                bar.update(len(idx))
    finally:
        if bar is not None:
            bar.close()


__all__ = ["generate_dataset", "parse_shard", "sample_rng", "shard_range"]
