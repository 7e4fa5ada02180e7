"""torch.distributed plumbing: process group from torchrun's environment, device choice.

Under ``torchrun --nproc-per-node K`` every process sees ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous variables; :func:`setup`
then joins the process group (NCCL when the device is a GPU, gloo on CPU) and
picks ``cuda:LOCAL_RANK``. Without those variables it is a single process and
nothing is initialised.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from mgno.devices import choose_device


@dataclass
class DistContext:
    """Where this process stands in a (possibly single-process) job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    initialised_here: bool = False

    @property
    def distributed(self) -> bool:
        """True when more than one process trains."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on the process that writes files and prints (global rank 0)."""
        return self.rank == 0


def setup(device: str = "auto") -> DistContext:
    """Join the process group if launched by torchrun; pick the device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = choose_device(device, local_rank)
    if world <= 1:
        return DistContext(0, 1, 0, dev, False)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    here = False
    if not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
        here = True
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, dev, here)


def teardown(ctx: DistContext) -> None:
    """Leave the process group if :func:`setup` joined it."""
    if ctx.initialised_here and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(t: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum a tensor over all processes (identity for one process)."""
    if ctx.distributed:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_reduce_max(t: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Element-wise maximum over all processes (identity for one process)."""
    if ctx.distributed:
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t


def barrier(ctx: DistContext) -> None:
    """Wait for every process."""
    if ctx.distributed:
        dist.barrier()
