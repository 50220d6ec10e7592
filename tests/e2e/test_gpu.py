"""The CUDA path, as the README promises it: bf16 autocast with finite losses and a val metric
close to fp32's, channels_last, a 3D step (ACS included), the split resident on the device (no
per-batch host-to-device copy), a convolutional family trained with ``simple`` and AutoAugment,
host waits per batch counted with ``torch.cuda.set_sync_debug_mode``, the speed probe within
[0.75, 1.33] of a synchronised steady state, fp32 evaluation, ``bench train`` and ``bench run``
with ``--device cuda``, ``--jobs 2`` on one GPU, and ``benchmarks/throughput.py --device
cuda``. Every test skips without CUDA, saying so.
"""

from __future__ import annotations

import subprocess
import sys
import time
import warnings
from pathlib import Path

import bench_tiny_plugin  # noqa: F401
import pytest
from conftest import make_npz
from runs import ENV, TINY, bench, load_study, records

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not torch.cuda.is_available(),
        reason="needs a CUDA device: torch.cuda.is_available() is False on this machine",
    ),
]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def npz(tmp_path) -> str:
    return "npz:" + str(make_npz(tmp_path / "data" / "tiny.npz", counts=(256, 64, 64)))


def _fit(npz: str, device: str):
    from bench.data.load import load_splits
    from bench.models.registry import model_for
    from bench.train import TrainHP, fit, set_seed

    data = load_splits(npz).train_val()
    set_seed(0)
    model = model_for(data.spec, "small_cnn", img_size=28)
    hp = TrainHP(epochs=4, batch_size=32, lr=1e-3)
    return fit(model, data, hp, device=torch.device(device), seed=0)


def test_bf16_autocast_trains_with_finite_losses_close_to_fp32(npz) -> None:
    from bench.device import CUDA_POLICY

    with CUDA_POLICY.autocast(torch.device("cuda")):
        assert torch.get_autocast_dtype("cuda") == torch.bfloat16
    gpu, cpu = _fit(npz, "cuda"), _fit(npz, "cpu")
    losses = [s.train_loss for s in gpu.history]
    assert all(torch.isfinite(torch.tensor(losses))), losses
    assert abs(gpu.best_val - cpu.best_val) < 0.05, (gpu.best_val, cpu.best_val)


def test_models_and_batches_are_channels_last_on_cuda() -> None:
    from bench.device import prepare_model
    from bench.train import to_input

    model = prepare_model(torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3)), torch.device("cuda"))
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.zeros(4, 1, 28, 28, dtype=torch.uint8, device="cuda")
    xb = to_input(x, mean=0.5, std=0.5, device=torch.device("cuda"))
    assert xb.is_cuda and xb.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("family", ["resnet18_acs", "small_cnn3d"])
def test_a_volume_model_trains_a_step_on_cuda(family: str) -> None:
    """ACS models (2D weights on volumes) stay as built; the others go channels_last_3d."""
    from bench.device import CUDA_POLICY, prepare_model
    from bench.models.registry import create_model
    from bench.train import to_input, train_step

    cuda = torch.device("cuda")
    model = prepare_model(create_model(family, num_classes=3, in_chans=1, img_size=28), cuda)
    assert (CUDA_POLICY.model_format(model) is None) == family.endswith("_acs")
    x = torch.randint(0, 256, (4, 1, 28, 28, 28), dtype=torch.uint8, device=cuda)
    xb = to_input(x, mean=0.5, std=0.5, device=cuda)
    y = torch.tensor([0, 1, 2, 0], device=cuda)
    loss = train_step(model, torch.optim.Adam(model.parameters()),
                      torch.nn.CrossEntropyLoss(), xb, y, cuda)  # fmt: skip
    assert torch.isfinite(loss).item()


