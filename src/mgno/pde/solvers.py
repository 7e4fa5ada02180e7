"""Batched geometric multigrid and multigrid-preconditioned CG in torch.

The solvers act on a :class:`~mgno.pde.stencil.StencilOperator` (a batch of
``B`` independent symmetric problems on the same grid) and run wherever the
tensors live (CPU or GPU). Every sample is solved independently: a sample
that has converged is frozen, so its result does not depend on which other
samples share the batch.

The hierarchy is built by re-discretisation: the coefficient is averaged
onto a coarser node grid (``n -> ceil((n - 1) / 2) + 1`` nodes, any ``n``, the
coarse grid need not nest in the fine one), transfers are (multi)linear
interpolation and its transpose, the smoother is red-black Gauss-Seidel
(forward before, backward after the coarse correction, so the V-cycle is a
symmetric preconditioner) and the coarsest grid is solved with a dense
pseudo-inverse.

Interface in the style of ``scipy.sparse.linalg`` / ``pyamg``: ``tol`` (relative
residual), ``maxiter``, ``x0`` and a residual history.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from mgno.pde.stencil import StencilOperator, build_operator


# --------------------------------------------------------------------------- transfers
@dataclass
class Transfer1D:
    """Linear interpolation from ``n_coarse`` to ``n_fine`` points along one axis.

    Fine point ``i`` takes ``w0[i] * coarse[idx0[i]] + w1[i] * coarse[idx1[i]]``.
    """

    idx0: torch.Tensor
    idx1: torch.Tensor
    w0: torch.Tensor
    w1: torch.Tensor
    n_coarse: int
    nested: bool = False
    periodic: bool = False
    identity: bool = False


def linear_transfer(
    n_fine: int, n_coarse: int, periodic: bool, *, dtype=torch.float64, device=None
) -> Transfer1D:
    """Interpolation weights between two grids of the same interval.

    Non-periodic grids include both end points (``x_i = i / (n - 1)``);
    periodic ones do not (``x_i = i / n``).
    """
    i = torch.arange(n_fine, dtype=torch.float64)
    if n_coarse == n_fine:
        idx = torch.arange(n_fine)
        w0 = torch.ones(n_fine, dtype=dtype, device=device)
        return Transfer1D(
            idx.to(device), idx.to(device), w0, torch.zeros_like(w0), n_coarse, identity=True
        )
    if periodic:
        pos = i * n_coarse / n_fine
        i0 = torch.floor(pos + 1e-12).long()
        t = pos - i0
        i1 = (i0 + 1) % n_coarse
    else:
        pos = i * (n_coarse - 1) / (n_fine - 1)
        i0 = torch.clamp(torch.floor(pos + 1e-12).long(), max=n_coarse - 2)
        t = pos - i0
        i1 = i0 + 1
    t = torch.where(t.abs() < 1e-12, torch.zeros_like(t), t)
    nested = (n_fine == 2 * n_coarse) if periodic else (n_fine - 1 == 2 * (n_coarse - 1))
    return Transfer1D(
        idx0=i0.to(device),
        idx1=i1.to(device),
        w0=(1.0 - t).to(dtype=dtype, device=device),
        w1=t.to(dtype=dtype, device=device),
        n_coarse=n_coarse,
        nested=nested,
        periodic=periodic,
    )


def _prolong_nested(u: torch.Tensor, ax: int, periodic: bool) -> torch.Tensor:
    nc = u.shape[ax]
    shape = list(u.shape)
    shape[ax] = 2 * nc if periodic else 2 * nc - 1
    out = u.new_empty(shape)
    even = out.unfold(ax, 1, 2).squeeze(-1)  # entries 0, 2, 4, ...
    even.copy_(u)
    odd = out.narrow(ax, 1, shape[ax] - 1).unfold(ax, 1, 2).squeeze(-1)
    if periodic:
        odd.copy_(0.5 * (u + torch.roll(u, -1, ax)))
    else:
        odd.copy_(0.5 * (u.narrow(ax, 0, nc - 1) + u.narrow(ax, 1, nc - 1)))
    return out


def _restrict_nested(r: torch.Tensor, ax: int, periodic: bool) -> torch.Tensor:
    n = r.shape[ax]
    even = r.unfold(ax, 1, 2).squeeze(-1)
    odd = r.narrow(ax, 1, n - 1).unfold(ax, 1, 2).squeeze(-1)
    out = even.clone()
    if periodic:
        out.add_(odd, alpha=0.5)
        out.add_(torch.roll(odd, 1, ax), alpha=0.5)
    else:
        m = odd.shape[ax]
        out.narrow(ax, 0, m).add_(odd, alpha=0.5)
        out.narrow(ax, 1, m).add_(odd, alpha=0.5)
    return out


def _bshape(w: torch.Tensor, ax: int, ndim: int) -> torch.Tensor:
    return w.view(*([1] * ax), -1, *([1] * (ndim - ax - 1)))


def prolong(u: torch.Tensor, transfers: Sequence[Transfer1D]) -> torch.Tensor:
    """Interpolate ``u`` of shape ``(B, *coarse)`` to ``(B, *fine)``."""
    for k, t in enumerate(transfers):
        ax = k + 1
        if t.identity:
            continue
        if t.nested:
            u = _prolong_nested(u, ax, t.periodic)
            continue
        a = u.index_select(ax, t.idx0) * _bshape(t.w0, ax, u.ndim)
        b = u.index_select(ax, t.idx1) * _bshape(t.w1, ax, u.ndim)
        u = a + b
    return u


def restrict(r: torch.Tensor, transfers: Sequence[Transfer1D]) -> torch.Tensor:
    """Transpose of :func:`prolong`: ``(B, *fine)`` to ``(B, *coarse)``."""
    for k, t in enumerate(transfers):
        ax = k + 1
        if t.identity:
            continue
        if t.nested:
            r = _restrict_nested(r, ax, t.periodic)
            continue
        shape = list(r.shape)
        shape[ax] = t.n_coarse
        out = r.new_zeros(shape)
        out.index_add_(ax, t.idx0, r * _bshape(t.w0, ax, r.ndim))
        out.index_add_(ax, t.idx1, r * _bshape(t.w1, ax, r.ndim))
        r = out
    return r


# --------------------------------------------------------------------------- hierarchy
@dataclass
class _Level:
    op: StencilOperator
    colors: tuple[torch.Tensor, torch.Tensor]
    to_coarse: list[Transfer1D] | None = None


@dataclass
class SolveResult:
    """Outcome of a batched solve.

    Attributes
    ----------
    x : Tensor, shape (B, *shape)
        Solutions.
    residuals : Tensor, shape (B, k + 1)
        Relative residual ``||b - A x|| / ||b||`` after each iteration (the
        last value repeats once a sample has converged).
    iterations : Tensor, shape (B,)
        Iterations each sample needed.
    converged : Tensor, shape (B,), bool
        Whether each sample reached ``tol``.
    """

    x: torch.Tensor
    residuals: torch.Tensor
    iterations: torch.Tensor
    converged: torch.Tensor


def _coarse_size(n: int, periodic: bool) -> int:
    if periodic:
        return math.ceil(n / 2)
    return math.ceil((n - 1) / 2) + 1


class Multigrid:
    """A multigrid hierarchy for a batch of ``-div(a grad u)`` problems.

    Parameters
    ----------
    a : Tensor, shape (B, *shape)
        Coefficient on the unknowns of the finest grid.
    boundary : sequence of str
        Boundary condition per axis.
    h : sequence of float
        Finest grid spacing per axis.
    pre, post : int
        Red-black Gauss-Seidel sweeps before and after the coarse correction.
    coarsest : int
        An axis with at most this many unknowns is not coarsened further;
        the hierarchy stops when every axis is that small.
    dtype : torch dtype, optional
        Precision of the hierarchy (default that of ``a``). A float32
        hierarchy makes a cheap preconditioner for a float64 Krylov solver.
    """

    def __init__(
        self,
        a: torch.Tensor,
        boundary: Sequence[str],
        h: Sequence[float],
        *,
        pre: int = 1,
        post: int = 1,
        coarsest: int = 9,
        dtype: torch.dtype | None = None,
    ) -> None:
        self.pre, self.post = int(pre), int(post)
        self.levels: list[_Level] = []
        if dtype is not None:
            a = a.to(dtype)
        self.dtype = a.dtype
        boundary = tuple(boundary)
        periodic = tuple(b == "periodic" for b in boundary)
        h = list(h)
        while True:
            op = build_operator(a, boundary, h)
            level = _Level(op=op, colors=self._colors(op))
            self.levels.append(level)
            shape = op.shape
            if all(n <= coarsest for n in shape):
                break
            cshape = [
                n if n <= coarsest else _coarse_size(n, p)
                for n, p in zip(shape, periodic, strict=True)
            ]
            level.to_coarse = [
                linear_transfer(n, nc, p, dtype=a.dtype, device=a.device)
                for n, nc, p in zip(shape, cshape, periodic, strict=False)
            ]
            weight = restrict(torch.ones_like(a[:1]), level.to_coarse)
            a = restrict(a, level.to_coarse) / weight
            h = [
                hk * (n if p else n - 1) / (nc if p else nc - 1)
                for hk, n, nc, p in zip(h, shape, cshape, periodic, strict=False)
            ]
        # the coarsest operator in float64, so that the null space of a
        # singular problem is exact and the pseudo-inverse leaves it out
        coarse64 = build_operator(a.to(torch.float64), boundary, h)
        self._coarse_inverse = self._dense_pinv(coarse64).to(self.dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        """Unknowns per axis of the finest grid."""
        return self.levels[0].op.shape

    @property
    def op(self) -> StencilOperator:
        """The finest-grid operator (in the hierarchy's precision)."""
        return self.levels[0].op

    @staticmethod
    def _colors(op: StencilOperator) -> tuple[torch.Tensor, torch.Tensor]:
        grids = torch.meshgrid(
            *[torch.arange(n, device=op.diag.device) for n in op.shape], indexing="ij"
        )
        parity = sum(grids) % 2
        red = (parity == 0).to(op.diag.dtype)
        black = 1.0 - red
        if op.active is not None:
            red, black = red * op.active, black * op.active
        return red / op.diag, black / op.diag

    @staticmethod
    def _dense_pinv(op: StencilOperator) -> torch.Tensor:
        shape = op.shape
        n = math.prod(shape)
        b = op.diag.shape[0]
        eye = torch.eye(n, dtype=op.diag.dtype, device=op.diag.device)
        cols = []
        for j in range(n):
            e = eye[j].expand(b, n).reshape(b, *shape)
            cols.append(op.apply(e).reshape(b, n))
        mat = torch.stack(cols, dim=-1)
        mat = 0.5 * (mat + mat.transpose(-1, -2))
        return torch.linalg.pinv(mat, hermitian=True, rtol=1e-10)

    def _smooth(self, level: _Level, u: torch.Tensor, b: torch.Tensor, sweeps: int, forward: bool):
        op = level.op
        first, second = level.colors if forward else level.colors[::-1]
        for _ in range(sweeps):
            u.addcmul_(first, op.residual(b, u))
            u.addcmul_(second, op.residual(b, u))
        return u

    def vcycle(self, b: torch.Tensor, level: int = 0) -> torch.Tensor:
        """One V-cycle from a zero initial guess: an approximation of ``A^-1 b``.

        Parameters
        ----------
        b : Tensor, shape (B, *shape)
            Right-hand side on grid ``level`` (cast to the hierarchy's dtype;
            the result has the dtype of ``b``).
        """
        out_dtype = b.dtype
        b = b.to(self.dtype)
        lev = self.levels[level]
        op = lev.op
        if lev.to_coarse is None:
            bf = b.reshape(b.shape[0], -1)
            x = torch.stack([self._coarse_inverse[i] @ bf[i] for i in range(b.shape[0])])
            return op.mask(x.view_as(b)).to(out_dtype)
        if self.pre > 0:
            u = lev.colors[0] * b  # first half-sweep from u = 0
            u.addcmul_(lev.colors[1], op.residual(b, u))
            u = self._smooth(lev, u, b, self.pre - 1, True)
        else:
            u = torch.zeros_like(b)
        e = self.vcycle(restrict(op.residual(b, u), lev.to_coarse), level + 1)
        u.add_(op.mask(prolong(e, lev.to_coarse)))
        return self._smooth(lev, u, b, self.post, False).to(out_dtype)


# --------------------------------------------------------------------------- Krylov
_DOT_CHUNK = 2048


def _dot(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample dot products, shape (B,), in two reductions for the whole batch.

    The products are summed in blocks of ``_DOT_CHUNK`` entries, then the block
    sums, each reduction over the last axis of a tensor with several rows.
    torch reduces each such row on one thread in a fixed order, so a sample's
    result is the same bit for bit whatever the batch it is solved in and the
    thread count; and the whole batch costs two parallel regions, not ``B``
    (each region waits for every thread: costly when a core is busy).
    """
    prod = (x * y).reshape(x.shape[0], -1)
    pad = -prod.shape[1] % _DOT_CHUNK
    if pad:
        prod = torch.nn.functional.pad(prod, (0, pad))
    blocks = prod.view(prod.shape[0], -1, _DOT_CHUNK).sum(dim=-1)
    if blocks.shape[1] == 1:
        return blocks[:, 0]
    return blocks.sum(dim=-1)


def _bview(s: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return s.view(-1, *([1] * (like.ndim - 1)))


def _project(op: StencilOperator, v: torch.Tensor) -> torch.Tensor:
    """Remove the constant (null-space) component when the problem is singular."""
    if not op.singular:
        return v
    mean = _dot(v, torch.ones_like(v)) / v[0].numel()
    return v - mean.view(-1, *([1] * (v.ndim - 1)))


def mg_pcg(
    mg: Multigrid,
    b: torch.Tensor,
    *,
    op: StencilOperator | None = None,
    x0: torch.Tensor | None = None,
    tol: float = 1e-8,
    maxiter: int = 200,
) -> SolveResult:
    """Conjugate gradients preconditioned by one V-cycle, batched over samples.

    The flexible (Polak-Ribiere) form of ``beta`` keeps the iteration robust
    when the V-cycle runs in lower precision than the Krylov vectors.

    Parameters
    ----------
    mg : Multigrid
        Hierarchy used as preconditioner.
    op : StencilOperator, optional
        The operator ``A`` to solve with (e.g. a float64 copy of a float32
        hierarchy's finest operator); default ``mg.op``.
    b : Tensor, shape (B, *shape)
        Right-hand sides (in the operator's volume scaling). For singular
        problems (no Dirichlet axis) the constant component is removed.
    x0 : Tensor, optional
        Initial guess; default zero.
    tol : float
        Stop a sample once ``||b - A x||_2 <= tol ||b||_2``.
    maxiter : int
        Most iterations.

    Returns
    -------
    SolveResult
    """
    op = mg.op if op is None else op
    b = _project(op, op.mask(b))
    x = torch.zeros_like(b) if x0 is None else op.mask(x0.clone())
    r = b - op.apply(x) if x0 is not None else b.clone()
    bnorm = torch.sqrt(_dot(b, b))
    safe = torch.where(bnorm > 0, bnorm, torch.ones_like(bnorm))
    rel = torch.sqrt(_dot(r, r)) / safe
    done = (rel <= tol) | (bnorm == 0)
    history = [rel]
    iters = torch.zeros_like(bnorm, dtype=torch.long)
    z = _project(op, mg.vcycle(r))
    p = z
    rz = _dot(r, z)
    for _ in range(int(maxiter)):
        if bool(done.all()):
            break
        ap = op.apply(p)
        pap = _dot(p, ap)
        safe_pap = torch.where(pap == 0, torch.ones_like(pap), pap)
        alpha = torch.where(done | (pap == 0), torch.zeros_like(rz), rz / safe_pap)
        x.addcmul_(_bview(alpha, x), p)
        r.addcmul_(_bview(alpha, r), ap, value=-1.0)
        rel = torch.where(done, history[-1], torch.sqrt(_dot(r, r)) / safe)
        iters = iters + (~done).long()
        done = done | (rel <= tol)
        history.append(rel)
        if bool(done.all()):
            break
        z = _project(op, mg.vcycle(r))
        rz_new = _dot(r, z)
        # flexible (Polak-Ribiere) beta: <z, r_new - r_old> = -alpha <z, A p>
        flex = -alpha * _dot(ap, z)
        safe_rz = torch.where(rz == 0, torch.ones_like(rz), rz)
        beta = torch.where(done, torch.zeros_like(rz), flex / safe_rz)
        p = z.addcmul_(_bview(beta, p), p)
        rz = torch.where(done, rz, rz_new)
    if op.singular:
        vol = op.volume.unsqueeze(0)
        x = x - _bview(_dot(x, vol.expand_as(x).contiguous()) / vol.sum(), x)
    return SolveResult(
        x=x, residuals=torch.stack(history, dim=1), iterations=iters, converged=done
    )


def mg_solve(
    mg: Multigrid,
    b: torch.Tensor,
    *,
    op: StencilOperator | None = None,
    x0: torch.Tensor | None = None,
    tol: float = 1e-8,
    maxiter: int = 100,
) -> SolveResult:
    """Stationary multigrid: repeated V-cycles ``x <- x + V(b - A x)``.

    Same interface as :func:`mg_pcg`.
    """
    op = mg.op if op is None else op
    b = _project(op, op.mask(b))
    x = torch.zeros_like(b) if x0 is None else op.mask(x0.clone())
    bnorm = torch.sqrt(_dot(b, b))
    safe = torch.where(bnorm > 0, bnorm, torch.ones_like(bnorm))
    r = b - op.apply(x)
    rel = torch.sqrt(_dot(r, r)) / safe
    done = (rel <= tol) | (bnorm == 0)
    history = [rel]
    iters = torch.zeros_like(bnorm, dtype=torch.long)
    for _ in range(int(maxiter)):
        if bool(done.all()):
            break
        step = _project(op, mg.vcycle(r))
        x = x + _bview((~done).to(x.dtype), x) * step
        r = b - op.apply(x)
        rel = torch.where(done, history[-1], torch.sqrt(_dot(r, r)) / safe)
        iters = iters + (~done).long()
        done = done | (rel <= tol)
        history.append(rel)
    if op.singular:
        vol = op.volume.unsqueeze(0)
        x = x - _bview(_dot(x, vol.expand_as(x).contiguous()) / vol.sum(), x)
    return SolveResult(
        x=x, residuals=torch.stack(history, dim=1), iterations=iters, converged=done
    )


__all__ = [
    "Multigrid",
    "SolveResult",
    "Transfer1D",
    "linear_transfer",
    "mg_pcg",
    "mg_solve",
    "prolong",
    "restrict",
]
