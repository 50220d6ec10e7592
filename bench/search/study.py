"""The study of a run: its name, sampler and pruner, what it records about itself, and its
trial counts."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from bench.errors import ConfigError
from bench.runtime import safe_name


def space_hash(space, *, metric: str, img_size: int, cv: int = 0) -> str:
    """sha256 of the resolved space tree plus what the objective measures: part of the study
    name, so a different space, metric or cross-validation is a different study."""
    tree = {"space": space.tree(), "metric": metric, "img_size": img_size}
    if cv:
        tree["cv"] = cv  # absent without --cv: the studies made before it keep their names
    return hashlib.sha256(json.dumps(tree, sort_keys=True, default=str).encode()).hexdigest()


def study_name(dataset: str, data_size: int, space_hash: str) -> str:
    """``bench.{dataset}.{data_size}.{space_hash8}`` (an ``npz:``/``folder:`` path shortened
    to its file stem)."""
    if ":" in dataset:
        dataset = f"{dataset.split(':', 1)[0]}-{Path(dataset.split(':', 1)[1]).stem}"
    return f"bench.{safe_name(dataset)}.{data_size}.{space_hash[:8]}"


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


def describe_study(study, *, dataset: str, data_size: int, img_size: int, metric: str,
                   space) -> None:  # fmt: skip
    """Study user attrs (set once) so a dashboard or a later run knows what it holds."""
    if "dataset" in study.user_attrs:
        return
    study.set_user_attr("dataset", dataset)
    study.set_user_attr("data_size", data_size)
    study.set_user_attr("img_size", img_size)
    study.set_user_attr("metric", metric)
    study.set_user_attr("space", json.dumps(space.tree(), sort_keys=True, default=str))
    study.set_metric_names([f"val_{metric}"])


def trial_counts(study) -> dict:
    """``n_trials``, ``n_complete``, ``n_pruned``, ``n_failed``, ``n_unfinished`` of
    ``study``, from one read of its trials."""
    from optuna.trial import TrialState

    states = [t.state for t in study.get_trials(deepcopy=False)]
    return {
        "n_trials": len(states),
        "n_complete": states.count(TrialState.COMPLETE),
        "n_pruned": states.count(TrialState.PRUNED),
        "n_failed": states.count(TrialState.FAIL),
        "n_unfinished": sum(not s.is_finished() for s in states),
    }
