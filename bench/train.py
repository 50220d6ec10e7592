"""The one fit loop every family, search and baseline goes through.

The whole train split lives on the device as one uint8 tensor; each epoch draws a seeded
permutation and indexes batches out of it. Augmentation (optional) works on the uint8 batch,
then one batched conversion does ``(x/255 - mean)/std`` and, when the model's input size
differs from the data size, a nearest-neighbour resize. No DataLoader, no per-sample Python.
"""

from __future__ import annotations

import math
import random
import time
import typing
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any, NamedTuple

import numpy as np

from bench.data.spec import MULTI_LABEL
from bench.data.subsample import report_rows, stratified_subsample
from bench.errors import ConfigError

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("cosine", "step", "none")
METRICS = ("auc", "acc")
EVAL_BATCH = 512  # samples per evaluation batch for small images (28 px: 512)
EVAL_ELEMENTS = 2**21  # and at most this many input values per batch (64^3 volumes: 8)


@dataclass
class TrainHP:
    """Training hyperparameters (model hyperparameters go to the builder instead)."""

    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    batch_size: int = 128
    epochs: int = 10
    schedule: str = "cosine"
    milestones: tuple[float, ...] = (0.5, 0.75)
    gamma: float = 0.1
    early_stop: int | None = None
    metric: str = "auc"
    mean: float = 0.5
    std: float = 0.5
    train_fraction: float = 1.0
    eval_batch: int | None = None  # samples per evaluation batch (None: by the input size)

    def __post_init__(self) -> None:
        self.milestones = tuple(float(m) for m in self.milestones)
        checks = [
            (self.optimizer in OPTIMIZERS, f"optimizer {self.optimizer!r}: use {OPTIMIZERS}"),
            (self.schedule in SCHEDULES, f"schedule {self.schedule!r}: use {SCHEDULES}"),
            (self.metric in METRICS, f"metric {self.metric!r}: use auc or acc"),
            (self.lr > 0, f"lr {self.lr}: it must be > 0"),
            (int(self.batch_size) >= 1, f"batch_size {self.batch_size}: it must be >= 1"),
            (int(self.epochs) >= 1, f"epochs {self.epochs}: it must be >= 1"),
            (self.std > 0, f"std {self.std}: it must be > 0"),
            (0 < self.train_fraction <= 1, f"train_fraction {self.train_fraction}: use (0, 1]"),
            (self.eval_batch is None or int(self.eval_batch) >= 1,
             f"eval_batch {self.eval_batch}: it must be >= 1"),  # fmt: skip
            (all(0 < m < 1 for m in self.milestones), "milestones: fractions in (0, 1)"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(f"bad training hyperparameter {msg}")
        self.batch_size, self.epochs = int(self.batch_size), int(self.epochs)

    @classmethod
    def split_params(cls, params: dict) -> tuple[TrainHP, dict]:
        """Split ``params`` into (training hyperparameters, the rest: model kwargs etc.)."""
        from bench.config import check_param_types

        names = {f.name for f in fields(cls)}
        ours = {k: v for k, v in params.items() if k in names}
        check_param_types(ours, typing.get_type_hints(cls), {f.name: f.default for f in
                          fields(cls)}, owner="training hyperparameter")  # fmt: skip
        hp = cls(**ours)
        return hp, {k: v for k, v in params.items() if k not in names}


@dataclass
class FitConfig:
    """One configuration: family and builder kwargs, training hyperparameters (a TrainHP),
    augmentation policy and its params (``<policy>_<name>``, as the search names them)."""

    family: str
    model_params: dict
    hp: TrainHP
    aug_name: str = "none"
    aug_hp: dict = field(default_factory=dict)

    def params(self) -> dict:
        """The resolved configuration as a record's ``params``: builder kwargs, every TrainHP
        field, augmentation params (``<policy>_<name>``, as the search names them)."""
        return {**self.model_params, **asdict(self.hp), **self.aug_hp}


class Deadline:
    """A wall-clock end point on the monotonic clock: ``Deadline(seconds)``."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + float(seconds)

    @classmethod
    def at(cls, monotonic_end: float) -> Deadline:
        """A deadline ending at ``time.monotonic() == monotonic_end``."""
        d = cls(0)
        d.end = float(monotonic_end)
        return d

    def remaining(self) -> float:
        """Seconds left (0 once expired)."""
        return max(0.0, self.end - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self.end


class DivergedError(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass
class EpochStats:
    """One epoch: mean train loss, val AUC/ACC, the val score used for checkpointing (the
    val fields are None in a fit with no val split)."""

    epoch: int
    train_loss: float
    val_auc: float | None
    val_acc: float | None
    val_score: float | None
    lr: float
    seconds: float


@dataclass
class FitResult:
    """``best_state`` (CPU copy of the kept weights: the best-val ones, or the last epoch's
    with ``keep_last``), its epoch and val score, the history, why it stopped (``completed``
    | ``deadline`` | ``early_stop``), the fit's seconds and the kept checkpoint's val scores
    (what ensemble selection reads). With no val split: the last epoch's weights,
    ``best_val`` and ``val_scores`` None."""

    best_state: dict
    best_epoch: int
    best_val: float | None
    history: list[EpochStats] = field(default_factory=list)
    stopped: str = "completed"
    seconds: float = 0.0
    val_scores: np.ndarray | None = None

    def history_dicts(self) -> list[dict]:
        """The history as dicts, without the val fields of a fit that had no val split."""
        return [{k: v for k, v in asdict(s).items() if v is not None} for s in self.history]


def set_seed(seed: int) -> None:
    """Seed python ``random``, numpy and torch (CPU and CUDA)."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_loss(task: str):
    """Cross-entropy (BCE-with-logits for multi-label)."""
    import torch.nn as nn

    return nn.BCEWithLogitsLoss() if task == MULTI_LABEL else nn.CrossEntropyLoss()


def make_optimizer(model, hp: TrainHP):
    """Adam, AdamW or SGD (with momentum) over the model's parameters."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    if hp.optimizer == "sgd":
        return torch.optim.SGD(params, lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay)
    cls = torch.optim.AdamW if hp.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=hp.lr, weight_decay=hp.weight_decay)


def make_scheduler(optimizer, hp: TrainHP):
    """Per-epoch schedule: cosine over ``epochs``, multi-step at milestone fractions, or None."""
    import torch

    if hp.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=hp.epochs)
    if hp.schedule == "step":
        steps = sorted({max(1, int(round(m * hp.epochs))) for m in hp.milestones})
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=steps, gamma=hp.gamma)
    return None


def to_input(x, *, mean: float, std: float, img_size: int | None = None, device=None,
             policy=None):  # fmt: skip
    """uint8 batch (B,C,H,W) or (B,C,D,H,W) -> normalised float, resized (nearest) if needed.

    ``policy`` (default: ``device``'s :class:`~bench.device.DevicePolicy`) only chooses the
    memory format; ``x`` stays where it is. With neither, the layout is left as it comes.
    """
    import torch.nn.functional as F

    from bench.device import policy_for

    x = x.float().mul_(1.0 / (255.0 * std)).sub_(mean / std)
    if img_size and x.shape[-1] != img_size:
        x = F.interpolate(x, size=(img_size,) * (x.dim() - 2), mode="nearest")
    if policy is None and device is not None:
        policy = policy_for(device)
    if policy is not None:
        x = x.contiguous(memory_format=policy.batch_format(x.dim()))
    return x


@dataclass
class TrainState:
    """What one epoch of training needs: model, optimiser, loss, the split on the device."""

    model: Any
    optimizer: Any
    loss_fn: Any
    x: Any  # uint8 (N,C,H,W) on the device
    y: Any  # int64 (N,) or float (N,L) on the device
    hp: TrainHP
    device: Any
    img_size: int | None = None
    augment: Callable | None = None
    perm_gen: Any = None  # CPU torch.Generator for the permutations
    aug_gen: Any = None  # device torch.Generator handed to ``augment``
    policy: Any = None  # bench.device.DevicePolicy (default: the device's)

    def __post_init__(self) -> None:
        if self.policy is None:
            from bench.device import policy_for

            self.policy = policy_for(self.device)


def train_step(model, optimizer, loss_fn, x, y, device, policy=None):
    """One optimiser step on a ready float batch, under the autocast of ``policy`` (default:
    ``device``'s); returns the (detached) loss tensor."""
    from bench.device import policy_for

    with (policy or policy_for(device)).autocast(device):
        out = model(x)
        loss = loss_fn(out.float(), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


def train_epoch(state: TrainState, deadline: Deadline | None = None) -> tuple[float, int, bool]:
    """One pass over the split in seeded random batches.

    Returns:
        (mean train loss, samples seen, True if the epoch ran to its end).

    Raises:
        DivergedError: the loss became NaN or infinite.
    """
    import torch

    hp, n = state.hp, state.x.shape[0]
    perm = torch.randperm(n, generator=state.perm_gen).to(state.device)
    bs = hp.batch_size
    n_batches = n // bs + (1 if n % bs > 1 else 0)  # a last batch of 1 breaks BatchNorm
    check_every = state.policy.check_every  # loss .item() syncs on CUDA
    state.model.train()
    loss_sum = torch.zeros((), device=state.device)
    seen = 0
    for i in range(n_batches):
        if deadline is not None and deadline.expired():
            return _mean_loss(loss_sum, seen), seen, False
        idx = perm[i * bs : (i + 1) * bs]
        # index_select, not x[idx]: advanced indexing is ~20x slower on CPU
        xb, yb = state.x.index_select(0, idx), state.y.index_select(0, idx)
        if state.augment is not None:
            xb, yb = state.augment(xb, yb, state.aug_gen)
        xb = to_input(xb, mean=hp.mean, std=hp.std, img_size=state.img_size, policy=state.policy)
        loss = train_step(state.model, state.optimizer, state.loss_fn, xb, yb, state.device,
                          state.policy)  # fmt: skip
        loss_sum += loss * xb.shape[0]
        seen += int(xb.shape[0])
        if (i + 1) % check_every == 0 or i + 1 == n_batches:
            if not math.isfinite(float(loss_sum)):
                raise DivergedError(f"training loss became {float(loss_sum)} (epoch batch {i})")
    return _mean_loss(loss_sum, seen), seen, True


def _mean_loss(loss_sum, seen: int) -> float:
    return float(loss_sum) / seen if seen else float("nan")


def eval_batch_size(shape, img_size=None, *, most: int = EVAL_BATCH) -> int:
    """Samples per evaluation batch for inputs of ``shape`` (N, C, *spatial) resized to
    ``img_size``: ``EVAL_ELEMENTS`` input values at most, so that a batch of 64^3 volumes
    does not need the memory of 512 of them (one such batch took 17 GB of activations)."""
    spatial = [img_size] * (len(shape) - 2) if img_size else list(shape[2:])
    per_sample = int(shape[1]) * int(np.prod(spatial))
    return max(1, min(most, EVAL_ELEMENTS // max(per_sample, 1)))


def predict_tensor(model, x, *, task: str, device, img_size=None, mean=0.5, std=0.5,
                   batch_size: int | None = None, policy=None) -> np.ndarray:  # fmt: skip
    """Scores for a uint8 tensor already on the device (softmax, or sigmoid for multi-label),
    in batches of ``batch_size`` (default: :func:`eval_batch_size`). Always fp32, under
    every policy (no autocast), so that scores, ensembles and ``bench predict`` agree to
    1e-6 on any device; ``policy`` (default: ``device``'s) gives the batch memory format."""
    import torch

    batch_size = batch_size or eval_batch_size(tuple(x.shape), img_size)
    model.eval()
    outs = []
    with torch.inference_mode():
        for i in range(0, x.shape[0], batch_size):
            xb = to_input(x[i : i + batch_size], mean=mean, std=std, img_size=img_size,
                          device=device, policy=policy)  # fmt: skip
            logits = model(xb).float()
            outs.append(torch.sigmoid(logits) if task == MULTI_LABEL else logits.softmax(1))
    return torch.cat(outs).cpu().numpy().astype(np.float64)


def predict(
    model,
    images: np.ndarray,
    *,
    spec,
    device,
    img_size=None,
    mean=0.5,
    std=0.5,
    batch_size: int | None = None,
) -> np.ndarray:
    """Scores of ``model`` on uint8 ``images`` as bench.scoring expects them."""
    from bench.data.splits import images_to_tensor
    from bench.device import resolve_device

    device = resolve_device(device)
    x = images_to_tensor(images, n_channels=spec.n_channels, ndim=spec.ndim, device=device)
    return predict_tensor(
        model,
        x,
        task=spec.task,
        device=device,
        img_size=img_size,
        mean=mean,
        std=std,
        batch_size=batch_size,
    )


def fit(
    model,
    data,
    hp: TrainHP,
    *,
    device,
    seed: int,
    img_size: int | None = None,
    augment: Callable | None = None,
    deadline: Deadline | None = None,
    on_epoch: Callable[[EpochStats], None] | None = None,
    keep_last: bool = False,
) -> FitResult:
    """Train ``model`` on ``data.train`` and keep the weights with the best val score; with
    ``keep_last`` (a ``--cv`` fold model that stands for the refit) or an empty val split
    (the refit on the whole train + val pool after ``--cv``) train every epoch and keep the
    last weights, with the last epoch's val score.

    A ``keep_last`` fit scores all of val once, on the kept weights; its epochs are scored
    only for ``on_epoch``, on :func:`report_rows` of val (:func:`_val_plan`).

    The model is moved to the device, and holds the kept weights when ``fit`` returns.
    When ``deadline`` expires mid-epoch the loop stops between batches; if no epoch has
    been evaluated yet, val is evaluated on what was trained so the result is usable.
    ``on_epoch`` is called after each completed epoch (it may raise ``optuna.TrialPruned``,
    which propagates).

    Raises:
        DivergedError: NaN/inf training loss.
    """
    start = time.monotonic()
    state, scheduler, x_val = _setup(model, data, hp, device=device, seed=seed,
                                     img_size=img_size, augment=augment)  # fmt: skip
    val = _val_plan(data, x_val, seed, keep_last=keep_last, reports=on_epoch is not None)
    best, history, stopped = _train_epochs(state, scheduler, val, deadline=deadline,
                                           on_epoch=on_epoch)  # fmt: skip
    state.model.load_state_dict(best.weights)
    best_val, scores = best.val, best.scores
    if val.score_all:  # the kept weights on all of val
        val_auc, val_acc, scores = _evaluate(state, x_val, data.val.labels, val.task)
        best_val = val_auc if hp.metric == "auc" else val_acc
    best_val = None if best_val is None else float(best_val)
    return FitResult(best.weights, best.epoch, best_val, history, stopped,
                     time.monotonic() - start, scores)  # fmt: skip


class ValPlan(NamedTuple):
    """How :func:`fit` uses val (:func:`_val_plan`).

    Attributes:
        keep_last: every epoch is trained and the last weights kept (also with no val split).
        per_epoch: each epoch is scored on ``x`` and ``y``.
        score_all: the kept weights are scored on all of val at the end.
        x: the images each epoch scores, on the device (a ``keep_last`` fit's
            :func:`report_rows` of val, else all of it).
        y: their labels.
        task: the dataset's task, for the scores.
    """

    keep_last: bool
    per_epoch: bool
    score_all: bool
    x: Any
    y: np.ndarray
    task: str


@dataclass
class _Best:
    """The checkpoint :func:`fit` keeps so far, and the epochs since it last changed."""

    weights: dict | None = None  # CPU copy
    epoch: int = 0
    val: float | None = -math.inf
    stale: int = 0
    scores: np.ndarray | None = None

    def offer(self, model, stats: EpochStats, scores, *, keep_last: bool) -> None:
        """Keep ``model``'s weights after the epoch of ``stats`` when it is the first epoch,
        with ``keep_last``, or when its val score beats the kept one."""
        if self.weights is None or keep_last or stats.val_score > self.val:
            weights = model.state_dict().items()
            self.weights = {k: v.detach().to("cpu", copy=True) for k, v in weights}
            self.epoch, self.val, self.stale, self.scores = stats.epoch, stats.val_score, 0, scores
        else:
            self.stale += 1


def _train_epochs(state: TrainState, scheduler, val: ValPlan, *, deadline: Deadline | None,
                  on_epoch: Callable[[EpochStats], None] | None,
                  ) -> tuple[_Best, list[EpochStats], str]:  # fmt: skip
    """The epochs of :func:`fit`: ``(kept checkpoint, history, why it stopped)``."""
    hp = state.hp
    best, history, stopped = _Best(), [], "completed"
    for epoch in range(1, hp.epochs + 1):
        t0 = time.monotonic()
        lr = state.optimizer.param_groups[0]["lr"]
        train_loss, _, complete = train_epoch(state, deadline)
        if not complete:
            stopped = "deadline"
            if best.weights is not None:
                break  # an evaluated checkpoint exists; don't spend time past the deadline
        elif scheduler is not None:
            scheduler.step()
        stats, scores = _epoch_stats(state, val, epoch=epoch, train_loss=train_loss, lr=lr,
                                     t0=t0)  # fmt: skip
        history.append(stats)
        best.offer(state.model, stats, scores, keep_last=val.keep_last)
        if not complete:
            break
        if on_epoch is not None:
            on_epoch(stats)
        if hp.early_stop and best.stale >= hp.early_stop:
            stopped = "early_stop"
            break
    return best, history, stopped


def _epoch_stats(state: TrainState, val: ValPlan, *, epoch: int, train_loss: float, lr: float,
                 t0: float) -> tuple[EpochStats, np.ndarray | None]:  # fmt: skip
    """The epoch's stats (scored on ``val`` when it scores each epoch), and its val scores."""
    val_auc, val_acc, scores = (
        _evaluate(state, val.x, val.y, val.task) if val.per_epoch else (None,) * 3
    )
    val_score = val_auc if state.hp.metric == "auc" else val_acc
    stats = EpochStats(epoch, train_loss, val_auc, val_acc, val_score, lr, time.monotonic() - t0)
    return stats, scores


def _setup(model, data, hp: TrainHP, *, device, seed: int, img_size, augment):
    """The fit's TrainState (train split, subsampled by ``hp.train_fraction``, on the
    device), its scheduler and the val images on the device."""
    import torch

    from bench.data.splits import images_to_tensor, labels_to_tensor
    from bench.device import prepare_model, resolve_device

    device = resolve_device(device)
    set_seed(seed)
    spec = data.spec
    images, labels = data.train.images, data.train.labels
    if hp.train_fraction < 1:
        keep = stratified_subsample(labels, hp.train_fraction, seed)
        images, labels = images[keep], labels[keep]
    model = prepare_model(model, device)
    optimizer = make_optimizer(model, hp)
    state = TrainState(
        model=model,
        optimizer=optimizer,
        loss_fn=make_loss(spec.task),
        x=images_to_tensor(images, n_channels=spec.n_channels, ndim=spec.ndim, device=device),
        y=labels_to_tensor(labels, multilabel=spec.multilabel, device=device),
        hp=hp,
        device=device,
        img_size=img_size,
        augment=augment,
        perm_gen=torch.Generator().manual_seed(seed),
        aug_gen=torch.Generator(device=device).manual_seed(seed + 1),
    )
    x_val = images_to_tensor(
        data.val.images, n_channels=spec.n_channels, ndim=spec.ndim, device=device
    )
    return state, make_scheduler(optimizer, hp), x_val


def _val_plan(data, x_val, seed: int, *, keep_last: bool, reports: bool) -> ValPlan:
    """How :func:`fit` uses val: ``keep_last`` (also with an empty val split), whether each
    epoch is scored, whether the kept weights are scored on all of val at the end, and the
    images (on the device) and labels each epoch scores, gathered once (a ``keep_last``
    fit's :func:`report_rows`)."""
    import torch

    has_val, y_val, task = len(data.val) > 0, data.val.labels, data.spec.task
    keep_last = keep_last or not has_val  # every epoch trained, the last weights kept
    per_epoch = has_val and (not keep_last or reports)
    rows = report_rows(y_val, seed) if keep_last and per_epoch else None
    score_all = has_val and keep_last and (rows is not None or not per_epoch)
    if rows is None:
        return ValPlan(keep_last, per_epoch, score_all, x_val, y_val, task)
    x_rows = x_val[torch.as_tensor(rows, device=x_val.device)]
    return ValPlan(keep_last, per_epoch, score_all, x_rows, y_val[rows], task)


def _evaluate(
    state: TrainState, x, labels: np.ndarray, task: str
) -> tuple[float, float, np.ndarray]:
    """AUC, ACC and scores of the model now on the images ``x`` (on the device)."""
    from bench import scoring

    hp = state.hp
    scores = predict_tensor(state.model, x, task=task, device=state.device,
                            img_size=state.img_size, mean=hp.mean, std=hp.std,
                            batch_size=hp.eval_batch, policy=state.policy)  # fmt: skip
    return scoring.auc(labels, scores, task), scoring.acc(labels, scores, task), scores
