"""The time policy of a run: every rule that turns a budget into deadlines, and its constants.

All times are on the monotonic clock, from process start ``t0``; ``end = t0 + budget``:

- ``margin`` is kept for writing artefacts;
- ``reserve`` is kept for the final fits: seeds x (the best trial's fit time on the whole
  train split, with slack), doubled when an ensemble is selected (its other members are
  refitted too);
- the search ends at ``end - margin - reserve`` (re-evaluated after every trial); every trial
  gets a Deadline at ``min(search end, trial start + trial cap)``;
- final fits train on the whole train split when the search's shortest trial (``MIN_EPOCHS``,
  or the trial's epochs if fewer) fits (else on the trial's subsample, :func:`final_plan`);
  final fit ``i`` of the chosen configuration gets an equal share of the time left before
  ``end - margin``, less what the other ensemble members need (at most half); each of those
  is fitted only while its estimated fit time is left.

A trial is planned to fit its deadline (:func:`plan_trial`): fewer epochs, then a stratified
train subsample; while no trial of the study has completed, down to the smallest trial. Once
one has completed, a trial whose final fits could not train on all of their data in a seed's
share of the largest final phase (:func:`full_refit_seconds`, :meth:`RunBudget.final_fit_most`)
is pruned as too slow for its final fits.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

# -- run level ------------------------------------------------------------------------------
MARGIN_FRACTION = 0.02  # of the budget, for writing the record, trials table and journal copy
MARGIN_MIN_S = 3.0  # writing a run folder takes a second or two even for a tiny run
MARGIN_MAX_S = 60.0  # and never a minute more, however long the budget
RESERVE_SLACK = 1.2  # a final fit runs ~20 % slower than its trial did (probe noise, load)
RESERVE_PER_FIT_S = 1.0  # per seed: building the model and predicting the test split
RESERVE_MIN_FRACTION = 0.1  # the final fits always get a tenth of the budget
RESERVE_MAX_FRACTION = 0.5  # and at most half of what is left once the data are loaded
RESERVE_BLIND_FRACTION = 0.25  # before any trial completes, a quarter of the budget is kept
STOP_SLACK_S = 2.0  # no new trial starts this close to the search end
TRIAL_CAP_FRACTION = 1 / 6  # one trial may use at most a sixth of the search time...
TRIAL_CAP_MIN_S = 10.0  # ...but at least 10 s, enough for a few epochs of a small model
FINAL_EPOCH_SLACK = 1.15  # final-fit epochs are planned at 115 % of the trial's epoch time
ENSEMBLE_RESERVE = 1.0  # with --ensemble > 1, the reserve doubles: the other members' refits
ENSEMBLE_SHARE_MAX = 0.5  # the other members never take more than half of the final phase

# -- trial level ----------------------------------------------------------------------------
MIN_EPOCHS = 3  # a trial shorter than this says little once other trials have completed
MIN_TRAIN = 256  # a subsampled train split keeps at least this many images
MIN_FRACTION = 0.1  # and at least a tenth of the split, once other trials have completed
SMALLEST_EPOCHS = 1  # the smallest trial (when none has completed yet): one epoch...
VAL_COST = 1 / 3  # a val image costs about a third of a train image (forward only)
CALIBRATION_PRIOR = 2.0  # real epochs run ~2x slower than the probe until one is measured
CALIBRATION_MIN = 0.25  # a probe that read low is corrected down to a quarter, not below
EPOCHS_MIN, EPOCHS_MAX = 5, 100  # epoch cap bounds; 100 is the MedMNIST v2 protocol's


def margin(budget_s: float) -> float:
    """Seconds kept at the end of the budget for writing artefacts."""
    return min(MARGIN_MAX_S, max(MARGIN_MIN_S, MARGIN_FRACTION * budget_s))


def budget_epochs(budget_s: float) -> int:
    """Max epochs per trial from the budget: ``10 * sqrt(minutes)`` in [5, 100]
    (3m -> 17, 10m -> 32, 1h -> 77, 4h+ -> 100, the MedMNIST v2 protocol)."""
    return int(min(EPOCHS_MAX, max(EPOCHS_MIN, round(10 * math.sqrt(budget_s / 60)))))


def trial_cap(search_s: float) -> float:
    """Longest one trial may run, from the search time."""
    return max(TRIAL_CAP_MIN_S, search_s * TRIAL_CAP_FRACTION)


def final_fit_estimate(fit_s: float | None) -> float:
    """Seconds to keep for one final fit whose trial predicts ``fit_s`` seconds
    (:func:`bench.search.attrs.final_fit_seconds`; None: unknown, 0): with ``RESERVE_SLACK``,
    plus ``RESERVE_PER_FIT_S`` for building the model and predicting the test split. The
    reserve, the smallest budget and the final phase's per-fit estimate all use it."""
    return (fit_s or 0.0) * RESERVE_SLACK + RESERVE_PER_FIT_S


