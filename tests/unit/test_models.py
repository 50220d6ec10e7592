"""Every registered model family: forward + backward at 28 px with 1 and 3 channels (at 64
and 224 px in ``tests/e2e/test_models_large.py``).

The cases come from ``list_models()``, so a newly registered family (built-in, entry point or
``--plugins``) is covered without editing this file.
"""

from __future__ import annotations

from pathlib import Path

import bench_tiny_plugin  # noqa: F401  (test families from the plugin path, covered here too)
import pytest
import torch
from model_steps import NUM_CLASSES, check_family_step, check_space_corners, forward_backward

from bench.errors import BenchError
from bench.models.registry import create_model, get_model_spec, list_models

SIZES = (28, 64, 224)
CHANNELS = (1, 3)
# Test families that are broken on purpose (they exercise failure handling elsewhere).
BROKEN_ON_PURPOSE = {"tiny_boom", "tiny_nan"}
FAMILIES = [  # the 2D families; the 3D ones are in test_models3d.py
    n for n in list_models() if n not in BROKEN_ON_PURPOSE and get_model_spec(n).ndim == 2
]
LABELS = {
    "small_cnn": "Small CNN",
    "resnet18": "ResNet-18",
    "resnet50": "ResNet-50",
    "hybrid": "CNN+Transformer",
}


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every test here on one torch thread."""


def test_builtin_families_are_registered_with_their_labels():
    assert set(LABELS) <= set(list_models())
    for name, label in LABELS.items():
        spec = get_model_spec(name)
        assert spec.label == label
        assert spec.source == "built-in"
        assert set(SIZES) <= set(spec.sizes)


@pytest.mark.parametrize("in_chans", CHANNELS)
@pytest.mark.parametrize("img_size", SIZES[:1])  # the larger sizes: tests/e2e/test_models_large.py
@pytest.mark.parametrize("family", FAMILIES)
def test_forward_backward(family: str, img_size: int, in_chans: int):
    check_family_step(family, img_size=img_size, in_chans=in_chans)


@pytest.mark.parametrize("in_chans", CHANNELS)
def test_timm_model_forward_backward(in_chans: int):
    model = create_model("timm:resnet10t", num_classes=NUM_CLASSES, in_chans=in_chans, img_size=28)
    forward_backward(model, in_chans=in_chans, img_size=28)
    assert get_model_spec("timm:resnet10t").label == "resnet10t"


# --- ResNet: MedMNIST stem at small sizes, torchvision's above --------------------------


@pytest.mark.parametrize(
    ("family", "block", "layers"),
    [("resnet18", "BasicBlock", [2, 2, 2, 2]), ("resnet50", "Bottleneck", [3, 4, 6, 3])],
)
@pytest.mark.parametrize("img_size", [28, 64, 128, 224])
def test_resnet_stem_and_blocks(family: str, block: str, layers: list[int], img_size: int):
    from torch import nn

    model = create_model(family, num_classes=2, in_chans=1, img_size=img_size)
    small = img_size <= 64
    assert model.conv1.in_channels == 1
    assert model.conv1.kernel_size == ((3, 3) if small else (7, 7))
    assert model.conv1.stride == ((1, 1) if small else (2, 2))
    assert isinstance(model.maxpool, nn.Identity if small else nn.MaxPool2d)
    stages = [model.layer1, model.layer2, model.layer3, model.layer4]
    assert [len(s) for s in stages] == layers
    assert {type(b).__name__ for s in stages for b in s} == {block}
    assert model.fc.out_features == 2


def test_resnet_default_is_torchvisions_plain_network():
    import torchvision.models as tvm

    torch.manual_seed(0)
    ours = create_model("resnet18", num_classes=5, in_chans=3, img_size=224)
    torch.manual_seed(0)
    ref = tvm.resnet18(weights=None, num_classes=5)
    ours_sd, ref_sd = ours.state_dict(), ref.state_dict()
    assert list(ours_sd) == list(ref_sd)
    assert all(torch.equal(ours_sd[k], ref_sd[k]) for k in ref_sd)


def test_resnet_params_dropout_and_zero_init():
    from torch import nn

    model = create_model("resnet18", num_classes=2, in_chans=1, img_size=28, dropout=0.3)
    assert isinstance(model.fc[0], nn.Dropout) and model.fc[0].p == 0.3
    model = create_model(
        "resnet50", num_classes=2, in_chans=1, img_size=28, zero_init_residual=True
    )
    assert all(int(torch.count_nonzero(b.bn3.weight)) == 0 for b in model.layer1)


def test_resnet18_28px_parameter_count_matches_medmnist():
    # torchvision's 11,689,512, minus the 7x7 RGB stem (9,408) and the 1000-class fc (513,000),
    # plus a 3x3 1-channel stem (576) and a 2-class fc (1,026): the MedMNIST ResNet-18 (28).
    model = create_model("resnet18", num_classes=2, in_chans=1, img_size=28)
    assert sum(p.numel() for p in model.parameters()) == 11_168_706


# --- hybrid and small_cnn ----------------------------------------------------------------


@pytest.mark.parametrize(("img_size", "grid"), [(28, 7), (64, 14), (224, 14)])
def test_hybrid_token_grid(img_size: int, grid: int):
    model = create_model(
        "hybrid", num_classes=2, in_chans=1, img_size=img_size, conv_blocks=2, embed_dim=32
    )
    assert model.pos.shape == (1, grid * grid, 32)
    assert len(model.encoder.layers) == 2
    assert model.encoder.layers[0].self_attn.num_heads == 4


def test_hybrid_rejects_bad_heads_and_too_many_blocks():
    with pytest.raises(BenchError, match="heads=3 must divide embed_dim=64"):
        create_model("hybrid", num_classes=2, in_chans=1, img_size=28, heads=3)
    with pytest.raises(BenchError, match="conv_blocks=5 does not fit img_size=28"):
        create_model("hybrid", num_classes=2, in_chans=1, img_size=28, conv_blocks=5)


def test_small_cnn_depth_and_width():
    from torch import nn

    model = create_model("small_cnn", num_classes=2, in_chans=3, img_size=28, depth=2, width=8)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(3, 8), (8, 16)]
    with pytest.raises(BenchError, match="depth=5 does not fit img_size=28"):
        create_model("small_cnn", num_classes=2, in_chans=1, img_size=28, depth=5)


# --- the families' search spaces: every corner builds and runs ---------------------------


@pytest.mark.parametrize("img_size", [28])  # at 224: tests/e2e/test_models_large.py
@pytest.mark.parametrize("family", sorted(LABELS))
def test_search_space_corners_build(family: str, img_size: int):
    check_space_corners(family, img_size=img_size)


# --- timm:<name> with a local checkpoint ---------------------------------------------------


@pytest.fixture
def resnet10t_checkpoint(tmp_path) -> tuple[Path, dict]:
    """A state-dict file of a randomly initialised timm resnet10t (3 channels, 7 classes)."""
    import timm

    torch.manual_seed(1)
    state = timm.create_model("resnet10t", in_chans=3, num_classes=7).state_dict()
    path = tmp_path / "resnet10t.pth"
    torch.save(state, path)
    return path, state


def test_timm_checkpoint_loads_every_weight(resnet10t_checkpoint):
    path, state = resnet10t_checkpoint
    model = create_model(
        "timm:resnet10t", num_classes=7, in_chans=3, img_size=28, pretrained=str(path)
    )
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())


def test_timm_checkpoint_adapts_channels_and_drops_classifier(resnet10t_checkpoint):
    path, state = resnet10t_checkpoint
    model = create_model(
        "timm:resnet10t", num_classes=2, in_chans=1, img_size=28, pretrained=str(path)
    )
    loaded = model.state_dict()
    # first conv: summed over the RGB channels (timm's adapt_input_conv)
    assert torch.allclose(loaded["conv1.0.weight"], state["conv1.0.weight"].sum(1, keepdim=True))
    assert torch.equal(loaded["layer4.0.conv2.weight"], state["layer4.0.conv2.weight"])
    assert loaded["fc.weight"].shape == (2, 512)  # new head, not the checkpoint's 7 classes
    forward_backward_model = create_model(
        "timm:resnet10t", num_classes=NUM_CLASSES, in_chans=1, img_size=28, pretrained=str(path)
    )
    forward_backward(forward_backward_model, in_chans=1, img_size=28)


def test_timm_checkpoint_errors(tmp_path, resnet10t_checkpoint):
    path, _ = resnet10t_checkpoint
    kw = dict(num_classes=2, in_chans=1, img_size=28)
    with pytest.raises(BenchError, match="neither 'hub' nor an existing checkpoint file"):
        create_model("timm:resnet10t", pretrained=str(tmp_path / "missing.pth"), **kw)
    with pytest.raises(BenchError, match="does not fit timm model resnet14t"):
        create_model("timm:resnet14t", pretrained=str(path), **kw)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(BenchError, match="cannot read checkpoint"):
        create_model("timm:resnet10t", pretrained=str(garbage), **kw)


def test_timm_unknown_name_suggests_close_matches():
    with pytest.raises(BenchError, match=r"unknown timm model 'resnet10x'.*timm:resnet10t"):
        get_model_spec("timm:resnet10x")


