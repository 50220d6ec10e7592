"""The Optuna side of a search: storage from a URL, study names, sampler and pruner
factories, the per-trial time plan and the objective.

The objective only ever holds a :class:`~bench.data.splits.TrainVal` (no test split).
"""

from __future__ import annotations

import math
import os
import re
import socket
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import BenchError, ConfigError

HEARTBEAT_S = 30  # RDB heartbeat interval; a worker silent for GRACE_S is declared dead
GRACE_S = 120
MIN_EPOCHS = 3
MIN_TRAIN = 256  # a subsampled train split keeps at least this many images
MIN_FRACTION = 0.1
VAL_COST = 1 / 3  # a val image costs about a third of a train image (forward only)


# -- storage -----------------------------------------------------------------------------


def storage_kind(url: str | None) -> str:
    """``journal`` (a file path or None), ``sqlite``, ``postgresql``, or the URL's scheme."""
    if not url or "://" not in url:
        return "journal"
    scheme = url.split("://", 1)[0].split("+", 1)[0].lower()
    return "postgresql" if scheme in ("postgres", "postgresql") else scheme


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages)."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def open_storage(url: str | None, *, default_journal: Path):
    """Open (and check) the Optuna storage named by ``url``.

    Args:
        url: None (journal at ``default_journal``), a file path (journal file),
            ``sqlite:///f.db`` or ``postgresql://user:pw@host/db`` (RDB storage with heartbeats
            and a retry of trials whose worker died).
        default_journal: the journal file used when ``url`` is None.

    Raises:
        BenchError: the storage cannot be opened or reached (one line, no password).
    """
    import optuna

    kind = storage_kind(url)
    if kind == "journal":
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path = Path(url).expanduser() if url else Path(default_journal)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(path)))
        except OSError as exc:
            raise BenchError(
                f"cannot open journal storage {path}: {exc.strerror or exc}; "
                "pass a writable --storage path or --out folder"
            ) from None
    engine_kwargs: dict[str, Any] = {}
    if kind == "postgresql":
        engine_kwargs = {"connect_args": {"connect_timeout": 10}, "pool_pre_ping": True}
    shown = redact(url)
    if kind == "postgresql":
        url = _postgres_driver(url)
    for attempt in range(4):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=HEARTBEAT_S,
                    grace_period=GRACE_S,
                    heartbeat_stale_trial_callback=(
                        optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)
                    ),
                )
        except Exception as exc:  # sqlalchemy/driver errors: unreachable, bad URL, no driver
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            if attempt < 3 and _schema_race(exc):
                time.sleep(0.5 + attempt)  # another worker is creating the tables right now
                continue
            raise BenchError(
                f"cannot reach storage {shown}: {first[:200]}; check the URL and that "
                "the server is running"
            ) from None
    raise AssertionError("unreachable")


def _schema_race(exc: BaseException) -> bool:
    """True for the errors two workers get when they create Optuna's tables at once."""
    text = str(exc).lower()
    return any(s in text for s in ("already exists", "duplicate key", "uniqueviolation"))


def _postgres_driver(url: str) -> str:
    """``postgresql://`` spelled with the installed driver: SQLAlchemy 2.1 defaults to
    psycopg 3, while bench depends on psycopg2."""
    scheme, rest = url.split("://", 1)
    if "+" in scheme:
        return url
    import importlib.util

    if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2"):
        return f"postgresql+psycopg2://{rest}"
    return url


def study_name(dataset: str, data_size: int, space_hash: str) -> str:
    """``bench.{dataset}.{data_size}.{space_hash8}`` (an ``npz:``/``folder:`` path shortened
    to its file stem)."""
    if ":" in dataset:
        dataset = f"{dataset.split(':', 1)[0]}-{Path(dataset.split(':', 1)[1]).stem}"
    safe = "".join(c if c.isalnum() or c in "_-" else "-" for c in dataset)
    return f"bench.{safe}.{data_size}.{space_hash[:8]}"


