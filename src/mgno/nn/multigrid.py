"""The multigrid linear operator ``W`` of MgNO.

``W`` maps ``c_in`` input channels (the right-hand side ``f``) to ``c_out``
output channels (the solution ``u``) on a 1-D, 2-D or 3-D node-based grid by one
multi-channel multigrid cycle with no nonlinearity inside it::

    level 1 (finest):  u = S f, then u <- u + S (f - A u)  (pre-smoothing)
    restriction:       u^{l+1} = Pi u^l,
                       f^{l+1} = R f^l             (restrict="f", the authors' code)
                              or R (f^l - A u^l)   (restrict="residual", the paper)
    coarse levels:     u <- u + S (f - A u)  repeated pre_smooth[l] times
    prolongation:      u^l <- u^l + P^T u^{l+1}, optional normalisation,
                       then post_smooth[l] smoothing steps (a V-cycle; with no
                       post-smoothing it is the paper's backslash cycle)

``A``, ``S``, ``R`` and ``Pi`` are learnable stencils, ``P^T`` a learnable
stride-2 transposed convolution; every one has its own weights. Boundary
conditions enter through the ghost nodes of every convolution. Without biases
and normalisation the operator is exactly linear in ``f``.

Every level may have its own width (``level_channels``, the authors' Helmholtz
network grows 1:2:3:4:5 from the finest level down): ``Pi`` and ``R`` then
widen as they coarsen and ``P^T`` narrows as it refines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from mgno.errors import InputError
from mgno.nn.boundary import normalize_boundary
from mgno.nn.stencil import Prolongation, StencilConv, coarse_size
from mgno.vocab import MGNO_NORM_PLACES, MGNO_NORMS

RESTRICTIONS = ("f", "residual")
#: The normalisations after each prolongation (the words of :data:`mgno.vocab.MGNO_NORMS`).
NORMS = MGNO_NORMS
#: The normalisation whose affine weights are tied to one grid (one weight per node).
GRID_TIED_NORM = "layer-grid"


def level_shapes(grid: Sequence[int], levels: int) -> list[tuple[int, ...]]:
    """Grid shape of every level, finest first (each axis ``n -> ceil(n / 2)``)."""
    shapes = [tuple(grid)]  # no int(): export keeps symbolic sizes symbolic
    for _ in range(levels - 1):
        shapes.append(tuple(coarse_size(n) for n in shapes[-1]))
    return shapes


def derive_levels(grid: Sequence[int], min_coarse: int = 4, max_levels: int | None = None) -> int:
    """Largest number of levels whose coarsest grid keeps ``min_coarse`` nodes per axis.

    Examples: 64 -> 5 levels (64, 32, 16, 8, 4); 211 -> 7 (..., 7, 4); 63 -> 5.
    """
    if min_coarse < 2:
        raise ValueError(f"min_coarse: expected an integer >= 2, got {min_coarse}")
    levels = 1
    shape = tuple(grid)
    while min(coarse_size(n) for n in shape) >= min_coarse:
        shape = tuple(coarse_size(n) for n in shape)
        levels += 1
        if max_levels is not None and levels >= max_levels:
            break
    return levels


def level_widths(
    channels: int, level_channels: Sequence[int] | None, levels: int
) -> tuple[int, ...]:
    """Width of every level, finest first, of a tensor with ``channels`` on the finest.

    ``level_channels`` gives the widths of a ``level_channels[0]``-wide tensor;
    other widths scale in proportion, rounded up (the authors' Helmholtz
    network: ``1 -> 1, 2, 3, 4, 5`` beside ``24 -> 24, 48, 72, 96, 120``).
    ``None`` keeps ``channels`` on every level.

    Raises
    ------
    ValueError
        Unless ``level_channels`` has one positive width per level.
    """
    if level_channels is None:
        return (int(channels),) * levels
    widths = [int(w) for w in level_channels]
    if len(widths) != levels or min(widths) < 1:
        raise ValueError(
            f"level_channels: expected {levels} positive widths (one per level), got {widths}"
        )
    return tuple(-(-int(channels) * w // widths[0]) for w in widths)


def smoothing_steps(spec: int | Sequence[int] | None, levels: int, name: str) -> tuple[int, ...]:
    """Expand a smoothing specification to one count per level.

    ``None`` gives the paper's pre-smoothing: one step per level and two on the
    coarsest; an integer gives that many on every level; a sequence must have one
    entry per level.
    """
    if spec is None:
        counts = [1] * levels
        counts[-1] = 2 if levels > 1 else 1
    elif isinstance(spec, int):
        counts = [spec] * levels
    else:
        counts = [int(s) for s in spec]
        if len(counts) != levels:
            raise ValueError(
                f"{name}: expected one smoothing count per level ({levels}), "
                f"got {len(counts)}: {list(spec)}"
            )
    if any(c < 0 for c in counts):
        raise ValueError(f"{name}: smoothing counts must be >= 0, got {counts}")
    return tuple(counts)


class Smoother(nn.Module):
    """One smoothing step ``u <- u + S (f - A u)``; with no ``u`` yet, ``u = S f``.

    ``stencil`` holds the keyword arguments of both :class:`StencilConv`
    (``dim``, ``kernel_size``, ``boundary``, ``bias``, ``channels_last``).

    Shapes: u (batch, c_u, *grid), f (batch, c_f, *grid) -> (batch, c_u, *grid).
    """

    def __init__(self, c_f: int, c_u: int, *, first: bool = False, **stencil: Any) -> None:
        super().__init__()
        self.A = None if first else StencilConv(c_u, c_f, **stencil)
        self.S = StencilConv(c_f, c_u, **stencil)

    def forward(self, u: torch.Tensor | None, f: torch.Tensor) -> torch.Tensor:
        if self.A is None:
            return self.S(f)
        return self.S(f - self.A(u)).add_(u)  # in place on a fresh convolution output


def _make_norm(kind: str, channels: int, shape: Sequence[int] | None) -> nn.Module:
    """The norm after a prolongation onto a level of ``shape`` (needed by ``layer-grid``)."""
    if kind == "group":
        return nn.GroupNorm(1, channels)  # over channels and space: any grid size
    if kind == "instance":
        return nn.GroupNorm(channels, channels)
    if kind == GRID_TIED_NORM:
        # the authors' LayerNorm([channels, *level grid]): one affine weight and bias
        # per channel and node, so 2 * channels * prod(shape) parameters
        return nn.LayerNorm((channels, *(int(n) for n in shape)))
    return nn.Identity()


def format_grid(grid: Sequence[int]) -> str:
    """``64x64``: a grid as the messages write it."""
    return "x".join(str(int(n)) for n in grid)


def check_tied_grid(trained: Sequence[int], given: Sequence[int]) -> None:
    """Refuse a grid other than the one a ``layer-grid`` norm was built for, in one line.

    Raises
    ------
    InputError
        Naming the training grid and the given grid.
    """
    trained, given = tuple(int(n) for n in trained), tuple(int(n) for n in given)
    if trained != given:
        raise InputError(
            f"grid {format_grid(given)}: the network normalises with norm 'layer-grid', whose "
            f"weights are tied to its training grid {format_grid(trained)}; expected inputs on "
            f"{format_grid(trained)} (resolution strategies 'resample' and 'multilevel' run "
            "the network there)"
        )


class MultigridLevel(nn.Module):
    """Parameters of one level: pre-smoothers, restriction, prolongation, post-smoothers.

    ``c_f`` and ``c_u`` are this level's widths of ``f`` and ``u``; ``coarser``
    those of the next coarser level, ``None`` on the coarsest (which has no
    restriction or prolongation). ``norm`` (a word of :data:`NORMS`, or
    ``"none"``) follows the prolongation onto this level.
    """

    def __init__(
        self,
        c_f: int,
        c_u: int,
        *,
        coarser: tuple[int, int] | None,
        dim: int,
        boundary: Sequence[str],
        kernel_size: int,
        prolongation_kernel_size: int,
        pre: int,
        post: int,
        finest: bool,
        restrict: str,
        bias: bool,
        norm: str,
        channels_last: bool,
        shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        kw = dict(dim=dim, boundary=boundary, bias=bias, channels_last=channels_last)
        kw_stencil = dict(kw, kernel_size=kernel_size)
        self.pre = nn.ModuleList(
            Smoother(c_f, c_u, first=finest and i == 0, **kw_stencil) for i in range(pre)
        )
        self.post = nn.ModuleList()
        self.Pi = self.R = self.A_residual = self.prolong = None
        self.norm: nn.Module = nn.Identity()
        if coarser is not None:
            f_next, u_next = coarser
            self.Pi = StencilConv(c_u, u_next, stride=2, **kw_stencil)
            self.R = StencilConv(c_f, f_next, stride=2, **kw_stencil)
            if restrict == "residual":
                self.A_residual = StencilConv(c_u, c_f, **kw_stencil)
            self.prolong = Prolongation(u_next, c_u, kernel_size=prolongation_kernel_size, **kw)
            self.norm = _make_norm(norm, c_u, shape)
            self.post = nn.ModuleList(Smoother(c_f, c_u, **kw_stencil) for _ in range(post))


def _check_sizes(in_channels: int, out_channels: int, dim: int, levels: int,
                 restrict: str) -> None:
    """Raise ValueError on sizes or a restriction :class:`MultigridOperator` cannot build."""
    if dim not in (1, 2, 3):
        raise ValueError(f"dim: expected 1, 2 or 3 spatial axes, got {dim}")
    if in_channels < 1 or out_channels < 1:
        raise ValueError(
            f"channels: expected positive counts, got in_channels={in_channels}, "
            f"out_channels={out_channels}"
        )
    if int(levels) != levels or levels < 1:
        raise ValueError(f"levels: expected an integer >= 1, got {levels}")
    if restrict not in RESTRICTIONS:
        raise ValueError(f"restrict: expected one of {RESTRICTIONS}, got {restrict!r}")


def _smoothing_counts(pre_smooth: int | Sequence[int] | None, post_smooth: int | Sequence[int],
                      levels: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Pre- and post-smoothing steps per level; ValueError unless the finest has a pre step."""
    pre = smoothing_steps(pre_smooth, levels, "pre_smooth")
    post = smoothing_steps(post_smooth, levels, "post_smooth")
    if pre[0] < 1:
        raise ValueError(f"pre_smooth: the finest level needs at least one step, got {pre}")
    return pre, post


