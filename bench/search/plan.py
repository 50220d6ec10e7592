"""A trial's plan: what it trains, on how much data, at which batch, for how many epochs, and
why it is smaller than the configuration asked for.

The objective gathers the inputs (the sampled configuration, the measured speed, the memory
caps, the time left) and :func:`make_plan` turns them into a :class:`TrialPlan`; the epochs
and train fraction come from :func:`bench.search.budget.plan_trial`, the one place of that
rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from bench.search import budget

if TYPE_CHECKING:
    from bench.train import TrainHP


@dataclass(frozen=True)
class Suggestion:
    """A trial's sampled configuration: family and builder kwargs, training hyperparameters,
    augmentation policy and its kwargs."""

    family: str
    model_params: dict
    hp: TrainHP
    augment: str = "none"
    augment_hp: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TrialPlan:
    """What a trial trains and how.

    Attributes:
        suggestion: the sampled configuration.
        epochs: planned epochs (the trial's Deadline may cut them).
        train_fraction: the stratified share of train each epoch trains on.
        batch_size: train batch (the sampled one, or the memory limit's cap).
        eval_batch: evaluation batch the memory limit allows (None: by the input size).
        sizes: train, val scored each epoch and val scored once, of one fit.
        throughput: measured train images/s, augmentation included.
        calib: how much slower real epochs run than the probe says.
        seconds: the time each fit was planned into.
        why: why the plan is below the sampled batch, ``max_epochs`` or all of train.
    """

    suggestion: Suggestion
    epochs: int
    train_fraction: float
    batch_size: int
    eval_batch: int | None
    sizes: tuple[int, int, int]
    throughput: float
    calib: float
    seconds: float
    why: tuple[str, ...] = ()

    @property
    def family(self) -> str:
        return self.suggestion.family

    @property
    def n_images(self) -> int:
        """Train images one epoch trains on (before a ``--cv`` fold's other fits)."""
        return int(round(self.train_fraction * self.sizes[0]))

    @property
    def speed(self) -> float:
        """Train images/s the plan assumes: the measured ones over the calibration."""
        return self.throughput / self.calib

    def train_hp(self) -> TrainHP:
        """The fit's hyperparameters: the sampled ones with the planned batch and epochs."""
        return replace(self.suggestion.hp, batch_size=self.batch_size, eval_batch=self.eval_batch,
                       epochs=self.epochs, train_fraction=self.train_fraction)  # fmt: skip

    def epoch_seconds(self, throughput: float) -> float:
        """Predicted seconds of one planned epoch (val included) at ``throughput``."""
        n_train, n_val, _ = self.sizes
        return budget.epoch_seconds(self.train_fraction, n_train=n_train, n_val=n_val,
                                    throughput=throughput)  # fmt: skip

    def describe(self) -> str:
        """One line: the plan and why, e.g. ``8 epochs on 35.0 % of train (700 images) ...``."""
        what = (f"{self.epochs} epoch{'s' if self.epochs > 1 else ''} on {self.n_images} "
                f"train images, batch {self.batch_size}")  # fmt: skip
        return f"{what} ({'; '.join(self.why)})" if self.why else what


def make_plan(
    suggestion: Suggestion,
    *,
    throughput: float,
    calib: float,
    sizes: tuple[int, int, int],
    max_epochs: int,
    seconds: float,
    smallest: bool,
    batch_size: int | None = None,
    eval_batch: int | None = None,
) -> TrialPlan:
    """The trial's plan: epochs and train fraction from :func:`~bench.search.budget.plan_trial`
    at ``throughput / calib`` in ``seconds`` (``smallest``: no trial of the study has completed
    yet), at ``batch_size`` (default: the sampled one)."""
    n_train, n_val, n_once = sizes
    batch_size = suggestion.hp.batch_size if batch_size is None else batch_size
    epochs, fraction = budget.plan_trial(
        throughput=throughput / calib, n_train=n_train, n_val=n_val, max_epochs=max_epochs,
        seconds=seconds, smallest=smallest, n_once=n_once,
    )  # fmt: skip
    plan = TrialPlan(suggestion, epochs, fraction, batch_size, eval_batch, tuple(sizes),
                     throughput, calib, seconds)  # fmt: skip
    return replace(plan, why=reasons(plan, max_epochs=max_epochs, smallest=smallest))


def reasons(plan: TrialPlan, *, max_epochs: int, smallest: bool) -> tuple[str, ...]:
    """Why ``plan`` trains less than the configuration asked for (empty: it does not)."""
    why = []
    sampled = plan.suggestion.hp.batch_size
    if plan.batch_size < sampled:
        why.append(f"batch {sampled} capped to {plan.batch_size} by the memory limit")
    if plan.epochs < max_epochs or plan.train_fraction < 1:
        why.append(f"{plan.speed:.1f} train images/s for {plan.seconds:.0f}s: {plan.epochs} of "
                   f"{max_epochs} epochs on {plan.train_fraction:.1%} of train")  # fmt: skip
    if smallest and plan.epochs < budget.MIN_EPOCHS:
        why.append("no trial has completed yet: the smallest trial")
    return tuple(why)
