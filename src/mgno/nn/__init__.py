"""Neural-network layers and models: the multigrid operator and MgNO."""

from mgno.nn.boundary import BOUNDARY_CONDITIONS, normalize_boundary
from mgno.nn.factory import build_model, count_parameters, create_model
from mgno.nn.mgno import MgNO, MgNOConfig
from mgno.nn.multigrid import MultigridOperator, derive_levels, level_shapes
from mgno.nn.registry import (
    BASELINE_FAMILIES,
    MODEL_FAMILIES,
    ModelConfig,
    RegisteredModel,
    model_entry,
    parse_config,
    register_model,
)
from mgno.nn.resolution import (
    RESOLUTION_STRATEGIES,
    apply_on_grid,
    describe_grids,
    describe_transfer,
    grid_record,
    grid_spacing,
    resample,
    training_grid,
)

__all__ = [
    "BASELINE_FAMILIES",
    "BOUNDARY_CONDITIONS",
    "MODEL_FAMILIES",
    "RESOLUTION_STRATEGIES",
    "MgNO",
    "MgNOConfig",
    "ModelConfig",
    "MultigridOperator",
    "RegisteredModel",
    "build_model",
    "count_parameters",
    "create_model",
    "derive_levels",
    "level_shapes",
    "model_entry",
    "parse_config",
    "register_model",
    "normalize_boundary",
    "apply_on_grid",
    "describe_grids",
    "describe_transfer",
    "grid_record",
    "grid_spacing",
    "resample",
    "training_grid",
]
