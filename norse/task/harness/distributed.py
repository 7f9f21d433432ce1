"""Devices and multi-process runs (``torchrun``): joining the process group, dealing
each process its shard of the batches, and the collective steps of the training loop."""

import atexit
import os
import warnings
from dataclasses import dataclass
from typing import Any, Iterable, List, Optional, Tuple

import torch

Batch = Tuple[torch.Tensor, torch.Tensor]


def select_device(name: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA when available, else the CPU; other names go to ``torch.device``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name!r} requested but CUDA is not available")
    return device


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in a multi-process run (``torchrun``).

    A plain ``python -m ...`` run is rank 0 of a world of size 1. Under ``torchrun``
    every process trains a replica of the model on its shard of each epoch (see
    :func:`batches`); :func:`~norse.task.harness.fit` averages their gradients with
    :class:`~torch.nn.parallel.DistributedDataParallel`, and only rank 0 shows progress
    and writes checkpoints, metrics and plots.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def distributed_context() -> DistributedContext:
    """The context of the initialised process group, or a single process without one."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return DistributedContext()
    return DistributedContext(
        rank=torch.distributed.get_rank(),
        world_size=torch.distributed.get_world_size(),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
    )


def _environment_int(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    try:
        return int(value)
    except ValueError:
        raise ValueError(
            f"environment variable {name} must be an integer, got {value!r}"
        ) from None


def init_distributed(
    device_name: str = "auto", backend: Optional[str] = None
) -> Tuple[DistributedContext, torch.device]:
    """Joins the process group that ``torchrun`` describes, if any, and picks the device.

    ``torchrun --nproc_per_node=N`` (or any launcher that sets ``WORLD_SIZE``, ``RANK``,
    ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``) starts N processes; each calls
    this function, which initialises :mod:`torch.distributed` with NCCL on GPUs and gloo
    on CPUs (or ``backend``) and, with ``device_name="auto"`` and CUDA, gives process
    ``LOCAL_RANK`` the GPU ``cuda:LOCAL_RANK``. Without such a launcher (``WORLD_SIZE``
    unset or 1) nothing is initialised and the result is ``(DistributedContext(),
    select_device(device_name))``.
    """
    world_size = _environment_int("WORLD_SIZE", 1)
    if world_size <= 1:
        return DistributedContext(), select_device(device_name)
    if not torch.distributed.is_available():
        raise RuntimeError(
            f"WORLD_SIZE={world_size} asks for a distributed run, but this PyTorch "
            "build has no torch.distributed"
        )
    local_rank = _environment_int("LOCAL_RANK", 0)
    if device_name == "auto" and torch.cuda.is_available():
        device = torch.device("cuda", local_rank % torch.cuda.device_count())
    else:
        device = select_device(device_name)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(
            backend or ("nccl" if device.type == "cuda" else "gloo"),
            device_id=device if device.type == "cuda" else None,
        )
        atexit.register(_leave_process_group)
    return distributed_context(), device


def _leave_process_group() -> None:
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def batches(
    data: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    context: Optional[DistributedContext] = None,
) -> Iterable[Batch]:
    """Mini-batches of in-memory tensors; the order depends only on ``seed``.

    In a distributed run (``context``, by default :func:`distributed_context`) each
    process gets its shard of the shuffled order, as
    :class:`~torch.utils.data.DistributedSampler` deals it: rank ``r`` of ``W`` takes
    every ``W``-th sample from position ``r``, the order is padded by repeating its start
    so every process gets the same number of batches, and ``batch_size`` is per process
    (a global batch of ``W * batch_size``). With one process the order is the same
    permutation as ``torch.randperm(n)`` seeded with ``seed``.
    """
    if data.shape[0] != labels.shape[0]:
        raise ValueError(
            f"data and labels must have the same length, got {data.shape[0]} and {labels.shape[0]}"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    context = distributed_context() if context is None else context
    sampler = torch.utils.data.DistributedSampler(
        range(data.shape[0]),
        num_replicas=context.world_size,
        rank=context.rank,
        shuffle=shuffle,
        seed=seed,
    )
    order = torch.tensor(list(sampler), dtype=torch.long)
    for start in range(0, order.shape[0], batch_size):
        index = order[start : start + batch_size].to(data.device)
        yield data[index], labels[index.to(labels.device)]


def shard_length(samples: int, context: Optional[DistributedContext] = None) -> int:
    """Samples per process when :func:`batches` deals ``samples`` out to every process."""
    context = distributed_context() if context is None else context
    return -(-samples // context.world_size)


def prepare_replica(
    model: torch.nn.Module, context: DistributedContext
) -> torch.nn.Module:
    """Wraps ``model`` in DistributedDataParallel (the replica that trains).

    Batch-norm layers synchronise their batch statistics across processes on GPUs
    (:class:`~torch.nn.SyncBatchNorm`, same parameters and buffers, so checkpoints
    stay interchangeable); PyTorch offers that only for CUDA, so on CPUs each process
    normalises with the statistics of its own shard (rank 0's running statistics are
    kept, as DistributedDataParallel broadcasts buffers).
    """
    device = next(iter(model.parameters())).device
    norms = (torch.nn.modules.batchnorm._BatchNorm,)
    if any(isinstance(module, norms) for module in model.modules()):
        if device.type == "cuda":
            torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        elif context.is_main:
            warnings.warn(
                "batch norm on CPUs uses each process's own batch statistics "
                "(PyTorch synchronises them only on CUDA)",
                stacklevel=3,
            )
    return torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device] if device.type == "cuda" else None
    )


def finite_everywhere(loss: torch.Tensor, context: DistributedContext) -> bool:
    """Whether ``loss`` is finite in every process (all must stop together, or the
    others would wait for gradients forever)."""
    finite = torch.isfinite(loss.detach()).all()
    if context.enabled:
        flag = finite.to(torch.int32).reshape(1).cpu()
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
        finite = flag[0]
    return bool(finite)


def sum_over_processes(values: List[float], context: DistributedContext) -> List[float]:
    """``values`` summed element-wise over every process (unchanged in a single one)."""
    if not context.enabled:
        return list(values)
    totals = torch.tensor(values, dtype=torch.float64)
    torch.distributed.all_reduce(totals)
    return totals.tolist()


def gather_objects(obj: Any, context: DistributedContext) -> List[Any]:
    """``obj`` of every rank, in rank order (``[obj]`` in a single process)."""
    if not context.enabled:
        return [obj]
    gathered: List[Any] = [None] * context.world_size
    torch.distributed.all_gather_object(gathered, obj)
    return gathered


def barrier(context: DistributedContext) -> None:
    """Waits until every process gets here (nothing to wait for in a single one)."""
    if context.enabled:
        torch.distributed.barrier()
