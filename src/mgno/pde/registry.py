"""Name -> data generator, with parameter parsing and validation.

Every generator is a function ``(rngs, resolution, params, device) -> dict``
producing one batch: ``{"inputs", "outputs"}`` (steady) or
``{"trajectories", "times"}`` (time-dependent), sample ``i`` depending on
``rngs[i]`` only. :func:`get_pde` looks a name up, :func:`parse_params` turns
``KEY=VALUE`` strings into typed, validated parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mgno.errors import InputError

STEADY, TRAJECTORY = "steady", "trajectory"


#: Default most iterations of ``mgno predict --refine`` (multigrid-CG reaches 1e-8
#: in 13 on the Darcy data at 211x211, benchmarks/RESULTS.md); a PDE whose solver
#: needs more sets its own ``PDESpec.refine_maxiter``.
REFINE_MAXITER = 200


@dataclass(frozen=True)
class PDESpec:
    """A registered data generator.

    Attributes
    ----------
    name : str
        Canonical name (stored in the files).
    kind : str
        ``"steady"`` or ``"trajectory"``.
    description : str
        One line.
    defaults : dict
        Every parameter with its default (the default's type is the type).
    generate : callable
        ``generate(rngs, resolution, params, device) -> dict`` of arrays.
    boundary : callable
        ``boundary(params) -> tuple of str``, one condition per axis.
    ndim : int
        Spatial dimensions.
    min_resolution : int
        Smallest stored grid size allowed.
    default_resolution : int
        The paper's grid size.
    batch_size : int
        Samples per batch by default.
    positive : tuple of str
        Parameters that must be > 0.
    nonnegative : tuple of str
        Parameters that must be >= 0.
    aliases : tuple of str
        Other names the generator answers to.
    cost : callable, optional
        ``cost(resolution, params) -> (stored, work)``: values stored per
        sample (all datasets together) and bytes of working memory per sample
        while it is solved; estimates, used to refuse absurd sizes before
        anything is allocated (see :func:`sample_cost`).
    equation : callable, optional
        ``equation(params, inputs, boundary, domain)``: the discrete equation
        of a stored grid (:mod:`mgno.pde.equations`) for ``inputs`` of shape
        ``(B, C_in, *grid)``; None when the data have no steady equation to
        rebuild (time-dependent data).
    equation_params : tuple of str
        The parameters ``equation`` reads (a file must record them).
    refine_method : str or None
        The iterative solver that refines a prediction in ``equation``
        (``"mg-pcg"``; Helmholtz ``"fgmres-shifted-laplacian-mg"``), or None
        when there is none.
    refine_maxiter : int
        Default most iterations of a refinement (``--refine-maxiter``).
    """

    name: str
    kind: str
    description: str
    defaults: Mapping[str, Any]
    generate: Callable[..., dict]
    boundary: Callable[[Mapping[str, Any]], tuple[str, ...]]
    ndim: int = 2
    min_resolution: int = 5
    default_resolution: int = 64
    batch_size: int = 8
    positive: tuple[str, ...] = ()
    nonnegative: tuple[str, ...] = ()
    aliases: tuple[str, ...] = field(default_factory=tuple)
    cost: Callable[[int, Mapping[str, Any]], tuple[float, float]] | None = None
    equation: Callable[..., Any] | None = None
    equation_params: tuple[str, ...] = ()
    refine_method: str | None = "mg-pcg"
    refine_maxiter: int = REFINE_MAXITER


# --------------------------------------------------------------------------- generators
def _darcy(variant: str):
    def run(rngs, resolution, params, device=None):
        from mgno.pde.darcy import generate_darcy

        p = dict(params)
        n_s = int(p.pop("solve_resolution")) or None
        return generate_darcy(
            rngs, resolution, variant=variant, solve_resolution=n_s, params=p, device=device
        )

    return run


def _poisson(variable: bool):
    def run(rngs, resolution, params, device=None):
        from mgno.pde.poisson import generate_poisson

        return generate_poisson(
            rngs, resolution, params=params, variable_coefficient=variable, device=device
        )

    return run


def _helmholtz(rngs, resolution, params, device=None):
    from mgno.pde.helmholtz import generate_helmholtz

    return generate_helmholtz(rngs, resolution, params=params)


def _pipe(rngs, resolution, params, device=None):
    from mgno.pde.pipe import generate_pipe

    return generate_pipe(rngs, resolution, params=params)


def _navier_stokes(rngs, resolution, params, device=None):
    from mgno.pde.navier_stokes import generate_navier_stokes

    return generate_navier_stokes(rngs, resolution, params=params, device=device)


def _burgers(rngs, resolution, params, device=None):
    from mgno.pde.burgers import generate_burgers

    return generate_burgers(rngs, resolution, params=params, device=device)


# --------------------------------------------------------------------------- equations
def _inputs(inputs, channels: int, what: str):
    if inputs.ndim < 3 or inputs.shape[1] != channels:
        raise InputError(f"inputs have shape {tuple(inputs.shape)}, expected (N, {channels}, "
                         f"*grid): {what}")
    return inputs


def _darcy_equation(params, inputs, boundary, domain):
    """-div(a grad u) = f (a constant) for inputs a (numpy, (B, 1, *grid))."""
    import numpy as np

    from mgno.pde.equations import EllipticEquation

    a = _inputs(inputs, 1, "the coefficient a")[:, 0]
    return EllipticEquation(a, np.full_like(a, float(params["f"])), boundary, domain=domain)


def _poisson_equation(variable: bool):
    """-Laplace u = f (inputs f) or -div(a grad u) = f (inputs a, f), numpy (B, C, *grid)."""

    def build(params, inputs, boundary, domain):
        import numpy as np

        from mgno.pde.equations import EllipticEquation

        if variable:
            x = _inputs(inputs, 2, "the coefficient a and the source f")
            a, f = x[:, 0], x[:, 1]
        else:
            f = _inputs(inputs, 1, "the source f")[:, 0]
            a = np.ones_like(f)
        return EllipticEquation(a, f, boundary, domain=domain)

    return build


def _helmholtz_equation(params, inputs, boundary, domain):
    """The Helmholtz system for inputs c (numpy, (B, 1, n, n)) on the unit square."""
    from mgno.pde.equations import HelmholtzEquation

    c = _inputs(inputs, 1, "the wave speed c")[:, 0]
    if c.shape[-1] != c.shape[-2] or [list(d) for d in domain] != [[0.0, 1.0]] * 2:
        raise InputError(f"grid {c.shape[1:]} on domain {[list(d) for d in domain]}, expected "
                         "a square grid of the unit square (as mgno generate helmholtz makes)")
    return HelmholtzEquation(c, params)


# --------------------------------------------------------------------------- cost estimates
# Working memory per solve-grid point: the batched multigrid hierarchy, the CG
# vectors and the coefficient in float64 (about 25 arrays); the pseudo-spectral
# solvers keep complex spectra and Runge-Kutta stages (about 40 arrays).
_ELLIPTIC_WORK, _SPECTRAL_WORK = 200.0, 320.0


def _elliptic_cost(channels: int, default_solve):
    def cost(resolution: int, p: Mapping[str, Any]) -> tuple[float, float]:
        n_s = float(p.get("solve_resolution") or default_solve(resolution))
        return channels * float(resolution) ** 2, _ELLIPTIC_WORK * n_s**2

    return cost


def _helmholtz_cost(resolution: int, p: Mapping[str, Any]) -> tuple[float, float]:
    points = float(resolution) ** 2
    # Karhunen-Loeve sum over n_modes modes, then a sparse LU of the 5-point operator
    return 2 * points, 8.0 * float(p["n_modes"]) * points + 2000.0 * points


def _pipe_cost(resolution: int, p: Mapping[str, Any]) -> tuple[float, float]:
    points = float(resolution) ** 2
    # the mesh (2) and u (1) stored; the Q2-Q1 Jacobian in COO and CSC form and its
    # sparse LU (fill about n log n): some 350 MB at 129 x 129
    return 3 * points, 3000.0 * points * math.log2(max(float(resolution), 2.0))


def _frames(p: Mapping[str, Any]) -> float:
    return float(p["T"]) / float(p["record_every"]) + 1.0


def _time_cost(ndim: int):
    def cost(resolution: int, p: Mapping[str, Any]) -> tuple[float, float]:
        frames, n_s = _frames(p), float(p["solve_resolution"])
        return frames * float(resolution) ** ndim, (_SPECTRAL_WORK + 8.0 * frames) * n_s**ndim

    return cost


def sample_cost(spec: PDESpec, resolution: int, params: Mapping[str, Any]) -> tuple[float, float]:
    """Estimated values stored per sample and bytes of working memory per sample.

    Parameters
    ----------
    spec : PDESpec
    resolution : int
        Stored grid points per axis.
    params : mapping
        Parsed parameters (:func:`parse_params`).

    Returns
    -------
    (float, float)
        ``(stored_values, work_bytes)``; a generator without a cost model
        counts its stored grid twice and 200 bytes per stored point.
    """
    if spec.cost is not None:
        return spec.cost(int(resolution), params)
    points = float(resolution) ** spec.ndim
    return 2.0 * points, _ELLIPTIC_WORK * points


def _bc_param(params: Mapping[str, Any]) -> tuple[str, ...]:
    from mgno.pde.elliptic import normalize_boundary

    return normalize_boundary(params["bc"], 2)


def _darcy_solve(resolution: int) -> int:
    return 2 * (int(resolution) - 1) + 1


_DARCY = {"alpha": 2.0, "tau": 3.0, "a_high": 12.0, "a_low": 3.0, "f": 1.0, "solve_resolution": 0}


def _specs() -> list[PDESpec]:
    from mgno.pde.pipe import PIPE_DEFAULTS
    from mgno.pde.poisson import ELLIPTIC_DEFAULTS, POISSON_DEFAULTS

    dirichlet2 = lambda p: ("dirichlet", "dirichlet")  # noqa: E731
    darcy_pos = ("tau", "a_high", "a_low", "alpha")
    darcy_eq: dict[str, Any] = {"equation": _darcy_equation, "equation_params": ("f",)}
    return [
        PDESpec(
            "darcy-smooth", STEADY,
            "Darcy flow, a = 12/3 thresholded GRF (alpha 2, tau 3), f = 1, u = 0 on the boundary",
            _DARCY, _darcy("smooth"), dirichlet2, min_resolution=5, default_resolution=211,
            batch_size=8, positive=darcy_pos, aliases=("darcy",),
            cost=_elliptic_cost(2, _darcy_solve), **darcy_eq,
        ),
        PDESpec(
            "darcy-rough", STEADY,
            "Darcy flow, a = 12/2 thresholded GRF (alpha 2, tau 5), f = 1, u = 0 on the boundary",
            {**_DARCY, "tau": 5.0, "a_low": 2.0}, _darcy("rough"), dirichlet2, min_resolution=5,
            default_resolution=256, batch_size=8, positive=darcy_pos,
            cost=_elliptic_cost(2, _darcy_solve), **darcy_eq,
        ),
        PDESpec(
            "darcy-multiscale", STEADY,
            "Darcy flow, trigonometric multiscale coefficient (K scales), f = 1, u = 0 on the "
            "boundary",
            {"K": 5, "amplitude": 0.5, "f": 1.0, "solve_resolution": 0}, _darcy("multiscale"),
            dirichlet2, min_resolution=5, default_resolution=256, batch_size=8,
            positive=("K", "amplitude"), cost=_elliptic_cost(2, _darcy_solve), **darcy_eq,
        ),
        PDESpec(
            "poisson", STEADY,
            "-Laplace u = f (GRF source), boundary condition per axis through bc=",
            POISSON_DEFAULTS, _poisson(False), _bc_param, min_resolution=5,
            default_resolution=65, batch_size=16, positive=("tau", "alpha", "sigma"),
            cost=_elliptic_cost(2, int), equation=_poisson_equation(False),
            equation_params=("bc",),
        ),
        PDESpec(
            "elliptic", STEADY,
            "-div(a grad u) = f, log-normal a, GRF f, boundary condition per axis through bc=",
            ELLIPTIC_DEFAULTS, _poisson(True), _bc_param, min_resolution=5,
            default_resolution=65, batch_size=16,
            positive=("tau", "alpha", "sigma", "a_tau", "a_alpha", "a_sigma"),
            cost=_elliptic_cost(3, int), equation=_poisson_equation(True),
            equation_params=("bc",),
        ),
        PDESpec(
            "helmholtz", STEADY,
            "(-Laplace - omega^2/c^2) u = 0, c = 20 + tanh(GRF), Neumann with a boundary source",
            {"omega": 1000.0, "alpha": 2.0, "tau": 3.0, "sigma": 1.0, "n_modes": 100,
             "c0": 20.0, "source_lo": 0.35, "source_hi": 0.65, "flux": 1.0},
            _helmholtz, lambda p: ("neumann", "neumann"), min_resolution=11,
            default_resolution=101, batch_size=8,
            positive=("omega", "tau", "alpha", "n_modes", "c0"),
            nonnegative=("sigma",), cost=_helmholtz_cost, equation=_helmholtz_equation,
            equation_params=("omega", "source_lo", "source_hi", "flux"),
            refine_method="fgmres-shifted-laplacian-mg",
            # GMRES took up to 176 steps to 1e-6 from zero at 51 and 101 nodes and
            # up to 245 at 33 (benchmarks/RESULTS.md): 200 would leave no margin
            refine_maxiter=500,
        ),
        PDESpec(
            "pipe", STEADY,
            "steady Navier-Stokes in a deformed 2-D pipe (Geo-FNO): mesh (x, y) -> horizontal "
            "velocity, Q2-Q1 finite elements, Newton",
            PIPE_DEFAULTS, _pipe, dirichlet2, min_resolution=9, default_resolution=129,
            batch_size=4,
            positive=("length", "width", "nu", "u_max", "tol", "maxiter", "n_segments"),
            nonnegative=("amplitude", "slope"), cost=_pipe_cost,
        ),
        PDESpec(
            "navier-stokes", TRAJECTORY,
            "2-D vorticity on the unit torus, FNO forcing, GRF initial vorticity, pseudo-spectral",
            {"nu": 1e-3, "T": 50.0, "record_every": 1.0, "solve_resolution": 256,
             "alpha": 2.5, "tau": 7.0, "forcing": 0.1, "cfl": 0.5, "dt_max": 0.05,
             "dtype": "float32"},
            _navier_stokes, lambda p: ("periodic", "periodic"), min_resolution=8,
            default_resolution=64, batch_size=16,
            positive=("nu", "T", "record_every", "solve_resolution", "alpha", "tau", "cfl",
                      "dt_max"),
            nonnegative=("forcing",), aliases=("ns", "navier_stokes"), cost=_time_cost(2),
        ),
        PDESpec(
            "burgers", TRAJECTORY,
            "1-D viscous Burgers on the periodic unit interval, GRF initial data, pseudo-spectral",
            {"nu": 0.1, "T": 1.0, "record_every": 1.0, "solve_resolution": 8192,
             "alpha": 2.0, "tau": 5.0, "sigma": 25.0, "cfl": 1.0},
            _burgers, lambda p: ("periodic",), ndim=1, min_resolution=16,
            default_resolution=1024, batch_size=16,
            positive=("nu", "T", "record_every", "solve_resolution", "alpha", "tau", "cfl"),
            nonnegative=("sigma",), cost=_time_cost(1),
        ),
    ]


def list_pdes() -> list[str]:
    """Canonical names of every generator."""
    return [s.name for s in _specs()]


def get_pde(name: str) -> PDESpec:
    """Look a generator up by name or alias (case-insensitive).

    Raises
    ------
    InputError
        For an unknown name, listing the known ones.
    """
    key = str(name).strip().lower()
    for spec in _specs():
        if key == spec.name or key in spec.aliases:
            return spec
    raise InputError(f"PDE {name!r} is unknown, expected one of {list_pdes()}")


def _convert(spec: PDESpec, key: str, value: Any) -> Any:
    default = spec.defaults[key]
    if isinstance(value, str):
        text = value.strip()
        try:
            if isinstance(default, bool):
                low = text.lower()
                if low not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                return low in ("true", "1", "yes")
            if isinstance(default, int):
                as_float = float(text)
                if not as_float.is_integer():
                    raise ValueError
                return int(as_float)
            if isinstance(default, float):
                return float(text)
        except ValueError as err:
            raise InputError(
                f"--param {key}={value!r} for {spec.name} is not a valid "
                f"{type(default).__name__}, expected e.g. {key}={default}"
            ) from err
        return text
    if isinstance(default, float) and isinstance(value, (int, float)):
        return float(value)
    return value


def parse_params(
    spec: PDESpec, params: Mapping[str, Any] | Iterable[str] | None
) -> dict[str, Any]:
    """Typed, validated parameters: the defaults updated with ``params``.

    Parameters
    ----------
    spec : PDESpec
    params : mapping or iterable of ``"KEY=VALUE"`` strings, optional

    Raises
    ------
    InputError
        Unknown key, malformed ``KEY=VALUE``, a value of the wrong type, NaN
        or infinity, or a value out of range (e.g. a negative viscosity).
    """
    given: dict[str, Any] = {}
    if params is None:
        pass
    elif isinstance(params, Mapping):
        given = dict(params)
    else:
        for item in params:
            if "=" not in str(item):
                raise InputError(f"--param {item!r} is malformed, expected KEY=VALUE")
            k, v = str(item).split("=", 1)
            given[k.strip()] = v
    out = dict(spec.defaults)
    for key, value in given.items():
        if key not in spec.defaults:
            raise InputError(
                f"--param {key} is not a parameter of {spec.name}, expected one of "
                f"{sorted(spec.defaults)}"
            )
        out[key] = _convert(spec, key, value)
    for key, value in out.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if not math.isfinite(value):
            raise InputError(
                f"--param {key}={value} for {spec.name} is not finite, expected a number"
            )
        if key in spec.positive and value <= 0:
            raise InputError(f"--param {key}={value} for {spec.name} is invalid, expected > 0")
        if key in spec.nonnegative and value < 0:
            raise InputError(f"--param {key}={value} for {spec.name} is invalid, expected >= 0")
    return out


__all__ = ["PDESpec", "get_pde", "list_pdes", "parse_params", "sample_cost"]