class RunBudget:
    """The deadlines of one ``bench run``/``bench search`` process.

    Args:
        t0: monotonic time the process started.
        budget_s: the budget in seconds.
        seeds: final fits to reserve time for (0 for a search worker).
        ensemble: distinct configurations the final ensemble may hold (1: the chosen one).
        follow: a file holding another process's search end (wall-clock seconds): a worker
            of ``bench run --jobs`` ends its search when the run does (:meth:`publish`).
    """

    def __init__(self, *, t0: float, budget_s: float, seeds: int, ensemble: int = 1,
                 follow: Path | None = None) -> None:  # fmt: skip
        self.t0, self.budget_s, self.seeds = t0, float(budget_s), seeds
        self.ensemble, self.follow = ensemble, follow
        self.end = t0 + self.budget_s
        self.margin = margin(self.budget_s)
        self.best_fit_s: float | None = None  # one final fit of the best trial so far
        self.search_start = time.monotonic()

    def start_search(self, *, best_fit_s: float | None) -> None:
        """Mark the search start (data loaded); ``best_fit_s`` of a resumed study's best."""
        self.search_start = time.monotonic()
        self.best_fit_s = best_fit_s

    def observe_best(self, fit_s: float | None) -> None:
        """A new best trial, whose final fit should take ``fit_s`` seconds."""
        self.best_fit_s = fit_s

    def reserve(self) -> float:
        """Seconds kept for the final fits."""
        if not self.seeds:
            return 0.0
        if self.best_fit_s is None:
            est = RESERVE_BLIND_FRACTION * self.budget_s
        else:
            est = self.seeds * final_fit_estimate(self.best_fit_s)
            est *= 1 + (ENSEMBLE_RESERVE if self.ensemble > 1 else 0.0)
        left_after_load = self.end - self.margin - self.search_start
        return min(
            max(est, RESERVE_MIN_FRACTION * self.budget_s), RESERVE_MAX_FRACTION * left_after_load
        )

    def search_end(self) -> float:
        """Monotonic time the search must end by."""
        own = self.end - self.margin - self.reserve()
        if self.follow is None:
            return own
        try:
            theirs = float(Path(self.follow).read_text()) - time.time() + time.monotonic()
        except (OSError, ValueError):  # not written yet, or mid-replace: our own end holds
            return own
        return min(own, theirs)

    def publish(self, path: Path) -> None:
        """Write this search's end (wall-clock seconds) to ``path`` for workers that follow."""
        from bench.files import atomic_write_text

        atomic_write_text(Path(path), f"{time.time() + self.search_end() - time.monotonic():.3f}\n")

    def search_open(self) -> bool:
        """True while a new trial may start."""
        return self.search_end() - time.monotonic() > STOP_SLACK_S

    def trial_cap(self) -> float:
        return trial_cap(self.search_end() - self.search_start)

    def final_fit_most(self) -> float | None:
        """Most seconds one final fit of the chosen configuration gets: its seed's share of
        the largest final phase (None: this process makes no final fits)."""
        if not self.seeds:
            return None
        left_after_load = self.end - self.margin - self.search_start
        return RESERVE_MAX_FRACTION * left_after_load / self.seeds

    def time_left(self) -> float:
        """Seconds left before ``end - margin``."""
        return self.end - self.margin - time.monotonic()

    def final_share(self, fits_left: int, keep: float = 0.0) -> float:
        """Seconds for the next final fit: an equal share of the time left, ``keep``
        seconds set aside (for the other ensemble members)."""
        return max(1.0, self.end - self.margin - keep - time.monotonic()) / max(1, fits_left)


