"""Discrete equations rebuilt on a stored grid: residuals, error indicators, solves.

A data file of a steady PDE stores inputs (coefficient, source, wave speed)
and outputs (solutions) on a grid. :class:`EllipticEquation` rebuilds, from
those inputs and the file's metadata, the discrete system ``A u = b`` of the
vertex-centred finite volumes of :mod:`mgno.pde.stencil` *on the stored grid*
(the same discretisation the generators solve, but on the stored nodes: a
data set solved on a finer ``solve_resolution`` and subsampled satisfies this
system only up to the discretisation error, see ``docs/hybrid.md``). It then
answers three questions about any field ``u`` on that grid:

* :meth:`~EllipticEquation.relative_residual` -- ``||b - A u|| / ||b||`` over
  the unknowns (Dirichlet nodes take the boundary values of the equation);
* :meth:`~EllipticEquation.distance` -- an estimate of ``||u - u_h|| / ||u_h||``
  with ``u_h`` the exact discrete solution, from the residual equation
  ``A e = b - A u`` solved to a loose tolerance by a few multigrid-CG
  iterations (the error is measured on every stored node, boundary included);
* :meth:`~EllipticEquation.solve` -- multigrid-preconditioned CG from ``u``
  (or from zero) to a relative residual ``tol``.

Arrays follow the stored-grid convention of :mod:`mgno.data.schema`: every
node of a non-periodic axis, ``n`` nodes of a periodic axis (no repeated end
node), which are exactly the solver's unknowns.

:class:`HelmholtzEquation` answers the same three for the Helmholtz data: its
indefinite system is factorised with a sparse LU for the distance (exact),
and its iterative solve is flexible GMRES (:mod:`mgno.pde.krylov`)
preconditioned by a multigrid V-cycle on the shifted Laplacian
(:mod:`mgno.pde.shifted_laplacian`); see ``docs/hybrid.md`` for what it costs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from mgno.pde.elliptic import elliptic_system
from mgno.pde.helmholtz import helmholtz_parts
from mgno.pde.krylov import RESTART, fgmres
from mgno.pde.shifted_laplacian import SHIFT, ShiftedLaplacianMG
from mgno.pde.solvers import Multigrid, mg_pcg

#: Relative tolerance to which :meth:`EllipticEquation.distance` solves the
#: residual equation, and the most multigrid-CG iterations it spends on it.
DISTANCE_TOL, DISTANCE_MAXITER = 1e-3, 20


@dataclass
class Solution:
    """Outcome of :meth:`EllipticEquation.solve` and :meth:`HelmholtzEquation.solve`.

    Attributes
    ----------
    u : Tensor, shape (B, *grid), float64
        The solutions on the stored nodes.
    iterations : Tensor, shape (B,), int64
        Krylov iterations each sample took (multigrid-CG, or GMRES steps for
        Helmholtz; 0 when the start already met ``tol``).
    residual : Tensor, shape (B,), float64
        Relative residual reached.
    converged : Tensor, shape (B,), bool
        Whether each sample reached ``tol``.
    start_residual : Tensor, shape (B,), float64
        Relative residual of the start (1 for the zero start).
    """

    u: torch.Tensor
    iterations: torch.Tensor
    residual: torch.Tensor
    converged: torch.Tensor
    start_residual: torch.Tensor


def _with_end_node(x: torch.Tensor, boundary: Sequence[str]) -> torch.Tensor:
    """Append the image of the first node on every periodic axis: stored grid -> nodes."""
    for k, b in enumerate(boundary):
        if b == "periodic":
            x = torch.cat([x, x.narrow(k + 1, 0, 1)], dim=k + 1)
    return x


def _norm(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).norm(dim=1)


class EllipticEquation:
    """``-div(a grad u) = f`` on a stored grid, batched over samples.

    Parameters
    ----------
    a : Tensor or array, shape (B, *grid)
        Positive coefficient on the stored nodes.
    f : Tensor or array, shape (B, *grid)
        Source on the stored nodes (for a problem without a Dirichlet axis it
        is projected to zero volume-weighted mean, as the generators do).
    boundary : sequence of str
        ``"dirichlet"`` (``u = 0``), ``"neumann"`` or ``"periodic"`` per axis.
    domain : sequence of (low, high), optional
        Axis bounds; default the unit cube.
    precond_dtype : torch dtype
        Precision of the multigrid preconditioner (the Krylov vectors are float64).
    """

    def __init__(
        self,
        a,
        f,
        boundary: Sequence[str],
        *,
        domain: Sequence[tuple[float, float]] | None = None,
        precond_dtype: torch.dtype = torch.float32,
    ) -> None:
        boundary = tuple(boundary)
        a = _with_end_node(torch.as_tensor(a, dtype=torch.float64), boundary)
        f = _with_end_node(torch.as_tensor(f, dtype=torch.float64), boundary)
        a_u, rhs, lift, boundary, h, op = elliptic_system(a, f, boundary, domain=domain)
        self.boundary, self.spacing, self.op = boundary, list(h), op
        self.a, self.lift = a_u, lift
        self.b = op.mask(rhs)
        self._bnorm = _norm(self.b)
        self._precond_dtype = precond_dtype
        self._mg: Multigrid | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        """The stored grid, ``(*grid)``."""
        return self.op.shape

    @property
    def mg(self) -> Multigrid:
        """The multigrid hierarchy (built on first use)."""
        if self._mg is None:
            self._mg = Multigrid(self.a, self.boundary, self.spacing, dtype=self._precond_dtype)
        return self._mg

    def _unknowns(self, u) -> torch.Tensor:
        u = torch.as_tensor(u, dtype=torch.float64)
        if tuple(u.shape) != tuple(self.b.shape):
            raise ValueError(f"field of shape {tuple(u.shape)}, expected {tuple(self.b.shape)}")
        return self.op.mask(u - self.lift)

    def _relative(self, r: torch.Tensor) -> torch.Tensor:
        safe = torch.where(self._bnorm > 0, self._bnorm, torch.ones_like(self._bnorm))
        return _norm(r) / safe

    def relative_residual(self, u) -> torch.Tensor:
        """``||b - A u||_2 / ||b||_2`` per sample, shape (B,), for ``u`` of shape (B, *grid)."""
        return self._relative(self.b - self.op.apply(self._unknowns(u)))

    def _zero_mean(self, x: torch.Tensor) -> torch.Tensor:
        """Fix the constant of a problem without a Dirichlet axis: zero weighted mean."""
        if not self.op.singular:
            return x
        vol = self.op.volume
        mean = (x * vol).flatten(1).sum(1) / vol.sum()
        return x - mean.view(-1, *([1] * (x.ndim - 1)))

    def distance(self, u) -> torch.Tensor:
        """Estimated ``||u - u_h||_2 / ||u_h||_2`` per sample, shape (B,).

        ``u_h``, the exact discrete solution, is approximated by ``u + e`` with
        ``e`` the residual equation's solution to a relative residual of
        :data:`DISTANCE_TOL` (a few multigrid-CG iterations), the Dirichlet
        nodes set to the boundary values and, without a Dirichlet axis, the
        constant fixed as the generators fix it (zero weighted mean). The
        norms run over every stored node.
        """
        u = torch.as_tensor(u, dtype=torch.float64)
        x = self._unknowns(u)
        r = self.b - self.op.apply(x)
        e = mg_pcg(self.mg, r, op=self.op, tol=DISTANCE_TOL, maxiter=DISTANCE_MAXITER).x
        u_h = self._zero_mean(x + e) + self.lift
        ref = _norm(u_h)
        return _norm(u - u_h) / torch.where(ref > 0, ref, torch.ones_like(ref))

    def solve(self, x0=None, *, tol: float = 1e-8, maxiter: int = 200) -> Solution:
        """Multigrid-preconditioned CG (:func:`~mgno.pde.solvers.mg_pcg`) to ``tol``.

        Parameters
        ----------
        x0 : Tensor or array, shape (B, *grid), optional
            Start on the stored nodes (its Dirichlet values are replaced by the
            equation's); default zero.
        tol : float
            Relative residual ``||b - A u|| / ||b||`` to reach.
        maxiter : int
            Most iterations.

        Returns
        -------
        Solution
        """
        start = None if x0 is None else self._unknowns(x0)
        res = mg_pcg(self.mg, self.b, op=self.op, x0=start, tol=tol, maxiter=maxiter)
        return Solution(u=res.x + self.lift, iterations=res.iterations,
                        residual=res.residuals[:, -1], converged=res.converged,
                        start_residual=res.residuals[:, 0])


class HelmholtzEquation:
    """``(-Laplace - omega^2 / c^2) u = 0`` with the data's boundary flux, per sample.

    Parameters
    ----------
    c : array, shape (B, n, n)
        Wave speed on the stored nodes of the unit square.
    params : dict
        ``omega``, ``source_lo``, ``source_hi``, ``flux`` (see
        :func:`mgno.pde.helmholtz.helmholtz_system`).
    """

    def __init__(self, c, params: dict) -> None:
        c = np.asarray(c, dtype=np.float64)
        self._shape = tuple(c.shape[1:])
        self.parts = [helmholtz_parts(ci, params) for ci in c]
        self.systems = [((stiff - sp.diags(k2m)).tocsc(), b) for stiff, k2m, b in self.parts]

    @property
    def shape(self) -> tuple[int, ...]:
        """The stored grid, ``(n, n)``."""
        return self._shape

    def _flat(self, u) -> np.ndarray:
        u = np.asarray(u, dtype=np.float64)
        if u.shape != (len(self.systems), *self._shape):
            raise ValueError(f"field of shape {u.shape}, expected "
                             f"{(len(self.systems), *self._shape)}")
        return u.reshape(len(self.systems), -1)

    def relative_residual(self, u) -> torch.Tensor:
        """``||b - A u||_2 / ||b||_2`` per sample, shape (B,), for ``u`` of shape (B, n, n)."""
        out = [np.linalg.norm(b - mat @ ui) / np.linalg.norm(b)
               for (mat, b), ui in zip(self.systems, self._flat(u), strict=True)]
        return torch.tensor(out, dtype=torch.float64)

    def distance(self, u) -> torch.Tensor:
        """``||u - u_h||_2 / ||u_h||_2`` per sample, shape (B,), ``u_h`` by sparse LU (exact)."""
        out = []
        for (mat, b), ui in zip(self.systems, self._flat(u), strict=True):
            u_h = spla.spsolve(mat, b)
            out.append(np.linalg.norm(ui - u_h) / max(np.linalg.norm(u_h), 1e-300))
        return torch.tensor(out, dtype=torch.float64)

    def solve(self, x0=None, *, tol: float = 1e-8, maxiter: int = 500, shift: float = SHIFT,
              restart: int = RESTART) -> Solution:
        """Flexible GMRES with the shifted-Laplacian V-cycle (its real part), per sample.

        Parameters
        ----------
        x0 : array, shape (B, n, n), optional
            Starts; default zero.
        tol : float
            Relative residual ``||b - A u|| / ||b||`` to reach.
        maxiter : int
            Most GMRES steps.
        shift : float
            Imaginary part of the shift (:data:`~mgno.pde.shifted_laplacian.SHIFT`).
        restart : int
            GMRES steps between restarts (:data:`~mgno.pde.krylov.RESTART`).

        Returns
        -------
        Solution
            ``iterations`` counts GMRES steps (one V-cycle and one product with ``A`` each).
        """
        starts = [None] * len(self.parts) if x0 is None else list(self._flat(x0))
        results = []
        for (stiff, k2m, _b), (mat, b), start in zip(self.parts, self.systems, starts,
                                                      strict=True):
            mg = ShiftedLaplacianMG(stiff, k2m, self._shape, shift=shift)
            # the V-cycle's real part: GMRES then runs in real arithmetic and minimises
            # the real residual itself (with the complex cycle it minimised a complex
            # residual that bounds the real one: 10-25 % more steps, measured)
            results.append(fgmres(mat.__matmul__, b, lambda r, mg=mg: mg(r).real, x0=start,
                                  tol=tol, maxiter=maxiter, restart=restart))
        u = np.stack([r.x for r in results]).reshape(len(results), *self._shape)
        return Solution(
            u=torch.as_tensor(u), converged=torch.tensor([r.converged for r in results]),
            iterations=torch.tensor([r.iterations for r in results], dtype=torch.int64),
            residual=torch.tensor([r.residual for r in results], dtype=torch.float64),
            start_residual=torch.tensor([r.start_residual for r in results], dtype=torch.float64))


__all__ = [
    "DISTANCE_MAXITER",
    "DISTANCE_TOL",
    "EllipticEquation",
    "HelmholtzEquation",
    "Solution",
]
