"""The speed probe measures what will be trained: the trial's batch, the policy's autocast and
memory format, one untimed pass first; a probe cut short by ``need`` is an upper bound, not a
measurement; the batch is in the cache key; the calibration may go below 1."""

from __future__ import annotations

import time

import pytest

torch = pytest.importorskip("torch")

from bench.device import CPU_POLICY, CUDA_POLICY  # noqa: E402
from bench.models.registry import create_model  # noqa: E402
from bench.search.speed import (  # noqa: E402
    MAX_PASSES,
    Probe,
    augment_cost,
    measure_throughput,
    speed_key,
)


def small_cnn():
    torch.manual_seed(0)
    return create_model("small_cnn", num_classes=3, in_chans=1, img_size=28)


def test_a_probe_times_the_trials_batch_and_restores_the_model() -> None:
    model = small_cnn()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seen: list[int] = []
    model.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[0]))
    probe = measure_throughput(model, in_chans=1, img_size=28, device=torch.device("cpu"),
                               batch=64)  # fmt: skip
    assert isinstance(probe, Probe) and probe.measured and probe.images_s > 0
    assert set(seen) == {64} and len(seen) >= 2  # one untimed pass, then the timed ones
    assert len(seen) <= 2 + MAX_PASSES  # untimed, the first timed, then at most MAX_PASSES
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in model.parameters())
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)  # as trained


def test_a_heavy_model_gets_the_faster_of_two_timed_passes(monkeypatch) -> None:
    """When one pass outlasts TIMED_S (ResNet-50 at batch 128 here: about 10 s), a single
    timed pass read 0.74 of the steady state once; the probe times a second and keeps the
    faster, so it runs the batch three times (untimed, timed, timed)."""
    import bench.search.speed as speed

    monkeypatch.setattr(speed, "TIMED_S", 0.0)
    model = small_cnn()
    seen: list[int] = []
    model.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[0]))
    probe = measure_throughput(model, in_chans=1, img_size=28, device="cpu", batch=16)
    assert probe.measured and seen == [16, 16, 16]


def test_the_probe_runs_under_the_policys_autocast_and_memory_format() -> None:
    """The CUDA policy applied on the CPU: bf16 forward, channels_last inputs."""
    dtypes, layouts = set(), set()

    def hook(module, args, out):
        dtypes.add(out.dtype)
        layouts.add(args[0].is_contiguous(memory_format=torch.channels_last))

    for policy, dtype in ((CUDA_POLICY, torch.bfloat16), (CPU_POLICY, torch.float32)):
        dtypes.clear()
        model = small_cnn()
        conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
        conv.register_forward_hook(hook)
        probe = measure_throughput(model, in_chans=1, img_size=28, device="cpu", batch=8,
                                   policy=policy)  # fmt: skip
        assert probe.measured and dtypes == {dtype}, (policy.name, dtypes)
    assert layouts == {True}


def test_an_early_exit_is_an_upper_bound_and_skips_the_batch() -> None:
    """With ``need`` far above what the model can do, the probe ends after the small pass:
    the batch (which would take long) is never run, and the figure is not a measurement."""
    model = small_cnn()
    seen: list[int] = []
    model.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[0]))
    probe = measure_throughput(model, in_chans=1, img_size=28, device="cpu", batch=4096,
                               need=1e12)  # fmt: skip
    assert not probe.measured and probe.images_s < 1e12
    assert set(seen) == {2}
    fast = measure_throughput(small_cnn(), in_chans=1, img_size=28, device="cpu", batch=16,
                              need=1.0)  # fmt: skip
    assert fast.measured


def test_the_batch_is_in_the_cache_key() -> None:
    params = {"width": 32, "dropout": 0.1}
    assert speed_key("small_cnn", params, 64) != speed_key("small_cnn", params, 128)
    assert speed_key("small_cnn", params, 64)[:-1] == speed_key("small_cnn", params)
    assert speed_key("small_cnn", {**params, "dropout": 0.3}, 64) == speed_key(
        "small_cnn", params, 64
    )


