"""The 3D families at 64 voxels: each builds for that size and maps a volume to logits (28
voxels, forward and backward: ``tests/unit/test_models3d.py``)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.models.registry import create_model, get_model_spec, list_models

FAMILIES_3D = [n for n in list_models() if get_model_spec(n).ndim == 3]
NUM_CLASSES = 3


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every test here on one torch thread."""


@pytest.mark.parametrize("family", FAMILIES_3D)
def test_a_64_voxel_volume_maps_to_logits(family: str):
    """At 64 voxels a family builds for that size and maps a volume to finite logits; the
    backward pass is the same code at 28 (tests/unit), and at 64 it took ResNet-50 + ACS 150 s of
    one thread, a tenth of CI."""
    model = create_model(family, num_classes=NUM_CLASSES, in_chans=1, img_size=64).eval()
    torch.manual_seed(0)
    with torch.no_grad():
        out = model(torch.randn(1, 1, 64, 64, 64))
    assert out.shape == (1, NUM_CLASSES) and torch.isfinite(out).all()
    assert not any(isinstance(m, (nn.Conv2d, nn.BatchNorm2d)) for m in model.modules())
