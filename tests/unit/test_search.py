"""The search side: storages, study names, the trial time plan and the objective, with the
real optuna, torch and the tiny test families."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time

import bench_tiny_plugin  # noqa: F401  (registers tiny_mlp, tiny_boom, tiny_nan)
import optuna
import pytest
from optuna.storages.journal import JournalStorage
from optuna.trial import TrialState

from bench.data.load import load_splits
from bench.errors import BenchError
from bench.search.budget import budget_epochs, needed_throughput, plan_trial
from bench.search.objective import Objective, TrialFailed, best_config
from bench.search.spaces import resolve_space
from bench.search.storage import fail_dead_local_trials, open_storage, redact, storage_kind
from bench.search.study import make_pruner, study_name

optuna.logging.set_verbosity(optuna.logging.ERROR)


@pytest.fixture
def data(tiny_npz):
    return load_splits(tiny_npz(counts=(64, 32, 32))).train_val()


def _objective(data, families, *, max_epochs=3, end_in=120.0, **kw) -> Objective:
    space = resolve_space(families, augment=["none"], img_size=28)
    end: list[float] = []

    def search_end() -> float:  # end_in seconds after the first trial starts
        if not end:
            end.append(time.monotonic() + end_in)
        return end[0]

    return Objective(
        data, space, device="cpu", metric="auc", img_size=28, seed=0, max_epochs=max_epochs,
        search_end=search_end, cap_s=60.0, **kw,
    )  # fmt: skip


def test_objective_takes_only_train_and_val(tiny_npz) -> None:
    splits = load_splits(tiny_npz())
    with pytest.raises(TypeError, match="TrainVal"):
        _objective(splits, ["tiny_mlp"])
    obj = _objective(splits.train_val(), ["tiny_mlp"])
    assert not hasattr(obj.data, "test")


def test_failures_are_recorded_and_the_study_goes_on(data) -> None:
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    for family in ("tiny_boom", "tiny_nan", "tiny_mlp"):
        study.enqueue_trial({"family": family})
    events = []
    study.optimize(_objective(data, ["tiny_mlp", "tiny_boom", "tiny_nan"], on_event=events.append),
                   n_trials=3, catch=(TrialFailed,))  # fmt: skip
    boom, nan, mlp = study.trials
    assert boom.state == TrialState.FAIL
    assert "tiny_boom cannot be built" in boom.user_attrs["fail_reason"]
    assert nan.state == TrialState.PRUNED and nan.user_attrs["fail_reason"].startswith("diverged")
    assert mlp.state == TrialState.COMPLETE and 0.5 <= mlp.value <= 1.0
    attrs = mlp.user_attrs
    assert attrs["epochs_run"] == 3 and attrs["n_params"] == sum(
        p.numel() for p in _build(mlp, study).parameters()
    )
    assert attrs["fit_seconds"] > 0 and attrs["stopped"] == "completed"
    assert [e.epoch for e in events if e.kind == "epoch" and e.number == 2] == [1, 2, 3]


def _build(trial, study):
    from bench.models.registry import create_model

    space = resolve_space(["tiny_mlp", "tiny_boom", "tiny_nan"], augment=["none"], img_size=28)
    cfg = best_config(trial, space, "auc")
    return create_model(cfg.family, num_classes=2, in_chans=1, img_size=28,
                        **cfg.model_params)  # fmt: skip


def test_pruner_stops_a_trial_after_its_report(data) -> None:
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(1.1))
    study.optimize(_objective(data, ["tiny_mlp"], max_epochs=5), n_trials=1)
    (trial,) = study.trials
    assert trial.state == TrialState.PRUNED
    assert list(trial.intermediate_values) == [1] and trial.user_attrs["epochs_run"] == 1


def test_a_running_trial_stops_at_the_search_deadline(data) -> None:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as bench run does on a busy CPU; keeps the probe honest
    study = optuna.create_study(direction="maximize")
    try:
        study.optimize(_objective(data, ["tiny_mlp"], max_epochs=100_000, end_in=10.0), n_trials=1)
    finally:
        torch.set_num_threads(threads)
    (trial,) = study.trials
    assert trial.state == TrialState.COMPLETE, trial.user_attrs
    assert trial.user_attrs["stopped"] == "deadline"
    assert trial.user_attrs["epochs_run"] < 100_000


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_storage_keeps_trials_across_reopen(data, tmp_path, kind) -> None:
    url = str(tmp_path / "s.journal") if kind == "journal" else f"sqlite:///{tmp_path}/s.db"
    assert storage_kind(url) == kind
    name = "bench.tiny.28.deadbeef"

    def study():
        return optuna.create_study(
            storage=open_storage(url, default_journal=tmp_path / "unused"),
            study_name=name, direction="maximize", load_if_exists=True,
        )  # fmt: skip

    study().optimize(_objective(data, ["tiny_mlp"], max_epochs=2), n_trials=2)
    again = study()
    again.optimize(_objective(data, ["tiny_mlp"], max_epochs=2), n_trials=1)
    trials = again.get_trials()
    assert [t.number for t in trials] == [0, 1, 2]
    # every trial finished; on a heavily loaded machine the speed check may prune one
    finished = (TrialState.COMPLETE, TrialState.PRUNED)
    states = [(t.state.name, t.user_attrs.get("fail_reason")) for t in trials]
    assert all(t.state in finished for t in trials), states
    assert any(t.state == TrialState.COMPLETE for t in trials), states
    assert not (tmp_path / "unused").exists()


def test_unreachable_storage_is_one_line_without_password(tmp_path) -> None:
    with pytest.raises(BenchError) as info:
        open_storage("postgresql://bench:s3cret@127.0.0.1:1/x", default_journal=tmp_path / "j")
    msg = str(info.value)
    assert "cannot reach storage postgresql://bench:***@127.0.0.1:1/x" in msg
    assert "s3cret" not in msg and "\n" not in msg
    assert redact("postgresql://u:p@h/db") == "postgresql://u:***@h/db"


def test_study_name_and_epochs_from_budget() -> None:
    assert study_name("breastmnist", 28, "ab12cd34ef") == "bench.breastmnist.28.ab12cd34"
    assert study_name("npz:/x/y/tiny.npz", 28, "0123456789") == "bench.npz-tiny.28.01234567"
    assert [budget_epochs(s) for s in (10, 180, 600, 3600, 4 * 3600)] == [5, 17, 32, 77, 100]
    assert make_pruner("hyperband", 17)._max_resource == 17


def test_plan_trial_scales_epochs_then_data() -> None:
    kw = {"n_train": 1000, "n_val": 300, "max_epochs": 20}
    # 1100 image-equivalents per epoch at 1000 img/s: 1.1 s per epoch
    assert plan_trial(throughput=1000, seconds=60, **kw) == (20, 1.0)
    assert plan_trial(throughput=1000, seconds=15, **kw) == (13, 1.0)
    epochs, fraction = plan_trial(throughput=1000, seconds=6, **kw)
    assert epochs == 10 and fraction == pytest.approx(0.5)
    assert plan_trial(throughput=1000, seconds=1, **kw) == (3, 0.256)
    # before any trial has completed, the smallest trial: one epoch, on what fits of train
    assert plan_trial(throughput=1000, seconds=1, smallest=True, **kw) == (1, 0.9)
    assert plan_trial(throughput=1000, seconds=0.4, smallest=True, **kw) == (1, 0.3)
    assert plan_trial(throughput=1000, seconds=0.1, smallest=True, **kw) == (1, 0.256)
    big = {"n_train": 41_000, "n_val": 8800, "max_epochs": 17}  # Medical MNIST, 64 px
    assert plan_trial(throughput=400, seconds=20, **big) == (3, 0.1)  # then cut by its deadline
    # one val pass (8,800 images) and 5,000 train images: 20 s at 400 images/s
    assert plan_trial(throughput=400, seconds=20, smallest=True, **big) == (1, 0.124)
    # a --cv fold scored once on 3,000 images: 1 s at 1000 img/s comes off the trial's time
    assert plan_trial(throughput=1000, seconds=7, n_once=3000, **kw) == plan_trial(
        throughput=1000, seconds=6, **kw
    )


def test_a_trial_plan_for_fixed_inputs() -> None:
    """The objective's TrialPlan: plan_trial's epochs and fraction at the calibrated speed,
    the memory limit's batch, and why the plan is smaller than asked."""
    from bench.search.plan import Suggestion, make_plan
    from bench.train import TrainHP

    asked = Suggestion("small_cnn", {"width": 16}, TrainHP(batch_size=128, lr=0.01), "simple")
    kw = {"calib": 2.0, "sizes": (1000, 300, 0), "max_epochs": 20, "smallest": False}
    full = make_plan(asked, throughput=2000, seconds=60, **kw)  # 1000 img/s after calibration
    assert (full.epochs, full.train_fraction, full.n_images) == (20, 1.0, 1000)
    assert full.batch_size == 128 and full.family == "small_cnn"
    assert full.why == () and full.eval_batch is None and full.speed == 1000
    assert full.epoch_seconds(1.0) == pytest.approx(1100)  # image-equivalents of one epoch
    plan = make_plan(asked, throughput=2000, seconds=1, batch_size=64, eval_batch=256, **kw)
    assert (plan.epochs, plan.train_fraction, plan.n_images) == (3, 0.256, 256)
    assert plan.why == (
        "batch 128 capped to 64 by the memory limit",
        "1000.0 train images/s for 1s: 3 of 20 epochs on 25.6% of train",
    )
    hp = plan.train_hp()
    assert (hp.epochs, hp.train_fraction, hp.batch_size, hp.eval_batch, hp.lr) == (
        3, 0.256, 64, 256, 0.01
    )
    assert asked.hp.batch_size == 128 and asked.hp.epochs == 10  # the sampled hp is kept
    smallest = make_plan(asked, throughput=2000, seconds=1, **{**kw, "smallest": True})
    assert (smallest.epochs, smallest.train_fraction) == (1, 0.9)
    assert smallest.why[-1] == "no trial has completed yet: the smallest trial"
    assert smallest.describe() == (
        "1 epoch on 900 train images, batch 128 (1000.0 train images/s for 1s: 1 of 20 epochs "
        "on 90.0% of train; no trial has completed yet: the smallest trial)"
    )


