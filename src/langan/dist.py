"""Several processes of one run (`torchrun`, or `langan train --nproc N`): who this process is, and the few
collective operations langan needs, each a no-op in a single process.

torchrun sets WORLD_SIZE / RANK / LOCAL_RANK; `init()` joins the process group (gloo on CPU, NCCL on GPUs). Every
rank runs the same code on the same global batch and keeps its own shard of it; gradients are averaged right before
each optimiser step (`langan.optim.sync_gradients`), metrics are averaged before logging, and rank 0 alone writes
the run directory.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist

from langan.errors import LanganError

_device = torch.device("cpu")  # where collective tensors live: the rank's GPU under NCCL


def active() -> bool:
    """True when this process is one of several of an initialised process group."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


RANK_SEED_STRIDE = 1_000_003  # rank r draws from seed + r * this: a prime, so no two ranks' seeds meet


def rank_seed(seed: int) -> int:
    """This rank's own seed derived from a run's seed (rank 0 keeps it): its own samples, rollouts, dropout."""
    return seed + rank() * RANK_SEED_STRIDE


def launched() -> bool:
    """This process was started by torchrun with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def launch_rank() -> int:
    """This process's rank as torchrun set it (readable before `init`)."""
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def init(device: torch.device) -> None:
    """Join torchrun's process group once (NCCL for CUDA devices, gloo otherwise); nothing without torchrun."""
    if not launched() or (dist.is_available() and dist.is_initialized()):
        return
    if not dist.is_available():
        raise LanganError("this torch build has no torch.distributed; run one process (no torchrun / --nproc)")
    global _device
    if device.type == "cuda":
        torch.cuda.set_device(device)
        _device = device
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def broadcast(obj: Any) -> Any:
    """Rank 0's `obj` on every rank (pickled; small objects: flags, messages)."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(obj: Any) -> list[Any] | None:
    """Every rank's `obj`, in rank order, on rank 0 (None elsewhere); [obj] in one process."""
    if not active():
        return [obj]
    out: list[Any] | None = [None] * world_size() if is_main() else None
    dist.gather_object(obj, out, dst=0)
    return out


def any_rank(*flags: bool) -> list[bool]:
    """Each flag true on any rank (one small all-reduce): every rank takes the same decision to stop."""
    if not active():
        return list(flags)
    t = torch.tensor([float(f) for f in flags], device=_device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]


def mean_values(values: dict[str, float]) -> dict[str, float]:
    """The mean over ranks of each value (the same keys on every rank, as every rank runs the same step)."""
    if not active():
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=_device)
    dist.all_reduce(t)
    return dict(zip(keys, (t / world_size()).tolist(), strict=True))


def all_reduce_sum_(tensor: torch.Tensor) -> torch.Tensor:
    """Sum over ranks, in place (gloo has no average)."""
    if active():
        dist.all_reduce(tensor)
    return tensor
