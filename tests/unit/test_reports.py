"""``bench report``: a run folder (fits.json written here, trials.csv from a real tiny
Optuna study) -> valid PNGs; the rebuilt study equals the original; bad folders -> exit 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import optuna
import pytest

from bench.cli import main
from bench.results import plots as reports

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


@pytest.fixture
def run_dir(tmp_path) -> Path:
    rd = tmp_path / "runs" / "breastmnist.28.run.20261120T101500Z.a1b2"
    rd.mkdir(parents=True)
    shutil.copy(GOLDEN_RECORD, rd / "record.json")
    (rd / "fits.json").write_text(json.dumps(fits([[30, 12], [8, 106]]), indent=1))
    study = tiny_study()
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
    names = ["learning_curves.png", "confusion_matrix.png", "optuna_history.png",
             "param_importances.png"]  # fmt: skip
    assert out == [str(run_dir / "plots" / n) for n in names]
    for name in names:
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


def test_importances_skipped_with_one_complete_trial(run_dir, capsys):
    study = tiny_study(n_trials=1)
    study.trials_dataframe().to_csv(run_dir / "trials.csv", index=False)
    assert main(["report", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "note: parameter importances need >= 2 complete trials, the study has 1" in out
    assert not (run_dir / "plots" / "param_importances.png").exists()
    assert_png(run_dir / "plots" / "optuna_history.png")


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
        ("empty", "neither fits.json nor trials.csv"),
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
    assert main(["report", str(rd)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and needle in err
    assert not (rd / "plots").exists()
