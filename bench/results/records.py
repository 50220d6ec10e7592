"""Result records: :class:`Record` is the one definition of a record's fields, their meaning and
their units; :func:`build_record` is the one function that makes one (``bench run``, ``bench
train`` and ``bench peer`` all call it); :func:`load_record` reads any committed record, old
ones included (a field they lack gets its default).

A result is identified like automlbenchmark's: method x dataset (and size) x constraint, the
constraint being the budget (``3m``, ``10m``) or empty for a fixed configuration.
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import secrets
import subprocess
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, get_args, get_type_hints

from bench.config import format_seconds
from bench.errors import BenchError
from bench.runtime import safe_name

RECORD_FILE = "record.json"
KINDS = ("run", "train", "peer")


def _f(doc: str, default: Any = None, *, csv: bool = True, factory=None, required: str = ""):
    """A record field: its meaning (and unit), whether it is a column of ``results.csv``, and
    whether a record needs it to go into a table (``required``: "always", or "ok" for the
    scores of a run that did not fail)."""
    meta = {"doc": doc, "csv": csv, "required": required}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class Record:
    """One final evaluation. Columns of ``results.csv`` in order: identity, scores, search,
    provenance (style.md section 4); then the fields only the JSON holds."""

    # identity
    run_id: str = _f("{dataset}.{data_size}.{constraint or kind}.{utcstamp}.{rand4}", "",
                      required="always")  # fmt: skip
    source: str = _f("bench, or reference for a published row", "bench")
    method: str = _f("table label: Small CNN (28), AutoGluon MultiModal (28)", "",
                      required="always")  # fmt: skip
    family: str = _f("registry name of the model family (autogluon/constant for peers)", "")
    dataset: str = _f("MedMNIST flag or registry name", "", required="always")
    task: str = _f("the medmnist.INFO task string", "")
    data_size: int = _f("size of the source data (npz file): 28/64/128/224", 0,
                         required="always")  # fmt: skip
    img_size: int = _f("model input size after resize", 0, required="always")
    kind: str = _f("how it was made: run (search + final fits), train (fixed config), peer", "")
    constraint: str = _f("the budget as a label from budget_s (3m, 1h30m); empty without", "")
    cv: int = _f("cross-validation folds over train+val (0: the official val split)", 0)
    jobs: int = _f("local search processes of a run (bench run --jobs)", 1)
    # scores
    test_auc_mean: float | None = _f("test AUC (medmnist getAUC), mean over seeds",
                                     required="ok")  # fmt: skip
    test_auc_std: float | None = _f("sample std of test AUC over seeds (0 for one seed)")
    test_acc_mean: float | None = _f("test ACC (medmnist getACC, threshold 0.5), mean",
                                     required="ok")  # fmt: skip
    test_acc_std: float | None = _f("sample std of test ACC over seeds")
    seed_ensemble_test_auc: float | None = _f("test AUC of the seed fits' mean probabilities")
    seed_ensemble_test_acc: float | None = _f("test ACC of the seed ensemble")
    ensemble_test_auc: float | None = _f("test AUC of the selected ensemble (Caruana 2004 on "
                                         "val; one member: the seed ensemble)")  # fmt: skip
    ensemble_test_acc: float | None = _f("test ACC of the selected ensemble")
    n_test: int | None = _f("test items scored (the bootstrap resamples them)")
    test_auc_lo: float | None = _f("single-fit mean test AUC: lower end of its 95 % interval "
                                   "(percentile bootstrap over test items)")  # fmt: skip
    test_auc_hi: float | None = _f("single-fit mean test AUC: upper end of its 95 % interval")
    test_acc_lo: float | None = _f("single-fit mean test ACC: lower end of its 95 % interval")
    test_acc_hi: float | None = _f("single-fit mean test ACC: upper end of its 95 % interval")
    test_balanced_acc: float | None = _f("balanced accuracy (sklearn), mean over the fits")
    test_ece: float | None = _f("expected calibration error, 15 equal bins (per label for "
                                "multi-label; top label for multi-class), mean over the fits")
    test_brier: float | None = _f("Brier score (sklearn brier_score_loss), mean over the fits")
    seed_ensemble_test_auc_lo: float | None = _f("seed ensemble test AUC, 95 % interval low")
    seed_ensemble_test_auc_hi: float | None = _f("seed ensemble test AUC, 95 % interval high")
    seed_ensemble_test_acc_lo: float | None = _f("seed ensemble test ACC, 95 % interval low")
    seed_ensemble_test_acc_hi: float | None = _f("seed ensemble test ACC, 95 % interval high")
    seed_ensemble_test_balanced_acc: float | None = _f("seed ensemble balanced accuracy")
    seed_ensemble_test_ece: float | None = _f("seed ensemble ECE (as test_ece)")
    seed_ensemble_test_brier: float | None = _f("seed ensemble Brier score")
    ensemble_test_auc_lo: float | None = _f("selected ensemble test AUC, 95 % interval low")
    ensemble_test_auc_hi: float | None = _f("selected ensemble test AUC, 95 % interval high")
    ensemble_test_acc_lo: float | None = _f("selected ensemble test ACC, 95 % interval low")
    ensemble_test_acc_hi: float | None = _f("selected ensemble test ACC, 95 % interval high")
    ensemble_test_balanced_acc: float | None = _f("selected ensemble balanced accuracy")
    ensemble_test_ece: float | None = _f("selected ensemble ECE (as test_ece)")
    ensemble_test_brier: float | None = _f("selected ensemble Brier score")
    ci_n_boot: int | None = _f("bootstrap resamples behind every interval (2000)")
    ci_seed: int | None = _f("seed of the bootstrap resamples (the same for every record)")
    n_seeds: int = _f("final fits scored", 0)
    seeds: str = _f("their seeds, ;-separated", "")
    # search
    objective: str = _f("validation metric optimised (auc, acc, or the peer's own)", "")
    val_score: float | None = _f("best trial's val score (train: mean over seeds)")
    augment: str = _f("augmentation policy of the reported model", "none")
    params: dict = _f("resolved configuration: model kwargs, TrainHP fields, augmentation "
                      "params (prefixed); a peer's own settings", factory=dict)  # fmt: skip
    config_hash: str = _f("sha256[:12] of the command's configuration + params", "")
    n_params: int | None = _f("model parameters")
    budget_s: int = _f("budget, s (0 without one)", 0)
    search_s: int = _f("time searching configurations, s (0 without a bench search)", 0)
    final_s: int = _f("time fitting and scoring the reported model(s), s", 0)
    wall_s: int = _f("whole command from process start, s", 0)
    n_trials: int = _f("study trials (all states)", 0)
    n_complete: int = _f("completed trials", 0)
    n_pruned: int = _f("pruned trials", 0)
    n_failed: int = _f("failed trials", 0)
    n_unfinished: int = _f("trials running or waiting as the record was written (other "
                           "workers' in a shared study)", 0)  # fmt: skip
    sampler: str = _f("Optuna sampler", "")
    pruner: str = _f("Optuna pruner", "")
    study_name: str = _f("bench.{dataset}.{data_size}.{space_hash8}.{budget}.s{seed}.r{k}, or "
                         "--study as given", "")  # fmt: skip
    repeat: int = _f("index k of the run's study (1: the first run of this command's key)", 1)
    search_seed: int | None = _f("seed of the search sampler, folds and final fits (--seed "
                                 "for k = 1)")  # fmt: skip
    storage_kind: str = _f("journal/sqlite/postgresql; never the URL (credentials)", "")
    device: str = _f("cpu or cuda:<name>", "")
    # provenance
    bench_version: str = _f("", "")
    git_sha: str = _f("", "")
    torch_version: str = _f("of the interpreter that trained the model", "")
    optuna_version: str = _f("", "")
    medmnist_version: str = _f("", "")
    python_version: str = _f("of the interpreter that trained the model", "")
    utc: str = _f("ISO 8601 completion time", "", required="always")
    citation: str = _f("for published rows and peers", "")
    info: str = _f("free text: warnings, overrun, failure reason", "")
    # JSON only
    status: str = _f("ok or failed", "ok", csv=False)
    per_seed: list = _f("[{seed, test_auc, test_acc, val_score (None: a --cv refit), "
                        "best_epoch, train_fraction}]",
                        csv=False,
                        factory=list)  # fmt: skip
    hardware: dict = _f("cpu model, cores, gpu", csv=False, factory=dict)
    epochs: int | None = _f("final-fit epochs (the most of any seed)", csv=False)
    augment_train_s: float = _f("final fits' time training augmentation models (DCGAN), s",
                                0.0, csv=False)  # fmt: skip
    best_trial: int | None = _f("Optuna number of the trial chosen on val", csv=False)
    peer_versions: dict = _f("a peer's own package versions", csv=False, factory=dict)
    ensemble_members: list = _f("the selected ensemble: [{trial, family, weight, seeds}]",
                                csv=False, factory=list)  # fmt: skip
    test_predictions: str = _f("the test probabilities of every fit and ensemble, with the "
                               "test labels (.npz, float32; relative to the run folder; "
                               "leaderboards: records/<run_id>.npz)", "", csv=False)  # fmt: skip
    fit_intervals: list = _f("per fit: [{fit, test_auc_ci, test_acc_ci, balanced_acc, ece, "
                             "brier}]", csv=False, factory=list)  # fmt: skip
    models: list = _f("saved fits (metadata files, relative to the run folder)", csv=False,
                      factory=list)  # fmt: skip
    extra: dict = _f("fields of other producers, kept as they are", csv=False, factory=dict)

    def as_dict(self) -> dict:
        """The JSON form (``extra`` merged back at the top level)."""
        data = asdict(self)
        extra = data.pop("extra")
        return {**extra, **data}

    @property
    def ok(self) -> bool:
        return self.status == "ok"


COLUMNS = tuple(f.name for f in fields(Record) if f.metadata["csv"])
FIELD_NAMES = frozenset(f.name for f in fields(Record)) - {"extra"}


@functools.cache
def required_fields(when: str) -> tuple[tuple[str, type], ...]:
    """(name, type) of the fields a record needs to go into a table, in Record's order:
    ``when="always"``, or ``"ok"`` for those a run that did not fail needs as well (the type
    without its ``| None``)."""
    hints = get_type_hints(Record)
    plain = {n: next((a for a in get_args(h) if a is not type(None)), h) for n, h in hints.items()}
    return tuple((f.name, plain[f.name]) for f in fields(Record) if f.metadata["required"] == when)


def is_int(value: Any) -> bool:
    """An int field's value (``True`` is not one)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A float field's value: an int or a float (``True`` is not one)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def budget_label(seconds: float) -> str:
    """``180 -> 3m``, ``5400 -> 1h30m``, ``45 -> 45s``: the constraint of a record
    (:func:`bench.config.format_seconds` in its budget form)."""
    return format_seconds(seconds, padded=False)