def test_a_memory_capped_trial_trains_at_the_cap_and_records_it(data, monkeypatch) -> None:
    import torch

    from bench import train
    from bench.search import memory

    monkeypatch.setattr(memory, "batch_cap", lambda limit, **sizes: 16)
    monkeypatch.setattr(memory, "eval_cap", lambda limit, **sizes: 100)
    batches = []
    real_fit = train.fit
    monkeypatch.setattr(train, "fit", lambda model, part, hp, **kw: (
        batches.append((hp.batch_size, hp.eval_batch, hp.epochs)) or real_fit(model, part, hp, **kw)
    ))  # fmt: skip
    obj = _objective(data, ["tiny_mlp"], memory_limit=2**40)
    obj.device = torch.device("cpu")
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({**FIXED_MLP, "batch_size": 64})
    study.optimize(obj, n_trials=1)
    (trial,) = study.trials
    assert trial.state == TrialState.COMPLETE, trial.user_attrs.get("fail_reason")
    assert trial.user_attrs["batch_cap"] == 16 and trial.user_attrs["eval_cap"] == 100
    assert batches == [(16, 100, trial.user_attrs["epochs"])]
    assert best_config(trial, obj.space, "auc").hp.batch_size == 16


def test_dead_local_worker_trials_become_failed(tmp_path) -> None:
    storage = open_storage(str(tmp_path / "j.journal"), default_journal=tmp_path / "x")
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead, alive = study.ask(), study.ask()
    untagged = JournalStorage.create_new_trial(storage, study._study_id)  # as a cut journal has
    untagged = next(t for t in study.get_trials() if t._trial_id == untagged)
    lr = dead.suggest_float("lr", 1e-4, 1e-2, log=True)
    dead.set_user_attr("worker", f"{socket.gethostname()}:{proc.stdout.strip()}")
    assert alive.user_attrs["worker"] == f"{socket.gethostname()}:{__import__('os').getpid()}"
    assert fail_dead_local_trials(study) == [dead.number]
    states = {t.number: t.state for t in study.get_trials()}
    assert states == {dead.number: TrialState.FAIL, alive.number: TrialState.RUNNING,
                      untagged.number: TrialState.RUNNING, 3: TrialState.WAITING}  # fmt: skip
    assert study.get_trials()[0].user_attrs["fail_reason"] == "worker died"
    retry = study.get_trials()[3]  # enqueued once, with the dead trial's configuration
    assert retry.system_attrs["fixed_params"] == {"lr": lr}
    assert retry.user_attrs["retry_of"] == dead.number
    # after a repaired journal, a RUNNING trial with no worker tag lost its records: failed
    assert fail_dead_local_trials(study, untagged=True) == [untagged.number]
    assert fail_dead_local_trials(study, untagged=True) == []