def smallest_budget(*, load_s: float, trial_s: float, seeds: int) -> int:
    """The smallest budget (s) in which loading, one smallest trial and the final fits fit."""
    final = seeds * final_fit_estimate(trial_s)
    need = max((load_s + trial_s + MARGIN_MIN_S + STOP_SLACK_S) / (1 - RESERVE_BLIND_FRACTION),
               load_s + trial_s + final + MARGIN_MIN_S)  # fmt: skip
    return int(math.ceil(need / 60.0) * 60)


def least_budget(*, final: bool) -> int:
    """The smallest budget (s) in which a search can start at all, however fast the start:
    what is kept back (``MARGIN_MIN_S``, and with final fits a quarter of the budget before
    any trial completed) must leave more than ``STOP_SLACK_S``."""
    kept = 1.0 - (RESERVE_BLIND_FRACTION if final else 0.0)
    return math.floor((MARGIN_MIN_S + STOP_SLACK_S) / kept) + 1


def check_budget(budget_s: int, text: str, *, final: bool) -> int:
    """``budget_s`` when a search can start in it (:func:`least_budget`); else a one-line
    ConfigError, before anything is created.

    Args:
        budget_s: the budget in seconds (``--budget`` parsed).
        text: ``--budget`` as given.
        final: the run makes final fits (``bench run``; ``bench search``: False).
    """
    from bench.errors import ConfigError

    least = least_budget(final=final)
    if budget_s < least:
        kept = " and a quarter of the budget for the final fits" if final else ""
        raise ConfigError(f"--budget {text} leaves no time to search (a run keeps "
                          f"{MARGIN_MIN_S:.0f}s for writing its files{kept}); give a budget "
                          f"of at least {least}s (30s or more for a tiny model)")  # fmt: skip
    return budget_s


def final_epochs(epochs: int, *, epoch_s: float | None, seconds: float, slowdown: float) -> int:
    """A final fit's epochs: the trial's, cut to what fits in ``seconds`` at the trial's
    epoch time times ``slowdown`` (so the schedule runs to its end instead of being cut)."""
    if not epoch_s:
        return epochs
    fit_epochs = int(seconds / (float(epoch_s) * slowdown * FINAL_EPOCH_SLACK))
    return max(1, min(epochs, fit_epochs))


def least_full_epochs(epochs: int) -> int:
    """The fewest epochs a final fit trains on all of its data rather than on the trial's
    subsample (:func:`final_plan`): the search's shortest trial (``MIN_EPOCHS``), or the
    trial's epochs if fewer. Not a share of the trial's epochs: those are the trial's budget
    device (a fast model plans many epochs on a subsample), not what its final fit needs."""
    return max(1, min(epochs, MIN_EPOCHS))


def full_refit_seconds(epochs: int, *, throughput: float, n_train: int, n_val: int) -> float:
    """Seconds a final fit needs for :func:`least_full_epochs` of ``epochs`` on all of its
    ``n_train`` images (``n_val`` scored each epoch), planned as :func:`final_epochs` does."""
    return least_full_epochs(epochs) * FINAL_EPOCH_SLACK * epoch_seconds(
        1.0, n_train=n_train, n_val=n_val, throughput=throughput
    )


def final_plan(epochs: int, fraction: float, *, epoch_s: float | None, seconds: float,
               slowdown: float, n_train: int, n_val: int) -> tuple[int, float]:  # fmt: skip
    """A final fit's epochs and train fraction. A trial's subsample is a budget device of the
    search, not part of the configuration: the final fit trains on the whole train split
    when :func:`least_full_epochs` fit in ``seconds`` at the epoch time scaled to it;
    else on the trial's fraction, its epochs cut by :func:`final_epochs`."""
    if epoch_s and fraction < 1:
        scale = full_data_scale(fraction, n_train=n_train, n_val=n_val)
        full = final_epochs(epochs, epoch_s=float(epoch_s) * scale, seconds=seconds,
                            slowdown=slowdown)  # fmt: skip
        if full >= least_full_epochs(epochs):
            return full, 1.0
    return final_epochs(epochs, epoch_s=epoch_s, seconds=seconds, slowdown=slowdown), fraction


