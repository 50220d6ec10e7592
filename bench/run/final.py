"""``bench run``'s final phase: refit the configuration chosen on val over the final seeds
(with ``--cv K``, on the whole train + val pool for its epochs, keeping the last weights),
then the other members of the ensemble selected on val (as time allows), score every fit
and both ensembles once on test, and write the run folder, ``record.json`` last.

The time rules are in :mod:`bench.search.budget`; selection is :mod:`bench.search.ensemble`.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.errors import BenchError
from bench.search import attrs


def select_members(study, s, data, best) -> list:
    """The ensemble selected on val over the study's best completed trials (their saved
    val predictions): ``[Member]``, the chosen trial ``best`` first. Just ``best`` with
    ``--ensemble 1`` or when ``best`` left no val predictions here."""
    from optuna.trial import TrialState

    from bench.data.folds import pool_labels
    from bench.search.ensemble import CANDIDATES, Member, load_val_scores, select_ensemble, val_dir

    if s.ensemble <= 1:
        return [Member(best.number, 1.0)]
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    ranked = sorted(done, key=lambda t: (-t.value, t.number != best.number, t.number))
    distinct, seen = [], set()
    for t in ranked:  # one trial per configuration (an enqueued default can recur)
        key = tuple(sorted((k, str(v)) for k, v in t.params.items()))
        if key not in seen:
            seen.add(key)
            distinct.append(t.number)
    labels = pool_labels(data) if s.cv else data.val.labels  # --cv: out-of-fold predictions
    scores = load_val_scores(val_dir(s.out, s.study_name), distinct[:CANDIDATES], len(labels))
    if best.number not in scores:
        return [Member(best.number, 1.0)]
    members = select_ensemble(scores, labels, task=data.spec.task, metric=s.metric,
                              max_members=s.ensemble)  # fmt: skip
    first = [m for m in members if m.trial == best.number] or [Member(best.number, 0.0)]
    return first + [m for m in members if m.trial != best.number]


def finalize_run(splits, study, s, display, *, search_s: float):
    """The final fits, the ensembles and the run folder. Returns the record and the folder."""
    from bench.data.folds import final_fit_sizes
    from bench.results.records import make_run_id
    from bench.run.command import chosen_trial
    from bench.run.fit import EnsembleMember, score_ensembles
    from bench.runtime import file_flag
    from bench.search.budget import member_time
    from bench.search.objective import best_config

    data = splits.train_val()
    sizes = (*final_fit_sizes(data, s.cv), len(splits.test))
    top = chosen_trial(study, s, data)
    best = refit_choice(study, s, top, sizes)
    if best.number != top.number:
        display.log(f"chose trial {best.number} over trial {top.number}: within one standard "
                    "error of its fold scores, and its final fits train more of their epochs")
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    members = select_members(study, s, data, best)
    run_dir = s.out / make_run_id(file_flag(s.spec), s.data_size, kind="run",
                                  constraint=s.constraint)  # fmt: skip
    run_dir.mkdir(parents=True, exist_ok=False)
    if s.cv:
        _write_folds(run_dir, data, s)
    final_start = time.monotonic()
    extra_s = sum(_fit_estimate(trials[m.trial], sizes) * s.seeds for m in members[1:])
    keep = member_time(extra_s, _fit_estimate(best, sizes) * s.seeds, s.budget.time_left())
    cfg = best_config(best, s.space, s.metric)
    fit_splits = final_splits(splits, s)
    results, skipped = _fit_chosen(fit_splits, s, display, run_dir, best, cfg, keep)
    fitted = [EnsembleMember(best.number, cfg.family, members[0].weight, results)]
    for index, member in enumerate(members[1:], start=1):
        trial = trials[member.trial]
        family, fits = _fit_member(fit_splits, s, display, run_dir, trial, index, sizes)
        fitted.append(EnsembleMember(trial.number, family, member.weight, fits))
    ensembles = score_ensembles(splits, fitted, run_dir=run_dir)
    display.log(
        f"ensembles: seeds auc {ensembles['seed_ensemble_test_auc']:.4f}, selected "
        f"({len(ensembles['ensemble_members'])} configurations) auc "
        f"{ensembles['ensemble_test_auc']:.4f}"
    )
    display.set_counts(study)
    record = _write_run(run_dir, study, s, best, cfg, results, skipped, ensembles,
                        search_s=search_s, final_s=time.monotonic() - final_start)  # fmt: skip
    return record, run_dir


def final_splits(splits, s):
    """The splits every final fit trains on: ``splits``, or after ``--cv`` the whole train +
    val pool with no val (:func:`bench.data.folds.refit_splits`). Cross-validation chose the
    configuration and its epochs, so nothing is held out to choose a checkpoint on."""
    from bench.data.folds import refit_splits

    return refit_splits(splits) if s.cv else splits


def final_seeds(s) -> list[int]:
    """The seeds of every configuration's final fits: ``seed, seed+1, ...``, ``s.seeds`` of
    them."""
    return [s.seed + i for i in range(s.seeds)]


def _write_folds(run_dir: Path, data, s) -> None:
    """``folds.json``: the folds every trial of the study cross-validated on."""
    from bench.data.folds import fold_ids, pool_labels, save_folds

    save_folds(run_dir, fold_ids(pool_labels(data), s.cv, s.seed), s.seed)


def refit_choice(study, s, best, sizes):
    """The configuration the final fits use: ``best``; with ``--cv``, among the completed
    trials whose mean held-out score is within one standard error of ``best``'s (the
    one-standard-error rule, over ``best``'s fold scores), the one whose final fits can
    train the largest share of their planned epochs in a seed's share of the time left, then
    the best value. A saturated val metric ties configurations that cost several times more
    to refit (Medical MNIST: fold AUC 0.99996 against 0.99996); the refit that trains its
    epochs is worth more than the last digit."""
    import numpy as np
    from optuna.trial import TrialState

    folds = best.user_attrs.get(attrs.FOLD_SCORES)
    if not s.cv or not folds or len(folds) < 2:
        return best
    se = float(np.std(folds, ddof=1)) / np.sqrt(len(folds))
    tied = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.value is not None and t.value >= best.value - se]  # fmt: skip
    share = s.budget.time_left() / max(1, s.seeds)

    def trainable(trial) -> float:
        return min(1.0, share / max(_fit_estimate(trial, sizes), 1e-9))

    return max(tied, key=lambda t: (trainable(t), t.value, -t.number))


def _fit_estimate(trial, sizes) -> float:
    """Seconds one final fit of ``trial``'s configuration should take (with slack)."""
    from bench.search.budget import final_fit_estimate

    return final_fit_estimate(attrs.final_fit_seconds(trial, sizes))


