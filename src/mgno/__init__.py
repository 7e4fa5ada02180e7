"""mgno: multigrid neural operators for learning PDE solution operators.

The public API is short: build a model with :func:`create_model` (a named
preset of the MgNO paper, with overrides) or :func:`build_model` (a plain
config dict); the multigrid operator itself is :class:`MultigridOperator`.

Importing ``mgno`` (or a light module such as :mod:`mgno.errors`, which the
command line needs before it knows its verb) does not import torch: the
names below load their modules on first use, so ``mgno --help`` starts in a
fraction of a second.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> the module that defines it (loaded on first access)
_LAZY = {
    "MgNO": "mgno.nn",
    "MultigridOperator": "mgno.nn",
    "build_model": "mgno.nn",
    "count_parameters": "mgno.nn",
    "create_model": "mgno.nn",
    "get_preset": "mgno.presets",
    "list_presets": "mgno.presets",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mgno' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "MgNO",
    "MultigridOperator",
    "__version__",
    "build_model",
    "count_parameters",
    "create_model",
    "get_preset",
    "list_presets",
]
