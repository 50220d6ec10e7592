"""``bench run`` and ``bench search``: check every input, load the data once, search within
the budget, then (``run`` only) retrain the best configuration over seeds (with ``--cv``,
on the whole train + val pool), score each fit once on test and write the run folder,
``record.json`` last.

The time rules are in :mod:`bench.search.budget`. Only :func:`finalize` holds a
:class:`~bench.data.splits.Splits`; the search gets a TrainVal.
"""

from __future__ import annotations

import argparse
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import BenchError, ConfigError
from bench.search import attrs

DEFAULT_SEEDS = 3  # final fits of `bench run` without --cv


@dataclass
class Settings:
    """Everything ``bench run``/``bench search`` decided before any work."""

    budget: Any  # bench.search.budget.RunBudget
    constraint: str
    spec: Any
    data_size: int
    img_size: int
    space: Any
    study_name: str
    storage_url: str | None
    storage_kind: str
    journal_path: Path | None
    out: Path
    device: Any
    metric: str
    sampler: str
    pruner: str
    seed: int
    seeds: int
    finalize: bool
    quiet: bool
    n_trials: int | None
    data_dir: str | None
    max_epochs: int
    families: list[str] = field(default_factory=list)
    augment: list[str] = field(default_factory=list)
    speeds: dict = field(default_factory=dict)  # speed_key -> train images/s measured here
    ensemble: int = 1  # distinct configurations the final ensemble may hold
    cv: int = 0  # folds of the trials' cross-validation (0: the official val split)
    memory_limit: int | None = None  # bytes this process may hold (CPU trials cap their batch)
    jobs: int = 1  # local search processes (the run itself and jobs - 1 workers)
    publish: Path | None = None  # the run writes its search end here for its workers

    def config(self) -> dict:
        """The resolved run configuration (recorded, and hashed with the params)."""
        return {
            "dataset": self.spec.name,
            "data_size": self.data_size,
            "img_size": self.img_size,
            "families": list(self.space.families),
            "augment": self.augment,
            "metric": self.metric,
            "sampler": self.sampler,
            "pruner": self.pruner,
            "seed": self.seed,
            "seeds": self.seeds,
            "ensemble": self.ensemble,
            "cv": self.cv,
            "jobs": self.jobs,
            "max_memory": self.memory_limit,
            "budget_s": int(self.budget.budget_s),
            "study_name": self.study_name,
            "storage_kind": self.storage_kind,
        }


def final_fits(seeds: int | None) -> int:
    """The number of final fits: ``--seeds`` (default 3; with ``--cv``, refits on the whole
    train + val pool).

    Raises:
        ConfigError: ``--seeds`` below 1.
    """
    seeds = DEFAULT_SEEDS if seeds is None else seeds
    if seeds < 1:
        raise ConfigError(f"--seeds {seeds}: give at least 1")
    return seeds


def cmd_run(args: argparse.Namespace) -> int:
    """``bench run``: search, then the multi-seed final evaluation and a record."""
    return _main(args, finalize=True)


def cmd_search(args: argparse.Namespace) -> int:
    """``bench search``: a worker that joins the study and only searches."""
    return _main(args, finalize=False)


