"""Pickle-free checkpoints: safetensors for tensors, JSON for everything else.

A checkpoint file is one safetensors file. Its tensors hold the weights, the
optimiser moments and the RNG states; its string metadata holds a JSON tree
(optimiser hyper-parameters, scheduler state, epoch counters, history) in
which every tensor is a reference ``{"__tensor__": name}``. Python tuples,
dicts with integer keys and numpy arrays survive the round trip exactly, so
``optimizer.load_state_dict`` and ``scheduler.load_state_dict`` get back what
they gave.

Every write goes to a temporary file in the same folder, is flushed to disk,
then renamed over the target: a crash leaves the old file or the new one,
never half of one. Every read first checks the bytes: a pickle or a
``torch.save`` zip is refused (nothing a user hands in is ever unpickled), and
a truncated file gets a one-line :class:`~mgno.errors.InputError`.
"""

from __future__ import annotations

import json
import os
import random
import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from mgno.atomic import atomic_write_bytes
from mgno.errors import InputError

FORMAT_VERSION = 1
_MAX_HEADER = 100 * 1024 * 1024
#: Bytes per element of the safetensors dtypes.
_DTYPE_SIZES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "C64": 8,
    "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1,
}


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _check_entry(path: Path, name: str, entry: Any) -> tuple[int, int]:
    """Check one tensor entry of a safetensors header; return its byte range."""
    where = f"{path}: header entry {name!r}"
    if not isinstance(entry, dict):
        raise InputError(f"{where} is a {type(entry).__name__}, expected an object")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in _DTYPE_SIZES:
        raise InputError(
            f"{where}: dtype {dtype!r:.40}, expected one of {', '.join(_DTYPE_SIZES)}"
        )
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise InputError(f"{where}: shape {shape!r:.60}, expected a list of integers >= 0")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(_is_count(o) for o in offsets)
        or offsets[0] > offsets[1]
    ):
        raise InputError(
            f"{where}: data_offsets {offsets!r:.60}, expected [begin, end] with 0 <= begin <= end"
        )
    size = _DTYPE_SIZES[dtype]
    for d in shape:
        size *= d
    if offsets[1] - offsets[0] != size:
        raise InputError(
            f"{where}: {offsets[1] - offsets[0]} bytes for shape {shape} of {dtype}, "
            f"expected {size}"
        )
    return offsets[0], offsets[1]


def _check_header(path: Path, header: Any, n_data: int) -> None:
    """Refuse a safetensors header whose fields have the wrong types, sizes or offsets."""
    if not isinstance(header, dict):
        raise InputError(f"{path}: header is not a JSON object, expected a safetensors checkpoint")
    meta = header.get("__metadata__", {})
    if meta is not None and (
        not isinstance(meta, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())
    ):
        raise InputError(
            f"{path}: header field '__metadata__' is not an object of strings, "
            "expected a safetensors checkpoint"
        )
    ranges = sorted(_check_entry(path, k, v) for k, v in header.items() if k != "__metadata__")
    end = max((b for _a, b in ranges), default=0)
    if 8 + end > n_data:
        return  # the caller reports the truncation
    pos = 0
    for a, b in ranges:
        if a != pos:
            raise InputError(
                f"{path}: tensor data at bytes {a}..{b} leave a gap or overlap after byte {pos}, "
                "expected tightly packed tensors (corrupt file)"
            )
        pos = b


# ----------------------------------------------------------------------------- safe reads
def _sniff(path: Path, data: bytes) -> None:
    """Refuse pickles and torch zips; refuse bytes that cannot be safetensors."""
    n = struct.unpack("<Q", data[:8])[0] if len(data) >= 8 else -1
    looks_safetensors = 0 < n <= _MAX_HEADER and 8 + n <= len(data) and data[8:9] == b"{"
    if looks_safetensors:
        return
    if data[:1] == b"\x80" and len(data) > 1 and data[1] <= 5:
        raise InputError(
            f"{path}: is a Python pickle; mgno never unpickles files, "
            "expected a safetensors checkpoint"
        )
    if data[:4] == b"PK\x03\x04":
        raise InputError(
            f"{path}: is a zip archive (torch.save pickle); mgno never unpickles files, "
            "expected a safetensors checkpoint"
        )
    raise InputError(
        f"{path}: {len(data)} bytes without a complete safetensors header, "
        "expected a safetensors checkpoint (truncated or not safetensors)"
    )


def read_safetensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a safetensors file after checking its bytes; returns ``(tensors, metadata)``.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    InputError
        If it is a pickle, a ``torch.save`` zip, truncated or otherwise unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    data = path.read_bytes()
    _sniff(path, data)
    (n,) = struct.unpack("<Q", data[:8])
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(
            f"{path}: header is not JSON, expected a safetensors checkpoint (truncated or corrupt)"
        ) from None
    except RecursionError:
        raise InputError(
            f"{path}: header JSON is nested too deeply, expected a safetensors checkpoint"
        ) from None
    _check_header(path, header, len(data) - n)
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
    need = 8 + n + max(ends, default=0)
    if need != len(data):
        raise InputError(
            f"{path}: {len(data)} bytes but its header describes {need}, "
            "expected a complete safetensors checkpoint (truncated or corrupt)"
        )
    try:
        tensors = st_load(data)
    except Exception as err:  # safetensors raises its own error types
        reason = " ".join(str(err).split())[:200]
        raise InputError(
            f"{path}: unreadable safetensors checkpoint ({reason}), "
            "expected a complete file (truncated or corrupt)"
        ) from None
    metadata = header.get("__metadata__", {}) or {}
    return tensors, metadata


