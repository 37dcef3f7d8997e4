"""One process or many: the device, DDP set-up under torchrun, and the few collective
operations the loop needs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from composer.errors import ConfigError


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: torch.device) -> Distributed:
    """Join the process group when launched by torchrun (gloo on CPU, NCCL on CUDA)."""
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Distributed()
    import torch.distributed as dist

    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return Distributed(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda: no CUDA GPU is available here; use --device cpu")
        if name == "cuda":
            name = f"cuda:{local_rank}"
    elif name != "cpu":
        raise ConfigError(f"unknown device {name!r}; use cpu, cuda or auto")
    return torch.device(name)


def global_mean(value: torch.Tensor, dist_info: Distributed) -> float:
    if dist_info.world > 1:
        import torch.distributed as dist

        value = value.clone()
        dist.all_reduce(value)
        value /= dist_info.world
    return float(value)


def barrier(dist_info: Distributed) -> None:
    if dist_info.world > 1:
        import torch.distributed as dist

        dist.barrier()


def finish_distributed(dist_info: Distributed, timeout_s: float = 60.0) -> None:
    """Leave the process group together, and exit only when every rank has left it.

    A rank that exits while a peer is still tearing its gloo connections down can make the
    peer abort ("terminate called without an active exception", SIGABRT, after the run has
    finished; seen in about one two-rank CPU run in eight when other work competed for the
    cores). So every rank waits at a barrier, destroys the group, then counts itself done
    in the rendezvous store (which outlives the group) and waits, up to ``timeout_s``,
    until all ranks have."""
    if dist_info.world <= 1:
        return
    import time
    from datetime import timedelta

    import torch.distributed as dist

    dist.barrier()
    dist.destroy_process_group()
    try:
        store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
                              timeout=timedelta(seconds=timeout_s))
        key = f"composer/left/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}"
        store.add(key, 1)
        deadline = time.monotonic() + timeout_s
        while store.add(key, 0) < dist_info.world and time.monotonic() < deadline:
            time.sleep(0.01)
    except (KeyError, ValueError, RuntimeError):
        pass  # no store to meet at (it went with its host): leave as before