def test_an_epoch_makes_no_per_batch_host_to_device_copy(npz) -> None:
    from torch.profiler import ProfilerActivity, profile

    from bench.data.load import load_splits
    from bench.data.splits import images_to_tensor, labels_to_tensor
    from bench.device import prepare_model
    from bench.models.registry import model_for
    from bench.train import TrainHP, TrainState, train_epoch

    cuda = torch.device("cuda")
    data = load_splits(npz).train_val()
    hp = TrainHP(epochs=1, batch_size=16)
    model = prepare_model(model_for(data.spec, "small_cnn", img_size=28), cuda)
    state = TrainState(
        model=model, optimizer=torch.optim.Adam(model.parameters()),
        loss_fn=torch.nn.CrossEntropyLoss(), hp=hp, device=cuda,
        x=images_to_tensor(data.train.images, n_channels=1, ndim=2, device=cuda),
        y=labels_to_tensor(data.train.labels, multilabel=False, device=cuda),  # int64 (N,)
        perm_gen=torch.Generator().manual_seed(0),
    )  # fmt: skip
    train_epoch(state)  # warm-up
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        train_epoch(state)
        torch.cuda.synchronize()
    copies = [e for e in prof.events() if "Memcpy HtoD" in e.name]
    n_batches = len(data.train) // hp.batch_size
    assert len(copies) < n_batches / 4, f"{len(copies)} host-to-device copies, {n_batches} batches"


AUGMENTS = ["simple", "autoaugment_cifar10"]


def _state(npz: str, augment: str, batch: int = 16):
    """A small_cnn TrainState on CUDA over the tiny split, with ``augment``."""
    from bench.augment.registry import build_augmentation
    from bench.data.load import load_splits
    from bench.data.splits import images_to_tensor, labels_to_tensor
    from bench.device import prepare_model
    from bench.models.registry import model_for
    from bench.train import TrainHP, TrainState

    cuda = torch.device("cuda")
    data = load_splits(npz).train_val()
    model = prepare_model(model_for(data.spec, "small_cnn", img_size=28), cuda)
    return TrainState(
        model=model, optimizer=torch.optim.Adam(model.parameters()),
        loss_fn=torch.nn.CrossEntropyLoss(), hp=TrainHP(epochs=1, batch_size=batch),
        device=cuda, augment=build_augmentation(augment, data=data, img_size=28, seed=0,
                                                device=cuda),
        x=images_to_tensor(data.train.images, n_channels=1, ndim=2, device=cuda),
        y=labels_to_tensor(data.train.labels, multilabel=False, device=cuda),
        perm_gen=torch.Generator().manual_seed(0),
        aug_gen=torch.Generator(device=cuda).manual_seed(1),
    )  # fmt: skip


@pytest.mark.parametrize("augment", AUGMENTS)
def test_a_conv_family_trains_with_augmentation_on_cuda(npz, augment: str) -> None:
    from bench.train import train_epoch

    state = _state(npz, augment)
    losses = [train_epoch(state)[0] for _ in range(2)]
    assert all(torch.isfinite(torch.tensor(losses))), losses


@pytest.mark.parametrize("augment", AUGMENTS)
def test_host_waits_per_batch(npz, augment: str) -> None:
    """One epoch after a warm-up one: ``simple`` adds no host wait to a batch, AutoAugment
    one (its draws); the loop's own are the permutation and the loss checks."""
    from bench.train import train_epoch

    state = _state(npz, augment)
    train_epoch(state)  # warm-up: index maps, filters, cuDNN plans
    torch.cuda.synchronize()
    n_batches = state.x.shape[0] // state.hp.batch_size
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            train_epoch(state)
        finally:
            torch.cuda.set_sync_debug_mode(0)
    syncs = sum("synchroniz" in str(w.message).lower() for w in caught)
    # the loop's own: the permutation's copy, a loss check every check_every batches and at
    # the last one, the epoch's mean loss
    loop = 3 + n_batches // state.policy.check_every
    per_batch = 1 if augment.startswith("autoaugment") else 0
    assert syncs <= loop + per_batch * n_batches, (syncs, n_batches)


