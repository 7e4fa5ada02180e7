"""Predictions checked against their equation: residuals, calibrated error estimates, refinement.

The numerics behind ``mgno predict --estimate`` and ``--refine`` (the run and
file handling is in :mod:`mgno.train.checked`). Every function takes the
discrete equation of the data (:func:`mgno.data.equation.rebuild_equation`)
and predictions on its grid.

**Error estimate.** For a prediction ``p`` the *indicator* ``d`` is the
relative distance to the exact discrete solution ``u_h`` of the stored grid
(:meth:`mgno.pde.equations.EllipticEquation.distance`: the residual equation
solved to 1e-3 by a few multigrid-CG iterations). The data's truth ``u`` is
not ``u_h`` when the data were solved on a finer grid and subsampled: they
differ by the discretisation floor ``delta = u - u_h``, so ``d`` measures
``|p - u_h| = |(p - u) + delta|`` rather than the true error ``|p - u|``.
The calibration, fitted on samples with known truth (the run's validation
data), estimates the floor's share ``kappa^2 = median(d^2 - t^2)`` (``t`` the
true relative L2 error) and the estimate is

    estimate = sqrt(max(d^2 - kappa^2, (q d)^2)),

``q`` the smallest ratio ``t / d`` seen in calibration (a lower bound, so
the estimate stays positive and increasing in ``d``). Far above the floor the
estimate is ``d`` itself. A sample is *flagged* when its estimate exceeds
``FLAG_FACTOR`` times the calibration set's median true error.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from mgno.errors import InputError
from mgno.pde.registry import REFINE_MAXITER

#: A prediction is flagged when its estimated error exceeds this many times
#: the median true error of the calibration set.
FLAG_FACTOR = 3.0
#: Version of the calibration record (``RUN_DIR/calibration.json``).
CALIBRATION_VERSION = 1


def check_tolerance(tol: Any, option: str = "--refine") -> float:
    """``tol`` as a float in (0, 1); a one-line InputError naming ``option`` otherwise."""
    try:
        value = float(tol)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(tol, bool) or not math.isfinite(value) or not 0.0 < value < 1.0:
        raise InputError(f"{option}: found {tol!r}, expected a relative residual tolerance "
                         "0 < TOL < 1 (e.g. 1e-6)")
    return value


def check_maxiter(maxiter: Any, option: str = "--refine-maxiter") -> int:
    """``maxiter`` as an integer >= 1; a one-line InputError naming ``option`` otherwise."""
    if isinstance(maxiter, bool) or not isinstance(maxiter, (int, np.integer)) or maxiter < 1:
        raise InputError(f"{option}: found {maxiter!r}, expected an integer >= 1")
    return int(maxiter)


def relative_errors(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``||pred - truth||_2 / ||truth||_2`` per sample over every node, shape (N,)."""
    p = np.asarray(pred, dtype=np.float64).reshape(len(pred), -1)
    t = np.asarray(truth, dtype=np.float64).reshape(len(truth), -1)
    ref = np.linalg.norm(t, axis=1)
    return np.linalg.norm(p - t, axis=1) / np.where(ref > 0, ref, 1.0)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN for fewer than 2 samples."""
    from scipy.stats import spearmanr

    if len(x) < 2:
        return math.nan
    return float(spearmanr(x, y)[0])


@dataclass
class Calibration:
    """How indicators map to error estimates for one run's weights (see the module doc).

    Attributes
    ----------
    floor_sq : float
        ``kappa^2``, the median of ``d^2 - t^2`` over the calibration samples.
    min_ratio : float
        ``q``, the smallest ``t / d`` seen (clipped to [0, 1]).
    flag_threshold : float
        Estimates above it are flagged (``FLAG_FACTOR`` x ``median_error``).
    median_error, median_indicator, median_residual : float
        Medians over the calibration samples.
    spearman : float
        Rank correlation of the indicator with the true error there.
    n_samples : int
        Calibration samples.
    source : dict
        Where the samples came from: ``path``, ``start``, ``stop``, ``pde``, ``grid``.
    weights_sha256 : str
        Digest of the weights calibrated (a cache for other weights is stale).
    """

    floor_sq: float
    min_ratio: float
    flag_threshold: float
    median_error: float
    median_indicator: float
    median_residual: float
    spearman: float
    n_samples: int
    source: dict = field(default_factory=dict)
    weights_sha256: str = ""
    version: int = CALIBRATION_VERSION

    def to_dict(self) -> dict:
        """A JSON-ready dict (NaN as None)."""
        out = asdict(self)
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in out.items()}

    @classmethod
    def from_dict(cls, record: dict, where: str) -> Calibration:
        """Read a record of :meth:`to_dict`; one-line InputError naming ``where`` if damaged."""
        numbers = ("floor_sq", "min_ratio", "flag_threshold", "median_error",
                   "median_indicator", "median_residual")
        for key in numbers:
            value = record.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value):
                raise InputError(f"{where}: field {key!r} is {value!r}, expected a finite number")
        n = record.get("n_samples")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InputError(f"{where}: field 'n_samples' is {n!r}, expected an integer >= 1")
        rho = record.get("spearman")
        return cls(**{k: float(record[k]) for k in numbers}, n_samples=n,
                   spearman=math.nan if rho is None else float(rho),
                   source=dict(record.get("source") or {}),
                   weights_sha256=str(record.get("weights_sha256", "")),
                   version=int(record.get("version", CALIBRATION_VERSION)))

    def estimate(self, indicator: np.ndarray) -> np.ndarray:
        """Error estimates for indicators ``d``, shape (N,) -> (N,)."""
        d = np.asarray(indicator, dtype=np.float64)
        return np.sqrt(np.maximum(d * d - self.floor_sq, (self.min_ratio * d) ** 2))


def fit_calibration(errors: np.ndarray, indicators: np.ndarray, residuals: np.ndarray,
                    source: dict, weights_sha256: str) -> Calibration:
    """Fit :class:`Calibration` to true errors ``t`` and indicators ``d``, each shape (N,)."""
    t = np.asarray(errors, dtype=np.float64)
    d = np.asarray(indicators, dtype=np.float64)
    if len(t) < 1 or not np.all(np.isfinite(t)) or not np.all(np.isfinite(d)):
        raise InputError(f"{source.get('path')}: calibration needs at least one sample with "
                         "finite errors, found none")
    ratios = np.where(d > 0, t / np.where(d > 0, d, 1.0), 1.0)
    med = float(np.median(t))
    return Calibration(
        floor_sq=float(np.median(d * d - t * t)),
        min_ratio=float(np.clip(ratios.min(), 0.0, 1.0)),
        flag_threshold=FLAG_FACTOR * med, median_error=med,
        median_indicator=float(np.median(d)), median_residual=float(np.median(residuals)),
        spearman=spearman(d, t), n_samples=len(t), source=dict(source),
        weights_sha256=weights_sha256,
    )


def indicators(eq, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Relative residuals and distance indicators of predictions ``(N, 1, *grid)``: two (N,)."""
    u = torch.as_tensor(np.asarray(pred, dtype=np.float64)[:, 0])
    return eq.relative_residual(u).numpy(), eq.distance(u).numpy()