def member_time(extra_s: float, need_s: float, left: float) -> float:
    """Seconds the chosen configuration's final fits keep for the other ensemble members:
    their estimate ``extra_s``, out of what the chosen fits' own estimate ``need_s`` leaves
    of ``left`` (members never cut the chosen fits' epochs), at most ENSEMBLE_SHARE_MAX."""
    return max(0.0, min(extra_s, ENSEMBLE_SHARE_MAX * left, left - need_s))


def full_data_scale(fraction: float, *, n_train: int, n_val: int) -> float:
    """How much longer an epoch on the whole train split takes than one on ``fraction``."""
    return epoch_seconds(1.0, n_train=n_train, n_val=n_val, throughput=1.0) / max(
        epoch_seconds(fraction, n_train=n_train, n_val=n_val, throughput=1.0), 1e-9
    )


def min_fraction(n_train: int, *, smallest: bool) -> float:
    """The smallest train fraction a trial may use."""
    floor = MIN_TRAIN / max(n_train, 1)
    return min(1.0, floor if smallest else max(MIN_FRACTION, floor))


def epoch_seconds(fraction: float, *, n_train: int, n_val: int, throughput: float) -> float:
    """Predicted seconds of one epoch on ``fraction`` of train, val included."""
    return (fraction * n_train + VAL_COST * n_val) / max(throughput, 1e-9)


def plan_trial(
    *,
    throughput: float,
    n_train: int,
    n_val: int,
    max_epochs: int,
    seconds: float,
    smallest: bool = False,
    n_once: int = 0,
) -> tuple[int, float]:
    """Epochs and train fraction so that a trial fits in ``seconds``, less the time of
    scoring ``n_once`` val images once (a ``--cv`` fold's whole held-out fold).

    In order: full data and ``max_epochs`` if that fits; else fewer epochs, down to half of
    ``max_epochs``; else a smaller stratified train subsample, down to :func:`min_fraction`;
    else fewer epochs, down to ``MIN_EPOCHS`` (``SMALLEST_EPOCHS`` with ``smallest``, used
    while no trial of the study has completed), the time left over going to a larger
    subsample. What still does not fit is cut by the trial's Deadline.
    """

    def cost(fraction: float) -> float:
        return epoch_seconds(fraction, n_train=n_train, n_val=n_val, throughput=throughput)

    seconds = max(seconds - VAL_COST * n_once / max(throughput, 1e-9), 1e-9)
    if max_epochs * cost(1.0) <= seconds:
        return max_epochs, 1.0
    half = max(MIN_EPOCHS, max_epochs // 2)
    epochs = int(seconds // cost(1.0))
    if epochs >= half:
        return min(epochs, max_epochs), 1.0
    epochs = min(half, max_epochs)
    f_min = min_fraction(n_train, smallest=smallest)
    fraction = (seconds / epochs * throughput - VAL_COST * n_val) / max(n_train, 1)
    if fraction >= f_min:
        return epochs, round(min(1.0, fraction), 3)
    # as many epochs as fit on the smallest subsample, at least MIN_EPOCHS; when not even
    # that fits and nothing has completed yet, one epoch (val passes dominate then: one pass
    # leaves the most time for training images). Time left over goes to a larger subsample.
    fit = int(seconds // cost(f_min))
    epochs = SMALLEST_EPOCHS if smallest and fit < MIN_EPOCHS else max(MIN_EPOCHS, fit)
    fraction = (seconds / epochs * throughput - VAL_COST * n_val) / max(n_train, 1)
    return min(epochs, max_epochs), round(min(1.0, max(f_min, fraction)), 3)


def needed_throughput(*, n_train: int, n_val: int, seconds: float, smallest: bool = False,
                      n_once: int = 0) -> float:  # fmt: skip
    """Images/s needed for the shortest allowed trial in ``seconds`` (``n_val`` val images
    scored each epoch, ``n_once`` once); a slower configuration is infeasible."""
    epochs = SMALLEST_EPOCHS if smallest else MIN_EPOCHS
    f_min = min_fraction(n_train, smallest=smallest)
    images = epochs * (f_min * n_train + VAL_COST * n_val) + VAL_COST * n_once
    return images / max(seconds, 1e-9)
