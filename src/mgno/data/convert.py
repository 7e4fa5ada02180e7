"""Import data sets users already have into the one HDF5 schema of mgno.

Recognised sources (by content, not by file name):

* FNO ``.mat`` files -- MATLAB v5 through ``scipy.io.loadmat``, v7.3 (HDF5)
  through ``h5py``; keys ``coeff``/``sol`` (Darcy), ``a``/``u`` (Burgers:
  ``(N, X)`` each; Navier-Stokes: ``a (N, X, Y)`` the initial vorticity and
  ``u (N, X, Y, T)`` with times ``t``), or ``u`` alone ``(N, X, Y, T)``;
* neuraloperator-style ``.pt`` dicts ``{"x": ..., "y": ...}`` (loaded with
  ``torch.load(weights_only=True)``: nothing is unpickled beyond tensors);
* ``.npz`` archives (``x``/``y``, ``inputs``/``outputs``, ``a``/``u``,
  ``coeff``/``sol``, or ``trajectories`` with optional ``times``);
* PDEBench ``.h5``/``.hdf5`` -- ``nu``/``tensor`` (Darcy), ``tensor`` with
  ``t-coordinate`` (1-D/2-D trajectories), ``density``/``pressure``/``Vx``...
  (compressible flow, channels in that order), or one group per sample with
  a ``data`` array ``(T, *grid, C)``;
* mgno's own files (re-written, e.g. to add metadata).

Arrays without a channel axis get one and ``(N, *grid, C)`` is moved to
channels-first: the layout is told from the shapes of the input and output
together, and refused, naming ``--layout``, when no reading or more than one
fits (:mod:`mgno.data.layout`). Boolean and integer arrays become float32;
the converted file notes both (``source_layout``, ``source_cast``). Every
failure to read raises :class:`~mgno.errors.InputError` naming the file.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from mgno.atomic import check_replaceable
from mgno.data.capacity import available_memory, human_bytes, writable_bytes
from mgno.data.h5safe import contained_dataset, contained_keys
from mgno.data.layout import AUTO, CHANNELS_FIRST, parse_layout, resolve_layouts, to_channels_first
from mgno.data.schema import STEADY, TRAJECTORY, write_steady, write_trajectories
from mgno.errors import InputError, OutputFault
from mgno.lock import OutputLock

STEADY_KEYS: tuple[tuple[str, str], ...] = (
    ("inputs", "outputs"),
    ("coeff", "sol"),
    ("x", "y"),
    ("a", "u"),
    ("input", "output"),
    ("nu", "tensor"),
)
"""Pairs of (input, output) names recognised in a source, first match wins."""

_PDEBENCH_FIELDS = ("density", "pressure", "Vx", "Vy", "Vz")


@dataclass
class Imported:
    """A data set read from a foreign file, channels-first.

    Attributes
    ----------
    kind : str
        ``"steady"`` or ``"trajectory"``.
    arrays : dict
        ``inputs``/``outputs`` ``(N, C, *grid)`` or ``trajectories``
        ``(N, T, C, *grid)`` and ``times`` ``(T,)``.
    pde : str
        Guessed PDE name.
    boundary : str
        Guessed boundary condition (applied to every axis).
    source_format : str
        What the file was recognised as.
    keys : tuple of str
        The source names that were used.
    notes : dict
        For the converted file's metadata: ``source_layout`` (source name ->
        layout read) and, when some were cast, ``source_cast`` (source name ->
        ``"bool -> float32"``...).
    """

    kind: str
    arrays: dict[str, np.ndarray]
    pde: str = "unknown"
    boundary: str = "dirichlet"
    source_format: str = ""
    keys: tuple[str, ...] = field(default_factory=tuple)
    notes: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- sniffing
def sniff_format(path: str | os.PathLike) -> str:
    """What a file is: ``"mat5"``, ``"mat73"``, ``"hdf5"``, ``"npz"``, ``"torch"``.

    Raises
    ------
    InputError
        For a file that is none of these.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected a data file")
    if not path.is_file():
        raise InputError(f"{path}: is not a regular file (a device or a pipe), expected a "
                         "data file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(128)
    except OSError as err:
        raise InputError(f"{path}: cannot be read ({err.strerror}), expected a data file") from None
    if head.startswith(b"MATLAB 7.3 MAT-file"):
        return "mat73"
    if head.startswith(b"MATLAB"):
        return "mat5"
    if head.startswith(b"\x89HDF\r\n\x1a\n") or h5py.is_hdf5(path):
        return "hdf5"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as err:
            # NotImplementedError: a corrupted header claiming an unknown zip version
            raise InputError(f"{path}: corrupted or truncated zip archive ({err})") from err
        if names and all(n.endswith(".npy") for n in names):
            return "npz"
        if any(n.endswith("data.pkl") for n in names):
            return "torch"
        raise InputError(
            f"{path}: zip archive holds {names[:5]}, expected an .npz or a torch .pt file"
        )
    if head[:2] in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05"):
        return "torch"
    raise InputError(
        f"{path}: unrecognised format (first bytes {head[:8]!r}), expected a .mat, .pt, "
        ".npz or HDF5 file"
    )


# --------------------------------------------------------------------------- readers
def _read_mat5(path: Path) -> dict[str, Any]:
    import scipy.io

    data = scipy.io.loadmat(path)
    logical = {name for name, _shape, cls in scipy.io.whosmat(path) if cls == "logical"}
    return {k: v.astype(bool) if k in logical else v for k, v in data.items()
            if not k.startswith("__")}  # loadmat gives MATLAB's logical arrays as uint8


def _numeric(f: h5py.File, path: Path, names: Sequence[str]) -> dict[str, h5py.Dataset]:
    """The numeric datasets among ``names`` (stored in the file), checked to fit in memory."""
    found = {}
    for k in names:
        ds = contained_dataset(f, k, str(path))
        if ds is not None and ds.dtype.kind in "fiub":
            found[k] = ds
    _check_memory(path, {k: (ds.shape, ds.dtype.itemsize) for k, ds in found.items()})
    return found


def _check_memory(path: Path, shapes: dict[str, tuple[tuple[int, ...], int]]) -> None:
    """Refuse, before reading, arrays that cannot fit in memory (twice: read and convert)."""
    sizes = {k: float(np.prod(shape, dtype=np.float64)) * item for k, (shape, item) in
             shapes.items()}
    need, avail = 2 * sum(sizes.values()), available_memory()
    if avail is not None and need > avail:
        big = max(sizes, key=sizes.get)
        raise InputError(
            f"{path}: its arrays need about {human_bytes(need)} of memory to convert "
            f"({big!r} {shapes[big][0]} alone {human_bytes(sizes[big])}), "
            f"{human_bytes(avail)} available; expected a smaller file"
        )


def _read_mat73(path: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with h5py.File(path, "r") as f:
        for k, v in _numeric(f, path, contained_keys(f, str(path))).items():
            # MATLAB writes column-major: h5py sees the axes reversed
            out[k] = np.asarray(v[...]).transpose()
            if _attr_text(v.attrs.get("MATLAB_class")) == "logical":  # stored as uint8
                out[k] = out[k].astype(bool)
    return out


def _attr_text(value: Any) -> str:
    """An HDF5 attribute as text (bytes decoded; anything else its str)."""
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _read_torch(path: Path) -> dict[str, Any]:
    import torch

    obj = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(obj, dict):
        raise InputError(
            f"{path}: holds a {type(obj).__name__}, expected a dict of tensors such as "
            "{'x': ..., 'y': ...}"
        )
    out = {}
    for k, v in obj.items():
        if isinstance(v, torch.Tensor):
            out[str(k)] = v.detach().cpu().numpy()
        elif isinstance(v, np.ndarray):
            out[str(k)] = v
    return out


def _read_npz(path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as zf:
        _check_memory(path, {i.filename: ((i.file_size,), 1) for i in zf.infolist()})
    with np.load(path, allow_pickle=False) as data:
        return {k: np.asarray(data[k]) for k in data.files}


def _groups(f: h5py.File) -> list[str]:
    """Top-level groups of a file (hard links only: nothing followed out of it)."""
    return sorted(k for k in f.keys() if isinstance(f.get(k, getlink=True), h5py.HardLink)
                  and isinstance(f[k], h5py.Group))


def _read_hdf5_flat(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    arrays: dict[str, Any] = {}
    where = str(path)
    with h5py.File(path, "r") as f:
        attrs = dict(f.attrs)
        if "complete" in attrs and not bool(np.asarray(attrs["complete"]).all()):
            raise InputError(f"{path}: attribute 'complete' is false (an unfinished "
                             "generation), expected a finished file")
        for k, v in _numeric(f, path, contained_keys(f, where)).items():
            arrays[k] = np.asarray(v[...])
        if not arrays:
            groups = _groups(f)
            data = [contained_dataset(f, f"{g}/data", where) for g in groups]
            if groups and all(d is not None for d in data):
                _numeric(f, path, [f"{g}/data" for g in groups])
                arrays["__grouped__"] = np.stack([np.asarray(d[...]) for d in data])
                t = contained_dataset(f, f"{groups[0]}/grid/t", where)
                if t is not None:
                    arrays["__grouped_t__"] = np.asarray(t[...])
    return arrays, attrs


# --------------------------------------------------------------------------- shaping
class _Shaping:
    """What one import decided about its arrays: dtype casts and layouts, for the metadata.

    Parameters
    ----------
    path:
        The source file, named in messages.
    layout:
        ``--layout``: one word of :data:`mgno.vocab.LAYOUTS` per array (input, output).
    """

    def __init__(self, path: Path, layout: tuple[str, str]) -> None:
        self.path = path
        self.layout = layout
        self.casts: dict[str, str] = {}
        self.layouts: dict[str, str] = {}

    def float(self, x: Any, key: str) -> np.ndarray:
        """``x`` as real numbers: booleans and integers become float32 (and are noted)."""
        arr = np.asarray(x)
        if arr.dtype.kind not in "biuf":
            raise InputError(f"{self.path}: key {key!r} has dtype {arr.dtype}, expected real "
                             "numbers, integers or booleans")
        if arr.ndim < 2:
            raise InputError(f"{self.path}: key {key!r} has shape {arr.shape}, expected "
                             "(N, *grid)")
        if arr.dtype.kind == "f":
            return arr
        self.casts[key] = f"{arr.dtype} -> float32"
        return arr.astype(np.float32)

    def fixed(self, what: str) -> None:
        """Refuse ``--layout`` for a source whose format fixes the layout."""
        if any(w != AUTO for w in self.layout):
            raise InputError(f"--layout {','.join(self.layout)}: {self.path} is {what}, whose "
                             "layout the format fixes; expected --layout auto")

    def channels_first(self, arrays: dict[str, np.ndarray], lead: int = 1
                       ) -> list[np.ndarray]:
        """The arrays channels-first, their layout settled together (:mod:`mgno.data.layout`)."""
        shapes = {k: a.shape for k, a in arrays.items()}
        found = resolve_layouts(self.path, shapes, self.layout[: len(arrays)], lead)
        self.layouts.update({k: r.layout for k, r in found.items()})
        return [to_channels_first(a, found[k], lead) for k, a in arrays.items()]

    def attrs(self) -> dict[str, Any]:
        """The notes for the converted file's metadata."""
        out: dict[str, Any] = {"source_layout": dict(self.layouts)}
        if self.casts:
            out["source_cast"] = dict(self.casts)
        return out


def _pair_names(a_key: str, u_key: str) -> tuple[str, str]:
    """Names of the input and output in messages (one array can be both: --keys a,a)."""
    return (a_key, u_key) if a_key != u_key else (f"{a_key} (input)", f"{u_key} (output)")


def _pair(arrays: dict[str, Any], path: Path, keys: Sequence[str] | None):
    """The (input, output) names: ``keys``, or the first of :data:`STEADY_KEYS` present."""
    if keys is not None:
        if len(keys) != 2 or any(k not in arrays for k in keys):
            raise InputError(
                f"{path}: --keys {','.join(keys)} not found, the file holds {sorted(arrays)}"
            )
        return keys[0], keys[1]
    if "trajectories" in arrays:
        return None
    return next(((a, b) for a, b in STEADY_KEYS if a in arrays and b in arrays), None)


def _steady(arrays: dict[str, Any], pair: tuple[str, str], fmt: str, sh: _Shaping,
            mgno_file: bool) -> Imported:
    """A steady pair (or FNO's Navier-Stokes ``a``/``u`` in a .mat file)."""
    a_key, u_key = pair
    x, y = sh.float(arrays[a_key], a_key), sh.float(arrays[u_key], u_key)
    if fmt in ("mat5", "mat73") and y.ndim == x.ndim + 1 and y.shape[:-1] == x.shape:
        # FNO Navier-Stokes: a = w(t=0) (N, X, Y), u = w(t=1..T) (N, X, Y, T)
        sh.fixed("an FNO Navier-Stokes .mat file")
        sh.layouts.update({a_key: "no-channel", u_key: "no-channel, time last"})
        traj = np.concatenate([x[..., None], y], axis=-1)
        traj = np.moveaxis(traj, -1, 1)[:, :, None]
        t = np.asarray(arrays.get("t", np.arange(1, y.shape[-1] + 1)), dtype=np.float64)
        times = np.concatenate([[0.0], t.reshape(-1)[: y.shape[-1]]])
        return Imported(TRAJECTORY, {"trajectories": traj, "times": times},
                        pde="navier-stokes", boundary="periodic", source_format=fmt, keys=pair)
    if pair == ("nu", "tensor") and y.ndim == x.ndim + 1 and y.shape[1] == 1:
        y = y[:, 0]  # PDEBench Darcy: tensor (N, 1, X, Y)
    if x.shape[0] != y.shape[0]:
        raise InputError(f"{sh.path}: {a_key!r} {x.shape} and {u_key!r} {y.shape} hold "
                         "different numbers of samples, expected the same")
    if mgno_file:
        sh.layout = (CHANNELS_FIRST, CHANNELS_FIRST) if sh.layout == (AUTO, AUTO) else sh.layout
    xs, ys = sh.channels_first(dict(zip(_pair_names(a_key, u_key), (x, y), strict=True)))
    pde, bc = "unknown", "dirichlet"
    if pair in (("coeff", "sol"), ("nu", "tensor")):
        pde = "darcy"
    elif xs.ndim == 3:
        pde, bc = ("burgers", "periodic") if pair == ("a", "u") else ("unknown", "periodic")
    return Imported(STEADY, {"inputs": xs, "outputs": ys}, pde=pde, boundary=bc,
                    source_format=fmt, keys=pair)


def _trajectories(arrays: dict[str, Any], fmt: str, sh: _Shaping, mgno_file: bool) -> Imported:
    """``trajectories`` (N, T, C, *grid) or another layout, and ``times``."""
    u = sh.float(arrays["trajectories"], "trajectories")
    if mgno_file and sh.layout[0] == AUTO:
        sh.layout = (CHANNELS_FIRST, CHANNELS_FIRST)
    (u,) = sh.channels_first({"trajectories": u}, lead=2)
    times = np.asarray(arrays.get("times", np.arange(u.shape[1])), dtype=np.float64)
    return Imported(TRAJECTORY, {"trajectories": u, "times": times.reshape(-1)},
                    source_format=fmt, keys=("trajectories",))


def _from_arrays(
    path: Path, arrays: dict[str, Any], fmt: str, keys: Sequence[str] | None, sh: _Shaping,
    mgno_file: bool = False,
) -> Imported:
    pair = _pair(arrays, path, keys)
    if pair is not None:
        return _steady(arrays, pair, fmt, sh, mgno_file)
    if "trajectories" in arrays:
        return _trajectories(arrays, fmt, sh, mgno_file)
    if "tensor" in arrays:
        # PDEBench trajectories: (N, T, *grid)
        sh.fixed("a PDEBench file")
        u = sh.float(arrays["tensor"], "tensor")
        return _pdebench_traj(u, arrays.get("t-coordinate"), fmt, ("tensor",), path)
    fields = [k for k in _PDEBENCH_FIELDS if k in arrays]
    if fields:
        sh.fixed("a PDEBench file")
        u = np.stack([sh.float(arrays[k], k) for k in fields], axis=-1)
        return _pdebench_traj(u, arrays.get("t-coordinate"), fmt, tuple(fields), path,
                              channels_last=True)
    if "__grouped__" in arrays:
        sh.fixed("a PDEBench file")
        u = sh.float(arrays["__grouped__"], "<sample>/data")
        return _pdebench_traj(u, arrays.get("__grouped_t__"), fmt, ("<sample>/data",), path,
                              channels_last=True)
    if "u" in arrays and np.asarray(arrays["u"]).ndim == 4 and fmt in ("mat5", "mat73"):
        sh.fixed("an FNO Navier-Stokes .mat file")
        y = sh.float(arrays["u"], "u")
        traj = np.moveaxis(y, -1, 1)[:, :, None]
        t = np.asarray(arrays.get("t", np.arange(y.shape[-1])), dtype=np.float64).reshape(-1)
        return Imported(TRAJECTORY, {"trajectories": traj, "times": t[: traj.shape[1]]},
                        pde="navier-stokes", boundary="periodic", source_format=fmt,
                        keys=("u",))
    raise InputError(
        f"{path}: no recognised keys (found {sorted(arrays)}), expected one of "
        f"{[f'{a}/{b}' for a, b in STEADY_KEYS]}, 'u' (N, X, Y, T), PDEBench 'tensor' or "
        "'trajectories' (or name them with --keys IN,OUT)"
    )


def _pdebench_traj(u, t, fmt, keys, path, channels_last: bool = False) -> Imported:
    u = np.asarray(u)
    if channels_last:
        if u.ndim < 4:
            raise InputError(f"{path}: trajectories {u.shape}, expected (N, T, *grid, C)")
        u = np.moveaxis(u, -1, 2)
    else:
        if u.ndim < 3:
            raise InputError(f"{path}: 'tensor' has shape {u.shape}, expected (N, T, *grid)")
        u = u[:, :, None]
    n_t = u.shape[1]
    times = np.arange(n_t, dtype=np.float64) if t is None else np.asarray(t, np.float64).ravel()
    if times.size < n_t:
        times = np.arange(n_t, dtype=np.float64)
    return Imported(TRAJECTORY, {"trajectories": u, "times": times[:n_t]}, pde="unknown",
                    boundary="periodic", source_format=fmt, keys=tuple(keys))


#: Format -> reader of its arrays and (HDF5 only) root attributes.
_READERS = {
    "mat5": lambda path: (_read_mat5(path), {}),
    "mat73": lambda path: (_read_mat73(path), {}),
    "torch": lambda path: (_read_torch(path), {}),
    "npz": lambda path: (_read_npz(path), {}),
    "hdf5": _read_hdf5_flat,
}


def load_source(
    src: str | os.PathLike, *, keys: Sequence[str] | None = None,
    layout: str | Sequence[str] | None = "auto",
) -> Imported:
    """Read a foreign data file into memory, channels-first.

    Parameters
    ----------
    src : path-like
        The file (format sniffed from its content).
    keys : (str, str), optional
        Names of the input and output arrays, when not one of :data:`STEADY_KEYS`.
    layout : str or (str, str)
        Where the arrays keep their channels: ``"auto"`` (told from the shapes,
        refused when two readings fit), ``"channels-first"``, ``"channels-last"``,
        ``"no-channel"``, or one word each for input and output (``"IN,OUT"``);
        see :mod:`mgno.data.layout`.

    Returns
    -------
    Imported

    Raises
    ------
    FileNotFoundError
        When ``src`` does not exist.
    InputError
        Unrecognised, truncated or corrupted file, or no recognised keys.
    """
    path = Path(src)
    shaping = _Shaping(path, parse_layout(layout))
    fmt = sniff_format(path)
    try:
        arrays, attrs = _READERS[fmt](path)
    except InputError:
        raise
    except MemoryError as err:
        raise InputError(f"{path}: corrupted {fmt} file (declares more data than fits)") from err
    except Exception as err:  # every reader has its own exceptions for bad bytes
        msg = " ".join(str(err).split())[:200] or type(err).__name__
        raise InputError(f"{path}: cannot read {fmt} file, corrupted or truncated ({msg})") from err
    imported = _from_arrays(path, arrays, fmt, keys, shaping,
                            mgno_file=fmt == "hdf5" and "mgno_schema_version" in attrs)
    imported.notes = shaping.attrs()
    if fmt == "hdf5" and "pde" in attrs:
        pde = attrs["pde"]
        imported.pde = pde.decode() if isinstance(pde, bytes) else str(pde)
        if "boundary" in attrs:
            raw = np.atleast_1d(attrs["boundary"])
            b = [x.decode() if isinstance(x, bytes) else str(x) for x in raw]
            imported.boundary = ",".join(b)
    return imported


def convert(
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    boundary: str | Sequence[str] | None = None,
    pde: str | None = None,
    keys: Sequence[str] | None = None,
    layout: str | Sequence[str] | None = "auto",
    command: str | None = None,
    force: bool = False,
) -> Path:
    """Import ``src`` and write it as an mgno HDF5 file ``out`` (atomically).

    ``out`` is locked (:class:`mgno.lock.OutputLock`), written after the source was read.

    Parameters
    ----------
    src : path-like
        FNO ``.mat``, neuraloperator ``.pt``, ``.npz``, PDEBench or mgno ``.h5``.
    out : path-like
        Destination ``.h5``.
    boundary : str or sequence of str, optional
        Boundary condition per axis, or one for all (``"dirichlet,periodic"``);
        default guessed (periodic for NS, Burgers, PDEBench trajectories).
    pde : str, optional
        PDE name to record; default guessed.
    keys : (str, str), optional
        Input and output array names.
    layout : str or (str, str)
        Where the arrays keep their channels, as in :func:`load_source`; the
        file's ``source_layout`` and ``source_cast`` note what was done.
    command : str, optional
        Command line recorded in the file.
    force : bool
        Replace an existing ``out`` (refused without it).

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    InputError
        A bad or hostile source (data stored outside the file), an unclear
        layout, an existing ``out`` without ``force``, another live writer.
    OutputFault
        The disk cannot hold the result (nothing is written).
    """
    out = Path(out)
    folder = out.parent if str(out.parent) else Path(".")
    if out.is_dir():
        raise InputError(f"--out {out} is a folder, expected a file name")
    if not folder.is_dir():
        raise InputError(f"--out {out}: folder {folder} does not exist")
    with OutputLock(out):
        check_replaceable(out, force)
        return _convert(src, out, boundary=boundary, pde=pde, keys=keys, layout=layout,
                        command=command)


def _check_disk(out: Path, arrays: dict[str, np.ndarray]) -> None:
    folder = out.parent if str(out.parent) else Path(".")
    need = sum(a.nbytes for a in arrays.values()) * 1.01 + 256 * 1024
    room, what = writable_bytes(folder)
    if room is not None and need > room:
        raise OutputFault(f"{out}: the converted data need about {human_bytes(need)}, "
                          f"{human_bytes(room)} {what} in {folder}; free some space and "
                          "run again")


def _convert(src, out: Path, *, boundary, pde, keys, layout, command) -> Path:
    imported = load_source(src, keys=keys, layout=layout)
    arrays = imported.arrays
    first = next(iter(arrays.values()))
    if first.shape[0] == 0:
        raise InputError(f"{src}: array {imported.keys[0]!r} has shape {tuple(first.shape)}, "
                         "expected at least one sample")
    grid_ndim = (arrays["inputs"].ndim - 2) if imported.kind == STEADY else (
        arrays["trajectories"].ndim - 3
    )
    bc = boundary if boundary is not None else imported.boundary
    if isinstance(bc, str):
        parts = [p.strip().lower() for p in bc.replace("/", ",").split(",") if p.strip()]
        bc = parts * grid_ndim if len(parts) == 1 else parts
    extra = {"source": str(Path(src).name), "source_format": imported.source_format,
             "source_keys": list(imported.keys), **imported.notes}
    common = dict(pde=pde or imported.pde, params={}, boundary=list(bc), command=command,
                  extra_attrs=extra)
    _check_disk(out, arrays)
    if imported.kind == STEADY:
        return write_steady(out, arrays["inputs"], arrays["outputs"], **common)
    return write_trajectories(out, arrays["trajectories"], arrays["times"], **common)


__all__ = ["STEADY_KEYS", "Imported", "convert", "load_source", "sniff_format"]
