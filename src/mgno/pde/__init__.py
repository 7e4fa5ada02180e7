"""PDE solvers and random inputs that make the data sets of mgno.

One idea per module: :mod:`~mgno.pde.grf` (Gaussian random fields),
:mod:`~mgno.pde.stencil` (finite-volume operator), :mod:`~mgno.pde.solvers`
(batched multigrid / multigrid-CG in torch), :mod:`~mgno.pde.elliptic`
(boundary conditions, ``solve_elliptic``), :mod:`~mgno.pde.darcy`,
:mod:`~mgno.pde.poisson`, :mod:`~mgno.pde.helmholtz`,
:mod:`~mgno.pde.navier_stokes`, :mod:`~mgno.pde.burgers`, and
:mod:`~mgno.pde.registry` (name -> generator, parameter validation).
Nothing here imports from :mod:`mgno.data` or above.
"""
