"""Splits held as uint8 arrays, and their move to the device as whole tensors.

``TrainVal`` is what a search sees: it has no test split at all. Only the final
evaluation holds a ``Splits`` (which adds ``test``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.data.spec import DatasetSpec


@dataclass(frozen=True)
class Split:
    """One split: ``images`` uint8 (N,H,W), (N,H,W,C) or (N,D,H,W); ``labels`` int (N, L)."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.images.shape[0])


@dataclass(frozen=True)
class TrainVal:
    """The train and validation splits of one dataset at one data size. No test split."""

    spec: DatasetSpec
    data_size: int
    train: Split
    val: Split


@dataclass(frozen=True)
class Splits:
    """All three splits; only the final evaluation may hold one of these."""

    spec: DatasetSpec
    data_size: int
    train: Split
    val: Split
    test: Split

    def train_val(self) -> TrainVal:
        """The search's view of the data: train and val only."""
        return TrainVal(self.spec, self.data_size, self.train, self.val)


def images_to_tensor(images: np.ndarray, *, n_channels: int, ndim: int = 2, device=None):
    """uint8 images -> one uint8 tensor (N, C, H, W) (or (N, C, D, H, W)) on ``device``."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(images))
    spatial = ndim
    if t.dim() == spatial + 1:  # no channel axis
        t = t.unsqueeze(1)
    elif n_channels > 1 or t.shape[-1] == n_channels:  # channels last on disk
        t = t.movedim(-1, 1)
    return t.contiguous().to(device) if device is not None else t.contiguous()


def labels_to_tensor(labels: np.ndarray, *, multilabel: bool, device=None):
    """Labels -> float (N, L) for multi-label, int64 (N,) otherwise."""
    import torch

    if multilabel:
        t = torch.from_numpy(np.asarray(labels, dtype=np.float32))
    else:
        t = torch.from_numpy(np.asarray(labels, dtype=np.int64).reshape(-1))
    return t.to(device) if device is not None else t
