"""``bench run`` and ``bench search``: check every input, load the data once, search within
the budget, then (``run`` only) retrain the best configuration over seeds (with ``--cv``,
on the whole train + val pool), score each fit once on test and write the run folder,
``record.json`` last.

The command layer (:func:`cmd_run`, :func:`cmd_search`) reads the parsed flags once into a
:class:`~bench.run.settings.RunFlags`; everything below takes the typed
:class:`~bench.run.settings.RunConfig` and :class:`~bench.run.settings.RunState`. The time
rules are in :mod:`bench.search.budget`; the choice of the trial in
:mod:`bench.search.select`. Only the final phase holds a
:class:`~bench.data.splits.Splits`; the search gets a TrainVal.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

from bench.errors import ConfigError
from bench.run.settings import RunConfig, RunFlags, RunState
from bench.search import attrs

DEFAULT_SEEDS = 3  # final fits of `bench run` without --cv


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
    return _main(RunFlags.of(vars(args)), finalize=True)


def cmd_search(args: argparse.Namespace) -> int:
    """``bench search``: a worker that joins the study and only searches."""
    return _main(RunFlags.of(vars(args)), finalize=False)


def _counts(flags: RunFlags, *, finalize: bool) -> dict:
    """The checked counts of ``flags``: ``n_trials``, ``cv``, ``seeds``, ``jobs``,
    ``memory_limit`` (this process's share), ``gpu_memory_limit`` (the same, only when
    ``--max-memory`` is given) and ``ensemble`` (each problem one line)."""
    from bench.data.folds import check_cv
    from bench.run.workers import check_jobs
    from bench.search.memory import default_limit, parse_memory

    if flags.n_trials is not None and flags.n_trials < 1:
        raise ConfigError(f"--n-trials {flags.n_trials}: give at least 1")
    if flags.cv is not None:
        check_cv(flags.cv)
    seeds = final_fits(flags.seeds) if finalize else 0
    jobs = check_jobs(int(flags.jobs or 0) if finalize else 1)
    memory_limit = parse_memory(flags.max_memory) if flags.max_memory is not None else None
    ensemble = flags.ensemble
    if ensemble < 1:
        raise ConfigError(f"--ensemble {ensemble}: give at least 1 (1: no ensemble selection)")
    return dict(n_trials=flags.n_trials, cv=flags.cv or 0, seeds=seeds, jobs=jobs,
                ensemble=ensemble,
                memory_limit=(memory_limit or default_limit()) // jobs,  # the run's share
                gpu_memory_limit=memory_limit // jobs if memory_limit else None)  # fmt: skip


def _journal(storage: str | None, *, kind: str, out: Path, name: str) -> Path | None:
    """The journal file of a journal storage (``--storage`` or one in the run folder),
    checked writable; None for a database."""
    from bench.runtime import check_output_dir

    if kind != "journal":
        return None
    journal = Path(storage).expanduser() if storage else out / "studies" / f"{name}.journal"
    if journal.is_dir():
        raise ConfigError(f"--storage {journal} is a folder; give a journal file path inside it")
    check_output_dir(journal.parent, "--storage" if storage else "--out")
    return journal


def prepare(flags: RunFlags, *, finalize: bool, t0: float) -> tuple[RunConfig, RunState]:
    """Validate every flag (each problem one line, exit 2); creates nothing. Without
    ``--study``, the study is repeat 1's until :func:`~bench.run.repeats.pick_study`."""
    from bench.config import at_least, parse_budget, parse_list
    from bench.data.catalog import get_dataset
    from bench.data.load import default_size
    from bench.data.spec import check_size
    from bench.device import resolve_device
    from bench.results.records import budget_label
    from bench.run.workers import follow_file
    from bench.runtime import check_output_dir
    from bench.search.budget import RunBudget, budget_epochs, check_budget
    from bench.search.repeats import repeat_name, run_key
    from bench.search.spaces import check_space_dir, resolve_space
    from bench.search.storage import storage_kind
    from bench.search.study import space_hash, study_name

    budget_s = check_budget(parse_budget(flags.budget), flags.budget, final=finalize)
    counts = _counts(flags, finalize=finalize)
    spec = get_dataset(flags.dataset)
    data_size = default_size(spec) if flags.size is None else flags.size
    check_size(spec, data_size)
    img_size = data_size if flags.img_size is None else at_least("--img-size", flags.img_size)
    families, augment = parse_list(flags.families), parse_list(flags.augment)
    space_dir = check_space_dir(flags.spaces)
    space = resolve_space(families or None, augment=augment or None, img_size=img_size,
                          space_dir=space_dir, ndim=spec.ndim, dataset=spec.name)  # fmt: skip
    key = None if flags.study else run_key(study_name(spec.name, data_size, space_hash(
        space, metric=flags.metric, img_size=img_size, cv=counts["cv"])),
        budget_label=budget_label(budget_s), seed=flags.seed)  # fmt: skip
    name = flags.study or repeat_name(key, 1)  # the repeat is chosen later (pick_study)
    out = Path(flags.out).expanduser()
    check_output_dir(out)
    kind = storage_kind(flags.storage)
    journal = _journal(flags.storage, kind=kind, out=out, name=name)
    follow = Path(flags.follow) if flags.follow else None
    cfg = RunConfig(
        dataset=flags.dataset, spec=spec, data_size=data_size, img_size=img_size, space=space,
        study_name=name, storage_url=flags.storage, storage_kind=kind, journal_path=journal,
        out=out, device=resolve_device(flags.device), metric=flags.metric,
        sampler=flags.sampler, pruner=flags.pruner, seed=flags.seed, finalize=finalize,
        quiet=flags.quiet, data_dir=flags.data_dir, max_epochs=budget_epochs(budget_s),
        budget_s=budget_s, budget_text=flags.budget, constraint=budget_label(budget_s),
        families=tuple(families), augment=tuple(augment), space_dir=space_dir,
        plugins=flags.plugins,
        follow=follow, study_key=key, **counts,
    )  # fmt: skip
    budget = RunBudget(t0=t0, budget_s=budget_s, seeds=cfg.seeds, ensemble=cfg.ensemble,
                       follow=follow)  # fmt: skip
    return cfg, RunState(budget, publish=follow_file(cfg) if cfg.jobs > 1 else None)


