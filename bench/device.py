"""Device choice and every device-specific switch, as a :class:`DevicePolicy`: CUDA when
present (bf16 training autocast, channels_last, channels_last_3d for volume models with 3D
weights, synchronised timing, cudnn.benchmark), else CPU (fp32, channels_last images).
torch is imported inside the functions."""

from __future__ import annotations

import contextlib
import os
import platform
from dataclasses import dataclass

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
    device = torch.device(name)
    if policy_for(device).cudnn_benchmark:
        torch.backends.cudnn.benchmark = True
    return device


def is_cuda(device) -> bool:
    """True for a CUDA device."""
    return getattr(device, "type", str(device)) == "cuda"


def device_label(device) -> str:
    """``cpu`` or ``cuda:<device name>``, for records."""
    import torch

    if is_cuda(device):
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return "cpu"


@dataclass(frozen=True)
class DevicePolicy:
    """The device-specific switches of training, evaluation and timing, in one place. Any
    policy applies on any device: the CUDA one on the CPU too (bf16 autocast,
    channels_last and channels_last_3d all exist there), which is how the CPU suite checks
    the CUDA rules. The split is resident on the device under both (uint8, no per-batch
    host-to-device copy), so that is no switch.

    Attributes:
        name: ``cuda`` or ``cpu``, the device the policy is made for.
        autocast_dtype: training's autocast dtype (``bfloat16``); None: fp32. Evaluation is
            fp32 under every policy.
        volumes_channels_last: volume models whose every 4D/5D weight is 5D, and volume
            batches, in channels_last_3d (images are channels_last under every policy).
        sync: wait for the device before a clock is read (launches are asynchronous).
        check_every: training batches between the loss's finiteness checks (a host read).
        cudnn_benchmark: let cuDNN time its kernels per shape (set by :func:`resolve_device`).
    """

    name: str
    autocast_dtype: str | None = None
    volumes_channels_last: bool = False
    sync: bool = False
    check_every: int = 1
    cudnn_benchmark: bool = False

    def autocast(self, device):
        """Training's autocast for tensors on ``device``; a no-op context for fp32."""
        import torch

        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(torch.device(device).type, dtype=getattr(torch, self.autocast_dtype))

    def model_format(self, model):
        """The memory format ``model`` is converted to, or None to leave it as built:
        channels_last for images; channels_last_3d for a volume model only when every 4D/5D
        weight and buffer is 5D (ACS convolutions keep 4D weights, on which the conversion
        raises); otherwise None."""
        import torch

        tensors = [t for t in (*model.parameters(), *model.buffers()) if t.dim() in (4, 5)]
        acs = any(getattr(m, "spatial_dims", 2) == 3 for m in model.modules())  # 2D weights
        volumes = acs or any(t.dim() == 5 for t in tensors)
        if not volumes:
            return torch.channels_last
        if self.volumes_channels_last and all(t.dim() == 5 for t in tensors):
            return torch.channels_last_3d
        return None

    def prepare_model(self, model, device):
        """``model`` on ``device`` in :meth:`model_format`."""
        model = model.to(device)
        fmt = self.model_format(model)
        return model if fmt is None else model.to(memory_format=fmt)

    def batch_format(self, ndim: int):
        """Memory format of a batch with ``ndim`` dims: channels_last for images,
        channels_last_3d for volumes with :attr:`volumes_channels_last`, else contiguous."""
        import torch

        if ndim == 4:
            return torch.channels_last
        if ndim == 5 and self.volumes_channels_last:
            return torch.channels_last_3d
        return torch.contiguous_format

    def synchronize(self, device) -> None:
        """Wait for ``device``'s queued work (before a clock is read) when :attr:`sync`."""
        if self.sync and is_cuda(device):
            import torch

            torch.cuda.synchronize(device)


CPU_POLICY = DevicePolicy("cpu")
CUDA_POLICY = DevicePolicy("cuda", autocast_dtype="bfloat16", volumes_channels_last=True,
                           sync=True, check_every=25, cudnn_benchmark=True)  # fmt: skip


def policy_for(device) -> DevicePolicy:
    """The policy of ``device``: :data:`CUDA_POLICY` on CUDA, else :data:`CPU_POLICY`."""
    return CUDA_POLICY if is_cuda(device) else CPU_POLICY


def prepare_model(model, device, policy: DevicePolicy | None = None):
    """``model`` on ``device`` in the memory format of ``policy`` (default: the device's)."""
    return (policy or policy_for(device)).prepare_model(model, device)


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