def _fit_chosen(fit_splits, s, display, run_dir, best, cfg, keep: float):
    """The chosen configuration over the final seeds on ``fit_splits`` (:func:`final_splits`),
    keeping ``keep`` seconds for the other members (:func:`~bench.search.budget.member_time`);
    seeds are skipped when one more fit would overrun."""
    from bench.run.fit import fit_and_score
    from bench.train import Deadline

    seeds = final_seeds(s)
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
            cfg, fit_splits, seed=seed, img_size=s.img_size, device=s.device, run_dir=run_dir,
            deadline=Deadline(s.budget.final_share(len(seeds) - i, keep=keep)),
            plan_fit=_final_plan(best, cfg, fit_splits.train_val(), s),
        )  # fmt: skip
        last_s = time.monotonic() - started
        results.append(res)
        kept = (f"val {s.metric} {res.val_score:.4f}, best epoch {res.best_epoch}"
                if res.val_score is not None else f"refit on train + val, {res.best_epoch} "
                "epochs")  # fmt: skip
        display.log(f"seed {seed}: test auc {res.test['auc']:.4f} acc {res.test['acc']:.4f} "
                    f"({kept})")  # fmt: skip
    return results, skipped


def _fit_member(fit_splits, s, display, run_dir, trial, index: int, sizes):
    """Member ``index``'s configuration over the final fits that still fit in the budget:
    ``(family, [SeedResult])``."""
    from bench.run.fit import fit_and_score
    from bench.saved.fits import fit_name
    from bench.search.objective import best_config
    from bench.train import Deadline

    cfg = best_config(trial, s.space, s.metric)
    estimate = _fit_estimate(trial, sizes)
    fits = []
    for seed in final_seeds(s):
        left = s.budget.time_left()
        if left < estimate:
            display.log(
                f"ensemble member {index} (trial {trial.number}): seed {seed} and later "
                f"skipped, {left:.0f}s left, a fit needs {estimate:.0f}s"
            )
            break
        display.set_phase(f"ensemble member {index} (trial {trial.number}, seed {seed})")
        try:
            res = fit_and_score(
                cfg, fit_splits, seed=seed, img_size=s.img_size, device=s.device,
                run_dir=run_dir, deadline=Deadline(min(left, 1.5 * estimate)),
                plan_fit=_final_plan(trial, cfg, fit_splits.train_val(), s),
                name=fit_name(index, seed),
            )  # fmt: skip
        except BenchError as exc:  # a diverged refit: the member keeps the fits it has
            display.log(f"ensemble member {index} (trial {trial.number}): {exc}")
            break
        fits.append(res)
    return cfg.family, fits


