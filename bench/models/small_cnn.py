"""Small CNN: conv-BN-ReLU-max-pool blocks, then fully connected layers (course reports)."""

from __future__ import annotations

from bench.errors import BenchError
from bench.models.registry import register_model

MAX_GRID = 4  # the last feature map is pooled to at most 4x4 before the FC layers


@register_model(label="Small CNN")
def small_cnn(
    *,
    num_classes: int,
    in_chans: int,
    img_size: int,
    depth: int = 3,
    width: int = 32,
    fc_width: int = 128,
    dropout: float = 0.25,
):
    """Build a small CNN.

    Args:
        num_classes: number of outputs.
        in_chans: input channels.
        img_size: input height and width.
        depth: conv blocks (conv3x3-BN-ReLU-maxpool2); block ``i`` has ``width * 2**i`` channels.
        width: channels of the first block.
        fc_width: units of the hidden fully connected layer (0: no hidden layer).
        dropout: dropout before each fully connected layer.

    Returns:
        The ``nn.Module``.
    """
    from torch import nn

    side = img_size
    for _ in range(depth):
        side //= 2
    if depth < 1 or side < 1:
        raise BenchError(
            f"small_cnn depth={depth} does not fit img_size={img_size}; "
            f"use depth between 1 and {max(1, img_size.bit_length() - 1)}"
        )
    layers: list[nn.Module] = []
    chans = in_chans
    for i in range(depth):
        out = width * 2**i
        layers += [
            nn.Conv2d(chans, out, 3, padding=1, bias=False),
            nn.BatchNorm2d(out),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        ]
        chans = out
    grid = min(side, MAX_GRID)
    layers += [nn.AdaptiveAvgPool2d(grid), nn.Flatten()]
    features = chans * grid * grid
    if fc_width > 0:
        layers += [nn.Dropout(dropout), nn.Linear(features, fc_width), nn.ReLU(inplace=True)]
        features = fc_width
    layers += [nn.Dropout(dropout), nn.Linear(features, num_classes)]
    return nn.Sequential(*layers)
