"""``bench report``: a run folder (fits.json written here, trials.csv from a real tiny
Optuna study, test_predictions.npz written as the final phase writes it, or the session's
finished ``bench train``) -> valid PNGs and report.md; the confusion matrix and ROC curves are
the selected ensemble's, their AUC the record's; importances only from enough completed trials;
the rebuilt study equals the original; bad folders -> exit 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import optuna
import pytest

from bench.cli import main
from bench.data.spec import MULTI_LABEL
from bench.reference import published_rows
from bench.results import plots as reports
from bench.results.intervals import predicted_labels, with_interval
from bench.results.predictions import (
    TestPredictions,
    load_test_predictions,
    save_test_predictions,
)
from bench.results.uncertainty import record_fields
from bench.scoring import acc, auc

GOLDEN = Path(__file__).parents[1] / "golden"
GOLDEN_RECORD = GOLDEN / "records" / "breastmnist.28.run.20261120T101500Z.a1b2.json"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def tiny_study(n_trials: int = 12, seed: int = 0) -> optuna.Study:
    """A real study over a conditional space (categorical, log float, int, bool), with
    pruned and failed trials, like a bench search."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: optuna.Trial) -> float:
        family = trial.suggest_categorical("family", ["small_cnn", "resnet18"])
        lr = trial.suggest_float("lr", 1e-4, 3e-2, log=True)
        width = trial.suggest_int("small_cnn.width", 8, 64) if family == "small_cnn" else 32
        trial.suggest_categorical("batch_size", [64, 128, 256])
        trial.suggest_categorical("amp", [True, False])
        if trial.number == 5:
            raise ValueError("diverged")
        score = 0.9 - abs(np.log10(lr) + 2.5) * 0.1 + width / 1000
        for epoch in range(1, 4):
            trial.report(score * epoch / 3, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return score

    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
    )
    study.optimize(objective, n_trials=n_trials, catch=(ValueError,))
    return study


def history(epochs: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for e in range(1, epochs + 1):
        auc = float(0.7 + 0.2 * (1 - np.exp(-e / 2)) + rng.normal(0, 0.01))
        out.append({"epoch": e, "train_loss": float(0.7 * np.exp(-e / 3) + 0.05),
                    "val_auc": auc, "val_acc": auc - 0.05, "val_score": auc, "lr": 1e-3,
                    "seconds": 1.5})  # fmt: skip
    return out


def fits(cm: list, seeds=(0, 1)) -> list[dict]:
    """Final fits as ``fits.json`` holds them (bench run and bench train alike)."""
    out = []
    for seed in seeds:
        hist = history(6, seed)
        best = max(hist, key=lambda h: h["val_score"])["epoch"]
        out.append({"seed": seed, "test_auc": 0.89, "test_acc": 0.85, "val_score": 0.93,
                    "best_epoch": best, "stopped": "completed", "seconds": 9.0, "n_params": 1000,
                    "history": hist, "test": {"auc": 0.89, "acc": 0.85,
                                                     "confusion_matrix": cm}})  # fmt: skip
    return out


# task -> (a dataset of that task with as many classes / labels, how many)
TASKS = {"binary-class": ("breastmnist", 2), "multi-class": ("octmnist", 4),
         MULTI_LABEL: ("chestmnist", 14)}  # fmt: skip


def probabilities(labels: np.ndarray, task: str, rng, signal: float) -> np.ndarray:
    """Float64 probabilities that lean towards ``labels`` by ``signal`` (a model's output)."""
    k = TASKS[task][1]
    if task == MULTI_LABEL:
        return 1 / (1 + np.exp(-(signal * (2 * labels - 1) + rng.normal(0, 1.5, labels.shape))))
    logits = rng.normal(0, 1.0, (len(labels), k)) + signal * np.eye(k)[labels[:, 0]]
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def write_test_predictions(rd: Path, task: str, n: int = 200, seed: int = 0) -> TestPredictions:
    """``test_predictions.npz`` as the final phase writes it (two seed fits, their mean, a
    selected ensemble that adds a second member) and the record's figures, scored like the
    final phase: medmnist's AUC / ACC of the float64 probabilities, intervals from the saved
    file."""
    rng = np.random.default_rng(seed)
    dataset, k = TASKS[task]
    labels = rng.integers(0, 2, (n, k)) if task == MULTI_LABEL else rng.integers(0, k, (n, 1))
    fit_scores = {f"seed{i}": probabilities(labels, task, rng, 1.2) for i in range(2)}
    seeds = np.mean(list(fit_scores.values()), axis=0)
    ensemble = 0.6 * seeds + 0.4 * probabilities(labels, task, rng, 1.5)
    save_test_predictions(rd / "test_predictions.npz", TestPredictions(
        dataset=dataset, task=task, labels=labels, fits=fit_scores, chosen=("seed0", "seed1"),
        seed_ensemble=seeds, ensemble=ensemble))  # fmt: skip
    record = json.loads((rd / "record.json").read_text())
    single = {m: [f(labels, s, task) for s in fit_scores.values()] for m, f in
              (("auc", auc), ("acc", acc))}  # fmt: skip
    record.update(
        dataset=dataset, task=task, test_predictions="test_predictions.npz",
        test_auc_mean=float(np.mean(single["auc"])), test_auc_std=float(np.std(single["auc"])),
        test_acc_mean=float(np.mean(single["acc"])), test_acc_std=float(np.std(single["acc"])),
        seed_ensemble_test_auc=auc(labels, seeds, task),
        seed_ensemble_test_acc=acc(labels, seeds, task),
        ensemble_test_auc=auc(labels, ensemble, task),
        ensemble_test_acc=acc(labels, ensemble, task),
    )  # fmt: skip
    saved = load_test_predictions(rd / "test_predictions.npz")
    record.update(record_fields(saved, n_boot=50))
    (rd / "record.json").write_text(json.dumps(record, indent=1))
    return saved


def n_complete(study: optuna.Study) -> int:
    return len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)))


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """A bench run folder: record, fits, a search of >= 10 completed trials, test predictions."""
    rd = tmp_path / "runs" / "breastmnist.28.run.20261120T101500Z.a1b2"
    rd.mkdir(parents=True)
    shutil.copy(GOLDEN_RECORD, rd / "record.json")
    (rd / "fits.json").write_text(json.dumps(fits([[30, 12], [8, 106]]), indent=1))
    write_test_predictions(rd, "binary-class")
    study = tiny_study(n_trials=60)
    assert n_complete(study) >= reports.MIN_IMPORTANCE_TRIALS
    with pytest.warns(optuna.exceptions.ExperimentalWarning):
        study.set_metric_names(["val_auc"])  # as bench run does: the column is value_val_auc
    study.trials_dataframe().to_csv(rd / "trials.csv", index=False)
    return rd


