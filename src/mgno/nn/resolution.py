"""Running a model on a grid other than the one it was trained on.

A convolutional multigrid operator is tied to the grid spacing it was trained
on: a 3x3 stencil learned at spacing ``h`` means something else at ``h / 2``.
Applied as-is to a finer grid, MgNO's error grows many-fold. Three strategies:

``resample`` (the default)
    Interpolate the input to the training grid, run the model there, and
    interpolate the output back. Works for every model family; exact on the
    training grid; the error added is the interpolation error of the output.
``multilevel``
    MgNO only: every layer's multigrid operator runs on the training grid,
    embedded in the new grid by fixed transfer operators (``W_new = P W R`` with
    interpolation ``P`` and ``R``), while the point-wise bias and activation act
    on the new grid itself. On a grid twice as fine this is the trained cycle
    with one more, fixed, level on top.
``native``
    Apply the learned stencils directly on the new grid (no adaptation): what a
    plain convolutional operator does, and not resolution-invariant.

Interpolation respects the grid convention (nodes include the boundary:
node 0 and node n-1 sit on the two ends of the domain, so they map onto each
other) and the boundary conditions (periodic axes hold one period without a
repeated end node, and wrap around). :func:`grid_record` is what a run
records of its training grid (shape, spacing, domain, boundary);
:func:`describe_transfer` / :func:`describe_grids` give the one line the CLI
prints when the data grid differs. Measurements and the choice of the
default: ``docs/resolution.md``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mgno.vocab import RESOLUTION_STRATEGIES

_LINEAR = {1: "linear", 2: "bilinear", 3: "trilinear"}


def resample(
    x: torch.Tensor,
    shape: Sequence[int],
    boundary: Sequence[str] | None = None,
) -> torch.Tensor:
    """Interpolate node values onto a grid of ``shape`` nodes over the same domain.

    Interpolation is piecewise (bi/tri)linear: no overshoot at the jumps of
    discontinuous coefficients, and linear functions are reproduced exactly.
    (PyTorch's bicubic mode clamps at the edges, which costs accuracy on the
    boundary nodes, so it is not offered.)

    Parameters
    ----------
    x
        Tensor of shape (batch, channels, *grid).
    shape
        Target nodes per axis.
    boundary
        Condition per axis (default dirichlet); periodic axes wrap around.

    Returns
    -------
    torch.Tensor
        Shape (batch, channels, *shape); ``x`` itself when the shape is unchanged.
    """
    dim = x.dim() - 2
    exporting = torch.compiler.is_exporting()  # keep symbolic sizes symbolic: no int(), no ==
    shape = tuple(shape) if exporting else tuple(int(n) for n in shape)
    if len(shape) != dim:
        raise ValueError(f"resample: expected {dim} target sizes, got {list(shape)}")
    if not exporting and tuple(x.shape[2:]) == shape:
        return x
    if not exporting and min(shape) < 2:
        raise ValueError(f"resample: expected at least 2 nodes per axis, got {list(shape)}")
    boundary = tuple(boundary) if boundary is not None else ("dirichlet",) * dim
    periodic = [b == "periodic" for b in boundary]
    # A periodic axis of n nodes is closed by repeating node 0 at the far end,
    # so that align_corners maps the period [0, 1] onto itself.
    for axis, wrap in enumerate(periodic):
        if wrap:
            first = x.narrow(2 + axis, 0, 1)
            x = torch.cat([x, first], dim=2 + axis)
    size = [n + 1 if wrap else n for n, wrap in zip(shape, periodic, strict=True)]
    y = F.interpolate(x, size=size, mode=_LINEAR[dim], align_corners=True)
    index = (Ellipsis, *(slice(0, n) for n in shape))
    return y[index].contiguous()


def grid_spacing(
    shape: Sequence[int],
    domain: Sequence[Sequence[float]] | None = None,
    boundary: Sequence[str] | None = None,
) -> list[float]:
    """Node spacing per axis under the grid convention of ``docs/data.md``.

    Parameters
    ----------
    shape
        Nodes per axis.
    domain
        ``[lo, hi]`` per axis (default: the unit interval on every axis).
    boundary
        Condition per axis (default dirichlet).

    Returns
    -------
    list of float
        ``(hi - lo) / (n - 1)`` on a non-periodic axis (both ends are nodes),
        ``(hi - lo) / n`` on a periodic one (one period, no repeated end node).
    """
    shape = [int(n) for n in shape]
    domain = [(0.0, 1.0)] * len(shape) if domain is None else [tuple(d) for d in domain]
    boundary = ["dirichlet"] * len(shape) if boundary is None else list(boundary)
    if not (len(domain) == len(boundary) == len(shape)):
        raise ValueError(
            f"grid_spacing: shape {shape}, domain {domain} and boundary {boundary} "
            "need one entry per axis"
        )
    return [
        (float(hi) - float(lo)) / (n if b == "periodic" else max(n - 1, 1))
        for n, (lo, hi), b in zip(shape, domain, boundary, strict=True)
    ]


def grid_record(
    shape: Sequence[int],
    domain: Sequence[Sequence[float]] | None = None,
    boundary: Sequence[str] | None = None,
) -> dict:
    """The training grid as a run records it (``config.json`` and the weights' metadata).

    Returns
    -------
    dict
        ``shape`` (nodes per axis), ``spacing`` (see :func:`grid_spacing`),
        ``domain`` (``[lo, hi]`` per axis) and ``boundary`` (condition per axis).
    """
    shape = [int(n) for n in shape]
    domain = [[0.0, 1.0]] * len(shape) if domain is None else [
        [float(lo), float(hi)] for lo, hi in domain
    ]
    boundary = ["dirichlet"] * len(shape) if boundary is None else [str(b) for b in boundary]
    return {
        "shape": shape,
        "spacing": grid_spacing(shape, domain, boundary),
        "domain": domain,
        "boundary": boundary,
    }


def training_grid(model: nn.Module) -> tuple[int, ...] | None:
    """The grid recorded in ``model.config["grid"]``, or None."""
    grid = getattr(model, "config", {}).get("grid")
    return None if grid is None else tuple(int(n) for n in grid)


def check_native_grid(
    config: dict, train: Sequence[int] | None, grid: Sequence[int], strategy: str
) -> None:
    """Refuse the ``native`` strategy for a grid-tied network on another grid (one line).

    A network whose config has ``norm="layer-grid"`` holds weights per node of
    its training grid ``train``: ``native`` would run it on ``grid`` itself.
    ``resample`` and ``multilevel`` run it on ``train`` and pass.

    Raises
    ------
    InputError
        Naming the option, the training grid and ``grid``.
    """
    from mgno.errors import InputError
    from mgno.nn.multigrid import GRID_TIED_NORM, check_tied_grid

    if check_strategy(strategy) != "native" or train is None:
        return
    if config.get("norm") == GRID_TIED_NORM and len(train) == len(grid):
        try:
            check_tied_grid(train, grid)
        except InputError as err:
            raise InputError(f"--resolution-strategy native: {err}") from None


def check_strategy(strategy: str) -> str:
    """Validate a strategy name."""
    return RESOLUTION_STRATEGIES.check(strategy)


def apply_on_grid(model: nn.Module, x: torch.Tensor, strategy: str = "resample") -> torch.Tensor:
    """Run ``model`` on ``x`` whatever its grid, with the given strategy.

    Parameters
    ----------
    model
        A model with ``config["grid"]`` (its training grid) and
        ``config["boundary"]``; without a recorded grid it runs as-is.
    x
        Input of shape (batch, in_channels, *grid).
    strategy
        ``resample``, ``multilevel`` (MgNO only) or ``native``.

    Returns
    -------
    torch.Tensor
        (batch, out_channels, *grid): always on the input's grid.
    """
    check_strategy(strategy)
    train = training_grid(model)
    grid = tuple(x.shape[2:])
    if train is None or grid == train or strategy == "native" or len(train) != len(grid):
        return model(x)
    boundary = model.config.get("boundary")
    if strategy == "resample":
        return resample(model(resample(x, train, boundary)), grid, boundary)
    if not hasattr(model, "operator_grid"):
        raise ValueError(
            f"resolution strategy 'multilevel' needs an MgNO model, got "
            f"{model.config.get('model')!r}; use 'resample'"
        )
    return model(x, operator_grid=train)


def describe_transfer(model: nn.Module, grid: Sequence[int], strategy: str) -> str | None:
    """One line saying how ``model`` will be run on ``grid``; None on its training grid."""
    return describe_grids(training_grid(model), grid, strategy)


def describe_grids(
    train: Sequence[int] | None, grid: Sequence[int], strategy: str
) -> str | None:
    """One line saying how a model trained on ``train`` is run on ``grid``.

    Parameters
    ----------
    train
        The training grid (None: not recorded).
    grid
        The grid of the data.
    strategy
        ``resample``, ``multilevel`` or ``native``.

    Returns
    -------
    str or None
        None when the two grids are the same.
    """
    train = None if train is None else tuple(int(n) for n in train)
    grid = tuple(int(n) for n in grid)
    if train is None:
        return f"the model records no training grid; running it as-is on {_fmt(grid)}"
    if grid == train:
        return None
    how = {
        "resample": f"interpolating inputs to {_fmt(train)} and outputs back",
        "multilevel": f"running every multigrid operator on {_fmt(train)} inside the layers",
        "native": "applying the learned stencils directly (not resolution-invariant)",
    }[check_strategy(strategy)]
    return (
        f"the model was trained on {_fmt(train)}, the data is on {_fmt(grid)}: "
        f"resolution strategy '{strategy}', {how}"
    )


def _fmt(grid: Sequence[int]) -> str:
    return "x".join(str(n) for n in grid)
