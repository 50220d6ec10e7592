"""The uncertainty of test figures: the resampled AUC/ACC equal medmnist's getAUC/getACC on
every task type, the intervals agree with an independent bootstrap through medmnist's own
functions, degenerate predictors give exact intervals, the paired difference, calibration
figures and the saved predictions file."""

from __future__ import annotations

import numpy as np
import pytest
from medmnist.evaluator import getACC, getAUC

from bench.results.intervals import (
    Group,
    auc_columns,
    balanced_accuracy,
    brier,
    difference,
    distributions,
    expected_calibration_error,
    interval,
    item_correct,
    resampled_auc,
    with_interval,
)
from bench.results.predictions import (
    TestPredictions,
    load_test_predictions,
    save_test_predictions,
)
from bench.results.uncertainty import record_fields

BINARY, MULTI, LABELS = "binary-class", "multi-class", "multi-label, binary-class"


def _data(task: str, n: int = 200, classes: int = 3, seed: int = 0):
    """Labels and informative, rounded probabilities (ties included) for ``task``."""
    rng = np.random.default_rng(seed)
    if task == LABELS:
        y = rng.integers(0, 2, (n, classes))
        s = np.clip(0.6 * y + 0.4 * rng.random((n, classes)), 0, 1)
    else:
        k = 2 if task == BINARY else classes
        y = rng.integers(0, k, (n, 1))
        s = rng.random((n, k)) + 0.5 * np.eye(k)[y[:, 0]]
        s = s / s.sum(axis=1, keepdims=True)
    return y, np.round(s, 2)


@pytest.mark.parametrize("task", [BINARY, MULTI, LABELS, "ordinal-regression"])
def test_resampled_figures_equal_medmnist(task) -> None:
    y, s = _data(task, seed=3)
    rng = np.random.default_rng(1)
    idx = rng.integers(0, len(y), (4, len(y)))
    aucs = resampled_auc(auc_columns(y, s, task), idx)
    accs = item_correct(y, s, task)[idx].mean(axis=1)
    for row, a, c in zip(idx, aucs, accs, strict=True):
        assert a == pytest.approx(getAUC(y[row], s[row], task), abs=1e-12)
        assert c == pytest.approx(getACC(y[row], s[row], task), abs=1e-12)


def test_one_column_binary_scores_equal_medmnist() -> None:
    y, s = _data(BINARY, seed=4)
    one = s[:, 1:]
    idx = np.arange(len(y))[None]
    assert resampled_auc(auc_columns(y, one, BINARY), idx)[0] == pytest.approx(
        getAUC(y, one, BINARY), abs=1e-12
    )
    assert item_correct(y, one, BINARY).mean() == pytest.approx(getACC(y, one, BINARY))


def _independent(y, s, task: str, n_boot: int = 1000, seed: int = 123):
    """A plain bootstrap through medmnist's getAUC/getACC: other resamples, same method."""
    rng = np.random.default_rng(seed)
    aucs, accs = [], []
    for _ in range(n_boot):
        i = rng.integers(0, len(y), len(y))
        aucs.append(getAUC(y[i], s[i], task))
        accs.append(getACC(y[i], s[i], task))
    return np.percentile(aucs, [2.5, 97.5]), np.percentile(accs, [2.5, 97.5])


@pytest.mark.parametrize("task", [BINARY, MULTI])
def test_intervals_agree_with_an_independent_medmnist_bootstrap(task) -> None:
    y, s = _data(task, n=300, seed=5)
    dist = distributions(y, [Group("x", (s,))], task)
    auc_ref, acc_ref = _independent(y, s, task)
    assert np.allclose(interval(dist[("x", "auc")]), auc_ref, atol=0.01)
    assert np.allclose(interval(dist[("x", "acc")]), acc_ref, atol=0.01)
    lo, hi = interval(dist[("x", "auc")])
    assert lo < getAUC(y, s, task) < hi


def test_constant_and_perfect_predictors_have_exact_intervals() -> None:
    y = np.array([0, 1, 1, 0, 1] * 40)[:, None]
    constant = np.full((len(y), 2), 0.5)
    perfect = np.stack([1 - y[:, 0], y[:, 0]], axis=1).astype(float)
    dist = distributions(y, [Group("c", (constant,)), Group("p", (perfect,))], BINARY)
    assert interval(dist[("c", "auc")]) == (0.5, 0.5)
    assert interval(dist[("p", "acc")]) == (1.0, 1.0)
    assert interval(dist[("p", "auc")]) == (1.0, 1.0)