def assert_png(path: Path, min_px: int = 200) -> None:
    import matplotlib.image

    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 5000, path
    img = matplotlib.image.imread(path)
    assert img.shape[0] >= min_px and img.shape[1] >= min_px
    assert float(img[..., :3].std()) > 0.05  # not a blank canvas


def test_report_writes_all_plots(run_dir, capsys):
    assert main(["report", str(run_dir)]) == 0
    out = capsys.readouterr().out.splitlines()
    names = ["learning_curves.png", "confusion_matrix.png", "roc_curve.png",
             "optuna_history.png", "param_importances.png", "report.md"]  # fmt: skip
    assert out == [str(run_dir / "plots" / n) for n in names]
    for name in names[:-1]:
        assert_png(run_dir / "plots" / name)
    assert not list((run_dir / "plots").glob(".*"))  # no temporary files left


def test_study_rebuilt_from_csv_equals_original(tmp_path):
    study = tiny_study(n_trials=15, seed=3)
    path = tmp_path / "trials.csv"
    study.trials_dataframe().to_csv(path, index=False)
    rebuilt = reports.study_from_trials(reports.load_trials(path))
    assert [t.state for t in rebuilt.trials] == [t.state for t in study.trials]
    assert rebuilt.best_value == pytest.approx(study.best_value)
    assert rebuilt.best_params.keys() == study.best_params.keys()
    for key, value in study.best_params.items():
        if isinstance(value, float):
            assert rebuilt.best_params[key] == pytest.approx(value)
        else:
            assert rebuilt.best_params[key] == value
    dists = rebuilt.best_trial.distributions
    assert dists["lr"].log and isinstance(
        dists["small_cnn.width"], optuna.distributions.IntDistribution
    )
    assert dists["amp"].choices == (False, True)
    assert isinstance(dists["family"], optuna.distributions.CategoricalDistribution)


