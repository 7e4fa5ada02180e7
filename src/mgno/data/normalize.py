"""Gaussian normalisers for inputs and outputs of a neural operator.

A normaliser maps a field ``x`` to ``(x - mean) / (std + eps)`` and back. Its
statistics are plain tensors, so they are saved with safetensors next to the
weights and never pickled.

Kinds
-----
``"pointwise"``
    mean and std per channel and grid point, over the samples (the FNO
    convention); statistics have shape ``(C, *grid)``.
``"scalar"``
    one mean and std per channel over samples and points; shape
    ``(C, 1, ..., 1)``.
``"none"``
    the identity.
"""

from __future__ import annotations

import torch

from mgno.errors import InputError

KINDS = ("pointwise", "scalar", "none")


class GaussianNormalizer(torch.nn.Module):
    """Normalise channels-first fields with Gaussian statistics.

    Parameters
    ----------
    kind:
        ``"pointwise"``, ``"scalar"`` or ``"none"``.
    mean, std:
        Statistics, broadcastable to one sample ``(C, *grid)``; ``None`` for
        ``kind="none"``.
    eps:
        Added to ``std`` so constant channels do not divide by zero.
    """

    def __init__(
        self,
        kind: str = "none",
        mean: torch.Tensor | None = None,
        std: torch.Tensor | None = None,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        if kind not in KINDS:
            raise InputError(f"normalizer kind: found {kind!r}, expected one of {', '.join(KINDS)}")
        self.kind = kind
        self.eps = float(eps)
        if kind == "none":
            mean = torch.zeros(1)
            std = torch.ones(1) - self.eps
        if mean is None or std is None:
            raise InputError(f"normalizer {kind!r}: mean and std are required")
        self.register_buffer("mean", mean.detach().clone().to(torch.float32))
        self.register_buffer("std", std.detach().clone().to(torch.float32))

    @classmethod
    def fit(cls, x: torch.Tensor, kind: str, eps: float = 1e-5) -> GaussianNormalizer:
        """Fit statistics on samples ``x`` of shape ``(N, C, *grid)``.

        Statistics are computed in float64 for reproducibility across batch
        splits, then stored in float32.
        """
        if kind not in KINDS:
            raise InputError(f"normalizer kind: found {kind!r}, expected one of {', '.join(KINDS)}")
        if kind == "none":
            return cls("none", eps=eps)
        if x.ndim < 3 or x.shape[0] < 1:
            raise InputError(
                f"normalizer: expected samples (N, C, *grid), found shape {tuple(x.shape)}"
            )
        xd = x.detach().to(torch.float64)
        if kind == "pointwise":
            mean = xd.mean(dim=0)
            std = xd.std(dim=0, unbiased=False)
        else:
            dims = [0] + list(range(2, xd.ndim))
            mean = xd.mean(dim=dims, keepdim=True)[0]
            std = xd.std(dim=dims, keepdim=True, unbiased=False)[0]
        return cls(kind, mean.float(), std.float(), eps=eps)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, *grid) -> (B, C, *grid)``: subtract the mean, divide by the std."""
        if self.kind == "none":
            return x
        return (x - self.mean) / (self.std + self.eps)

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`encode`."""
        if self.kind == "none":
            return x
        return x * (self.std + self.eps) + self.mean

    def tensors(self, prefix: str) -> dict[str, torch.Tensor]:
        """The statistics as a flat dict ``{prefix.mean, prefix.std}`` for safetensors."""
        return {
            f"{prefix}.mean": self.mean.detach().cpu().contiguous(),
            f"{prefix}.std": self.std.detach().cpu().contiguous(),
        }

    def meta(self) -> dict:
        """JSON-serialisable description (the kind and eps)."""
        return {"kind": self.kind, "eps": self.eps}

    @classmethod
    def from_tensors(
        cls, meta: dict, tensors: dict[str, torch.Tensor], prefix: str
    ) -> GaussianNormalizer:
        """Rebuild from :meth:`meta` and :meth:`tensors` output."""
        kind = meta.get("kind", "none")
        if kind == "none":
            return cls("none", eps=float(meta.get("eps", 1e-5)))
        try:
            mean, std = tensors[f"{prefix}.mean"], tensors[f"{prefix}.std"]
        except KeyError as err:
            raise InputError(f"normalizer: missing tensor {err.args[0]!r}") from None
        return cls(kind, mean, std, eps=float(meta.get("eps", 1e-5)))

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, stats={tuple(self.mean.shape)}"
