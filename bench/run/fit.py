"""Fit one configuration with one seed and score it once on the test split.

:func:`fit_and_score` is the one fit-and-score path (``bench run``'s final fits and ``bench
train``); it scores on test through :func:`bench.scoring.score_test`, the one reader of
test labels. The search never gets here: it holds a TrainVal, which has no test split.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bench.errors import BenchError
from bench.scoring import keep_test_predictions, score_test

if TYPE_CHECKING:
    from bench.train import Deadline, FitConfig, TrainHP

FITS_FILE = "fits.json"


@dataclass
class SeedResult:
    """One seed's fit and its test scores (``test`` is the classification report)."""

    seed: int
    test: dict
    val_score: float | None  # None for a refit on the whole pool (no val split)
    best_epoch: int
    epochs: int
    stopped: str
    seconds: float
    n_params: int
    history: list
    augment_info: dict
    predictions: str  # path relative to the run folder
    model_file: str = ""  # the saved fit's metadata, relative to the run folder
    train_fraction: float = 1.0  # of the train split the fit trained on
    scores: np.ndarray | None = None  # test probabilities (for the ensembles)

    def per_seed(self) -> dict:
        """The record's ``per_seed`` entry."""
        return {
            "seed": self.seed,
            "test_auc": float(self.test["auc"]),
            "test_acc": float(self.test["acc"]),
            "val_score": self.val_score,
            "best_epoch": self.best_epoch,
            "train_fraction": self.train_fraction,
        }

    def fit_entry(self) -> dict:
        """The ``fits.json`` entry (``bench report`` reads ``history`` and ``test``)."""
        entry = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        del entry["scores"]
        return {**entry, "best_val": self.val_score}


@dataclass(frozen=True)
class FitPlan:
    """What a final fit of ``bench run`` fits its epochs and train fraction to its deadline
    from (:func:`planned_hp`): its trial's measured speed and epoch time."""

    throughput: float | None  # train images/s the trial measured (None: no fresh probe)
    epoch_s: float | None  # the trial's epoch time for this fit's data (None: not measured)


def planned_hp(plan: FitPlan, hp: TrainHP, model, augment, data, *, img_size: int, device,
               deadline: Deadline) -> TrainHP:  # fmt: skip
    """``hp`` with the epochs and train fraction :func:`bench.search.budget.final_plan` gives
    for the time ``deadline`` leaves, at the trial's epoch time slowed by how much slower
    this machine is now (a fresh probe of ``model`` at ``hp``'s batch, as the trial's was,
    with ``augment``'s cost)."""
    from bench.search.budget import final_plan
    from bench.search.speed import augment_cost, measure_throughput, trained_batch

    slowdown = 1.0
    if plan.throughput:
        now = measure_throughput(model, in_chans=data.spec.n_channels, img_size=img_size,
                                 device=device, batch=trained_batch(hp.batch_size, len(data.train)),
                                 ndim=data.spec.ndim).images_s  # fmt: skip
        if augment is not None:
            now = 1.0 / (1.0 / now + augment_cost(augment, data, device=device))
        slowdown = max(1.0, float(plan.throughput) / max(now, 1e-9))
    epochs, fraction = final_plan(
        hp.epochs, hp.train_fraction, epoch_s=plan.epoch_s, seconds=deadline.remaining(),
        slowdown=slowdown, n_train=len(data.train), n_val=len(data.val),
    )  # fmt: skip
    return dataclasses.replace(hp, epochs=epochs, train_fraction=fraction)


def fit_and_score(
    config: FitConfig,
    splits,
    *,
    seed: int,
    img_size: int,
    device,
    run_dir: Path,
    deadline: Deadline | None = None,
    on_epoch: Callable | None = None,
    plan: FitPlan | None = None,
    name: str | None = None,
) -> SeedResult:
    """Build, augment, fit (best-val checkpoint; the last epoch when ``splits`` has an empty
    val split), predict the test split, score, save the predictions and the fit
    (``models/{name}``).

    Args:
        plan: fit the configuration's epochs and train fraction to the time this fit has
            (``bench run``'s final fits, :func:`planned_hp`; needs ``deadline``).
        name: the saved fit's name (default ``fit_name(0, seed)``); also the prediction
            file's run label.

    Raises:
        BenchError: the fit diverged (NaN/inf loss).
    """
    from bench.augment.registry import build_augment
    from bench.models.registry import model_for
    from bench.saved.fits import fit_name
    from bench.train import DivergedError, fit, set_seed

    name = name or fit_name(0, seed)
    data = splits.train_val()
    set_seed(seed)
    model = model_for(splits.spec, config.family, img_size=img_size, **config.model_params)
    augment = build_augment(config.aug_name, data=data, img_size=img_size, seed=seed,
                            device=device, deadline=deadline, hp=config.aug_hp)  # fmt: skip
    hp = config.hp
    if plan is not None:
        hp = planned_hp(plan, hp, model, augment, data, img_size=img_size, device=device,
                        deadline=deadline)  # fmt: skip
    start = time.monotonic()
    try:
        result = fit(model, data, hp, device=device, seed=seed, img_size=img_size,
                     augment=augment, deadline=deadline, on_epoch=on_epoch)  # fmt: skip
    except DivergedError as exc:
        raise BenchError(f"seed {seed} diverged ({exc}); lower the learning rate (lr)") from None
    return _score_and_save(config, splits, model, hp, result, augment=augment, seed=seed,
                           img_size=img_size, device=device, run_dir=run_dir, name=name,
                           start=start)  # fmt: skip


