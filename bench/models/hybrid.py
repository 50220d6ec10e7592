"""CNN+Transformer hybrid: conv blocks -> tokens + learned positions -> Transformer encoder."""

from __future__ import annotations

from bench.errors import BenchError
from bench.models.registry import register_model

MAX_GRID = 14  # the feature map is pooled to at most 14x14 = 196 tokens


@register_model(label="CNN+Transformer")
def hybrid(
    *,
    num_classes: int,
    in_chans: int,
    img_size: int,
    conv_blocks: int = 2,
    embed_dim: int = 64,
    depth: int = 2,
    heads: int = 4,
    dropout: float = 0.1,
    mlp_ratio: float = 2.0,
):
    """Build the CNN+Transformer hybrid.

    Args:
        num_classes: number of outputs.
        in_chans: input channels.
        img_size: input height and width.
        conv_blocks: conv-BN-ReLU-maxpool-dropout blocks; the last has ``embed_dim`` channels
            and each earlier one half of the next (at least 16).
        embed_dim: token width of the encoder.
        depth: Transformer encoder layers.
        heads: attention heads (must divide ``embed_dim``).
        dropout: dropout in the conv blocks, the encoder and before the classifier.
        mlp_ratio: feed-forward width as a multiple of ``embed_dim``.

    Returns:
        The ``nn.Module``.
    """
    side = img_size >> conv_blocks
    if conv_blocks < 1 or side < 1:
        raise BenchError(
            f"hybrid conv_blocks={conv_blocks} does not fit img_size={img_size}; "
            f"use conv_blocks between 1 and {max(1, img_size.bit_length() - 1)}"
        )
    if embed_dim % heads:
        raise BenchError(f"hybrid heads={heads} must divide embed_dim={embed_dim}")
    channels = [max(16, embed_dim >> (conv_blocks - 1 - i)) for i in range(conv_blocks)]
    from bench.models.hybrid_net import HybridNet

    return HybridNet(
        num_classes=num_classes,
        in_chans=in_chans,
        grid=min(side, MAX_GRID),
        channels=channels,
        embed_dim=embed_dim,
        depth=depth,
        heads=heads,
        dropout=dropout,
        mlp_ratio=mlp_ratio,
    )
