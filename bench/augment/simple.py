"""``none`` and ``simple``: flips, rotation, shift, zoom and optional noise, batched on the device.

Every image gets its own random affine; one ``affine_grid``/``grid_sample`` call warps the batch.
Volumes (B, C, D, H, W) get flips along each axis, a 90-degree rotation in the H-W plane and
a small whole-voxel shift, each drawn per volume.
"""

from __future__ import annotations

import math
from typing import Any

from bench.augment.registry import AugmentContext, data_ndim, register_augmentation
from bench.errors import BenchError

MAX_ROTATE_DEG = 30.0  # at simple_strength=1
MAX_SHIFT = 0.15  # fraction of the side
MAX_ZOOM = 0.25  # scale in [1 - z, 1 + z]
MAX_NOISE = 0.08  # Gaussian noise std as a fraction of 255, times simple_noise
MAX_SHIFT_3D = 0.1  # whole-voxel shifts of a volume, up to this fraction of the side


def uniform(shape: tuple[int, ...], generator: Any, device: Any):
    """U[0, 1) floats drawn from ``generator`` (on its own device), moved to ``device``."""
    import torch

    return torch.rand(shape, generator=generator, device=generator.device).to(device)


class Identity:
    """The ``none`` policy: returns the batch unchanged."""

    def __init__(self) -> None:
        self.info: dict[str, Any] = {}

    def __call__(self, x, y, generator):
        return x, y


@register_augmentation(random=False, ndims=(2, 3))
def none(ctx: AugmentContext) -> Identity:
    """No augmentation."""
    return Identity()


class SimpleAugment:
    """Per-image random flips and affine warp (rotation, shift, zoom), optional noise.

    Args:
        strength: scales rotation, shift, zoom and noise ranges (0: flips only).
        hflip: probability of a horizontal flip.
        vflip: probability of a vertical flip.
        noise: Gaussian noise level in [0, 1] (std ``noise * strength * 0.08 * 255``).
    """

    def __init__(self, *, strength: float, hflip: float, vflip: float, noise: float) -> None:
        self.strength, self.hflip, self.vflip, self.noise = strength, hflip, vflip, noise
        self.info: dict[str, Any] = {}

    def theta(self, u):
        """(B, 2, 3) affine matrices (output -> input coordinates) from U[0,1) draws (B, 7):
        rotation, shift x, shift y, zoom, (unused), h-flip and v-flip coins."""
        import torch

        s = self.strength
        angle = (2 * u[:, 0] - 1) * math.radians(MAX_ROTATE_DEG) * s
        tx = (2 * u[:, 1] - 1) * 2 * MAX_SHIFT * s  # normalised coordinates span 2
        ty = (2 * u[:, 2] - 1) * 2 * MAX_SHIFT * s
        zoom = 1 + (2 * u[:, 3] - 1) * MAX_ZOOM * s
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        row0 = torch.stack([cos, -sin, tx], 1)
        row1 = torch.stack([sin, cos, ty], 1)
        return torch.stack([row0, row1], 1)

    def __call__(self, x, y, generator):
        import torch

        u = uniform((x.shape[0], 7), generator, x.device)
        noise = None
        if self.noise > 0 and self.strength > 0:
            noise = torch.randn(x.shape, generator=generator, device=generator.device)
        return self.apply(x, u, noise.to(x.device) if noise is not None else None), y

    def apply(self, x, u, noise=None):
        """Warp, add ``noise`` (standard normal, x's shape) and flip ``x`` as draws ``u`` say."""
        import torch
        import torch.nn.functional as F

        b, _, h, w = x.shape
        out = x
        if self.strength > 0:
            grid = F.affine_grid(self.theta(u), [b, 1, h, w], align_corners=False)
            warped = F.grid_sample(
                x.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False
            )
            if noise is not None:
                warped = warped + (self.noise * self.strength * MAX_NOISE * 255.0) * noise
            out = warped.round_().clamp_(0, 255).to(torch.uint8)
        if self.hflip > 0:  # a where on the device, not a host read of the coins
            out = torch.where((u[:, 5] < self.hflip)[:, None, None, None], out.flip(-1), out)
        if self.vflip > 0:
            out = torch.where((u[:, 6] < self.vflip)[:, None, None, None], out.flip(-2), out)
        return out


