"""How sure a test figure is: a seeded percentile bootstrap over test items
(:func:`scipy.stats.bootstrap`) of ``medmnist``'s AUC and ACC, paired across every set of
predictions of the same items; the paired difference of two of them (``bench compare``, the
tie marks of the leaderboard); balanced accuracy, expected calibration error and the Brier
score (scikit-learn's). Pure: arrays in, numbers out.

Each resample is scored with the rank form of the AUC (Mann-Whitney U, average ranks for
ties), which equals ``medmnist.evaluator.getAUC`` (``roc_auc_score`` per column) exactly,
and with getACC's own decision rule (:func:`bench.scoring.predicted_labels`); the tests
check both against ``medmnist`` on every task type. Calling getAUC 2,000 times per figure
would take a minute per record.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from bench.data.spec import MULTI_LABEL

N_BOOT = 2000  # bootstrap resamples
LEVEL = 0.95  # two-sided interval
BOOT_SEED = 0  # the resamples of every figure of the same test set are the same ones
ECE_BINS = 15
METRICS = ("auc", "acc")


def label_matrix(labels: np.ndarray) -> np.ndarray:
    """Labels as (n, k) integers (medmnist's (n, 1), or (n, L) for multi-label)."""
    labels = np.asarray(labels)
    return labels.reshape(len(labels), -1).astype(np.int64)


def auc_columns(labels: np.ndarray, scores: np.ndarray, task: str):
    """The (binary target, score) column pairs whose ``roc_auc_score`` getAUC averages:
    per label (multi-label), the last column (binary), one class against the rest."""
    y, s = label_matrix(labels), np.asarray(scores, dtype=np.float64).reshape(len(labels), -1)
    if task == MULTI_LABEL:
        return [(y[:, i], s[:, i]) for i in range(s.shape[1])]
    if task == "binary-class":
        return [(y[:, 0], s[:, -1])]
    return [((y[:, 0] == i).astype(np.int64), s[:, i]) for i in range(s.shape[1])]


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


def item_correct(labels: np.ndarray, scores: np.ndarray, task: str) -> np.ndarray:
    """Per item, the share of its labels getACC counts as right (0/1 except multi-label):
    getACC is the mean of it."""
    y = label_matrix(labels)
    pred = predicted_labels(np.asarray(scores, dtype=np.float64), task).reshape(len(y), -1)
    return (pred == y).mean(axis=1)


def resampled_auc(columns, idx: np.ndarray) -> np.ndarray:
    """getAUC on each resample (rows of ``idx``): NaN where a column has one class only."""
    from scipy.stats import rankdata

    total = np.zeros(idx.shape[:-1])
    n = idx.shape[-1]
    for target, score in columns:
        t = target[idx]
        ranks = rankdata(score[idx], axis=-1)
        n1 = t.sum(axis=-1)
        n0 = n - n1
        with np.errstate(divide="ignore", invalid="ignore"):
            total += ((ranks * t).sum(axis=-1) - n1 * (n1 + 1) / 2) / (n1 * n0)
    return total / len(columns)


@dataclass(frozen=True)
class Group:
    """Prediction sets whose figure is the mean of their metric: one fit, an ensemble, or
    every fit of a row (the single-fit mean)."""

    name: str
    scores: tuple[np.ndarray, ...]


def distributions(labels, groups: list[Group], task: str, *, n_boot: int = N_BOOT,
                  seed: int = BOOT_SEED) -> dict[tuple[str, str], np.ndarray]:  # fmt: skip
    """The bootstrap distribution (``n_boot`` values) of each group's AUC and ACC, keyed
    ``(group name, metric)``. Every group is scored on the same resamples of the test items
    (the same ones for every call with the same number of items, ``n_boot`` and ``seed``),
    so two groups' distributions can be subtracted (a paired bootstrap)."""
    from scipy.stats import DegenerateDataWarning, bootstrap

    n = len(label_matrix(labels))
    prepared = [
        [(auc_columns(labels, s, task), item_correct(labels, s, task)) for s in g.scores]
        for g in groups
    ]

    def statistic(idx, axis=-1):
        idx = np.asarray(idx)
        rows = []
        for sets in prepared:
            rows.append(np.mean([resampled_auc(cols, idx) for cols, _ in sets], axis=0))
            rows.append(np.mean([ok[idx].mean(axis=-1) for _, ok in sets], axis=0))
        return np.stack(rows)

    with warnings.catch_warnings():  # a degenerate distribution (a constant predictor) is fine
        warnings.simplefilter("ignore", DegenerateDataWarning)
        res = bootstrap((np.arange(n),), statistic, n_resamples=n_boot, method="percentile",
                        vectorized=True, random_state=np.random.default_rng(seed),
                        batch=max(1, min(n_boot, 2_000_000 // max(n, 1))))  # fmt: skip
    dist = np.atleast_2d(res.bootstrap_distribution)
    keys = [(g.name, m) for g in groups for m in METRICS]
    return {key: dist[i] for i, key in enumerate(keys)}


def interval(dist: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The percentile interval of a bootstrap distribution (scipy's ``percentile`` method;
    resamples where AUC is undefined, one class only, left out)."""
    tail = (1 - level) / 2 * 100
    lo, hi = np.nanpercentile(np.asarray(dist, dtype=np.float64), [tail, 100 - tail])
    return float(lo), float(hi)


@dataclass(frozen=True)
class Difference:
    """A paired difference A - B over the same test items: the point value, its interval
    and the two-sided bootstrap p-value (twice the smaller share of resampled differences on
    either side of 0; 1 when they are all 0)."""

    value: float
    lo: float
    hi: float
    p: float

    @property
    def excludes_zero(self) -> bool:
        return self.lo > 0 or self.hi < 0


def difference(value: float, dist_a: np.ndarray, dist_b: np.ndarray,
               level: float = LEVEL) -> Difference:  # fmt: skip
    """The paired difference of two distributions from :func:`distributions` (one call, or
    calls with the same items, ``n_boot`` and seed); ``value`` is the observed A - B."""
    d = np.asarray(dist_a, dtype=np.float64) - np.asarray(dist_b, dtype=np.float64)
    d = d[np.isfinite(d)]
    lo, hi = interval(d, level)
    below, above = (np.sum(d <= 0) + 1) / (len(d) + 1), (np.sum(d >= 0) + 1) / (len(d) + 1)
    return Difference(float(value), lo, hi, float(min(1.0, 2 * min(below, above))))


# ----------------------------------------------------------------------------- calibration


def positive_probability(scores: np.ndarray) -> np.ndarray:
    """A binary task's positive-class probability (the last column, as getACC uses)."""
    s = np.asarray(scores, dtype=np.float64)
    return s.reshape(len(s), -1)[:, -1]


def _binary_ece(target: np.ndarray, prob: np.ndarray, n_bins: int) -> float:
    """ECE of one binary probability: bins of equal width, each weighted by its items."""
    from sklearn.calibration import calibration_curve

    prob = np.clip(prob, 0.0, 1.0)
    frac_pos, mean_prob = calibration_curve(target, prob, n_bins=n_bins, strategy="uniform")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    counts = np.bincount(np.searchsorted(edges[1:-1], prob), minlength=n_bins)
    weights = counts[counts > 0] / len(prob)  # calibration_curve's non-empty bins, in order
    return float(np.sum(weights * np.abs(frac_pos - mean_prob)))


def expected_calibration_error(labels, scores, task: str, n_bins: int = ECE_BINS) -> float:
    """ECE with ``n_bins`` equal-width bins (scikit-learn's ``calibration_curve``): of the
    positive-class probability (binary), per label then averaged (multi-label), of the
    top-label confidence (multi-class; Guo et al. 2017)."""
    y, s = label_matrix(labels), np.asarray(scores, dtype=np.float64).reshape(len(labels), -1)
    if task == MULTI_LABEL:
        return float(np.mean([_binary_ece(y[:, i], s[:, i], n_bins) for i in range(y.shape[1])]))
    if task == "binary-class":
        return _binary_ece(y[:, 0], positive_probability(s), n_bins)
    correct = (s.argmax(axis=1) == y[:, 0]).astype(np.int64)
    return _binary_ece(correct, s.max(axis=1), n_bins)


def brier(labels, scores, task: str) -> float:
    """scikit-learn's ``brier_score_loss``: of the positive class (binary), per label then
    averaged (multi-label), over the classes (multi-class: sum over classes of the squared
    error, averaged over items)."""
    from sklearn.metrics import brier_score_loss

    y, s = label_matrix(labels), np.asarray(scores, dtype=np.float64).reshape(len(labels), -1)
    if task == MULTI_LABEL:
        return float(np.mean([brier_score_loss(y[:, i], np.clip(s[:, i], 0, 1))
                              for i in range(y.shape[1])]))  # fmt: skip
    if task == "binary-class":
        return float(brier_score_loss(y[:, 0], np.clip(positive_probability(s), 0, 1)))
    probs = np.clip(s, 0, None)
    probs = probs / probs.sum(axis=1, keepdims=True)
    return float(brier_score_loss(y[:, 0], probs, labels=list(range(s.shape[1]))))


def balanced_accuracy(labels, scores, task: str) -> float:
    """scikit-learn's ``balanced_accuracy_score`` of getACC's decisions (per label then
    averaged for multi-label)."""
    from sklearn.metrics import balanced_accuracy_score

    y = label_matrix(labels)
    pred = predicted_labels(np.asarray(scores, dtype=np.float64), task).reshape(len(y), -1)
    cols = range(y.shape[1]) if task == MULTI_LABEL else [0]
    return float(np.mean([balanced_accuracy_score(y[:, i], pred[:, i]) for i in cols]))


def with_interval(value: float, lo: float | None, hi: float | None, digits: int = 3, *,
                  std: float | None = None) -> str:  # fmt: skip
    """``0.912 [0.851, 0.961]``, ``0.912 ± 0.004 [0.851, 0.961]`` with a ``std``; without an
    interval, the value (± std) alone."""
    text = f"{value:.{digits}f}"
    if std is not None and np.isfinite(std):
        text += f" ± {std:.{digits}f}"
    if lo is None or hi is None or not (np.isfinite(lo) and np.isfinite(hi)):
        return text
    return f"{text} [{lo:.{digits}f}, {hi:.{digits}f}]"


def inside(value: float, lo: float | None, hi: float | None, digits: int = 3) -> bool:
    """Whether a published ``value`` (printed with ``digits`` decimals) lies in [lo, hi]."""
    if lo is None or hi is None:
        return False
    return round(lo, digits) <= round(value, digits) <= round(hi, digits)
