"""Evaluation metrics for predicted fields.

All functions take ``pred`` and ``target`` of shape ``(B, C, *grid)`` and
return per-sample values of shape ``(B,)`` so they can be accumulated over
batches and averaged exactly; :func:`field_metrics` gathers them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mgno.train.losses import relative_h1_fd, relative_h1_fourier, relative_l2

#: Frequency bands of the spectral RMSE, in integer wavenumbers |k| (PDEBench's split).
LOW_MAX = 4
MID_MAX = 12


def nrmse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """RMSE of each channel over its RMS, averaged over channels; ``(B,)``."""
    e = (pred - target).flatten(2).pow(2).mean(2).sqrt()
    r = target.flatten(2).pow(2).mean(2).sqrt().clamp_min(1e-12)
    return (e / r).mean(1)


def rmse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Root-mean-square error over channels and points; ``(B,)``."""
    return (pred - target).flatten(1).pow(2).mean(1).sqrt()


def max_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Largest absolute error; ``(B,)``."""
    return (pred - target).flatten(1).abs().amax(1)


def boundary_mask(grid: Sequence[int], device: torch.device | None = None) -> torch.Tensor:
    """Boolean mask ``(*grid)``, True on nodes with an index 0 or n-1 along some axis."""
    mask = torch.zeros(tuple(grid), dtype=torch.bool, device=device)
    for axis, n in enumerate(grid):
        idx = [slice(None)] * len(grid)
        idx[axis] = 0
        mask[tuple(idx)] = True
        idx[axis] = n - 1
        mask[tuple(idx)] = True
    return mask


def boundary_rmse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """RMSE over the boundary nodes only; ``(B,)``."""
    mask = boundary_mask(pred.shape[2:], device=pred.device)
    e = (pred - target)[..., mask]  # (B, C, n_boundary)
    return e.flatten(1).pow(2).mean(1).sqrt()


def spectral_rmse(pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """RMSE split into low, mid and high wavenumber bands; each ``(B,)``.

    With ``E = fftn(e)`` over the grid (``N`` points), Parseval gives
    ``mean(e^2) = sum_k |E_k|^2 / N^2``; each band keeps its share of that sum,
    so ``low^2 + mid^2 + high^2 = rmse^2``. Bands: ``|k| <= 4``, ``4 < |k| <= 12``,
    ``|k| > 12`` (Euclidean norm of the integer wavenumber).
    """
    grid = pred.shape[2:]
    dim = len(grid)
    n_points = 1
    for n in grid:
        n_points *= n
    ks = [torch.fft.fftfreq(n, d=1.0 / n, device=pred.device) for n in grid]
    kk = sum(k.pow(2) for k in torch.meshgrid(*ks, indexing="ij")).sqrt()
    fe = torch.fft.fftn((pred - target).double(), dim=tuple(range(2, 2 + dim)))
    power = fe.abs().pow(2) / (n_points**2 * pred.shape[1])  # (B, C, *grid)
    out = {}
    for name, band in (
        ("low", kk <= LOW_MAX),
        ("mid", (kk > LOW_MAX) & (kk <= MID_MAX)),
        ("high", kk > MID_MAX),
    ):
        out[name] = (power * band).flatten(1).sum(1).sqrt().to(pred.dtype)
    return out


def field_metrics(
    pred: torch.Tensor, target: torch.Tensor, spacing: Sequence[float] | None = None
) -> dict[str, torch.Tensor]:
    """Every per-sample metric of one batch: a dict of ``(B,)`` tensors.

    Keys: ``rel_l2``, ``rel_h1`` (finite-difference H1), ``rel_h1_fourier``,
    ``nrmse``, ``rmse``, ``max_error``, ``boundary_rmse``, ``rmse_low``,
    ``rmse_mid``, ``rmse_high``.
    """
    pred = pred.float()
    target = target.float()
    out = {
        "rel_l2": relative_l2(pred, target, reduce=False),
        "rel_h1": relative_h1_fd(pred, target, spacing=spacing, reduce=False),
        "rel_h1_fourier": relative_h1_fourier(pred, target, k_max=None, reduce=False),
        "nrmse": nrmse(pred, target),
        "rmse": rmse(pred, target),
        "max_error": max_error(pred, target),
        "boundary_rmse": boundary_rmse(pred, target),
    }
    for band, value in spectral_rmse(pred, target).items():
        out[f"rmse_{band}"] = value
    return out


class MetricAccumulator:
    """Accumulate per-sample metrics over batches.

    ``max_error`` keeps the maximum, every other metric the mean over samples.
    """

    def __init__(self) -> None:
        self._sums: dict[str, float] = {}
        self._count = 0

    def update(self, values: dict[str, torch.Tensor]) -> None:
        """Add the ``(B,)`` tensors of one batch."""
        n = None
        for key, v in values.items():
            v = v.detach().double().cpu()
            n = v.numel()
            if key == "max_error":
                self._sums[key] = max(self._sums.get(key, 0.0), float(v.max()))
            else:
                self._sums[key] = self._sums.get(key, 0.0) + float(v.sum())
        self._count += n or 0

    def result(self) -> dict[str, float]:
        """Means over all samples seen (max for ``max_error``)."""
        if self._count == 0:
            return {}
        return {k: (v if k == "max_error" else v / self._count) for k, v in self._sums.items()}
