"""Per-image AutoAugment: every output is one torchvision's own AutoAugment can produce."""

from __future__ import annotations

import itertools

import pytest

torch = pytest.importorskip("torch")
from torchvision.transforms.v2 import AutoAugment, AutoAugmentPolicy  # noqa: E402

from bench.augment.autoaugment import BatchAutoAugment  # noqa: E402

POLICIES = ["imagenet", "cifar10", "svhn"]


def candidates(tv: AutoAugment, img):
    """Every output torchvision's AutoAugment can give for ``img``: {bytes: {sub-policy ids}}.

    Enumerates each sub-policy x applied or not x sign, one image at a time, with torchvision's
    own op implementation and magnitude bins (results of shared op prefixes are memoised).
    """
    h, w = img.shape[-2:]
    memo: dict[tuple, torch.Tensor] = {(): img}

    def run(steps: tuple) -> torch.Tensor:
        if steps not in memo:
            prev = run(steps[:-1])
            op, mag = steps[-1]
            memo[steps] = (
                prev
                if mag is None
                else tv._apply_image_or_video_transform(
                    prev, op, mag, interpolation=tv.interpolation, fill=tv._fill
                )
            )
        return memo[steps]

    out: dict[bytes, set[int]] = {}
    for k, sub in enumerate(tv._policies):
        choices = []
        for op, _, bin_ in sub:
            fn, signed = tv._AUGMENTATION_SPACE[op]
            mags = fn(10, h, w)
            opts: list[float | None] = [None]  # not applied
            if mags is None:
                opts.append(0.0)
            else:
                opts.append(float(mags[bin_]))
                if signed:
                    opts.append(-float(mags[bin_]))
            choices.append([(op, m) for m in opts])
        for steps in itertools.product(*choices):
            out.setdefault(run(tuple(steps)).numpy().tobytes(), set()).add(k)
    return out


def images(n: int, c: int, size: int, seed: int = 0):
    """Structured uint8 images: a blob and gradients, so geometric ops change them visibly."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    base = (xx * 3 + yy * 5).float() % 200
    noise = torch.randint(0, 56, (n, c, size, size), generator=g).float()
    shift = torch.randint(0, size // 2, (n, 1, 1, 1), generator=g).float()
    blob = ((xx - size / 2 - shift) ** 2 + (yy - size / 3) ** 2 < (size / 4) ** 2).float() * 60
    return (base + noise + blob).clamp(0, 255).to(torch.uint8)


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("channels,size", [(1, 28), (3, 64)])
def test_outputs_are_torchvision_outputs(policy, channels, size):
    aug = BatchAutoAugment(policy)
    tv = AutoAugment(AutoAugmentPolicy(policy))
    x = images(12 if size == 28 else 6, channels, size)
    out, _ = aug(x, None, torch.Generator().manual_seed(7))
    assert out.dtype == torch.uint8 and out.shape == x.shape
    consistent = []  # per image: the sub-policies that explain its output
    for i in range(x.shape[0]):
        cands = candidates(tv, x[i])
        key = out[i].numpy().tobytes()
        assert key in cands, f"image {i}: not an output torchvision's AutoAugment can produce"
        consistent.append(cands[key])
    # one draw per batch would leave a sub-policy explaining every image; per-image draws do not
    assert not set.intersection(*consistent), "all images look like one sub-policy draw"


def test_plan_follows_torchvision_probabilities():
    aug = BatchAutoAugment("cifar10")
    # sub-policy 0 is (Invert 0.1, Contrast 0.2 bin 6): coins at the thresholds apply, above don't
    plan = aug.plan([0, 0], [[0.1, 0.2, 0.5, 0.9], [0.11, 0.21, 0.0, 0.0]])
    assert [s[3] for s in plan[0]] == [True, True]
    assert [s[3] for s in plan[1]] == [False, False]
    assert plan[0][1][4] is False and plan[1][1][4] is True  # sign coin <= 0.5: negative


def test_grouped_op_equals_per_image_op():
    """Applying an op to a group equals applying it to each image (what grouping relies on)."""
    from bench.augment.autoaugment import apply_op

    x = images(6, 3, 28, seed=3)
    for op, mag in [("Contrast", 0.6), ("Equalize", 0.0), ("AutoContrast", 0.0),
                    ("Sharpness", -0.5), ("Rotate", 20.0), ("TranslateX", 9.0)]:  # fmt: skip
        together = apply_op(x, op, mag)
        alone = torch.stack([apply_op(im, op, mag) for im in x])
        assert torch.equal(together, alone), op


def _old_call(aug: BatchAutoAugment, x, generator):
    """The batch call before the host waits went: two reads of the draws, torchvision's op
    on each group and one index copy per group (reference)."""
    from bench.augment.autoaugment import apply_op

    b, _, h, w = x.shape
    dev = generator.device
    sub = torch.randint(len(aug.sub_policies), (b,), generator=generator, device=dev)
    coins = torch.rand((b, 4), generator=generator, device=dev)
    stages = aug.groups(aug.plan(sub.tolist(), coins.tolist()), aug.magnitudes(h, w))
    out = x.clone()
    for groups in stages:
        for (op, magnitude), idx in groups.items():
            if len(idx) == b:
                out = apply_op(out, op, magnitude)
            else:
                sel = torch.tensor(idx)
                out[sel] = apply_op(out[sel], op, magnitude)
    return out


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("channels,size", [(1, 28), (3, 32)])
def test_every_op_equals_torchvisions(policy, channels, size):
    """The gather, sharpness and autocontrast kernels give torchvision's outputs for every
    op, magnitude and sign a policy can draw."""
    from bench.augment.autoaugment import apply_op

    aug = BatchAutoAugment(policy)
    x = images(5, channels, size, seed=4)
    table = aug.magnitudes(size, size)
    for op, _, bin_ in {stage for sub in aug.sub_policies for stage in sub}:
        mags = table[op]
        signs = (1.0, -1.0) if mags is not None and aug.space[op][1] else (1.0,)
        for sign in signs:
            magnitude = 0.0 if mags is None else sign * mags[bin_]
            assert torch.equal(aug.apply(x, op, magnitude), apply_op(x, op, magnitude)), (
                op, magnitude,
            )  # fmt: skip


@pytest.mark.parametrize("policy", POLICIES)
def test_a_batch_equals_the_old_implementation(policy):
    """Same generator, same output as before the host waits went (CPU)."""
    aug = BatchAutoAugment(policy)
    x = images(32, 1, 28, seed=5)
    ours, _ = aug(x, None, torch.Generator().manual_seed(11))
    assert torch.equal(ours, _old_call(aug, x, torch.Generator().manual_seed(11)))
    assert not torch.equal(ours, x)