def test_augment_cost_calls_once_untimed_then_once_timed(tiny_npz) -> None:
    from bench.data.load import load_splits

    data = load_splits(tiny_npz(counts=(64, 16, 16))).train_val()
    calls: list[int] = []

    def augment(x, y, gen):
        calls.append(x.shape[0])
        if len(calls) == 1:
            time.sleep(0.3)  # a first call's set-up cost stays out of the figure
        return x, y

    cost = augment_cost(augment, data, device=torch.device("cpu"), n=32)
    assert calls == [32, 32] and 0 <= cost < 0.3 / 32


def test_an_early_exit_is_not_cached_and_the_calibration_goes_below_one(tiny_npz) -> None:
    import optuna

    from bench.data.load import load_splits
    from bench.search.objective import Objective
    from bench.search.spaces import resolve_space

    data = load_splits(tiny_npz(counts=(64, 32, 16))).train_val()
    space = resolve_space(["small_cnn"], augment=["none"], img_size=28)
    speeds: dict = {}
    obj = Objective(data, space, device=torch.device("cpu"), metric="auc", img_size=28,
                    seed=0, max_epochs=3, search_end=lambda: time.monotonic() + 60,
                    cap_s=60.0, speeds=speeds)  # fmt: skip
    obj._ratios[:] = [1e6]  # epochs a million times slower than the probe: nothing fits
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"family": "small_cnn", "batch_size": 256})
    study.optimize(obj, n_trials=1)
    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert trial.user_attrs["fail_reason"].startswith("too slow for the time left: at most ")
    assert speeds == {}  # the upper bound is not kept as the configuration's speed
    obj._ratios[:] = [0.5, 0.6, 0.7]
    assert obj.calib == 0.6
    obj._ratios[:] = [0.01]
    assert obj.calib == 0.25


def test_a_trial_probes_the_batch_its_epochs_see(tiny_npz) -> None:
    """48 train images at batch 256: every epoch is one batch of 48, and that is what the
    probe times and caches (at 256, a 3D ResNet's probe outlasted a 90 s run's budget)."""
    import optuna

    from bench.data.load import load_splits
    from bench.search.objective import Objective
    from bench.search.spaces import resolve_space
    from bench.search.speed import trained_batch

    assert trained_batch(256, 48) == 48 and trained_batch(32, 48) == 32
    data = load_splits(tiny_npz(counts=(48, 16, 16))).train_val()
    space = resolve_space(["small_cnn"], augment=["none"], img_size=28)
    speeds: dict = {}
    obj = Objective(data, space, device=torch.device("cpu"), metric="auc", img_size=28,
                    seed=0, max_epochs=1, search_end=lambda: time.monotonic() + 60,
                    cap_s=60.0, speeds=speeds)  # fmt: skip
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"family": "small_cnn", "batch_size": 256})
    study.optimize(obj, n_trials=1)
    assert [dict(k[1:]).get("batch") for k in speeds] == [48], speeds


class TenMillisecondsAnImage(torch.nn.Module):
    """A model whose pass takes 10 ms per image (100 images/s at every batch size)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(28 * 28, 2)

    def forward(self, x):
        time.sleep(0.01 * x.shape[0])
        return self.fc(x.flatten(1))


def test_the_early_exit_grows_its_passes_until_the_bound_falls_below_need() -> None:
    """100 images/s against a need of 1000 at batch 128: 2 images bound the batch at 6,400/s,
    8 at 1,600/s, 32 at 400/s: the probe stops there, without a pass of 128 (a 3D ResNet's
    pass of 48 volumes took 80 s here, after 2 volumes had bounded it above the need)."""
    model = TenMillisecondsAnImage()
    seen: list[int] = []
    model.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[0]))
    probe = measure_throughput(model, in_chans=1, img_size=28, device="cpu", batch=128,
                               need=1000.0)  # fmt: skip
    assert not probe.measured and probe.images_s < 1000.0
    assert seen == [2, 2, 8, 8, 32, 32]
