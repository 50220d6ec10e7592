"""The fit loop: every task type, determinism, deadline, divergence, schedules, early stop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from bench.data.load import load_splits
from bench.data.spec import DatasetSpec
from bench.data.splits import Split, TrainVal
from bench.data.subsample import stratified_subsample
from bench.errors import ConfigError
from bench.train import (
    Deadline,
    DivergedError,
    TrainHP,
    fit,
    make_scheduler,
    predict,
)

TASKS = ["binary-class", "multi-class", "ordinal-regression", "multi-label, binary-class"]


def tiny_cnn(in_chans: int, n_out: int, dims: int = 2) -> nn.Module:
    conv, bn, pool = (
        (nn.Conv2d, nn.BatchNorm2d, nn.AdaptiveAvgPool2d)
        if dims == 2
        else (nn.Conv3d, nn.BatchNorm3d, nn.AdaptiveAvgPool3d)
    )
    return nn.Sequential(
        conv(in_chans, 8, 3, padding=1),
        bn(8),
        nn.ReLU(),
        pool(1),
        nn.Flatten(),
        nn.Linear(8, n_out),
    )


def fresh(splits, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return tiny_cnn(splits.spec.n_channels, splits.spec.n_outputs)


class CountingDeadline(Deadline):
    """A deadline that expires after ``n`` checks: stops at a known batch, without timing."""

    def __init__(self, n: int) -> None:
        super().__init__(3600)
        self.n, self.checks = n, 0

    def expired(self) -> bool:
        self.checks += 1
        return self.checks > self.n


@pytest.mark.parametrize("task", TASKS)
def test_every_task_type_trains(tiny_npz, task):
    splits = load_splits(tiny_npz(task=task, n_channels=3))
    hp = TrainHP(epochs=2, batch_size=16, lr=1e-2)
    result = fit(fresh(splits), splits.train_val(), hp, device="cpu", seed=0)
    assert [s.epoch for s in result.history] == [1, 2]
    assert result.stopped == "completed"
    assert all(math.isfinite(s.train_loss) for s in result.history)
    assert result.best_val == max(s.val_auc for s in result.history)
    model = fresh(splits)
    model.load_state_dict(result.best_state)
    scores = predict(model, splits.test.images, spec=splits.spec, device="cpu")
    assert scores.shape == (len(splits.test), splits.spec.n_outputs)
    if task != "multi-label, binary-class":
        np.testing.assert_allclose(scores.sum(1), 1.0, rtol=1e-5)
    assert ((scores >= 0) & (scores <= 1)).all()


def test_learnable_binary_reaches_high_val_auc(tiny_npz):
    splits = load_splits(tiny_npz(task="binary-class", counts=(96, 48, 16)))
    hp = TrainHP(epochs=4, batch_size=16, lr=1e-2)
    result = fit(fresh(splits), splits.train_val(), hp, device="cpu", seed=1)
    assert result.best_val > 0.8


def test_same_seed_same_metrics(tiny_npz):
    splits = load_splits(tiny_npz(task="multi-class"))
    hp = TrainHP(epochs=2, batch_size=16, lr=3e-3, optimizer="adamw", weight_decay=1e-3)
    runs = []
    for _ in range(2):
        model = fresh(splits, seed=5)
        result = fit(model, splits.train_val(), hp, device="cpu", seed=5)
        scores = predict(model, splits.test.images, spec=splits.spec, device="cpu")
        runs.append(([(s.train_loss, s.val_auc, s.val_acc) for s in result.history], scores))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    other = fit(fresh(splits, seed=5), splits.train_val(), hp, device="cpu", seed=6)
    assert [s.train_loss for s in other.history] != [r[0] for r in runs[0][0]]


def test_expired_deadline_still_returns_a_usable_result(tiny_npz):
    splits = load_splits(tiny_npz())
    result = fit(
        fresh(splits),
        splits.train_val(),
        TrainHP(epochs=50),
        device="cpu",
        seed=0,
        deadline=Deadline(0),
    )
    assert result.stopped == "deadline"
    assert len(result.history) == 1 and result.best_epoch == 1
    assert 0.0 <= result.best_val <= 1.0
    assert set(result.best_state) == set(fresh(splits).state_dict())


def test_deadline_stops_between_batches(tiny_npz):
    splits = load_splits(tiny_npz(counts=(160, 16, 16)))
    deadline = CountingDeadline(13)  # 10 batches of 16 per epoch: stops in epoch 2
    calls = []
    result = fit(
        fresh(splits),
        splits.train_val(),
        TrainHP(epochs=5, batch_size=16),
        device="cpu",
        seed=0,
        deadline=deadline,
        on_epoch=calls.append,
    )
    assert deadline.checks == 14
    assert result.stopped == "deadline"
    assert [s.epoch for s in result.history] == [1]  # the partial epoch is not evaluated
    assert [s.epoch for s in calls] == [1]


def test_nan_loss_raises_diverged(tiny_npz):
    splits = load_splits(tiny_npz())
    model = nn.Sequential(fresh(splits), nn.Dropout(0.0))
    with torch.no_grad():
        model[0][-1].bias.fill_(float("nan"))
    with pytest.raises(DivergedError):
        fit(model, splits.train_val(), TrainHP(epochs=2, batch_size=16), device="cpu", seed=0)


def test_huge_lr_diverges(tiny_npz):
    splits = load_splits(tiny_npz())
    hp = TrainHP(epochs=3, batch_size=16, optimizer="sgd", lr=1e30, schedule="none")
    with pytest.raises(DivergedError):
        fit(fresh(splits), splits.train_val(), hp, device="cpu", seed=0)


def test_on_epoch_exception_propagates(tiny_npz):
    import optuna

    splits = load_splits(tiny_npz())

    def prune(stats):
        if stats.epoch == 2:
            raise optuna.TrialPruned()

    with pytest.raises(optuna.TrialPruned):
        fit(
            fresh(splits),
            splits.train_val(),
            TrainHP(epochs=5, batch_size=16),
            device="cpu",
            seed=0,
            on_epoch=prune,
        )


def test_step_schedule_multiplies_lr_at_milestones(tiny_npz):
    splits = load_splits(tiny_npz())
    hp = TrainHP(epochs=4, batch_size=16, schedule="step", lr=1e-3, gamma=0.1)
    result = fit(fresh(splits), splits.train_val(), hp, device="cpu", seed=0)
    assert [s.lr for s in result.history] == pytest.approx([1e-3, 1e-3, 1e-4, 1e-5])
    paper = make_scheduler(
        torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1), TrainHP(epochs=100, schedule="step")
    )
    assert sorted(paper.milestones) == [50, 75]


class Frozen(nn.Module):
    """A fixed linear model plus a parameter that gets a zero gradient: val never changes."""

    def __init__(self, in_features: int, n_out: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, n_out).requires_grad_(False)
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return self.linear(x.flatten(1)) + 0 * self.unused


def epoch_snapshots(model):
    """``(snapshots, on_epoch)``: ``on_epoch`` appends a copy of the model's weights."""
    snapshots: list[dict] = []

    def snap(stats) -> None:
        snapshots.append({k: v.detach().clone() for k, v in model.state_dict().items()})

    return snapshots, snap


