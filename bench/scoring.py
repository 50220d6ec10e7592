"""Metrics: ACC and AUC through ``medmnist.evaluator.getACC/getAUC`` (never re-implemented),
plus precision, recall, F1 (per class and macro) and the confusion matrix."""

from __future__ import annotations

import numpy as np

from bench.data.spec import MULTI_LABEL


def auc(labels: np.ndarray, scores: np.ndarray, task: str) -> float:
    """AUC exactly as ``medmnist.Evaluator`` computes it."""
    from medmnist.evaluator import getAUC

    return float(getAUC(np.asarray(labels), np.asarray(scores), task))


def acc(labels: np.ndarray, scores: np.ndarray, task: str) -> float:
    """ACC exactly as ``medmnist.Evaluator`` computes it (threshold 0.5)."""
    from medmnist.evaluator import getACC

    return float(getACC(np.asarray(labels), np.asarray(scores), task))


def predicted_labels(scores: np.ndarray, task: str) -> np.ndarray:
    """Hard predictions as getACC makes them: argmax, or > 0.5 per label for multi-label."""
    scores = np.asarray(scores)
    if task == MULTI_LABEL:
        return (scores > 0.5).astype(np.int64)
    if task == "binary-class" and (scores.ndim == 1 or scores.shape[1] == 1):
        return (scores.reshape(-1) > 0.5).astype(np.int64)
    if task == "binary-class":
        return (scores[:, -1] > 0.5).astype(np.int64)
    return scores.argmax(axis=1)


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
