"""``bench run`` and ``bench search``: validate, load once, search within the budget, then
(``run`` only) retrain the best configuration over seeds and score it once on test.

Budget (all on the monotonic clock, from process start ``t0``; ``end = t0 + budget``):

- ``margin`` = 2 % of the budget (3 s to 60 s) is kept for writing artefacts.
- ``reserve`` for the final fits = seeds x (the best trial's fit time x 1.2 + 1 s), at least 10 %
  of the budget, at most half of what is left after loading; 25 % until a trial completes.
- the search ends at ``end - margin - reserve`` (re-evaluated after every trial); every
  trial gets a Deadline at ``min(search end, trial start + trial cap)``.
- final fit ``i`` gets a Deadline at an equal share of the time left before ``end - margin``.

Only :func:`finalize` holds a :class:`~bench.data.splits.Splits`; the search gets a TrainVal.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import records
from bench.errors import BenchError, ConfigError

REFERENCE_FILES = (
    Path(__file__).resolve().parents[1] / "leaderboards" / "reference" / "medmnist_v2.csv",
    Path(__file__).resolve().parents[2] / "shared" / "reference" / "medmnist_v2_2d.csv",
)


def process_start() -> float:
    """Monotonic time at which this process started (now, where /proc is unavailable)."""
    now = time.monotonic()
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        start = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19]) / ticks
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return now
    age = uptime - start
    return now - age if 0 <= age < 3600 else now


@dataclass
class Settings:
    """Everything ``bench run``/``bench search`` decided before any work."""

    t0: float
    budget_s: int
    end: float
    margin: float
    spec: Any
    data_size: int
    img_size: int
    space: Any
    study_name: str
    storage: Any
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
    families: list[str] = field(default_factory=list)
    augment: list[str] = field(default_factory=list)

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
            "budget_s": self.budget_s,
            "study_name": self.study_name,
            "storage_kind": self.storage_kind,
        }


def cmd_run(args: argparse.Namespace) -> int:
    """``bench run``: search, then the multi-seed final evaluation and a record."""
    return _main(args, finalize=True)


def cmd_search(args: argparse.Namespace) -> int:
    """``bench search``: a worker that joins the study and only searches."""
    return _main(args, finalize=False)


def space_hash(space, *, metric: str, img_size: int) -> str:
    """sha256 of the resolved space tree plus what the objective measures."""
    tree = {"space": space.tree(), "metric": metric, "img_size": img_size}
    return hashlib.sha256(json.dumps(tree, sort_keys=True, default=str).encode()).hexdigest()


def check_writable(out: Path) -> None:
    """Create ``out`` and prove a file can be written there, or one-line BenchError."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".bench-write-test-"):
            pass
    except OSError as exc:
        raise BenchError(
            f"--out {out} is not writable ({exc.strerror or exc}); choose another folder"
        ) from None


def prepare(args: argparse.Namespace, *, finalize: bool, t0: float) -> Settings:
    """Validate every input (each problem one line, exit 2) before any work is done."""
    from bench.config import parse_budget, parse_list
    from bench.data.catalog import check_size, get_dataset
    from bench.data.load import default_size
    from bench.search import open_storage, storage_kind, study_name
    from bench.spaces import resolve_space

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
    if spec.ndim != 2:
        raise ConfigError(f"{spec.name} is 3D; bench run searches the 2D families only")
    img_size = args.img_size or data_size
    families = parse_list(args.families)
    augment = parse_list(args.augment)
    space = resolve_space(families or None, augment=augment or None, img_size=img_size)
    name = args.study or study_name(
        spec.name, data_size, space_hash(space, metric=args.metric, img_size=img_size)
    )
    out = Path(args.out).expanduser()
    check_writable(out)
    kind = storage_kind(args.storage)
    journal = None
    if kind == "journal":
        journal = (
            Path(args.storage).expanduser()
            if args.storage
            else out / "studies" / (name + ".journal")
        )
    storage = open_storage(args.storage, default_journal=journal)
    from bench.device import resolve_device

    device = resolve_device(args.device)
    margin = min(60.0, max(3.0, 0.02 * budget_s))
    return Settings(
        t0=t0, budget_s=budget_s, end=t0 + budget_s, margin=margin, spec=spec,
        data_size=data_size, img_size=img_size, space=space, study_name=name,
        storage=storage, storage_kind=kind, journal_path=journal, out=out, device=device,
        metric=args.metric, sampler=args.sampler, pruner=args.pruner, seed=args.seed,
        seeds=seeds, finalize=finalize, quiet=args.quiet, n_trials=n_trials,
        data_dir=args.data_dir, families=families, augment=augment,
    )  # fmt: skip