def prepare(args: argparse.Namespace, *, finalize: bool, t0: float) -> Settings:
    """Validate every flag (each problem one line, exit 2); creates nothing."""
    from bench.config import parse_budget, parse_list
    from bench.data.catalog import check_size, get_dataset
    from bench.data.folds import check_cv
    from bench.data.load import default_size
    from bench.device import resolve_device
    from bench.results.records import budget_label
    from bench.runtime import check_writable
    from bench.search.budget import RunBudget, budget_epochs
    from bench.search.spaces import resolve_space
    from bench.search.storage import storage_kind
    from bench.search.study import space_hash, study_name

    budget_s = parse_budget(args.budget)
    n_trials = getattr(args, "n_trials", None)
    if n_trials is not None and n_trials < 1:
        raise ConfigError(f"--n-trials {n_trials}: give at least 1")
    cv = getattr(args, "cv", None)
    if cv is not None:
        check_cv(cv)
    seeds = final_fits(getattr(args, "seeds", None)) if finalize else 0
    from bench.run.workers import check_jobs, follow_file
    from bench.search.memory import default_limit, parse_memory

    jobs = check_jobs(int(getattr(args, "jobs", 1) or 0) if finalize else 1)
    max_memory = getattr(args, "max_memory", None)
    memory_limit = parse_memory(max_memory) if max_memory is not None else None
    ensemble = int(getattr(args, "ensemble", 1) or 1)
    if ensemble < 1:
        raise ConfigError(f"--ensemble {ensemble}: give at least 1 (1: no ensemble selection)")
    spec = get_dataset(args.dataset)
    data_size = args.size or default_size(spec)
    check_size(spec, data_size)
    img_size = args.img_size or data_size
    families, augment = parse_list(args.families), parse_list(args.augment)
    space = resolve_space(families or None, augment=augment or None, img_size=img_size,
                          ndim=spec.ndim, dataset=spec.name)  # fmt: skip
    name = args.study or study_name(
        spec.name, data_size, space_hash(space, metric=args.metric, img_size=img_size, cv=cv or 0)
    )
    out = Path(args.out).expanduser()
    check_writable(out)
    kind = storage_kind(args.storage)
    journal = None
    if kind == "journal":
        journal = (
            Path(args.storage).expanduser() if args.storage else out / "studies" / f"{name}.journal"
        )
        check_writable(journal.parent)
    follow = getattr(args, "follow", None)
    s = Settings(
        budget=RunBudget(t0=t0, budget_s=budget_s, seeds=seeds,
                         ensemble=ensemble, follow=Path(follow) if follow else None),
        constraint=budget_label(budget_s), spec=spec, data_size=data_size, img_size=img_size,
        space=space, study_name=name, storage_url=args.storage, storage_kind=kind,
        journal_path=journal, out=out, device=resolve_device(args.device), metric=args.metric,
        sampler=args.sampler, pruner=args.pruner, seed=args.seed, seeds=seeds,
        finalize=finalize, quiet=args.quiet, n_trials=n_trials, data_dir=args.data_dir,
        max_epochs=budget_epochs(budget_s), families=families, augment=augment,
        ensemble=ensemble, cv=cv or 0, jobs=jobs,
        memory_limit=(memory_limit or default_limit()) // jobs,  # the run's share of it
    )  # fmt: skip
    if jobs > 1:
        s.publish = follow_file(s)
    return s


def _main(args: argparse.Namespace, *, finalize: bool) -> int:
    from bench.files import write_guard
    from bench.runtime import process_start

    s = prepare(args, finalize=finalize, t0=process_start())
    with write_guard(s.out, journal=s.journal_path, resumes=True):
        return _search_and_finalize(args, s, finalize=finalize)


def _search_and_finalize(args: argparse.Namespace, s: Settings, *, finalize: bool) -> int:
    from bench.data.load import load_splits
    from bench.run.display import Display
    from bench.runtime import cpu_threads
    from bench.search.speed import warm_up

    splits = load_splits(s.spec, s.data_size, s.data_dir)  # a bad file: one line, nothing made
    if s.cv:
        from bench.data.folds import check_cv, pool_labels

        check_cv(s.cv, pool_labels(splits.train_val()), multilabel=s.spec.multilabel)
    from bench.run.workers import share_threads

    # before any speed probe (the trials reuse its figures); with --jobs, each process's share
    threads = cpu_threads(s.device, exact=share_threads(s.jobs) if s.jobs > 1 else None)
    warm_up()
    study = open_study(s)
    data = splits.train_val()
    if not finalize:
        splits = None  # a search worker never holds the test split
    title = (
        f"{'run' if finalize else 'search'} {s.study_name} ({s.spec.name}, budget {args.budget})"
    )
    if threads is not None:
        title += f", {threads} cpu thread{'s' if threads > 1 else ''}"
    with Display(title, end=s.budget.end, quiet=s.quiet, metric=s.metric) as display:
        display.set_counts(study)
        search_s = search_with_workers(args, study, data, s, display)
        if not finalize:
            display.set_counts(study)
            display.log(f"search finished: {display.status()}")
            return 0
        from bench.run.final import finalize_run

        record, run_dir = finalize_run(splits, study, s, display, search_s=search_s)
    print_summary(record, s.spec, run_dir)
    return 0


