"""Process groups and model wrapping: one process, DDP (default) or FSDP2, then compile.

``torchrun --nproc_per_node N slam pretrain ...`` sets RANK/WORLD_SIZE/LOCAL_RANK; we join a
process group (nccl on GPU, gloo on CPU). Parallelism is applied as ordered functions to a
plain model (torchtitan style): shard/replicate first, compile last.

Example:
    >>> info = init_distributed("cpu")
    >>> info.rank, info.world, info.is_main
    (0, 1, True)
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from slamlm.device import resolve_device

log = logging.getLogger(__name__)


@dataclass
class DistInfo:
    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the torchrun process group when WORLD_SIZE > 1; otherwise a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if world > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", rank=rank,
                                world_size=world)
        log.info("rank %d/%d on %s", rank, world, dev)
    return DistInfo(rank, world, local_rank, dev)


def cleanup(info: DistInfo) -> None:
    if info.world > 1 and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def wrap_model(model: nn.Module, info: DistInfo, strategy: str, compile_model: bool) -> nn.Module:
    """DDP or FSDP2 (``fully_shard`` per block, then the root) for world > 1; then compile."""
    if info.world > 1 and strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for block in getattr(getattr(model, "model", model), "layers", []):
            fully_shard(block)
        fully_shard(model)
        wrapped: nn.Module = model
    elif info.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [info.device.index] if info.device.type == "cuda" else None
        wrapped = DDP(model, device_ids=ids)
    else:
        wrapped = model
    if compile_model:
        wrapped = torch.compile(wrapped)
    return wrapped


@contextlib.contextmanager
def grad_sync(wrapped: nn.Module, model: nn.Module, sync: bool) -> Iterator[None]:
    """Skip the gradient all-reduce on all but the last micro-batch of an accumulation."""
    inner = getattr(wrapped, "_orig_mod", wrapped)
    if hasattr(inner, "no_sync") and not sync:
        with inner.no_sync():
            yield
        return
    if hasattr(model, "set_requires_gradient_sync"):  # FSDP2
        model.set_requires_gradient_sync(sync)
    yield


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum a tensor over ranks (identity for one process)."""
    if info.world > 1:
        t = t.clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def broadcast_object(obj, info: DistInfo):
    """Rank 0's Python object on every rank."""
    if info.world == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
