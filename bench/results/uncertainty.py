"""The uncertainty fields of a record, from its saved test predictions: the 95 % interval of
test AUC and ACC of each fit, of the single-fit mean, of the seed ensemble and of the
selected ensemble, all on the same bootstrap resamples; balanced accuracy, ECE and Brier of
each (:mod:`bench.results.intervals`)."""

from __future__ import annotations

import numpy as np

from bench.results.intervals import (
    BOOT_SEED,
    METRICS,
    N_BOOT,
    Group,
    balanced_accuracy,
    brier,
    distributions,
    expected_calibration_error,
    interval,
)
from bench.results.predictions import TestPredictions

SINGLE = "test"  # the figures' field prefixes: the single-fit mean (over the chosen fits)
SEED_ENSEMBLE = "seed_ensemble_test"
ENSEMBLE = "ensemble_test"
FIGURES = (SINGLE, SEED_ENSEMBLE, ENSEMBLE)


def figure_groups(preds: TestPredictions) -> list[Group]:
    """The record's figures as bootstrap groups: the single-fit mean, then the ensembles the
    file holds."""
    groups = [Group(SINGLE, tuple(preds.fits[name] for name in preds.chosen))]
    for prefix, scores in ((SEED_ENSEMBLE, preds.seed_ensemble), (ENSEMBLE, preds.ensemble)):
        if scores is not None:
            groups.append(Group(prefix, (scores,)))
    return groups


def quality(labels, scores: tuple[np.ndarray, ...], task: str) -> dict[str, float]:
    """Balanced accuracy, ECE and Brier score, each the mean over ``scores``' sets."""
    return {
        "balanced_acc": float(np.mean([balanced_accuracy(labels, s, task) for s in scores])),
        "ece": float(np.mean([expected_calibration_error(labels, s, task) for s in scores])),
        "brier": float(np.mean([brier(labels, s, task) for s in scores])),
    }


def record_fields(preds: TestPredictions, *, n_boot: int = N_BOOT,
                  seed: int = BOOT_SEED) -> dict:  # fmt: skip
    """The record's uncertainty fields: ``{figure}_{metric}_lo/_hi``, ``{figure}_balanced_acc``,
    ``_ece``, ``_brier`` for each figure, ``fit_intervals`` (one entry per fit), ``n_test``,
    ``ci_n_boot`` and ``ci_seed``."""
    fits = [Group(name, (scores,)) for name, scores in preds.fits.items()]
    groups = figure_groups(preds)
    dist = distributions(preds.labels, groups + fits, preds.task, n_boot=n_boot, seed=seed)
    out: dict = {"n_test": preds.n, "ci_n_boot": n_boot, "ci_seed": seed}
    for group in groups:
        for metric in METRICS:
            lo, hi = interval(dist[(group.name, metric)])
            out[f"{group.name}_{metric}_lo"], out[f"{group.name}_{metric}_hi"] = lo, hi
        for key, value in quality(preds.labels, group.scores, preds.task).items():
            out[f"{group.name}_{key}"] = value
    out["fit_intervals"] = [
        {"fit": g.name, **{f"test_{m}_ci": list(interval(dist[(g.name, m)])) for m in METRICS},
         **quality(preds.labels, g.scores, preds.task)}
        for g in fits
    ]  # fmt: skip
    return out