@pytest.mark.parametrize("family", ["small_cnn", "resnet18"])
def test_the_probe_is_within_a_third_of_a_synchronised_steady_state(family: str) -> None:
    from bench.device import CUDA_POLICY, prepare_model
    from bench.models.registry import create_model
    from bench.search.speed import measure_throughput
    from bench.train import to_input, train_step

    cuda, batch = torch.device("cuda"), 128
    torch.manual_seed(0)
    model = create_model(family, num_classes=2, in_chans=1, img_size=28)
    probe = measure_throughput(model, in_chans=1, img_size=28, device=cuda, batch=batch)
    model = prepare_model(model, cuda)
    opt = torch.optim.Adam(model.parameters(), lr=1e-6)
    x = torch.randint(0, 256, (batch, 1, 28, 28), dtype=torch.uint8, device=cuda)
    y = torch.randint(0, 2, (batch,), device=cuda)
    loss = torch.nn.CrossEntropyLoss()

    def steps(n: int) -> float:
        CUDA_POLICY.synchronize(cuda)
        t = time.perf_counter()
        for _ in range(n):
            train_step(model, opt, loss, to_input(x, mean=0.5, std=0.5, device=cuda), y, cuda)
        CUDA_POLICY.synchronize(cuda)
        return n * batch / (time.perf_counter() - t)

    steps(5)  # warm-up
    steady = sorted(steps(50) for _ in range(3))[1]
    assert probe.measured and 0.75 <= probe.images_s / steady <= 1.33, (probe, steady)


def test_evaluation_is_fp32_on_cuda() -> None:
    """predict_tensor on CUDA equals an fp32 forward on CUDA to 1e-6 (no bf16 autocast)."""
    from bench.device import prepare_model
    from bench.models.registry import create_model
    from bench.train import predict_tensor, to_input

    cuda = torch.device("cuda")
    torch.manual_seed(0)
    model = prepare_model(create_model("small_cnn", num_classes=4, in_chans=1, img_size=28), cuda)
    x = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8, device=cuda)
    scores = predict_tensor(model, x, task="multi-class", device=cuda)
    with torch.inference_mode():
        ref = model(to_input(x, mean=0.5, std=0.5, device=cuda)).float().softmax(1)
    assert scores.dtype.name == "float64"
    assert abs(scores - ref.cpu().double().numpy()).max() < 1e-6


def test_bench_train_and_run_on_cuda(npz, tmp_path) -> None:
    out = tmp_path / "out"
    train = bench("train", "--dataset", npz, "--model", "small_cnn", "--epochs", "2",
                  "--device", "cuda", "--out", str(out / "train"), "--quiet")  # fmt: skip
    _, stderr = train.communicate(timeout=300)
    assert train.returncode == 0, stderr
    run = bench("run", "--dataset", npz, "--budget", "1m", "--seeds", "1", "--device", "cuda",
                "--out", str(out / "run"), "--quiet", *TINY)  # fmt: skip
    _, stderr = run.communicate(timeout=300)
    assert run.returncode == 0, stderr
    for rec in records(out / "train") + records(out / "run"):
        assert rec["device"].startswith("cuda:"), rec["device"]


def test_two_jobs_share_one_gpu(npz, tmp_path) -> None:
    out = tmp_path / "out"
    run = bench("run", "--dataset", npz, "--budget", "1m", "--seeds", "1", "--device", "cuda",
                "--jobs", "2", "--out", str(out), "--quiet", *TINY)  # fmt: skip
    _, stderr = run.communicate(timeout=300)
    assert run.returncode == 0, stderr
    (record,) = records(out)
    assert record["jobs"] == 2 and record["device"].startswith("cuda:")
    (journal,) = (out / "studies").glob("*.journal")
    study = load_study(str(journal), journal.stem)
    assert len({t.user_attrs["worker"] for t in study.trials}) == 2


def test_throughput_benchmark_prints_its_lines_on_cuda() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "throughput.py"), "--device", "cuda",
         "--lines", "small_cnn", "--steps", "5", "--repeats", "3"],
        capture_output=True, text=True, env=ENV, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("small_cnn ")]
    assert all(f"{k}=" in line for k in ("raw", "ours", "reference", "ours/raw")), line