def worker_tag() -> str:
    """``host:pid`` of this process, stored on each trial it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def fail_dead_local_trials(study) -> list[int]:
    """Mark RUNNING trials started by a dead process on this host as FAIL (journal storages
    have no heartbeat). Returns their numbers."""
    from optuna.trial import TrialState

    host = socket.gethostname()
    dead = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        tag_host, _, pid = str(t.user_attrs.get("worker", "")).rpartition(":")
        if tag_host != host or not pid.isdigit() or _alive(int(pid)):
            continue
        study._storage.set_trial_user_attr(t._trial_id, "fail_reason", "worker died")
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        dead.append(t.number)
    return dead


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    state = Path(f"/proc/{pid}/stat")
    try:  # a zombie is dead
        return state.read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


# -- sampler, pruner, budget ------------------------------------------------------------------


def make_sampler(kind: str, seed: int):
    """``tpe`` (multivariate, grouped, constant liar) or ``random``, seeded."""
    import optuna

    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if kind == "tpe":
        return optuna.samplers.TPESampler(
            multivariate=True, group=True, constant_liar=True, seed=seed
        )
    raise ConfigError(f"unknown sampler {kind!r}: use tpe or random")


def make_pruner(kind: str, max_epochs: int):
    """``hyperband`` (min 1, max ``max_epochs`` epochs), ``median`` or ``none``."""
    import optuna

    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(2, max_epochs))
    if kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    if kind == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"unknown pruner {kind!r}: use hyperband, median or none")


def worker_seed(seed: int, *, worker: bool) -> int:
    """The sampler seed: ``seed`` for ``bench run``; ``seed`` plus a pid-derived offset for a
    ``bench search`` worker, so parallel workers do not propose the same points."""
    return seed + (os.getpid() % 9973) * 7919 + 1 if worker else seed


def budget_epochs(budget_s: float) -> int:
    """Max epochs per trial from the budget: ``10 * sqrt(minutes)`` in [5, 100]
    (3m -> 17, 10m -> 32, 1h -> 77, 4h+ -> 100, the MedMNIST v2 protocol)."""
    return int(min(100, max(5, round(10 * math.sqrt(budget_s / 60)))))


def trial_cap(search_s: float) -> float:
    """At most a sixth of the search time per trial (at least 10 s)."""
    return max(10.0, search_s / 6)


def plan_trial(
    *, throughput: float, n_train: int, n_val: int, max_epochs: int, seconds: float
) -> tuple[int, float]:
    """Epochs and train fraction so that a trial fits in ``seconds``.

    Cost of one epoch = ``(fraction * n_train + n_val / 3) / throughput`` (images/s of
    forward+backward). In order: full data and ``max_epochs`` if that fits; else fewer
    epochs, down to half of ``max_epochs``; else a smaller stratified train subsample, down
    to ``MIN_TRAIN`` images or 10 %; else fewer epochs down to ``MIN_EPOCHS``. Whatever still
    does not fit is cut by the trial's Deadline.
    """
    thr = max(throughput, 1e-9)

    def epoch_s(fraction: float) -> float:
        return (fraction * n_train + VAL_COST * n_val) / thr

    if max_epochs * epoch_s(1.0) <= seconds:
        return max_epochs, 1.0
    half = max(MIN_EPOCHS, max_epochs // 2)
    epochs = int(seconds // epoch_s(1.0))
    if epochs >= half:
        return min(epochs, max_epochs), 1.0
    epochs = min(half, max_epochs)
    f_min = min(1.0, max(MIN_FRACTION, MIN_TRAIN / max(n_train, 1)))
    fraction = (seconds / epochs * thr - VAL_COST * n_val) / max(n_train, 1)
    if fraction >= f_min:
        return epochs, round(min(1.0, fraction), 3)
    epochs = max(MIN_EPOCHS, int(seconds // epoch_s(f_min)))
    return min(epochs, max_epochs), round(f_min, 3)


def warm_up() -> None:
    """Import torch, the metrics (sklearn, medmnist) and torch.optim's lazy modules now, so the
    first trial's time (which sizes the final-fit reserve) is not inflated by imports."""
    import torch

    import bench.metrics  # noqa: F401
    import bench.train  # noqa: F401

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


