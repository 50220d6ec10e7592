"""The 3D families: every one builds and trains a step at 28 voxels (a 64-voxel volume to
logits: ``tests/e2e/test_models3d_large.py``); the three 2D -> 3D conversions against
hand-computed cases; MONAI's networks by name."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import BenchError
from bench.models.convert3d import acs_split, convert_2d_to_3d
from bench.models.registry import check_ndim, create_model, get_model_spec, list_models

FAMILIES_3D = [n for n in list_models() if get_model_spec(n).ndim == 3]
NUM_CLASSES = 3


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every test here on one torch thread."""


def test_the_3d_families():
    expected = {"small_cnn3d"} | {f"resnet{d}_{m}" for d in (18, 50) for m in ("2_5d", "3d", "acs")}
    assert expected == set(FAMILIES_3D)
    assert get_model_spec("resnet18_acs").label == "ResNet-18 + ACS"
    assert get_model_spec("resnet50_2_5d").label == "ResNet-50 + 2.5D"


def test_the_default_space_on_volumes_is_the_3d_families_with_volume_augmentations():
    from bench.search.spaces import resolve_space

    space = resolve_space(None, img_size=28, ndim=3, dataset="vol")
    assert set(space.families) == set(FAMILIES_3D)
    assert set(space.common.params["augment"].choices) == {"none", "simple"}


@pytest.mark.parametrize("family", FAMILIES_3D)
def test_forward_backward_on_volumes(family: str, size: int = 28):
    model = create_model(family, num_classes=NUM_CLASSES, in_chans=1, img_size=size)
    torch.manual_seed(0)
    x = torch.randn(2, 1, size, size, size)
    out = model(x)
    assert out.shape == (2, NUM_CLASSES)
    loss = F.cross_entropy(out, torch.tensor([0, NUM_CLASSES - 1]))
    assert math.isfinite(loss.item())
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert not any(isinstance(m, (nn.Conv2d, nn.BatchNorm2d)) for m in model.modules())


