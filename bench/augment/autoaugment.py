"""torchvision's AutoAugment policies (ImageNet, CIFAR-10, SVHN) with one draw per image.

torchvision's ``AutoAugment`` on a batch tensor draws one sub-policy for the whole batch. Here each
image draws its own sub-policy, apply coins and signs exactly as torchvision does for one image;
then, for each of the two stages, images sharing an (op, signed magnitude) are transformed
together by one ``torchvision.transforms.v2.functional`` call. Every op acts on each image of a
group independently, so each output is one torchvision's own ``AutoAugment`` can produce.
Policies and magnitude bins are read from torchvision; fill and interpolation are its defaults
(0, nearest).
"""

from __future__ import annotations

import math
from typing import Any

from bench.augment.registry import AugmentContext, register_augmentation

NUM_BINS = 10  # torchvision's AutoAugment uses 10 magnitude bins


def apply_op(img, op: str, magnitude: float):
    """Apply AutoAugment op ``op`` at signed ``magnitude`` to uint8 ``img`` (..., C, H, W).

    Mirrors ``torchvision.transforms.v2.AutoAugment._apply_image_or_video_transform`` with its
    defaults (nearest interpolation, fill 0), through the public v2 functional API.
    """
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as F

    nearest = InterpolationMode.NEAREST
    if op == "Identity":
        return img
    if op in ("ShearX", "ShearY"):
        deg = math.degrees(math.atan(magnitude))
        shear = [deg, 0.0] if op == "ShearX" else [0.0, deg]
        return F.affine(
            img, angle=0.0, translate=[0, 0], scale=1.0, shear=shear,
            interpolation=nearest, fill=None, center=[0, 0],
        )  # fmt: skip
    if op in ("TranslateX", "TranslateY"):
        shift = [int(magnitude), 0] if op == "TranslateX" else [0, int(magnitude)]
        return F.affine(
            img, angle=0.0, translate=shift, scale=1.0, shear=[0.0, 0.0],
            interpolation=nearest, fill=None,
        )  # fmt: skip
    if op == "Rotate":
        return F.rotate(img, angle=magnitude, interpolation=nearest, fill=None)
    if op == "Brightness":
        return F.adjust_brightness(img, brightness_factor=1.0 + magnitude)
    if op == "Color":
        return F.adjust_saturation(img, saturation_factor=1.0 + magnitude)
    if op == "Contrast":
        return F.adjust_contrast(img, contrast_factor=1.0 + magnitude)
    if op == "Sharpness":
        return F.adjust_sharpness(img, sharpness_factor=1.0 + magnitude)
    if op == "Posterize":
        return F.posterize(img, bits=int(magnitude))
    if op == "Solarize":
        return F.solarize(img, threshold=255.0 * magnitude)
    if op == "AutoContrast":
        return F.autocontrast(img)
    if op == "Equalize":
        return F.equalize(img)
    if op == "Invert":
        return F.invert(img)
    raise ValueError(f"unknown AutoAugment op {op}")


class BatchAutoAugment:
    """AutoAugment with an independent sub-policy draw per image.

    Args:
        policy: ``imagenet``, ``cifar10`` or ``svhn`` (torchvision's ``AutoAugmentPolicy``).
    """

    def __init__(self, policy: str) -> None:
        from torchvision.transforms.v2 import AutoAugment, AutoAugmentPolicy

        tv = AutoAugment(AutoAugmentPolicy(policy))
        self.policy = policy
        self.sub_policies = tv._policies  # [((op, p, bin), (op, p, bin)), ...]
        self.space = tv._AUGMENTATION_SPACE  # op -> (magnitudes_fn(bins, h, w), signed)
        self._bins: dict[tuple[int, int], dict[str, list[float] | None]] = {}
        self.info: dict[str, Any] = {}

    def magnitudes(self, h: int, w: int) -> dict[str, list[float] | None]:
        """Magnitude bins of every op at image size (h, w), as torchvision computes them."""
        if (h, w) not in self._bins:
            table = {}
            for op, (fn, _) in self.space.items():
                mags = fn(NUM_BINS, h, w)
                table[op] = None if mags is None else [float(m) for m in mags]
            self._bins[(h, w)] = table
        return self._bins[(h, w)]

    def draw(self, b: int, generator) -> list[list[tuple[str, float] | None]]:
        """Per image, per stage: (op, signed magnitude) or None when the op is not applied."""
        import torch

        dev = generator.device
        sub = torch.randint(len(self.sub_policies), (b,), generator=generator, device=dev)
        coins = torch.rand((b, 4), generator=generator, device=dev)
        return self.plan(sub.tolist(), coins.tolist())

    def plan(self, sub: list[int], coins: list[list[float]]) -> list[list[tuple]]:
        """Per image, its sub-policy ``sub[i]``'s stages ``(op, prob, bin, applied, negative)``
        under the draws ``coins[i]`` (two apply coins, then two sign coins, in [0, 1))."""
        plan = []
        for k, (apply0, apply1, sign0, sign1) in zip(sub, coins, strict=True):
            stages = []
            for (op, prob, bin_), apply, sign in zip(
                self.sub_policies[k], (apply0, apply1), (sign0, sign1), strict=True
            ):
                stages.append((op, prob, bin_, apply <= prob, sign <= 0.5))
            plan.append(stages)
        return plan

    def __call__(self, x, y, generator):
        import torch

        b, _, h, w = x.shape
        table = self.magnitudes(h, w)
        plan = self.draw(b, generator)
        out = x.clone()
        for stage in range(2):
            groups: dict[tuple[str, float], list[int]] = {}
            for i, stages in enumerate(plan):
                op, _, bin_, applied, negative = stages[stage]
                if not applied:
                    continue
                mags = table[op]
                magnitude = 0.0 if mags is None else mags[bin_]
                if mags is not None and self.space[op][1] and negative:
                    magnitude = -magnitude
                groups.setdefault((op, magnitude), []).append(i)
            for (op, magnitude), idx in groups.items():
                if len(idx) == b:
                    out = apply_op(out, op, magnitude)
                else:
                    sel = torch.tensor(idx, device=x.device)
                    out[sel] = apply_op(out[sel], op, magnitude)
        return out, y


def _register(policy: str) -> None:
    def build(ctx: AugmentContext) -> BatchAutoAugment:
        return BatchAutoAugment(policy)

    build.__doc__ = f"torchvision's AutoAugment {policy} policy, one draw per image."
    build.__module__ = __name__
    register_augmentation(f"autoaugment_{policy}")(build)


for _policy in ("imagenet", "cifar10", "svhn"):
    _register(_policy)
