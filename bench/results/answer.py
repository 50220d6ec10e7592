"""What a run hands back on its test set, as numbers: the predictions ``bench predict`` uses by
default (the selected ensemble; the seed ensemble, or a peer's one fit, for a record without
one), their confusion matrix under getACC's decision rule and the ROC curves whose AUCs
medmnist's getAUC averages. Arrays in (a :class:`TestPredictions`), arrays out."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from bench.data.spec import MULTI_LABEL
from bench.errors import BenchError
from bench.results.intervals import auc_columns
from bench.results.predictions import TestPredictions


@dataclass(frozen=True)
class Answer:
    """One set of test probabilities with its labels: which it is (``name``) and the record
    fields that score it (``auc_field``, ``acc_field``)."""

    name: str
    auc_field: str
    acc_field: str
    task: str
    labels: np.ndarray
    scores: np.ndarray

    @property
    def n(self) -> int:
        return len(self.labels)


# (TestPredictions attribute, name, record field prefix), in the order bench predict prefers them
SETS = (("ensemble", "selected ensemble", "ensemble_test"),
        ("seed_ensemble", "seed ensemble", "seed_ensemble_test"))  # fmt: skip


def run_answer(preds: TestPredictions) -> Answer:
    """The selected ensemble of ``preds``; else its seed ensemble; else its one fit (a peer,
    scored by the record's single-fit mean)."""
    found = [(name, f"{prefix}_auc", f"{prefix}_acc", getattr(preds, attr))
             for attr, name, prefix in SETS if getattr(preds, attr) is not None]  # fmt: skip
    if not found and len(preds.chosen) == 1 and preds.chosen[0] in preds.fits:
        fit = preds.chosen[0]
        found = [(f"fit {fit}", "test_auc_mean", "test_acc_mean", preds.fits[fit])]
    if not found:
        raise BenchError(f"the test predictions hold no ensemble and {len(preds.chosen)} "
                         "chosen fits; re-run the record")  # fmt: skip
    name, auc, acc, scores = found[0]
    if len(scores) != preds.n:
        raise BenchError(
            f"the {name}'s test probabilities have {len(scores)} rows for "
            f"{preds.n} test items; the file is damaged, re-run the record"
        )
    return Answer(name, auc, acc, preds.task, preds.labels, scores)


def scored(answer: Answer) -> dict:
    """:func:`bench.scoring.classification_report` of the answer: medmnist's AUC and ACC and
    the confusion matrix of getACC's decisions (one 2x2 matrix per label for multi-label)."""
    from bench.scoring import classification_report

    labels = np.asarray(answer.labels)
    return classification_report(labels, np.asarray(answer.scores, np.float64), answer.task)


@dataclass(frozen=True)
class Curve:
    """One ROC curve: the class (or label) taken as positive, its points and its AUC."""

    index: int
    fpr: np.ndarray
    tpr: np.ndarray
    auc: float


def roc_curves(answer: Answer) -> list[Curve]:
    """scikit-learn's ``roc_curve`` of each column getAUC scores: the positive class
    (binary), each class against the rest (multi-class, ordinal), each label (multi-label)."""
    from sklearn.exceptions import UndefinedMetricWarning
    from sklearn.metrics import auc, roc_curve

    columns = auc_columns(answer.labels, answer.scores, answer.task)
    binary = answer.task == "binary-class"
    curves = []
    with warnings.catch_warnings():  # a class absent from test: its AUC is NaN
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        for i, (target, score) in enumerate(columns):
            fpr, tpr, _ = roc_curve(target, score)
            curves.append(Curve(1 if binary else i, fpr, tpr, float(auc(fpr, tpr))))
    return curves


def mean_auc(curves: list[Curve]) -> float:
    """The mean of the curves' AUCs, summed in getAUC's order (the medmnist figure)."""
    total = 0.0
    for curve in curves:
        total += curve.auc
    return total / len(curves)


def curve_kind(task: str) -> str:
    """What the curves are, in words, and how their AUCs make the figure."""
    if task == "binary-class":
        return "binary: class 1 against class 0"
    if task == MULTI_LABEL:
        return "one curve per label; AUC = mean over labels (medmnist getAUC)"
    return "one-vs-rest per class; AUC = their macro mean (medmnist getAUC)"