def assert_holds(model, snapshot: dict) -> None:
    """The model's weights equal ``snapshot``."""
    for name, value in model.state_dict().items():
        assert torch.equal(value, snapshot[name]), name


def test_a_fit_with_no_val_split_trains_every_epoch_and_keeps_the_last_weights(tiny_npz):
    from bench.data.folds import refit_splits

    splits = refit_splits(load_splits(tiny_npz(task="multi-class", counts=(40, 16, 8))))
    assert len(splits.train) == 56 and len(splits.val) == 0
    model = fresh(splits, seed=3)
    snapshots, snap = epoch_snapshots(model)
    hp = TrainHP(epochs=3, batch_size=16, lr=1e-2, early_stop=1)
    result = fit(model, splits.train_val(), hp, device="cpu", seed=3, on_epoch=snap)
    assert result.stopped == "completed" and result.best_epoch == 3 and len(snapshots) == 3
    assert result.best_val is None and result.val_scores is None
    assert all(s.val_auc is None and s.val_score is None for s in result.history)
    assert [set(h) for h in result.history_dicts()] == [{"epoch", "train_loss", "lr",
                                                         "seconds"}] * 3  # fmt: skip
    assert_holds(model, snapshots[-1])
    assert any(not torch.equal(snapshots[0][k], snapshots[-1][k]) for k in snapshots[0])


