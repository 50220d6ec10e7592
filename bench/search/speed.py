"""Speed probes: how many train images per second a model (and an augmentation) runs at on
this machine now, measured as training runs it: the trial's batch size, the device policy's
autocast and memory formats, an optimiser step, one untimed pass first and synchronised
clocks on CUDA."""

from __future__ import annotations

import time
from typing import NamedTuple

SMALL_BATCH = 2  # the bound pass of the early exit (cheap, after its own untimed pass)
TIMED_S = 0.25  # the timed passes at the trial's batch run at least this long...
MAX_PASSES = 16  # ...or this many passes, whichever comes first (one pass at least)


class Probe(NamedTuple):
    """A probe's figure. ``measured``: timed at the asked batch (a figure to cache). When the
    ``need`` cut-off ended the probe, ``measured`` is False and ``images_s`` is an upper bound
    (the batch's time is at least the small pass's), not a measurement to keep."""

    images_s: float
    measured: bool


def warm_up() -> None:
    """Import torch, the metrics (sklearn, medmnist) and torch.optim's lazy modules now, so the
    first trial's time (which sizes the final-fit reserve) is not inflated by imports."""
    import torch

    import bench.scoring  # noqa: F401
    import bench.train  # noqa: F401

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


def trained_batch(batch: int, n_train: int) -> int:
    """The largest batch training at ``batch`` sees on ``n_train`` images (an epoch of 48
    images at batch 128 is one batch of 48): the batch a probe must time."""
    return max(1, min(int(batch), int(n_train)))


def measure_throughput(
    model, *, in_chans: int, img_size: int, device, batch: int, need: float | None = None,
    ndim: int = 2, policy=None,
) -> Probe:  # fmt: skip
    """Train images/s of ``model`` at ``batch`` (the trial's, capped as its training is), as
    :func:`bench.train.train_step` runs it: uint8 random images (volumes with ``ndim=3``)
    through :func:`bench.train.to_input`, forward under the policy's autocast, backward and
    an Adam step. The model is put in the policy's memory format; its weights and buffers
    are restored afterwards.

    With ``need`` (images/s): small passes first (:func:`_upper_bound`); when ``batch``
    images in a small pass's time is below ``need``, the probe ends with an unmeasured
    :class:`Probe` (a larger batch takes at least as long). Then one untimed
    pass at ``batch`` (allocator, oneDNN primitives, cuDNN autotuning) and timed passes for
    :data:`TIMED_S` (at most :data:`MAX_PASSES`), the clock read after a synchronise; a
    model whose one pass takes longer than that gets the faster of two timed passes, unless
    the first already reads under half of ``need``.
    """
    from bench.device import policy_for

    policy = policy or policy_for(device)
    model = policy.prepare_model(model, device)
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    step = _step_fn(model, policy, device, in_chans=in_chans, img_size=img_size, ndim=ndim)
    try:
        if need is not None:
            bound = _upper_bound(step, batch, need, policy, device)
            if bound < need:
                return Probe(bound, False)
        step(batch)  # untimed: this batch size's one-time costs
        took = _timed(step, batch, 1, policy, device)
        passes = min(MAX_PASSES, int(TIMED_S / took))
        if passes >= 1:
            took = _timed(step, batch, passes, policy, device) / passes
        elif need is None or batch / took >= need / 2:  # a heavy model: one pass is noisy
            took = min(took, _timed(step, batch, 1, policy, device))  # (+-10 %): the faster
        return Probe(batch / took, True)
    finally:
        model.zero_grad(set_to_none=True)
        model.load_state_dict(saved)


def _upper_bound(step, batch: int, need: float, policy, device) -> float:
    """An upper bound of the speed at ``batch``: ``batch`` images in the time of a smaller
    pass (a larger batch takes at least as long), each pass after its own untimed one. The
    passes grow 4x from :data:`SMALL_BATCH` while the bound holds ``need`` but the pass's own
    speed does not (a ResNet-18 ACS volume model: 2 volumes in 3 s bound batch 48 at 16/s,
    8 in 12 s at 4/s), and stop as soon as the bound falls below ``need`` or the pass's own
    speed reaches it (then the batch is timed)."""
    n = SMALL_BATCH
    while True:
        step(n)
        took = _timed(step, n, 1, policy, device)
        bound = batch / took
        if bound < need or n / took >= need or n * 4 >= batch:
            return bound
        n *= 4


def _step_fn(model, policy, device, *, in_chans: int, img_size: int, ndim: int):
    """``step(n)``: one training step of ``model`` on ``n`` random uint8 inputs."""
    import torch

    from bench.train import to_input, train_step

    gen = torch.Generator().manual_seed(0)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-6)
    inputs: dict[int, object] = {}
    model.train()

    def loss_fn(out, _y):
        return out.mean()

    def step(n: int) -> None:
        if n not in inputs:
            shape = (n, in_chans, *(img_size,) * ndim)
            inputs[n] = torch.randint(0, 256, shape, dtype=torch.uint8, generator=gen).to(device)
        x = to_input(inputs[n], mean=0.5, std=0.5, policy=policy)
        train_step(model, optimizer, loss_fn, x, None, device, policy)

    return step


def _timed(step, n: int, passes: int, policy, device) -> float:
    """Seconds of ``passes`` steps on ``n`` inputs, between synchronised clock reads."""
    policy.synchronize(device)
    t = time.perf_counter()
    for _ in range(passes):
        step(n)
    policy.synchronize(device)
    return max(time.perf_counter() - t, 1e-9)


def augment_cost(augment, data, *, device, n: int = 64) -> float:
    """Seconds per image of ``augment`` on a batch of ``n`` train images: one untimed call
    (first-call costs), then one timed between synchronised clock reads."""
    import torch

    from bench.data.splits import images_to_tensor, labels_to_tensor
    from bench.device import policy_for

    spec, policy = data.spec, policy_for(device)
    x = images_to_tensor(data.train.images[:n], n_channels=spec.n_channels, ndim=spec.ndim,
                         device=device)  # fmt: skip
    y = labels_to_tensor(data.train.labels[:n], multilabel=spec.multilabel, device=device)
    gen = torch.Generator(device=device).manual_seed(0)
    augment(x, y, gen)
    policy.synchronize(device)
    t = time.perf_counter()
    augment(x, y, gen)
    policy.synchronize(device)
    return (time.perf_counter() - t) / max(1, len(x))


def speed_key(family: str, model_params: dict, batch: int | None = None) -> tuple:
    """Cache key of a model's speed: the family, its int and string parameters (floats such
    as dropout and switches such as zero-init rarely change the compute) and the batch size
    it was measured at (None: a key of the model alone, as the memory probe's)."""
    key = (
        family,
        *sorted((k, v) for k, v in model_params.items() if not isinstance(v, (float, bool))),
    )
    return key if batch is None else (*key, ("batch", int(batch)))