def open_study(s: Settings):
    """Open (or resume) the study; its first trial is a sensible default configuration."""
    import optuna

    from bench.search.journal import repair_and_say
    from bench.search.storage import fail_dead_local_trials, open_storage
    from bench.search.study import describe_study, make_pruner, make_sampler, worker_seed

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    repaired = s.storage_kind == "journal" and repair_and_say(s.journal_path)
    study = optuna.create_study(
        storage=open_storage(s.storage_url, default_journal=s.journal_path, repair=False),
        sampler=make_sampler(s.sampler, worker_seed(s.seed, worker=not s.finalize)),
        pruner=make_pruner(s.pruner, s.max_epochs),
        study_name=s.study_name,
        direction="maximize",
        load_if_exists=True,
    )
    describe_study(study, dataset=s.spec.name, data_size=s.data_size, img_size=s.img_size,
                   metric=s.metric, space=s.space)  # fmt: skip
    if s.storage_kind == "journal":
        fail_dead_local_trials(study, untagged=repaired)
    if not study.get_trials(deepcopy=False):
        for params in first_trials(s):
            study.enqueue_trial(params, skip_if_exists=True)
    return study


class _StopAtSearchEnd:
    """Optuna callback: tell the budget about a new best trial (and the workers about the
    search end it moves); stop when time is up."""

    def __init__(self, s: Settings, sizes: tuple[int, int, int], best: float | None) -> None:
        self.budget, self.publish, self.sizes, self.best = s.budget, s.publish, sizes, best

    def __call__(self, study, trial) -> None:
        from optuna.trial import TrialState

        if trial.state == TrialState.COMPLETE and trial.value is not None:
            if self.best is None or trial.value > self.best:
                self.best = trial.value
                self.budget.observe_best(attrs.final_fit_seconds(trial, self.sizes))
                if self.publish is not None:
                    self.budget.publish(self.publish)
        if not self.budget.search_open():
            study.stop()


