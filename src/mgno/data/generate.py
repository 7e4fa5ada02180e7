"""Generate a data set into one HDF5 file: seeded, sharded, parallel, resumable.

Sample ``i`` of a data set is drawn from its own random stream
``SeedSequence(seed, spawn_key=(i,))`` and solved independently of the others,
so it is the same whatever the number of workers or the shard layout (and,
up to round-off of batched FFTs, whatever the batch size).
``shard = (k, K)`` writes a contiguous block of whole (global) batches, see
:func:`shard_range`; concatenating the shard files in order gives the
unsharded file.

The file is built under ``OUT.partial`` (attribute ``complete = False``, a
``done`` mask of the finished samples) and renamed to ``OUT`` only once every
sample is written. Running the same command again after an interruption
resumes from the finished samples.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing as mp
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from mgno.data.schema import (
    SCHEMA_VERSION,
    STEADY,
    create_datasets,
    root_attrs,
)
from mgno.errors import InputError
from mgno.pde.registry import PDESpec, get_pde, parse_params


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


def _run_batch(
    name: str, indices: list[int], seed: int, resolution: int, params: dict, device, threads: int
) -> tuple[list[int], dict[str, np.ndarray]]:
    if threads:
        import torch

        torch.set_num_threads(threads)
    spec = get_pde(name)
    rngs = [sample_rng(seed, i) for i in indices]
    return indices, spec.generate(rngs, resolution, params, device)


def _fingerprint(**kw: Any) -> str:
    return json.dumps(kw, sort_keys=True, default=str)


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
        Worker processes (each with ``cpu_count // workers`` torch threads).
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

    Returns
    -------
    Path
        The finished file.
    """
    spec: PDESpec = get_pde(pde)
    p = parse_params(spec, params)
    boundary = spec.boundary(p)
    resolution = spec.default_resolution if resolution is None else int(resolution)
    if resolution < spec.min_resolution:
        raise InputError(
            f"--resolution {resolution} is below the minimum for {spec.name}, "
            f"expected >= {spec.min_resolution}"
        )
    if int(n) < 1:
        raise InputError(f"--n {n} is invalid, expected at least 1 sample")
    if int(seed) < 0:
        raise InputError(f"--seed {seed} is invalid, expected a non-negative integer")
    workers = int(workers)
    if workers < 1:
        raise InputError(f"--workers {workers} is invalid, expected >= 1")
    shard_t = parse_shard(shard)
    out = Path(out)
    _check_out(out)
    bs = int(batch_size or spec.batch_size)
    if bs < 1:
        raise InputError(f"--batch-size {bs} is invalid, expected >= 1")
    indices = list(shard_range(int(n), shard_t, bs))
    if not indices:
        raise InputError(
            f"--shard {shard_t[0]}/{shard_t[1]} of {n} samples in batches of {bs} is empty, "
            "expected fewer shards than batches"
        )
    partial = out.with_name(out.name + ".partial")
    fp = _fingerprint(pde=spec.name, params=p, n=int(n), resolution=resolution, seed=int(seed),
                      shard=list(shard_t), schema=SCHEMA_VERSION, dtype=np.dtype(dtype).name,
                      batch_size=bs)
    extra = {
        "resolution": resolution,
        "n_total": int(n),
        "shard": f"{shard_t[0]}/{shard_t[1]}",
        "sample_offset": indices[0],
        "complete": False,
        "fingerprint": fp,
    }
    attrs = root_attrs(
        kind=spec.kind, ndim=spec.ndim, pde=spec.name, params=p, boundary=boundary,
        seed=int(seed), command=command, extra_attrs=extra, where=str(out),
    )
    done = _open_partial(partial, fp)
    offset = indices[0]
    batches = []
    for start in range(indices[0], indices[-1] + 1, bs):
        batch = [i for i in range(start, min(start + bs, indices[-1] + 1))]
        if done is None or not bool(np.all(done[np.asarray(batch) - offset])):
            batches.append(batch)
    todo = [i for b in batches for i in b]
    # worker processes split the cores; in-process runs keep the caller's setting
    threads = max(1, (os.cpu_count() or 1) // workers) if workers > 1 else 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(indices), initial=len(indices) - len(todo), file=sys.stderr,
                   desc=f"{spec.name} {out.name}", unit="sample", dynamic_ncols=True)
    try:
        results = _results(spec.name, batches, int(seed), resolution, p, device, workers, threads)
        for idx, arrays in results:
            _write_batch(partial, attrs, spec.kind, len(indices), offset, idx, arrays, dtype)
            if bar is not None:
                bar.update(len(idx))
        if not todo and not partial.exists():  # pragma: no cover - defensive
            raise InputError(f"{partial}: nothing to finalise")
        with h5py.File(partial, "a") as f:
            if not bool(np.all(f["done"][...])):
                raise RuntimeError(f"{partial}: some samples are missing")
            del f["done"]
            f.attrs["complete"] = True
            f.attrs["command"] = "" if command is None else command
        os.replace(partial, out)
    finally:
        if bar is not None:
            bar.close()
    return out


def _results(name, batches, seed, resolution, params, device, workers, threads):
    if workers == 1 or len(batches) <= 1:
        for b in batches:
            yield _run_batch(name, b, seed, resolution, params, device, threads)
        return
    ctx = mp.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
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


def _open_partial(partial: Path, fingerprint: str) -> np.ndarray | None:
    """The ``done`` mask of a compatible partial file, or None (removing a stale one)."""
    if not partial.exists():
        return None
    try:
        with h5py.File(partial, "r") as f:
            if f.attrs.get("fingerprint") == fingerprint and "done" in f:
                return np.asarray(f["done"][...], dtype=bool)
    except OSError:
        pass
    print(f"mgno: {partial} is from another command or unreadable; starting over",
          file=sys.stderr)
    partial.unlink()
    return None


def _write_batch(partial, attrs, kind, n_local, offset, idx, arrays, dtype) -> None:
    local = np.asarray(idx) - offset
    names = ("inputs", "outputs") if kind == STEADY else ("trajectories",)
    with h5py.File(partial, "a") as f:
        if "done" not in f:
            f.attrs.update(attrs)
            create_datasets(f, {k: (n_local, *arrays[k].shape[1:]) for k in names}, dtype)
            if kind != STEADY:
                f.create_dataset("times", data=np.asarray(arrays["times"], dtype=np.float64))
            f.create_dataset("done", data=np.zeros(n_local, dtype=bool))
        for k in names:
            ds = f[k]
            if ds.shape[1:] != arrays[k].shape[1:]:
                raise RuntimeError(f"{partial}: batch {k} shape {arrays[k].shape} != {ds.shape}")
            order = np.argsort(local)
            lo, hi = int(local[order[0]]), int(local[order[-1]]) + 1
            if hi - lo == len(local):
                ds[lo:hi] = arrays[k][order].astype(dtype)
            else:
                for j, li in enumerate(local):
                    ds[int(li)] = arrays[k][j].astype(dtype)
        done = np.asarray(f["done"][...], dtype=bool)
        done[local] = True
        f["done"][...] = done
        f.flush()


__all__ = ["generate_dataset", "parse_shard", "sample_rng", "shard_range"]
