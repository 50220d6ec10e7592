"""Cross-validation folds: stratified, disjoint, covering train + val and nothing of test,
the same for the same seed; ``bench train --cv``'s bad input (the run end to end:
``tests/e2e/test_folds_runs.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import make_npz

from bench.data.folds import check_cv, fit_sizes, fold_data, fold_ids, fold_splits, pool
from bench.data.spec import DatasetSpec
from bench.data.splits import Split, Splits, TrainVal
from bench.errors import ConfigError

TESTS = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1",
       "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}  # fmt: skip


def _data(n_train: int = 70, n_val: int = 20) -> TrainVal:
    rng = np.random.default_rng(1)
    spec = DatasetSpec(name="t", task="multi-class", n_channels=1, class_names=("a", "b", "c"))

    def split(n, offset):
        labels = rng.choice(3, size=(n, 1), p=[0.6, 0.3, 0.1])
        images = (np.arange(n) + offset).reshape(n, 1, 1).astype(np.int64) * np.ones((1, 2, 2))
        return Split(images, labels)

    return TrainVal(spec, 28, split(n_train, 0), split(n_val, n_train))


def test_folds_are_stratified_disjoint_and_cover_the_pool():
    data = _data()
    labels = pool(data).labels
    folds = fold_ids(labels, 5, seed=3)
    assert sorted(set(folds)) == [0, 1, 2, 3, 4]
    for c in range(3):  # each class dealt evenly: fold counts differ by at most one
        counts = np.bincount(folds[labels[:, 0] == c], minlength=5)
        assert counts.max() - counts.min() <= 1
    assert np.bincount(folds).max() - np.bincount(folds).min() <= 1
    seen = []
    for i in range(5):
        part = fold_data(data, folds, i)
        held = part.val.images[:, 0, 0].astype(int).tolist()
        train = part.train.images[:, 0, 0].astype(int).tolist()
        assert not set(held) & set(train) and len(held) + len(train) == 90
        seen += held
    assert sorted(seen) == list(range(90))  # every train and val item held out exactly once
    np.testing.assert_array_equal(folds, fold_ids(labels, 5, seed=3))
    assert not np.array_equal(folds, fold_ids(labels, 5, seed=4))


def test_fold_splits_hold_out_each_fold_once_and_keep_the_test_split():
    data = _data()
    test = Split(np.full((9, 2, 2), -1.0), np.zeros((9, 1), dtype=np.int64))
    splits = Splits(data.spec, 28, data.train, data.val, test)
    folds = fold_ids(pool(data).labels, 4, seed=2)
    pairs = list(fold_splits(splits, 4, seed=2))
    assert [seed for seed, _ in pairs] == [2, 3, 4, 5]  # fold i: seed + i
    held = []
    for i, (_, fit) in enumerate(pairs):
        val = fit.val.images[:, 0, 0].astype(int)
        assert sorted(val) == sorted(np.flatnonzero(folds == i))  # fold i is its val
        assert len(fit.train) + len(val) == 90 and fit.test is test
        held += val.tolist()
    assert sorted(held) == list(range(90))
    n_val = int((folds == 0).sum())
    assert fit_sizes(data, folds) == (90 - n_val, n_val, 0)  # a small fold is scored each epoch
    assert fit_sizes(data, None) == (70, 20, 0)


def test_a_large_held_out_fold_is_reported_on_a_subsample_and_scored_once(monkeypatch):
    from bench.data import subsample

    data = _data()
    folds = fold_ids(pool(data).labels, 4, seed=2)
    n_val = int((folds == 0).sum())
    monkeypatch.setattr(subsample, "REPORT_VAL_MAX", 10)
    assert fit_sizes(data, folds) == (90 - n_val, 10, n_val)
    assert fit_sizes(data, None) == (70, 20, 0)  # the official val split is scored each epoch


def test_bad_fold_counts_are_refused():
    labels = pool(_data()).labels
    smallest = int(np.bincount(labels[:, 0]).min())
    with pytest.raises(ConfigError, match="--cv 1: give at least 2 folds"):
        check_cv(1)
    with pytest.raises(ConfigError, match=f"the smallest class has {smallest} item"):
        check_cv(smallest + 1, labels)
    check_cv(smallest, labels)


@pytest.mark.parametrize(
    "flag,needle",
    [(["--cv", "1"], "--cv 1: give at least 2 folds"),
     (["--cv", "9"], "--cv 9: the smallest class has 8 item(s)"),
     (["--cv", "two"], "invalid int value: 'two'"),
     (["--cv", "3", "--seeds", "2"], "fits one model per fold")],
)  # fmt: skip
def test_bad_cv_is_one_line_exit_2(tmp_path, flag, needle):
    npz = make_npz(tmp_path / "tiny.npz", counts=(12, 4, 8))
    out = tmp_path / "runs"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "train", "--dataset", f"npz:{npz}", "--model",
         "small_cnn", "--epochs", "1", "--out", str(out), *flag],
        env=ENV, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], lines
    assert not out.exists()