@pytest.mark.parametrize("n_trials", [1, 12])
def test_importances_skipped_below_the_threshold_and_the_summary_says_so(run_dir, capsys,
                                                                         n_trials):  # fmt: skip
    study = tiny_study(n_trials=n_trials)
    k = n_complete(study)
    assert 1 <= k < reports.MIN_IMPORTANCE_TRIALS == 10
    study.trials_dataframe().to_csv(run_dir / "trials.csv", index=False)
    assert main(["report", str(run_dir)]) == 0
    out = capsys.readouterr().out
    said = f"importances need >= 10 completed trials; this run has {k}"
    assert f"note: {said}; param_importances.png skipped" in out
    assert not (run_dir / "plots" / "param_importances.png").exists()
    assert_png(run_dir / "plots" / "optuna_history.png")
    summary = (run_dir / "plots" / "report.md").read_text()
    assert f"- {said}; param_importances.png skipped" in summary
    assert "param_importances.png`" not in summary  # not listed among the files written


@pytest.mark.parametrize("task", list(TASKS))
def test_confusion_matrix_and_roc_are_the_selected_ensembles(tmp_path, task):
    rd = tmp_path / "run"
    rd.mkdir()
    shutil.copy(GOLDEN_RECORD, rd / "record.json")
    (rd / "fits.json").write_text(json.dumps(fits([[30, 12], [8, 106]])))
    preds = write_test_predictions(rd, task)
    record = json.loads((rd / "record.json").read_text())
    report = reports.write_report(rd)
    from sklearn.metrics import confusion_matrix, roc_auc_score

    y = preds.labels
    pred = predicted_labels(preds.ensemble, task)
    if task == MULTI_LABEL:
        expected = np.stack([confusion_matrix(y[:, i], pred[:, i], labels=[0, 1])
                             for i in range(y.shape[1])])  # fmt: skip
        per_curve = [roc_auc_score(y[:, i], preds.ensemble[:, i]) for i in range(y.shape[1])]
    else:
        k = TASKS[task][1]
        expected = confusion_matrix(y[:, 0], pred, labels=list(range(k)))
        columns = [k - 1] if k == 2 else range(k)
        per_curve = [roc_auc_score(y[:, 0] == c, preds.ensemble[:, c]) for c in columns]
    np.testing.assert_array_equal(report.confusion, expected)
    assert report.confusion.sum() == y.size  # every test item (every label) counted once
    seeds = predicted_labels(preds.seed_ensemble, task)
    assert not np.array_equal(pred, seeds)  # the seed ensemble would give another matrix
    assert [c.auc for c in report.curves] == pytest.approx(per_curve, abs=1e-12)
    assert report.auc == pytest.approx(record["ensemble_test_auc"], abs=1e-9)
    assert_png(rd / "plots" / "confusion_matrix.png")
    assert_png(rd / "plots" / "roc_curve.png")
    summary = (rd / "plots" / "report.md").read_text()
    assert f"- `confusion_matrix.png`: confusion matrix of the selected ensemble, {len(y)} test " \
        "items" in summary  # fmt: skip
    assert f"AUC {record['ensemble_test_auc']:.4f}" in summary


def test_report_of_a_finished_train_run(finished_train_run, tmp_path):
    """The session's real ``bench train``: the matrix and the AUC of what it saved."""
    from sklearn.metrics import confusion_matrix

    run_dir = Path(shutil.copytree(finished_train_run[1], tmp_path / "run"))
    record = json.loads((run_dir / "record.json").read_text())
    preds = load_test_predictions(run_dir / "test_predictions.npz")
    report = reports.write_report(run_dir)
    assert [p.name for p in report.written] == ["learning_curves.png", "confusion_matrix.png",
                                                "roc_curve.png", "report.md"]  # fmt: skip
    assert report.notes == ["no trials.csv (no search): Optuna plots skipped"]
    pred = predicted_labels(preds.ensemble, record["task"])
    np.testing.assert_array_equal(report.confusion,
                                  confusion_matrix(preds.labels[:, 0], pred, labels=[0, 1]))
    assert report.auc == pytest.approx(record["ensemble_test_auc"], abs=1e-9)
    summary = (run_dir / "plots" / "report.md").read_text()
    assert "- budget: none (train: a fixed configuration)" in summary
    assert "selected ensemble (bench predict)" in summary


