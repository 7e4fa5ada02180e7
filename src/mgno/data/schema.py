"""The one on-disk format of mgno: an HDF5 file per data set.

Layout (see ``docs/data.md`` for the full description)::

    /inputs        (N, C_in, *grid)       steady problems: the PDE input (coefficient, ...)
    /outputs       (N, C_out, *grid)      steady problems: the solution
    /trajectories  (N, T, C, *grid)       time-dependent problems: the states
    /times         (T,)                   time-dependent problems: the time of each state

Datasets are chunked one sample per chunk and carry a Fletcher-32 checksum,
so a corrupted chunk is reported when it is read. The root group carries the
metadata as attributes:

``mgno_schema_version``, ``kind`` (``"steady"`` or ``"trajectory"``), ``pde``,
``params`` (JSON object), ``boundary`` (one of :data:`BOUNDARY_CONDITIONS` per
spatial axis), ``domain`` (float array ``(ndim, 2)``: lower and upper bound of
each axis), ``grid_convention`` (``"nodes-including-boundary"``: an axis of
``n`` points spans ``n - 1`` cells and stores both end points, FNO
convention; for periodic axes the last point is the image of the first),
``seed``, ``generator_version``, ``command`` and ``created``.

Every writer here writes to a temporary name in the destination folder and
renames it into place, so a file with the final name is always complete. A
write the machine refuses (disk full, file size limit) raises
:class:`~mgno.errors.OutputFault`, one line, and leaves no file behind.

Every reader refuses data that lives outside the file: external links, soft
links leading through them, virtual datasets and external raw storage (a data
file from the internet must not make mgno read ``/etc/passwd``).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from mgno.atomic import atomic_path
from mgno.data.h5safe import contained_dataset, h5_create
from mgno.errors import InputError
from mgno.vocab import BOUNDARY_CONDITIONS, STEADY, TRAJECTORY
from mgno.vocab import DATA_KINDS as _KINDS

SCHEMA_VERSION: str = "1.0"
"""Version of the on-disk layout described in this module."""

CHECK_DATASETS: tuple[str, ...] = (
    "residual", "error_indicator", "error_estimate", "error_flag", "refine_iterations",
    "refine_residual",
)
"""Per-sample ``(N,)`` datasets ``mgno predict --estimate / --refine`` adds to a
steady file (``docs/hybrid.md``): the relative residual of the raw prediction
in the data's discrete equation, the distance indicator, the calibrated error
estimate, the flag (1 = estimate above the calibration's threshold), and the
iterations and final relative residual of the refinement."""

GRID_CONVENTION = "nodes-including-boundary"


# --------------------------------------------------------------------------- info
@dataclass(frozen=True)
class DatasetInfo:
    """What :func:`open_dataset` learns from an mgno HDF5 file.

    Attributes
    ----------
    path : Path
        The file.
    kind : str
        ``"steady"`` (``inputs``/``outputs``) or ``"trajectory"``
        (``trajectories``/``times``).
    n_samples : int
        Number of samples ``N`` (trajectories for ``kind == "trajectory"``).
    grid : tuple of int
        Points per spatial axis, boundary nodes included.
    in_channels, out_channels : int
        ``C_in`` and ``C_out``; both equal ``C`` for trajectories.
    boundary : tuple of str
        Boundary condition per spatial axis, from :data:`BOUNDARY_CONDITIONS`.
    domain : tuple of (float, float)
        Lower and upper bound of each spatial axis.
    pde : str
        Name of the PDE (``"unknown"`` for files without metadata).
    params : dict
        PDE parameters the file was made with.
    attrs : dict
        Every root attribute of the file, decoded.
    n_times : int
        Number of stored times ``T`` (0 for steady files).
    """

    path: Path
    kind: str
    n_samples: int
    grid: tuple[int, ...]
    in_channels: int
    out_channels: int
    boundary: tuple[str, ...]
    domain: tuple[tuple[float, float], ...]
    pde: str
    params: dict
    attrs: dict
    n_times: int = 0

    @property
    def ndim(self) -> int:
        """Number of spatial dimensions."""
        return len(self.grid)


# --------------------------------------------------------------------------- helpers
def generator_version() -> str:
    try:
        from mgno import __version__

        return str(__version__)
    except Exception:  # pragma: no cover - only without the package metadata
        return "unknown"


def _check_boundary(boundary: Sequence[str], ndim: int, where: str) -> tuple[str, ...]:
    if isinstance(boundary, str):
        boundary = [boundary] * ndim
    names = tuple(str(b).lower() for b in boundary)
    if len(names) != ndim:
        raise InputError(
            f"{where}: field 'boundary' has {len(names)} entries {list(names)}, "
            f"expected one per spatial axis ({ndim})"
        )
    for b in names:
        if b not in BOUNDARY_CONDITIONS:
            raise InputError(
                f"{where}: field 'boundary' has unknown condition {b!r}, "
                f"expected one of {list(BOUNDARY_CONDITIONS)}"
            )
    return names


def _check_domain(
    domain: Sequence[Sequence[float]] | None, ndim: int, where: str
) -> tuple[tuple[float, float], ...]:
    if domain is None:
        return tuple((0.0, 1.0) for _ in range(ndim))
    try:
        dom = np.asarray(domain, dtype=np.float64).reshape(-1, 2)
    except (TypeError, ValueError) as err:
        raise InputError(
            f"{where}: field 'domain' is {domain!r}, expected (low, high) per axis"
        ) from err
    if dom.shape[0] != ndim or not np.all(np.isfinite(dom)) or np.any(dom[:, 1] <= dom[:, 0]):
        raise InputError(
            f"{where}: field 'domain' is {dom.tolist()}, expected {ndim} finite "
            "(low, high) pairs with low < high"
        )
    return tuple((float(lo), float(hi)) for lo, hi in dom)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def root_attrs(
    *,
    kind: str,
    ndim: int,
    pde: str,
    params: Mapping[str, Any] | None,
    boundary: Sequence[str],
    domain: Sequence[tuple[float, float]] | None = None,
    seed: int | None = None,
    command: str | None = None,
    extra_attrs: Mapping[str, Any] | None = None,
    where: str = "metadata",
) -> dict[str, Any]:
    """The root attributes of a file of this schema, validated.

    Parameters
    ----------
    kind : str
        ``"steady"`` or ``"trajectory"``.
    ndim : int
        Number of spatial axes.
    pde, params, boundary, domain, seed, command, extra_attrs
        As in :func:`write_steady`.
    where : str
        Name used in error messages (usually the file).

    Returns
    -------
    dict
        Attribute name -> value ready for ``h5py``.
    """
    if kind not in _KINDS:
        raise InputError(f"{where}: field 'kind' is {kind!r}, expected one of {list(_KINDS)}")
    attrs: dict[str, Any] = {
        "mgno_schema_version": SCHEMA_VERSION,
        "kind": kind,
        "pde": str(pde),
        "params": json.dumps(_jsonable(dict(params or {})), sort_keys=True),
        "boundary": np.array(_check_boundary(boundary, ndim, where), dtype=h5py.string_dtype()),
        "domain": np.asarray(_check_domain(domain, ndim, where), dtype=np.float64),
        "grid_convention": GRID_CONVENTION,
        "seed": -1 if seed is None else int(seed),
        "generator_version": generator_version(),
        "command": "" if command is None else str(command),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    for key, value in (extra_attrs or {}).items():
        if key in attrs:
            raise InputError(f"{where}: extra attribute {key!r} would overwrite a schema field")
        if isinstance(value, (Mapping, list, tuple)) and not isinstance(value, np.ndarray):
            value = json.dumps(_jsonable(value))
        elif value is None:
            value = ""
        attrs[str(key)] = value
    return attrs


def create_datasets(
    f: h5py.File,
    names_shapes: Mapping[str, tuple[int, ...]],
    dtype: Any = np.float32,
    *,
    preallocate: bool = False,
) -> dict[str, h5py.Dataset]:
    """Create sample-chunked, checksummed datasets in an open file.

    Parameters
    ----------
    f : h5py.File
        File open for writing.
    names_shapes : mapping
        Dataset name -> full shape ``(N, ...)``; each chunk is one sample.
    dtype : numpy dtype
        Storage type.
    preallocate : bool
        Allocate every chunk now and fill it with zeros. The file then has its
        final size (a full disk shows at once) and later writes of samples
        change only the bytes of their chunks, never the file's structure: a
        writer killed mid-write leaves a readable file.
    """
    out = {}
    for name, shape in names_shapes.items():
        shape = tuple(int(s) for s in shape)
        chunks = (1, *shape[1:]) if shape[0] > 0 else None
        dcpl = None
        if preallocate and chunks is not None:
            dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
            dcpl.set_fill_time(h5py.h5d.FILL_TIME_ALLOC)
        out[name] = f.create_dataset(
            name, shape=shape, dtype=dtype, chunks=chunks, fletcher32=chunks is not None,
            dcpl=dcpl,
        )
    return out


def _float_array(x: Any, name: str, min_ndim: int, where: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        raise InputError(f"{where}: {name} has dtype {arr.dtype}, expected a real numeric array")
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float32)
    if arr.ndim < min_ndim:
        raise InputError(
            f"{where}: {name} has shape {arr.shape}, expected at least {min_ndim} axes"
        )
    _check_grid(arr.shape[min_ndim - 1 :], where, name)
    return arr


def _check_grid(grid: Sequence[int], where: Any, name: str) -> None:
    """Refuse a grid with an axis of fewer than 2 nodes (no spacing, no stencil)."""
    if grid and min(grid) < 2:
        raise InputError(
            f"{where}: {name} has a grid of {'x'.join(map(str, grid))} nodes, expected at "
            "least 2 nodes per axis"
        )


def _storage_dtype(*arrays: np.ndarray) -> np.dtype:
    return np.dtype(np.float64) if any(a.dtype == np.float64 for a in arrays) else np.dtype(
        np.float32
    )


# --------------------------------------------------------------------------- writers
def write_steady(
    path: str | os.PathLike,
    inputs: np.ndarray,
    outputs: np.ndarray,
    *,
    pde: str,
    params: Mapping[str, Any] | None,
    boundary: Sequence[str],
    domain: Sequence[tuple[float, float]] | None = None,
    seed: int | None = None,
    command: str | None = None,
    extra_attrs: Mapping[str, Any] | None = None,
    per_sample: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """Write a steady data set (input field -> solution field) atomically.

    Parameters
    ----------
    path : path-like
        Destination ``.h5`` file; replaced if it exists.
    inputs : ndarray, shape (N, C_in, *grid)
        PDE inputs (e.g. the Darcy coefficient ``a``).
    outputs : ndarray, shape (N, C_out, *grid)
        Solutions on the same grid.
    pde : str
        Name of the PDE, e.g. ``"darcy"``.
    params : dict
        PDE parameters (stored as JSON).
    boundary : sequence of str
        One of :data:`BOUNDARY_CONDITIONS` per spatial axis (a single string
        is repeated over all axes).
    domain : sequence of (low, high), optional
        Bounds of each axis; default the unit cube.
    seed : int, optional
        Seed the data were drawn with.
    command : str, optional
        The command line that made the file.
    extra_attrs : dict, optional
        More root attributes (dicts and lists are stored as JSON).
    per_sample : dict, optional
        Datasets of :data:`CHECK_DATASETS`, name -> array of shape ``(N,)``.

    Returns
    -------
    Path
        The written file.
    """
    where = str(path)
    x = _float_array(inputs, "inputs", 3, where)
    y = _float_array(outputs, "outputs", 3, where)
    if x.shape[0] != y.shape[0] or x.shape[2:] != y.shape[2:]:
        raise InputError(
            f"{where}: inputs {x.shape} and outputs {y.shape} disagree, expected "
            "the same number of samples and the same grid"
        )
    attrs = root_attrs(
        kind=STEADY, ndim=x.ndim - 2, pde=pde, params=params, boundary=boundary,
        domain=domain, seed=seed, command=command, extra_attrs=extra_attrs, where=where,
    )
    dtype = _storage_dtype(x, y)
    with atomic_path(path) as tmp, h5_create(tmp, path) as f:
        f.attrs.update(attrs)
        ds = create_datasets(f, {"inputs": x.shape, "outputs": y.shape}, dtype, preallocate=True)
        ds["inputs"][...] = x
        ds["outputs"][...] = y
        for name, values in _per_sample(per_sample, x.shape[0], where).items():
            f.create_dataset(name, data=values)
    return Path(path)


def _per_sample(arrays: Mapping[str, np.ndarray] | None, n: int, where: str) -> dict:
    """Check the per-sample datasets of :func:`write_steady`: known names, shape ``(n,)``."""
    out = {}
    for name, values in (arrays or {}).items():
        arr = np.asarray(values)
        if name not in CHECK_DATASETS:
            raise InputError(f"{where}: per-sample dataset {name!r} is unknown, expected one "
                             f"of {list(CHECK_DATASETS)}")
        if arr.shape != (n,) or arr.dtype.kind not in "fiub":
            raise InputError(f"{where}: per-sample dataset {name!r} has shape {arr.shape} "
                             f"({arr.dtype}), expected ({n},) numbers")
        out[name] = arr.astype(np.uint8) if arr.dtype.kind == "b" else arr
    return out


def read_per_sample(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The datasets of :data:`CHECK_DATASETS` a steady file holds, name -> (N,) array."""
    out: dict[str, np.ndarray] = {}
    with _open_h5(Path(path)) as f:
        for name in CHECK_DATASETS:
            ds = contained_dataset(f, name, str(path)) if name in f else None
            if ds is not None:
                out[name] = np.asarray(ds[...])
    return out


def write_trajectories(
    path: str | os.PathLike,
    trajectories: np.ndarray,
    times: np.ndarray,
    *,
    pde: str,
    params: Mapping[str, Any] | None,
    boundary: Sequence[str],
    domain: Sequence[tuple[float, float]] | None = None,
    seed: int | None = None,
    command: str | None = None,
    extra_attrs: Mapping[str, Any] | None = None,
) -> Path:
    """Write a time-dependent data set atomically.

    Parameters
    ----------
    path : path-like
        Destination ``.h5`` file; replaced if it exists.
    trajectories : ndarray, shape (N, T, C, *grid)
        ``N`` trajectories of ``T`` states with ``C`` channels each.
    times : ndarray, shape (T,)
        Time of each state (increasing).
    pde, params, boundary, domain, seed, command, extra_attrs
        As in :func:`write_steady`.

    Returns
    -------
    Path
        The written file.
    """
    where = str(path)
    u = _float_array(trajectories, "trajectories", 4, where)
    t = np.asarray(times, dtype=np.float64).reshape(-1)
    if t.shape[0] != u.shape[1]:
        raise InputError(
            f"{where}: times has {t.shape[0]} entries, expected {u.shape[1]} "
            f"(axis 1 of trajectories {u.shape})"
        )
    attrs = root_attrs(
        kind=TRAJECTORY, ndim=u.ndim - 3, pde=pde, params=params, boundary=boundary,
        domain=domain, seed=seed, command=command, extra_attrs=extra_attrs, where=where,
    )
    with atomic_path(path) as tmp, h5_create(tmp, path) as f:
        f.attrs.update(attrs)
        ds = create_datasets(f, {"trajectories": u.shape}, _storage_dtype(u), preallocate=True)
        ds["trajectories"][...] = u
        f.create_dataset("times", data=t)
    return Path(path)


# --------------------------------------------------------------------------- readers
def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OSU":
            return [_decode(v) for v in value.tolist()]
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _open_h5(path: Path) -> h5py.File:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected an HDF5 file")
    if not h5py.is_hdf5(path):
        raise InputError(f"{path}: not an HDF5 file (no HDF5 signature), expected an .h5 file")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        msg = " ".join(str(err).split())
        if "truncat" in msg.lower():
            raise InputError(f"{path}: truncated HDF5 file ({msg})") from err
        raise InputError(f"{path}: unreadable HDF5 file ({msg})") from err


def _check_extent(path: Path, f: h5py.File) -> None:
    # HDF5 detects most truncations when it opens the file; also check that
    # every dataset's storage lies inside the file (contiguous ones can be
    # checked without reading them).
    size = path.stat().st_size
    for name in ("inputs", "outputs", "trajectories", "times"):
        if name not in f or not isinstance(f[name], h5py.Dataset):
            continue
        ds = f[name]
        offset = ds.id.get_offset()
        if offset is not None and offset + ds.id.get_storage_size() > size:
            raise InputError(
                f"{path}: dataset {name!r} ends at byte "
                f"{offset + ds.id.get_storage_size()}, beyond the file's {size} bytes (truncated)"
            )
        if ds.chunks is not None and ds.shape and ds.shape[0] > 0:
            _check_chunks(path, name, ds, size)


def _check_chunks(path: Path, name: str, ds: h5py.Dataset, size: int) -> None:
    """Every chunk present, inside the dataset and inside the file."""
    expected = 1
    for n, c in zip(ds.shape, ds.chunks, strict=True):
        expected *= -(-n // c)
    seen = []

    def visit(info) -> None:
        seen.append((tuple(info.chunk_offset), info.byte_offset, info.size))

    try:
        if hasattr(ds.id, "chunk_iter"):
            ds.id.chunk_iter(visit)
        else:  # pragma: no cover - older HDF5
            for i in range(ds.id.get_num_chunks()):
                visit(ds.id.get_chunk_info(i))
    except (RuntimeError, OSError, ValueError) as err:
        raise InputError(f"{path}: dataset {name!r} has a damaged chunk index ({err})") from err
    bad = [
        off for off, byte, nbytes in seen
        if byte is None or byte + nbytes > size
        or any(o >= n or o % c for o, n, c in zip(off, ds.shape, ds.chunks, strict=True))
    ]
    if bad or len({off for off, _, _ in seen}) != expected:
        raise InputError(
            f"{path}: dataset {name!r} has {len(seen)} readable chunks of {expected} expected "
            "(truncated or corrupted file)"
        )


def open_dataset(path: str | os.PathLike) -> DatasetInfo:
    """Open and validate an HDF5 data set of this schema.

    The file must exist, be HDF5, hold either ``inputs`` and ``outputs``
    (steady) or ``trajectories`` and ``times`` (trajectory) with consistent
    shapes, name valid boundary conditions and not be truncated.

    Files written by other tools that hold only ``inputs`` and ``outputs``
    (channels-first, ``(N, C, *grid)``) and no attributes open too: their
    boundary condition defaults to ``"dirichlet"`` on every axis, the domain
    to the unit cube and the PDE to ``"unknown"``.

    Parameters
    ----------
    path : path-like
        The ``.h5`` file.

    Returns
    -------
    DatasetInfo

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    InputError
        Naming the file and the field when anything else is wrong.
    """
    path = Path(path)
    try:
        return _open_dataset(path)
    except (InputError, FileNotFoundError):
        raise
    except (OSError, KeyError, ValueError, RuntimeError, TypeError) as err:
        msg = " ".join(str(err).split())[:200]
        raise InputError(f"{path}: damaged HDF5 file, cannot read its structure ({msg})") from err


SCHEMA_DATASETS: tuple[str, ...] = ("inputs", "outputs", "trajectories", "times")
"""The datasets a reader of this schema touches."""


def check_contained(path: str | os.PathLike, f: h5py.File) -> None:
    """Refuse a file whose schema datasets live (even partly) outside it.

    Raises
    ------
    InputError
        For an external link, a soft link leading out of the file, a virtual
        dataset or external raw storage, naming the dataset.
    """
    names = set(f.keys())
    for name in SCHEMA_DATASETS:
        if name in names:
            contained_dataset(f, name, str(path))


def _open_dataset(path: Path) -> DatasetInfo:
    with _open_h5(path) as f:
        check_contained(path, f)
        attrs = {k: _decode(v) for k, v in f.attrs.items()}
        if attrs.get("complete") is False or attrs.get("complete") == 0:
            raise InputError(
                f"{path}: attribute 'complete' is false (an unfinished generation), "
                "expected a finished file"
            )
        has_steady = "inputs" in f and "outputs" in f
        has_traj = "trajectories" in f
        kind = attrs.get("kind", TRAJECTORY if has_traj and not has_steady else STEADY)
        if kind not in _KINDS:
            raise InputError(
                f"{path}: attribute 'kind' is {kind!r}, expected one of {list(_KINDS)}"
            )
        if kind == STEADY:
            for name in ("inputs", "outputs"):
                if name not in f or not isinstance(f[name], h5py.Dataset):
                    raise InputError(
                        f"{path}: dataset {name!r} missing, expected 'inputs' (N, C_in, *grid) "
                        "and 'outputs' (N, C_out, *grid)"
                    )
            xs, ys = f["inputs"].shape, f["outputs"].shape
            if len(xs) < 3 or len(ys) < 3:
                raise InputError(
                    f"{path}: inputs {xs} / outputs {ys}, expected (N, C, *grid) with a grid "
                    "of at least one axis"
                )
            if xs[0] != ys[0] or xs[2:] != ys[2:]:
                raise InputError(
                    f"{path}: inputs {xs} and outputs {ys} disagree, expected the same "
                    "number of samples and grid"
                )
            n, grid, cin, cout, nt = xs[0], tuple(xs[2:]), xs[1], ys[1], 0
        else:
            for name in ("trajectories", "times"):
                if name not in f or not isinstance(f[name], h5py.Dataset):
                    raise InputError(
                        f"{path}: dataset {name!r} missing, expected 'trajectories' "
                        "(N, T, C, *grid) and 'times' (T,)"
                    )
            us, ts = f["trajectories"].shape, f["times"].shape
            if len(us) < 4:
                raise InputError(f"{path}: trajectories has shape {us}, expected (N, T, C, *grid)")
            if len(ts) != 1 or ts[0] != us[1]:
                raise InputError(
                    f"{path}: times has shape {ts}, expected ({us[1]},) to match trajectories {us}"
                )
            n, nt, grid, cin = us[0], us[1], tuple(us[3:]), us[2]
            cout = cin
        for name in ("inputs", "outputs", "trajectories"):
            if name in f and isinstance(f[name], h5py.Dataset):
                if f[name].dtype.kind not in "fiu":
                    raise InputError(
                        f"{path}: dataset {name!r} has dtype {f[name].dtype}, expected real numbers"
                    )
        _check_extent(path, f)
    _check_grid(grid, path, "the data set")
    ndim = len(grid)
    boundary = _check_boundary(attrs.get("boundary", ["dirichlet"] * ndim), ndim, str(path))
    domain = _check_domain(attrs.get("domain"), ndim, str(path))
    params_raw = attrs.get("params", "{}")
    try:
        params = json.loads(params_raw) if isinstance(params_raw, str) else dict(params_raw)
    except (ValueError, TypeError) as err:
        raise InputError(
            f"{path}: attribute 'params' is not a JSON object: {params_raw!r}"
        ) from err
    if not isinstance(params, dict):
        raise InputError(f"{path}: attribute 'params' is {params!r}, expected a JSON object")
    return DatasetInfo(
        path=path, kind=kind, n_samples=int(n), grid=tuple(int(g) for g in grid),
        in_channels=int(cin), out_channels=int(cout), boundary=boundary, domain=domain,
        pde=str(attrs.get("pde", "unknown")), params=params, attrs=attrs, n_times=int(nt),
    )


def read_arrays(
    path: str | os.PathLike,
    start: int = 0,
    stop: int | None = None,
    *,
    dtype: Any = np.float32,
) -> dict[str, np.ndarray]:
    """Read samples ``start:stop`` of a data set into memory.

    Parameters
    ----------
    path : path-like
        The ``.h5`` file (validated with :func:`open_dataset`).
    start, stop : int
        Sample range (Python slice semantics, ``stop=None`` = to the end).
    dtype : numpy dtype
        Type of the returned arrays (``times`` stays float64).

    Returns
    -------
    dict
        ``{"inputs": (n, C_in, *grid), "outputs": (n, C_out, *grid)}`` for steady
        files, ``{"trajectories": (n, T, C, *grid), "times": (T,)}`` for
        trajectories.

    Raises
    ------
    InputError
        When the range is invalid or a chunk is corrupted or missing.
    """
    info = open_dataset(path)
    n = info.n_samples
    stop = n if stop is None else stop
    if not (0 <= start <= n) or not (start <= stop <= n):
        raise InputError(
            f"{path}: sample range {start}:{stop} is invalid, expected 0 <= start <= stop <= {n}"
        )
    names = ("inputs", "outputs") if info.kind == STEADY else ("trajectories",)
    out: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        check_contained(path, f)
        for name in names:
            try:
                out[name] = np.asarray(f[name][start:stop], dtype=dtype)
            except (OSError, RuntimeError, ValueError, KeyError, TypeError) as err:
                msg = " ".join(str(err).split())
                raise InputError(
                    f"{path}: dataset {name!r} samples {start}:{stop} cannot be read "
                    f"(corrupted or truncated: {msg})"
                ) from err
        if info.kind == TRAJECTORY:
            out["times"] = np.asarray(f["times"][...], dtype=np.float64)
    return out


__all__ = [
    "BOUNDARY_CONDITIONS",
    "CHECK_DATASETS",
    "DatasetInfo",
    "SCHEMA_DATASETS",
    "SCHEMA_VERSION",
    "atomic_path",
    "check_contained",
    "create_datasets",
    "open_dataset",
    "read_arrays",
    "read_per_sample",
    "root_attrs",
    "write_steady",
    "write_trajectories",
]
