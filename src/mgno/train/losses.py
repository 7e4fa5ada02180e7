"""Relative training losses for fields on regular grids.

Every loss takes ``pred`` and ``target`` of shape ``(B, C, *grid)`` (1-D, 2-D
or 3-D), computes one relative error per sample over all channels and points,
and returns the mean over the batch, a scalar tensor. Averaging per-sample
errors (not summing) makes a data-parallel run with equal local batches agree
with a single-process run on the global batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from mgno.errors import InputError
from mgno.vocab import LOSSES

_TINY = 1e-12


def _check(pred: torch.Tensor, target: torch.Tensor) -> int:
    if pred.shape != target.shape:
        raise InputError(
            f"loss: prediction shape {tuple(pred.shape)} does not match "
            f"target {tuple(target.shape)}"
        )
    if pred.ndim < 3:
        raise InputError(f"loss: expected (B, C, *grid), found shape {tuple(pred.shape)}")
    return pred.ndim - 2


def _full(x: torch.Tensor) -> torch.Tensor:
    """Half-precision tensors (autocast) in float32; float32/float64 unchanged."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _ratio(num2: torch.Tensor, den2: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(num2) / torch.sqrt(den2).clamp_min(_TINY)


def relative_l2(pred: torch.Tensor, target: torch.Tensor, reduce: bool = True) -> torch.Tensor:
    """``||pred - target||_2 / ||target||_2`` per sample; mean over the batch.

    Parameters
    ----------
    pred, target:
        ``(B, C, *grid)``.
    reduce:
        If False, return the ``(B,)`` per-sample errors.
    """
    _check(pred, target)
    diff = _full(pred - target).flatten(1)
    ref = _full(target).flatten(1)
    err = _ratio(diff.pow(2).sum(1), ref.pow(2).sum(1))
    return err.mean() if reduce else err


def fourier_weights(
    grid: Sequence[int], k_max: int | None = 20, device: torch.device | None = None
) -> torch.Tensor:
    """Weights ``1 + |k|^2`` on the full FFT grid, zero where some ``|k_i| >= k_max``.

    ``k`` are integer wavenumbers (the unit domain's ``2 pi`` left out, as in the
    paper's loss). Shape ``(*grid)``.
    """
    ks = [torch.fft.fftfreq(n, d=1.0 / n, device=device) for n in grid]
    mesh = torch.meshgrid(*ks, indexing="ij")
    k2 = sum(k.pow(2) for k in mesh)
    w = 1.0 + k2
    if k_max is not None:
        keep = torch.ones_like(w, dtype=torch.bool)
        for k in mesh:
            keep &= k.abs() < k_max
        w = w * keep
    return w


def relative_h1_fourier(
    pred: torch.Tensor, target: torch.Tensor, k_max: int | None = 20, reduce: bool = True
) -> torch.Tensor:
    """Relative H1 error measured in Fourier space (the paper's Darcy loss).

    ``sum_k (1 + |k|^2) |F(e)_k|^2`` over the modes with every ``|k_i| < k_max``,
    relative to the same sum for the target; square root. The FFT treats the
    data as periodic, so on non-periodic data the boundary jump counts as a
    steep gradient: use :func:`relative_h1_fd` there when that matters.
    """
    dim = _check(pred, target)
    axes = tuple(range(2, 2 + dim))
    w = fourier_weights(pred.shape[2:], k_max, device=pred.device)
    fe = torch.fft.fftn(_full(pred - target), dim=axes)
    ft = torch.fft.fftn(_full(target), dim=axes)
    num = (w * fe.abs().pow(2)).flatten(1).sum(1)
    den = (w * ft.abs().pow(2)).flatten(1).sum(1)
    err = _ratio(num, den)
    return err.mean() if reduce else err


def _grad_sq(x: torch.Tensor, spacing: Sequence[float]) -> torch.Tensor:
    """Sum over axes of squared finite-difference derivatives, ``(B, C, *grid)``.

    Second-order central differences inside, first-order one-sided at the two
    ends of each axis (``torch.gradient``); valid without periodicity.
    """
    dim = x.ndim - 2
    total = torch.zeros_like(x)
    for axis in range(dim):
        if x.shape[2 + axis] < 2:
            continue
        (g,) = torch.gradient(x, spacing=(float(spacing[axis]),), dim=2 + axis, edge_order=1)
        total = total + g.pow(2)
    return total


def relative_h1_fd(
    pred: torch.Tensor,
    target: torch.Tensor,
    spacing: Sequence[float] | None = None,
    reduce: bool = True,
) -> torch.Tensor:
    """Relative H1 error with finite-difference gradients (valid on non-periodic data).

    ``sqrt(||e||^2 + ||grad e||^2) / sqrt(||y||^2 + ||grad y||^2)`` with the
    node spacing of each axis (default: ``1 / (n - 1)``, the unit interval with
    both ends stored).
    """
    dim = _check(pred, target)
    if spacing is None:
        spacing = [1.0 / max(n - 1, 1) for n in pred.shape[2:]]
    if len(spacing) != dim:
        raise InputError(f"loss: spacing has {len(spacing)} entries, expected {dim}")
    e = _full(pred - target)
    y = _full(target)
    num = (e.pow(2) + _grad_sq(e, spacing)).flatten(1).sum(1)
    den = (y.pow(2) + _grad_sq(y, spacing)).flatten(1).sum(1)
    err = _ratio(num, den)
    return err.mean() if reduce else err


def get_loss(
    name: str, *, spacing: Sequence[float] | None = None, k_max: int | None = 20
) -> Callable:
    """The loss function ``(pred, target) -> scalar`` called ``name`` (one of :data:`LOSSES`)."""
    if name == "rel_l2":
        return relative_l2
    if name == "rel_h1_fourier":
        return lambda p, t: relative_h1_fourier(p, t, k_max=k_max)
    if name == "rel_h1_fd":
        return lambda p, t: relative_h1_fd(p, t, spacing=spacing)
    raise InputError(f"loss: found {name!r}, expected one of {', '.join(LOSSES)}")
