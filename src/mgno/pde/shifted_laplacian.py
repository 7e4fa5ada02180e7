"""A multigrid V-cycle for the complex shifted Laplacian, a preconditioner for Helmholtz.

For the indefinite Helmholtz matrix ``A = K - k^2 M`` (stiffness ``K``, lumped
mass ``M``, ``k = omega / c``) multigrid fails: the coarse grids cannot
represent the oscillatory error, and the smoothers amplify the modes near the
resonance. The *shifted Laplacian* ``S = K - (1 - beta i) k^2 M`` (Erlangga,
Vuik and Oosterlee 2004; ``beta`` = :data:`SHIFT`) damps those modes, so a standard
V-cycle approximates ``S^-1`` well, and ``S^-1`` is close enough to ``A^-1``
that GMRES preconditioned by it converges in a number of steps growing about
linearly with ``k`` (not with the grid size).

This V-cycle: vertex-centred bilinear interpolation ``P`` between ``n`` and
``(n + 1) / 2`` nodes per axis (``n`` odd), Galerkin coarse matrices
``P^T S P``, damped Jacobi smoothing (complex diagonal) and a sparse LU on the
coarsest grid (at most :data:`COARSEST` nodes per axis, or the first even
size). Node order: C order of an ``(n, n)`` array, as
:func:`mgno.pde.helmholtz.helmholtz_system` assembles.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

#: Imaginary part of the shift, ``S = K - (1 - SHIFT i) k^2 M``: 0.2, not the
#: textbook 0.5, which took 2.9x and 1.8x the GMRES steps (medians) on the
#: helmholtz data at 51 and 101 nodes per axis (benchmarks/RESULTS.md, issue 15).
SHIFT = 0.2
#: Damping of the Jacobi smoother and its sweeps before and after the coarse correction.
JACOBI_WEIGHT, SWEEPS = 0.6, 2
#: Grids with at most this many nodes per axis are solved directly.
COARSEST = 17


def interpolation_1d(n: int) -> sp.csr_matrix:
    """Linear interpolation from ``(n + 1) // 2`` to ``n`` vertex-centred nodes (``n`` odd).

    Returns
    -------
    scipy.sparse.csr_matrix, shape (n, (n + 1) // 2)
        Coarse node ``j`` sits on fine node ``2 j``; odd fine nodes average their neighbours.
    """
    if n < 3 or n % 2 == 0:
        raise ValueError(f"interpolation_1d: n={n}, expected an odd size >= 3")
    nc = (n + 1) // 2
    rows, cols, vals = [], [], []
    for j in range(nc):
        rows.append(2 * j), cols.append(j), vals.append(1.0)
        for i in (2 * j - 1, 2 * j + 1):
            if 0 <= i < n:
                rows.append(i), cols.append(j), vals.append(0.5)
    return sp.csr_matrix((vals, (rows, cols)), shape=(n, nc))


class ShiftedLaplacianMG:
    """One V-cycle on ``S = K - (1 - shift i) k^2 M`` from zero, as a preconditioner.

    Parameters
    ----------
    stiffness : scipy.sparse matrix, shape (n * n, n * n)
        ``K`` (real, symmetric).
    k2_mass : ndarray, shape (n * n,)
        The diagonal ``k^2 M`` of the lumped mass term.
    shape : (int, int)
        The grid ``(n, n)``.
    shift : float
        ``beta`` of the shift.
    """

    def __init__(self, stiffness, k2_mass: np.ndarray, shape: tuple[int, int],
                 shift: float = SHIFT) -> None:
        mat = (sp.csr_matrix(stiffness) - sp.diags((1.0 - 1j * shift) * k2_mass)).tocsr()
        self.matrices, self.interps = [mat], []
        n = shape[0]
        while n > COARSEST and n % 2 == 1 and shape[0] == shape[1]:
            p1 = interpolation_1d(n)
            p = sp.kron(p1, p1).tocsr()
            mat = (p.T @ self.matrices[-1] @ p).tocsr()
            self.interps.append(p)
            self.matrices.append(mat)
            n = p1.shape[1]
        self.inv_diags = [JACOBI_WEIGHT / m.diagonal() for m in self.matrices[:-1]]
        self.coarse = spla.splu(self.matrices[-1].tocsc())

    @property
    def levels(self) -> int:
        """Grids in the hierarchy, the finest included."""
        return len(self.matrices)

    def _vcycle(self, level: int, r: np.ndarray) -> np.ndarray:
        if level == len(self.matrices) - 1:
            return self.coarse.solve(r)
        mat, inv_d, p = self.matrices[level], self.inv_diags[level], self.interps[level]
        x = inv_d * r
        for _ in range(SWEEPS - 1):
            x = x + inv_d * (r - mat @ x)
        x = x + p @ self._vcycle(level + 1, p.T @ (r - mat @ x))
        for _ in range(SWEEPS):
            x = x + inv_d * (r - mat @ x)
        return x

    def __call__(self, r: np.ndarray) -> np.ndarray:
        """``z ~ S^-1 r``, shape (n * n,) -> (n * n,), complex."""
        return self._vcycle(0, np.asarray(r, dtype=np.complex128))


__all__ = ["COARSEST", "JACOBI_WEIGHT", "SHIFT", "SWEEPS", "ShiftedLaplacianMG",
           "interpolation_1d"]
