"""2-D incompressible Navier-Stokes in vorticity form on the unit torus.

    dw/dt + u . grad w = nu Laplace w + f,   u = (d psi/dy, -d psi/dx),   -Laplace psi = w

Pseudo-spectral in space (``rfft2``, 2/3 dealiasing of the nonlinear term) and
the low-storage Runge-Kutta / Crank-Nicolson scheme of Spalart, Moser and
Rogers (1991) in time: three stages, each explicit (third-order Runge-Kutta)
in the advection and forcing and Crank-Nicolson in the viscous term -- stable
for advective Courant numbers up to sqrt(3) and second order overall. The step
is chosen per trajectory from a CFL bound (``cfl * dx / max(|u| + |v|)``, at
most ``dt_max``) instead of FNO's fixed 1e-4, and trajectories are batched.
Each trajectory takes its own steps, so its result does not depend on the
batch it was solved in.

The grid is ``x_j = j / n`` (the periodic image of ``x = 0`` is not stored).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from mgno.errors import InputError
from mgno.pde.grf import gaussian_random_field

# Spalart-Moser-Rogers coefficients: explicit gamma (current) and zeta (previous
# stage), implicit alpha (old) / beta (new) Crank-Nicolson weights
_GAMMA = (8.0 / 15.0, 5.0 / 12.0, 3.0 / 4.0)
_ZETA = (0.0, -17.0 / 60.0, -5.0 / 12.0)
_ALPHA = (29.0 / 96.0, -3.0 / 40.0, 1.0 / 6.0)
_BETA = (37.0 / 160.0, 5.0 / 24.0, 1.0 / 6.0)


class VorticitySolver:
    """Batched pseudo-spectral solver on an ``n x n`` periodic grid.

    Parameters
    ----------
    n : int
        Grid points per axis.
    nu : float
        Viscosity (> 0).
    forcing : Tensor or ndarray, shape (n, n), optional
        Time-independent forcing ``f`` (default none).
    cfl : float
        Advective Courant number of the step.
    dt_max : float
        Largest step.
    dtype : torch dtype
        float32 or float64.
    device : torch device, optional
    """

    def __init__(
        self,
        n: int,
        nu: float,
        *,
        forcing=None,
        cfl: float = 0.5,
        dt_max: float = 1e-2,
        dtype: torch.dtype = torch.float64,
        device=None,
    ) -> None:
        if not (math.isfinite(nu) and nu > 0):
            raise InputError(
                f"Navier-Stokes viscosity nu={nu} is invalid, expected a finite nu > 0"
            )
        self.n, self.nu, self.cfl, self.dt_max = int(n), float(nu), float(cfl), float(dt_max)
        self.dtype, self.device = dtype, device
        kx = torch.fft.fftfreq(n, d=1.0 / n, dtype=torch.float64)
        ky = torch.fft.rfftfreq(n, d=1.0 / n, dtype=torch.float64)
        KX, KY = torch.meshgrid(kx, ky, indexing="ij")
        cdt = torch.complex64 if dtype == torch.float32 else torch.complex128
        self.ikx = (2j * math.pi * KX).to(cdt).to(device)
        self.iky = (2j * math.pi * KY).to(cdt).to(device)
        lap = -4.0 * math.pi**2 * (KX**2 + KY**2)
        self.lap = lap.to(dtype).to(device)
        inv = torch.where(lap == 0, torch.zeros_like(lap), -1.0 / torch.where(lap == 0, 1.0, lap))
        self.inv_neg_lap = inv.to(dtype).to(device)  # psi_hat = w_hat / (4 pi^2 |k|^2)
        kmax = n // 3
        mask = (KX.abs() <= kmax) & (KY.abs() <= kmax)
        self.dealias = mask.to(dtype).to(device)
        self.f_hat = None
        if forcing is not None:
            f = torch.as_tensor(np.asarray(forcing), dtype=dtype, device=device)
            self.f_hat = torch.fft.rfft2(f)

    def _rhs(self, w_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Explicit part ``-u . grad w + f`` in Fourier space, and ``max(|u| + |v|)``."""
        psi = w_hat * self.inv_neg_lap
        n = self.n
        u = torch.fft.irfft2(self.iky * psi, s=(n, n))
        v = torch.fft.irfft2(-self.ikx * psi, s=(n, n))
        wx = torch.fft.irfft2(self.ikx * w_hat, s=(n, n))
        wy = torch.fft.irfft2(self.iky * w_hat, s=(n, n))
        speed = (u.abs() + v.abs()).flatten(1).amax(1)
        nl = torch.fft.rfft2(u * wx + v * wy) * self.dealias
        out = -nl
        if self.f_hat is not None:
            out = out + self.f_hat
        return out, speed

    def step(self, w_hat: torch.Tensor, dt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One RK3/CN step of size ``dt`` (shape (B,)); returns ``(w_hat, max speed)``."""
        dtv = dt.view(-1, 1, 1).to(self.dtype)
        prev = None
        speed = None
        for s in range(3):
            rhs, sp = self._rhs(w_hat)
            if speed is None:
                speed = sp
            expl = _GAMMA[s] * rhs if prev is None else _GAMMA[s] * rhs + _ZETA[s] * prev
            num = w_hat * (1.0 + _ALPHA[s] * dtv * self.nu * self.lap) + dtv * expl
            w_hat = num / (1.0 - _BETA[s] * dtv * self.nu * self.lap)
            prev = rhs
        return w_hat, speed

    def max_speed(self, w_hat: torch.Tensor) -> torch.Tensor:
        """``max(|u| + |v|)`` of each sample, shape (B,)."""
        return self._rhs(w_hat)[1]

    def evolve(
        self, w0, times: Sequence[float], *, fixed_dt: float | None = None
    ) -> torch.Tensor:
        """Vorticity at the given times.

        Parameters
        ----------
        w0 : Tensor or ndarray, shape (B, n, n)
            Initial vorticity.
        times : sequence of float
            Increasing output times ``>= 0``.
        fixed_dt : float, optional
            Use this step (rounded so it divides each interval) instead of the
            CFL step.

        Returns
        -------
        Tensor, shape (B, len(times), n, n)
        """
        w = torch.as_tensor(np.asarray(w0) if not isinstance(w0, torch.Tensor) else w0)
        w = w.to(self.dtype).to(self.device)
        w_hat = torch.fft.rfft2(w)
        bsz = w.shape[0]
        out = []
        t_now = 0.0
        # the speed that sets a step is that of the state before the previous
        # step (lagged by one step, covered by the margin of cfl below sqrt(3))
        speed = None if fixed_dt is not None else self.max_speed(w_hat).to(torch.float64)
        for t_out in times:
            span = float(t_out) - t_now
            if span < -1e-12:
                raise InputError(f"output times {list(times)} must be increasing and >= 0")
            remaining = torch.full((bsz,), max(span, 0.0), dtype=torch.float64, device=w.device)
            tiny = 1e-9 * max(span, 1.0)
            while bool((remaining > tiny).any()):
                if fixed_dt is not None:
                    dt = torch.full_like(remaining, float(fixed_dt))
                else:
                    dt = self.cfl * (1.0 / self.n) / torch.clamp(speed, min=1e-12)
                    dt = torch.clamp(dt, max=self.dt_max)
                # split the rest of the interval into equal steps no larger than dt
                steps = torch.ceil(remaining / dt - 1e-9).clamp(min=1)
                active = remaining > tiny
                dt = torch.where(active, remaining / steps, torch.zeros_like(dt))
                new_hat, sp = self.step(w_hat, dt)
                w_hat = torch.where(active.view(-1, 1, 1), new_hat, w_hat)
                if speed is not None:
                    speed = torch.where(active, sp.to(torch.float64), speed)
                remaining = torch.where(active, remaining - dt, remaining)
                remaining = torch.where(remaining <= tiny, torch.zeros_like(remaining), remaining)
            t_now = float(t_out)
            out.append(torch.fft.irfft2(w_hat, s=(self.n, self.n)))
        return torch.stack(out, dim=1)


def fno_forcing(n: int, amplitude: float = 0.1) -> np.ndarray:
    """``amplitude (sin(2 pi (x + y)) + cos(2 pi (x + y)))`` on ``x_j = j / n``."""
    x = np.arange(n) / n
    X, Y = np.meshgrid(x, x, indexing="ij")
    return amplitude * (np.sin(2 * np.pi * (X + Y)) + np.cos(2 * np.pi * (X + Y)))


def generate_navier_stokes(
    rngs: Sequence[np.random.Generator],
    resolution: int,
    *,
    params: dict,
    device=None,
) -> dict[str, np.ndarray]:
    """A batch of vorticity trajectories.

    Parameters
    ----------
    rngs : sequence of numpy Generator
        One per trajectory.
    resolution : int
        Stored grid points per axis (``solve_resolution`` must be a multiple).
    params : dict
        ``nu``, ``T``, ``record_every``, ``solve_resolution``, ``alpha``,
        ``tau`` (initial GRF), ``forcing`` (amplitude), ``cfl``, ``dt_max``,
        ``dtype`` ("float32" or "float64").

    Returns
    -------
    dict
        ``trajectories`` (b, T / record_every + 1, 1, R, R), ``times``.
    """
    n_s = int(params["solve_resolution"])
    if n_s < resolution or n_s % resolution:
        raise InputError(
            f"navier-stokes solve_resolution={n_s} is not a multiple of --resolution {resolution}"
        )
    stride = n_s // resolution
    T, every = float(params["T"]), float(params["record_every"])
    n_rec = int(round(T / every))
    if n_rec < 1 or abs(n_rec * every - T) > 1e-9 * max(T, 1.0):
        raise InputError(f"navier-stokes T={T} is not a multiple of record_every={every}")
    times = np.arange(n_rec + 1) * every
    dtype = {"float32": torch.float32, "float64": torch.float64}.get(str(params["dtype"]))
    if dtype is None:
        raise InputError(f"navier-stokes dtype={params['dtype']!r}, expected float32 or float64")
    alpha, tau = float(params["alpha"]), float(params["tau"])
    # FNO's amplitude: sqrt(2) tau^(alpha - 1) per Fourier mode (2-D)
    sigma = math.sqrt(2.0) * tau ** (alpha - 1.0)
    w0 = np.stack([
        gaussian_random_field(1, (n_s, n_s), alpha=alpha, tau=tau, sigma=sigma,
                              basis="fourier", zero_mean=True, rng=rng)[0]
        for rng in rngs
    ])
    solver = VorticitySolver(
        n_s, float(params["nu"]), forcing=fno_forcing(n_s, float(params["forcing"])),
        cfl=float(params["cfl"]), dt_max=float(params["dt_max"]), dtype=dtype, device=device,
    )
    w = solver.evolve(w0, times[1:])
    w = torch.cat([torch.as_tensor(w0, dtype=w.dtype, device=w.device)[:, None], w], dim=1)
    w = w[:, :, ::stride, ::stride].cpu().numpy()
    if not np.all(np.isfinite(w)):
        raise RuntimeError("navier-stokes solution blew up; lower cfl or dt_max")
    return {"trajectories": w[:, :, None], "times": times}


__all__ = ["VorticitySolver", "fno_forcing", "generate_navier_stokes"]
