"""Process groups for ``torchrun``: initialisation, rank queries and small collectives.

One machine, N processes (gloo on CPU, nccl on GPU)::

    torchrun --nproc_per_node N tools/train_video.py --cfg k400_tiny.yaml

Several machines (run the same command on every machine; ``HOST`` is reachable by all)::

    torchrun --nnodes 2 --nproc_per_node 8 --rdzv_backend c10d --rdzv_endpoint HOST:29500 \\
        --rdzv_id my_run tools/train_video.py --cfg k400_tiny.yaml

Without ``torchrun`` (no ``WORLD_SIZE`` in the environment) everything here degrades to a
single process: rank 0 of a world of 1, and the collectives return their input.
"""

from __future__ import annotations

import datetime
import os
from typing import Any

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    """True when a process group of more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def get_local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", 0))


def is_main_process() -> bool:
    return get_rank() == 0


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks the local CUDA device when there is one, else the CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("DEVICE is 'cuda' but no CUDA device is available; use DEVICE cpu")
        return torch.device("cuda", get_local_rank())
    return torch.device("cpu")


def set_num_threads(num_threads: int) -> None:
    """``torch.set_num_threads`` unless 0 (keep PyTorch's default)."""
    if num_threads > 0:
        torch.set_num_threads(num_threads)


def init_distributed(device: torch.device, timeout_min: float = 30.0) -> bool:
    """Join the process group described by torchrun's environment variables, if any.

    Returns:
        True when a process group was initialised (``WORLD_SIZE`` > 1).
    """
    world = int(os.environ.get("WORLD_SIZE", 1))
    if world <= 1 or (dist.is_available() and dist.is_initialized()):
        return dist.is_available() and dist.is_initialized()
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=timeout_min))
    return True


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def _collective_device() -> torch.device:
    # nccl only moves CUDA tensors; gloo only CPU ones.
    if is_distributed() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _all_reduce(values: list[float] | torch.Tensor, op: "dist.ReduceOp") -> torch.Tensor:
    """Reduce a small vector over all processes with ``op`` (float64, on the CPU when returned)."""
    t = torch.as_tensor(values, dtype=torch.float64).clone()
    if is_distributed():
        t = t.to(_collective_device())
        dist.all_reduce(t, op=op)
    return t.cpu()


def all_reduce_sum(values: list[float] | torch.Tensor) -> torch.Tensor:
    """Sum a small vector over all processes."""
    return _all_reduce(values, dist.ReduceOp.SUM)


def all_reduce_max(values: list[float] | torch.Tensor) -> torch.Tensor:
    """Element-wise maximum of a small vector over all processes."""
    return _all_reduce(values, dist.ReduceOp.MAX)


def all_gather_object(obj: Any) -> list[Any]:
    """Every process's ``obj``, in rank order (a one-element list without a process group)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * get_world_size()
    dist.all_gather_object(out, obj)
    return out