def test_keep_last_trains_every_epoch_and_scores_the_last_weights_on_val(tiny_npz):
    splits = load_splits(tiny_npz(task="multi-class", counts=(40, 16, 8)))
    model = fresh(splits, seed=3)
    snapshots, snap = epoch_snapshots(model)
    hp = TrainHP(epochs=4, batch_size=16, lr=1e-2, early_stop=1)
    result = fit(model, splits.train_val(), hp, device="cpu", seed=3, on_epoch=snap,
                 keep_last=True)  # fmt: skip
    assert result.stopped == "completed" and result.best_epoch == 4 and len(snapshots) == 4
    assert result.best_val == pytest.approx(result.history[-1].val_score)
    assert_holds(model, snapshots[-1])
    scores = predict(model, splits.val.images, spec=splits.spec, device="cpu")
    np.testing.assert_allclose(result.val_scores, scores, atol=1e-6)


@pytest.mark.parametrize("reports", [True, False], ids=["on_epoch", "silent"])
def test_keep_last_reports_on_a_val_subsample_and_scores_all_of_val_once(
    tiny_npz, monkeypatch, reports
):
    from bench import scoring as metrics
    from bench.data import subsample

    monkeypatch.setattr(subsample, "REPORT_VAL_MAX", 12)
    splits = load_splits(tiny_npz(task="multi-class", counts=(40, 30, 8)))
    val = splits.val
    rows = subsample.report_rows(val.labels, seed=3)
    assert 12 <= len(rows) < len(val)
    assert set(np.unique(val.labels[rows])) == set(np.unique(val.labels))  # stratified
    model = fresh(splits, seed=3)
    seen: list[float] = []
    result = fit(model, splits.train_val(), TrainHP(epochs=3, batch_size=16, lr=1e-2),
                 device="cpu", seed=3, keep_last=True,
                 on_epoch=(lambda st: seen.append(st.val_score)) if reports else None)  # fmt: skip
    scores = predict(model, val.images, spec=splits.spec, device="cpu")
    np.testing.assert_allclose(result.val_scores, scores, atol=1e-6)  # all of val, once
    assert result.best_val == pytest.approx(metrics.auc(val.labels, scores, "multi-class"))
    last = result.history[-1].val_score
    if reports:  # each epoch on the subsample: the last one is the kept model's on rows
        assert len(seen) == 3 and seen[-1] == last
        assert last == pytest.approx(metrics.auc(val.labels[rows], scores[rows], "multi-class"))
    else:  # nobody reads an epoch's score: none is taken
        assert all(st.val_score is None for st in result.history)


def test_early_stop_when_val_does_not_improve(tiny_npz):
    splits = load_splits(tiny_npz())
    torch.manual_seed(0)
    hp = TrainHP(epochs=10, batch_size=16, early_stop=2)
    result = fit(Frozen(28 * 28, 2), splits.train_val(), hp, device="cpu", seed=0)
    assert result.stopped == "early_stop"
    assert len(result.history) == 3 and result.best_epoch == 1