def _main(args: argparse.Namespace, *, finalize: bool) -> int:
    t0 = process_start()
    s = prepare(args, finalize=finalize, t0=t0)
    import optuna

    from bench.data.load import load_splits
    from bench.display import Display
    from bench.search import (
        budget_epochs,
        fail_dead_local_trials,
        make_pruner,
        make_sampler,
        warm_up,
        worker_seed,
    )

    threads = cpu_threads(s.device)
    warm_up()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    splits = load_splits(s.spec, s.data_size, s.data_dir)
    data = splits.train_val()
    if not finalize:
        splits = None  # a search worker never holds the test split
    max_epochs = budget_epochs(s.budget_s)
    sampler_seed = worker_seed(s.seed, worker=not finalize)
    study = optuna.create_study(
        storage=s.storage,
        sampler=make_sampler(s.sampler, sampler_seed),
        pruner=make_pruner(s.pruner, max_epochs),
        study_name=s.study_name,
        direction="maximize",
        load_if_exists=True,
    )
    _describe_study(study, s)
    if s.storage_kind == "journal":
        fail_dead_local_trials(study)
    if not study.get_trials(deepcopy=False):
        study.enqueue_trial(first_trial(s), skip_if_exists=True)
    title = (
        f"{'run' if finalize else 'search'} {s.study_name} ({s.spec.name}, budget {args.budget})"
    )
    if threads is not None:
        title += f", {threads} cpu thread{'s' if threads > 1 else ''}"
    with Display(title, end=s.end, quiet=s.quiet, metric=s.metric) as display:
        display.set_counts(study)
        search_s = search(study, data, s, display, max_epochs=max_epochs, sampler_seed=sampler_seed)
        if not finalize:
            display.set_counts(study)
            display.log(f"search finished: {display.status()}")
            return 0
        record = finalize_run(splits, study, s, display, search_s=search_s)
    print_summary(record)
    return 0


def cpu_threads(device) -> int | None:
    """On CPU, set torch's intra-op threads to the cores that are idle (load average
    subtracted, at least 1) unless ``OMP_NUM_THREADS`` is set: on a shared machine, more
    threads than free cores make small models tens of times slower (spinning threads)."""
    import torch

    if getattr(device, "type", str(device)) != "cpu" or os.environ.get("OMP_NUM_THREADS"):
        return None
    cores = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except OSError:
        busy = 0.0
    threads = max(1, min(cores, int(cores - busy + 0.5)))
    torch.set_num_threads(threads)
    return threads