_ASK_AND_DIE = """
import os, signal, sys
import optuna
from pathlib import Path
from bench.search.storage import open_storage
storage = open_storage(sys.argv[1], default_journal=Path(sys.argv[1]))
study = optuna.load_study(storage=storage, study_name="s")
study.ask()  # a kill before the objective's first line, as in the sampler's seconds
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_trial_killed_before_its_objective_started_is_failed_and_retried(tmp_path) -> None:
    journal = str(tmp_path / "j.journal")
    storage = open_storage(journal, default_journal=tmp_path / "x")
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    study.enqueue_trial({"lr": 0.01})
    for _ in range(2):  # first the enqueued trial, then a new one
        proc = subprocess.run([sys.executable, "-c", _ASK_AND_DIE, journal], check=False)
        assert proc.returncode == -signal.SIGKILL
    running = study.get_trials(states=(TrialState.RUNNING,))
    assert [t.number for t in running] == [0, 1]
    assert all(t.user_attrs["worker"].startswith(f"{socket.gethostname()}:") for t in running)
    assert fail_dead_local_trials(study) == [0, 1]
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert [(t.user_attrs["retry_of"], t.system_attrs["fixed_params"]) for t in waiting] == [
        (0, {"lr": 0.01})  # the enqueued one, whose configuration is known
    ]


def test_needed_throughput_and_calibration(data) -> None:

    # 3 epochs x (256 train + 300/3 val) images in 10 s
    assert needed_throughput(n_train=1000, n_val=300, seconds=10) == pytest.approx(106.8)
    # the smallest trial: 1 epoch x (256 train + 300/3 val) images in 10 s
    assert needed_throughput(n_train=1000, n_val=300, seconds=10, smallest=True) == (
        pytest.approx(35.6)
    )
    # and a held-out fold of 3,000 scored once (a --cv fold): + 1,000 image-equivalents
    assert needed_throughput(n_train=1000, n_val=300, seconds=10, n_once=3000) == (
        pytest.approx(206.8)
    )
    obj = _objective(data, ["tiny_mlp"], max_epochs=3)
    assert obj.calib == 2.0  # before any trial has run
    study = optuna.create_study(direction="maximize")
    study.optimize(obj, n_trials=1)
    assert len(obj.ratios) == 1 and obj.calib == max(0.25, obj.ratios[0])  # may go below 1


SLOW_SECONDS = 30.0
FIXED_MLP = {"family": "tiny_mlp", "tiny_mlp.hidden": 8, "batch_size": 128}


def _too_slow_for_min_epochs(data, *, end_in: float = SLOW_SECONDS) -> Objective:
    """An objective whose tiny_mlp (as if the probe had measured it) is fast enough for one
    epoch in SLOW_SECONDS, too slow for MIN_EPOCHS (calibration included)."""
    from bench.search.budget import CALIBRATION_PRIOR, MIN_TRAIN, VAL_COST
    from bench.search.speed import speed_key

    smallest_epoch = MIN_TRAIN + VAL_COST * 300  # image-equivalents of one epoch
    speed = 2 * smallest_epoch * CALIBRATION_PRIOR / SLOW_SECONDS
    return _objective(data, ["tiny_mlp"], max_epochs=5, end_in=end_in,
                      speeds={speed_key("tiny_mlp", {"hidden": 8}, 128): speed})  # fmt: skip


def _fixed_trial_states(obj: Objective, n: int) -> list:
    """The states after ``n`` enqueued FIXED_MLP trials in a fresh study."""
    study = optuna.create_study(direction="maximize")
    for _ in range(n):
        study.enqueue_trial(FIXED_MLP)
    study.optimize(obj, n_trials=n)
    return [t.state for t in study.trials]


def test_when_nothing_fits_the_trial_shrinks_to_the_smallest(tiny_npz) -> None:
    """Medical MNIST at 1m: a speed too slow for MIN_EPOCHS on the usual subsample still
    runs a shorter trial while the study has no completed trial (so a model comes out); once
    one has completed, the same speed is pruned as too slow."""
    from bench.search.budget import MIN_EPOCHS, MIN_TRAIN

    data = load_splits(tiny_npz(counts=(2000, 300, 16))).train_val()
    obj = _too_slow_for_min_epochs(data)
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial(FIXED_MLP)
    study.optimize(obj, n_trials=1)
    first = study.trials[0]
    assert first.state == TrialState.COMPLETE, first.user_attrs.get("fail_reason")
    assert first.user_attrs["epochs"] == 1 < MIN_EPOCHS
    # the one epoch takes what fits: more than MIN_TRAIN images, about 30% of train
    assert MIN_TRAIN / 2000 < first.user_attrs["train_fraction"] < 0.35
    study.enqueue_trial(FIXED_MLP)
    study.optimize(obj, n_trials=1)
    second = study.trials[1]
    assert second.state == TrialState.PRUNED
    assert second.user_attrs["fail_reason"].startswith("too slow for the time left")
    assert f"{MIN_EPOCHS} epochs" in second.user_attrs["fail_reason"]


def test_the_search_stops_when_its_time_left_fits_no_family(tiny_npz) -> None:
    """Near the search end, once a trial has completed and the fastest family measured is
    too slow for what is left, the search ends instead of pruning trial after trial (a run
    pruned 138 of its 143 trials this way in its last second)."""
    data = load_splits(tiny_npz(counts=(2000, 300, 16))).train_val()
    states = _fixed_trial_states(_too_slow_for_min_epochs(data), 6)
    assert states == [TrialState.COMPLETE, TrialState.PRUNED, *[TrialState.WAITING] * 4]
    # a trial bounded by its own cap, not the search end, does not end the search
    obj = _too_slow_for_min_epochs(data, end_in=10 * SLOW_SECONDS)
    obj.cap_s = SLOW_SECONDS
    states = _fixed_trial_states(obj, 3)
    assert states == [TrialState.COMPLETE, *[TrialState.PRUNED] * 2]


def test_no_completed_trial_names_the_smallest_budget(tiny_npz) -> None:
    from bench.search.budget import RunBudget
    from bench.search.select import chosen_trial

    data = load_splits(tiny_npz(counts=(2000, 300, 16))).train_val()
    study = optuna.create_study(direction="maximize")
    study.add_trial(optuna.trial.create_trial(
        state=TrialState.PRUNED, user_attrs={"throughput": 20.0, "fail_reason": "too slow"},
    ))  # fmt: skip
    budget = RunBudget(t0=time.monotonic() - 5, budget_s=60, seeds=3)
    with pytest.raises(BenchError) as err:
        chosen_trial(study, data, budget=budget, seeds=3)
    msg = str(err.value)
    assert msg.startswith("no trial completed within the budget (trials failed: too slow)")
    need = int(re.search(r"--budget (\d+)m or more", msg).group(1))
    # one smallest epoch at 20/2 img/s is 35.6 s: with 3 final fits it needs minutes
    assert 2 <= need <= 4
    done = optuna.trial.create_trial(value=0.7, user_attrs={"epochs": 1})
    study.add_trial(done)
    assert chosen_trial(study, data, budget=budget, seeds=3).value == 0.7


def test_a_trial_whose_final_fits_cannot_train_on_all_the_data_is_pruned(data) -> None:
    from bench.search.budget import RunBudget, full_refit_seconds

    # the shortest trial's 3 epochs (not a share of the trial's 10) on 1000 train + 300 val
    # at 1000 img/s, planned at 115 %; a trial of fewer epochs needs them all
    assert full_refit_seconds(10, throughput=1000, n_train=1000, n_val=300) == (
        pytest.approx(3 * 1.1 * 1.15)
    )
    assert full_refit_seconds(2, throughput=1000, n_train=1000, n_val=300) == (
        pytest.approx(2 * 1.1 * 1.15)
    )
    assert full_refit_seconds(1, throughput=1000, n_train=1000, n_val=300) == (
        pytest.approx(1.1 * 1.15)
    )
    # a seed's share of the largest final phase: half of what is left after loading
    budget = RunBudget(t0=time.monotonic(), budget_s=600, seeds=3)
    assert budget.final_fit_most() == pytest.approx(0.5 * (600 - 12) / 3, abs=0.5)
    assert RunBudget(t0=time.monotonic(), budget_s=600, seeds=0).final_fit_most() is None

    def states(seconds) -> tuple[list, str]:
        study = optuna.create_study(direction="maximize")
        for _ in range(2):
            study.enqueue_trial(FIXED_MLP)
        study.optimize(_objective(data, ["tiny_mlp"], final_seconds=seconds), n_trials=2)
        return [t.state for t in study.trials], study.trials[1].user_attrs.get("fail_reason")

    # the first trial (nothing completed) runs whatever its final fits can do; the next
    # one is pruned when they could not train on all the data
    tight, reason = states(lambda: 1e-6)
    assert tight == [TrialState.COMPLETE, TrialState.PRUNED]
    assert reason.startswith("too slow for its final fits: ") and "on all 64 images in 0s" in reason
    assert states(lambda: 3600.0) == ([TrialState.COMPLETE] * 2, None)
    assert states(lambda: None) == ([TrialState.COMPLETE] * 2, None)  # a worker: no final fits


def test_a_configs_augmentation_params_are_named_once_with_their_policy() -> None:
    from bench.run.train_cmd import split_augment_params
    from bench.train import FitConfig, TrainHP

    searched = FitConfig("small_cnn", {}, TrainHP(), "simple", {"simple_strength": 0.2})
    own, aug = split_augment_params({"width": 16, "dcgan_ratio": 0.3}, "dcgan")  # bench train
    given = FitConfig("small_cnn", own, TrainHP(), "dcgan", aug)
    assert (own, aug) == ({"width": 16}, {"dcgan_ratio": 0.3})  # the search's names, too
    assert searched.params()["simple_strength"] == 0.2
    assert given.params()["dcgan_ratio"] == 0.3 and given.params()["width"] == 16
    assert not [k for k in {**searched.params(), **given.params()} if "simple_simple" in k
                or "dcgan_dcgan" in k or k in ("ratio", "strength")]  # fmt: skip
