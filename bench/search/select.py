"""What the search chose, on val only: the chosen trial (the best completed one, or why none
completed), the one-standard-error choice of the configuration the final fits use (with
``--cv``), and the ensemble selected on val around it.

Selection reads trials and validation predictions; the test split is scored once, later, by
:mod:`bench.run.fit`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bench.errors import BenchError
from bench.search import attrs

if TYPE_CHECKING:
    from bench.search.budget import RunBudget
    from bench.search.ensemble import Member


def best_complete(study):
    """The completed trial of the highest value (None: none completed)."""
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return max(done, key=lambda t: t.value) if done else None


def chosen_trial(study, data, *, budget: RunBudget, seeds: int):
    """The best completed trial (chosen on val only).

    Args:
        data: the TrainVal the trials fitted (its sizes give the smallest trial's time).
        budget: the run's clock (its data-loading time goes into the hint).
        seeds: the run's final fits.

    Raises:
        BenchError: no trial completed; names why, and the smallest budget that would do.
    """
    best = best_complete(study)
    if best is not None:
        return best
    from bench.search.budget import (
        CALIBRATION_PRIOR,
        SMALLEST_EPOCHS,
        epoch_seconds,
        min_fraction,
        smallest_budget,
    )

    reasons = attrs.fail_reasons(study.trials)
    why = f" (trials failed: {reasons[0]})" if reasons else ""
    speeds = [
        t.user_attrs[attrs.THROUGHPUT] for t in study.trials if attrs.THROUGHPUT in t.user_attrs
    ]
    hint = "give a larger --budget or other --families"
    if speeds:
        n_train, n_val = len(data.train), len(data.val)
        trial_s = SMALLEST_EPOCHS * epoch_seconds(
            min_fraction(n_train, smallest=True), n_train=n_train, n_val=n_val,
            throughput=max(speeds) / CALIBRATION_PRIOR,
        )  # fmt: skip
        need = smallest_budget(load_s=budget.search_start - budget.t0, trial_s=trial_s,
                               seeds=seeds)  # fmt: skip
        hint = (
            f"one trial and the final fits need a budget of about {need // 60}m here: "
            f"give --budget {need // 60}m or more"
        )
    raise BenchError(f"no trial completed within the budget{why}; {hint}")


def fit_estimate(trial, sizes: tuple[int, int, int]) -> float:
    """Seconds one final fit of ``trial``'s configuration should take (with slack,
    :func:`bench.search.budget.final_fit_estimate`), on a fit of ``sizes`` (train, val,
    test)."""
    from bench.search.budget import final_fit_estimate

    return final_fit_estimate(attrs.final_fit_seconds(trial, sizes))


def refit_choice(study, best, sizes: tuple[int, int, int], *, cv: int, seeds: int,
                 time_left: float):  # fmt: skip
    """The configuration the final fits use: ``best``; with ``--cv``, among the completed
    trials whose mean held-out score is within one standard error of ``best``'s (the
    one-standard-error rule, over ``best``'s fold scores), the one whose final fits can
    train the largest share of their planned epochs in a seed's share of ``time_left``, then
    the best value. A saturated val metric ties configurations that cost several times more
    to refit (Medical MNIST: fold AUC 0.99996 against 0.99996); the refit that trains its
    epochs is worth more than the last digit."""
    import numpy as np
    from optuna.trial import TrialState

    folds = best.user_attrs.get(attrs.FOLD_SCORES)
    if not cv or not folds or len(folds) < 2:
        return best
    se = float(np.std(folds, ddof=1)) / np.sqrt(len(folds))
    tied = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.value is not None and t.value >= best.value - se]  # fmt: skip
    share = time_left / max(1, seeds)

    def trainable(trial) -> float:
        return min(1.0, share / max(fit_estimate(trial, sizes), 1e-9))

    return max(tied, key=lambda t: (trainable(t), t.value, -t.number))


def select_members(study, data, best, *, ensemble: int, cv: int, metric: str,
                   scores_dir: Path) -> list[Member]:  # fmt: skip
    """The ensemble selected on val over the study's best completed trials (their saved
    val predictions in ``scores_dir``): ``[Member]``, the chosen trial ``best`` first. Just
    ``best`` with ``ensemble`` 1 or when ``best`` left no val predictions here."""
    from optuna.trial import TrialState

    from bench.data.folds import pool_labels
    from bench.search.ensemble import CANDIDATES, Member, load_val_scores, select_ensemble

    if ensemble <= 1:
        return [Member(best.number, 1.0)]
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    ranked = sorted(done, key=lambda t: (-t.value, t.number != best.number, t.number))
    distinct, seen = [], set()
    for t in ranked:  # one trial per configuration (an enqueued default can recur)
        key = tuple(sorted((k, str(v)) for k, v in t.params.items()))
        if key not in seen:
            seen.add(key)
            distinct.append(t.number)
    labels = pool_labels(data) if cv else data.val.labels  # --cv: out-of-fold predictions
    scores = load_val_scores(scores_dir, distinct[:CANDIDATES], len(labels))
    if best.number not in scores:
        return [Member(best.number, 1.0)]
    members = select_ensemble(scores, labels, task=data.spec.task, metric=metric,
                              max_members=ensemble)  # fmt: skip
    first = [m for m in members if m.trial == best.number] or [Member(best.number, 0.0)]
    return first + [m for m in members if m.trial != best.number]
