"""Pipe flow (Geo-FNO's set, generated): the geometry family, the Q2-Q1 Navier-Stokes
solver (exact Poiseuille flow, observed order on nested meshes, conservation) and bad input."""

import numpy as np
import pytest

from mgno.cli import main
from mgno.data.schema import open_dataset, read_arrays
from mgno.errors import InputError
from mgno.pde.pipe import (
    PIPE_DEFAULTS,
    PipeGeometry,
    generate_pipe,
    pipe_mesh,
    sample_geometry,
    section_fluxes,
    solve_pipe,
)
from mgno.pde.registry import get_pde, parse_params
from mgno.pde.taylor_hood import (
    FlowSolveError,
    h1_seminorm,
    refine_nodal,
    solve_navier_stokes,
)


def _params(**kw):
    return {**PIPE_DEFAULTS, **kw}


@pytest.mark.parametrize("width,u_max,nu", [(1.0, 1.0, 0.005), (2.0, 1.5, 0.02)])
def test_straight_pipe_is_poiseuille(width, u_max, nu):
    geom = PipeGeometry(4.0, width, np.zeros(3), np.zeros(3))
    x, y, flow = solve_pipe(geom, 17, 9, _params(nu=nu, u_max=u_max))
    exact_u = u_max * (1.0 - (2.0 * y / width) ** 2)
    assert np.abs(flow.u - exact_u).max() < 1e-12 * u_max
    assert np.abs(flow.v).max() < 1e-12 * u_max
    # -nu u'' + p_x = 0 with the do-nothing outlet: p = 8 nu u_max (L - x) / W^2
    exact_p = 8.0 * nu * u_max * (4.0 - x[::2, ::2]) / width**2
    assert np.abs(flow.p - exact_p).max() < 1e-11 * max(1.0, exact_p.max())
    assert flow.residuals[-1] <= 1e-10


def _nested(geom, params, sizes):
    meshes = [pipe_mesh(geom, a, b) for a, b in sizes]
    return meshes, [solve_pipe(geom, a, b, params)[2] for a, b in sizes]


def test_curved_pipe_converges_at_second_order():
    # a curved pipe whose ends are straight (square corners, so that the
    # observed order is the scheme's, not that of a corner singularity)
    geom = PipeGeometry(4.0, 1.0, np.array([0.0, 0.3, -0.2]), np.array([0.0, -0.4, 0.0]))
    sizes = [(17, 9), (33, 17), (65, 33)]
    meshes, flows = _nested(geom, _params(nu=0.05), sizes)
    h1, rms_u, rms_p = [], [], []
    for k in range(2):
        (x, y), fine, coarse = meshes[k + 1], flows[k + 1], flows[k]
        h1.append(np.hypot(h1_seminorm(x, y, fine.u - refine_nodal(coarse.u)),
                           h1_seminorm(x, y, fine.v - refine_nodal(coarse.v))))
        rms_u.append(np.sqrt(np.mean((fine.u[::2, ::2] - coarse.u) ** 2)))
        rms_p.append(np.sqrt(np.mean((fine.p[::2, ::2] - coarse.p) ** 2)))
    order = {name: np.log2(e[0] / e[1]) for name, e in
             (("h1", h1), ("u", rms_u), ("p", rms_p))}
    assert 1.7 < order["h1"] < 2.3, order   # velocity, H1 seminorm: second order
    assert 1.7 < order["p"] < 2.6, order    # pressure at the corners, RMS: second order
    assert order["u"] > 2.5, order          # velocity at the nodes, RMS: third order (Q2)


def test_mass_is_conserved_through_every_section():
    geom = sample_geometry(np.random.default_rng(3), _params())
    x, y, flow = solve_pipe(geom, 33, 17, _params())
    flux = section_fluxes(x, y, flow.u, flow.v)
    inflow = 2.0 / 3.0  # u_max * width * 2/3
    assert abs(flux[0] - inflow) < 1e-14
    # the discrete continuity equation tested with a Q1 ramp: the mean flux over
    # every column of elements is the inflow, to solver tolerance
    column = (flux[0:-1:2] + 4.0 * flux[1::2] + flux[2::2]) / 6.0
    assert np.abs(column - inflow).max() < 1e-10
    # the flux through each single line converges to it
    fine_x, fine_y, fine = solve_pipe(geom, 65, 33, _params())
    fine_flux = section_fluxes(fine_x, fine_y, fine.u, fine.v)
    assert np.abs(fine_flux - inflow).max() < 0.5 * np.abs(flux - inflow).max()


