"""MgNO inside your own PyTorch training loop.

    python examples/own_training_loop.py [--n 256] [--grid 33] [--epochs 20]

What it shows, in the order you would write it yourself:

1. a model from a named preset, with overrides (``mgno.create_model``);
2. your own data: here pairs of a random coefficient ``a`` and the solution
   ``u`` of ``-div(a grad u) = 1`` with ``u = 0`` on the boundary, solved with
   mgno's batched multigrid solver (any tensors of shape (N, 1, H, W) would
   do), in a plain ``torch.utils.data.DataLoader``;
3. an ordinary loop: Adam, a relative L2 loss, no mgno trainer;
4. saving the weights with safetensors and the config as JSON, then loading
   them into a fresh model that predicts the same numbers.

Nothing here is specific to mgno's CLI: copy it and replace step 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, TensorDataset

import mgno
from mgno.pde.elliptic import solve_elliptic
from mgno.threads import use_threads


def make_data(n: int, grid: int, seed: int) -> TensorDataset:
    """``n`` pairs (a, u) on a ``grid`` x ``grid`` node grid, shapes (n, 1, grid, grid)."""
    gen = torch.Generator().manual_seed(seed)
    smooth = torch.nn.functional.avg_pool2d(
        torch.randn(n, 1, grid, grid, generator=gen, dtype=torch.float64), 5, 1, 2
    )
    a = torch.where(smooth > 0, 12.0, 3.0)[:, 0]  # a two-phase medium, like FNO's Darcy set
    u = solve_elliptic(a, torch.ones_like(a), "dirichlet", tol=1e-10)
    return TensorDataset(a[:, None].float(), torch.as_tensor(u)[:, None].float())


def relative_l2(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ||pred - target|| / ||target||."""
    diff = (pred - target).flatten(1).norm(dim=1)
    return (diff / target.flatten(1).norm(dim=1)).mean()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=256, help="training pairs")
    parser.add_argument("--grid", type=int, default=33, help="nodes per axis")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    # torch's threads, as mgno's commands choose them: the cores this process may
    # use, less those other processes keep busy (on a busy machine every parallel
    # region otherwise waits for a descheduled thread: docs/performance.md)
    use_threads("auto")

    # 1. the model: a preset, made smaller for a quick run
    model = mgno.create_model("darcy-smooth", channels=16, grid=[args.grid] * 2, levels=None)
    print(f"MgNO with {mgno.count_parameters(model):,} parameters")

    # 2. your data
    train = make_data(args.n, args.grid, seed=args.seed)
    test = make_data(max(8, args.n // 8), args.grid, seed=args.seed + 1)
    a_mean, a_std = train.tensors[0].mean(), train.tensors[0].std()
    u_scale = train.tensors[1].std()
    loader = DataLoader(train, batch_size=16, shuffle=True,
                        generator=torch.Generator().manual_seed(args.seed))

    # 3. your loop (inputs and outputs scaled to about unit size)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for epoch in range(args.epochs):
        model.train()
        for a, u in loader:
            loss = relative_l2(model((a - a_mean) / a_std) * u_scale, u)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            a, u = test.tensors
            err = relative_l2(model((a - a_mean) / a_std) * u_scale, u).item()
        print(f"epoch {epoch + 1:3d}  train loss {loss.item():.4f}  test rel. L2 {err:.4f}")

    # 4. save (safetensors + JSON, nothing pickled) and load into a fresh model
    with tempfile.TemporaryDirectory() as tmp:
        weights, config = Path(tmp) / "model.safetensors", Path(tmp) / "model.json"
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, weights)
        config.write_text(json.dumps(model.config))
        again = mgno.build_model(json.loads(config.read_text()))
        again.load_state_dict(load_file(weights))
    again.eval()
    with torch.no_grad():
        same = torch.equal(again(test.tensors[0]), model(test.tensors[0]))
    print(f"final test rel. L2 {err:.4f}; reloaded model predicts the same: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
