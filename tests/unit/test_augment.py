"""Augmentation registry and policies: every registered policy keeps dtype, shape and device,
is seeded by the generator it is given, and draws independently per image."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from bench.augment.registry import (  # noqa: E402
    AUGMENTATIONS,
    build_augmentation,
    get_augmentation,
    list_augmentations,
    register_augmentation,
)
from bench.data.load import load_splits  # noqa: E402
from bench.data.splits import images_to_tensor, labels_to_tensor  # noqa: E402
from bench.errors import BenchError  # noqa: E402

# tiny settings for policies that train something (keeps every test to seconds)
TEST_HP = {"dcgan": {"dcgan_steps": 3, "dcgan_width": 8}}


def batch(tv, n: int = 16):
    """The first ``n`` train images and labels as tensors."""
    spec = tv.spec
    x = images_to_tensor(tv.train.images[:n], n_channels=spec.n_channels, ndim=spec.ndim)
    y = labels_to_tensor(tv.train.labels[:n], multilabel=spec.multilabel)
    return x, y


def run(aug, x, y, seed: int):
    return aug(x, y, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", list_augmentations())
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [28, 64])
def test_policy_contract(name, channels, size, tiny_npz, tmp_path):
    tv = load_splits(tiny_npz(n_channels=channels, size=size, counts=(24, 8, 8))).train_val()
    aug = build_augmentation(
        name, data=tv, img_size=size, seed=0, device="cpu", cache_dir=tmp_path,
        **TEST_HP.get(name, {}),
    )  # fmt: skip
    x, y = batch(tv)
    x0, y0 = x.clone(), y.clone()
    out, out_y = run(aug, x, y, 1)
    assert out.dtype == torch.uint8 and out.shape == x.shape and out.device == x.device
    assert out_y.dtype == y.dtype and out_y.shape == y.shape
    assert torch.equal(x, x0) and torch.equal(y, y0), "the input batch was modified in place"
    again, again_y = run(aug, x, y, 1)
    assert torch.equal(out, again) and torch.equal(out_y, again_y)
    other, _ = run(aug, x, y, 2)
    if get_augmentation(name).random:
        assert not torch.equal(out, other)
        assert not torch.equal(out, x)
    else:
        assert torch.equal(out, x) and torch.equal(other, x)
    assert isinstance(aug.info, dict)


VOLUME_POLICIES = [n for n in list_augmentations() if 3 in get_augmentation(n).ndims]


def test_which_policies_take_volumes():
    assert VOLUME_POLICIES == ["none", "simple"]


@pytest.mark.parametrize("name", VOLUME_POLICIES)
@pytest.mark.parametrize("size", [8, 28])
def test_volume_policy_contract(name, size, tiny_npz):
    tv = load_splits(tiny_npz(size=size, ndim=3, counts=(24, 8, 8))).train_val()
    aug = build_augmentation(name, data=tv, img_size=size, seed=0, device="cpu")
    x, y = batch(tv)
    assert x.shape == (16, 1, size, size, size)
    x0 = x.clone()
    out, _ = run(aug, x, y, 1)
    assert out.dtype == torch.uint8 and out.shape == x.shape and torch.equal(x, x0)
    assert torch.equal(out, run(aug, x, y, 1)[0])  # same generator state, same output
    if name == "simple":
        assert not torch.equal(out, x) and not torch.equal(out, run(aug, x, y, 2)[0])
        # flips, quarter turns and shifts move voxels, they never invent values
        assert set(out.unique().tolist()) <= set(x.unique().tolist()) | {0}


def test_simple_volume_moves_as_drawn():
    from bench.augment.simple import SimpleAugment3D

    x = torch.zeros(1, 1, 10, 10, 10, dtype=torch.uint8)
    x[0, 0, 2, 3, 4] = 200
    aug = SimpleAugment3D(strength=1.0, flip=0.5)
    where = lambda u: torch.nonzero(aug.apply(x, torch.tensor([u]))[0, 0]).tolist()  # noqa: E731
    # no flip, no turn, shifts +1 voxel in D, 0 in H, -1 in W (max shift 1 at side 10)
    assert where([1, 1, 1, 1, 0, 0.99, 0.5, 0.0]) == [[3, 3, 3]]
    assert where([0, 1, 1, 1, 0, 0.5, 0.5, 0.5]) == [[7, 3, 4]]  # flipped along D
    assert where([1, 1, 1, 0, 0, 0.5, 0.5, 0.5]) == [[2, 5, 3]]  # one quarter turn in H-W


@pytest.mark.parametrize("name", ["autoaugment_cifar10", "dcgan"])
def test_image_only_policies_refuse_volumes(name, tiny_npz):
    tv = load_splits(tiny_npz(size=8, ndim=3)).train_val()
    with pytest.raises(BenchError, match=f"augmentation {name} works on 2D data only and .* is "
                       "3D; use one of: none, simple"):  # fmt: skip
        build_augmentation(name, data=tv, img_size=8, seed=0, device="cpu")


def test_builtins_and_declared_params():
    names = list_augmentations()
    for name in ("none", "simple", "autoaugment_imagenet", "autoaugment_cifar10",
                 "autoaugment_svhn", "dcgan"):  # fmt: skip
        assert name in names
    assert get_augmentation("simple").params["simple_strength"] == {
        "type": "float", "low": 0.0, "high": 1.0,
    }  # fmt: skip
    assert get_augmentation("dcgan").params["dcgan_ratio"]["low"] == 0.1
    for name in names:  # declared search params are builder kwargs
        spec = get_augmentation(name)
        accepted = spec.accepted_kwargs()
        assert accepted is None or set(spec.params) <= accepted
    assert get_augmentation("dcgan").source == "built-in"


def test_unknown_name_and_params(tiny_npz):
    with pytest.raises(BenchError, match="did you mean simple"):
        get_augmentation("simpel")
    tv = load_splits(tiny_npz()).train_val()
    with pytest.raises(BenchError, match="does not accept simple_strenght"):
        build_augmentation("simple", data=tv, img_size=28, seed=0, device="cpu",
                           simple_strenght=0.3)  # fmt: skip
    with pytest.raises(BenchError, match=r"simple_strength=1.5 is out of range"):
        build_augmentation("simple", data=tv, img_size=28, seed=0, device="cpu",
                           simple_strength=1.5)  # fmt: skip


def test_prefix_stripped_params_are_accepted(tiny_npz):
    """``strength=0`` (a caller's shorthand for ``simple_strength``) means the same."""
    tv = load_splits(tiny_npz()).train_val()
    x, y = batch(tv)
    a = build_augmentation("simple", data=tv, img_size=28, seed=0, device="cpu",
                           strength=0.0, hflip=1.0)  # fmt: skip
    b = build_augmentation("simple", data=tv, img_size=28, seed=0, device="cpu",
                           simple_strength=0.0, simple_hflip=1.0)  # fmt: skip
    assert torch.equal(run(a, x, y, 0)[0], x.flip(-1))
    assert torch.equal(run(b, x, y, 0)[0], x.flip(-1))


def test_simple_draws_per_image():
    aug = build_augmentation("simple", data=None, img_size=28, seed=0, device="cpu",
                             simple_strength=1.0)  # fmt: skip
    one = torch.zeros(1, 1, 28, 28, dtype=torch.uint8)
    one[..., 8:20, 10:16] = 200
    x = one.repeat(8, 1, 1, 1)
    out, _ = run(aug, x, None, 0)
    distinct = {out[i].numpy().tobytes() for i in range(8)}
    assert len(distinct) == 8
    assert 0 < out.float().mean() < 255


def test_simple_identity_at_zero_strength_no_flip():
    aug = build_augmentation("simple", data=None, img_size=28, seed=0, device="cpu",
                             simple_strength=0.0, simple_hflip=0.0)  # fmt: skip
    x = torch.randint(0, 256, (4, 3, 28, 28), dtype=torch.uint8)
    assert torch.equal(run(aug, x, None, 0)[0], x)


def test_simple_shift_and_flip_values():
    """A pure 2-pixel shift moves a bright square by 2 pixels; a flip mirrors it."""
    from bench.augment.simple import MAX_SHIFT, SimpleAugment

    aug = SimpleAugment(strength=1.0, hflip=0.5, vflip=0.0, noise=0.0)
    x = torch.zeros(2, 1, 28, 28, dtype=torch.uint8)
    x[..., 10:14, 6:12] = 200
    shift = 0.5 + (2 * 2 / 28) / (2 * 2 * MAX_SHIFT)  # tx = 2 px in normalised units
    u = torch.tensor([[0.5, shift, 0.5, 0.5, 0, 0.9, 0.9], [0.5, shift, 0.5, 0.5, 0, 0.1, 0.9]])
    out = aug.apply(x, u)
    moved = torch.zeros_like(x[0])
    moved[:, 10:14, 4:10] = 200  # output(col) = input(col + 2)
    assert torch.equal(out[0], moved)
    assert torch.equal(out[1], moved.flip(-1))


def test_register_plugin_policy_and_duplicate():
    @register_augmentation("test_invert", params={"test_invert_p": {"type": "float"}})
    def test_invert(ctx, *, test_invert_p: float = 1.0):
        return lambda x, y, g: (255 - x, y)

    try:
        assert "test_invert" in list_augmentations("test_*")
        with pytest.raises(BenchError, match="registered twice"):
            register_augmentation("test_invert")(test_invert)
        aug = build_augmentation("test_invert", data=None, img_size=28, seed=0, device="cpu")
        x = torch.zeros(2, 1, 4, 4, dtype=torch.uint8)
        assert int(aug(x, None, None)[0].max()) == 255
    finally:
        AUGMENTATIONS.unregister("test_invert")


def test_bench_models_lists_augmentations(capsys):
    from bench.cli import main

    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    augs = {r["name"] for r in rows if r["kind"] == "augmentation"}
    assert {"none", "simple", "autoaugment_cifar10", "dcgan"} <= augs


def _old_simple_apply(aug, x, u, noise=None):
    """``SimpleAugment.apply`` before the host read of the flip coins went (reference)."""
    import torch.nn.functional as F

    b, _, h, w = x.shape
    out = x
    if aug.strength > 0:
        grid = F.affine_grid(aug.theta(u), [b, 1, h, w], align_corners=False)
        warped = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="zeros",
                               align_corners=False)  # fmt: skip
        if noise is not None:
            warped = warped + (aug.noise * aug.strength * 0.08 * 255.0) * noise
        out = warped.round_().clamp_(0, 255).to(torch.uint8)
    hf, vf = u[:, 5] < aug.hflip, u[:, 6] < aug.vflip
    if bool(hf.any()) or bool(vf.any()):
        out = torch.where(hf[:, None, None, None], out.flip(-1), out)
        out = torch.where(vf[:, None, None, None], out.flip(-2), out)
    return out


