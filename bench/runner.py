"""``bench run`` and ``bench search``: check every input, load the data once, search within
the budget, then (``run`` only) retrain the best configuration over seeds, score each fit
once on test and write the run folder, ``record.json`` last.

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
            "budget_s": int(self.budget.budget_s),
            "study_name": self.study_name,
            "storage_kind": self.storage_kind,
        }


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
    from bench.data.load import default_size
    from bench.device import resolve_device
    from bench.records import budget_label
    from bench.runtime import check_writable
    from bench.search.budget import RunBudget, budget_epochs
    from bench.search.spaces import resolve_space
    from bench.search.storage import storage_kind
    from bench.search.study import space_hash, study_name

    budget_s = parse_budget(args.budget)
    seeds = int(getattr(args, "seeds", 0) or 0)
    if finalize and seeds < 1:
        raise ConfigError(f"--seeds {seeds}: give at least 1")
    n_trials = getattr(args, "n_trials", None)
    if n_trials is not None and n_trials < 1:
        raise ConfigError(f"--n-trials {n_trials}: give at least 1")
    spec = get_dataset(args.dataset)
    data_size = args.size or default_size(spec)
    check_size(spec, data_size)
    img_size = args.img_size or data_size
    families, augment = parse_list(args.families), parse_list(args.augment)
    space = resolve_space(families or None, augment=augment or None, img_size=img_size,
                          ndim=spec.ndim, dataset=spec.name)  # fmt: skip
    name = args.study or study_name(
        spec.name, data_size, space_hash(space, metric=args.metric, img_size=img_size)
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
    return Settings(
        budget=RunBudget(t0=t0, budget_s=budget_s, seeds=seeds if finalize else 0),
        constraint=budget_label(budget_s), spec=spec, data_size=data_size, img_size=img_size,
        space=space, study_name=name, storage_url=args.storage, storage_kind=kind,
        journal_path=journal, out=out, device=resolve_device(args.device), metric=args.metric,
        sampler=args.sampler, pruner=args.pruner, seed=args.seed, seeds=seeds,
        finalize=finalize, quiet=args.quiet, n_trials=n_trials, data_dir=args.data_dir,
        max_epochs=budget_epochs(budget_s), families=families, augment=augment,
    )  # fmt: skip


def _main(args: argparse.Namespace, *, finalize: bool) -> int:
    from bench.data.load import load_splits
    from bench.display import Display
    from bench.runtime import cpu_threads, process_start
    from bench.search.speed import warm_up

    s = prepare(args, finalize=finalize, t0=process_start())
    splits = load_splits(s.spec, s.data_size, s.data_dir)  # a bad file: one line, nothing made
    threads = cpu_threads(s.device)  # before any speed probe: the trials reuse the figures
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
        search_s = search(study, data, s, display)
        if not finalize:
            display.set_counts(study)
            display.log(f"search finished: {display.status()}")
            return 0
        record, run_dir = finalize_run(splits, study, s, display, search_s=search_s)
    print_summary(record, s.spec, run_dir)
    return 0


def open_study(s: Settings):
    """Open (or resume) the study; its first trial is a sensible default configuration."""
    import optuna

    from bench.search.storage import fail_dead_local_trials, open_storage
    from bench.search.study import describe_study, make_pruner, make_sampler, worker_seed

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    study = optuna.create_study(
        storage=open_storage(s.storage_url, default_journal=s.journal_path),
        sampler=make_sampler(s.sampler, worker_seed(s.seed, worker=not s.finalize)),
        pruner=make_pruner(s.pruner, s.max_epochs),
        study_name=s.study_name,
        direction="maximize",
        load_if_exists=True,
    )
    describe_study(study, dataset=s.spec.name, data_size=s.data_size, img_size=s.img_size,
                   metric=s.metric, space=s.space)  # fmt: skip
    if s.storage_kind == "journal":
        fail_dead_local_trials(study)
    if not study.get_trials(deepcopy=False):
        study.enqueue_trial(first_trial(s), skip_if_exists=True)
    return study


class _StopAtSearchEnd:
    """Optuna callback: tell the budget about a new best trial; stop when time is up."""

    def __init__(self, budget, sizes: tuple[int, int, int], best: float | None) -> None:
        self.budget, self.sizes, self.best = budget, sizes, best

    def __call__(self, study, trial) -> None:
        from optuna.trial import TrialState

        if trial.state == TrialState.COMPLETE and trial.value is not None:
            if self.best is None or trial.value > self.best:
                self.best = trial.value
                self.budget.observe_best(attrs.final_fit_seconds(trial, self.sizes))
        if not self.budget.search_open():
            study.stop()


def search(study, data, s: Settings, display) -> float:
    """Run trials until the search end (or ``n_trials``); returns the seconds spent."""
    from bench.search.objective import Objective, TrialFailed
    from bench.search.study import worker_seed

    best = _best_complete(study)
    sizes = (len(data.train), len(data.val), int(s.spec.n_samples.get("test", 0) or 0))
    s.budget.start_search(best_fit_s=attrs.final_fit_seconds(best, sizes) if best else None)
    stopper = _StopAtSearchEnd(s.budget, sizes, best.value if best else None)
    objective = Objective(
        data, s.space, device=s.device, metric=s.metric, img_size=s.img_size, seed=s.seed,
        max_epochs=s.max_epochs, search_end=s.budget.search_end, cap_s=s.budget.trial_cap(),
        on_event=display.event, sampler_seed=worker_seed(s.seed, worker=not s.finalize),
        speeds=s.speeds,
    )  # fmt: skip
    if s.budget.search_open():
        study.optimize(objective, n_trials=s.n_trials, catch=(TrialFailed,),
                       callbacks=[display.trial_done, stopper])  # fmt: skip
    return time.monotonic() - s.budget.search_start


def _best_complete(study):
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return max(done, key=lambda t: t.value) if done else None


def first_trial(s: Settings) -> dict:
    """Parameters of the first trial of an empty study: the family that trains fastest at
    its defaults (measured), with its builder's and TrainHP's defaults: a sensible model
    even when the budget allows only a few trials."""
    from bench.models.registry import model_for
    from bench.search.spaces import default_params
    from bench.search.speed import measure_throughput, speed_key

    def speed(family: str) -> float:
        params = default_params(s.space, family)
        kwargs = {k.split(".", 1)[1]: v for k, v in params.items() if k.startswith(family + ".")}
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
    return params


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


def finalize_run(splits, study, s: Settings, display, *, search_s: float):
    """Retrain the best trial's configuration with ``s.seeds`` seeds, score each once on
    test, write the run folder; ``record.json`` last. Returns the record and the folder."""
    from bench.evaluate import fit_and_score
    from bench.records import make_run_id
    from bench.runtime import file_flag
    from bench.search.objective import best_config
    from bench.train import Deadline

    data = splits.train_val()
    best = chosen_trial(study, s, data)
    cfg = best_config(best, s.space, s.metric)
    run_dir = s.out / make_run_id(file_flag(s.spec), s.data_size, kind="run",
                                  constraint=s.constraint)  # fmt: skip
    run_dir.mkdir(parents=True, exist_ok=False)
    final_start = time.monotonic()
    seeds = [s.seed + i for i in range(s.seeds)]
    results, skipped, last_s = [], [], 0.0
    for i, seed in enumerate(seeds):
        if results and s.budget.time_left() < last_s:  # one more fit would overrun
            skipped = seeds[i:]
            left = s.budget.time_left()
            display.log(f"seeds {', '.join(map(str, skipped))} skipped: {left:.0f}s left, "
                        f"one fit took {last_s:.0f}s")  # fmt: skip
            break
        display.set_phase(f"final fit {i + 1}/{len(seeds)} (seed {seed}, {cfg.family})")
        started = time.monotonic()
        res = fit_and_score(
            cfg, splits, seed=seed, img_size=s.img_size, device=s.device, run_dir=run_dir,
            deadline=Deadline(s.budget.final_share(len(seeds) - i)),
            size_epochs=_final_epochs(best, cfg, data, s),
        )  # fmt: skip
        last_s = time.monotonic() - started
        results.append(res)
        display.log(
            f"seed {seed}: test auc {res.test['auc']:.4f} acc {res.test['acc']:.4f} "
            f"(val {s.metric} {res.val_score:.4f}, best epoch {res.best_epoch})"
        )
    display.set_counts(study)
    record = _write_run(run_dir, study, s, best, cfg, results, skipped,
                        search_s=search_s, final_s=time.monotonic() - final_start)  # fmt: skip
    return record, run_dir


def _final_epochs(trial, cfg, data, s: Settings):
    """``size_epochs`` for a final fit: the trial's epochs cut to the fit's deadline at the
    trial's epoch time, slowed by how much slower this machine is now (a fresh probe)."""
    from bench.search.budget import final_epochs
    from bench.search.speed import augment_cost, measure_throughput

    def size(model, augment, deadline) -> int:
        then = attrs.trial_throughput(trial)
        slowdown = 1.0
        if then:
            now = measure_throughput(model, in_chans=data.spec.n_channels, img_size=s.img_size,
                                     device=s.device, ndim=data.spec.ndim)  # fmt: skip
            if augment is not None:
                now = 1.0 / (1.0 / now + augment_cost(augment, data, device=s.device))
            slowdown = max(1.0, float(then) / max(now, 1e-9))
        return final_epochs(cfg.hp.epochs, epoch_s=trial.user_attrs.get(attrs.EPOCH_SECONDS),
                            seconds=deadline.remaining(), slowdown=slowdown)  # fmt: skip

    return size


