"""Small CNN: conv-BN-ReLU-max-pool blocks, then fully connected layers (course reports);
``small_cnn3d`` is the same network on volumes, the 3D family a CPU budget can search."""

from __future__ import annotations

from bench.errors import BenchError
from bench.models.registry import register_model

MAX_GRID = 4  # the last feature map is pooled to at most 4x4 before the FC layers
MAX_GRID_3D = 2  # and a volume's to at most 2x2x2 (8 cells, as 4x4 has 16)


def build_small_cnn(
    ndim: int,
    *,
    num_classes: int,
    in_chans: int,
    img_size: int,
    depth: int,
    width: int,
    fc_width: int,
    dropout: float,
    stem_stride: int = 1,
    name: str = "small_cnn",
):
    """Build a small CNN on ``ndim``-D inputs.

    Args:
        ndim: 2 (images) or 3 (volumes).
        num_classes: number of outputs.
        in_chans: input channels.
        img_size: input side.
        depth: conv blocks (conv3-BN-ReLU-maxpool2); block ``i`` has ``width * 2**i`` channels.
        width: channels of the first block.
        fc_width: units of the hidden fully connected layer (0: no hidden layer).
        dropout: dropout before each fully connected layer.
        stem_stride: stride of the first convolution (2 quarters a 2D and eighths a 3D
            network's cost: how 64-voxel volumes fit a CPU budget).
        name: the family name, for messages.

    Returns:
        The ``nn.Module``.
    """
    from torch import nn

    side = _last_side(name, depth=depth, img_size=img_size, stem_stride=stem_stride)
    layers = _conv_blocks(ndim, in_chans, depth=depth, width=width, stem_stride=stem_stride)
    chans = width * 2 ** (depth - 1)  # the last block's channels
    grid = min(side, MAX_GRID if ndim == 2 else MAX_GRID_3D)
    adaptive = nn.AdaptiveAvgPool2d if ndim == 2 else nn.AdaptiveAvgPool3d
    layers += [adaptive(grid), nn.Flatten()]
    features = chans * grid**ndim
    if fc_width > 0:
        layers += [nn.Dropout(dropout), nn.Linear(features, fc_width), nn.ReLU(inplace=True)]
        features = fc_width
    layers += [nn.Dropout(dropout), nn.Linear(features, num_classes)]
    return nn.Sequential(*layers)


def _last_side(name: str, *, depth: int, img_size: int, stem_stride: int) -> int:
    """The side of the last conv block's feature map; a one-line error when ``stem_stride``
    is not 1 or 2 or ``depth`` blocks do not fit ``img_size``."""
    if stem_stride not in (1, 2):
        raise BenchError(f"{name} stem_stride={stem_stride} is not supported; use 1 or 2")
    side = img_size // stem_stride
    for _ in range(depth):
        side //= 2
    if depth < 1 or side < 1:
        raise BenchError(
            f"{name} depth={depth} does not fit img_size={img_size}; "
            f"use depth between 1 and {max(1, img_size.bit_length() - 1)}"
        )
    return side


def _conv_blocks(ndim: int, in_chans: int, *, depth: int, width: int, stem_stride: int) -> list:
    """``depth`` conv3-BN-ReLU-maxpool2 blocks; block ``i`` has ``width * 2**i`` channels."""
    from torch import nn

    conv, norm, pool = (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d) if ndim == 2 else (
        nn.Conv3d, nn.BatchNorm3d, nn.MaxPool3d)  # fmt: skip
    layers: list[nn.Module] = []
    chans = in_chans
    for i in range(depth):
        out = width * 2**i
        stride = stem_stride if i == 0 else 1
        layers += [conv(chans, out, 3, stride=stride, padding=1, bias=False), norm(out),
                   nn.ReLU(inplace=True), pool(2)]  # fmt: skip
        chans = out
    return layers


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
    """A small 2D CNN; see ``build_small_cnn`` for the arguments."""
    return build_small_cnn(
        2, num_classes=num_classes, in_chans=in_chans, img_size=img_size, depth=depth,
        width=width, fc_width=fc_width, dropout=dropout,
    )  # fmt: skip


@register_model(label="Small 3D CNN", sizes=(28, 64), ndim=3)
def small_cnn3d(
    *,
    num_classes: int,
    in_chans: int,
    img_size: int,
    depth: int = 3,
    width: int = 16,
    fc_width: int = 64,
    dropout: float = 0.25,
    stem_stride: int | None = None,
):
    """A small 3D CNN for volumes (fast enough for a CPU budget); see ``build_small_cnn``.
    ``stem_stride`` defaults to 2 for volumes of 64 voxels a side or more, 1 below."""
    if stem_stride is None:
        stem_stride = 2 if img_size >= 64 else 1
    return build_small_cnn(3, num_classes=num_classes, in_chans=in_chans, img_size=img_size,
                           depth=depth, width=width, fc_width=fc_width, dropout=dropout,
                           stem_stride=stem_stride, name="small_cnn3d")  # fmt: skip
