"""Pipe flow (the Geo-FNO pipe set): deformed-pipe mesh -> horizontal velocity.

A 2-D pipe of length ``length`` along x and vertical width ``width`` whose
centreline ``y = c(x)`` is a piecewise cubic Hermite curve on ``n_segments``
equal segments: at each of the ``n_segments + 1`` control nodes a height and a
slope, drawn uniformly from ``[-amplitude, amplitude]`` and ``[-slope, slope]``,
except the inlet height, which is 0 (the parametrisation of Geo-FNO's
``pipe/pipe_design.py``). The mesh is the vertical shear of the reference
square, ``n x n`` nodes::

    x[i, j] = length * i / (n - 1),    y[i, j] = c(x[i, j]) + width * (j / (n - 1) - 1/2),

so every cell has the area of its reference cell and no member of the family
folds. On it :func:`mgno.pde.taylor_hood.solve_navier_stokes` computes the
steady flow (viscosity ``nu``, parabolic inflow of peak ``u_max`` at ``x = 0``,
no-slip walls, do-nothing outlet at ``x = length``).

Stored: ``inputs`` the mesh ``(x, y)`` (2, n, n), ``outputs`` the horizontal
velocity ``u`` (1, n, n); axis 0 runs along the pipe, axis 1 across it, as in
Geo-FNO's ``Pipe_X``, ``Pipe_Y`` and ``Pipe_Q[:, 0]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mgno.errors import InputError
from mgno.pde.taylor_hood import FlowField, solve_navier_stokes

PIPE_DEFAULTS: dict[str, Any] = {
    "length": 10.0, "width": 1.0, "nu": 0.005, "u_max": 1.0, "n_segments": 4,
    "amplitude": 1.0, "slope": 1.0, "tol": 1e-10, "maxiter": 25,
}
"""Parameters of ``mgno generate pipe`` (``--param KEY=VALUE``) and their defaults."""


@dataclass(frozen=True)
class PipeGeometry:
    """A pipe of the family: its size and the Hermite data of its centreline.

    Attributes
    ----------
    length, width : float
        Extent along x and vertical width (> 0).
    heights, slopes : ndarray, shape (n_segments + 1,)
        Centreline height and slope at the control nodes
        ``x_k = length * k / n_segments``.
    """

    length: float
    width: float
    heights: np.ndarray
    slopes: np.ndarray

    def __post_init__(self) -> None:
        for name in ("length", "width"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise InputError(f"pipe {name}={value} is invalid, expected a finite number > 0")
        h, s = np.asarray(self.heights, float), np.asarray(self.slopes, float)
        if h.ndim != 1 or h.shape != s.shape or len(h) < 2:
            raise InputError(f"pipe heights {h.shape} and slopes {s.shape} are invalid, expected "
                             "two equal 1-D arrays of n_segments + 1 >= 2 values")
        if not (np.all(np.isfinite(h)) and np.all(np.isfinite(s))):
            raise InputError("pipe heights/slopes are not finite, expected finite numbers")

    def centreline(self, x: np.ndarray) -> np.ndarray:
        """Centreline height ``c(x)`` for ``0 <= x <= length`` (any shape)."""
        x = np.asarray(x, dtype=np.float64)
        n_seg = len(self.heights) - 1
        seg = self.length / n_seg
        k = np.clip(np.floor(x / seg).astype(int), 0, n_seg - 1)
        t = x / seg - k
        h00, h10 = 1 - 3 * t**2 + 2 * t**3, t - 2 * t**2 + t**3
        h01, h11 = 3 * t**2 - 2 * t**3, t**3 - t**2
        h, s = np.asarray(self.heights, float), np.asarray(self.slopes, float)
        return h00 * h[k] + h10 * seg * s[k] + h01 * h[k + 1] + h11 * seg * s[k + 1]


def check_pipe_params(params: Mapping[str, Any]) -> None:
    """Refuse parameters outside the family with one line naming the parameter.

    ``length``, ``width``, ``nu``, ``u_max``, ``tol`` must be finite and > 0,
    ``amplitude`` and ``slope`` finite and >= 0, ``n_segments`` and ``maxiter``
    integers >= 1; a missing key is refused as well.
    """
    rules = {**dict.fromkeys(("length", "width", "nu", "u_max", "tol"), "> 0"),
             **dict.fromkeys(("amplitude", "slope"), ">= 0"),
             **dict.fromkeys(("n_segments", "maxiter"), "an integer >= 1")}
    for key, rule in rules.items():
        value = params.get(key)
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            number = float("nan")
        ok = np.isfinite(number) and {
            "> 0": number > 0, ">= 0": number >= 0,
            "an integer >= 1": number >= 1 and number == int(number)}[rule]
        if not ok:
            raise InputError(f"--param {key}={value!r} for pipe is invalid, expected {rule}")


def sample_geometry(rng: np.random.Generator, params: Mapping[str, Any]) -> PipeGeometry:
    """Draw one pipe of the family (see the module docstring) from ``rng``."""
    check_pipe_params(params)
    k = int(params["n_segments"]) + 1
    heights = rng.uniform(-1.0, 1.0, k) * float(params["amplitude"])
    heights[0] = 0.0
    slopes = rng.uniform(-1.0, 1.0, k) * float(params["slope"])
    return PipeGeometry(float(params["length"]), float(params["width"]), heights, slopes)


def pipe_mesh(geometry: PipeGeometry, n_along: int, n_across: int) -> tuple[np.ndarray, np.ndarray]:
    """The mapped mesh of a pipe: ``x``, ``y``, each (n_along, n_across).

    Raises
    ------
    InputError
        For node counts that are even or below 3 (biquadratic elements).
    """
    for name, n in (("n_along", n_along), ("n_across", n_across)):
        if int(n) != n or n < 3 or n % 2 == 0:
            raise InputError(f"pipe mesh {name}={n} is invalid, expected an odd integer >= 3")
    xi = np.linspace(0.0, geometry.length, int(n_along))
    eta = np.linspace(-0.5, 0.5, int(n_across)) * geometry.width
    x = np.repeat(xi[:, None], int(n_across), axis=1)
    y = geometry.centreline(xi)[:, None] + eta[None, :]
    return x, y


def solve_pipe(
    geometry: PipeGeometry, n_along: int, n_across: int, params: Mapping[str, Any]
) -> tuple[np.ndarray, np.ndarray, FlowField]:
    """Mesh one pipe and solve its flow; returns ``(x, y, flow)``."""
    x, y = pipe_mesh(geometry, n_along, n_across)
    flow = solve_navier_stokes(
        x, y, nu=float(params["nu"]), u_max=float(params["u_max"]), tol=float(params["tol"]),
        maxiter=int(params["maxiter"]),
    )
    return x, y, flow


def section_fluxes(x: np.ndarray, y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Volume flux through every mesh line ``i = const``, shape (n0,).

    The flux is ``int (u dy - v dx)`` along the line from ``j = 0`` to
    ``j = n1 - 1`` (positive downstream), integrated exactly for the
    biquadratic elements (Simpson's rule on each element edge, the edge's
    quadratic geometry differentiated exactly). For an incompressible flow
    it is the same on every line, up to the discretisation error.
    """
    dx, dy = _edge_derivatives(x), _edge_derivatives(y)
    f = [uk * dyk - vk * dxk
         for uk, vk, dxk, dyk in zip(_edge_nodes(u), _edge_nodes(v), dx, dy, strict=True)]
    return np.sum(f[0] + 4.0 * f[1] + f[2], axis=1) / 3.0  # Simpson on t in [-1, 1]