def search(study, data, s: Settings, display, *, max_epochs: int, sampler_seed: int) -> float:
    """Run trials until the search end (or ``n_trials``); returns the seconds spent."""
    from optuna.trial import TrialState

    from bench.search import Objective, TrialFailed, trial_cap

    start = time.monotonic()
    best = {"value": None, "fit_s": None}
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    if done:
        top = max(done, key=lambda t: t.value)
        best.update(value=top.value, fit_s=final_fit_estimate(top))
    left_after_load = s.end - s.margin - start

    def reserve() -> float:
        if not s.finalize:
            return 0.0
        if best["fit_s"] is None:
            est = 0.25 * s.budget_s
        else:
            est = s.seeds * (float(best["fit_s"]) * 1.2 + 1.0)
        return min(max(est, 0.1 * s.budget_s), 0.5 * left_after_load)

    def search_end() -> float:
        return s.end - s.margin - reserve()

    def on_trial(st, trial) -> None:
        if trial.state == TrialState.COMPLETE and trial.value is not None:
            if best["value"] is None or trial.value > best["value"]:
                best.update(value=trial.value, fit_s=final_fit_estimate(trial))
        if time.monotonic() >= search_end() - 2.0:
            st.stop()

    objective = Objective(
        data,
        s.space,
        device=s.device,
        metric=s.metric,
        img_size=s.img_size,
        seed=s.seed,
        max_epochs=max_epochs,
        search_end=search_end,
        cap_s=trial_cap(search_end() - start),
        on_event=display.event,
        sampler_seed=sampler_seed,
    )
    if search_end() - time.monotonic() > 2.0:
        study.optimize(
            objective,
            n_trials=s.n_trials,
            callbacks=[display.trial_done, on_trial],
            catch=(TrialFailed,),
        )
    return time.monotonic() - start


def first_trial(s: Settings) -> dict:
    """Parameters of the first trial of an empty study: the family that trains fastest at
    its defaults (measured), with its builder's and TrainHP's defaults: a sensible model
    even when the budget allows only a few trials."""
    from bench.models.registry import create_model
    from bench.search import measure_throughput
    from bench.spaces import default_params

    def speed(family: str) -> float:
        params = default_params(s.space, family)
        kwargs = {k.split(".", 1)[1]: v for k, v in params.items() if k.startswith(family + ".")}
        try:
            model = create_model(
                family,
                num_classes=s.spec.n_outputs,
                in_chans=s.spec.n_channels,
                img_size=s.img_size,
                **kwargs,
            )
            return measure_throughput(
                model, in_chans=s.spec.n_channels, img_size=s.img_size, device=s.device
            )
        except Exception:  # a plugin that cannot build its defaults is simply not first
            return 0.0

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


def final_fit_estimate(trial) -> float | None:
    """Seconds one final fit of ``trial``'s configuration should take: its median epoch time
    x its planned epochs (first-epoch warm-up excluded), else its whole fit time."""
    attrs = trial.user_attrs
    if "epoch_seconds" in attrs and "epochs" in attrs:
        return float(attrs["epoch_seconds"]) * int(attrs["epochs"])
    return attrs.get("train_seconds")


def _describe_study(study, s: Settings) -> None:
    """Study user attrs (set once) so a dashboard or a later run knows what it holds."""
    if "dataset" in study.user_attrs:
        return
    study.set_user_attr("dataset", s.spec.name)
    study.set_user_attr("data_size", s.data_size)
    study.set_user_attr("img_size", s.img_size)
    study.set_user_attr("metric", s.metric)
    study.set_user_attr("space", json.dumps(s.space.tree(), sort_keys=True, default=str))
    try:
        study.set_metric_names([f"val_{s.metric}"])
    except (AttributeError, NotImplementedError):
        pass


def _counts(study) -> dict:
    from optuna.trial import TrialState

    states = [t.state for t in study.get_trials(deepcopy=False)]
    return {
        "n_trials": len(states),
        "n_complete": states.count(TrialState.COMPLETE),
        "n_pruned": states.count(TrialState.PRUNED),
        "n_failed": states.count(TrialState.FAIL),
    }


def _std(values: list[float]) -> float:
    import numpy as np

    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _file_flag(spec) -> str:
    """The dataset part of prediction file names (the medmnist flag for catalog sets)."""
    if spec.kind == "medmnist":
        return spec.name
    return "".join(
        c if c.isalnum() or c in "_-" else "-" for c in Path(spec.path or spec.name).stem
    )