def _main(flags: RunFlags, *, finalize: bool) -> int:
    from bench.run.repeats import check_repeats
    from bench.runtime import process_start

    repeats = check_repeats(flags.repeats, study=flags.study)
    cfg, state = prepare(flags, finalize=finalize, t0=process_start())
    if repeats == 1:
        _run_one(*_pick(cfg, state))
        return 0
    return _run_repeats(flags, cfg, state, repeats=repeats)


def _pick(cfg: RunConfig, state: RunState, *, after: int = 0) -> tuple[RunConfig, RunState]:
    """The study :func:`~bench.run.repeats.pick_study` chooses above repeat ``after``, its
    lines said."""
    from bench.run.repeats import pick_study, say

    cfg, state, lines = pick_study(cfg, state, after=after)
    say(lines)
    return cfg, state


def _run_one(cfg: RunConfig, state: RunState):
    """One search (and for ``bench run``, its final phase); the record (None for ``bench
    search``)."""
    from bench.files import write_guard

    with write_guard(cfg.out, journal=cfg.journal_path, resumes=True):
        return _search_and_finalize(cfg, state)


def _run_repeats(flags: RunFlags, cfg: RunConfig, state: RunState, *, repeats: int) -> int:
    """``bench run --repeats R``: R runs one after another, each the whole budget and the
    next unfinished study; one that fails is said and the others go on. Exit 1 if any
    failed."""
    from bench.errors import BenchError
    from bench.run.repeats import say, summary_line, total_line

    say([total_line(repeats, cfg.budget_s)])
    done, failed, after = [], 0, 0
    for i in range(repeats):
        try:
            if i:
                cfg, state = prepare(flags, finalize=True, t0=time.monotonic())
            cfg, state = _pick(cfg, state, after=after)
            after = cfg.repeat  # a failed repeat's study is left for a later command
            done.append(_run_one(cfg, state))
        except BenchError as exc:
            failed += 1
            say([f"error: repeat {i + 1} of {repeats} ({cfg.study_name}): {exc}"])
    print(summary_line(done, repeats=repeats, failed=failed), flush=True)
    return 1 if failed else 0