def _edge_nodes(f: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values at the first, middle and last node of every element edge across the mesh."""
    return f[:, 0:-1:2], f[:, 1::2], f[:, 2::2]


def _edge_derivatives(f: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Derivative in the edge parameter ``t`` of the quadratic through the edge's
    nodes, at ``t = -1, 0, 1``."""
    f0, f1, f2 = _edge_nodes(f)
    return (-3 * f0 + 4 * f1 - f2) / 2, (f2 - f0) / 2, (f0 - 4 * f1 + 3 * f2) / 2


def generate_pipe(
    rngs: Sequence[np.random.Generator], resolution: int, *, params: Mapping[str, Any]
) -> dict[str, np.ndarray]:
    """A batch of pipe samples: ``inputs`` (b, 2, R, R) the mesh, ``outputs`` (b, 1, R, R) u.

    Raises
    ------
    InputError
        An even ``resolution`` or parameters outside the family.
    FlowSolveError
        A solve that did not converge (nothing of the batch is returned).
    """
    if resolution % 2 == 0:
        raise InputError(f"--resolution {resolution} for pipe is even, expected an odd number "
                         "(biquadratic elements of 3 x 3 nodes, e.g. 129)")
    check_pipe_params(params)
    inputs, outputs = [], []
    for rng in rngs:
        x, y, flow = solve_pipe(sample_geometry(rng, params), resolution, resolution, params)
        inputs.append(np.stack([x, y]))
        outputs.append(flow.u[None])
    return {"inputs": np.stack(inputs), "outputs": np.stack(outputs)}


__all__ = ["PIPE_DEFAULTS", "PipeGeometry", "check_pipe_params", "generate_pipe", "pipe_mesh",
           "sample_geometry", "section_fluxes", "solve_pipe"]