def finalize_run(splits, study, s: Settings, display, *, search_s: float) -> dict:
    """Retrain the best trial's configuration with ``s.seeds`` seeds, score each once on
    test, write the run folder; ``record.json`` last. Returns the record."""
    import numpy as np
    from optuna.trial import TrialState

    from bench.data.splits import Splits
    from bench.device import device_label, hardware
    from bench.metrics import classification_report
    from bench.models.registry import create_model, get_model_spec
    from bench.records import (
        RECORD_FILE,
        make_run_id,
        prediction_file_name,
        provenance,
        utc_iso,
        write_once_json,
        write_predictions,
    )
    from bench.search import best_config
    from bench.train import Deadline, fit, predict, set_seed

    assert isinstance(splits, Splits)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        reasons = {t.user_attrs.get("fail_reason") for t in study.trials} - {None}
        why = f" (trials failed: {sorted(reasons)[0]})" if reasons else ""
        raise BenchError(
            f"no trial completed within the budget{why}; give a larger --budget or other --families"
        )
    best = study.best_trial  # chosen on the val score only
    cfg = best_config(best, s.space, s.metric)
    family, hp = cfg["family"], cfg["hp"]
    fspec = get_model_spec(family)
    run_id = make_run_id(_file_flag(s.spec), s.data_size, family)
    run_dir = s.out / run_id
    (run_dir / "predictions").mkdir(parents=True, exist_ok=False)
    final_start = time.monotonic()
    final_end = s.end - s.margin
    data = splits.train_val()
    per_seed, fits, info, epochs = [], [], [], []
    n_params = 0
    for i in range(s.seeds):
        seed = s.seed + i
        display.set_phase(f"final fit {i + 1}/{s.seeds} (seed {seed}, {family})")
        share = max(1.0, final_end - time.monotonic()) / (s.seeds - i)
        deadline = Deadline(share)
        set_seed(seed)
        model = create_model(
            family,
            num_classes=s.spec.n_outputs,
            in_chans=s.spec.n_channels,
            img_size=s.img_size,
            **cfg["model_params"],
        )
        n_params = int(sum(p.numel() for p in model.parameters()))
        augment = None
        if cfg["aug_name"] != "none":
            from bench.augment.registry import build_augmentation

            augment = build_augmentation(
                cfg["aug_name"], data=data, img_size=s.img_size, seed=seed, device=s.device,
                deadline=deadline, **cfg["aug_hp"],
            )  # fmt: skip
        slowdown = _slowdown(best, model, augment, data, s)
        hp_seed = final_hp(hp, best, deadline.remaining(), slowdown=slowdown)
        epochs.append(hp_seed.epochs)
        result = fit(
            model, data, hp_seed, device=s.device, seed=seed, img_size=s.img_size,
            augment=augment, deadline=deadline,
        )  # fmt: skip
        if result.stopped == "deadline":
            info.append(f"seed {seed} stopped at its deadline after {len(result.history)} epochs")
        scores = predict(
            model, splits.test.images, spec=s.spec, device=s.device, img_size=s.img_size,
            mean=hp.mean, std=hp.std,
        )  # fmt: skip
        report = classification_report(splits.test.labels, scores, s.spec.task)
        fname = prediction_file_name(
            _file_flag(s.spec), s.data_size, "test", report["auc"], report["acc"], f"seed{seed}"
        )
        write_predictions(run_dir / "predictions" / fname, scores)
        per_seed.append({
            "seed": seed, "test_auc": float(report["auc"]), "test_acc": float(report["acc"]),
            "val_score": float(result.best_val), "best_epoch": result.best_epoch,
        })  # fmt: skip
        fits.append({
            "seed": seed, "epochs": hp_seed.epochs, "best_epoch": result.best_epoch,
            "best_val": result.best_val,
            "stopped": result.stopped, "seconds": result.seconds,
            "history": result.history_dicts(), "test": report,
            "augment_info": dict(getattr(augment, "info", None) or {}),
        })  # fmt: skip
        display.log(
            f"seed {seed}: test auc {report['auc']:.4f} acc {report['acc']:.4f} "
            f"(val {s.metric} {result.best_val:.4f}, best epoch {result.best_epoch})"
        )
    final_s = time.monotonic() - final_start
    display.set_counts(study)
    params = {**cfg["model_params"], **_bare_train_params(best, cfg)}
    config = s.config()
    config_hash = hashlib.sha256(
        json.dumps({"config": config, "params": params}, sort_keys=True, default=str).encode()
    ).hexdigest()[:12]
    aucs = [p["test_auc"] for p in per_seed]
    accs = [p["test_acc"] for p in per_seed]
    _write_json(run_dir / "fits.json", fits)
    import torch

    _write_json(
        run_dir / "config.json",
        {**config, "max_epochs": hp.epochs, "torch_threads": torch.get_num_threads()},
    )
    _write_trials_csv(run_dir / "trials.csv", study)
    if s.journal_path is not None and s.journal_path.is_file():
        _snapshot(s.journal_path, run_dir / "journal.log")
    wall_s = time.monotonic() - s.t0
    if wall_s > s.budget_s:
        info.append(f"budget overrun: {wall_s:.0f}s of {s.budget_s}s")
    record = {
        "run_id": run_id,
        "source": "bench",
        "kind": "run",
        "status": "ok",
        "method": f"{fspec.label or family} ({s.img_size})",
        "family": family,
        "dataset": s.spec.name,
        "task": s.spec.task,
        "data_size": s.data_size,
        "img_size": s.img_size,
        "test_auc_mean": float(np.mean(aucs)),
        "test_auc_std": _std(aucs),
        "test_acc_mean": float(np.mean(accs)),
        "test_acc_std": _std(accs),
        "n_seeds": s.seeds,
        "seeds": ";".join(str(p["seed"]) for p in per_seed),
        "objective": s.metric,
        "val_score": float(best.value),
        "augment": cfg["aug_name"],
        "params": params,
        "config_hash": config_hash,
        "n_params": n_params,
        "budget_s": s.budget_s,
        "search_s": int(round(search_s)),
        "final_s": int(round(final_s)),
        "wall_s": int(round(wall_s)),
        **_counts(study),
        "sampler": s.sampler,
        "pruner": s.pruner,
        "study_name": s.study_name,
        "storage_kind": s.storage_kind,
        "device": device_label(s.device),
        **provenance(),
        "utc": utc_iso(),
        "citation": "",
        "info": "; ".join(info),
        "per_seed": per_seed,
        "hardware": hardware(),
        "epochs": max(epochs),
        "augment_train_s": records.augment_train_seconds(fits),
        "best_trial": best.number,
    }
    write_once_json(run_dir / RECORD_FILE, record)
    record["run_dir"] = str(run_dir)
    return record


