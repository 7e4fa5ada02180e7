"""mgno: multigrid neural operators for learning PDE solution operators.

The public API is short: build a model with :func:`create_model` (a named
preset of the MgNO paper, with overrides) or :func:`build_model` (a plain
config dict); the multigrid operator itself is :class:`MultigridOperator`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from mgno.nn import MgNO, MultigridOperator, build_model, count_parameters, create_model
from mgno.presets import get_preset, list_presets

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
