"""A network with its normalisers, stepping steady maps and autoregressive rollouts.

:class:`Predictor` is the one module the trainer optimises (and wraps in
DistributedDataParallel): it encodes the input, runs the network and decodes
the output, so every loss and metric is measured in physical units. For
time-dependent data it rolls a window of frames forward inside a single
``forward`` call, which keeps DDP to one forward per backward.

On a grid other than the training grid it follows a resolution strategy of
:mod:`mgno.nn.resolution`: ``"resample"`` (default) interpolates the input to
the training grid, predicts there (normalisers included) and interpolates
back; ``"multilevel"`` and ``"native"`` run the network on the new grid, with
point-wise normaliser statistics interpolated to it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mgno.data.normalize import GaussianNormalizer
from mgno.train.task import rolls_out


class Predictor(nn.Module):
    """``decode(model(encode(x)))``, once (steady) or rolled out (trajectories).

    Parameters
    ----------
    model:
        The network, ``(B, C_in, *grid) -> (B, C_out, *grid)``.
    norm_in, norm_out:
        Normalisers of the inputs and the outputs. For trajectories they are
        fitted on single frames ``(C, *grid)`` and applied to every frame.
    kind:
        ``"steady"`` or ``"trajectory"``.
    grid, boundary:
        Training grid and boundary condition per axis (for other grids).
    strategy:
        ``"resample"``, ``"multilevel"`` or ``"native"`` on other grids.
    """

    def __init__(
        self,
        model: nn.Module,
        norm_in: GaussianNormalizer,
        norm_out: GaussianNormalizer,
        kind: str = "steady",
        grid: Sequence[int] | None = None,
        boundary: Sequence[str] | None = None,
        strategy: str = "resample",
    ) -> None:
        super().__init__()
        self.rollout = rolls_out(kind)
        self.model = model
        self.norm_in = norm_in
        self.norm_out = norm_out
        self.kind = kind
        self.grid = None if grid is None else tuple(int(n) for n in grid)
        self.boundary = None if boundary is None else list(boundary)
        self.strategy = strategy

    # -------------------------------------------------------------- one application
    def _on_training_grid(self, x: torch.Tensor) -> torch.Tensor:
        if not self.rollout:
            return self.norm_out.decode(self.model(self.norm_in.encode(x)))
        z = self.norm_in.encode(x).flatten(1, 2)
        return self.norm_out.decode(self.model(z))

    def _other_grid(self, x: torch.Tensor, grid: tuple[int, ...]) -> torch.Tensor:
        from mgno.nn.resolution import apply_on_grid, check_strategy, resample

        check_strategy(self.strategy)
        lead = x.shape[: x.ndim - len(grid)]
        flat = x.reshape(lead[0], -1, *grid)
        if self.strategy == "resample":
            y = self._on_training_grid(
                resample(flat, self.grid, self.boundary).reshape(*lead, *self.grid)
            )
            return resample(y, grid, self.boundary)
        n_in = _on_grid(self.norm_in, grid, self.boundary)
        n_out = _on_grid(self.norm_out, grid, self.boundary)
        z = n_in.encode(x)
        if self.rollout:
            z = z.flatten(1, 2)
        return n_out.decode(apply_on_grid(self.model, z, self.strategy))

    def step(self, x: torch.Tensor) -> torch.Tensor:
        """One application. Steady: ``(B, C_in, *grid) -> (B, C_out, *grid)``.

        Trajectory: window ``(B, T_in, C, *grid)`` -> next frame ``(B, C, *grid)``.
        """
        if self.grid is not None:
            grid = tuple(x.shape[x.ndim - len(self.grid) :])
            if grid != self.grid:
                return self._other_grid(x, grid)
        return self._on_training_grid(x)

    def forward(self, x: torch.Tensor, steps: int = 1) -> torch.Tensor:
        """Steady: as :meth:`step`. Trajectory: roll ``steps`` frames forward.

        Parameters
        ----------
        x:
            Steady ``(B, C_in, *grid)``; trajectory window ``(B, T_in, C, *grid)``.
        steps:
            Frames to predict autoregressively (trajectories only): each new
            frame enters the window and the oldest leaves it.

        Returns
        -------
        torch.Tensor
            Steady ``(B, C_out, *grid)``; trajectory ``(B, steps, C, *grid)``.
        """
        if not self.rollout:
            return self.step(x)
        window = x
        frames = []
        for _ in range(steps):
            nxt = self.step(window).to(x.dtype)
            frames.append(nxt)
            window = torch.cat([window[:, 1:], nxt[:, None]], dim=1)
        return torch.stack(frames, dim=1)


def _on_grid(
    norm: GaussianNormalizer, grid: tuple[int, ...], boundary: Sequence[str] | None
) -> GaussianNormalizer:
    """A point-wise normaliser with its statistics interpolated to ``grid``."""
    if norm.kind != "pointwise" or tuple(norm.mean.shape[1:]) == grid:
        return norm
    from mgno.nn.resolution import resample

    mean = resample(norm.mean[None], grid, boundary)[0]
    std = resample(norm.std[None], grid, boundary)[0]
    return GaussianNormalizer("pointwise", mean, std, eps=norm.eps).to(norm.mean.device)
