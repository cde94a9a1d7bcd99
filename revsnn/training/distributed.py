"""One process or many (``torchrun``): process-group setup, device placement, reductions."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .config import TrainSetupError

__all__ = ["DistInfo", "init_distributed", "resolve_device", "all_reduce"]


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the run (rank, world size, local rank)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False       # we initialised the process group and must destroy it


def init_distributed(device_pref: str) -> DistInfo:
    """Join the process group ``torchrun`` describes in the environment (none when WORLD_SIZE ≤ 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    local = int(os.environ.get("LOCAL_RANK", os.environ.get("RANK", "0")))
    if dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), local, False)
    use_cuda = torch.cuda.is_available() and not str(device_pref).startswith("cpu")
    if use_cuda:
        torch.cuda.set_device(local)
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), local, True)


def resolve_device(pref: str, d: DistInfo) -> torch.device:
    """The device for ``pref`` ("auto": CUDA when available) on this process (``cuda:LOCAL_RANK``
    under DDP); :class:`TrainSetupError` for a device that is not there."""
    from ..analysis.measure import parse_device

    pref = str(pref).strip().lower()
    if pref == "auto":
        pref = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = parse_device(pref)
    except ValueError as exc:
        raise TrainSetupError(f"device {exc}") from None
    if device.type == "cuda":
        if d.world_size > 1:
            device = torch.device("cuda", d.local_rank)
        elif device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
    return device


def all_reduce(values, device, op=None) -> list:
    """``values`` summed (or reduced by ``op``) over every process, as a list."""
    t = torch.tensor(values, dtype=torch.float64, device=device)
    if dist.is_initialized():
        dist.all_reduce(t, op=op or dist.ReduceOp.SUM)
    return t.tolist()
