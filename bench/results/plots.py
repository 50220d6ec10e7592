"""``bench report RUN_DIR``: PNGs of one run and a text summary, in ``RUN_DIR/plots/``.

The confusion matrix and the ROC curves are those of the selected ensemble, the answer
``bench predict`` gives by default and the record's ``ensemble_test_*`` figures score, from
``test_predictions.npz`` (:mod:`bench.results.answer`); a run made before those were kept
falls back to seed 0's matrix in ``fits.json``, and says so. Learning curves come from
``fits.json``; Optuna's optimisation history and parameter importances from ``trials.csv``
(an in-memory study rebuilt with ``optuna.trial.create_trial``, so it works whatever storage
the run used); a DCGAN sample grid is copied in when the run left one; ``report.md``
(:func:`bench.results.summary.report_markdown`) lists the figures and every file written.
matplotlib and optuna are imported inside the functions.
"""

from __future__ import annotations

import argparse
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.errors import BenchError
from bench.files import atomic_path, atomic_write_text, copy_atomic
from bench.results.answer import Curve, curve_kind, mean_auc, roc_curves, run_answer, scored
from bench.results.predictions import TEST_PREDICTIONS, load_test_predictions
from bench.results.records import RECORD_FILE, read_record
from bench.results.summary import REPORT_FILE, report_markdown

FITS_FILE = "fits.json"
TRIALS_FILE = "trials.csv"
DCGAN_SAMPLES = "dcgan_samples.png"
_FIXED_STATES = ("COMPLETE", "PRUNED", "FAIL")
# Completed trials below which parameter importances are not drawn. A floor, not a guarantee:
# bench's TPE sampler draws its first 10 trials at random (Optuna's n_startup_trials), so
# fewer describe a handful of random points over a space of 6-10 parameters; in the tests'
# toy study, fANOVA on 5 completed trials ranked `family` first, on 6 or more `lr`, which
# drives the objective.
MIN_IMPORTANCE_TRIALS = 10