def search_with_workers(args, study, data, s: Settings, display) -> float:
    """:func:`search`, with ``s.jobs - 1`` worker processes on the same study
    (:mod:`bench.run.workers`) that have all stopped when it returns."""
    if s.jobs == 1:
        return search(study, data, s, display)
    from bench.run.workers import WorkerWatch, start_workers, stop_workers
    from bench.search.storage import fail_dead_local_trials, worker_tag

    display.log(f"starting {s.jobs - 1} worker process(es); logs in {s.publish.parent}")
    procs = start_workers(args, s)
    try:
        with WorkerWatch(study, display, worker_tag()):
            search_s = search(study, data, s, display)
            display.set_phase("search: waiting for the workers' last trials")
            codes = stop_workers(procs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
    fail_dead_local_trials(study)  # a worker stopped mid-trial: FAIL now, retried next run
    if any(codes):
        display.log(f"warning: worker exit codes {codes}; see {s.publish.parent}")
    return search_s


def search(study, data, s: Settings, display) -> float:
    """Run trials until the search end (or ``n_trials``); returns the seconds spent."""
    from bench.data.folds import final_fit_sizes
    from bench.search.ensemble import val_dir
    from bench.search.objective import Objective, TrialFailed
    from bench.search.study import worker_seed

    best = _best_complete(study)
    sizes = (*final_fit_sizes(data, s.cv), int(s.spec.n_samples.get("test", 0) or 0))
    s.budget.start_search(best_fit_s=attrs.final_fit_seconds(best, sizes) if best else None)
    stopper = _StopAtSearchEnd(s, sizes, best.value if best else None)
    if s.publish is not None:
        s.budget.publish(s.publish)
    objective = Objective(
        data, s.space, device=s.device, metric=s.metric, img_size=s.img_size, seed=s.seed,
        max_epochs=s.max_epochs, search_end=s.budget.search_end, cap_s=s.budget.trial_cap(),
        on_event=display.event, sampler_seed=worker_seed(s.seed, worker=not s.finalize),
        speeds=s.speeds, val_dir=val_dir(s.out, s.study_name), cv=s.cv,
        memory_limit=s.memory_limit, final_seconds=s.budget.final_fit_most,
        final_sizes=sizes[:2],
    )  # fmt: skip
    if s.budget.search_open():
        study.optimize(objective, n_trials=s.n_trials, catch=(TrialFailed,),
                       callbacks=[display.trial_done, stopper])  # fmt: skip
    return time.monotonic() - s.budget.search_start


def _best_complete(study):
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return max(done, key=lambda t: t.value) if done else None


def first_trials(s: Settings) -> list[dict]:
    """Parameters of the first two trials of an empty study: the family that trains fastest
    at its defaults (measured), with its builder's and TrainHP's defaults (a sensible model
    even when the budget allows only a few trials; the smallest trial, so one completes
    early), then the same family under the seed reports' recipe (:data:`RECIPE`), planned
    like any later trial."""
    from bench.models.registry import model_for
    from bench.search.spaces import RECIPE, default_params, family_kwargs
    from bench.search.speed import measure_throughput, speed_key

    def speed(family: str) -> float:
        params = default_params(s.space, family)
        kwargs = family_kwargs(params, family)
        try:
            model = model_for(s.spec, family, img_size=s.img_size, **kwargs)
            thr = measure_throughput(model, in_chans=s.spec.n_channels, img_size=s.img_size,
                                     device=s.device, ndim=s.spec.ndim)  # fmt: skip
        except Exception:  # a plugin that cannot build its defaults is simply not first
            return 0.0
        s.speeds[speed_key(family, kwargs)] = thr  # the trials reuse it (no second probe)
        return thr

    families = list(s.space.families)
    best = max(families, key=speed) if len(families) > 1 else families[0]
    params = default_params(s.space, best)
    batch = s.space.common.params.get("batch_size")
    if batch is not None and batch.type == "categorical":
        # enough optimiser steps on a small train split: the largest batch giving >= 16 steps
        n_train = int(s.spec.n_samples.get("train", 0) or 0)
        fits = [b for b in batch.choices if isinstance(b, int) and b * 16 <= n_train]
        params["batch_size"] = max(fits) if fits else min(batch.choices)
    recipe = default_params(s.space, best, common=RECIPE)
    return [params] if recipe == params else [params, recipe]


def chosen_trial(study, s: Settings, data):
    """The best completed trial (chosen on val only).

    Raises:
        BenchError: no trial completed; names why, and the smallest budget that would do.
    """
    best = _best_complete(study)
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
        need = smallest_budget(load_s=s.budget.search_start - s.budget.t0, trial_s=trial_s,
                               seeds=s.seeds)  # fmt: skip
        hint = (
            f"one trial and the final fits need a budget of about {need // 60}m here: "
            f"give --budget {need // 60}m or more"
        )
    raise BenchError(f"no trial completed within the budget{why}; {hint}")


def print_summary(record, spec, run_dir: Path) -> None:
    """Our row beside the published MedMNIST v2 rows for the dataset (stdout)."""
    from rich.console import Console
    from rich.table import Table

    from bench.reference import PUBLISHED, published_rows

    n = record.n_seeds
    fits = f"{n} seed{'s' if n > 1 else ''}" + (" refit on train + val" if record.cv else "")
    table = Table(title=f"{record.dataset}: test AUC / ACC ({fits})")
    for col in ("method", "AUC", "ACC", "source"):
        table.add_column(col)
    table.add_row(
        record.method,
        f"{record.test_auc_mean:.3f} ± {record.test_auc_std:.3f}",
        f"{record.test_acc_mean:.3f} ± {record.test_acc_std:.3f}",
        f"bench run, {record.constraint} (this run)",
    )
    flag = spec.published_as
    for row in published_rows(flag) if flag else []:
        source = PUBLISHED if flag == spec.name else f"{PUBLISHED} ({flag})"
        table.add_row(
            row["method"], f"{row['test_auc_mean']:.3f}", f"{row['test_acc_mean']:.3f}", source
        )
    console = Console()
    if not console.is_terminal:  # piped: don't squeeze the table into 80 columns
        console = Console(width=160)
    console.print(table)
    unfinished = f", unfinished {record.n_unfinished}" if record.n_unfinished else ""
    console.print(
        f"trials {record.n_trials} (complete {record.n_complete}, pruned {record.n_pruned}, "
        f"failed {record.n_failed}{unfinished}); search {record.search_s}s, "
        f"final {record.final_s}s, wall {record.wall_s}s of {record.budget_s}s; "
        f"record {run_dir}/record.json",
        highlight=False,
    )