def constraint_of(data: dict) -> str:
    """The constraint of a record dict: its own field, else its budget (old records)."""
    if data.get("constraint") is not None:
        return str(data["constraint"])
    budget = data.get("budget_s")
    if data.get("kind") == "train" or not isinstance(budget, (int, float)) or budget <= 0:
        return ""
    return budget_label(budget)


def load_record(data: dict) -> Record:
    """A Record from its JSON form; fields an old record lacks get their defaults."""
    known = {k: v for k, v in data.items() if k in FIELD_NAMES}
    extra = {k: v for k, v in data.items() if k not in FIELD_NAMES}
    known["constraint"] = constraint_of(data)
    if isinstance(known.get("seeds"), list):
        known["seeds"] = ";".join(str(s) for s in known["seeds"])
    return Record(**known, extra=extra)


def read_record(path: Path) -> dict:
    """Load one record file as a dict; a malformed one is a BenchError naming the file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BenchError(f"{path}: not a readable record ({exc})") from None
    if not isinstance(data, dict) or "run_id" not in data or "dataset" not in data:
        raise BenchError(f"{path}: not a bench record (no run_id/dataset)")
    return data


def utc_stamp() -> str:
    """``20250301T101500Z``: the time part of a run id."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def utc_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def make_run_id(flag: str, data_size: int, *, kind: str, constraint: str) -> str:
    """``{dataset}.{data_size}.{constraint or kind}.{utcstamp}.{rand4}`` with path-safe parts:
    the identity of a result (the chosen family is a field, known only at the end)."""
    part = safe_name(constraint or kind)
    return f"{safe_name(flag)}.{data_size}.{part}.{utc_stamp()}.{secrets.token_hex(2)}"