@dataclass
class Report:
    """What ``bench report`` wrote: each file with what it shows, the notes on what it skipped,
    and the numbers behind the test plots (the confusion matrix plotted, the ROC curves and
    their mean AUC, the legend's)."""

    files: list[tuple[Path, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    confusion: np.ndarray | None = None
    curves: list[Curve] = field(default_factory=list)
    auc: float | None = None

    @property
    def written(self) -> list[Path]:
        return [path for path, _ in self.files]


def cmd_report(args: argparse.Namespace) -> int:
    """Handler of ``bench report RUN_DIR``: print each file written, then notes."""
    from bench.runtime import check_output_dir

    if Path(args.run_dir).is_dir():
        check_output_dir(Path(args.run_dir) / "plots", "RUN_DIR")
    report = write_report(Path(args.run_dir))
    for path in report.written:
        print(path)
    for note in report.notes:
        print(f"note: {note}")
    return 0


def write_report(run_dir: Path) -> Report:
    """Write every plot the run folder has data for, then ``plots/report.md``.

    Raises:
        BenchError: the folder is missing, holds no run data, or a file is malformed.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise BenchError(f"{run_dir}: no such run folder; pass runs/<run_id> as printed by bench")
    record = read_record(run_dir / RECORD_FILE) if (run_dir / RECORD_FILE).is_file() else {}
    fits = load_fits(run_dir / FITS_FILE)
    trials = load_trials(run_dir / TRIALS_FILE)
    found = run_dir / TEST_PREDICTIONS
    preds = load_test_predictions(found) if found.is_file() else None
    if fits is None and trials is None and preds is None:
        raise BenchError(
            f"{run_dir}: no {FITS_FILE}, {TRIALS_FILE} or {TEST_PREDICTIONS} found; pass a run "
            "folder written by bench run, bench train or bench peer"
        )
    plots = run_dir / "plots"
    plots.mkdir(exist_ok=True)
    report = Report()
    subject = _subject(record)
    if fits is not None:
        path = plot_learning_curves(fits, plots / "learning_curves.png", subject)
        report.files.append((path, "train loss and val AUC / ACC per epoch of each final fit"))
    else:
        report.notes.append(f"no {FITS_FILE}: learning curves skipped")
    if preds is not None:
        _answer_plots(report, preds, plots, record)
    else:
        _old_confusion(report, fits, plots, record)
    _search_plots(report, trials, plots, record)
    _copy_samples(report, run_dir, plots, record)
    listed = [(p.name, what) for p, what in report.files] + [(REPORT_FILE, "this summary")]
    atomic_write_text(plots / REPORT_FILE, report_markdown(record, files=listed,
                                                           notes=report.notes))  # fmt: skip
    report.files.append((plots / REPORT_FILE, "this summary"))
    return report


def _answer_plots(report: Report, preds, plots: Path, record: dict) -> None:
    """The selected ensemble's confusion matrix and ROC curves (their AUC checked against the
    record's figure)."""
    answer = run_answer(preds)
    scores = scored(answer)
    what = f"{answer.name}, {answer.n} test items"
    report.confusion = np.asarray(scores["confusion_matrix"], dtype=np.int64)
    title = f"Confusion matrix on test: {what} (ACC {scores['acc']:.3f})"
    path = plot_confusion_matrix(report.confusion, plots / "confusion_matrix.png", title=title,
                                 subject=_subject(record), record=record)  # fmt: skip
    report.files.append((path, f"confusion matrix of the {what} (getACC's decisions)"))
    report.curves = roc_curves(answer)
    report.auc = mean_auc(report.curves)
    recorded = record.get(answer.auc_field)
    path = plot_roc(report.curves, plots / "roc_curve.png", title=f"ROC on test: {what}",
                    task=answer.task, record=record, field_name=answer.auc_field)  # fmt: skip
    report.files.append((path, f"ROC curves of the {answer.name} ({curve_kind(answer.task)}), "
                               f"AUC {report.auc:.4f}"))  # fmt: skip
    if isinstance(recorded, float) and abs(recorded - report.auc) > 1e-6:
        report.notes.append(f"the ROC curves' AUC {report.auc:.6f} differs from the record's "
                            f"{answer.auc_field} {recorded:.6f} (test probabilities are kept "
                            "as float32)")  # fmt: skip


def _old_confusion(report: Report, fits: list[dict] | None, plots: Path, record: dict) -> None:
    """A run without test predictions: seed 0's confusion matrix from ``fits.json``, marked as
    not the selected ensemble; no ROC curve."""
    why = f"no {TEST_PREDICTIONS} (a run made before test predictions were kept)"
    cm = ((fits or [{}])[0].get("test") or {}).get("confusion_matrix")
    if not cm:
        report.notes.append(f"{why} and no confusion matrix in {FITS_FILE}: confusion matrix "
                            "and ROC curve skipped")  # fmt: skip
        return
    seed = fits[0].get("seed", 0)
    acc = fits[0]["test"].get("acc")
    extra = f" (ACC {acc:.3f})" if isinstance(acc, float) else ""
    title = f"Confusion matrix on test: seed {seed}'s fit, not the selected ensemble{extra}"
    report.confusion = np.asarray(cm, dtype=np.int64)
    path = plot_confusion_matrix(report.confusion, plots / "confusion_matrix.png", title=title,
                                 subject=_subject(record), record=record)  # fmt: skip
    report.files.append((path, f"confusion matrix of seed {seed}'s fit ({FITS_FILE})"))
    report.notes.append(f"{why}: confusion_matrix.png shows seed {seed}'s fit, not the selected "
                        "ensemble; ROC curve skipped")  # fmt: skip


def _search_plots(report: Report, trials, plots: Path, record: dict) -> None:
    """Optuna's optimisation history, and the importances when enough trials completed."""
    if trials is None:
        report.notes.append(f"no {TRIALS_FILE} (no search): Optuna plots skipped")
        return
    study = study_from_trials(trials, direction=_direction(record))
    objective = str(record.get("objective") or "score")
    subject = _subject(record)
    path = plot_history(study, plots / "optuna_history.png", subject, objective)
    report.files.append((path, f"val {objective} of each trial and the best so far"))
    importances = plot_importances(study, plots / "param_importances.png", subject)
    if isinstance(importances, str):
        report.notes.append(importances)
    else:
        report.files.append((importances, "Optuna parameter importances (fANOVA)"))


def _copy_samples(report: Report, run_dir: Path, plots: Path, record: dict) -> None:
    """The DCGAN sample grid the run left, copied in; a note when a dcgan run left none."""
    samples = _dcgan_samples(run_dir)
    if samples is not None:
        dest = plots / DCGAN_SAMPLES
        copy_atomic(samples, dest)
        report.files.append((dest, "DCGAN samples the run's augmentation drew from"))
    elif record.get("augment") == "dcgan":
        report.notes.append(
            f"augment is dcgan but the run left no {DCGAN_SAMPLES}; sample grid skipped (make "
            f"one with bench augment-preview --augment dcgan --out {run_dir / DCGAN_SAMPLES})"
        )


# ----------------------------------------------------------------------------- inputs


def load_fits(path: Path) -> list[dict] | None:
    """The final fits of ``fits.json`` (list of per-seed dicts with a ``history``), or None."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BenchError(f"{path}: not readable JSON ({exc})") from None
    if isinstance(data, dict):
        data = data.get("fits")
    ok = isinstance(data, list) and data
    ok = ok and all(isinstance(f, dict) and isinstance(f.get("history"), list) for f in data)
    ok = ok and all(
        isinstance(h, dict) and "epoch" in h and "train_loss" in h
        for f in data
        for h in f["history"]
    )
    if not ok:
        raise BenchError(
            f"{path}: not a fits file (a list of per-seed fits, each with a history of "
            "epochs with epoch and train_loss)"
        )
    return data


def load_trials(path: Path):
    """``trials.csv`` (``study.trials_dataframe()``) as a DataFrame, or None."""
    if not path.is_file():
        return None
    import pandas as pd

    try:
        df = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise BenchError(f"{path}: not a readable trials table ({exc})") from None
    missing = [c for c in ("number", "state") if c not in df.columns]
    if _value_column(df) is None:
        missing.append("value")
    if missing:
        raise BenchError(
            f"{path}: columns {missing} missing; expected study.trials_dataframe() output"
        )
    return df


def _value_column(df) -> str | None:
    """``value``, ``value_<metric name>`` (study.set_metric_names) or ``values_0``."""
    for col in df.columns:
        if col == "value" or col.startswith("value_") or col == "values_0":
            return col
    return None


def _subject(record: dict) -> str:
    if not record:
        return ""
    return f"{record.get('method', '')} on {record.get('dataset', '')} ({record.get('run_id')})"


def _direction(record: dict) -> str:
    direction = record.get("direction")
    if direction in ("minimize", "maximize"):
        return direction
    return "maximize"  # the objectives are val AUC / ACC


# ----------------------------------------------------------------------------- study


def study_from_trials(df, *, direction: str = "maximize"):
    """An in-memory Optuna study holding the finished trials of a trials table.

    Distributions are inferred from the values: strings and booleans are categorical,
    integral numbers int, other numbers float (log scale when they span >= 2 decades).
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    value_col = _value_column(df)
    param_cols = [c for c in df.columns if c.startswith("params_")]
    dists = {c[len("params_") :]: _distribution(df[c]) for c in param_cols}
    study = optuna.create_study(direction=direction)
    trials = []
    for _, line in df.sort_values("number").iterrows():
        state = str(line["state"]).upper()
        if state not in _FIXED_STATES:
            continue  # running / waiting trials are not finished
        value = line[value_col]
        value = float(value) if _finite(value) else None
        if state == "COMPLETE" and value is None:
            continue
        params, used = {}, {}
        for col in param_cols:
            name = col[len("params_") :]
            raw = line[col]
            if raw is None or (isinstance(raw, float) and math.isnan(raw)):
                continue  # a conditional parameter this trial did not have
            params[name] = _cast(raw, dists[name])
            used[name] = dists[name]
        trials.append(
            optuna.trial.create_trial(
                state=getattr(optuna.trial.TrialState, state),
                value=value if state != "FAIL" else None,
                params=params,
                distributions=used,
            )
        )
    study.add_trials(trials)
    return study


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _distribution(column):
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    values = [v for v in column.tolist() if not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return CategoricalDistribution([None])
    if all(isinstance(v, bool) or str(v) in ("True", "False") for v in values):
        return CategoricalDistribution([False, True])
    if not all(_finite(v) and not isinstance(v, str) for v in values):
        return CategoricalDistribution(sorted({str(v) for v in values}))
    nums = [float(v) for v in values]
    lo, hi = min(nums), max(nums)
    wide = lo > 0 and hi / lo >= 100
    if all(n.is_integer() for n in nums):
        return IntDistribution(int(lo), int(hi), log=wide and lo >= 1)
    return FloatDistribution(lo, hi, log=wide)


def _cast(raw, dist):
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(dist, CategoricalDistribution):
        if dist.choices == (False, True):
            return raw if isinstance(raw, bool) else str(raw) == "True"
        return str(raw)
    if isinstance(dist, IntDistribution):
        return int(float(raw))
    return float(raw)


# ----------------------------------------------------------------------------- plots


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    """Save ``fig`` as PNG via a temporary file and ``os.replace`` (never half-written)."""
    plt = _pyplot()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def _suptitle(fig, title: str, subject: str) -> None:
    fig.suptitle(title + (f"\n{subject}" if subject else ""), fontsize=11)


def plot_learning_curves(fits: list[dict], path: Path, subject: str = "") -> Path:
    """Train loss and val AUC/ACC per epoch, one colour per seed, best epoch marked."""
    plt = _pyplot()
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(11, 4.6), layout="constrained")
    for i, fit in enumerate(fits):
        hist = fit["history"]
        color = f"C{i % 10}"
        seed = fit.get("seed", i)
        epochs = [h["epoch"] for h in hist]
        ax_loss.plot(epochs, [h["train_loss"] for h in hist], color=color, label=f"seed {seed}")
        for key, style, name in (("val_auc", "-", "AUC"), ("val_acc", "--", "ACC")):
            if all(key in h for h in hist):
                ax_val.plot(epochs, [h[key] for h in hist], style, color=color,
                            label=f"seed {seed} val {name}")  # fmt: skip
        best = fit.get("best_epoch")
        score = {h["epoch"]: h.get("val_score") for h in hist}.get(best)
        if best is not None and score is not None:
            ax_val.plot([best], [score], "o", color=color, markersize=7, markerfacecolor="none")
    ax_loss.set(xlabel="epoch", ylabel="train loss", title="Train loss")
    ax_val.set(xlabel="epoch", ylabel="validation metric",
               title="Val AUC (solid), ACC (dashed); o = best epoch")  # fmt: skip
    for ax in (ax_loss, ax_val):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    _suptitle(fig, f"Learning curves of the final fits ({len(fits)} seeds)", subject)
    return _save(fig, path)


def _class_names(record: dict, n: int) -> list[str]:
    names = [str(i) for i in range(n)]
    dataset = record.get("dataset")
    if dataset:
        try:
            from bench.data.catalog import get_dataset

            spec_names = get_dataset(dataset).class_names
            if len(spec_names) == n:
                names = [f"{i}: {s[:16]}" for i, s in enumerate(spec_names)]
        except BenchError:
            pass
    return names


def plot_confusion_matrix(cm: np.ndarray, path: Path, *, title: str, subject: str = "",
                          record: dict | None = None) -> Path:  # fmt: skip
    """Counts on test, rows the true class (colour: fraction of the true class); a
    multi-label matrix ``(labels, 2, 2)`` is drawn as one 2x2 matrix per label."""
    plt = _pyplot()
    names = _class_names(record or {}, cm.shape[0])
    if cm.ndim == 3:  # multi-label: (labels, 2, 2)
        cols = min(4, cm.shape[0])
        rows = math.ceil(cm.shape[0] / cols)
        fig, axes = plt.subplots(
            rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False, layout="constrained"
        )
        for ax, mat, name in zip(axes.flat, cm, names, strict=False):
            _draw_matrix(ax, mat, ["0", "1"])
            ax.set_title(f"label {name}", fontsize=8)
        for ax in list(axes.flat)[cm.shape[0] :]:
            ax.axis("off")
    else:
        size = max(4.5, 0.6 * cm.shape[0] + 2)
        fig, ax = plt.subplots(figsize=(size + 1, size), layout="constrained")
        _draw_matrix(ax, cm, names)
    _suptitle(fig, title, subject)
    return _save(fig, path)


def plot_roc(curves: list[Curve], path: Path, *, title: str, task: str, record: dict,
             field_name: str) -> Path:  # fmt: skip
    """ROC curves (:func:`bench.results.answer.roc_curves`), each with its AUC; the legend's
    title holds their mean (getAUC's figure) beside the record's ``field_name``."""
    plt = _pyplot()
    n_names = 2 if task == "binary-class" else len(curves)
    names = _class_names(record, n_names)
    fig, ax = plt.subplots(figsize=(6.8, 6.0), layout="constrained")
    colors = plt.get_cmap("tab10" if len(curves) <= 10 else "tab20")
    for i, curve in enumerate(curves):
        ax.plot(curve.fpr, curve.tpr, color=colors(i % colors.N), lw=1.4,
                label=f"{names[curve.index]} (AUC {curve.auc:.3f})")  # fmt: skip
    ax.plot([0, 1], [0, 1], ":", color="grey", lw=1)
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate", ylabel="true positive rate")
    ax.grid(alpha=0.3)
    heading = f"AUC {mean_auc(curves):.4f}"
    recorded = record.get(field_name)
    if isinstance(recorded, float):
        heading += f" (record {field_name} {recorded:.4f})"
    ax.legend(title=heading, title_fontsize=8, fontsize=7, loc="lower right")
    _suptitle(fig, f"{title}\n{curve_kind(task)}", _subject(record))
    return _save(fig, path)


def _draw_matrix(ax, mat, names: list[str]) -> None:
    totals = mat.sum(axis=1, keepdims=True)
    frac = np.divide(mat, totals, out=np.zeros(mat.shape, dtype=float), where=totals > 0)
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(mat):
        ax.text(j, i, str(count), ha="center", va="center", fontsize=8,
                color="white" if frac[i, j] > 0.5 else "black")  # fmt: skip
    ticks = range(len(names))
    ax.set_xticks(ticks, names, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(ticks, names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")


def plot_history(study, path: Path, subject: str = "", objective: str = "score") -> Path:
    """Optuna's optimisation history: each finished trial's value and the best so far."""
    import optuna

    plt = _pyplot()
    with plt.style.context("ggplot"), warnings.catch_warnings():  # optuna sets ggplot globally
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        ax = optuna.visualization.matplotlib.plot_optimization_history(study)
        pruned = [
            (t.number, t.value)
            for t in study.trials
            if t.state == optuna.trial.TrialState.PRUNED and t.value is not None
        ]
        if pruned:
            xs, ys = zip(*pruned, strict=True)
            ax.scatter(xs, ys, marker="x", color="grey", label="Pruned (last reported value)")
            ax.legend(loc="lower right", fontsize=8)
        counts = _state_counts(study)
        _retitle(ax, f"Optuna optimisation history: val {objective} per trial ({counts})")
        ax.set_ylabel(f"val {objective}")
        ax.set_xlabel("trial number")
        fig = ax.figure
        fig.set_size_inches(9, 4.8)
        if subject:
            fig.suptitle(subject, fontsize=9)
        return _save(fig, path)


def _retitle(ax, title: str) -> None:
    for loc in ("left", "center", "right"):
        ax.set_title("", loc=loc)
    ax.set_title(title, fontsize=11)


def _state_counts(study) -> str:
    states = [t.state.name.lower() for t in study.trials]
    return ", ".join(
        f"{states.count(s)} {s}" for s in ("complete", "pruned", "fail") if s in states
    )


def plot_importances(study, path: Path, subject: str = "", *,
                     min_trials: int = MIN_IMPORTANCE_TRIALS) -> Path | str:  # fmt: skip
    """Optuna's parameter importances over the complete trials (fANOVA, seeded, so the
    plot is reproducible), or a note saying why they were skipped (fewer than
    ``min_trials`` complete trials, see :data:`MIN_IMPORTANCE_TRIALS`)."""
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < min_trials:
        return (
            f"importances need >= {min_trials} completed trials; this run has {len(complete)}; "
            "param_importances.png skipped"
        )
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    plt = _pyplot()
    with plt.style.context("ggplot"), warnings.catch_warnings():  # optuna sets ggplot globally
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", UserWarning)  # "few trials" accuracy warnings
        try:
            importances = optuna.importance.get_param_importances(study, evaluator=evaluator)
        except (RuntimeError, ValueError) as exc:
            return f"parameter importances failed ({exc}); param_importances.png skipped"
        if not importances:
            return "no parameter is shared by all complete trials; param_importances.png skipped"
        ax = optuna.visualization.matplotlib.plot_param_importances(study, evaluator=evaluator)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
        _retitle(ax, f"Optuna parameter importances (fANOVA, {len(complete)} complete trials)")
        fig = ax.figure
        fig.set_size_inches(8, max(3.0, 0.45 * len(importances) + 1.5))
        if subject:
            fig.suptitle(subject, fontsize=9)
        return _save(fig, path)


def _dcgan_samples(run_dir: Path) -> Path | None:
    """The DCGAN sample grid the run left, if any."""
    for candidate in (run_dir / DCGAN_SAMPLES, *sorted(run_dir.glob(f"*/{DCGAN_SAMPLES}"))):
        if candidate.is_file() and candidate.parent.name != "plots":
            return candidate
    return None
