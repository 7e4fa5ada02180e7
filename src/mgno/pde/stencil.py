"""Batched finite-volume operator ``-div(a grad u)`` on a node grid, in torch.

Vertex-centred finite volumes on a tensor grid of nodes that include the
boundary: node ``i`` owns the dual cell around it (half a cell at a
non-periodic boundary), and the flux across the face between neighbouring
nodes ``i`` and ``i + 1`` along axis ``k`` is ``a_face (u_i - u_{i+1}) *
(area of the dual face) / h_k`` with ``a_face`` the mean of ``a`` at both
nodes. The resulting operator

    (L u)_i = sum over faces f of i of c_f (u_i - u_j)

is symmetric positive semi-definite, is the cell-volume times the usual
second-order finite-difference operator (with mirror ghost nodes at Neumann
boundaries) and is exact on quadratics for constant ``a``.

Arrays hold the *unknowns* of the grid: every node of a non-periodic axis and
``n - 1`` nodes of a periodic one (the last node repeats the first). Nodes on
a Dirichlet axis' boundary stay in the array but are inactive (masked).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

PERIODIC = "periodic"
DIRICHLET = "dirichlet"
NEUMANN = "neumann"


@dataclass
class StencilOperator:
    """A batched 2d+1-point symmetric operator in flux (finite-volume) form.

    Attributes
    ----------
    faces : list of Tensor
        Per axis ``k`` the face coefficients ``c``, shape ``(B, *shape)`` with
        axis ``k`` of length ``m_k`` (``shape[k] - 1`` if non-periodic,
        ``shape[k]`` if periodic, the last face joining the last node to the
        first).
    diag : Tensor, shape (B, *shape)
        Sum of the face coefficients around each node (1 at inactive nodes).
    active : Tensor or None, shape (*shape)
        0 at Dirichlet nodes and 1 elsewhere (in the operator's dtype); None
        when every node is active.
    periodic : tuple of bool
        Per axis.
    volume : Tensor, shape (*shape)
        Control-volume of each node.
    off : list of Tensor
        The face coefficients with every face that touches an inactive node
        set to zero: the off-diagonal couplings between unknowns.
    """

    faces: list[torch.Tensor]
    diag: torch.Tensor
    active: torch.Tensor | None
    periodic: tuple[bool, ...]
    volume: torch.Tensor
    off: list[torch.Tensor]

    @property
    def shape(self) -> tuple[int, ...]:
        """Unknowns per axis."""
        return tuple(self.diag.shape[1:])

    @property
    def singular(self) -> bool:
        """True when constants are in the null space (no Dirichlet node)."""
        return self.active is None

    def apply(self, u: torch.Tensor, *, masked: bool = True) -> torch.Tensor:
        """``L u`` for ``u`` of shape ``(B, *shape)``.

        With ``masked=True`` (default) ``u`` must vanish at inactive nodes
        (every vector of the solvers does). With ``masked=False`` inactive
        nodes take part as given (used to lift Dirichlet values). The result
        is zero at inactive nodes.
        """
        if not masked:
            return apply_faces(u, self.faces, self.periodic, self.active)
        y = self.diag * u
        self._add_offdiag(y, u, -1.0)
        return y

    def residual(self, b: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """``b - L u`` (``u`` vanishing at inactive nodes, ``b`` too)."""
        r = torch.addcmul(b, self.diag, u, value=-1.0)
        self._add_offdiag(r, u, 1.0)
        return r

    def _add_offdiag(self, y: torch.Tensor, u: torch.Tensor, sign: float) -> None:
        # y += sign * sum_j c_ij u_j over the neighbours j of every node i
        for k, c in enumerate(self.off):
            ax = k + 1
            n = u.shape[ax]
            m = n - 1
            y.narrow(ax, 0, m).addcmul_(c.narrow(ax, 0, m), u.narrow(ax, 1, m), value=sign)
            y.narrow(ax, 1, m).addcmul_(c.narrow(ax, 0, m), u.narrow(ax, 0, m), value=sign)
            if self.periodic[k]:
                last = c.narrow(ax, m, 1)
                y.narrow(ax, m, 1).addcmul_(last, u.narrow(ax, 0, 1), value=sign)
                y.narrow(ax, 0, 1).addcmul_(last, u.narrow(ax, m, 1), value=sign)

    def mask(self, u: torch.Tensor) -> torch.Tensor:
        """Zero ``u`` at inactive nodes."""
        return u if self.active is None else u * self.active


def apply_faces(
    u: torch.Tensor,
    faces: Sequence[torch.Tensor],
    periodic: Sequence[bool],
    active: torch.Tensor | None,
) -> torch.Tensor:
    """``sum_k D_k^T (c_k D_k u)``: the operator in flux form, written functionally
    (no in-place updates) so that ``torch.compile`` can fuse it into one loop.

    Parameters
    ----------
    u : Tensor, shape (B, *shape)
    faces : sequence of Tensor
        Face coefficients per axis (see :class:`StencilOperator`).
    periodic : sequence of bool
    active : Tensor or None
        0/1 mask applied to the result.
    """
    y = None
    for k, c in enumerate(faces):
        ax = k + 1
        if periodic[k]:
            flux = c * (u - torch.roll(u, -1, ax))
            term = flux - torch.roll(flux, 1, ax)
        else:
            m = u.shape[ax] - 1
            flux = c * (u.narrow(ax, 0, m) - u.narrow(ax, 1, m))
            zero = torch.zeros_like(flux.narrow(ax, 0, 1))
            term = torch.cat([flux, zero], ax) - torch.cat([zero, flux], ax)
        y = term if y is None else y + term
    if active is not None:
        y = y * active
    return y


def axis_unknowns(n: int, boundary: str) -> int:
    """Unknowns along an axis of ``n`` nodes (``n - 1`` if periodic)."""
    return n - 1 if boundary == PERIODIC else n


def spacing(n: int, boundary: str, length: float = 1.0) -> float:
    """Grid spacing of an axis of ``n`` nodes including both end points."""
    return length / (n - 1)


def build_operator(
    a: torch.Tensor,
    boundary: Sequence[str],
    h: Sequence[float],
) -> StencilOperator:
    """The operator ``-div(a grad .)`` for node coefficients ``a``.

    Parameters
    ----------
    a : Tensor, shape (B, *shape)
        Positive coefficient on the unknowns (periodic axes without the
        repeated node).
    boundary : sequence of str
        ``"dirichlet"``, ``"neumann"`` or ``"periodic"`` per axis.
    h : sequence of float
        Grid spacing per axis.

    Returns
    -------
    StencilOperator
    """
    shape = tuple(a.shape[1:])
    d = len(shape)
    periodic = tuple(b == PERIODIC for b in boundary)
    dtype, device = a.dtype, a.device
    # one-dimensional weights: half a dual cell at non-periodic ends
    w1d = []
    for k in range(d):
        w = torch.ones(shape[k], dtype=dtype, device=device)
        if not periodic[k]:
            w[0] = w[-1] = 0.5
        w1d.append(w)
    cell = 1.0
    for hk in h:
        cell *= hk
    volume = torch.full(shape, cell, dtype=dtype, device=device)
    for k in range(d):
        volume = volume * w1d[k].view(*([1] * k), -1, *([1] * (d - k - 1)))
    faces = []
    diag = torch.zeros_like(a)
    for k in range(d):
        ax = k + 1
        if periodic[k]:
            c = 0.5 * (a + torch.roll(a, -1, ax))
        else:
            m = shape[k] - 1
            c = 0.5 * (a.narrow(ax, 0, m) + a.narrow(ax, 1, m))
        scale = cell / (h[k] * h[k])
        c = c * scale
        for j in range(d):
            if j != k and not periodic[j]:
                c = c * w1d[j].view(*([1] * (j + 1)), -1, *([1] * (d - j - 1)))
        faces.append(c)
        if periodic[k]:
            diag += c + torch.roll(c, 1, ax)
        else:
            m = shape[k] - 1
            diag.narrow(ax, 0, m).add_(c)
            diag.narrow(ax, 1, m).add_(c)
    active = None
    if any(b == DIRICHLET for b in boundary):
        active = torch.ones(shape, dtype=torch.bool, device=device)
        for k, b in enumerate(boundary):
            if b == DIRICHLET:
                idx = [slice(None)] * d
                idx[k] = 0
                active[tuple(idx)] = False
                idx[k] = shape[k] - 1
                active[tuple(idx)] = False
        diag = torch.where(active, diag, torch.ones_like(diag))
        active = active.to(dtype)
    off = faces
    if active is not None:
        off = []
        for k, c in enumerate(faces):
            ax = k + 1
            if periodic[k]:
                both = active * torch.roll(active, -1, k)
            else:
                m = shape[k] - 1
                both = active.narrow(k, 0, m) * active.narrow(k, 1, m)
            off.append(c * both)
    return StencilOperator(
        faces=faces, diag=diag, active=active, periodic=periodic, volume=volume, off=off
    )


__all__ = [
    "DIRICHLET",
    "NEUMANN",
    "PERIODIC",
    "StencilOperator",
    "apply_faces",
    "axis_unknowns",
    "build_operator",
    "spacing",
]
