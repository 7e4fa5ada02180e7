"""The discrete equation a data file came from, rebuilt from its metadata.

A file written by ``mgno generate`` for a steady PDE records the PDE, its
parameters, the boundary condition per axis and the domain
(:mod:`mgno.data.schema`); with the inputs of its samples that fixes the
discrete system on the stored grid (:mod:`mgno.pde.equations`). Files that do
not fix it are refused with one line: time-dependent data, a PDE without a
registered steady equation (``unknown``, ``navier-stokes``...), files imported
by ``mgno convert`` (another tool's discretisation) and files whose
parameters lack what the equation reads.
"""

from __future__ import annotations

import numpy as np

from mgno.data.schema import DatasetInfo
from mgno.errors import InputError
from mgno.pde.registry import PDESpec, get_pde
from mgno.vocab import STEADY


def equation_spec(info: DatasetInfo, *, refine: bool = False) -> PDESpec:
    """The registered PDE whose discrete equation rebuilds the data of ``info``.

    Reads only the file's metadata, so callers can refuse before any work.
    With ``refine``, the equation must also have an iterative solver
    (``PDESpec.refine_method``).

    Raises
    ------
    InputError
        One line naming the file and why its equation cannot be rebuilt.
    """
    where = f"{info.path}"
    if info.kind != STEADY:
        raise InputError(f"{where}: holds time-dependent data ({info.pde!r}); expected steady "
                         "data, whose discrete equation can be rebuilt")
    if "source_format" in info.attrs:
        raise InputError(f"{where}: was imported by mgno convert (from "
                         f"{info.attrs['source_format']!r}), its discretisation is unknown; "
                         "expected a file made by mgno generate")
    try:
        spec = get_pde(info.pde)
    except InputError:
        spec = None
    if spec is None or spec.equation is None:
        raise InputError(f"{where}: attribute 'pde' is {info.pde!r}, which has no steady "
                         "equation to rebuild; expected darcy-*, poisson, elliptic or helmholtz "
                         "data made by mgno generate")
    missing = [k for k in spec.equation_params if k not in info.params]
    if missing:
        raise InputError(f"{where}: attribute 'params' lacks {missing[0]!r}, which the "
                         f"{spec.name} equation needs; expected the parameters mgno generate "
                         "records")
    if info.out_channels != 1:
        raise InputError(f"{where}: outputs have {info.out_channels} channels, expected 1 "
                         f"(the solution of {spec.name})")
    if refine and spec.refine_method is None:
        raise InputError(f"{where}: {spec.name} has no iterative solver to refine with; "
                         "expected --estimate alone")
    return spec


def rebuild_equation(info: DatasetInfo, inputs: np.ndarray):
    """The discrete equation of ``inputs`` on the stored grid of ``info``.

    Parameters
    ----------
    info : DatasetInfo
        The file the inputs come from (its PDE, parameters, boundary, domain).
    inputs : array, shape (B, C_in, *grid)
        Inputs of the samples (coefficient, source...).

    Returns
    -------
    EllipticEquation
        See :mod:`mgno.pde.equations`.

    Raises
    ------
    InputError
        As :func:`equation_spec`, or inputs the equation cannot take.
    """
    spec = equation_spec(info)
    x = np.asarray(inputs, dtype=np.float64)
    try:
        return spec.equation(info.params, x, tuple(info.boundary), tuple(info.domain))
    except InputError as err:
        raise InputError(f"{info.path}: {err}") from None


__all__ = ["equation_spec", "rebuild_equation"]