class MultigridOperator(nn.Module):
    """Multi-channel multigrid cycle: the linear operator ``W`` of an MgNO layer.

    Parameters
    ----------
    in_channels, out_channels
        Channels of ``f`` (input) and ``u`` (output).
    dim
        Number of spatial axes: 1, 2 or 3.
    levels
        Number of grid levels including the finest.
    boundary
        ``dirichlet``, ``neumann`` or ``periodic``, one for all axes or one per axis.
    pre_smooth, post_smooth
        Smoothing steps per level (int for every level, or one per level).
        ``pre_smooth=None`` is the paper's: one per level, two on the coarsest.
    restrict
        ``"f"`` restricts the right-hand side itself (the authors' code),
        ``"residual"`` restricts ``f - A u`` (the paper).
    kernel_size
        Odd width of the smoothing and restriction stencils (3 in the paper).
    prolongation_kernel_size
        Width of the transposed-convolution prolongation (4 in the paper; 3 is
        the symmetric node-aligned interpolation stencil).
    bias
        Give every convolution a bias (the operator is then affine, not linear).
    norm
        ``"none"``, ``"group"`` (normalise over channels and space, per-channel
        affine), ``"instance"`` or ``"layer-grid"`` after each prolongation; all
        but ``none`` make the operator nonlinear. ``group`` and ``instance`` work
        on any grid size; ``layer-grid`` is the authors' LayerNorm over
        ``(channels, *level grid)`` with an affine weight and bias per channel
        and node (``2 * out_channels * nodes`` parameters per level but the
        coarsest), tied to ``grid``: another grid is refused in one line.
    norm_at
        ``"prolongation"``: ``norm`` follows each prolongation (above);
        ``"output"``: one ``norm`` on the cycle's output instead (the authors'
        Helmholtz network; ``layer-grid`` then has ``2 * out_channels * nodes``
        parameters on the finest grid only).
    level_channels
        Widths of every level, finest first, of a ``level_channels[0]``-wide
        tensor; ``f`` and ``u`` scale in proportion (see :func:`level_widths`):
        ``R`` and ``Pi`` then change the width as they restrict and ``P^T`` as
        it prolongs. ``None``: ``in_channels`` and ``out_channels`` on every level.
    grid
        The grid the operator is built for; required by ``norm="layer-grid"``
        (ignored otherwise).
    channels_last
        Run every convolution in channels-last layout (2-D and 3-D grids; see
        :class:`~mgno.nn.stencil.StencilConv`); the results agree up to rounding.

    Shapes
    ------
    (batch, in_channels, *grid) -> (batch, out_channels, *grid) for any grid of
    ``dim`` axes, odd or even, whose coarsest level keeps at least 2 nodes per
    axis.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        dim: int = 2,
        levels: int = 4,
        boundary: str | Sequence[str] = "dirichlet",
        pre_smooth: int | Sequence[int] | None = None,
        post_smooth: int | Sequence[int] = 0,
        restrict: str = "f",
        kernel_size: int = 3,
        prolongation_kernel_size: int = 4,
        bias: bool = False,
        norm: str | None = "none",
        norm_at: str = "prolongation",
        level_channels: Sequence[int] | None = None,
        channels_last: bool = False,
        grid: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        _check_sizes(in_channels, out_channels, dim, levels, restrict)
        norm = NORMS.check("none" if norm is None else norm)
        norm_at = MGNO_NORM_PLACES.check(norm_at)
        self.tied_grid = self._tied_grid(norm, grid, dim)
        shapes = level_shapes(self.tied_grid, levels) if self.tied_grid else [None] * levels
        pre, post = _smoothing_counts(pre_smooth, post_smooth, levels)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.dim = dim
        self.num_levels = int(levels)
        self.boundary = normalize_boundary(boundary, dim)
        self.pre_smooth = pre
        self.post_smooth = post
        self.restrict = restrict
        self.min_coarse = max(2, (kernel_size - 1) // 2 + 1)
        self.widths_f = level_widths(in_channels, level_channels, self.num_levels)
        self.widths_u = level_widths(out_channels, level_channels, self.num_levels)
        common = dict(dim=dim, boundary=self.boundary, kernel_size=kernel_size,
                      prolongation_kernel_size=prolongation_kernel_size, restrict=restrict,
                      bias=bias, channels_last=channels_last)
        inner_norm = norm if norm_at == "prolongation" else "none"
        self.levels = nn.ModuleList(
            MultigridLevel(
                self.widths_f[lvl],
                self.widths_u[lvl],
                coarser=(None if lvl == levels - 1
                         else (self.widths_f[lvl + 1], self.widths_u[lvl + 1])),
                pre=pre[lvl],
                post=post[lvl],
                finest=lvl == 0,
                norm=inner_norm,
                shape=shapes[lvl],
                **common,
            )
            for lvl in range(levels)
        )
        outer = norm if norm_at == "output" else "none"
        self.output_norm = _make_norm(outer, out_channels, shapes[0])

    @staticmethod
    def _tied_grid(norm: str, grid: Sequence[int] | None, dim: int) -> tuple[int, ...] | None:
        """The grid a ``layer-grid`` norm ties the operator to (None for other norms)."""
        if norm != GRID_TIED_NORM:
            return None
        if grid is None or len(grid) != dim:
            raise InputError(
                f"norm 'layer-grid': needs the training grid ({dim} sizes) to size its "
                f"weights, got {None if grid is None else list(grid)}"
            )
        return tuple(int(n) for n in grid)

    def check_input(self, f: torch.Tensor) -> None:
        """Raise ValueError unless ``f`` is (batch, in_channels, *grid) with a large enough grid."""
        expected = f"(batch, {self.in_channels}, " + ", ".join(["n"] * self.dim) + ")"
        if f.dim() != self.dim + 2:
            raise ValueError(
                f"input: expected a tensor of shape {expected} ({self.dim} spatial axes), "
                f"got shape {tuple(f.shape)}"
            )
        if f.shape[1] != self.in_channels:
            raise ValueError(
                f"input: expected {self.in_channels} channels in shape {expected}, "
                f"got {f.shape[1]} (shape {tuple(f.shape)})"
            )
        grid = tuple(f.shape[2:])
        if self.tied_grid is not None:
            check_tied_grid(self.tied_grid, grid)
        coarsest = level_shapes(grid, self.num_levels)[-1]
        if min(coarsest) < self.min_coarse:
            usable = max(1, derive_levels(grid, min_coarse=self.min_coarse))
            raise ValueError(
                f"grid {'x'.join(map(str, grid))} is too small for {self.num_levels} levels: "
                f"the coarsest level would be {'x'.join(map(str, coarsest))}, expected at "
                f"least {self.min_coarse} nodes per axis (use levels <= {usable})"
            )

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        self.check_input(f)
        u: torch.Tensor | None = None
        down: list[tuple[torch.Tensor, torch.Tensor]] = []
        last = self.num_levels - 1
        for lvl, level in enumerate(self.levels):
            for smoother in level.pre:
                u = smoother(u, f)
            if lvl < last:
                down.append((u, f))
                if level.A_residual is not None:
                    f = level.R(f - level.A_residual(u))
                else:
                    f = level.R(f)
                u = level.Pi(u)
        for lvl in range(last - 1, -1, -1):
            level = self.levels[lvl]
            u_fine, f = down[lvl]
            u = level.norm(u_fine + level.prolong(u, u_fine.shape[2:]))
            for smoother in level.post:
                u = smoother(u, f)
        return self.output_norm(u)