def _old_shift_theta(out, shifts):
    """The 3D shift's translation column before the sizes stayed on the host (reference)."""
    sizes = torch.tensor(out.shape[-1:-4:-1], dtype=torch.float32)
    return -2 * shifts.flip(1) / sizes


@pytest.mark.parametrize("hflip,vflip,noise", [(0.5, 0.0, 0.0), (0.0, 0.0, 0.0), (0.3, 0.7, 0.5)])
def test_simple_output_is_unchanged_for_a_generator(hflip, vflip, noise):
    from bench.augment.simple import SimpleAugment

    aug = SimpleAugment(strength=0.7, hflip=hflip, vflip=vflip, noise=noise)
    x = torch.randint(0, 256, (16, 3, 28, 28), dtype=torch.uint8,
                      generator=torch.Generator().manual_seed(1))  # fmt: skip
    ours, _ = aug(x, None, torch.Generator().manual_seed(2))
    g = torch.Generator().manual_seed(2)
    u = torch.rand((16, 7), generator=g)
    z = torch.randn(x.shape, generator=g) if noise > 0 else None
    assert torch.equal(ours, _old_simple_apply(aug, x, u, z))


def test_simple_volume_output_is_unchanged_for_a_generator():
    from bench.augment.simple import MAX_SHIFT_3D, SimpleAugment3D

    aug = SimpleAugment3D(strength=1.0, flip=0.5)
    x = torch.randint(0, 256, (6, 1, 12, 14, 16), dtype=torch.uint8,
                      generator=torch.Generator().manual_seed(3))  # fmt: skip
    u = torch.rand((6, 8), generator=torch.Generator().manual_seed(4))
    ours = aug.apply(x, u)
    # the reference: the same steps with the old translation column
    out = x
    for axis, coin in zip((-3, -2, -1), (u[:, 0], u[:, 1], u[:, 2]), strict=True):
        out = torch.where((coin < 0.5)[:, None, None, None, None], out.flip(axis), out)
    assert out.shape[-1] != out.shape[-2]  # no quarter turn on a non-square H-W plane
    m = int(round(MAX_SHIFT_3D * 16))
    shifts = ((u[:, 5:8] * (2 * m + 1)).floor() - m).clamp(-m, m)
    theta = torch.zeros(6, 3, 4)
    theta[:, 0, 0] = theta[:, 1, 1] = theta[:, 2, 2] = 1.0
    theta[:, :, 3] = _old_shift_theta(out, shifts)
    grid = torch.nn.functional.affine_grid(theta, list(out.shape), align_corners=False)
    ref = torch.nn.functional.grid_sample(out.float(), grid, mode="nearest", align_corners=False)
    assert torch.equal(ours, ref.round_().to(torch.uint8))
    assert not torch.equal(ours, x)
