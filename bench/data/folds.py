"""Stratified, seeded K-fold cross-validation over the data a search may see: train + val
(MedMNIST's official splits, a folder's or an npz's non-test splits). The test split is
never in a fold.

Items are grouped by label pattern; each group is shuffled by the seed and dealt round-robin
over the folds, continuing where the previous group stopped, so every fold holds each
class's share (within one item) and the folds are disjoint and cover the pool.
"""

from __future__ import annotations

import numpy as np

from bench.data.splits import Split, TrainVal
from bench.data.subsample import report_size
from bench.errors import ConfigError

FOLDS_FILE = "folds.json"


def pool(data: TrainVal) -> Split:
    """Train and val as one split (train first)."""
    return Split(np.concatenate([data.train.images, data.val.images]), pool_labels(data))


def pool_labels(data: TrainVal) -> np.ndarray:
    """The labels of :func:`pool` (no image is copied)."""
    return np.concatenate([data.train.labels, data.val.labels])


def check_cv(k: int, labels: np.ndarray | None = None, *, multilabel: bool = False) -> None:
    """Refuse a ``--cv`` that cannot give every fold every class (without ``labels``, only
    the fold count is checked: before any data is loaded).

    Raises:
        ConfigError: ``k < 2`` or ``k`` above the smallest class (multi-label: the rarest
            positive label).
    """
    if k < 2:
        raise ConfigError(f"--cv {k}: give at least 2 folds (or leave --cv out)")
    if labels is None:
        return
    labels = np.asarray(labels).reshape(len(labels), -1)
    if multilabel:
        smallest = int(labels.sum(axis=0).min())
    else:
        smallest = int(np.unique(labels[:, 0], return_counts=True)[1].min())
    if k > smallest:
        raise ConfigError(
            f"--cv {k}: the smallest class has {smallest} item(s) in train + val, so some "
            f"fold would lack it; use --cv {max(2, smallest)} or fewer"
        )


def fold_ids(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """The fold (0..k-1) of each item: stratified by label pattern, seeded."""
    labels = np.asarray(labels).reshape(len(labels), -1)
    _, groups = np.unique(labels, axis=0, return_inverse=True)
    groups = groups.reshape(-1)
    rng = np.random.default_rng(seed)
    folds = np.empty(len(labels), dtype=np.int64)
    start = 0
    for group in range(int(groups.max()) + 1 if len(groups) else 0):
        idx = rng.permutation(np.flatnonzero(groups == group))
        folds[idx] = (start + np.arange(len(idx))) % k
        start = (start + len(idx)) % k
    return folds


def fold_data(data: TrainVal, folds: np.ndarray, i: int, both: Split | None = None) -> TrainVal:
    """Fold ``i`` held out as val, the other folds as train (of the pooled train + val;
    ``both`` is that pool when the caller already holds it)."""
    both = both if both is not None else pool(data)
    held = folds == i
    return TrainVal(data.spec, data.data_size, Split(both.images[~held], both.labels[~held]),
                    Split(both.images[held], both.labels[held]))  # fmt: skip


def fit_sizes(data: TrainVal, folds: np.ndarray | None) -> tuple[int, int, int]:
    """``(train, val scored each epoch, val scored once)`` sizes of one trial's fit: the
    splits', or with ``folds`` (:func:`fold_ids`) the first fold's (the others differ by at
    most one item per class), whose model keeps its last epoch: its reports score a
    subsample of the held-out fold, then the whole fold is scored once (``bench.train.fit``)."""
    if folds is None:
        return len(data.train), len(data.val), 0
    n_val = int((folds == 0).sum())
    n_report = report_size(n_val)
    return len(data.train) + len(data.val) - n_val, n_report, n_val if n_report < n_val else 0


def refit_splits(splits):
    """``splits`` for a refit after cross-validation: the whole train + val pool as train,
    an empty val split (the fit trains its epochs and keeps the last weights), the test
    split unchanged."""
    from bench.data.splits import Splits

    both = pool(splits.train_val())
    empty = Split(both.images[:0], both.labels[:0])
    return Splits(splits.spec, splits.data_size, both, empty, splits.test)


def final_fit_sizes(data: TrainVal, cv: int | None) -> tuple[int, int]:
    """Train and val sizes of one of ``bench run``'s final fits: the splits', or with
    ``--cv`` a refit on the pool (:func:`refit_splits`: no val)."""
    if not cv:
        return len(data.train), len(data.val)
    return len(data.train) + len(data.val), 0


def fold_splits(splits, k: int, seed: int):
    """Yield ``(seed + i, Splits)``: fold ``i`` held out as val, the other folds as train,
    the test split unchanged (cross-validation bagging: one model per fold). One fold's
    copy at a time."""
    from bench.data.splits import Splits

    data = splits.train_val()
    both = pool(data)
    folds = fold_ids(both.labels, k, seed)
    for i in range(k):
        part = fold_data(data, folds, i, both)
        yield seed + i, Splits(splits.spec, splits.data_size, part.train, part.val, splits.test)


def save_folds(run_dir, folds: np.ndarray, seed: int) -> None:
    """``folds.json`` in a run folder: the fold of each train + val item (train first)."""
    from pathlib import Path

    from bench.files import write_json

    write_json(Path(run_dir) / FOLDS_FILE, {"k": int(folds.max()) + 1, "seed": seed,
                                            "pool": "train+val", "folds": folds})  # fmt: skip