def test_paired_difference_of_identical_and_of_better_predictions() -> None:
    y, s = _data(BINARY, n=200, seed=6)
    worse = s.copy()
    clear = np.abs(s[:, 1] - 0.5) > 0.01  # flipping its columns flips the decision
    right = np.flatnonzero(((s[:, 1] > 0.5) == (y[:, 0] == 1)) & clear)[:20]
    worse[right] = worse[right][:, ::-1]  # 20 items it gets wrong that the other gets right
    dist = distributions(y, [Group("a", (s,)), Group("b", (s,)), Group("w", (worse,))], BINARY)
    same = difference(0.0, dist[("a", "acc")], dist[("b", "acc")])
    assert (same.value, same.lo, same.hi, same.p) == (0.0, 0.0, 0.0, 1.0)
    gap = getACC(y, s, BINARY) - getACC(y, worse, BINARY)
    assert gap == pytest.approx(0.10)
    better = difference(gap, dist[("a", "acc")], dist[("w", "acc")])
    assert better.excludes_zero and better.lo > 0 and better.p < 0.05


def test_same_items_same_resamples() -> None:
    y, s = _data(BINARY, seed=7)
    one = distributions(y, [Group("x", (s,))], BINARY)[("x", "auc")]
    two = distributions(y, [Group("y", (s * 0.5,)), Group("x", (s,))], BINARY)[("x", "auc")]
    assert np.array_equal(one, two)


def test_calibration_and_brier_on_known_values() -> None:
    y = np.array([1] * 8 + [0] * 2)[:, None]
    calibrated = np.stack([np.full(10, 0.2), np.full(10, 0.8)], axis=1)
    overconfident = np.stack([np.full(10, 0.1), np.full(10, 0.9)], axis=1)
    assert expected_calibration_error(y, calibrated, BINARY) == pytest.approx(0.0, abs=1e-12)
    assert expected_calibration_error(y, overconfident, BINARY) == pytest.approx(0.1)
    assert brier(y, overconfident, BINARY) == pytest.approx((8 * 0.01 + 2 * 0.81) / 10)
    two = np.concatenate([y, 1 - y], axis=1)
    per_label = np.concatenate([overconfident[:, 1:], overconfident[:, :1]], axis=1)
    assert expected_calibration_error(two, per_label, LABELS) == pytest.approx(0.1)
    assert balanced_accuracy(y, overconfident, BINARY) == pytest.approx(0.5)


def test_record_fields_from_a_saved_file_agree_with_medmnist(tmp_path) -> None:
    y, s = _data(BINARY, n=156, seed=8)
    rng = np.random.default_rng(9)
    fits = {f"seed{i}": np.clip(s + rng.normal(0, 0.05, s.shape), 0, 1) for i in range(3)}
    ens = np.mean(list(fits.values()), axis=0)
    path = tmp_path / "test_predictions.npz"
    save_test_predictions(path, TestPredictions("breastmnist", BINARY, y, fits,
                                                tuple(fits), ens, ens))  # fmt: skip
    preds = load_test_predictions(path)
    assert preds.fits["seed0"].dtype == np.float32 and preds.labels.shape == (156, 1)
    fields = record_fields(preds)
    saved = preds.ensemble.astype(np.float64)
    auc_ref, acc_ref = _independent(y, saved, BINARY)
    assert np.allclose([fields["ensemble_test_auc_lo"], fields["ensemble_test_auc_hi"]],
                       auc_ref, atol=0.01)  # fmt: skip
    assert np.allclose([fields["ensemble_test_acc_lo"], fields["ensemble_test_acc_hi"]],
                       acc_ref, atol=0.01)  # fmt: skip
    assert fields["n_test"] == 156 and len(fields["fit_intervals"]) == 3
    assert fields["test_auc_lo"] < fields["test_auc_hi"]
    assert fields["seed_ensemble_test_auc_lo"] == fields["ensemble_test_auc_lo"]


def test_saved_probabilities_keep_a_confident_model_s_auc(tmp_path) -> None:
    """Saturated probabilities (sigmoid of large logits) must not tie once saved: float16
    makes 0.9995 and 1.0 one value (this AUC moves by 0.0016; a PneumoniaMNIST run's by up
    to 0.013); float32 keeps it to 1e-4."""
    rng = np.random.default_rng(10)
    y = rng.integers(0, 2, (624, 1))
    logits = 6.0 + 1.5 * rng.standard_normal(624) + 1.0 * y[:, 0]  # p from 0.98 to 1 - 1e-6
    p = 1 / (1 + np.exp(-logits))
    s = np.stack([1 - p, p], axis=1)
    path = tmp_path / "p.npz"
    save_test_predictions(path, TestPredictions("pneumoniamnist", BINARY, y, {"seed0": s},
                                                ("seed0",)))  # fmt: skip
    saved = load_test_predictions(path).fits["seed0"].astype(np.float64)
    assert getAUC(y, saved, BINARY) == pytest.approx(getAUC(y, s, BINARY), abs=1e-4)


def test_a_corrupt_file_is_one_error(tmp_path) -> None:
    from bench.errors import BenchError

    bad = tmp_path / "x.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(BenchError, match="not a bench test-predictions file"):
        load_test_predictions(bad)


def test_with_interval_text() -> None:
    assert with_interval(0.91234, 0.85, 0.961) == "0.912 [0.850, 0.961]"
    assert with_interval(0.9, 0.8, 0.95, std=0.0123) == "0.900 ± 0.012 [0.800, 0.950]"
    assert with_interval(0.9, None, None) == "0.900"