def config_hash(config: dict, params: dict) -> str:
    """sha256[:12] of a command's resolved configuration and the model's params."""
    text = json.dumps({"config": config, "params": params}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation over seeds (std 0 for one seed)."""
    import numpy as np

    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def git_sha() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def environment() -> dict:
    """Versions, code identity and hardware for a record (imports torch, runs git)."""
    import importlib.metadata as md

    from bench import __version__
    from bench.device import hardware

    def ver(pkg: str) -> str:
        try:
            return md.version(pkg)
        except md.PackageNotFoundError:
            return ""

    return {
        "bench_version": __version__,
        "git_sha": git_sha(),
        "torch_version": ver("torch"),
        "optuna_version": ver("optuna"),
        "medmnist_version": ver("medmnist"),
        "python_version": platform.python_version(),
        "hardware": hardware(),
    }


def build_record(
    *,
    run_id: str,
    kind: str,
    spec,
    data_size: int,
    method: str,
    family: str,
    per_seed: list[dict],
    config: dict,
    params: dict,
    env: dict | None = None,
    info: list[str] | None = None,
    **values: Any,
) -> Record:
    """The record of one final evaluation: identity from ``spec``, scores aggregated from
    ``per_seed`` (empty: a failed run), ``config_hash`` from ``config`` and ``params``,
    provenance from ``env`` (:func:`environment`); ``values`` are the other fields by name.

    Raises:
        TypeError: a name in ``values`` that is not a Record field.
    """
    unknown = sorted(set(values) - FIELD_NAMES)
    if unknown:
        raise TypeError(f"not record fields: {unknown}")
    env = env if env is not None else environment()
    scores: dict[str, Any] = {}
    if per_seed:
        for metric in ("auc", "acc"):
            mean, std = mean_std([p[f"test_{metric}"] for p in per_seed])
            scores.update({f"test_{metric}_mean": mean, f"test_{metric}_std": std})
    times = {k: int(round(values.pop(k))) for k in ("search_s", "final_s", "wall_s") if k in values}
    budget_s = int(values.pop("budget_s", 0) or 0)
    return Record(
        run_id=run_id,
        kind=kind,
        status="ok" if per_seed else "failed",
        method=method,
        family=family,
        dataset=spec.name,
        task=spec.task,
        data_size=data_size,
        constraint=budget_label(budget_s) if budget_s and kind != "train" else "",
        budget_s=budget_s,
        n_seeds=len(per_seed),
        seeds=";".join(str(p["seed"]) for p in per_seed),
        per_seed=per_seed,
        params=params,
        config_hash=config_hash(config, params),
        utc=utc_iso(),
        info="; ".join(i for i in (info or []) if i),
        **scores,
        **times,
        **env,
        **values,
    )
