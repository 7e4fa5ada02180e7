"""Data sets on disk: one HDF5 schema (:mod:`mgno.data.schema`), importers
(:mod:`mgno.data.convert`) and the generation driver (:mod:`mgno.data.generate`).

Only the schema is imported here, so ``import mgno.data`` stays light.
"""

from __future__ import annotations

from mgno.data.schema import (
    BOUNDARY_CONDITIONS,
    SCHEMA_VERSION,
    DatasetInfo,
    open_dataset,
    read_arrays,
    write_steady,
    write_trajectories,
)

__all__ = [
    "BOUNDARY_CONDITIONS",
    "SCHEMA_VERSION",
    "DatasetInfo",
    "open_dataset",
    "read_arrays",
    "write_steady",
    "write_trajectories",
]
