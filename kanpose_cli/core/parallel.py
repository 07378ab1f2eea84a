"""torchrun process groups: who this process is (:func:`dist_info`), joining the group (:func:`init_distributed`)
and leaving it (:func:`finish_distributed`).

A bottom module (it needs only :mod:`~kanpose_cli.core.device` and :mod:`~kanpose_cli.core.errors`), so that DDP
training (:mod:`kanpose_cli.core.training`) and the sharded predict/label jobs
(:mod:`kanpose_cli.core.tasks.distributed`), which are siblings, both use it without importing each other.
"""

from __future__ import annotations

import importlib
import os

import torch

from kanpose_cli.core.errors import DeviceError


def dist_info() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from torchrun's environment (``(0, 1, 0)`` when not distributed)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, 0
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def init_distributed(device: str) -> tuple[int, int, torch.device]:
    """Start the process group under torchrun (NCCL for CUDA, gloo for CPU); returns ``(rank, world, device)``
    (``(0, 1, the selected device)`` without torchrun). Used by training (:mod:`kanpose_cli.core.training`,
    ``kanpose train``) and by :func:`kanpose_cli.core.tasks.distributed.start`.

    Raises:
        DeviceError: CUDA asked for but unavailable or fewer GPUs than local ranks.
    """
    import torch.distributed as dist

    from kanpose_cli.core.device import select_device

    rank, world, local = dist_info()
    dev = select_device(device)
    if world > 1:
        if dev.type == "cuda":
            if local >= torch.cuda.device_count():
                raise DeviceError(f"local rank {local} but only {torch.cuda.device_count()} CUDA device(s)")
            dev = torch.device("cuda", local)
            torch.cuda.set_device(dev)
        if not dist.is_initialized():
            # Importing torch._dynamo (torchvision and timm import it) after the group exists leaves ten hidden
            # references to the group (measured with torch 2.14), so destroy_process_group() cannot free it and
            # gloo's worker threads live on into interpreter shutdown, where one that drops the last tensor of a
            # finished collective aborts the process ("terminate called without an active exception", exit -6;
            # pytorch/pytorch PR 179291 describes that abort). Imported first, it holds none.
            importlib.import_module("torch._dynamo")  # not `import torch._dynamo`: that would make torch local

            dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return rank, world, dev


def finish_distributed() -> None:
    """Wait for every rank, then destroy the process group (no-op when none was started)."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
