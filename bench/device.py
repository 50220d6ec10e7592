"""Device choice and the CUDA switches: CUDA when present (bf16 autocast, channels_last,
cudnn.benchmark), else CPU (fp32, channels_last images). torch is imported inside the
functions."""

from __future__ import annotations

import contextlib
import os
import platform

from bench.errors import ConfigError


def resolve_device(name="auto"):
    """``auto`` -> CUDA if present else CPU; ``cpu``/``cuda`` (or a torch.device) as given.

    Raises:
        ConfigError: ``cuda`` was asked for on a machine without it.
    """
    import torch

    if isinstance(name, torch.device):
        return name
    name = (name or "auto").lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            "--device cuda was given but no CUDA device is available; use --device cpu"
        )
    if name.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
    return torch.device(name)


def is_cuda(device) -> bool:
    """True for a CUDA device."""
    return getattr(device, "type", str(device)) == "cuda"


def device_label(device) -> str:
    """``cpu`` or ``cuda:<device name>``, for records."""
    import torch

    if is_cuda(device):
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return "cpu"


def autocast(device):
    """bf16 autocast on CUDA; a no-op context on CPU (fp32 there)."""
    import torch

    if is_cuda(device):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def prepare_model(model, device):
    """Move ``model`` to ``device`` in channels_last (faster convolutions on CUDA and on
    oneDNN CPUs alike); 3D models get channels_last_3d on CUDA only."""
    import torch

    model = model.to(device)
    volumes = any(p.dim() == 5 for p in model.parameters()) or any(
        getattr(m, "spatial_dims", 2) == 3 for m in model.modules()  # ACS convs keep 2D weights
    )
    if volumes:
        return model.to(memory_format=torch.channels_last_3d) if is_cuda(device) else model
    return model.to(memory_format=torch.channels_last)


def memory_format(device, ndim: int):
    """Memory format of a batch with ``ndim`` dims: channels_last for images everywhere,
    channels_last_3d for volumes on CUDA only."""
    import torch

    if ndim == 4:
        return torch.channels_last
    return torch.channels_last_3d if is_cuda(device) and ndim == 5 else torch.contiguous_format


def hardware() -> dict:
    """CPU model, core count and GPU name, for records."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""
    return {"cpu": cpu, "cores": os.cpu_count() or 0, "gpu": gpu}