def measure_throughput(
    model, *, in_chans: int, img_size: int, device, need: float | None = None
) -> float:
    """Train images/s of ``model`` from timed forward+backward passes on random images.

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
        x = torch.randn(batch, in_chans, img_size, img_size, generator=gen).to(device)
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


def needed_throughput(*, n_train: int, n_val: int, seconds: float) -> float:
    """Images/s needed to run ``MIN_EPOCHS`` epochs on the smallest train subsample in
    ``seconds``; a slower configuration is infeasible."""
    f_min = min(1.0, max(MIN_FRACTION, MIN_TRAIN / max(n_train, 1)))
    return MIN_EPOCHS * (f_min * n_train + VAL_COST * n_val) / max(seconds, 1e-9)


def speed_key(family: str, model_params: dict) -> tuple:
    """Cache key of a model's speed: the family and its int and string parameters (floats
    such as dropout and switches such as zero-init rarely change the compute)."""
    return (
        family,
        *sorted((k, v) for k, v in model_params.items() if not isinstance(v, (float, bool))),
    )


# -- objective ---------------------------------------------------------------------------------


class TrialFailed(RuntimeError):
    """A trial could not run (OOM, a plugin raising); the study records FAIL and goes on."""


def is_oom(exc: BaseException) -> bool:
    """True for CUDA/CPU out-of-memory errors."""
    import torch

    if isinstance(exc, (MemoryError, torch.OutOfMemoryError)):
        return True
    msg = str(exc).lower()
    return isinstance(exc, RuntimeError) and (
        "out of memory" in msg or "can't allocate memory" in msg
    )


def _reason(exc: BaseException) -> str:
    line = (str(exc).strip().splitlines() or [""])[0][:300]
    frame = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {Path(frame[0].filename).name}:{frame[0].lineno})" if frame else ""
    return f"{type(exc).__name__}: {line}{where}"


@dataclass
class TrialEvent:
    """What the objective tells the display: ``kind`` is start | epoch."""

    kind: str
    number: int
    family: str = ""
    epoch: int = 0
    epochs: int = 0
    value: float = float("nan")


class Objective:
    """``objective(trial) -> best val score`` over one :class:`TrainVal`.

    Args:
        data: train and val only.
        space: the resolved search space.
        device: torch device.
        metric: ``auc`` or ``acc`` (the val score reported and maximised).
        img_size: model input size.
        seed: seed of every trial's fit (same initialisation for every configuration).
        max_epochs: epochs of a full trial (the pruner's max_resource).
        search_end: callable returning the monotonic time the search must end by.
        cap_s: longest a single trial may run.
        on_event: called with a :class:`TrialEvent` at trial start and after each epoch.
        sampler_seed: recorded on each trial.
    """

    def __init__(
        self,
        data,
        space,
        *,
        device,
        metric: str,
        img_size: int,
        seed: int,
        max_epochs: int,
        search_end: Callable[[], float],
        cap_s: float,
        on_event: Callable[[TrialEvent], None] | None = None,
        sampler_seed: int | None = None,
    ) -> None:
        if hasattr(data, "test"):
            raise TypeError("the objective takes a TrainVal; the test split stays with finalize")
        self.data = data
        self.space = space
        self.device = device
        self.metric = metric
        self.img_size = img_size
        self.seed = seed
        self.max_epochs = max_epochs
        self.search_end = search_end
        self.cap_s = cap_s
        self.on_event = on_event or (lambda e: None)
        self.sampler_seed = sampler_seed
        self._speed: dict[tuple, float] = {}  # speed_key -> measured train images/s
        self._ratios: list[float] = []  # real epoch seconds / planned epoch seconds

    @property
    def calib(self) -> float:
        """How much slower real epochs are than the probe predicts (median of the trials
        run here; 2 until one has run): data movement, evaluation, schedulers."""
        if not self._ratios:
            return 2.0
        ordered = sorted(self._ratios)
        return max(1.0, ordered[len(ordered) // 2])

    def __call__(self, trial) -> float:
        import optuna

        from bench.models.registry import get_model_spec
        from bench.spaces import augment_kwargs, suggest
        from bench.train import Deadline, DivergedError

        start = time.monotonic()
        trial.set_user_attr("worker", worker_tag())
        if self.sampler_seed is not None:
            trial.set_user_attr("sampler_seed", self.sampler_seed)
        family, model_params, train_params = suggest(trial, self.space)
        self.on_event(TrialEvent("start", trial.number, family=family))
        deadline = Deadline.at(min(self.search_end(), start + self.cap_s))
        plugin = get_model_spec(family).source != "built-in"
        aug_name, _ = augment_kwargs(train_params)
        try:
            return self._run(trial, family, model_params, train_params, deadline, start)
        except optuna.TrialPruned:
            raise
        except DivergedError as exc:  # a bad configuration: pruned, so TPE learns from it
            trial.set_user_attr("fail_reason", f"diverged: {exc}"[:300])
            raise optuna.TrialPruned(f"diverged: {exc}") from None
        except Exception as exc:
            reason = _reason(exc)
            if is_oom(exc):
                _free_cuda()
                reason = f"out of memory: {reason}"
            elif not (plugin or isinstance(exc, BenchError) or _plugin_augment(aug_name)):
                raise  # a bug in bench itself: an internal fault, not a trial outcome
            trial.set_user_attr("fail_reason", reason)
            raise TrialFailed(reason) from None

    def _run(self, trial, family, model_params, train_params, deadline, start) -> float:
        import optuna

        from bench.models.registry import create_model
        from bench.train import fit, set_seed

        spec = self.data.spec
        hp, aug_name, aug_hp = split_train_params(train_params, self.metric)
        set_seed(self.seed)
        model = create_model(
            family,
            num_classes=spec.n_outputs,
            in_chans=spec.n_channels,
            img_size=self.img_size,
            **model_params,
        )
        n_params = sum(p.numel() for p in model.parameters())
        trial.set_user_attr("n_params", int(n_params))
        n_train, n_val = len(self.data.train), len(self.data.val)
        seconds = max(1.0, deadline.remaining())
        need = needed_throughput(n_train=n_train, n_val=n_val, seconds=seconds) * self.calib
        key = speed_key(family, model_params)
        if key not in self._speed:
            self._speed[key] = measure_throughput(
                model, in_chans=spec.n_channels, img_size=self.img_size, device=self.device,
                need=need,
            )  # fmt: skip
        thr = self._speed[key]
        trial.set_user_attr("throughput", round(thr, 1))
        if thr < need:
            reason = (
                f"too slow for the time left: {thr:.1f} train images/s cannot run "
                f"{MIN_EPOCHS} epochs in {seconds:.0f}s"
            )
            trial.set_user_attr("fail_reason", reason)
            raise optuna.TrialPruned(reason)
        augment = None
        if aug_name != "none":
            from bench.augment.registry import build_augmentation

            augment = build_augmentation(
                aug_name,
                data=self.data,
                img_size=self.img_size,
                seed=self.seed,
                device=self.device,
                deadline=deadline,
                **aug_hp,
            )
            thr = 1.0 / (1.0 / thr + augment_cost(augment, self.data, device=self.device))
            trial.set_user_attr("augment_info", dict(getattr(augment, "info", None) or {}))
        trial.set_user_attr("throughput_with_augment", round(thr, 1))
        hp.epochs, hp.train_fraction = plan_trial(
            throughput=thr / self.calib,
            n_train=n_train,
            n_val=n_val,
            max_epochs=self.max_epochs,
            seconds=max(1.0, deadline.remaining()),
        )
        trial.set_user_attr("epochs", hp.epochs)
        trial.set_user_attr("train_fraction", hp.train_fraction)
        epochs_run = []

        predicted = (hp.train_fraction * n_train + VAL_COST * n_val) / thr

        def on_epoch(stats) -> None:
            epochs_run.append(stats.epoch)
            if stats.epoch == 2:  # the first epoch pays warm-up costs
                self._ratios.append(stats.seconds / predicted)
            trial.report(stats.val_score, stats.epoch)
            self.on_event(
                TrialEvent("epoch", trial.number, family, stats.epoch, hp.epochs, stats.val_score)
            )
            if trial.should_prune():
                trial.set_user_attr("epochs_run", stats.epoch)
                trial.set_user_attr("fit_seconds", round(time.monotonic() - start, 3))
                raise optuna.TrialPruned(f"pruned at epoch {stats.epoch}")

        result = fit(
            model,
            self.data,
            hp,
            device=self.device,
            seed=self.seed,
            img_size=self.img_size,
            augment=augment,
            deadline=deadline,
            on_epoch=on_epoch,
        )
        trial.set_user_attr("fit_seconds", round(time.monotonic() - start, 3))
        trial.set_user_attr("train_seconds", round(result.seconds, 3))
        if result.history:
            per_epoch = sorted(e.seconds for e in result.history)[len(result.history) // 2]
            trial.set_user_attr("epoch_seconds", round(per_epoch, 4))
        trial.set_user_attr("epochs_run", len(result.history))
        trial.set_user_attr("best_epoch", result.best_epoch)
        trial.set_user_attr("stopped", result.stopped)
        if not math.isfinite(result.best_val):
            raise optuna.TrialPruned("no finite val score")
        return float(result.best_val)


def _plugin_augment(name: str) -> bool:
    if name == "none":
        return False
    try:
        from bench.augment.registry import get_augmentation

        return get_augmentation(name).source != "built-in"
    except BenchError:
        return False


def _free_cuda() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def split_train_params(train_params: dict, metric: str):
    """Common parameters -> ``(TrainHP, aug_name, aug_hp)``.

    Raises:
        ConfigError: a common parameter that is neither a TrainHP field nor augmentation.
    """
    from bench.spaces import AUGMENT, augment_kwargs
    from bench.train import TrainHP

    aug_name, aug_hp = augment_kwargs(train_params)
    hp_params = {k: v for k, v in train_params.items() if k != AUGMENT and k not in aug_hp}
    hp, rest = TrainHP.split_params({**hp_params, "metric": metric})
    if rest:
        raise ConfigError(f"common parameters {sorted(rest)} are not training settings")
    return hp, aug_name, aug_hp


def best_config(trial, space, metric: str) -> dict:
    """The configuration of a finished trial, re-derived from its parameters.

    Returns:
        dict with ``family``, ``model_params``, ``hp`` (TrainHP with the trial's planned
        epochs and train fraction), ``aug_name``, ``aug_hp``.
    """
    import optuna

    from bench.spaces import suggest

    family, model_params, train_params = suggest(optuna.trial.FixedTrial(trial.params), space)
    hp, aug_name, aug_hp = split_train_params(train_params, metric)
    hp.epochs = int(trial.user_attrs.get("epochs", hp.epochs))
    hp.train_fraction = float(trial.user_attrs.get("train_fraction", 1.0))
    return {
        "family": family,
        "model_params": model_params,
        "hp": hp,
        "aug_name": aug_name,
        "aug_hp": aug_hp,
    }