def test_resize_to_img_size(tiny_npz):
    splits = load_splits(tiny_npz(n_channels=3))
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 2))  # only accepts 32 px
    result = fit(
        model,
        splits.train_val(),
        TrainHP(epochs=1, batch_size=16),
        device="cpu",
        seed=0,
        img_size=32,
    )
    assert result.stopped == "completed"
    scores = predict(model, splits.test.images, spec=splits.spec, device="cpu", img_size=32)
    assert scores.shape == (16, 2)


def test_volumes_pass_through():
    rng = np.random.default_rng(0)
    spec = DatasetSpec("vol", "binary-class", 1, ("a", "b"), kind="npz", ndim=3, sizes=(8,))

    def split(n):
        y = np.arange(n)[:, None] % 2
        x = rng.integers(0, 100, size=(n, 8, 8, 8)) + 100 * y[:, :, None, None]
        return Split(x.astype(np.uint8), y)

    tv = TrainVal(spec, 8, split(32), split(16))
    torch.manual_seed(0)
    result = fit(
        tiny_cnn(1, 2, dims=3), tv, TrainHP(epochs=3, batch_size=8, lr=1e-2), device="cpu", seed=0
    )
    assert result.best_val > 0.8


def test_train_fraction_is_stratified_and_seeded(tiny_npz):
    labels = np.repeat([0, 1, 2], [60, 30, 10])[:, None]
    idx = stratified_subsample(labels, 0.5, seed=3)
    assert np.bincount(labels[idx, 0]).tolist() == [30, 15, 5]
    assert np.array_equal(idx, stratified_subsample(labels, 0.5, seed=3))
    assert not np.array_equal(idx, stratified_subsample(labels, 0.5, seed=4))
    splits = load_splits(tiny_npz(counts=(96, 16, 16)))
    hp = TrainHP(epochs=1, batch_size=16, train_fraction=0.25)
    assert fit(fresh(splits), splits.train_val(), hp, device="cpu", seed=0).stopped == "completed"


def test_split_params_and_validation():
    hp, rest = TrainHP.split_params({"lr": 0.01, "optimizer": "sgd", "depth": 3, "dropout": 0.1})
    assert (hp.lr, hp.optimizer, hp.epochs) == (0.01, "sgd", 10)
    assert rest == {"depth": 3, "dropout": 0.1}
    for bad in (
        {"optimizer": "lbfgs"},
        {"schedule": "poly"},
        {"lr": 0},
        {"metric": "f1"},
        {"train_fraction": 0},
    ):
        with pytest.raises(ConfigError):
            TrainHP(**bad)


def test_deadline_clock():
    assert Deadline(0).expired() and Deadline(0).remaining() == 0
    assert not Deadline(3600).expired() and Deadline(3600).remaining() > 3500
    import time

    assert Deadline.at(time.monotonic() + 3600).remaining() > 3500


def test_eval_batches_are_sized_by_input_values():
    from bench.train import EVAL_BATCH, eval_batch_size

    assert eval_batch_size((1000, 1, 28, 28)) == EVAL_BATCH
    assert eval_batch_size((1000, 1, 28, 28, 28)) == 95
    assert eval_batch_size((1000, 1, 64, 64, 64)) == 8  # not 512 volumes: 17 GB at 64^3
    assert eval_batch_size((1000, 3, 224, 224)) == 13
    assert eval_batch_size((1000, 1, 28, 28), 224) == 41  # resized inputs count at their size


def test_scores_do_not_depend_on_the_eval_batch():
    import torch

    from bench.train import predict_tensor

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(8**3, 3))
    x = torch.randint(0, 256, (20, 1, 8, 8, 8), dtype=torch.uint8)
    a = predict_tensor(model, x, task="multi-class", device=torch.device("cpu"), batch_size=3)
    b = predict_tensor(model, x, task="multi-class", device=torch.device("cpu"))
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