def _score_and_save(config: FitConfig, splits, model, hp: TrainHP, result, *, augment,
                    seed: int, img_size: int, device, run_dir: Path, name: str,
                    start: float) -> SeedResult:  # fmt: skip
    """Predict the test split with the fitted ``model``, score it, save the predictions and
    the fit: the :class:`SeedResult` (its seconds counted from the fit's ``start``)."""
    from bench.models.registry import param_count
    from bench.saved.fits import save_fit
    from bench.train import predict

    scores = predict(model, splits.test.images, spec=splits.spec, device=device,
                     img_size=img_size, mean=hp.mean, std=hp.std,
                     batch_size=hp.eval_batch)  # fmt: skip
    report, path = score_test(splits, scores, run_dir=run_dir, run_label=name)
    model_file = save_fit(run_dir, name, model, family=config.family,
                          model_params=config.model_params, spec=splits.spec,
                          data_size=splits.data_size, img_size=img_size, mean=hp.mean,
                          std=hp.std)  # fmt: skip
    return SeedResult(
        seed=seed, test=report, val_score=result.best_val, best_epoch=result.best_epoch,
        epochs=hp.epochs, stopped=result.stopped, seconds=time.monotonic() - start,
        n_params=param_count(model), history=result.history_dicts(),
        augment_info=dict(getattr(augment, "info", None) or {}), predictions=path,
        model_file=model_file, scores=scores, train_fraction=hp.train_fraction,
    )  # fmt: skip


def write_fits(run_dir: Path, results: list[SeedResult]) -> None:
    """``fits.json``: one entry per seed (atomic; rewritten as seeds finish)."""
    from bench.files import write_json

    write_json(Path(run_dir) / FITS_FILE, [r.fit_entry() for r in results])


def augment_train_seconds(results: list[SeedResult]) -> float:
    """Seconds the fits spent training augmentation models (DCGAN)."""
    return round(sum(float(r.augment_info.get("dcgan_train_s", 0.0)) for r in results), 3)


@dataclass
class EnsembleMember:
    """One configuration of the run's answer: its trial (None for ``bench train``), family,
    weight and final fits."""

    trial: int | None
    family: str
    weight: float
    fits: list[SeedResult]


def score_ensembles(splits, members: list[EnsembleMember], *, run_dir: Path) -> dict:
    """Score once on test the seed ensemble (member 0, the configuration chosen on val, its
    fits averaged) and the selected ensemble (each member with fits and weight: its fits
    averaged, then weighted; member 0 alone when none is left); save both prediction files
    and ``models/ensemble.json`` (after every fit it names). Returns the record's fields."""
    from bench.saved.fits import ensemble_scores, write_ensemble

    saved = [r.model_file for m in members for r in m.fits]
    seeds = ensemble_scores([[r.scores for r in members[0].fits]], [1.0])
    weighted = [m for m in members if m.fits and m.weight > 0] or [
        dataclasses.replace(members[0], weight=1.0)
    ]
    seeds_report, _ = score_test(splits, seeds, run_dir=run_dir, run_label="ensemble-seeds")
    chosen = ensemble_scores([[r.scores for r in m.fits] for m in weighted],
                             [m.weight for m in weighted])  # fmt: skip
    chosen_report, _ = score_test(splits, chosen, run_dir=run_dir, run_label="ensemble")
    total = sum(m.weight for m in weighted)
    listed = [
        {"trial": m.trial, "family": m.family, "weight": round(m.weight / total, 6),
         "seeds": [r.seed for r in m.fits], "fits": [Path(r.model_file).stem for r in m.fits]}
        for m in weighted
    ]  # fmt: skip
    write_ensemble(run_dir, listed)
    uncertainty = keep_test_predictions(
        splits, run_dir, fits={Path(r.model_file).stem: r.scores for m in members for r in m.fits},
        chosen=[Path(r.model_file).stem for r in members[0].fits], seed_ensemble=seeds,
        ensemble=chosen,
    )  # fmt: skip
    return {
        **uncertainty,
        "seed_ensemble_test_auc": float(seeds_report["auc"]),
        "seed_ensemble_test_acc": float(seeds_report["acc"]),
        "ensemble_test_auc": float(chosen_report["auc"]),
        "ensemble_test_acc": float(chosen_report["acc"]),
        "ensemble_members": [{k: v for k, v in m.items() if k != "fits"} for m in listed],
        "models": saved,
    }
