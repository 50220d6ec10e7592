"""The class-conditional DCGAN networks (imported only when a GAN is built: it imports torch).

Generator: [z, condition] -> transposed conv to a base grid, then stride-2 transposed convs with
BatchNorm + ReLU, tanh out. Discriminator: stride-2 convs with LeakyReLU (BatchNorm after the
first), no pooling, projection conditioning on the flattened features. The condition is a one-hot
class vector or a multi-hot label vector.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.errors import BenchError

MAX_CHANNELS = 256


def layout(size: int) -> tuple[int, int]:
    """(base grid side, number of x2 up-samplings) with ``base * 2**n == size``, base in [4, 8].

    Raises:
        BenchError: ``size`` cannot be reached by doubling from a 4..8 grid (e.g. odd sizes).
    """
    base, n = size, 0
    while base % 2 == 0 and base // 2 >= 4:
        base //= 2
        n += 1
    if n < 1 or base > 8:
        raise BenchError(
            f"dcgan cannot generate {size} px images; use a size like 28, 64, 128 or 224"
        )
    return base, n


def _channels(width: int, level: int) -> int:
    return min(MAX_CHANNELS, width * 2**level)


class Generator(nn.Module):
    """Conditional DCGAN generator: ``G(z, c) -> images in [-1, 1]`` (B, chans, size, size)."""

    def __init__(self, *, z_dim: int, cond_dim: int, chans: int, size: int, width: int) -> None:
        super().__init__()
        base, n_up = layout(size)
        ch = _channels(width, n_up - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(z_dim + cond_dim, ch, base, 1, 0, bias=False),
            nn.BatchNorm2d(ch),
            nn.ReLU(True),
        ]
        for level in range(n_up - 2, -1, -1):
            out = _channels(width, level)
            layers += [
                nn.ConvTranspose2d(ch, out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(True),
            ]
            ch = out
        layers += [nn.ConvTranspose2d(ch, chans, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([z, cond], 1)[:, :, None, None])


class Discriminator(nn.Module):
    """Conditional DCGAN discriminator with projection: ``D(x, c) -> logits`` (B,)."""

    def __init__(self, *, cond_dim: int, chans: int, size: int, width: int) -> None:
        super().__init__()
        base, n_down = layout(size)
        layers: list[nn.Module] = [nn.Conv2d(chans, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        ch = width
        for level in range(1, n_down):
            out = _channels(width, level)
            layers += [
                nn.Conv2d(ch, out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(out),
                nn.LeakyReLU(0.2, True),
            ]
            ch = out
        self.features = nn.Sequential(*layers, nn.Flatten())
        feat = ch * base * base
        self.head = nn.Linear(feat, 1)
        self.embed = nn.Linear(cond_dim, feat, bias=False)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        return self.head(h).squeeze(1) + (self.embed(cond) * h).sum(1)


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: N(0, 0.02) convolutions, N(1, 0.02) BatchNorm scales."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