def test_summary_holds_the_run_and_its_figures(run_dir):
    reports.write_report(run_dir)
    record = json.loads((run_dir / "record.json").read_text())
    summary = (run_dir / "plots" / "report.md").read_text()

    def figure(prefix: str, metric: str, value: str, std: str | None = None) -> str:
        return with_interval(record[value], record[f"{prefix}_{metric}_lo"],
                             record[f"{prefix}_{metric}_hi"],
                             std=record[std] if std else None)  # fmt: skip

    single = [figure("test", m, f"test_{m}_mean", f"test_{m}_std") for m in ("auc", "acc")]
    seeds = [figure("seed_ensemble_test", m, f"seed_ensemble_test_{m}") for m in ("auc", "acc")]
    chosen = [figure("ensemble_test", m, f"ensemble_test_{m}") for m in ("auc", "acc")]
    for line in (
        "- dataset: breastmnist (binary-class), data size 28, model input 28",
        "- budget: 10m (600 s); search 447 s, final 141 s, wall 598 s",
        "- trials: 23 (9 completed, 14 pruned, 0 failed)",
        "- 3 final fits (seeds 0, 1, 2); device cpu",
        "- chosen configuration: Small CNN (28), val auc 0.9312",
        "percentile bootstrap over 200 test items",
        "| Small CNN (28) (single fit, mean ± std) | {} | {} |".format(*single),
        "| Small CNN (28), seed ensemble | {} | {} |".format(*seeds),
        "| Small CNN (28), selected ensemble (bench predict) | {} | {} |".format(*chosen),
        "## Published baselines (MedMNIST v2)",
        "published rows inside the selected ensemble's 95 % interval: AUC [",
        "- `roc_curve.png`: ROC curves of the selected ensemble (binary: class 1 against class 0), "
        "AUC 0.",
        "- `param_importances.png`: Optuna parameter importances (fANOVA)",
        "- `report.md`: this summary",
    ):
        assert line in summary, line
    assert '"small_cnn.width": 32' in summary
    published = published_rows("breastmnist")
    assert len(published) == 7
    for row in published:
        assert f"| {row['method']} | {row['test_auc_mean']:.3f} | {row['test_acc_mean']:.3f} |" \
            in summary  # fmt: skip


def test_run_without_test_predictions_falls_back_to_seed_0_and_says_so(run_dir):
    (run_dir / "test_predictions.npz").unlink()
    report = reports.write_report(run_dir)
    note = ("no test_predictions.npz (a run made before test predictions were kept): "
            "confusion_matrix.png shows seed 0's fit, not the selected ensemble; ROC curve "
            "skipped")  # fmt: skip
    assert note in report.notes
    assert not (run_dir / "plots" / "roc_curve.png").exists()
    np.testing.assert_array_equal(report.confusion, [[30, 12], [8, 106]])
    assert f"- {note}" in (run_dir / "plots" / "report.md").read_text()


def test_train_run_without_trials_and_multilabel(tmp_path, capsys):
    rd = tmp_path / "train_run"
    rd.mkdir()
    cm = [[[40, 3], [5, 12]], [[30, 10], [2, 18]], [[50, 1], [4, 5]]]
    (rd / "fits.json").write_text(json.dumps(fits(cm, seeds=(0,))))
    (rd / "dcgan_samples.png").write_bytes(PNG_MAGIC + b"fake but copied as is")
    assert main(["report", str(rd)]) == 0
    out = capsys.readouterr().out
    assert "note: no trials.csv (no search): Optuna plots skipped" in out
    assert_png(rd / "plots" / "confusion_matrix.png")
    assert (rd / "plots" / "dcgan_samples.png").read_bytes().startswith(PNG_MAGIC)


@pytest.mark.parametrize(
    "setup, needle",
    [
        (None, "no such run folder"),
        ("empty", "no fits.json, trials.csv or test_predictions.npz found"),
        ("bad_npz", "test_predictions.npz: not a bench test-predictions file"),
        ("bad_fits", "fits.json: not a fits file"),
        ("bad_json", "fits.json: not readable JSON"),
        ("bad_trials", "columns ['number', 'state', 'value'] missing"),
    ],
)
def test_bad_run_dir_is_one_line(tmp_path, capsys, setup, needle):
    rd = tmp_path / "rd"
    if setup:
        rd.mkdir()
    if setup == "bad_fits":
        (rd / "fits.json").write_text(json.dumps([{"seed": 0}]))
    if setup == "bad_json":
        (rd / "fits.json").write_text("[{")
    if setup == "bad_trials":
        (rd / "trials.csv").write_text("a,b\n1,2\n")
    if setup == "bad_npz":
        (rd / "test_predictions.npz").write_bytes(b"PK\x03\x04 not a zip")
    assert main(["report", str(rd)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and needle in err
    assert not (rd / "plots").exists()
