"""What the model tests of both tiers do to a model: one training step's forward and backward
(``tests/unit`` at 28 px, ``tests/e2e`` at the larger sizes), and the corners of a search
space."""

from __future__ import annotations

import math

from bench.search.spaces import default_space_dir

NUM_CLASSES = 3
SPACE_DIR = default_space_dir()


def forward_backward(model, *, in_chans: int, img_size: int):
    """One training step's forward and backward on a batch of 2; returns the loss."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    model.train()
    x = torch.randn(2, in_chans, img_size, img_size)
    y = torch.tensor([0, NUM_CLASSES - 1])
    out = model(x)
    assert out.shape == (2, NUM_CLASSES)
    loss = F.cross_entropy(out, y)
    assert math.isfinite(loss.item())
    loss.backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"{name} got no gradient"
            assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
    return loss


def corners(space) -> list[dict]:
    """Two configurations: every parameter at its low end, and at its high end."""
    low, high = dict(space.fixed), dict(space.fixed)
    for name, p in space.params.items():
        low[name] = p.choices[0] if p.type == "categorical" else p.low
        high[name] = p.choices[-1] if p.type == "categorical" else p.high
    return [low, high]


def check_space_corners(family: str, *, img_size: int) -> None:
    """Both corners of ``family``'s search space build a model that maps a 1-channel image
    of ``img_size`` to 2 finite logits."""
    import torch

    from bench.models.registry import create_model
    from bench.search.spaces import load_space_file

    space = load_space_file(SPACE_DIR / f"{family}.yaml")
    assert space.family == family
    for params in corners(space):
        model = create_model(family, num_classes=2, in_chans=1, img_size=img_size, **params)
        model.eval()
        with torch.no_grad():
            out = model(torch.randn(1, 1, img_size, img_size))
        assert out.shape == (1, 2) and torch.isfinite(out).all()


def check_family_step(family: str, *, img_size: int, in_chans: int) -> None:
    """``family`` at ``img_size`` with ``in_chans`` channels trains one step (skipped when the
    family does not declare that size)."""
    import pytest

    from bench.models.registry import create_model, get_model_spec

    if img_size not in get_model_spec(family).sizes:
        pytest.skip(f"{family} does not declare size {img_size}")
    model = create_model(family, num_classes=NUM_CLASSES, in_chans=in_chans, img_size=img_size)
    forward_backward(model, in_chans=in_chans, img_size=img_size)
