"""The GPU of each local process of ``bench run --jobs N``, and its share of that GPU's memory.

Process ``i`` (the run is 0, its workers 1..N-1) takes the ``i``-th of the GPUs the run may
use, cycling: those of the ``CUDA_VISIBLE_DEVICES`` it inherited (ids or UUIDs), else every
GPU. Processes that share a GPU each get a fraction of its memory
(``torch.cuda.set_per_process_memory_fraction``): their share of ``--max-memory`` when given,
else an equal share; a process alone on its GPU without ``--max-memory`` is not limited. The
run computes each worker's fraction and passes it in :data:`FRACTION_ENV`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from bench.device import is_cuda

if TYPE_CHECKING:
    from bench.run.settings import RunConfig

FRACTION_ENV = "BENCH_GPU_MEMORY_FRACTION"  # a worker's fraction, chosen by the run


def visible_devices(mask: str | None, count: int) -> list[str]:
    """The GPUs a process may use, as ``CUDA_VISIBLE_DEVICES`` entries: the inherited
    ``mask``'s (at most ``count``, the GPUs torch sees through it), else ``0..count-1``."""
    if mask is None:
        return [str(i) for i in range(count)]
    entries = [d.strip() for d in mask.split(",") if d.strip()]
    return entries[:count] if count else entries


def process_devices(jobs: int, visible: list[str]) -> list[str]:
    """The GPU of each of ``jobs`` processes (the run first): the ``visible`` ones in turn."""
    return [visible[i % len(visible)] for i in range(jobs)]


def sharing(index: int, jobs: int, n_gpus: int) -> int:
    """How many of the ``jobs`` processes share process ``index``'s GPU (itself included)."""
    return sum(1 for j in range(jobs) if j % n_gpus == index % n_gpus)


def memory_fraction(*, sharing: int, limit: int | None, total: int) -> float | None:
    """The fraction of its GPU's ``total`` bytes a process may allocate: ``limit`` (its share
    of ``--max-memory``) over ``total`` when given, at most 1; else an equal share among the
    ``sharing`` processes on the GPU; None (no limit) for a process alone without a limit."""
    if limit is not None:
        return min(1.0, limit / total)
    return 1.0 / sharing if sharing > 1 else None


def gpu_fraction(index: int, jobs: int, *, limit: int | None) -> float | None:
    """:func:`memory_fraction` of process ``index`` on this machine's visible GPUs (whose
    ``index % count``-th it takes)."""
    import torch

    count = torch.cuda.device_count()
    total = torch.cuda.get_device_properties(index % count).total_memory
    return memory_fraction(sharing=sharing(index, jobs, count), limit=limit, total=total)


def own_fraction(cfg: RunConfig) -> float | None:
    """This process's fraction on a CUDA run (None on CPU, or unlimited): a worker of
    ``bench run --jobs`` takes the run's (:data:`FRACTION_ENV`), the run or a lone
    ``bench search`` is process 0 of its ``jobs``."""
    if not is_cuda(cfg.device):
        return None
    if cfg.follow is not None:
        text = os.environ.get(FRACTION_ENV, "")
        return float(text) if text else None
    return gpu_fraction(0, cfg.jobs, limit=cfg.gpu_memory_limit)


def limit_memory(device, fraction: float | None) -> None:
    """``torch.cuda.set_per_process_memory_fraction`` on a CUDA ``device`` (when a fraction is
    given); allocations past it fail as out of memory, which fails the one trial."""
    if fraction is None or not is_cuda(device):
        return
    import torch

    torch.cuda.set_per_process_memory_fraction(fraction, getattr(device, "index", None))