@dataclass
class Refinement:
    """Outcome of :func:`refine`.

    Attributes
    ----------
    outputs : ndarray, shape (N, 1, *grid), float64
        The refined fields.
    iterations : ndarray, shape (N,), int64
    residual : ndarray, shape (N,)
        Relative residual reached by each sample.
    start_residual : ndarray, shape (N,)
        Relative residual of each start.
    converged : ndarray, shape (N,), bool
    seconds : float
        Wall time of the iterations.
    """

    outputs: np.ndarray
    iterations: np.ndarray
    residual: np.ndarray
    start_residual: np.ndarray
    converged: np.ndarray
    seconds: float


def refine(eq, start: np.ndarray | None, tol: float, maxiter: int = REFINE_MAXITER) -> Refinement:
    """Iterate the equation's solver from ``start`` to relative residual ``tol``.

    Multigrid-CG for the elliptic equations, flexible GMRES with a
    shifted-Laplacian V-cycle for Helmholtz (``PDESpec.refine_method``).

    Parameters
    ----------
    eq : EllipticEquation or HelmholtzEquation
        The discrete equation (:func:`mgno.data.equation.rebuild_equation`).
    start : ndarray, shape (N, 1, *grid), or None
        Initial guesses (predictions); None starts from zero (a cold start).
    tol : float
        Relative residual ``||b - A u|| / ||b||`` to reach, ``0 < tol < 1``.
    maxiter : int
        Most iterations per sample.
    """
    tol, maxiter = check_tolerance(tol), check_maxiter(maxiter)
    x0 = None if start is None else torch.as_tensor(np.asarray(start, dtype=np.float64)[:, 0])
    t0 = time.perf_counter()
    sol = eq.solve(x0, tol=tol, maxiter=maxiter)
    seconds = time.perf_counter() - t0
    return Refinement(outputs=sol.u.numpy()[:, None], iterations=sol.iterations.numpy(),
                      residual=sol.residual.numpy(), start_residual=sol.start_residual.numpy(),
                      converged=sol.converged.numpy(), seconds=seconds)


__all__ = [
    "CALIBRATION_VERSION",
    "FLAG_FACTOR",
    "REFINE_MAXITER",
    "Calibration",
    "Refinement",
    "check_maxiter",
    "check_tolerance",
    "fit_calibration",
    "indicators",
    "refine",
    "relative_errors",
    "spearman",
]
