"""Scoring, the only reader of test labels: ACC and AUC through
``medmnist.evaluator.getACC/getAUC`` (never re-implemented), plus precision, recall, F1 (per
class and macro) and the confusion matrix; :func:`score_test` for every fit, ensemble and
peer that a record reports, and ``bench evaluate``'s re-scoring of a prediction file. Only
the final phase, ``bench train``, ``bench peer`` and ``bench evaluate`` call it; the search
holds a TrainVal, which has no test split."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from bench.data.spec import MULTI_LABEL
from bench.errors import BenchError
from bench.results.intervals import predicted_labels

PREDICTIONS_DIR = "predictions"  # a run folder's medmnist-format prediction files


def auc(labels: np.ndarray, scores: np.ndarray, task: str) -> float:
    """AUC exactly as ``medmnist.Evaluator`` computes it."""
    from medmnist.evaluator import getAUC

    return float(getAUC(np.asarray(labels), np.asarray(scores), task))


def acc(labels: np.ndarray, scores: np.ndarray, task: str) -> float:
    """ACC exactly as ``medmnist.Evaluator`` computes it (threshold 0.5)."""
    from medmnist.evaluator import getACC

    return float(getACC(np.asarray(labels), np.asarray(scores), task))


def classification_report(labels: np.ndarray, scores: np.ndarray, task: str) -> dict:
    """ACC, AUC, per-class and macro precision/recall/F1, and the confusion matrix.

    For multi-label tasks, per-label precision/recall/F1 and one 2x2 matrix per label.
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    labels = np.asarray(labels)
    pred = predicted_labels(scores, task)
    out: dict = {"auc": auc(labels, scores, task), "acc": acc(labels, scores, task)}
    if task == MULTI_LABEL:
        p, r, f, _ = precision_recall_fscore_support(labels, pred, average=None, zero_division=0)
        cm = [
            confusion_matrix(labels[:, i], pred[:, i], labels=[0, 1]).tolist()
            for i in range(labels.shape[1])
        ]
    else:
        y = labels.reshape(-1)
        n = scores.shape[1] if np.ndim(scores) == 2 and task != "binary-class" else 2
        classes = list(range(max(n, int(y.max()) + 1)))
        p, r, f, _ = precision_recall_fscore_support(
            y, pred, labels=classes, average=None, zero_division=0
        )
        cm = confusion_matrix(y, pred, labels=classes).tolist()
    out.update(
        precision=[float(v) for v in p],
        recall=[float(v) for v in r],
        f1=[float(v) for v in f],
        precision_macro=float(np.mean(p)),
        recall_macro=float(np.mean(r)),
        f1_macro=float(np.mean(f)),
        confusion_matrix=cm,
    )
    return out


def score_split(splits, split: str, scores) -> dict:
    """The classification report (medmnist's ACC/AUC and more) of ``scores`` on ``split``."""
    return classification_report(getattr(splits, split).labels, scores, splits.spec.task)


def score_test(splits, scores, *, run_dir: Path, run_label: str) -> tuple[dict, str]:
    """Score ``scores`` on the test labels and save them in the medmnist format.

    Returns:
        The classification report and the prediction file's path relative to ``run_dir``.
    """
    from bench.results.predictions import prediction_file_name, write_predictions
    from bench.runtime import file_flag

    report = score_split(splits, "test", scores)
    name = prediction_file_name(
        file_flag(splits.spec), splits.data_size, "test", report["auc"], report["acc"], run_label
    )
    write_predictions(Path(run_dir) / PREDICTIONS_DIR / name, scores)
    return report, f"{PREDICTIONS_DIR}/{name}"


def keep_test_predictions(splits, run_dir: Path, *, fits: dict, chosen: list[str],
                          seed_ensemble=None, ensemble=None) -> dict:  # fmt: skip
    """Save the test labels and every fit's and ensemble's test probabilities beside the
    record (:data:`~bench.results.predictions.TEST_PREDICTIONS`), then return the record's
    uncertainty fields computed from that file's content
    (:func:`bench.results.uncertainty.record_fields`)."""
    from bench.results.predictions import (
        TEST_PREDICTIONS,
        TestPredictions,
        load_test_predictions,
        save_test_predictions,
    )
    from bench.results.uncertainty import record_fields

    path = Path(run_dir) / TEST_PREDICTIONS
    save_test_predictions(path, TestPredictions(
        dataset=splits.spec.name, task=splits.spec.task, labels=splits.test.labels, fits=fits,
        chosen=tuple(chosen), seed_ensemble=seed_ensemble, ensemble=ensemble,
    ))  # fmt: skip
    return {**record_fields(load_test_predictions(path)), "test_predictions": TEST_PREDICTIONS}


def check_score_shape(path, scores, spec, split: str, n_rows: int) -> None:
    """One-line BenchError unless ``scores`` has one row per sample and the task's columns."""
    if scores.shape[0] != n_rows:
        raise BenchError(
            f"{path}: {scores.shape[0]} rows but the {split} split of {spec.name} has "
            f"{n_rows} samples; give one row per sample of that split"
        )
    width = scores.shape[1]
    ok = width in (1, 2) if spec.task == "binary-class" else width == spec.n_outputs
    if not ok:
        need = "1 or 2" if spec.task == "binary-class" else str(spec.n_outputs)
        raise BenchError(
            f"{path}: {width} score columns but {spec.name} ({spec.task}) needs {need}"
        )


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``bench evaluate``: re-score a prediction file on the official labels: a ``bench
    predict --out`` CSV of a split (:mod:`bench.results.predict_csv`) or a medmnist-format file."""
    from bench.data.catalog import get_dataset
    from bench.data.load import load_splits
    from bench.results.predict_csv import read_for_evaluate

    spec = get_dataset(args.dataset)
    scores, names = read_for_evaluate(args.predictions, split=args.split)
    splits = load_splits(spec, args.size, args.data_dir)
    n = len(getattr(splits, args.split))
    check_score_shape(args.predictions, scores, splits.spec, args.split, n)
    if names is not None and names != tuple(splits.spec.class_names):
        raise BenchError(
            f"{args.predictions}: classes {json.dumps(list(names))} but {splits.spec.name} has "
            f"{json.dumps(list(splits.spec.class_names))}; give predictions for this dataset"
        )
    report = score_split(splits, args.split, scores)
    out = {
        "dataset": splits.spec.name,
        "data_size": splits.data_size,
        "split": args.split,
        "n": n,
        "auc": report["auc"],
        "acc": report["acc"],
        "precision_macro": report["precision_macro"],
        "recall_macro": report["recall_macro"],
        "f1_macro": report["f1_macro"],
    }
    print(json.dumps(out, indent=1))
    return 0
