"""``bench report RUN_DIR``: PNGs of one run in ``RUN_DIR/plots/``.

Learning curves and the test confusion matrix come from ``fits.json``; Optuna's
optimisation history and parameter importances from ``trials.csv`` (an in-memory study
rebuilt with ``optuna.trial.create_trial``, so it works whatever storage the run used);
a DCGAN sample grid is copied in when the run left one. matplotlib and optuna are
imported inside the functions.
"""

from __future__ import annotations

import argparse
import json
import math
import warnings
from pathlib import Path

from bench.errors import BenchError
from bench.files import atomic_path, copy_atomic
from bench.results.records import RECORD_FILE, read_record

FITS_FILE = "fits.json"
TRIALS_FILE = "trials.csv"
DCGAN_SAMPLES = "dcgan_samples.png"
_FIXED_STATES = ("COMPLETE", "PRUNED", "FAIL")


def cmd_report(args: argparse.Namespace) -> int:
    """Handler of ``bench report RUN_DIR``: print each PNG written, then notes."""
    from bench.runtime import check_output_dir

    if Path(args.run_dir).is_dir():
        check_output_dir(Path(args.run_dir) / "plots", "RUN_DIR")
    written, notes = write_report(Path(args.run_dir))
    for path in written:
        print(path)
    for note in notes:
        print(f"note: {note}")
    return 0


def write_report(run_dir: Path) -> tuple[list[Path], list[str]]:
    """Write every plot the run folder has data for.

    Returns:
        The PNG files written and notes on plots skipped.

    Raises:
        BenchError: the folder is missing, holds no run data, or a file is malformed.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise BenchError(f"{run_dir}: no such run folder; pass runs/<run_id> as printed by bench")
    record = read_record(run_dir / RECORD_FILE) if (run_dir / RECORD_FILE).is_file() else {}
    fits = load_fits(run_dir / FITS_FILE)
    trials = load_trials(run_dir / TRIALS_FILE)
    if fits is None and trials is None:
        raise BenchError(
            f"{run_dir}: neither {FITS_FILE} nor {TRIALS_FILE} found; pass a run folder "
            "written by bench run or bench train"
        )
    plots = run_dir / "plots"
    written: list[Path] = []
    notes: list[str] = []
    subject = _subject(record)
    if fits is not None:
        written.append(plot_learning_curves(fits, plots / "learning_curves.png", subject))
        cm = plot_confusion_matrix(fits, plots / "confusion_matrix.png", subject, record)
        if cm is None:
            notes.append(f"no confusion matrix in {FITS_FILE}; confusion_matrix.png skipped")
        else:
            written.append(cm)
    else:
        notes.append(f"no {FITS_FILE}: learning curves and confusion matrix skipped")
    if trials is not None:
        study = study_from_trials(trials, direction=_direction(record))
        objective = str(record.get("objective") or "score")
        written.append(plot_history(study, plots / "optuna_history.png", subject, objective))
        importances = plot_importances(study, plots / "param_importances.png", subject)
        if isinstance(importances, str):
            notes.append(importances)
        else:
            written.append(importances)
    else:
        notes.append(f"no {TRIALS_FILE} (no search): Optuna plots skipped")
    samples = _dcgan_samples(run_dir)
    if samples is not None:
        dest = plots / DCGAN_SAMPLES
        dest.parent.mkdir(parents=True, exist_ok=True)
        copy_atomic(samples, dest)
        written.append(dest)
    elif record.get("augment") == "dcgan":
        notes.append(
            f"augment is dcgan but the run left no {DCGAN_SAMPLES}; sample grid skipped (make "
            f"one with bench augment-preview --augment dcgan --out {run_dir / DCGAN_SAMPLES})"
        )
    return written, notes


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


def plot_confusion_matrix(
    fits: list[dict], path: Path, subject: str = "", record: dict | None = None
) -> Path | None:
    """Counts on test of the first seed's best checkpoint (colour: fraction of the true
    class); multi-label tasks get one 2x2 matrix per label. None if there is no matrix."""
    import numpy as np

    fit = fits[0]
    report = fit.get("test") or {}
    cm = report.get("confusion_matrix")
    if not cm:
        return None
    cm = np.asarray(cm, dtype=np.int64)
    plt = _pyplot()
    seed = fit.get("seed", 0)
    if cm.ndim == 3:  # multi-label: (labels, 2, 2)
        names = _class_names(record or {}, cm.shape[0])
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
        names = _class_names(record or {}, cm.shape[0])
        size = max(4.5, 0.6 * cm.shape[0] + 2)
        fig, ax = plt.subplots(figsize=(size + 1, size), layout="constrained")
        _draw_matrix(ax, cm, names)
    acc = report.get("acc")
    extra = f", test ACC {acc:.3f}" if isinstance(acc, float) else ""
    _suptitle(fig, f"Confusion matrix on test (seed {seed}{extra})", subject)
    return _save(fig, path)


def _draw_matrix(ax, mat, names: list[str]) -> None:
    import numpy as np

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


def plot_importances(study, path: Path, subject: str = "") -> Path | str:
    """Optuna's parameter importances over the complete trials (fANOVA, seeded, so the
    plot is reproducible), or a note saying why they were skipped."""
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < 2:
        return (
            f"parameter importances need >= 2 complete trials, the study has {len(complete)}; "
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
