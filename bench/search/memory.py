"""Memory as a constraint like time: before a trial trains, its peak host memory is estimated
from what one training step holds (the activations saved for backward at its batch size, the
weights, gradients and Adam's moments), and its batch size is capped so that the process stays
under the run's limit (its evaluation batch too); a trial that does not fit even at
:data:`MIN_BATCH` is pruned with the reason. The limit is ``--max-memory`` or
:data:`MEMORY_SHARE` of the memory available when the run starts. On CUDA the activations
live in the GPU's memory, whose own limit applies (an out-of-memory trial fails with that
reason), so the cap is for CPU runs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from bench.errors import ConfigError

MEMORY_SHARE = 0.8  # of the memory available at the start, when --max-memory is not given
BACKWARD_FACTOR = 1.4  # a step's peak / the activations saved for backward (ResNet-50, 28 px:
#                        19 MB saved per image, 26 MB per image measured at batch 64)
OPTIMIZER_BYTES = 16  # per parameter: fp32 weights, gradients and Adam's two moments
MIN_BATCH = 8  # a smaller batch is not worth training (BatchNorm statistics get noisy)
_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_memory(text: str) -> int:
    """``8G``, ``512M``, ``1.5G`` (binary units, an optional ``B``/``iB``) -> bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", str(text), re.IGNORECASE)
    if not m:
        raise ConfigError(f"bad --max-memory {text!r}: give a size like 8G or 512M")
    size = float(m.group(1)) * _UNITS[m.group(2).upper()]
    if size < 2**20:
        raise ConfigError(f"--max-memory {text}: give a size of at least 1M, e.g. 8G")
    return int(size)


def fmt_bytes(n: float) -> str:
    """``3.0G``, ``512M``: how --max-memory spells a size."""
    return f"{n / 2**30:.1f}G" if n >= 2**30 else f"{n / 2**20:.0f}M"


def available_bytes() -> int:
    """MemAvailable of /proc/meminfo (else the physical memory), in bytes."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def rss_bytes() -> int:
    """The resident memory of this process now, in bytes."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def default_limit() -> int:
    """The run's limit without --max-memory: what this process holds plus a share of the
    rest of the machine's available memory."""
    return int(rss_bytes() + MEMORY_SHARE * available_bytes())


def saved_bytes_per_image(model, *, in_chans: int, img_size: int, ndim: int = 2) -> float:
    """Bytes of activations one training image leaves saved for backward (a forward pass on
    2 random images on the CPU; the weights are not counted, buffers are restored)."""
    import torch

    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    buffers = {k: v.detach().clone() for k, v in model.named_buffers()}
    model.train()
    x = torch.randn(2, in_chans, *(img_size,) * ndim)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x)
    with torch.no_grad():
        for name, buf in model.named_buffers():
            buf.copy_(buffers[name])
    return sum(seen.values()) / 2


def step_bytes(per_image: float, n_params: int, batch: int) -> float:
    """Estimated peak bytes of one training step at ``batch``."""
    return BACKWARD_FACTOR * per_image * batch + OPTIMIZER_BYTES * n_params


def batch_cap(limit: int, *, per_image: float, n_params: int, in_use: int) -> int:
    """The largest batch whose step fits in ``limit`` with ``in_use`` bytes already held
    (0 when not even one image fits)."""
    room = limit - in_use - OPTIMIZER_BYTES * n_params
    return max(0, int(room // max(BACKWARD_FACTOR * per_image, 1.0)))


def eval_cap(limit: int, *, per_image: float, n_params: int, in_use: int) -> int:
    """The largest evaluation batch that fits: inference holds a few layers' activations at a
    time, never more than training saves for backward, so this bounds it from above."""
    room = limit - in_use - OPTIMIZER_BYTES * n_params
    return max(1, int(room // max(per_image, 1.0)))