def _slowdown(trial, model, augment, data, s: Settings) -> float:
    """How much slower this machine is now than when ``trial`` ran (a fresh speed probe
    against the trial's), at least 1: a shared machine's speed varies a lot."""
    from bench.search import augment_cost, measure_throughput

    then = trial.user_attrs.get("throughput_with_augment") or trial.user_attrs.get("throughput")
    if not then:
        return 1.0
    spec = data.spec
    now = measure_throughput(model, in_chans=spec.n_channels, img_size=s.img_size, device=s.device)
    if augment is not None:
        now = 1.0 / (1.0 / now + augment_cost(augment, data, device=s.device))
    return max(1.0, float(then) / max(now, 1e-9))


def final_hp(hp, trial, seconds: float, *, slowdown: float = 1.0):
    """``hp`` with its epochs cut to what fits in ``seconds`` at the trial's measured epoch
    time times ``slowdown`` (so a cosine or step schedule runs to its end instead of being
    cut mid-way)."""
    import dataclasses

    epoch_s = trial.user_attrs.get("epoch_seconds")
    if not epoch_s:
        return hp
    fit_epochs = int(seconds / (float(epoch_s) * slowdown * 1.15))
    return dataclasses.replace(hp, epochs=max(1, min(hp.epochs, fit_epochs)))


