"""torchvision's AutoAugment policies (ImageNet, CIFAR-10, SVHN) with one draw per image.

torchvision's ``AutoAugment`` on a batch tensor draws one sub-policy for the whole batch. Here each
image draws its own sub-policy, apply coins and signs exactly as torchvision does for one image;
then, for each of the two stages, images sharing an (op, signed magnitude) are transformed
together by one ``torchvision.transforms.v2.functional`` call. Every op acts on each image of a
group independently, so each output is one torchvision's own ``AutoAugment`` can produce.
Policies and magnitude bins are read from torchvision; fill and interpolation are its defaults
(0, nearest).

No host wait inside a batch but one: the draws are read once (the groups are planned on the
host), and every group's image indices go to the device in one pinned, non-blocking copy.
torchvision's geometric kernels copy their affine matrix to the device at each call, its
sharpness kernel its 3x3 filter, and its autocontrast indexes with a boolean mask; here the
geometric ops are gathers through index maps that torchvision's own op computes once per op,
magnitude and image size (copied to the device once), sharpness keeps its filter on the device,
and autocontrast uses ``torch.where``: the same outputs as torchvision's.
"""

from __future__ import annotations

import math
from typing import Any

from bench.augment.registry import AugmentContext, register_augmentation

NUM_BINS = 10  # torchvision's AutoAugment uses 10 magnitude bins
GEOMETRIC = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")  # nearest, fill 0


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


def index_map(op: str, magnitude: float, h: int, w: int):
    """Where each output pixel of geometric ``op`` at ``magnitude`` comes from: a flat index
    into an image padded by one zero in front (0: the fill). torchvision's own op on an
    image of pixel numbers gives it (nearest sampling moves values without mixing them)."""
    import torch

    numbers = torch.arange(1, h * w + 1, dtype=torch.float32).view(1, 1, h, w)
    return apply_op(numbers, op, magnitude).reshape(-1).round().long()


def gather(img, index):
    """``img`` (B, C, H, W) resampled through a flat :func:`index_map` on its device."""
    import torch

    b, c, h, w = img.shape
    flat = torch.cat([img.new_zeros(b, c, 1), img.reshape(b, c, h * w)], 2)
    return flat.index_select(2, index).view(b, c, h, w)


def sharpness(img, factor: float, kernel):
    """torchvision's ``adjust_sharpness`` on uint8 ``img`` (B, C, H, W), its 3x3 ``kernel``
    (1, 1, 3, 3, float32) already on the device."""
    import torch
    import torch.nn.functional as F

    c, h, w = img.shape[-3:]
    if img.numel() == 0 or h <= 2 or w <= 2:
        return img
    output = img.to(dtype=torch.float32, copy=True)
    blurred = F.conv2d(output, kernel.expand(c, 1, 3, 3), groups=c).round_()
    view = output[..., 1:-1, 1:-1]
    view.add_(blurred.sub_(view), alpha=(1.0 - factor))
    return output.clamp_(0, 255).to(img.dtype)