def _final_plan(trial, cfg, data, s):
    """``plan_fit`` for a final fit: its epochs and train fraction (budget.final_plan) for
    the fit's deadline at the trial's epoch time, slowed by how much slower this machine is
    now (a fresh probe)."""
    from bench.search.budget import final_plan
    from bench.search.speed import augment_cost, measure_throughput

    def plan(model, augment, deadline) -> dict:
        then = attrs.trial_throughput(trial)
        slowdown = 1.0
        if then:
            now = measure_throughput(model, in_chans=data.spec.n_channels, img_size=s.img_size,
                                     device=s.device, ndim=data.spec.ndim)  # fmt: skip
            if augment is not None:
                now = 1.0 / (1.0 / now + augment_cost(augment, data, device=s.device))
            slowdown = max(1.0, float(then) / max(now, 1e-9))
        epochs, fraction = final_plan(
            cfg.hp.epochs, cfg.hp.train_fraction,
            epoch_s=attrs.epoch_seconds_for(trial, n_train=len(data.train), n_val=len(data.val)),
            seconds=deadline.remaining(), slowdown=slowdown, n_train=len(data.train),
            n_val=len(data.val),
        )  # fmt: skip
        return {"epochs": epochs, "train_fraction": fraction}

    return plan


def _write_run(run_dir: Path, study, s, best, cfg, results, skipped, ensembles: dict, *,
               search_s, final_s):  # fmt: skip
    """fits.json, config.json, trials.csv, the journal snapshot, then record.json."""
    import torch

    from bench.device import device_label
    from bench.files import atomic_write_text, copy_atomic, write_json, write_once_json
    from bench.models.registry import method_label
    from bench.results.records import RECORD_FILE, build_record
    from bench.run.fit import augment_train_seconds, write_fits
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
    fractions = sorted({r.train_fraction for r in results})
    if fractions != [cfg.hp.train_fraction]:
        info.append(f"final fits on {'/'.join(f'{f:.0%}' for f in fractions)} of train (the "
                    f"trial: {cfg.hp.train_fraction:.0%})")  # fmt: skip
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
        best_trial=best.number, cv=s.cv, jobs=s.jobs, **ensembles,
    )  # fmt: skip
    write_once_json(run_dir / RECORD_FILE, record.as_dict())
    return record
