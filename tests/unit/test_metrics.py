"""Metrics equal medmnist's getAUC/getACC for every task type; `bench evaluate` equals
medmnist.Evaluator on a real file; precision/recall/F1/confusion matrix on hand-made cases."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import TASK_LABELS
from medmnist import Evaluator
from medmnist.evaluator import getACC, getAUC

from bench import scoring as metrics
from bench.cli import main
from bench.data.load import load_splits
from bench.results.predictions import write_predictions

MULTI_LABEL = "multi-label, binary-class"


def random_case(task: str, n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels as medmnist stores them and scores as a model would produce them."""
    rng = np.random.default_rng(seed)
    k = TASK_LABELS[task]
    if task == MULTI_LABEL:
        labels = rng.integers(0, 2, size=(n, k))
        return labels, np.clip(0.3 * labels + 0.7 * rng.random((n, k)), 0, 1)
    labels = rng.integers(0, k, size=(n, 1))
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[labels[:, 0]]
    scores = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return labels, scores


@pytest.mark.parametrize("task", list(TASK_LABELS))
@pytest.mark.parametrize("seed", [0, 1])
def test_auc_acc_equal_medmnist(task, seed):
    labels, scores = random_case(task, seed=seed)
    assert metrics.auc(labels, scores, task) == getAUC(labels, scores, task)
    assert metrics.acc(labels, scores, task) == getACC(labels, scores, task)
    report = metrics.classification_report(labels, scores, task)
    assert report["auc"] == getAUC(labels, scores, task)
    assert report["acc"] == getACC(labels, scores, task)
    assert 0.5 < report["auc"] <= 1.0  # the scores carry signal
    k = TASK_LABELS[task]
    assert len(report["f1"]) == k
    cm = np.array(report["confusion_matrix"])
    assert cm.shape == ((k, 2, 2) if task == MULTI_LABEL else (k, k))
    assert cm.sum() == (labels.size if task == MULTI_LABEL else len(labels))


def test_binary_by_hand():
    labels = np.array([[0], [0], [1], [1]])
    scores = np.array([[0.9, 0.1], [0.4, 0.6], [0.6, 0.4], [0.1, 0.9]])
    report = metrics.classification_report(labels, scores, "binary-class")
    assert report["auc"] == pytest.approx(0.75)  # 3 of 4 positive/negative pairs ordered
    assert report["acc"] == pytest.approx(0.5)
    assert report["confusion_matrix"] == [[1, 1], [1, 1]]
    assert report["precision"] == [0.5, 0.5] and report["f1_macro"] == pytest.approx(0.5)
    one_column = scores[:, 1:]
    assert metrics.auc(labels, one_column, "binary-class") == pytest.approx(0.75)
    assert metrics.classification_report(labels, one_column, "binary-class")["acc"] == 0.5


def test_multi_class_by_hand():
    labels = np.array([[0], [1], [2], [2]])
    scores = np.array(
        [[0.8, 0.1, 0.1], [0.1, 0.2, 0.7], [0.1, 0.1, 0.8], [0.2, 0.5, 0.3]]
    )  # predicts 0, 2, 2, 1
    report = metrics.classification_report(labels, scores, "multi-class")
    assert report["acc"] == pytest.approx(0.5)
    assert report["confusion_matrix"] == [[1, 0, 0], [0, 0, 1], [0, 1, 1]]
    assert report["precision"] == pytest.approx([1.0, 0.0, 0.5])
    assert report["recall"] == pytest.approx([1.0, 0.0, 0.5])
    assert report["f1_macro"] == pytest.approx(0.5)


def test_multi_label_by_hand():
    labels = np.array([[1, 0], [0, 1], [1, 1]])
    scores = np.array([[0.9, 0.2], [0.4, 0.7], [0.6, 0.3]])  # label 1 of row 3 missed
    report = metrics.classification_report(labels, scores, MULTI_LABEL)
    assert report["acc"] == pytest.approx(5 / 6)
    assert report["recall"] == pytest.approx([1.0, 0.5])
    assert report["confusion_matrix"] == [[[1, 0], [0, 2]], [[1, 0], [1, 1]]]


@pytest.mark.parametrize("task", list(TASK_LABELS))
def test_evaluate_command_on_every_task(tiny_npz, tmp_path, capsys, task):
    name = tiny_npz(task=task)
    test_labels = load_splits(name).test.labels
    _, scores = random_case(task, n=len(test_labels), seed=3)
    preds = tmp_path / "preds.csv"
    write_predictions(preds, scores)
    assert main(["evaluate", "--dataset", name, "--predictions", str(preds)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["auc"] == getAUC(test_labels, scores, task)
    assert out["acc"] == getACC(test_labels, scores, task)
    assert out["split"] == "test" and out["n"] == len(test_labels)


def test_evaluate_equals_medmnist_evaluator(run_bench, shared_data, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "breastmnist.npz").symlink_to(shared_data / "breastmnist.npz")
    rng = np.random.default_rng(7)
    raw = rng.random((156, 2))
    scores = raw / raw.sum(axis=1, keepdims=True)
    preds = tmp_path / "breastmnist_test_[AUC]0.500_[ACC]0.500@x.csv"
    write_predictions(preds, scores)
    r = run_bench(
        "evaluate", "--dataset", "breastmnist", "--data-dir", shared_data,
        "--predictions", preds,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    ours = json.loads(r.stdout)
    theirs = Evaluator("breastmnist", "test", root=str(root)).evaluate(scores)
    assert abs(ours["auc"] - theirs.AUC) <= 1e-9
    assert abs(ours["acc"] - theirs.ACC) <= 1e-9


def _error_line(r) -> str:
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


def test_evaluate_wrong_row_count(run_bench, tiny_npz, tmp_path):
    name = tiny_npz(task="multi-class")
    preds = tmp_path / "short.csv"
    write_predictions(preds, np.full((15, 4), 0.25))
    line = _error_line(run_bench("evaluate", "--dataset", name, "--predictions", preds))
    assert "15 rows but the test split" in line and "has 16 samples" in line
    val = _error_line(
        run_bench("evaluate", "--dataset", name, "--predictions", preds, "--split", "val")
    )
    assert "the val split" in val


def test_evaluate_wrong_columns_and_bad_file(run_bench, tiny_npz, tmp_path):
    name = tiny_npz(task="multi-class")
    preds = tmp_path / "narrow.csv"
    write_predictions(preds, np.full((16, 3), 1 / 3))
    line = _error_line(run_bench("evaluate", "--dataset", name, "--predictions", preds))
    assert "3 score columns" in line and "needs 4" in line
    bad = tmp_path / "bad.csv"
    bad.write_text("index,score\n0,zero\n")
    assert "not a medmnist prediction file" in _error_line(
        run_bench("evaluate", "--dataset", name, "--predictions", bad)
    )
    missing = _error_line(
        run_bench("evaluate", "--dataset", name, "--predictions", tmp_path / "nope.csv")
    )
    assert str(tmp_path / "nope.csv") in missing