class SimpleAugment3D:
    """Per-volume random flips along D, H and W (probability ``flip`` each), a rotation by a
    multiple of 90 degrees in the H-W plane (probability ``strength``) and a whole-voxel
    shift along each axis of up to ``strength * MAX_SHIFT_3D`` of the side (zeros enter)."""

    def __init__(self, *, strength: float, flip: float) -> None:
        self.strength, self.flip = strength, flip
        self.info: dict[str, Any] = {}

    def __call__(self, x, y, generator):
        return self.apply(x, uniform((x.shape[0], 8), generator, x.device)), y

    def apply(self, x, u):
        """Augment ``x`` as the U[0,1) draws ``u`` (B, 8) say: three flip coins, rotation
        coin and quarter turns, three shifts."""
        import torch
        import torch.nn.functional as F

        out = x
        for axis, coin in zip((-3, -2, -1), (u[:, 0], u[:, 1], u[:, 2]), strict=True):
            out = torch.where((coin < self.flip)[:, None, None, None, None], out.flip(axis), out)
        if self.strength > 0 and out.shape[-1] == out.shape[-2]:
            turns = torch.where(u[:, 3] < self.strength, 1 + (u[:, 4] * 3).long().clamp(max=2), 0)
            rotated = torch.stack([out.rot90(k, dims=(-2, -1)) for k in range(4)])
            out = rotated[turns, torch.arange(out.shape[0], device=out.device)]
        side = out.shape[-1]
        max_shift = int(round(self.strength * MAX_SHIFT_3D * side))
        if max_shift > 0:
            shifts = ((u[:, 5:8] * (2 * max_shift + 1)).floor() - max_shift).clamp(
                -max_shift, max_shift
            )
            theta = torch.zeros(out.shape[0], 3, 4, device=out.device)
            theta[:, 0, 0] = theta[:, 1, 1] = theta[:, 2, 2] = 1.0
            for row, axis in enumerate((-1, -2, -3)):  # grid order is (x=W, y=H, z=D)
                # a Python divisor: no host-to-device copy of the sizes
                theta[:, row, 3] = -2 * shifts[:, axis] / float(out.shape[axis])
            grid = F.affine_grid(theta, list(out.shape), align_corners=False)
            out = F.grid_sample(out.float(), grid, mode="nearest", padding_mode="zeros",
                                align_corners=False).round_().to(torch.uint8)  # fmt: skip
        return out


@register_augmentation(
    params={"simple_strength": {"type": "float", "low": 0.0, "high": 1.0}}, ndims=(2, 3)
)
def simple(
    ctx: AugmentContext,
    *,
    simple_strength: float = 0.5,
    simple_hflip: float = 0.5,
    simple_vflip: float = 0.0,
    simple_noise: float = 0.0,
) -> SimpleAugment:
    """Flips, rotation (up to 30 deg), shift (15%), zoom (25%) scaled by ``simple_strength``;
    on volumes :class:`SimpleAugment3D` (flips, quarter turns, shifts up to 10%).

    Args:
        ctx: the build context (its data's ``ndim`` picks images or volumes).
        simple_strength: in [0, 1], scales every range (and the noise).
        simple_hflip: probability of a horizontal flip (of a flip along each axis, 3D).
        simple_vflip: probability of a vertical flip.
        simple_noise: in [0, 1], Gaussian noise level (0: none).
    """
    for key, value in (
        ("simple_strength", simple_strength),
        ("simple_hflip", simple_hflip),
        ("simple_vflip", simple_vflip),
        ("simple_noise", simple_noise),
    ):
        if not 0.0 <= float(value) <= 1.0:
            raise BenchError(f"{key}={value} is out of range; give a value in [0, 1]")
    if data_ndim(ctx.data) == 3:
        return SimpleAugment3D(strength=float(simple_strength), flip=float(simple_hflip))
    return SimpleAugment(
        strength=float(simple_strength),
        hflip=float(simple_hflip),
        vflip=float(simple_vflip),
        noise=float(simple_noise),
    )
