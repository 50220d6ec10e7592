"""``dcgan``: a class-conditional DCGAN trained on the train split, cached, mixed into batches.

``prepare`` trains the GAN on ``data.train`` only (never val or test) for ``dcgan_steps`` steps,
capped at half the deadline's remaining time, and caches generator, discriminator, optimisers and
RNG state on disk, keyed by dataset, data size, train-split fingerprint, seed and settings. A
later use loads the cache ("reused cached generator"); a cache cut short by a deadline resumes.
The Augment replaces a ``dcgan_ratio`` fraction of each batch with samples drawn for random
classes (multi-label sets: label rows drawn from the train labels) and labels them so.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.augment.registry import AugmentContext, register_augmentation
from bench.errors import BenchError

FORMAT = 2  # bump when networks, training or the file change: old caches are then ignored
DEADLINE_SHARE = 0.5  # at most this share of the deadline's remaining time goes to GAN training
CHECK_EVERY = 10  # steps between clock checks
# dcgan_ratio, the share of each batch replaced by generated samples: the values a build
# accepts, and the range the search samples (the one declaration of it: the search space's
# ``when: augment=dcgan`` block comes from here, as a plugin policy's does)
RATIO_RANGE = (0.0, 1.0)
RATIO_SEARCHED = {"type": "float", "low": 0.1, "high": 0.5}


@dataclass(frozen=True)
class GanSettings:
    """Everything that determines the trained generator besides the data and the seed."""

    steps: int = 1000
    width: int = 32
    z_dim: int = 64
    batch: int = 64
    lr: float = 2e-4
    real_label: float = 0.9  # one-sided label smoothing
    format: int = FORMAT


def default_cache_dir() -> Path:
    """``$BENCH_CACHE_DIR/dcgan`` or ``~/.cache/bench/dcgan``."""
    from bench.data.cache import cache_root

    return cache_root() / "dcgan"


def cache_path(data: Any, *, seed: int, settings: GanSettings, cache_dir: str | None,
               device: Any = "cpu") -> Path:  # fmt: skip
    """The cache file of the generator for ``data.train`` at ``seed`` with ``settings``,
    trained on ``device``'s kind (a CUDA generator's random stream is not the CPU's; a CPU
    cache keeps the key it had)."""
    train = data.train
    digest = hashlib.sha1(train.images.tobytes())
    digest.update(train.labels.tobytes())
    key = {
        "dataset": data.spec.name,
        "data_size": int(data.data_size),
        "n_train": len(train),
        "train_sha1": digest.hexdigest(),
        "seed": int(seed),
        "settings": asdict(settings),
    }
    kind = getattr(device, "type", str(device).split(":")[0])
    if kind != "cpu":
        key["device"] = kind
    h = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    stem = "".join(ch if ch.isalnum() else "_" for ch in Path(data.spec.name).stem)[:40]
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    return root / f"{stem}_{data.data_size}_s{seed}_{h}.pt"


def conditions(data: Any, device: Any):
    """Train images as uint8 (N, C, H, W) on ``device`` (a batch goes to [-1, 1] with
    :func:`to_unit`) and their condition vectors (N, n_classes)."""
    import torch

    from bench.data.splits import images_to_tensor

    spec = data.spec
    real = images_to_tensor(data.train.images, n_channels=spec.n_channels, ndim=2, device=device)
    labels = torch.as_tensor(data.train.labels.astype("int64"), device=device)
    if spec.multilabel:
        cond = labels.float()
    else:
        cond = torch.nn.functional.one_hot(labels[:, 0], spec.n_classes).float()
    return real, cond


def to_unit(x):
    """uint8 images -> float in [-1, 1], what the networks see."""
    return x.float().div_(127.5).sub_(1.0)


@dataclass
class GanState:
    """A GAN in training or trained: networks, optimisers, RNG and bookkeeping."""

    G: Any
    D: Any
    opt_g: Any
    opt_d: Any
    rng: Any  # torch.Generator on the device, drawing batches and noise
    steps_done: int = 0
    train_s: float = 0.0

    @classmethod
    def new(cls, settings: GanSettings, *, chans: int, cond_dim: int, size: int, seed: int,
            device: Any) -> GanState:  # fmt: skip
        import torch

        from bench.augment.dcgan_nets import Discriminator, Generator, init_weights

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            G = Generator(
                z_dim=settings.z_dim, cond_dim=cond_dim, chans=chans, size=size,
                width=settings.width,
            )  # fmt: skip
            D = Discriminator(cond_dim=cond_dim, chans=chans, size=size, width=settings.width)
            init_weights(G)
            init_weights(D)
        G, D = G.to(device), D.to(device)
        betas = (0.5, 0.999)
        return cls(
            G=G,
            D=D,
            opt_g=torch.optim.Adam(G.parameters(), lr=settings.lr, betas=betas),
            opt_d=torch.optim.Adam(D.parameters(), lr=settings.lr, betas=betas),
            rng=torch.Generator(device=device).manual_seed(seed),
        )

    def state_dict(self) -> dict:
        return {
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "rng": self.rng.get_state(),
            "steps_done": self.steps_done,
            "train_s": self.train_s,
        }

    def load_state_dict(self, state: dict) -> None:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.rng.set_state(state["rng"])
        self.steps_done = int(state["steps_done"])
        self.train_s = float(state["train_s"])


def train_gan(state: GanState, real, cond, settings: GanSettings, *, max_s: float | None) -> float:
    """Train up to ``settings.steps`` (or until ``max_s`` seconds); returns seconds spent."""
    import torch
    import torch.nn.functional as F

    device = real.device
    n, bs = real.shape[0], min(settings.batch, real.shape[0])
    ones = torch.full((bs,), settings.real_label, device=device)
    zeros = torch.zeros(bs, device=device)
    state.G.train()
    state.D.train()
    t0 = time.monotonic()
    while state.steps_done < settings.steps:
        if max_s is not None and state.steps_done % CHECK_EVERY == 0:
            if time.monotonic() - t0 >= max_s:
                break
        idx = torch.randint(n, (bs,), generator=state.rng, device=device)
        z = torch.randn(bs, settings.z_dim, generator=state.rng, device=device)
        xr, c = to_unit(real.index_select(0, idx)), cond.index_select(0, idx)
        fake = state.G(z, c)
        d_loss = F.binary_cross_entropy_with_logits(state.D(xr, c), ones)
        d_loss = d_loss + F.binary_cross_entropy_with_logits(state.D(fake.detach(), c), zeros)
        state.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        state.opt_d.step()
        g_loss = F.binary_cross_entropy_with_logits(state.D(fake, c), torch.ones_like(zeros))
        state.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        state.opt_g.step()
        state.steps_done += 1
    spent = time.monotonic() - t0
    state.train_s += spent
    return spent


def save_state(path: Path, state: GanState, settings: GanSettings, meta: dict) -> None:
    """Write the cache file atomically, behind its sha256 (:func:`write_checked`)."""
    import torch

    from bench.data.cache import write_checked

    buf = io.BytesIO()
    torch.save({**state.state_dict(), "settings": asdict(settings), "meta": meta}, buf)
    write_checked(path, buf.getvalue())


@dataclass
class PreparedGan:
    """What ``prepare`` hands to ``build``: the trained generator and how to condition it."""

    generator: Any
    z_dim: int
    n_classes: int
    multilabel: bool
    label_rows: Any  # float (N, L) train label rows (multi-label) or None
    info: dict


def prepare_dcgan(
    ctx: AugmentContext,
    *,
    dcgan_steps: int = GanSettings.steps,
    dcgan_width: int = GanSettings.width,
    dcgan_ratio: float = 0.25,
) -> PreparedGan:
    """Load the cached generator for ``ctx.data.train`` or train (and cache) it.

    Args:
        ctx: build context; ``ctx.deadline`` caps training, ``ctx.cache_dir`` the cache folder.
        dcgan_steps: GAN training steps (batches of 64).
        dcgan_width: channels of the first discriminator / last generator layer.
        dcgan_ratio: checked here, before any training (used by ``build``).
    """
    from bench.augment.dcgan_nets import layout

    data, spec = ctx.data, ctx.data.spec
    _check_args(spec, ratio=dcgan_ratio, steps=dcgan_steps, width=dcgan_width)
    size = int(data.data_size)
    layout(size)
    settings = GanSettings(steps=int(dcgan_steps), width=int(dcgan_width))
    path = cache_path(data, seed=ctx.seed, settings=settings, cache_dir=ctx.cache_dir,
                      device=ctx.device)  # fmt: skip
    t0 = time.monotonic()
    state = GanState.new(
        settings, chans=spec.n_channels, cond_dim=spec.n_classes, size=size, seed=ctx.seed,
        device=ctx.device,
    )  # fmt: skip
    status = _load_cached(state, path)
    spent = 0.0
    if state.steps_done < settings.steps:
        spent = _train_and_cache(state, ctx, settings, path, resumed=status == "hit")
        status = "resumed" if status == "hit" else "miss"
    else:
        print(f"dcgan: reused cached generator {path}", file=sys.stderr)
    state.G.eval()
    info = {
        "cache": status,
        "cache_path": str(path),
        "dcgan_train_s": round(spent, 3),
        "dcgan_total_train_s": round(state.train_s, 3),
        "dcgan_steps_done": state.steps_done,
        "dcgan_steps": settings.steps,
        "dcgan_prepare_s": round(time.monotonic() - t0, 3),
    }
    return _prepared(ctx, state, settings, info)


def _check_args(spec, *, ratio: float, steps: int, width: int) -> None:
    """One-line errors, before any training: 3D data, a ratio out of range, too few steps
    or too narrow networks."""
    if spec.ndim != 2:
        raise BenchError(f"dcgan generates 2D images; {spec.name} is 3D, use another --augment")
    check_ratio(ratio)
    if int(steps) < 1 or int(width) < 4:
        raise BenchError("dcgan_steps must be >= 1 and dcgan_width >= 4")


def _prepared(ctx: AugmentContext, state: GanState, settings: GanSettings,
              info: dict) -> PreparedGan:  # fmt: skip
    """What ``build`` gets: the trained generator, and the train label rows a multi-label
    set draws its conditions from."""
    import torch

    spec, label_rows = ctx.data.spec, None
    if spec.multilabel:
        label_rows = torch.as_tensor(ctx.data.train.labels, dtype=torch.float32,
                                     device=ctx.device)  # fmt: skip
    return PreparedGan(
        generator=state.G,
        z_dim=settings.z_dim,
        n_classes=spec.n_classes,
        multilabel=spec.multilabel,
        label_rows=label_rows,
        info=info,
    )


def _load_cached(state, path: Path) -> str:
    """Load a cached generator into ``state``: ``hit``, or ``miss`` (none, or a bad file,
    said in one line)."""
    import torch

    from bench.data.cache import read_checked, say_rebuilt

    payload = read_checked(path)
    if payload is None:
        return "miss"
    try:
        blob = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
        state.load_state_dict(blob)
        return "hit"
    except (RuntimeError, KeyError, EOFError, ValueError) as exc:  # whole, but not this GAN
        say_rebuilt(path, f"not this generator ({str(exc).splitlines()[0][:120]})")
        return "miss"


def _train_and_cache(state, ctx, settings, path: Path, *, resumed: bool) -> float:
    """Train the GAN up to ``settings.steps`` (capped by the deadline), cache it; seconds."""
    data, spec = ctx.data, ctx.data.spec
    real, cond = conditions(data, ctx.device)
    max_s = None
    if ctx.deadline is not None:
        max_s = max(0.0, DEADLINE_SHARE * float(ctx.deadline.remaining()))
    print(
        f"dcgan: {'resuming' if resumed else 'training'} generator on {len(data.train)} train "
        f"images ({state.steps_done}/{settings.steps} steps) -> {path}",
        file=sys.stderr,
    )
    spent = train_gan(state, real, cond, settings, max_s=max_s)
    meta = {"dataset": spec.name, "data_size": int(data.data_size), "seed": ctx.seed,
            "n_train": len(data.train)}  # fmt: skip
    save_state(path, state, settings, meta)
    return spent


def check_ratio(ratio: float) -> float:
    """``ratio`` as a float in :data:`RATIO_RANGE` ([0, 1]), else a one-line error."""
    low, high = RATIO_RANGE
    if not low <= float(ratio) <= high:
        raise BenchError(
            f"dcgan_ratio={ratio} is out of range; give a value in [{low:g}, {high:g}]"
        )
    return float(ratio)


class DCGANAugment:
    """Replaces a ``ratio`` fraction of each batch with generated, labelled samples."""

    def __init__(self, prepared: PreparedGan, *, ratio: float) -> None:
        self.prepared, self.ratio = prepared, ratio
        self.info = dict(prepared.info)

    def sample(self, n: int, generator, device, *, classes=None):
        """``n`` uint8 samples and their labels; ``classes`` fixes the classes (single-label)."""
        import torch
        import torch.nn.functional as F

        p, gdev = self.prepared, generator.device
        if p.multilabel:
            rows = torch.randint(p.label_rows.shape[0], (n,), generator=generator, device=gdev)
            cond = p.label_rows[rows.to(p.label_rows.device)].to(device)
            labels = cond
        else:
            if classes is None:
                classes = torch.randint(p.n_classes, (n,), generator=generator, device=gdev)
            labels = classes.to(device)
            cond = F.one_hot(labels, p.n_classes).float()
        z = torch.randn(n, p.z_dim, generator=generator, device=gdev).to(device)
        with torch.no_grad():
            img = p.generator(z, cond)
        img = img.add_(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)
        return img, labels

    def __call__(self, x, y, generator):
        import torch
        import torch.nn.functional as F

        b = x.shape[0]
        k = int(round(self.ratio * b))
        if k == 0:
            return x, y
        pos = torch.randperm(b, generator=generator, device=generator.device)[:k].to(x.device)
        img, labels = self.sample(k, generator, x.device)
        if img.shape[-2:] != x.shape[-2:]:
            img = F.interpolate(img.float(), size=x.shape[-2:], mode="bilinear", antialias=True)
            img = img.round_().clamp_(0, 255).to(torch.uint8)
        x, y = x.clone(), y.clone()
        x[pos] = img
        y[pos] = labels.to(y.dtype).reshape(y[pos].shape)
        return x, y


@register_augmentation(
    prepare=prepare_dcgan,
    params={"dcgan_ratio": RATIO_SEARCHED},
)
def dcgan(ctx: AugmentContext, *, dcgan_ratio: float = 0.25) -> DCGANAugment:
    """Class-conditional DCGAN samples mixed into each batch at ``dcgan_ratio``.

    Args:
        ctx: build context; ``ctx.prepared`` is the trained generator.
        dcgan_ratio: fraction of each batch replaced by generated samples, in [0, 1].
    """
    return DCGANAugment(ctx.prepared, ratio=check_ratio(dcgan_ratio))
