"""The multigrid operator W: linearity, shapes, boundary behaviour, bad input."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mgno.nn.multigrid import MultigridOperator, derive_levels, level_shapes

F64 = torch.float64


def _operator(seed: int = 0, **kw) -> MultigridOperator:
    torch.manual_seed(seed)
    kw.setdefault("levels", 3)
    return MultigridOperator(kw.pop("c_in", 2), kw.pop("c_out", 3), **kw).double()


def _assert_linear(op: MultigridOperator, shape: tuple[int, ...]) -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(*shape, generator=g, dtype=F64)
    y = torch.randn(*shape, generator=g, dtype=F64)
    a, b = 1.7, -0.3
    with torch.no_grad():
        lhs = op(a * x + b * y)
        rhs = a * op(x) + b * op(y)
    scale = rhs.abs().max().item()
    assert scale > 0
    torch.testing.assert_close(lhs, rhs, atol=1e-12 * max(1.0, scale), rtol=1e-10)


@settings(max_examples=25, deadline=None)
@given(
    dim=st.sampled_from([1, 2, 3]),
    data=st.data(),
    restrict=st.sampled_from(["f", "residual"]),
    post=st.integers(0, 1),
    kp=st.sampled_from([3, 4]),
)
def test_operator_is_exactly_linear(dim, data, restrict, post, kp):
    boundary = tuple(
        data.draw(st.sampled_from(["dirichlet", "neumann", "periodic"])) for _ in range(dim)
    )
    lo, hi = {1: (8, 40), 2: (8, 19), 3: (8, 11)}[dim]
    grid = tuple(data.draw(st.integers(lo, hi)) for _ in range(dim))
    op = _operator(
        dim=dim,
        boundary=boundary,
        restrict=restrict,
        post_smooth=post,
        prolongation_kernel_size=kp,
        levels=min(3, derive_levels(grid, min_coarse=2)),
    )
    _assert_linear(op, (2, 2, *grid))


@pytest.mark.parametrize(
    "grid, levels",
    [
        ((421, 421), 6),
        ((211, 211), 6),
        ((141, 141), 6),
        ((85, 85), 5),
        ((64, 64), 5),
        ((63, 63), 5),
        ((101, 101), 5),
        ((256, 256), 6),
        ((100, 60), 5),
    ],
)
def test_output_has_the_input_shape(grid, levels):
    torch.manual_seed(0)
    op = MultigridOperator(1, 2, levels=levels, boundary=["neumann", "dirichlet"])
    with torch.no_grad():
        out = op(torch.randn(1, 1, *grid))
    assert out.shape == (1, 2, *grid)


@pytest.mark.parametrize("grid", [(64, 64), (63, 63), (100, 60)])
@pytest.mark.parametrize("bc", ["dirichlet", "neumann", "periodic"])
def test_shapes_with_post_smoothing_and_residual_restriction(grid, bc):
    op = _operator(boundary=bc, levels=4, post_smooth=1, restrict="residual")
    with torch.no_grad():
        assert op(torch.randn(2, 2, *grid, dtype=F64)).shape == (2, 3, *grid)


@pytest.mark.parametrize("shift", [(4, 0), (0, 8), (12, -4), (32, 28)])
def test_periodic_operator_commutes_with_circular_shifts(shift):
    # Stride-2 coarsening commutes with shifts by multiples of 2^(levels-1) = 4.
    op = _operator(boundary="periodic", levels=3, post_smooth=1, restrict="residual")
    x = torch.randn(2, 2, 32, 24, dtype=F64)
    with torch.no_grad():
        shifted_out = op(torch.roll(x, shift, dims=(2, 3)))
        out_shifted = torch.roll(op(x), shift, dims=(2, 3))
    torch.testing.assert_close(shifted_out, out_shifted, atol=1e-12, rtol=0)


def test_single_level_periodic_operator_commutes_with_every_shift():
    op = _operator(boundary="periodic", levels=1, pre_smooth=2)
    x = torch.randn(1, 2, 9, 7, dtype=F64)
    with torch.no_grad():
        torch.testing.assert_close(
            op(torch.roll(x, (1, 3), (2, 3))), torch.roll(op(x), (1, 3), (2, 3))
        )


def test_mixed_axes_periodic_axis_shifts_dirichlet_axis_does_not():
    op = _operator(boundary=["periodic", "dirichlet"], levels=3)
    x = torch.randn(1, 2, 16, 16, dtype=F64)
    with torch.no_grad():
        torch.testing.assert_close(
            op(torch.roll(x, 4, 2)), torch.roll(op(x), 4, 2), atol=1e-12, rtol=0
        )
        assert not torch.allclose(op(torch.roll(x, 4, 3)), torch.roll(op(x), 4, 3))


def _flip_weights(op: MultigridOperator, axis: int) -> None:
    with torch.no_grad():
        for name, p in op.named_parameters():
            if name.endswith("weight") and p.dim() > 2:
                p.copy_(torch.flip(p, dims=(2 + axis,)))


@pytest.mark.parametrize("bc", ["dirichlet", "neumann"])
@pytest.mark.parametrize("axis", [0, 1])
def test_both_ends_of_an_axis_see_the_same_boundary(bc, axis):
    # On 2^k m + 1 nodes a mirrored grid coarsens onto the mirrored coarse grid, so
    # flipping the input and every stencil must flip the output exactly: the
    # boundary condition acts the same way at both ends of the axis.
    boundary = [bc, "dirichlet"] if axis == 0 else ["neumann", bc]
    op = _operator(boundary=boundary, levels=3, post_smooth=1, prolongation_kernel_size=3)
    x = torch.randn(2, 2, 17, 13, dtype=F64)
    with torch.no_grad():
        out = op(x)
        _flip_weights(op, axis)
        flipped = op(torch.flip(x, (2 + axis,)))
    torch.testing.assert_close(flipped, torch.flip(out, (2 + axis,)), atol=1e-12, rtol=0)


def test_boundary_condition_changes_the_output_near_the_boundary_only_once_coarse():
    torch.manual_seed(0)
    base = _operator(boundary="dirichlet", levels=1, pre_smooth=1)
    other = _operator(boundary="neumann", levels=1, pre_smooth=1)
    other.load_state_dict(base.state_dict())
    x = torch.randn(1, 2, 12, 12, dtype=F64)
    with torch.no_grad():
        a, b = base(x), other(x)
    # one 3x3 stencil: only the outermost ring of nodes differs
    torch.testing.assert_close(a[..., 1:-1, 1:-1], b[..., 1:-1, 1:-1])
    assert not torch.allclose(a[..., 0, :], b[..., 0, :])


def test_level_shapes_and_derived_levels():
    assert level_shapes((211, 211), 6)[-1] == (7, 7)
    assert [s[0] for s in level_shapes((421,), 6)] == [421, 211, 106, 53, 27, 14]
    assert level_shapes((100, 60), 3) == [(100, 60), (50, 30), (25, 15)]
    assert derive_levels((64, 64)) == 5
    assert derive_levels((64, 64), min_coarse=8) == 4
    assert derive_levels((211,)) == 7
    assert derive_levels((3, 3)) == 1


def test_bad_input_is_named():
    op = MultigridOperator(2, 3, levels=6)
    with pytest.raises(
        ValueError, match=r"expected a tensor of shape \(batch, 2, n, n\).*got shape \(2, 16, 16\)"
    ):
        op(torch.randn(2, 16, 16))
    with pytest.raises(ValueError, match="expected 2 channels.*got 5"):
        op(torch.randn(1, 5, 64, 64))
    with pytest.raises(ValueError, match=r"grid 16x16 is too small for 6 levels.*1x1.*levels <= 4"):
        op(torch.randn(1, 2, 16, 16))
    with pytest.raises(ValueError, match="unknown condition 'robin'"):
        MultigridOperator(1, 1, boundary="robin")
    with pytest.raises(ValueError, match="one smoothing count per level"):
        MultigridOperator(1, 1, levels=3, pre_smooth=[1, 1])
    with pytest.raises(ValueError, match="restrict"):
        MultigridOperator(1, 1, restrict="injection")
    with pytest.raises(ValueError, match="dim"):
        MultigridOperator(1, 1, dim=4)