def autocontrast(img):
    """torchvision's ``autocontrast`` on uint8 ``img``, with ``torch.where`` where it indexes
    with a boolean mask."""
    import torch

    float_image = img.to(torch.float32)
    minimum = float_image.amin(dim=(-2, -1), keepdim=True)
    maximum = float_image.amax(dim=(-2, -1), keepdim=True)
    flat = maximum == minimum
    inv_scale = maximum.sub_(minimum).mul_(1.0 / 255)
    minimum = torch.where(flat, 0.0, minimum)
    inv_scale = torch.where(flat, 1.0, inv_scale)
    return float_image.sub_(minimum).div_(inv_scale).clamp_(0, 255).to(img.dtype)


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
        self._maps: dict[tuple, dict] = {}  # (h, w, device) -> {(op, magnitude): index}
        self._kernels: dict[str, Any] = {}  # device -> sharpness filter
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
        """Per image, per stage: (op, signed magnitude) or None when the op is not applied.
        The draws are read to the host at once (the one host wait of a batch)."""
        import torch

        dev = generator.device
        sub = torch.randint(len(self.sub_policies), (b,), generator=generator, device=dev)
        coins = torch.rand((b, 4), generator=generator, device=dev)
        rows = torch.cat([sub[:, None].double(), coins.double()], 1).tolist()
        return self.plan([int(r[0]) for r in rows], [r[1:] for r in rows])

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

    def groups(self, plan, table) -> list[dict[tuple[str, float], list[int]]]:
        """Per stage, the images sharing each (op, signed magnitude)."""
        stages = []
        for stage in range(2):
            groups: dict[tuple[str, float], list[int]] = {}
            for i, steps in enumerate(plan):
                op, _, bin_, applied, negative = steps[stage]
                if not applied:
                    continue
                mags = table[op]
                magnitude = 0.0 if mags is None else mags[bin_]
                if mags is not None and self.space[op][1] and negative:
                    magnitude = -magnitude
                groups.setdefault((op, magnitude), []).append(i)
            stages.append(groups)
        return stages

    def __call__(self, x, y, generator):
        b, _, h, w = x.shape
        stages = self.groups(self.draw(b, generator), self.magnitudes(h, w))
        index = _to_device([idx for groups in stages for idx in groups.values()], x.device)
        out = x.clone()
        for groups in stages:
            for key, idx in groups.items():
                sel = next(index)
                if len(idx) == b:
                    out = self.apply(out, *key)
                else:
                    out.index_copy_(0, sel, self.apply(out.index_select(0, sel), *key))
        return out, y

    def apply(self, img, op: str, magnitude: float):
        """:func:`apply_op` without a host wait (see the module's note)."""
        if op in GEOMETRIC:
            return gather(img, self.maps(img.shape[-2], img.shape[-1], img.device)[op, magnitude])
        if op == "Sharpness":
            return sharpness(img, 1.0 + magnitude, self.kernel(img.device))
        if op == "AutoContrast":
            return autocontrast(img)
        return apply_op(img, op, magnitude)

    def maps(self, h: int, w: int, device) -> dict:
        """The :func:`index_map` of every geometric (op, signed magnitude) this policy can
        draw at (h, w), on ``device`` (built and copied there once)."""
        import torch

        key = (h, w, str(device))
        if key not in self._maps:
            table, wanted = self.magnitudes(h, w), {}
            for op, _, bin_ in (stage for sub in self.sub_policies for stage in sub):
                if op in GEOMETRIC and table[op] is not None:
                    for sign in (1.0, -1.0) if self.space[op][1] else (1.0,):
                        wanted[op, sign * table[op][bin_]] = None
            keys = list(wanted)
            stacked = torch.stack([index_map(op, m, h, w) for op, m in keys]).to(device)
            self._maps[key] = dict(zip(keys, stacked, strict=True))
        return self._maps[key]

    def kernel(self, device):
        """torchvision's sharpness filter (1, 1, 3, 3) on ``device`` (copied there once)."""
        import torch

        if str(device) not in self._kernels:
            a, b = 1.0 / 13.0, 5.0 / 13.0
            k = torch.tensor([[a, a, a], [a, b, a], [a, a, a]], dtype=torch.float32)
            self._kernels[str(device)] = k.view(1, 1, 3, 3).to(device)
        return self._kernels[str(device)]


def _to_device(lists: list[list[int]], device):
    """An iterator over ``lists`` as int64 tensors on ``device``: one pinned, non-blocking
    copy for them all on CUDA (no host wait)."""
    import torch

    flat = torch.tensor([i for idx in lists for i in idx], dtype=torch.long)
    if torch.device(device).type == "cuda":
        flat = flat.pin_memory().to(device, non_blocking=True)
    return iter(flat.split([len(idx) for idx in lists]))


def _register(policy: str) -> None:
    def build(ctx: AugmentContext) -> BatchAutoAugment:
        return BatchAutoAugment(policy)

    build.__doc__ = f"torchvision's AutoAugment {policy} policy, one draw per image."
    build.__module__ = __name__
    register_augmentation(f"autoaugment_{policy}")(build)


for _policy in ("imagenet", "cifar10", "svhn"):
    _register(_policy)
