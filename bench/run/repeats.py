"""``bench run``'s study choice and repeats: the study a run without ``--study`` searches
(:func:`pick_study`: resume the lowest unfinished repeat, its budget clock shifted back by
what its earlier parts spent), the time it keeps in the study as it goes (:class:`SpentClock`),
the mark that finishes it (:func:`mark_finished`), and ``--repeats R``'s checks and lines.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import TYPE_CHECKING

from bench.errors import ConfigError
from bench.search import repeats as rep

if TYPE_CHECKING:
    from bench.run.settings import RunConfig, RunState
    from bench.search.budget import RunBudget


def check_repeats(repeats: int | None, *, study: str | None) -> int:
    """``--repeats`` (default 1): at least one, and no fixed ``--study`` for several.

    Raises:
        ConfigError: ``--repeats`` below 1, or above 1 with ``--study``.
    """
    repeats = 1 if repeats is None else repeats
    if repeats < 1:
        raise ConfigError(f"--repeats {repeats}: give at least 1")
    if repeats > 1 and study:
        raise ConfigError(f"--study {study} with --repeats {repeats}: each repeat searches its "
                          "own study; leave out --study (or --repeats)")  # fmt: skip
    return repeats


def pick_study(cfg: RunConfig, state: RunState, *, after: int = 0
               ) -> tuple[RunConfig, RunState, list[str]]:  # fmt: skip
    """The study ``cfg`` (as :func:`bench.run.command.prepare` made it) searches: with
    ``--study``, that one as given; else the lowest repeat above ``after`` that no run has
    finished, with its name, search seed and journal file. Resuming, ``bench run``'s budget
    clock starts back by the time the earlier parts spent. Returns the lines to show."""
    from bench.run.settings import RunState
    from bench.run.workers import follow_file

    if cfg.study_key is None:
        return cfg, state, []
    find = rep.study_finder(cfg.storage_url, journal_dir=cfg.out / "studies")
    choice = rep.choose_study(cfg.study_key, find, after=after)
    journal = cfg.journal_path
    if cfg.storage_url is None and journal is not None:
        journal = journal.with_name(f"{choice.name}.journal")
    cfg = dataclasses.replace(cfg, study_name=choice.name, repeat=choice.k, journal_path=journal,
                              seed=rep.search_seed(cfg.seed, choice.k))  # fmt: skip
    budget = state.budget
    if cfg.finalize and choice.spent_s:
        budget = _shifted(budget, choice.spent_s)
    state = RunState(budget, speeds=state.speeds,
                     publish=follow_file(cfg) if state.publish is not None else None,
                     search_before_s=choice.search_s if cfg.finalize else 0.0)  # fmt: skip
    return cfg, state, choice.lines()


def _shifted(budget: RunBudget, spent_s: float) -> RunBudget:
    """``budget`` with its start ``spent_s`` seconds earlier (a resumed run's earlier parts)."""
    from bench.search.budget import RunBudget

    return RunBudget(t0=budget.t0 - spent_s, budget_s=budget.budget_s, seeds=budget.seeds,
                     ensemble=budget.ensemble, follow=budget.follow)  # fmt: skip


class SpentClock:
    """Optuna callback of ``bench run``'s own process: after every finished trial (and, by
    :meth:`save`, at the search end), the study's run time so far (:data:`~bench.search.
    repeats.SPENT`, :data:`~bench.search.repeats.SEARCH`), which a resumed run starts from."""

    def __init__(self, budget: RunBudget, *, search_before_s: float) -> None:
        self.budget, self.search_before_s = budget, search_before_s

    def __call__(self, study, trial) -> None:
        self.save(study)

    def save(self, study) -> None:
        """Write the spent and search seconds to the study's user attrs."""
        now = time.monotonic()
        study.set_user_attr(rep.SPENT, round(now - self.budget.t0, 1))
        study.set_user_attr(rep.SEARCH, round(self.search_before_s + now -
                                              self.budget.search_start, 1))  # fmt: skip


def mark_finished(study, cfg: RunConfig, run_id: str) -> None:
    """The record of ``run_id`` is written: a later run of the command starts a new repeat
    (a study named by ``--study`` is left as it is)."""
    if cfg.study_key is not None:
        study.set_user_attr(rep.FINISHED, run_id)


def say(lines: list[str]) -> None:
    """Progress lines on stderr, where the run's log goes."""
    for line in lines:
        print(line, file=sys.stderr, flush=True)


def total_line(repeats: int, budget_s: float) -> str:
    """``3 repeats x 10m = 30m in all``."""
    from bench.results.records import budget_label

    return (f"{repeats} repeats x {budget_label(budget_s)} = "
            f"{budget_label(repeats * budget_s)} in all")  # fmt: skip


def summary_line(records: list, *, repeats: int, failed: int) -> str:
    """``repeats: test AUC m ± s over R runs, ACC m ± s`` (sample std over the runs' means)."""
    import numpy as np

    def mean_std(values: list[float]) -> str:
        arr = np.asarray(values, dtype=float)
        std = float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
        return f"{float(arr.mean()):.4f} ± {std:.4f}"

    if not records:
        return f"repeats: all {repeats} runs failed"
    line = (f"repeats: test AUC {mean_std([r.test_auc_mean for r in records])} over "
            f"{len(records)} runs, ACC {mean_std([r.test_acc_mean for r in records])}")  # fmt: skip
    return line + (f" ({failed} of {repeats} failed)" if failed else "")
