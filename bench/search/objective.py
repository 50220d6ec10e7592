"""The objective: one trial = suggest a configuration, plan it to its deadline (a
:class:`~bench.search.plan.TrialPlan`), fit it, report the per-epoch val score for pruning.

The objective only ever holds a :class:`~bench.data.splits.TrainVal` (no test split).
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchError, ConfigError
from bench.search import attrs, budget
from bench.search.plan import Suggestion, TrialPlan, make_plan

# -- objective ---------------------------------------------------------------------------------


class TrialFailed(RuntimeError):
    """A trial could not run (OOM, a plugin raising); the study records FAIL and goes on."""


OOM_MESSAGES = (
    "out of memory",  # CUDA's caching allocator and runtime, NCCL
    "can't allocate memory",  # the CPU allocator
    "alloc_failed",  # CUBLAS_STATUS_ALLOC_FAILED, CUDNN_STATUS_ALLOC_FAILED, CUFFT_ALLOC_FAILED
    "not_enough_workspace",  # CUDNN_STATUS_NOT_ENOUGH_WORKSPACE
)


def is_oom(exc: BaseException) -> bool:
    """True for CUDA/CPU out-of-memory errors: every allocation failure of the CUDA libraries
    (cuBLAS, cuDNN) too, so that it fails the one trial rather than the run."""
    import torch

    if isinstance(exc, (MemoryError, torch.OutOfMemoryError)):
        return True
    msg = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(m in msg for m in OOM_MESSAGES)


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
        speeds: measured speeds to start from (``speed_key`` -> train images/s), shared
            with whoever measured them (the first-trial choice).
        val_dir: folder for each completed trial's val predictions (ensemble selection).
        cv: folds (0: the official val split). With K folds over train + val a trial fits
            every fold (pruned on the first, whose reports score a subsample of its held-out
            fold; the folds seeded by ``seed``); its value is the mean held-out metric at each
            fold's last epoch and its val predictions are the out-of-fold ones.
        memory_limit: bytes this process may hold (CPU): a trial's batch is capped to fit,
            or the trial pruned with the reason (:mod:`bench.search.memory`); None: no cap.
        final_seconds: callable returning the most seconds one final fit gets (None: no
            final fits, as in a search worker); once a trial has completed, a trial whose
            final fits (on ``final_sizes``: train and val sizes) could not train on all of
            their data in it is pruned with the reason.
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
        speeds: dict | None = None,
        val_dir: Path | None = None,
        cv: int = 0,
        memory_limit: int | None = None,
        final_seconds: Callable[[], float | None] | None = None,
        final_sizes: tuple[int, int] | None = None,
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
        self.val_dir = val_dir
        from bench.data.folds import fit_sizes, fold_ids, pool

        self.cv = cv
        self.folds = None
        if cv:
            self._pool = pool(data)  # once: every trial's folds are cut from it
            self.folds = fold_ids(self._pool.labels, cv, seed)
        self._fit_sizes = fit_sizes(data, self.folds)
        self.memory_limit = memory_limit
        self.final_seconds = final_seconds or (lambda: None)
        self.final_sizes = final_sizes or self._fit_sizes[:2]
        self._saved: dict[tuple, float] = {}  # speed_key -> activation bytes per image
        self._speed: dict[tuple, float] = {} if speeds is None else speeds  # images/s
        self._ratios: list[float] = []  # real epoch seconds / planned epoch seconds

    @property
    def ratios(self) -> tuple[float, ...]:
        """Real / planned seconds of the second epoch of each trial run here."""
        return tuple(self._ratios)

    @property
    def calib(self) -> float:
        """How much slower real epochs are than the probe predicts (median of the trials
        run here; a prior until one has run): data movement, evaluation, schedulers. Below 1
        when the probe read low (down to :data:`~bench.search.budget.CALIBRATION_MIN`)."""
        if not self._ratios:
            return budget.CALIBRATION_PRIOR
        ordered = sorted(self._ratios)
        return max(budget.CALIBRATION_MIN, ordered[len(ordered) // 2])

    def __call__(self, trial) -> float:
        import optuna

        from bench.models.registry import get_model_spec
        from bench.search.spaces import augment_kwargs, suggest
        from bench.search.storage import worker_tag
        from bench.train import Deadline, DivergedError

        start = time.monotonic()
        if attrs.WORKER not in trial.user_attrs:  # a journal storage tagged it at its start
            trial.set_user_attr(attrs.WORKER, worker_tag())
        if self.sampler_seed is not None:
            trial.set_user_attr(attrs.SAMPLER_SEED, self.sampler_seed)
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
            trial.set_user_attr(attrs.FAIL_REASON, f"diverged: {exc}"[:300])
            raise optuna.TrialPruned(f"diverged: {exc}") from None
        except Exception as exc:
            reason = _reason(exc)
            if is_oom(exc):
                reason = f"out of memory: {reason}"
            elif not (plugin or isinstance(exc, BenchError) or _plugin_augment(aug_name)):
                raise  # a bug in bench itself: an internal fault, not a trial outcome
            trial.set_user_attr(attrs.FAIL_REASON, reason)
            raise TrialFailed(reason) from None
        finally:  # between trials: the cached blocks back to the processes sharing the GPU
            _free_cuda(self.device)

    def _run(self, trial, family, model_params, train_params, deadline, start) -> float:
        from bench.models.registry import model_for, param_count
        from bench.train import set_seed

        hp, aug_name, aug_hp = split_train_params(train_params, self.metric)
        suggestion = Suggestion(family, model_params, hp, aug_name, aug_hp)

        def build():
            return model_for(self.data.spec, family, img_size=self.img_size, **model_params)

        set_seed(self.seed)
        model = build()
        trial.set_user_attr(attrs.N_PARAMS, param_count(model))
        smallest = not _any_complete(trial)
        batch, eval_batch = self._memory_batch(trial, model, suggestion)
        thr = self._feasible_speed(trial, model, suggestion, deadline, smallest, batch)
        augment = None
        if aug_name != "none":
            augment, thr = self._augment(trial, suggestion, deadline, thr)
        trial.set_user_attr(attrs.THROUGHPUT_WITH_AUGMENT, round(thr, 1))
        plan = make_plan(
            suggestion, throughput=thr, calib=self.calib, sizes=self.fit_sizes(),
            max_epochs=self.max_epochs, seconds=max(1.0, deadline.remaining() / max(1, self.cv)),
            smallest=smallest, batch_size=batch, eval_batch=eval_batch,
        )  # fmt: skip
        trial.set_user_attr(attrs.EPOCHS, plan.epochs)
        trial.set_user_attr(attrs.TRAIN_FRACTION, plan.train_fraction)
        if not smallest:
            self._check_final_fits(trial, plan)
        return self._fit(trial, plan, model, build, augment, deadline, start)

    def _check_final_fits(self, trial, plan: TrialPlan) -> None:
        """Pruned with the reason when the trial's final fits could not train on all of
        their data (:func:`~bench.search.budget.full_refit_seconds`) in the most one gets:
        chosen, they would fall back to the trial's subsample."""
        import optuna

        seconds = self.final_seconds()
        if seconds is None:
            return
        epochs, throughput = plan.epochs, plan.speed
        n_train, n_val = self.final_sizes
        need = budget.full_refit_seconds(epochs, throughput=throughput, n_train=n_train,
                                         n_val=n_val)  # fmt: skip
        if need <= seconds:
            return
        least = budget.least_full_epochs(epochs)
        reason = (
            f"too slow for its final fits: {throughput:.1f} train images/s cannot train "
            f"{least} epoch{'s' if least > 1 else ''} on all {n_train} images in {seconds:.0f}s"
        )
        trial.set_user_attr(attrs.FAIL_REASON, reason)
        raise optuna.TrialPruned(reason)

    def fit_sizes(self) -> tuple[int, int, int]:
        """Train, val scored each epoch and val scored once: the splits', or one fold's (the
        first; :func:`bench.data.folds.fit_sizes`)."""
        return self._fit_sizes

    def fit_data(self):
        """The TrainVal of each fit of a trial: the splits, or the K folds."""
        if not self.cv:
            return [self.data]
        from bench.data.folds import fold_data

        return [fold_data(self.data, self.folds, i, self._pool) for i in range(self.cv)]

    def _feasible_speed(self, trial, model, suggestion: Suggestion, deadline, smallest,
                        batch: int) -> float:  # fmt: skip
        """The model's train images/s at ``batch`` (measured once per configuration and batch;
        a probe cut short by ``need`` is not kept); pruned with the reason when even the
        shortest allowed trial cannot finish before ``deadline``."""
        import optuna

        from bench.search.speed import measure_throughput, speed_key, trained_batch

        n_train, n_val, n_once = self.fit_sizes()
        batch = trained_batch(batch, n_train)
        seconds = max(1.0, deadline.remaining() / max(1, self.cv))
        need = self.calib * budget.needed_throughput(
            n_train=n_train, n_val=n_val, seconds=seconds, smallest=smallest, n_once=n_once
        )
        key = speed_key(suggestion.family, suggestion.model_params, batch)
        measured = key in self._speed
        if measured:
            thr = self._speed[key]
        else:
            thr, measured = measure_throughput(
                model, in_chans=self.data.spec.n_channels, img_size=self.img_size,
                device=self.device, batch=batch, need=need, ndim=self.data.spec.ndim,
            )  # fmt: skip
            if measured:
                self._speed[key] = thr
        trial.set_user_attr(attrs.THROUGHPUT, round(thr, 1))
        if thr < need:
            epochs = budget.SMALLEST_EPOCHS if smallest else budget.MIN_EPOCHS
            reason = (
                f"too slow for the time left: {'' if measured else 'at most '}{thr:.1f} train "
                f"images/s cannot run {epochs} epoch{'s' if epochs > 1 else ''} in {seconds:.0f}s"
            )
            trial.set_user_attr(attrs.FAIL_REASON, reason)
            if not smallest and self._no_family_fits(need, deadline, thr):
                trial.study.stop()  # else every trial to the search end is pruned like this
            raise optuna.TrialPruned(reason)
        return thr

    def _no_family_fits(self, need: float, deadline, thr: float) -> bool:
        """True when the search's end bounds this trial and neither this trial (``thr``) nor
        any family measured here trains ``need`` images/s: every further trial of this
        search would be pruned as too slow."""
        fastest = max([thr, *self._speed.values()])
        return deadline.end >= self.search_end() and fastest < need

    def _memory_batch(self, trial, model, suggestion: Suggestion):
        """(train batch, eval batch or None): the sampled batch, or the largest that fits the memory
        limit, and the evaluation batch that fits it (both recorded on the trial when capped);
        pruned with the reason when not even :data:`~bench.search.memory.MIN_BATCH` fits."""
        import optuna

        from bench import train
        from bench.models.registry import param_count
        from bench.search import memory
        from bench.search.speed import speed_key

        batch = suggestion.hp.batch_size
        if self.memory_limit is None or self.device.type != "cpu":
            return batch, None
        key = speed_key(suggestion.family, suggestion.model_params)
        if key not in self._saved:
            self._saved[key] = memory.saved_bytes_per_image(
                model, in_chans=self.data.spec.n_channels, img_size=self.img_size,
                ndim=self.data.spec.ndim,
            )  # fmt: skip
        n_params, in_use = param_count(model), memory.rss_bytes()
        sizes = dict(per_image=self._saved[key], n_params=n_params, in_use=in_use)
        cap = memory.batch_cap(self.memory_limit, **sizes)
        eval_cap = memory.eval_cap(self.memory_limit, **sizes)
        if eval_cap < train.EVAL_BATCH:
            trial.set_user_attr(attrs.EVAL_CAP, eval_cap)
        else:
            eval_cap = None
        if cap >= batch:
            return batch, eval_cap
        smallest = min(batch, memory.MIN_BATCH)
        if cap < smallest:
            need = memory.step_bytes(self._saved[key], n_params, smallest)
            reason = (
                f"over the memory limit: one step at batch {smallest} needs "
                f"{memory.fmt_bytes(need)} beside the {memory.fmt_bytes(in_use)} in use, "
                f"limit {memory.fmt_bytes(self.memory_limit)} (--max-memory)"
            )
            trial.set_user_attr(attrs.FAIL_REASON, reason)
            raise optuna.TrialPruned(reason)
        trial.set_user_attr(attrs.BATCH_CAP, cap)
        return cap, eval_cap

    def _augment(self, trial, suggestion: Suggestion, deadline, thr: float):
        """The trial's augmentation, and the throughput with its cost included."""
        from bench.augment.registry import build_augment
        from bench.search.speed import augment_cost

        augment = build_augment(suggestion.augment, data=self.data, img_size=self.img_size,
                                seed=self.seed, device=self.device, deadline=deadline,
                                hp=suggestion.augment_hp)  # fmt: skip
        thr = 1.0 / (1.0 / thr + augment_cost(augment, self.data, device=self.device))
        trial.set_user_attr(attrs.AUGMENT_INFO, dict(getattr(augment, "info", None) or {}))
        return augment, thr

    def _fit(self, trial, plan: TrialPlan, model, build, augment, deadline, start: float) -> float:
        """Fit with per-epoch reports and pruning (each fold with ``--cv``: the first one
        reports and is pruned); store what the budget reads back. A ``--cv`` fold model
        trains every epoch and is scored at its last one, as the refit it stands for
        (``fit(keep_last=True)``: the first fold's reports score a subsample of its fold)."""
        import numpy as np
        import optuna

        from bench.train import Deadline, fit, set_seed

        predicted = plan.epoch_seconds(plan.throughput)
        hp = plan.train_hp()

        def on_epoch(stats) -> None:
            if stats.epoch == 2:  # the first epoch pays warm-up costs
                self._ratios.append(stats.seconds / predicted)
            trial.report(stats.val_score, stats.epoch)
            self.on_event(TrialEvent("epoch", trial.number, trial.params.get("family", ""),
                                     stats.epoch, plan.epochs, stats.val_score))  # fmt: skip
            if trial.should_prune():
                trial.set_user_attr(attrs.EPOCHS_RUN, stats.epoch)
                trial.set_user_attr(attrs.FIT_SECONDS, round(time.monotonic() - start, 3))
                raise optuna.TrialPruned(f"pruned at epoch {stats.epoch}")

        parts, results = self.fit_data(), []
        for i, part in enumerate(parts):
            if i:
                set_seed(self.seed)
                model = build()
            share = Deadline(deadline.remaining() / (len(parts) - i))
            results.append(fit(
                model, part, hp, device=self.device, seed=self.seed, img_size=self.img_size,
                augment=augment, deadline=share, on_epoch=on_epoch if i == 0 else None,
                keep_last=bool(self.cv),
            ))  # fmt: skip
        first = results[0]
        trial.set_user_attr(attrs.FIT_SECONDS, round(time.monotonic() - start, 3))
        trial.set_user_attr(attrs.TRAIN_SECONDS, round(first.seconds, 3))
        if first.history:
            per_epoch = sorted(e.seconds for e in first.history)[len(first.history) // 2]
            trial.set_user_attr(attrs.EPOCH_SECONDS, round(per_epoch, 4))
            trial.set_user_attr(attrs.EPOCH_IMAGES, round(plan.epoch_seconds(1.0), 1))
        trial.set_user_attr(attrs.EPOCHS_RUN, len(first.history))
        trial.set_user_attr(attrs.BEST_EPOCH, first.best_epoch)
        trial.set_user_attr(attrs.STOPPED, first.stopped)
        value = float(np.mean([r.best_val for r in results]))
        if not math.isfinite(value):
            raise optuna.TrialPruned("no finite val score")
        if self.cv:
            trial.set_user_attr(attrs.FOLD_SCORES, [round(r.best_val, 6) for r in results])
        self._save_val_scores(trial.number, results)
        return value

    def _save_val_scores(self, number: int, results) -> None:
        """The trial's val predictions (with ``--cv``: out-of-fold, in pool order)."""
        if self.val_dir is None or any(r.val_scores is None for r in results):
            return
        from bench.search.ensemble import save_val_scores

        scores = results[0].val_scores
        if self.cv:
            import numpy as np

            scores = np.zeros((len(self.folds), scores.shape[1]))
            for i, r in enumerate(results):
                scores[self.folds == i] = r.val_scores
        save_val_scores(self.val_dir, number, scores)


def _any_complete(trial) -> bool:
    """True once the trial's study has a completed trial (then the shortest allowed trial is
    ``MIN_EPOCHS`` on ``MIN_FRACTION`` of train; before, the smallest trial)."""
    from optuna.trial import TrialState

    study = getattr(trial, "study", None)
    if study is None:  # a FixedTrial
        return True
    return bool(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def _plugin_augment(name: str) -> bool:
    if name == "none":
        return False
    try:
        from bench.augment.registry import get_augmentation

        return get_augmentation(name).source != "built-in"
    except BenchError:
        return False


def _free_cuda(device) -> None:
    """``torch.cuda.empty_cache()`` on a CUDA ``device``."""
    from bench.device import is_cuda

    if is_cuda(device):
        import torch

        torch.cuda.empty_cache()


def split_train_params(train_params: dict, metric: str):
    """Common parameters -> ``(TrainHP, aug_name, aug_hp)``.

    Raises:
        ConfigError: a common parameter that is neither a TrainHP field nor augmentation.
    """
    from bench.search.spaces import AUGMENT, augment_kwargs
    from bench.train import TrainHP

    aug_name, aug_hp = augment_kwargs(train_params)
    hp_params = {k: v for k, v in train_params.items() if k != AUGMENT and k not in aug_hp}
    hp, rest = TrainHP.split_params({**hp_params, "metric": metric})
    if rest:
        raise ConfigError(f"common parameters {sorted(rest)} are not training settings")
    return hp, aug_name, aug_hp


def best_config(trial, space, metric: str):
    """The :class:`~bench.train.FitConfig` of a finished trial, re-derived from its
    parameters, with the trial's planned epochs and train fraction."""
    import optuna

    from bench.search.spaces import suggest
    from bench.train import FitConfig

    family, model_params, train_params = suggest(optuna.trial.FixedTrial(trial.params), space)
    hp, aug_name, aug_hp = split_train_params(train_params, metric)
    hp.epochs = int(trial.user_attrs.get(attrs.EPOCHS, hp.epochs))
    hp.train_fraction = float(trial.user_attrs.get(attrs.TRAIN_FRACTION, 1.0))
    hp.batch_size = min(hp.batch_size, int(trial.user_attrs.get(attrs.BATCH_CAP, hp.batch_size)))
    hp.eval_batch = trial.user_attrs.get(attrs.EVAL_CAP)
    return FitConfig(family, model_params, hp, aug_name, aug_hp)
