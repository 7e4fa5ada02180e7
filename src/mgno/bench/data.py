"""The data files of a bench task: where they are, generating them, fingerprinting them.

Profile data live in ``BENCH_DIR/data/<task>_{train,val,test}.h5`` and are
made by ``mgno generate`` in a child process when missing; free-form tasks
name their own files. :func:`fingerprint` is what the caches compare: a
hash of a file's content, so a file replaced by other data (a new seed, other
samples) is never mistaken for the one a run was trained on.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from mgno.bench.profiles import Task
from mgno.bench.supervise import child_env, run_process
from mgno.errors import InputError

_CHUNK = 1 << 22


def data_paths(out: Path, task: Task) -> tuple[Path, Path | None, Path]:
    """``(train, val, test)`` files of a task (val None when a free-form task has none)."""
    if task.paths is not None:
        tr, va, te = task.paths
        return Path(tr), (Path(va) if va else None), Path(te)
    d = out / "data"
    return d / f"{task.name}_train.h5", d / f"{task.name}_val.h5", d / f"{task.name}_test.h5"


#: Root attributes that say when and by which command line a file was written, not what
#: it holds: a file regenerated with the same seed has the same fingerprint.
VOLATILE_ATTRS = ("command", "created", "threads")


def fingerprint(path: Path, memo: dict[tuple, dict[str, Any]] | None = None) -> dict[str, Any]:
    """``{"path", "size", "content_sha256"}`` of an HDF5 data file.

    The hash covers every dataset (name, dtype, shape, values) and every
    attribute except :data:`VOLATILE_ATTRS`, so two files with the same
    samples and metadata match even when their bytes differ (an HDF5 file
    written twice is never byte-identical); any other change of data gives
    another hash. ``memo`` is keyed by the file's path, size, modification
    time and inode, so one call of the bench reads each file once.

    Raises
    ------
    InputError
        The file is missing, not HDF5, or a dataset keeps its values outside
        the file (external storage, virtual dataset).
    """
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise InputError(f"{path}: no such data file; expected an mgno HDF5 data set") from None
    stamp = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
    if memo is not None and stamp in memo:
        return memo[stamp]
    out = {"path": str(path.resolve()), "size": st.st_size,
           "content_sha256": _content_hash(path)}
    if memo is not None:
        memo[stamp] = out
    return out


def _content_hash(path: Path) -> str:
    import h5py

    h = hashlib.sha256()
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise InputError(f"{path}: not an HDF5 file ({err}); expected an mgno data set") from None
    with f:
        h.update(_attrs_text(f.attrs, VOLATILE_ATTRS).encode())
        names: list[str] = []
        f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset)
                     else None)
        for name in sorted(names):
            ds = f[name]
            if ds.is_virtual or ds.external:
                raise InputError(f"{path}: dataset {name!r} keeps its values outside the file; "
                                 "expected data stored in the file itself")
            h.update(f"{name}|{ds.dtype.str}|{ds.shape}|{_attrs_text(ds.attrs, ())}".encode())
            _hash_values(h, ds)
    return h.hexdigest()


def _attrs_text(attrs: Any, skip: tuple[str, ...]) -> str:
    return repr(sorted((k, repr(attrs[k])) for k in attrs if k not in skip))


def _hash_values(h: Any, ds: Any) -> None:
    """Feed a dataset's values to ``h``, about 4 MiB at a time along its first axis."""
    if ds.shape == () or ds.size == 0:
        h.update(repr(ds[()]).encode())
        return
    row = max(1, ds.size // ds.shape[0] * ds.dtype.itemsize)
    step = max(1, _CHUNK // row)
    for i in range(0, ds.shape[0], step):
        h.update(ds[i:i + step].tobytes())


def _generate_argv(task: Task, split: int, path: Path, device: str | None, workers: int,
                   progress: bool, threads: int | None = None) -> list[str]:
    assert task.data is not None
    g = task.data.generator(split)
    argv = ["generate", g["pde"], "--n", str(g["n"]), "--resolution", str(g["resolution"]),
            "--seed", str(g["seed"]), "--out", str(path)]
    for k, v in g["params"].items():
        argv += ["--param", f"{k}={v}"]
    if device:
        argv += ["--device", device]
    elif workers > 1:
        argv += ["--workers", str(workers)]
    if threads:  # not auto: it measures the load once, before the other jobs start
        argv += ["--threads", str(threads * (workers if not device and workers > 1 else 1))]
    if not progress:
        argv.append("--no-progress")
    return argv


def generated_mismatch(path: Path, task: Task, split: int) -> str | None:
    """What in a profile data file differs from what its task generates (None: nothing).

    Compares the file's ``pde``, ``seed``, ``n_total``, ``resolution`` and
    ``params`` (every PDE parameter, defaults included) with
    :meth:`DataSpec.generator` of the split.
    """
    import h5py

    from mgno.pde.registry import get_pde, parse_params

    assert task.data is not None
    want = task.data.generator(split)
    pde = get_pde(want["pde"])
    expected = {"pde": pde.name, "seed": want["seed"], "n_total": want["n"],
                "resolution": want["resolution"], "params": parse_params(pde, want["params"])}
    try:
        with h5py.File(path, "r") as f:
            a = f.attrs
            found = {"pde": _text(a.get("pde")), "seed": _int(a.get("seed")),
                     "n_total": _int(a.get("n_total")), "resolution": _int(a.get("resolution")),
                     "params": json.loads(_text(a.get("params")) or "null")}
    except (OSError, ValueError) as err:
        return f"an unreadable file ({err})"
    for key, value in expected.items():
        if found[key] != value:
            return f"{key}={_short(found[key])}, not {_short(value)}"
    return None


def _text(v: Any) -> str | None:
    return v.decode() if isinstance(v, bytes) else (None if v is None else str(v))


def _int(v: Any) -> int | None:
    return None if v is None else int(v)


def _short(v: Any) -> str:
    text = json.dumps(v, sort_keys=True) if isinstance(v, dict) else repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_existing(path: Path, task: Task, split: int, force: bool) -> bool:
    """True when ``path`` holds the split; with ``force``, a stale file is removed (False)."""
    if not path.is_file():
        return False
    diff = generated_mismatch(path, task, split)
    if diff is None:
        return True
    if not force:
        raise InputError(f"{path}: generated with {diff} (the {task.name} task's); expected "
                         "--force to generate it again, or another --out")
    print(f"mgno bench: {path}: generated with {diff}; --force: generating it again",
          file=sys.stderr, flush=True)
    path.unlink()
    return False


def ensure_data(
    out: Path,
    task: Task,
    *,
    device: str | None,
    progress: bool,
    deadline: float | None = None,
    threads: int | None = None,
    workers: int = 1,
    force: bool = False,
) -> bool:
    """Generate the task's missing splits, each by ``mgno generate`` in a child process.

    ``workers`` > 1 generates every split in that many processes (``--workers``).
    Finished files are kept when they hold what the task generates
    (:func:`generated_mismatch`); one generated otherwise is refused, or with
    ``force`` generated again. A generation stopped at ``deadline`` (SIGTERM)
    leaves its ``.partial`` file, which the next call continues.

    Returns
    -------
    bool
        True when every split is on disk, False when stopped at the deadline.

    Raises
    ------
    InputError
        A free-form task's file is missing, or a profile's file holds other
        data than its task generates (without ``force``).
    """
    paths = data_paths(out, task)
    if task.data is None:
        for p in paths:
            if p is not None and not p.is_file():
                raise InputError(f"{p}: no such data file; expected an mgno HDF5 data set")
        return True
    for split, path in enumerate(paths):
        if path is None or _check_existing(path, task, split, force):
            continue
        if deadline is not None and time.monotonic() >= deadline:
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        argv = _generate_argv(task, split, path, device, workers, progress, threads)
        code, _usage, stopped = run_process(
            [sys.executable, "-m", "mgno.cli", *argv], child_env(threads), deadline)
        if stopped:
            return False
        if code != 0:
            raise RuntimeError(f"mgno {' '.join(argv)}: exit status {code}")
    return True


def check_generator(task: Task) -> None:
    """Refuse, in one line, a task whose data no generator of this mgno can make.

    Raises
    ------
    InputError
        An unknown generator or parameters it refuses.
    """
    if task.data is None:
        return
    from mgno.pde.registry import get_pde, parse_params

    try:
        parse_params(get_pde(task.data.pde), task.data.params)
    except InputError as err:
        raise InputError(f"task {task.name!r}: {err}; leave the task out with --tasks") from None


def describe(task: Task, paths: tuple[Path, Path | None, Path]) -> dict[str, Any]:
    """The ``data`` entry of a task in ``results.json``: files, or how they were generated."""
    if task.data is None:
        tr, va, te = paths
        return {"train": str(tr), "val": None if va is None else str(va), "test": str(te)}
    d = task.data
    return {"pde": d.pde, "resolution": d.resolution, "params": d.params, "n_train": d.n_train,
            "n_val": d.n_val, "n_test": d.n_test, "seed": d.seed}


__all__ = ["check_generator", "data_paths", "describe", "ensure_data", "fingerprint",
           "generated_mismatch"]
