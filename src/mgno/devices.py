"""Which torch device a computing verb uses: ``--device auto|cpu|cuda|cuda:N``.

One check for every layer (the solvers of ``mgno generate`` and training
alike), so that a device that does not exist is one line, not a traceback.
"""

from __future__ import annotations

import torch

from mgno.errors import InputError


def choose_device(spec: str | None = "auto", local_rank: int = 0) -> torch.device:
    """``"auto"`` (or None): ``cuda:LOCAL_RANK`` when CUDA is available, else CPU.

    Raises
    ------
    InputError
        For a name torch does not know, CUDA asked for where there is none, or
        a CUDA index beyond the devices present.
    """
    if spec is None or spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except (RuntimeError, TypeError):
        raise InputError(f"--device: found {spec!r}, expected auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"--device: found {spec!r}, but CUDA is not available here; "
                             "expected cpu")
        count = torch.cuda.device_count()
        if device.index is None:
            device = torch.device("cuda", local_rank % count)
        elif device.index >= count:
            raise InputError(f"--device: found {spec!r}, but there are {count} CUDA device(s); "
                             f"expected cuda:0..cuda:{count - 1}")
    return device


__all__ = ["choose_device"]
