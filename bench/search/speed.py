"""Speed probes: how many train images per second a model (and an augmentation) runs at on
this machine now, measured on random inputs in a fraction of a second."""

from __future__ import annotations

import math
import time


def warm_up() -> None:
    """Import torch, the metrics (sklearn, medmnist) and torch.optim's lazy modules now, so the
    first trial's time (which sizes the final-fit reserve) is not inflated by imports."""
    import torch

    import bench.scoring  # noqa: F401
    import bench.train  # noqa: F401

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


def measure_throughput(
    model, *, in_chans: int, img_size: int, device, need: float | None = None, ndim: int = 2
) -> float:
    """Train images/s of ``model`` from timed forward+backward passes on random images
    (volumes with ``ndim=3``).

    An untimed warm-up pass on 2 images (first calls pay one-time set-up costs), then a timed
    pass on 2 images; if that took over 0.3 s the model is clearly heavy and that
    (pessimistic) figure is used. Otherwise a pass on 16 images is timed, and when that is
    quick a pass on 64. With ``need`` (images/s), a timed pass three times too slow for it
    ends the probe at once. The model's weights and buffers are restored afterwards.
    """
    import torch

    from bench.device import prepare_model

    model = prepare_model(model, device)
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    gen = torch.Generator().manual_seed(0)
    model.train()
    thr = 0.0
    for batch, enough in ((2, math.inf), (2, 0.3), (16, 0.2), (64, 0.0)):
        x = torch.randn(batch, in_chans, *(img_size,) * ndim, generator=gen).to(device)
        t = time.monotonic()
        model(x).float().mean().backward()
        took = max(time.monotonic() - t, 1e-6)
        thr = batch / took
        if took >= enough or (need is not None and enough < math.inf and 3 * thr < need):
            break
    model.zero_grad(set_to_none=True)
    model.load_state_dict(saved)
    return thr


def augment_cost(augment, data, *, device, n: int = 64) -> float:
    """Seconds per image of ``augment`` on a batch of ``n`` train images."""
    import torch

    from bench.data.splits import images_to_tensor, labels_to_tensor

    spec = data.spec
    x = images_to_tensor(data.train.images[:n], n_channels=spec.n_channels, ndim=spec.ndim,
                         device=device)  # fmt: skip
    y = labels_to_tensor(data.train.labels[:n], multilabel=spec.multilabel, device=device)
    gen = torch.Generator(device=device).manual_seed(0)
    t = time.monotonic()
    augment(x, y, gen)
    return (time.monotonic() - t) / max(1, len(x))


def speed_key(family: str, model_params: dict) -> tuple:
    """Cache key of a model's speed: the family and its int and string parameters (floats
    such as dropout and switches such as zero-init rarely change the compute)."""
    return (
        family,
        *sorted((k, v) for k, v in model_params.items() if not isinstance(v, (float, bool))),
    )