def test_family_and_generator():
    p = _params()
    rng = np.random.default_rng(0)
    geom = sample_geometry(rng, p)
    assert geom.heights[0] == 0.0 and np.all(np.abs(geom.heights) <= 1.0)
    assert np.all(np.abs(geom.slopes) <= 1.0) and len(geom.slopes) == 5
    knots = np.linspace(0.0, 10.0, 5)
    np.testing.assert_allclose(geom.centreline(knots), geom.heights, atol=1e-12)
    eps = 1e-6
    slope = (geom.centreline(knots[1:-1] + eps) - geom.centreline(knots[1:-1] - eps)) / (2 * eps)
    np.testing.assert_allclose(slope, geom.slopes[1:-1], atol=1e-6)
    rngs = [np.random.default_rng([5, i]) for i in range(2)]
    out = generate_pipe(rngs, 17, params=p)
    again = generate_pipe([np.random.default_rng([5, 1])], 17, params=p)
    assert out["inputs"].shape == (2, 2, 17, 17) and out["outputs"].shape == (2, 1, 17, 17)
    np.testing.assert_array_equal(again["outputs"][0], out["outputs"][1])
    x, y, u = out["inputs"][0, 0], out["inputs"][0, 1], out["outputs"][0, 0]
    assert x[0, 0] == 0.0 and x[-1, 0] == 10.0 and np.allclose(np.ptp(y, axis=1), 1.0)
    assert np.all(u[:, 0] == 0) and np.all(u[:, -1] == 0)          # no-slip walls
    np.testing.assert_allclose(u[0], 1.0 - (2.0 * y[0]) ** 2, atol=1e-14)  # inflow
    assert get_pde("pipe").default_resolution == 129


def _one_line(err: Exception, needle: str) -> None:
    msg = str(err)
    assert "\n" not in msg and needle in msg, msg


def test_bad_input_is_one_line():
    geom = sample_geometry(np.random.default_rng(0), _params())
    x, y = pipe_mesh(geom, 9, 5)
    folded = x.copy()
    folded[4, 2] = x[6, 2] + 0.5  # a node pushed past its downstream neighbours
    with pytest.raises(InputError) as err:
        solve_navier_stokes(folded, y, nu=0.01)
    _one_line(err.value, "mesh: cell")
    with pytest.raises(InputError) as err:
        solve_navier_stokes(x[:, ::-1], y[:, ::-1], nu=0.01)  # clockwise cells
    _one_line(err.value, "mesh: cell")
    with pytest.raises(InputError) as err:
        solve_navier_stokes(x[:8], y[:8], nu=0.01)
    _one_line(err.value, "mesh:")
    spec = get_pde("pipe")
    for bad, needle in ((["nu=-0.005"], "nu"), (["amplitude=-1"], "amplitude"),
                        (["n_segments=0"], "n_segments"), (["length=nan"], "length"),
                        (["radius=1"], "radius")):
        with pytest.raises(InputError) as err:
            parse_params(spec, bad)
        _one_line(err.value, needle)
    for kwargs, needle in (({"length": -1.0}, "length"), ({"width": 0.0}, "width")):
        with pytest.raises(InputError) as err:
            PipeGeometry(**{"length": 1.0, "width": 1.0, "heights": np.zeros(2),
                            "slopes": np.zeros(2), **kwargs})
        _one_line(err.value, needle)
    with pytest.raises(InputError) as err:
        pipe_mesh(geom, 16, 9)
    _one_line(err.value, "n_along")
    with pytest.raises(FlowSolveError, match="did not converge"):
        solve_pipe(geom, 9, 5, _params(maxiter=1))


@pytest.mark.parametrize("extra,needle", [
    (["--param", "maxiter=1"], "did not converge"),
    (["--param", "slope=-1"], "slope"),
    (["--resolution", "16"], "--resolution 16"),
])
def test_cli_refuses_and_writes_nothing(tmp_path, capsys, extra, needle):
    out = tmp_path / "pipe.h5"
    argv = ["generate", "pipe", "--n", "2", "--resolution", "9", "--seed", "0",
            "--out", str(out), "--no-progress", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mgno: error:") and "\n" not in err and needle in err
    assert list(tmp_path.iterdir()) == []


def test_cli_generates_a_readable_file(tmp_path):
    out = tmp_path / "pipe.h5"
    argv = ["generate", "pipe", "--n", "2", "--resolution", "9", "--seed", "1",
            "--out", str(out), "--no-progress", "--param", "nu=0.01"]
    assert main(argv) == 0
    info = open_dataset(out)
    assert info.pde == "pipe" and info.grid == (9, 9) and info.params["nu"] == 0.01
    arrays = read_arrays(out)
    assert arrays["inputs"].shape == (2, 2, 9, 9) and arrays["outputs"].shape == (2, 1, 9, 9)
