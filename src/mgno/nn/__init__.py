"""Neural-network layers and models: the multigrid operator and MgNO."""

from mgno.nn.boundary import BOUNDARY_CONDITIONS, normalize_boundary
from mgno.nn.factory import MODEL_FAMILIES, build_model, count_parameters, create_model
from mgno.nn.mgno import MgNO
from mgno.nn.multigrid import MultigridOperator, derive_levels, level_shapes
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
    "BOUNDARY_CONDITIONS",
    "MODEL_FAMILIES",
    "RESOLUTION_STRATEGIES",
    "MgNO",
    "MultigridOperator",
    "build_model",
    "count_parameters",
    "create_model",
    "derive_levels",
    "level_shapes",
    "normalize_boundary",
    "apply_on_grid",
    "describe_grids",
    "describe_transfer",
    "grid_record",
    "grid_spacing",
    "resample",
    "training_grid",
]