def _search_and_finalize(cfg: RunConfig, state: RunState):
    from bench.data.load import load_splits
    from bench.run.display import Display
    from bench.runtime import cpu_threads
    from bench.search.speed import warm_up

    splits = load_splits(cfg.spec, cfg.data_size, cfg.data_dir)  # a bad file: one line
    if cfg.cv:
        from bench.data.folds import check_cv, pool_labels

        check_cv(cfg.cv, pool_labels(splits.train_val()), multilabel=cfg.spec.multilabel)
    from bench.run.gpus import limit_memory, own_fraction
    from bench.run.workers import share_threads

    # before any speed probe (the trials reuse its figures); with --jobs, each process's share
    threads = cpu_threads(cfg.device, exact=share_threads(cfg.jobs) if cfg.jobs > 1 else None)
    gpu_share = own_fraction(cfg)
    limit_memory(cfg.device, gpu_share)
    warm_up()
    _check_search_opens(cfg, state)
    study = open_study(cfg, state)
    data = splits.train_val()
    if not cfg.finalize:
        splits = None  # a search worker never holds the test split
    title = (f"{'run' if cfg.finalize else 'search'} {cfg.study_name} ({cfg.spec.name}, "
             f"budget {cfg.budget_text})")  # fmt: skip
    if threads is not None:
        title += f", {threads} cpu thread{'s' if threads > 1 else ''}"
    if gpu_share is not None:
        title += f", {gpu_share:.0%} of the GPU's memory"
    with Display(title, end=state.budget.end, quiet=cfg.quiet, metric=cfg.metric) as display:
        display.set_counts(study)
        search_s = search_with_workers(study, data, cfg, state, display)
        if not cfg.finalize:
            display.set_counts(study)
            display.log(f"search finished: {display.status()}")
            return None
        from bench.run.final import finalize_run

        search_s += state.search_before_s  # a resumed run's earlier parts
        record, run_dir = finalize_run(splits, study, cfg, state, display, search_s=search_s)
    print_summary(record, cfg.spec, run_dir)
    return record


def _check_search_opens(cfg: RunConfig, state: RunState) -> None:
    """Refuse, before its journal is created, a new study whose search could not start: the
    budget was spent starting up and loading the data.

    Raises:
        BenchError: one line with the budget that would do.
    """
    from bench.errors import BenchError
    from bench.search.budget import TRIAL_CAP_MIN_S, smallest_budget

    new = cfg.storage_kind == "journal" and not cfg.journal_path.exists()
    if not new or state.budget.search_open():
        return
    load_s = time.monotonic() - state.budget.t0
    need = smallest_budget(load_s=load_s, trial_s=TRIAL_CAP_MIN_S, seeds=cfg.seeds)
    raise BenchError(f"--budget {cfg.budget_text} was spent before the search could start "
                     f"({load_s:.0f}s to start and load the data); give --budget "
                     f"{need // 60}m or more")  # fmt: skip


def open_study(cfg: RunConfig, state: RunState):
    """Open (or resume) the study; its first trial is a sensible default configuration."""
    import optuna

    from bench.search.journal import repair_and_say
    from bench.search.storage import fail_dead_local_trials, open_storage
    from bench.search.study import describe_study, make_pruner, make_sampler, worker_seed

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    repaired = cfg.storage_kind == "journal" and repair_and_say(cfg.journal_path)
    study = optuna.create_study(
        storage=open_storage(cfg.storage_url, default_journal=cfg.journal_path, repair=False),
        sampler=make_sampler(cfg.sampler, worker_seed(cfg.seed, worker=not cfg.finalize)),
        pruner=make_pruner(cfg.pruner, cfg.max_epochs),
        study_name=cfg.study_name,
        direction="maximize",
        load_if_exists=True,
    )
    describe_study(study, dataset=cfg.spec.name, data_size=cfg.data_size,
                   img_size=cfg.img_size, metric=cfg.metric, space=cfg.space)  # fmt: skip
    if cfg.storage_kind == "journal":
        fail_dead_local_trials(study, untagged=repaired)
    if not study.get_trials(deepcopy=False):
        for params in first_trials(cfg, speeds=state.speeds):
            study.enqueue_trial(params, skip_if_exists=True)
    return study