def write_safetensors(
    path: str | os.PathLike,
    tensors: dict[str, torch.Tensor],
    metadata: dict[str, str] | None = None,
) -> None:
    """Atomically write tensors (moved to CPU, made contiguous, unshared) to a safetensors file."""
    clean = {k: v.detach().to("cpu").clone().contiguous() for k, v in tensors.items()}
    atomic_write_bytes(path, st_save(clean, metadata=metadata))


# ----------------------------------------------------------------------------- pickle-free trees
def _encode(obj: Any, key: str, tensors: dict[str, torch.Tensor]) -> Any:
    if key in tensors:  # keep tensor names unique whatever the dict keys contain
        key = f"{key}#{len(tensors)}"
    if isinstance(obj, torch.Tensor):
        tensors[key] = obj
        return {"__tensor__": key}
    if isinstance(obj, np.ndarray):
        tensors[key] = torch.from_numpy(
            np.ascontiguousarray(obj).astype(np.int64, copy=False)
            if obj.dtype.kind in "iu"
            else np.ascontiguousarray(obj)
        )
        return {"__ndarray__": key, "dtype": str(obj.dtype)}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, f"{key}.{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, f"{key}.{i}", tensors) for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise TypeError(
                    f"checkpoint: dict key {k!r} of type {type(k).__name__} not supported"
                )
            items.append([k, _encode(v, f"{key}.{k}", tensors)])
        return {"__dict__": items}
    raise TypeError(f"checkpoint: value of type {type(obj).__name__} at {key!r} not supported")


def _decode(obj: Any, tensors: dict[str, torch.Tensor], where: str) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors, where) for v in obj]
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            name = obj["__tensor__"]
            if name not in tensors:
                raise InputError(f"{where}: tensor {name!r} listed in the metadata is missing")
            return tensors[name]
        if "__ndarray__" in obj:
            name = obj["__ndarray__"]
            if name not in tensors:
                raise InputError(f"{where}: tensor {name!r} listed in the metadata is missing")
            return tensors[name].numpy().astype(obj["dtype"])
        if "__tuple__" in obj:
            return tuple(_decode(v, tensors, where) for v in obj["__tuple__"])
        if "__dict__" in obj:
            return {k: _decode(v, tensors, where) for k, v in obj["__dict__"]}
        return {k: _decode(v, tensors, where) for k, v in obj.items()}
    return obj


def save_tree(path: str | os.PathLike, tree: dict, file_type: str = "mgno-state") -> None:
    """Atomically save a nested structure of tensors, arrays and plain values."""
    tensors: dict[str, torch.Tensor] = {}
    encoded = _encode(tree, "s", tensors)
    meta = {
        "format": "pt",
        "mgno_kind": file_type,
        "mgno_format_version": str(FORMAT_VERSION),
        "tree": json.dumps(encoded),
    }
    write_safetensors(path, tensors, meta)


def load_tree(path: str | os.PathLike, file_type: str = "mgno-state") -> dict:
    """Load what :func:`save_tree` wrote; refuses pickles and other kinds of file."""
    tensors, meta = read_safetensors(path)
    if meta.get("mgno_kind") != file_type or "tree" not in meta:
        raise InputError(
            f"{path}: metadata 'mgno_kind' is {meta.get('mgno_kind')!r}, expected {file_type!r}"
        )
    try:
        encoded = json.loads(meta["tree"])
        return _decode(encoded, tensors, str(path))
    except json.JSONDecodeError:
        raise InputError(f"{path}: metadata 'tree' is not valid JSON") from None
    except RecursionError:
        raise InputError(f"{path}: metadata 'tree' is nested too deeply") from None
    except (TypeError, ValueError, KeyError, AttributeError) as err:
        if isinstance(err, InputError):
            raise
        raise InputError(
            f"{path}: metadata 'tree' is not a tree written by mgno ({type(err).__name__}), "
            "expected a checkpoint written by mgno train"
        ) from None


# ----------------------------------------------------------------------------- RNG
def rng_state() -> dict:
    """The states of Python's, numpy's and torch's global generators (CUDA included)."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state()
    state = {
        "python": {
            "version": version,
            "internal": torch.tensor(internal, dtype=torch.int64),
            "gauss": gauss,
        },
        "numpy": {
            "name": np_state[0],
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` returned."""
    py = state["python"]
    random.setstate(
        (int(py["version"]), tuple(int(v) for v in py["internal"].tolist()), py["gauss"])
    )
    nps = state["numpy"]
    np.random.set_state(
        (
            nps["name"],
            nps["keys"].numpy().astype(np.uint32),
            nps["pos"],
            nps["has_gauss"],
            nps["cached"],
        )
    )
    torch.set_rng_state(state["torch"].to(torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([t.to(torch.uint8) for t in cuda])
