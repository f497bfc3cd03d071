"""Synchronous data parallelism over local CPU processes (torch.distributed, gloo).

Why processes and not threads: at G2P sizes torch gains almost nothing from a second
intra-op thread (4.0 vs 3.9 batches/s measured on 2 cores), but two processes that
each run half of every batch on their own core and average gradients do twice the work.

The contract that keeps the replicas identical, so rank 0's model is THE model:
- every rank builds the model from the same seed, and rank 0's parameters are broadcast
  once at the start anyway;
- every rank draws the same global batch order and takes its own slice of each batch;
- each rank's loss is a sum over its tokens divided by the token count of the whole
  global batch, and gradients are summed across ranks, so the update equals the one a
  single process would make on the whole batch;
- anything time-based (the learning-rate schedule, the end of the budget) uses rank 0's
  clock, broadcast every step, so all ranks take the same decisions.
"""
from __future__ import annotations

import os
import socket
from typing import Callable

import torch
import torch.distributed as dist


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(workers: int, fn: Callable, *args) -> None:
    """fn(rank, world, *args) in `workers` processes (in this one when workers == 1)."""
    if workers <= 1:
        fn(0, 1, *args)
        return
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(free_port()))
    torch.multiprocessing.spawn(_entry, args=(workers, fn, args), nprocs=workers, join=True)


def _entry(rank: int, world: int, fn: Callable, args: tuple) -> None:
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        fn(rank, world, *args)
    finally:
        dist.destroy_process_group()


class Replicas:
    """What a training loop needs from its peer processes (no-ops when world == 1)."""

    def __init__(self, rank: int, world: int):
        self.rank, self.world = rank, world

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, items: list) -> list:
        """This rank's slice of a list every rank holds whole."""
        return items[self.rank::self.world]

    def broadcast_parameters(self, module: torch.nn.Module) -> None:
        if self.active:
            for tensor in module.state_dict().values():
                dist.broadcast(tensor, 0)

    def sum_gradients(self, parameters) -> None:
        """Sum .grad over ranks, in one flat buffer (one collective per step)."""
        if not self.active:
            return
        params = [p for p in parameters if p.requires_grad]
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.reshape(-1) for p in params])
        dist.all_reduce(flat)
        offset = 0
        for p in params:
            n = p.numel()
            p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
            offset += n

    def main_value(self, value: float) -> float:
        """Rank 0's value of a float (a clock reading), on every rank."""
        if not self.active:
            return value
        t = torch.tensor([value], dtype=torch.float64)
        dist.broadcast(t, 0)
        return float(t)

    def gather(self, items: list) -> list:
        """Undo share(): the whole list, from each rank's results for its slice."""
        if not self.active:
            return items
        parts: list = [None] * self.world
        dist.all_gather_object(parts, items)
        whole: list = [None] * sum(len(p) for p in parts)
        for rank, part in enumerate(parts):
            whole[rank::self.world] = part
        return whole
