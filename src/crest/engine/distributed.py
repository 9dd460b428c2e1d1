"""torchrun helpers: process group from the environment, rank-0-only side effects."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group torchrun describes in the environment (nccl on CUDA, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return DistInfo(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def broadcast_object(info: DistInfo, obj: object) -> object:
    """Rank 0's ``obj`` on every rank."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def per_rank_batch(global_batch: int, info: DistInfo) -> int:
    """The config's batch size is global: each of N ranks takes global // N samples per step."""
    if global_batch % info.world_size:
        raise ValueError(
            f"train.batch_size={global_batch} is not divisible by the {info.world_size} ranks"
        )
    return global_batch // info.world_size


def phase_batch(global_batch: int, rows: int, min_steps: int, world_size: int) -> int:
    """The global batch of a phase with ``rows`` training rows: ``global_batch``, or, under
    ``train.min_steps_per_epoch`` = N > 0 where that gives fewer than N steps, rows // N rounded
    down to a multiple of the ranks (at least one sample a rank)."""
    if min_steps <= 0 or rows >= min_steps * global_batch:
        return global_batch
    shrunk = (rows // min_steps) // world_size * world_size
    return max(world_size, shrunk)


def all_reduce_mean(
    info: DistInfo, values: dict[str, float], device: torch.device
) -> dict[str, float]:
    if not info.enabled or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return {k: float(v) / info.world_size for k, v in zip(keys, t.tolist(), strict=True)}
