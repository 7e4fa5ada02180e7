"""Gaussian noise on the input frames of training batches (``--input-noise SIGMA``).

The noise of a sample has standard deviation ``sigma`` times the per-channel
standard deviation of the training frames and is drawn from a generator
seeded by ``(seed, epoch, sample index)``: it is the same whatever the batch
size, the number of processes or where a run was stopped and resumed, and it
needs no state in the checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mgno.data.normalize import GaussianNormalizer


def sample_generator(seed: int, epoch: int, sample: int) -> torch.Generator:
    """A CPU generator seeded from ``(seed, epoch, sample)`` (numpy's SeedSequence mixing)."""
    state = np.random.SeedSequence([int(seed), int(epoch), int(sample)]).generate_state(
        1, dtype=np.uint64
    )
    return torch.Generator().manual_seed(int(state[0]))


@dataclass(frozen=True)
class InputNoise:
    """Noise added to the input frames of a training batch.

    Attributes
    ----------
    sigma:
        Multiple of the frames' standard deviation (``> 0``).
    std:
        Per-channel standard deviation of the training frames, shape ``(C,)``.
    seed:
        The run's seed.
    """

    sigma: float
    std: torch.Tensor
    seed: int

    @classmethod
    def fit(cls, frames: torch.Tensor, sigma: float, seed: int) -> InputNoise | None:
        """The noise of a run from its training frames ``(N, C, *grid)``; None when ``sigma`` is 0.

        The standard deviation is the ``scalar`` normaliser's (float64, over
        frames and nodes, per channel), whatever normaliser the run uses.
        """
        if sigma == 0:
            return None
        std = GaussianNormalizer.fit(frames, "scalar").std.reshape(-1)
        return cls(float(sigma), std, int(seed))

    def __call__(self, x: torch.Tensor, idx: torch.Tensor, epoch: int) -> torch.Tensor:
        """``x`` plus the noise of samples ``idx`` in ``epoch``.

        Parameters
        ----------
        x:
            Input windows ``(B, T_in, C, *grid)`` (on any device).
        idx:
            The samples' indices in the training view, ``(B,)``.
        epoch:
            The epoch (0-based).

        Returns
        -------
        torch.Tensor
            ``(B, T_in, C, *grid)``, same dtype and device as ``x``.
        """
        shape = tuple(x.shape[1:])
        draws = [torch.randn(shape, generator=sample_generator(self.seed, epoch, int(i)))
                 for i in idx.reshape(-1)]
        scale = (self.sigma * self.std).reshape(1, 1, -1, *([1] * (x.ndim - 3)))
        noise = torch.stack(draws) * scale
        return x + noise.to(device=x.device, dtype=x.dtype)
