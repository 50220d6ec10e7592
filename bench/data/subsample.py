"""Seeded stratified subsamples of a split: a trial's share of train, and the val rows a
``keep_last`` fit's per-epoch reports score (``bench.train.fit``; ``bench.data.folds`` sizes
a fold's reports with the same rule)."""

from __future__ import annotations

import numpy as np

REPORT_VAL_MAX = 2048  # a keep_last fit's per-epoch reports score at most this many val items


def stratified_subsample(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of a seeded subsample keeping each label pattern's share (>= 1 each)."""
    labels = np.asarray(labels).reshape(len(labels), -1)
    if fraction >= 1:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    _, inverse = np.unique(labels, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    keep = []
    for group in range(int(inverse.max()) + 1):
        idx = np.flatnonzero(inverse == group)
        n = max(1, int(round(fraction * len(idx))))
        keep.append(rng.choice(idx, size=n, replace=False))
    return np.sort(np.concatenate(keep))


def report_rows(labels: np.ndarray, seed: int) -> np.ndarray | None:
    """The val rows a ``keep_last`` fit's per-epoch reports score: a seeded stratified
    subsample of about :data:`REPORT_VAL_MAX` items, the same for every fit of that seed
    (None: the whole val split, when it is no larger)."""
    if len(labels) <= REPORT_VAL_MAX:
        return None
    return stratified_subsample(labels, REPORT_VAL_MAX / len(labels), seed)


def report_size(n_val: int) -> int:
    """Val items a ``keep_last`` fit's per-epoch report scores (:func:`report_rows`)."""
    return min(n_val, REPORT_VAL_MAX)