def _conv2d(out_channels: int = 1) -> nn.Conv2d:
    conv = nn.Conv2d(1, out_channels, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    return conv


def test_2_5d_runs_the_2d_kernel_on_each_axial_slice():
    conv = convert_2d_to_3d(nn.Sequential(_conv2d()), "2.5d")[0]
    assert isinstance(conv, nn.Conv3d) and conv.kernel_size == (1, 3, 3)
    x = torch.zeros(1, 1, 2, 3, 3)
    x[0, 0, 0] = 1.0  # slice 0 all ones, slice 1 zeros
    out = conv(x)[0, 0]
    # a 3x3 box sum with zero padding: 4 at corners, 6 at edges, 9 in the middle
    assert out[0].tolist() == [[4, 6, 4], [6, 9, 6], [4, 6, 4]]
    assert out[1].abs().sum() == 0  # nothing leaks across slices


def test_3d_inflates_the_kernel_to_k_cubed():
    conv = convert_2d_to_3d(nn.Sequential(_conv2d()), "3d")[0]
    assert conv.kernel_size == (3, 3, 3)
    assert torch.allclose(conv.weight, torch.full((1, 1, 3, 3, 3), 1 / 3))
    out = conv(torch.ones(1, 1, 3, 3, 3))[0, 0]
    # the centre sees 27 ones x 1/3 = 9 (the 2D response: mean-preserving inflation);
    # a corner sees 2 x 2 x 2 ones: 8/3; the middle of the front face 2 x 3 x 3: 6
    assert out[1, 1, 1].item() == pytest.approx(9.0)
    assert out[0, 0, 0].item() == pytest.approx(8 / 3)
    assert out[0, 1, 1].item() == pytest.approx(6.0)


def test_acs_splits_channels_over_three_planes():
    assert acs_split(3) == (1, 1, 1) and acs_split(4) == (2, 1, 1) and acs_split(64) == (22, 21, 21)
    conv = convert_2d_to_3d(nn.Sequential(_conv2d(out_channels=3)), "acs")[0]
    x = torch.zeros(1, 1, 3, 3, 3)
    x[0, 0, 1, 1, 1] = 1.0  # one voxel in the centre
    axial, coronal, sagittal = conv(x)[0]
    ones = torch.ones(3, 3)
    # each group spreads the voxel over its own plane through the centre, nowhere else
    assert torch.equal(axial[1], ones) and axial.sum() == 9  # (H, W) plane at D = 1
    assert torch.equal(coronal[:, 1, :], ones) and coronal.sum() == 9  # (D, W) at H = 1
    assert torch.equal(sagittal[:, :, 1], ones) and sagittal.sum() == 9  # (D, H) at W = 1


def test_conversion_keeps_strides_norms_and_pools():
    model = nn.Sequential(nn.Conv2d(1, 6, 3, stride=2, padding=1), nn.BatchNorm2d(6),
                          nn.MaxPool2d(2), nn.AdaptiveAvgPool2d((1, 1)))  # fmt: skip
    for mode in ("2.5d", "3d", "acs"):
        m3 = convert_2d_to_3d(
            nn.Sequential(*[type(m)(**_same(m)) for m in model]), mode
        )  # a fresh copy per mode
        out = m3(torch.randn(2, 1, 16, 16, 16))
        assert out.shape == (2, 6, 1, 1, 1), mode
        assert isinstance(m3[1], nn.BatchNorm3d) and isinstance(m3[2], nn.MaxPool3d)
    with pytest.raises(BenchError, match="no 3D counterpart for LPPool2d"):
        convert_2d_to_3d(nn.Sequential(nn.LPPool2d(2, 2)), "3d")


def _same(m: nn.Module) -> dict:
    if isinstance(m, nn.Conv2d):
        return {"in_channels": 1, "out_channels": 6, "kernel_size": 3, "stride": 2, "padding": 1}
    if isinstance(m, nn.BatchNorm2d):
        return {"num_features": 6}
    if isinstance(m, nn.MaxPool2d):
        return {"kernel_size": 2}
    return {"output_size": (1, 1)}


def test_family_and_data_dimensions_must_match():
    with pytest.raises(BenchError, match="small_cnn takes 2D inputs but adrenalmnist3d holds"):
        check_ndim("small_cnn", 3, "adrenalmnist3d")
    with pytest.raises(BenchError, match="resnet18_acs takes 3D inputs .* use one of: hybrid"):
        check_ndim("resnet18_acs", 2, "breastmnist")
    check_ndim("small_cnn3d", 3, "adrenalmnist3d")


def test_monai_networks_by_name():
    pytest.importorskip("monai")
    spec = get_model_spec("monai:resnet18")
    assert spec.ndim == 3 and spec.source == "monai"
    model = create_model("monai:resnet18", num_classes=2, in_chans=1, img_size=28)
    assert model(torch.randn(2, 1, 28, 28, 28)).shape == (2, 2)
    with pytest.raises(BenchError, match="unknown MONAI network 'DenseNet12'; did you mean"):
        get_model_spec("monai:DenseNet12")


def test_monai_missing_is_one_line(tmp_path):
    out = tmp_path / "out"
    code = (
        "import sys; sys.modules['monai'] = None; from bench.cli import main; "
        "sys.exit(main(['train', '--dataset', 'adrenalmnist3d', '--model', 'monai:resnet18', "
        f"'--out', {str(out)!r}]))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs MONAI, which is not installed" in lines[0], lines
    assert not out.exists()


@pytest.mark.parametrize(("size", "stride"), [(28, 1), (64, 2)])
def test_small_cnn3d_strides_its_stem_on_64_voxel_volumes(size: int, stride: int):
    model = create_model("small_cnn3d", num_classes=2, in_chans=1, img_size=size)
    first = next(m for m in model.modules() if isinstance(m, nn.Conv3d))
    assert first.stride == (stride,) * 3
    with pytest.raises(BenchError, match="stem_stride=3 is not supported; use 1 or 2"):
        create_model("small_cnn3d", num_classes=2, in_chans=1, img_size=size, stem_stride=3)