def _bare_train_params(best, cfg: dict) -> dict:
    """The trial's common parameters under their bare names, plus the planned epochs."""
    hp = cfg["hp"]
    out = {k: v for k, v in best.params.items() if "." not in k and k != "family"}
    out.update({"epochs": hp.epochs, "train_fraction": hp.train_fraction})
    return out


def _write_json(path: Path, data) -> None:
    from bench.records import _jsonable, atomic_write_text

    atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True, default=_jsonable) + "\n")


def _write_trials_csv(path: Path, study) -> None:
    from bench.records import atomic_write_text

    frame = study.trials_dataframe()
    atomic_write_text(path, frame.to_csv(index=False))


def _snapshot(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` through a temporary file."""
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


# -- summary ---------------------------------------------------------------------------------


def reference_rows(dataset: str) -> list[tuple[str, float, float]]:
    """Published ``(method, auc, acc)`` rows for ``dataset`` (MedMNIST v2 table), if the
    reference CSV is present; long (``method,dataset,test_auc_mean``) or wide layout."""
    for path in REFERENCE_FILES:
        if not path.is_file():
            continue
        with path.open(newline="", encoding="utf-8") as f:
            rows = [r for r in csv.DictReader(f) if r.get("dataset") == dataset]
        out = []
        for r in rows:
            if "method" in r:
                auc = r.get("test_auc_mean") or r.get("auc")
                acc = r.get("test_acc_mean") or r.get("acc")
                if auc and acc:
                    out.append((r["method"], float(auc), float(acc)))
                continue
            for key, value in r.items():
                if key.endswith("_auc") and value:
                    base = key[: -len("_auc")]
                    acc = r.get(f"{base}_acc")
                    if acc:
                        out.append((_pretty(base), float(value), float(acc)))
        if out:
            return out
    return []


def _pretty(base: str) -> str:
    names = {"resnet18": "ResNet-18", "resnet50": "ResNet-50", "autosklearn": "auto-sklearn",
             "autokeras": "AutoKeras", "google_automl_vision": "Google AutoML Vision"}  # fmt: skip
    head, _, size = base.rpartition("_")
    if size.isdigit() and head in names:
        return f"{names[head]} ({size})"
    return names.get(base, base)


def print_summary(record: dict) -> None:
    """Our row beside the published rows for the dataset (stdout)."""
    from rich.console import Console
    from rich.table import Table

    n = record["n_seeds"]
    table = Table(title=f"{record['dataset']}: test AUC / ACC ({n} seed{'s' if n > 1 else ''})")
    for col in ("method", "AUC", "ACC", "source"):
        table.add_column(col)
    table.add_row(
        record["method"],
        f"{record['test_auc_mean']:.3f} ± {record['test_auc_std']:.3f}",
        f"{record['test_acc_mean']:.3f} ± {record['test_acc_std']:.3f}",
        "bench (this run)",
    )
    for method, auc, acc in reference_rows(record["dataset"]):
        table.add_row(method, f"{auc:.3f}", f"{acc:.3f}", "MedMNIST v2")
    console = Console()
    console.print(table)
    console.print(
        f"trials {record['n_trials']} (complete {record['n_complete']}, pruned "
        f"{record['n_pruned']}, failed {record['n_failed']}); search {record['search_s']}s, "
        f"final {record['final_s']}s, wall {record['wall_s']}s of {record['budget_s']}s; "
        f"record {record['run_dir']}/record.json",
        highlight=False,
    )
