"""``bench run``'s final phase: refit the configuration chosen on val over the final seeds
(with ``--cv K``, on the whole train + val pool for its epochs, keeping the last weights),
then the other members of the ensemble selected on val (as time allows), score every fit
and both ensembles once on test, and write the run folder, ``record.json`` last.

The time rules are in :mod:`bench.search.budget`; the chosen trial, the one-standard-error
choice and the ensemble's members are :mod:`bench.search.select`'s.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench.errors import BenchError
from bench.search import attrs

if TYPE_CHECKING:
    from bench.run.fit import FitPlan
    from bench.run.settings import RunConfig, RunState
    from bench.train import FitConfig


def finalize_run(splits, study, cfg: RunConfig, state: RunState, display, *, search_s: float):
    """The final fits, the ensembles and the run folder. Returns the record and the folder."""
    from bench.data.folds import final_fit_sizes
    from bench.results.records import make_run_id
    from bench.run.fit import EnsembleMember, score_ensembles
    from bench.runtime import file_flag
    from bench.search.budget import member_time
    from bench.search.ensemble import val_dir
    from bench.search.objective import best_config
    from bench.search.select import chosen_trial, fit_estimate, refit_choice, select_members

    data = splits.train_val()
    sizes = (*final_fit_sizes(data, cfg.cv), len(splits.test))
    top = chosen_trial(study, data, budget=state.budget, seeds=cfg.seeds)
    best = refit_choice(study, top, sizes, cv=cfg.cv, seeds=cfg.seeds,
                        time_left=state.budget.time_left())  # fmt: skip
    if best.number != top.number:
        display.log(f"chose trial {best.number} over trial {top.number}: within one standard "
                    "error of its fold scores, and its final fits train more of their epochs")
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    members = select_members(study, data, best, ensemble=cfg.ensemble, cv=cfg.cv,
                             metric=cfg.metric, scores_dir=val_dir(cfg.out, cfg.study_name))
    run_dir = cfg.out / make_run_id(file_flag(cfg.spec), cfg.data_size, kind="run",
                                    constraint=cfg.constraint)  # fmt: skip
    run_dir.mkdir(parents=True, exist_ok=False)
    if cfg.cv:
        _write_folds(run_dir, data, cfg)
    final_start = time.monotonic()
    extra_s = sum(fit_estimate(trials[m.trial], sizes) * cfg.seeds for m in members[1:])
    keep = member_time(extra_s, fit_estimate(best, sizes) * cfg.seeds, state.budget.time_left())
    fit_cfg = best_config(best, cfg.space, cfg.metric)
    fit_splits = final_splits(splits, cv=cfg.cv)
    results, skipped = _fit_chosen(fit_splits, cfg, state, display, run_dir, best, fit_cfg,
                                   keep)  # fmt: skip
    fitted = [EnsembleMember(best.number, fit_cfg.family, members[0].weight, results)]
    for index, member in enumerate(members[1:], start=1):
        trial = trials[member.trial]
        family, fits = _fit_member(fit_splits, cfg, state, display, run_dir, trial, index,
                                   sizes)  # fmt: skip
        fitted.append(EnsembleMember(trial.number, family, member.weight, fits))
    ensembles = score_ensembles(splits, fitted, run_dir=run_dir)
    display.log(
        f"ensembles: seeds auc {ensembles['seed_ensemble_test_auc']:.4f}, selected "
        f"({len(ensembles['ensemble_members'])} configurations) auc "
        f"{ensembles['ensemble_test_auc']:.4f}"
    )
    display.set_counts(study)
    record = _write_run(run_dir, study, cfg, state, best, fit_cfg, results, skipped, ensembles,
                        search_s=search_s, final_s=time.monotonic() - final_start)  # fmt: skip
    return record, run_dir


def final_splits(splits, *, cv: int):
    """The splits every final fit trains on: ``splits``, or after ``--cv`` the whole train +
    val pool with no val (:func:`bench.data.folds.refit_splits`). Cross-validation chose the
    configuration and its epochs, so nothing is held out to choose a checkpoint on."""
    from bench.data.folds import refit_splits

    return refit_splits(splits) if cv else splits


def _write_folds(run_dir: Path, data, cfg: RunConfig) -> None:
    """``folds.json``: the folds every trial of the study cross-validated on."""
    from bench.data.folds import fold_ids, pool_labels, save_folds

    save_folds(run_dir, fold_ids(pool_labels(data), cfg.cv, cfg.seed), cfg.seed)


def _fit_plan(trial, data) -> FitPlan:
    """How a final fit of ``trial``'s configuration on ``data`` (a TrainVal) plans its epochs
    and train fraction: the trial's throughput and its epoch time at the fit's sizes."""
    from bench.run.fit import FitPlan

    return FitPlan(
        throughput=attrs.trial_throughput(trial),
        epoch_s=attrs.epoch_seconds_for(trial, n_train=len(data.train), n_val=len(data.val)),
    )


def _fit_chosen(fit_splits, cfg: RunConfig, state: RunState, display, run_dir: Path, best,
                fit_cfg: FitConfig, keep: float):  # fmt: skip
    """The chosen configuration over the final seeds on ``fit_splits`` (:func:`final_splits`),
    keeping ``keep`` seconds for the other members (:func:`~bench.search.budget.member_time`);
    seeds are skipped when one more fit would overrun."""
    from bench.run.fit import fit_and_score
    from bench.train import Deadline

    budget, seeds = state.budget, cfg.final_seeds()
    results, skipped, last_s = [], [], 0.0
    for i, seed in enumerate(seeds):
        if results and budget.time_left() < last_s:  # one more fit would overrun
            skipped = seeds[i:]
            left = budget.time_left()
            display.log(f"seeds {', '.join(map(str, skipped))} skipped: {left:.0f}s left, "
                        f"one fit took {last_s:.0f}s")  # fmt: skip
            break
        display.set_phase(f"final fit {i + 1}/{len(seeds)} (seed {seed}, {fit_cfg.family})")
        started = time.monotonic()
        res = fit_and_score(
            fit_cfg, fit_splits, seed=seed, img_size=cfg.img_size, device=cfg.device,
            run_dir=run_dir, deadline=Deadline(budget.final_share(len(seeds) - i, keep=keep)),
            plan=_fit_plan(best, fit_splits.train_val()),
        )  # fmt: skip
        last_s = time.monotonic() - started
        results.append(res)
        kept = (f"val {cfg.metric} {res.val_score:.4f}, best epoch {res.best_epoch}"
                if res.val_score is not None else f"refit on train + val, {res.best_epoch} "
                "epochs")  # fmt: skip
        display.log(f"seed {seed}: test auc {res.test['auc']:.4f} acc {res.test['acc']:.4f} "
                    f"({kept})")  # fmt: skip
    return results, skipped


def _fit_member(fit_splits, cfg: RunConfig, state: RunState, display, run_dir: Path, trial,
                index: int, sizes: tuple[int, int, int]):  # fmt: skip
    """Member ``index``'s configuration over the final fits that still fit in the budget:
    ``(family, [SeedResult])``."""
    from bench.run.fit import fit_and_score
    from bench.saved.fits import fit_name
    from bench.search.objective import best_config
    from bench.search.select import fit_estimate
    from bench.train import Deadline

    fit_cfg = best_config(trial, cfg.space, cfg.metric)
    estimate = fit_estimate(trial, sizes)
    fits = []
    for seed in cfg.final_seeds():
        left = state.budget.time_left()
        if left < estimate:
            display.log(
                f"ensemble member {index} (trial {trial.number}): seed {seed} and later "
                f"skipped, {left:.0f}s left, a fit needs {estimate:.0f}s"
            )
            break
        display.set_phase(f"ensemble member {index} (trial {trial.number}, seed {seed})")
        try:
            res = fit_and_score(
                fit_cfg, fit_splits, seed=seed, img_size=cfg.img_size, device=cfg.device,
                run_dir=run_dir, deadline=Deadline(min(left, 1.5 * estimate)),
                plan=_fit_plan(trial, fit_splits.train_val()), name=fit_name(index, seed),
            )  # fmt: skip
        except BenchError as exc:  # a diverged refit: the member keeps the fits it has
            display.log(f"ensemble member {index} (trial {trial.number}): {exc}")
            break
        fits.append(res)
    return fit_cfg.family, fits


def _write_run(run_dir: Path, study, cfg: RunConfig, state: RunState, best, fit_cfg: FitConfig,
               results, skipped, ensembles: dict, *, search_s: float, final_s: float):  # fmt: skip
    """fits.json, config.json, trials.csv, the journal snapshot, then record.json."""
    import torch

    from bench.device import device_label
    from bench.files import atomic_write_text, copy_atomic, write_json, write_once_json
    from bench.models.registry import method_label
    from bench.results.records import RECORD_FILE, build_record
    from bench.run.fit import augment_train_seconds, write_fits
    from bench.run.repeats import mark_finished
    from bench.search.study import trial_counts

    write_fits(run_dir, results)
    config = cfg.config()
    threads = torch.get_num_threads()
    write_json(run_dir / "config.json",
               {**config, "max_epochs": fit_cfg.hp.epochs, "torch_threads": threads})  # fmt: skip
    atomic_write_text(run_dir / "trials.csv", study.trials_dataframe().to_csv(index=False))
    if cfg.journal_path is not None and cfg.journal_path.is_file():
        copy_atomic(cfg.journal_path, run_dir / "journal.log")
    info = [f"seed {r.seed} stopped at its deadline after {len(r.history)} epochs"
            for r in results if r.stopped == "deadline"]  # fmt: skip
    fractions = sorted({r.train_fraction for r in results})
    if fractions != [fit_cfg.hp.train_fraction]:
        info.append(f"final fits on {'/'.join(f'{f:.0%}' for f in fractions)} of train (the "
                    f"trial: {fit_cfg.hp.train_fraction:.0%})")  # fmt: skip
    if skipped:
        info.append(f"{len(results)} of {cfg.seeds} seeds: no time left for seeds "
                    f"{';'.join(map(str, skipped))}")  # fmt: skip
    wall_s = time.monotonic() - state.budget.t0
    if wall_s > state.budget.budget_s:
        info.append(f"budget overrun: {wall_s:.0f}s of {state.budget.budget_s:.0f}s")
    record = build_record(
        run_id=run_dir.name, kind="run", spec=cfg.spec, data_size=cfg.data_size,
        method=method_label(fit_cfg.family, cfg.img_size), family=fit_cfg.family,
        per_seed=[r.per_seed() for r in results], config=config, params=fit_cfg.params(),
        info=info, img_size=cfg.img_size, objective=cfg.metric, val_score=float(best.value),
        augment=fit_cfg.aug_name, n_params=results[0].n_params, budget_s=int(cfg.budget_s),
        search_s=search_s, final_s=final_s, wall_s=wall_s, **trial_counts(study),
        sampler=cfg.sampler, pruner=cfg.pruner, study_name=cfg.study_name,
        storage_kind=cfg.storage_kind, device=device_label(cfg.device),
        epochs=max(r.epochs for r in results), augment_train_s=augment_train_seconds(results),
        best_trial=best.number, cv=cfg.cv, jobs=cfg.jobs, repeat=cfg.repeat,
        search_seed=cfg.seed, **ensembles,
    )  # fmt: skip
    write_once_json(run_dir / RECORD_FILE, record.as_dict())
    mark_finished(study, cfg, run_dir.name)
    return record