def _write_run(run_dir: Path, study, s: Settings, best, cfg, results, skipped, *, search_s,
               final_s):  # fmt: skip
    """fits.json, config.json, trials.csv, the journal snapshot, then record.json."""
    import torch

    from bench.device import device_label
    from bench.evaluate import augment_train_seconds, write_fits
    from bench.files import atomic_write_text, copy_atomic, write_json, write_once_json
    from bench.models.registry import method_label
    from bench.records import RECORD_FILE, build_record
    from bench.search.study import trial_counts

    write_fits(run_dir, results)
    config = s.config()
    threads = torch.get_num_threads()
    write_json(
        run_dir / "config.json", {**config, "max_epochs": cfg.hp.epochs, "torch_threads": threads}
    )
    atomic_write_text(run_dir / "trials.csv", study.trials_dataframe().to_csv(index=False))
    if s.journal_path is not None and s.journal_path.is_file():
        copy_atomic(s.journal_path, run_dir / "journal.log")
    info = [f"seed {r.seed} stopped at its deadline after {len(r.history)} epochs"
            for r in results if r.stopped == "deadline"]  # fmt: skip
    if skipped:
        info.append(f"{len(results)} of {s.seeds} seeds: no time left for seeds "
                    f"{';'.join(map(str, skipped))}")  # fmt: skip
    wall_s = time.monotonic() - s.budget.t0
    if wall_s > s.budget.budget_s:
        info.append(f"budget overrun: {wall_s:.0f}s of {s.budget.budget_s:.0f}s")
    record = build_record(
        run_id=run_dir.name, kind="run", spec=s.spec, data_size=s.data_size,
        method=method_label(cfg.family, s.img_size), family=cfg.family,
        per_seed=[r.per_seed() for r in results], config=config, params=cfg.params(), info=info,
        img_size=s.img_size, objective=s.metric, val_score=float(best.value),
        augment=cfg.aug_name, n_params=results[0].n_params, budget_s=int(s.budget.budget_s),
        search_s=search_s, final_s=final_s, wall_s=wall_s, **trial_counts(study),
        sampler=s.sampler, pruner=s.pruner, study_name=s.study_name,
        storage_kind=s.storage_kind, device=device_label(s.device),
        epochs=max(r.epochs for r in results), augment_train_s=augment_train_seconds(results),
        best_trial=best.number,
    )  # fmt: skip
    write_once_json(run_dir / RECORD_FILE, record.as_dict())
    return record


def print_summary(record, spec, run_dir: Path) -> None:
    """Our row beside the published MedMNIST v2 rows for the dataset (stdout)."""
    from rich.console import Console
    from rich.table import Table

    from bench.reference import PUBLISHED, published_rows

    n = record.n_seeds
    table = Table(title=f"{record.dataset}: test AUC / ACC ({n} seed{'s' if n > 1 else ''})")
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
    console.print(
        f"trials {record.n_trials} (complete {record.n_complete}, pruned {record.n_pruned}, "
        f"failed {record.n_failed}); search {record.search_s}s, final {record.final_s}s, "
        f"wall {record.wall_s}s of {record.budget_s}s; record {run_dir}/record.json",
        highlight=False,
    )
