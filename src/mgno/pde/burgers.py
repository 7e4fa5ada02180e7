"""1-D viscous Burgers ``u_t + (u^2 / 2)_x = nu u_xx`` on the periodic unit interval.

Fourier pseudo-spectral in space (2/3 dealiasing of ``u^2``) and the
integrating-factor (Lawson) fourth-order Runge-Kutta scheme in time: the
viscous term is integrated exactly, the step is chosen per trajectory from a
CFL bound ``cfl * dx / max|u|``. The grid is ``x_j = j / n``. The initial data
is FNO's: a periodic Gaussian random field ``N(0, 625 (-Laplace + 25 I)^-2)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from mgno.errors import InputError
from mgno.pde.grf import gaussian_random_field


class BurgersSolver:
    """Batched solver on ``n`` periodic points.

    Parameters
    ----------
    n : int
        Grid points.
    nu : float
        Viscosity (> 0).
    cfl : float
        Courant number of the step.
    dtype : torch dtype
    device : torch device, optional
    """

    def __init__(self, n: int, nu: float, *, cfl: float = 0.5,
                 dtype: torch.dtype = torch.float64, device=None) -> None:
        if not (math.isfinite(nu) and nu > 0):
            raise InputError(f"Burgers viscosity nu={nu} is invalid, expected a finite nu > 0")
        self.n, self.nu, self.cfl = int(n), float(nu), float(cfl)
        self.dtype, self.device = dtype, device
        k = torch.fft.rfftfreq(n, d=1.0 / n, dtype=torch.float64)
        cdt = torch.complex64 if dtype == torch.float32 else torch.complex128
        self.ik = (2j * math.pi * k).to(cdt).to(device)
        self.lin = (-nu * (2 * math.pi * k) ** 2).to(torch.float64).to(device)
        self.dealias = (k.abs() <= n // 3).to(dtype).to(device)

    def _nonlinear(self, u_hat: torch.Tensor) -> torch.Tensor:
        u = torch.fft.irfft(u_hat, n=self.n)
        return -0.5 * self.ik * torch.fft.rfft(u * u) * self.dealias

    def evolve(self, u0, times: Sequence[float], *, fixed_dt: float | None = None) -> torch.Tensor:
        """Solutions at ``times``: (B, len(times), n) from ``u0`` (B, n)."""
        u = torch.as_tensor(np.asarray(u0) if not isinstance(u0, torch.Tensor) else u0)
        u = u.to(self.dtype).to(self.device)
        u_hat = torch.fft.rfft(u)
        bsz = u.shape[0]
        out, t_now = [], 0.0
        for t_out in times:
            span = float(t_out) - t_now
            if span < -1e-12:
                raise InputError(f"output times {list(times)} must be increasing and >= 0")
            remaining = torch.full((bsz,), max(span, 0.0), dtype=torch.float64, device=u.device)
            tiny = 1e-9 * max(span, 1.0)
            while bool((remaining > tiny).any()):
                if fixed_dt is None:
                    umax = torch.fft.irfft(u_hat, n=self.n).abs().amax(1).to(torch.float64)
                    dt = self.cfl / self.n / torch.clamp(umax, min=1e-12)
                else:
                    dt = torch.full_like(remaining, float(fixed_dt))
                steps = torch.ceil(remaining / dt - 1e-9).clamp(min=1)
                active = remaining > tiny
                dt = torch.where(active, remaining / steps, torch.zeros_like(dt))
                new = self._lawson_rk4(u_hat, dt)
                u_hat = torch.where(active.view(-1, 1), new, u_hat)
                remaining = torch.where(active, remaining - dt, remaining)
                remaining = torch.where(remaining <= tiny, torch.zeros_like(remaining), remaining)
            t_now = float(t_out)
            out.append(torch.fft.irfft(u_hat, n=self.n))
        return torch.stack(out, dim=1)

    def _lawson_rk4(self, u_hat: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
        h = dt.view(-1, 1)
        e = torch.exp(self.lin * h).to(u_hat.dtype)
        e2 = torch.exp(self.lin * h / 2).to(u_hat.dtype)
        hh = h.to(self.dtype)
        k1 = self._nonlinear(u_hat)
        k2 = self._nonlinear(e2 * (u_hat + 0.5 * hh * k1))
        k3 = self._nonlinear(e2 * u_hat + 0.5 * hh * k2)
        k4 = self._nonlinear(e * u_hat + hh * e2 * k3)
        return e * u_hat + hh / 6.0 * (e * k1 + 2.0 * e2 * (k2 + k3) + k4)


def generate_burgers(
    rngs: Sequence[np.random.Generator], resolution: int, *, params: dict, device=None
) -> dict[str, np.ndarray]:
    """A batch of Burgers trajectories.

    Parameters
    ----------
    rngs : sequence of numpy Generator
        One per trajectory.
    resolution : int
        Stored points (``solve_resolution`` must be a multiple).
    params : dict
        ``nu``, ``T``, ``record_every``, ``solve_resolution``, ``alpha``,
        ``tau``, ``sigma`` (initial GRF), ``cfl``.

    Returns
    -------
    dict
        ``trajectories`` (b, T / record_every + 1, 1, R) and ``times``.
    """
    n_s = int(params["solve_resolution"])
    if n_s < resolution or n_s % resolution:
        raise InputError(
            f"burgers solve_resolution={n_s} is not a multiple of --resolution {resolution}"
        )
    T, every = float(params["T"]), float(params["record_every"])
    n_rec = int(round(T / every))
    if n_rec < 1 or abs(n_rec * every - T) > 1e-9 * max(T, 1.0):
        raise InputError(f"burgers T={T} is not a multiple of record_every={every}")
    times = np.arange(n_rec + 1) * every
    u0 = np.stack([
        gaussian_random_field(1, (n_s,), alpha=float(params["alpha"]), tau=float(params["tau"]),
                              sigma=float(params["sigma"]), basis="fourier", zero_mean=True,
                              rng=rng)[0]
        for rng in rngs
    ])
    solver = BurgersSolver(n_s, float(params["nu"]), cfl=float(params["cfl"]), device=device)
    u = solver.evolve(u0, times[1:])
    u = torch.cat([torch.as_tensor(u0, dtype=u.dtype, device=u.device)[:, None], u], dim=1)
    u = u[:, :, :: n_s // resolution].cpu().numpy()
    if not np.all(np.isfinite(u)):
        raise RuntimeError("burgers solution blew up; lower cfl")
    return {"trajectories": u[:, :, None], "times": times}


__all__ = ["BurgersSolver", "generate_burgers"]
