"""``bench report`` on a real ``bench run`` (a multi-class tiny npz, an ensemble selected on
val) in a subprocess: the confusion matrix and the ROC curves are the selected ensemble's, their
AUC the record's, and the summary counts the run's trials."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import make_npz
from runs import TINY
from saved_runs import bench, saved

from bench.results.plots import MIN_IMPORTANCE_TRIALS, write_report


@pytest.mark.slow
def test_report_of_a_run_shows_its_selected_ensemble(tmp_path):
    from sklearn.metrics import confusion_matrix

    npz = make_npz(tmp_path / "data" / "tiny.npz", task="multi-class", counts=(96, 32, 32))
    out = tmp_path / "out"
    done = bench("run", "--dataset", f"npz:{npz}", "--budget", "60s", "--n-trials", "6",
                 "--seeds", "2", "--ensemble", "3", "--out", out, "--quiet", "--device", "cpu",
                 *TINY)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (record_path,) = out.glob("*/record.json")
    record, run_dir = json.loads(record_path.read_text()), record_path.parent
    done = bench("report", run_dir)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    plots = Path(run_dir) / "plots"
    for name in ("confusion_matrix.png", "roc_curve.png", "optuna_history.png", "report.md"):
        assert str(plots / name) in lines
    k = record["n_complete"]
    assert k < MIN_IMPORTANCE_TRIALS  # 6 trials at most
    assert (f"note: importances need >= {MIN_IMPORTANCE_TRIALS} completed trials; this run has "
            f"{k}; param_importances.png skipped") in lines  # fmt: skip
    report = write_report(run_dir)
    labels = np.load(npz)["test_labels"][:, 0]
    ensemble = saved(run_dir, "ensemble")  # the final phase's medmnist-format file
    expected = confusion_matrix(labels, ensemble.argmax(axis=1), labels=[0, 1, 2, 3])
    np.testing.assert_array_equal(report.confusion, expected)
    assert len(report.curves) == 4  # one-vs-rest, one per class
    assert report.auc == pytest.approx(record["ensemble_test_auc"], abs=1e-9)
    summary = (plots / "report.md").read_text()
    assert (f"- trials: {record['n_trials']} ({k} completed, {record['n_pruned']} pruned, "
            f"{record['n_failed']} failed") in summary  # fmt: skip
    assert f"AUC {record['ensemble_test_auc']:.4f}" in summary
