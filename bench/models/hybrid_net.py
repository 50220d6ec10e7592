"""The CNN+Transformer network of the ``hybrid`` family (imports torch; loaded by the builder)."""

from __future__ import annotations

import torch
from torch import nn


class HybridNet(nn.Module):
    """Conv-BN-ReLU-maxpool blocks, a token grid, a pre-norm encoder, mean-pool, linear."""

    def __init__(
        self,
        *,
        num_classes: int,
        in_chans: int,
        grid: int,
        channels: list[int],
        embed_dim: int,
        depth: int,
        heads: int,
        dropout: float,
        mlp_ratio: float,
    ) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        prev = in_chans
        for out in channels:
            blocks += [
                nn.Conv2d(prev, out, 3, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
                nn.Dropout2d(dropout),
            ]
            prev = out
        blocks.append(nn.AdaptiveAvgPool2d(grid))
        self.features = nn.Sequential(*blocks)
        self.proj = nn.Conv2d(prev, embed_dim, 1) if prev != embed_dim else nn.Identity()
        self.pos = nn.Parameter(torch.zeros(1, grid * grid, embed_dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(
            d_model=embed_dim,
            nhead=heads,
            dim_feedforward=int(embed_dim * mlp_ratio),
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, num_layers=depth, norm=nn.LayerNorm(embed_dim), enable_nested_tensor=False
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(embed_dim, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(self.features(x))  # (B, E, g, g)
        x = x.flatten(2).transpose(1, 2) + self.pos  # (B, g*g, E)
        x = self.encoder(x)
        return self.head(x.mean(dim=1))