class _StopAtSearchEnd:
    """Optuna callback: tell the budget about a new best trial (and the workers about the
    search end it moves); stop when time is up."""

    def __init__(self, state: RunState, sizes: tuple[int, int, int],
                 best: float | None) -> None:  # fmt: skip
        self.budget, self.publish, self.sizes, self.best = state.budget, state.publish, sizes, best

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


def search_with_workers(study, data, cfg: RunConfig, state: RunState, display) -> float:
    """:func:`search`, with ``cfg.jobs - 1`` worker processes on the same study
    (:mod:`bench.run.workers`) that have all stopped when it returns."""
    if cfg.jobs == 1:
        return search(study, data, cfg, state, display)
    from bench.run.workers import WorkerWatch, start_workers, stop_workers
    from bench.search.storage import fail_dead_local_trials, worker_tag

    logs = state.publish.parent
    display.log(f"starting {cfg.jobs - 1} worker process(es); logs in {logs}")
    procs = start_workers(cfg, time_left=state.budget.time_left())
    try:
        with WorkerWatch(study, display, worker_tag()):
            search_s = search(study, data, cfg, state, display)
            display.set_phase("search: waiting for the workers' last trials")
            codes = stop_workers(procs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
    fail_dead_local_trials(study)  # a worker stopped mid-trial: FAIL now, retried next run
    if any(codes):
        display.log(f"warning: worker exit codes {codes}; see {logs}")
    return search_s


def search(study, data, cfg: RunConfig, state: RunState, display) -> float:
    """Run trials until the search end (or ``n_trials``); returns the seconds spent."""
    from bench.data.folds import final_fit_sizes
    from bench.search.ensemble import val_dir
    from bench.search.objective import Objective, TrialFailed
    from bench.search.select import best_complete
    from bench.search.study import worker_seed

    budget = state.budget
    best = best_complete(study)
    sizes = (*final_fit_sizes(data, cfg.cv), int(cfg.spec.n_samples.get("test", 0) or 0))
    budget.start_search(best_fit_s=attrs.final_fit_seconds(best, sizes) if best else None)
    stopper = _StopAtSearchEnd(state, sizes, best.value if best else None)
    if state.publish is not None:
        budget.publish(state.publish)
    objective = Objective(
        data, cfg.space, device=cfg.device, metric=cfg.metric, img_size=cfg.img_size,
        seed=cfg.seed, max_epochs=cfg.max_epochs, search_end=budget.search_end,
        cap_s=budget.trial_cap(), on_event=display.event,
        sampler_seed=worker_seed(cfg.seed, worker=not cfg.finalize), speeds=state.speeds,
        val_dir=val_dir(cfg.out, cfg.study_name), cv=cfg.cv, memory_limit=cfg.memory_limit,
        final_seconds=budget.final_fit_most, final_sizes=sizes[:2],
    )  # fmt: skip
    callbacks = [display.trial_done, stopper]
    clock = _spent_clock(cfg, state)
    if clock is not None:
        callbacks.append(clock)
    if budget.search_open():
        study.optimize(objective, n_trials=cfg.n_trials, catch=(TrialFailed,),
                       callbacks=callbacks)  # fmt: skip
    if clock is not None:
        clock.save(study)
    return time.monotonic() - budget.search_start


def _spent_clock(cfg: RunConfig, state: RunState):
    """The run's :class:`~bench.run.repeats.SpentClock` (None: a worker, or ``--study``)."""
    from bench.run.repeats import SpentClock

    if not cfg.finalize or cfg.study_key is None:
        return None
    return SpentClock(state.budget, search_before_s=state.search_before_s)


def first_trials(cfg: RunConfig, *, speeds: dict[str, float]) -> list[dict]:
    """Parameters of the first two trials of an empty study: the family that trains fastest
    at its defaults (measured; each figure kept in ``speeds`` for the trials to reuse), with
    its builder's and TrainHP's defaults (a sensible model even when the budget allows only
    a few trials; the smallest trial, so one completes early), then the same family under
    the seed reports' recipe (:data:`RECIPE`), planned like any later trial."""
    from bench.models.registry import model_for
    from bench.search.spaces import RECIPE, default_params, family_kwargs
    from bench.search.speed import measure_throughput, speed_key

    spec, space = cfg.spec, cfg.space
    batch = _first_batch(space, spec)
    fastest = [0.0]

    def speed(family: str) -> float:
        kwargs = family_kwargs(default_params(space, family), family)
        at = batch or int(default_params(space, family).get("batch_size", 128))
        try:
            model = model_for(spec, family, img_size=cfg.img_size, **kwargs)
            thr, measured = measure_throughput(
                model, in_chans=spec.n_channels, img_size=cfg.img_size, device=cfg.device,
                batch=at, need=fastest[0] or None, ndim=spec.ndim,
            )  # fmt: skip
        except Exception:  # a plugin that cannot build its defaults is simply not first
            return 0.0
        if not measured:  # slower than the fastest so far for sure: not first, not kept
            return 0.0
        speeds[speed_key(family, kwargs, at)] = thr  # the trials reuse it (no second probe)
        fastest[0] = max(fastest[0], thr)
        return thr

    families = list(space.families)
    best = max(families, key=speed) if len(families) > 1 else families[0]
    params = default_params(space, best)
    if batch is not None:
        params["batch_size"] = batch
    recipe = default_params(space, best, common=RECIPE)
    return [params] if recipe == params else [params, recipe]


def _first_batch(space, spec) -> int | None:
    """The first trial's batch size when the space samples it from choices: enough
    optimiser steps on a small train split, the largest choice giving >= 16 steps."""
    batch = space.common.params.get("batch_size")
    if batch is None or batch.type != "categorical":
        return None
    n_train = int(spec.n_samples.get("train", 0) or 0)
    fits = [b for b in batch.choices if isinstance(b, int) and b * 16 <= n_train]
    return max(fits) if fits else min(batch.choices)


def print_summary(record, spec, run_dir: Path) -> None:
    """The run's three figures (single-fit mean, seed ensemble, selected ensemble: what
    ``bench predict`` uses), each with its 95 % interval, beside the published MedMNIST v2
    rows for the dataset, and the published rows inside the selected ensemble's interval."""
    from rich.console import Console
    from rich.table import Table

    from bench.reference import PUBLISHED, published_rows
    from bench.results.intervals import with_interval
    from bench.results.summary import published_inside, summary_rows

    n = record.n_seeds
    fits = f"{n} seed{'s' if n > 1 else ''}" + (" refit on train + val" if record.cv else "")
    table = Table(title=f"{record.dataset}: test AUC / ACC [95 % interval] ({fits})")
    for col in ("method", "AUC", "ACC", "source"):
        table.add_column(col)
    this = f"bench run, {record.constraint} (this run)"
    for label, cells in summary_rows(record):
        table.add_row(label, *cells, this)
    flag = spec.published_as
    published = published_rows(flag) if flag else []
    for row in published:
        source = PUBLISHED if flag == spec.name else f"{PUBLISHED} ({flag})"
        table.add_row(row["method"], with_interval(row["test_auc_mean"], None, None),
                      with_interval(row["test_acc_mean"], None, None), source)  # fmt: skip
    console = Console()
    if not console.is_terminal:  # piped: don't squeeze the table into 80 columns
        console = Console(width=160)
    console.print(table)
    if published:
        console.print(published_inside(record, published), highlight=False)
    unfinished = f", unfinished {record.n_unfinished}" if record.n_unfinished else ""
    console.print(
        f"trials {record.n_trials} (complete {record.n_complete}, pruned {record.n_pruned}, "
        f"failed {record.n_failed}{unfinished}); search {record.search_s}s, "
        f"final {record.final_s}s, wall {record.wall_s}s of {record.budget_s}s; "
        f"record {run_dir}/record.json",
        highlight=False,
    )
