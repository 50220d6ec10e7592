"""``bench run --jobs N`` and ``--max-memory`` in process: bad values are one line, sizes
parse, the batch cap fits the limit; each process's GPU from the inherited
``CUDA_VISIBLE_DEVICES`` and its memory fraction, and which errors are out of memory (all
without a GPU). The runs are in ``tests/e2e/test_workers_runs.py``."""

from __future__ import annotations

from pathlib import Path

import bench_tiny_plugin  # noqa: F401
import pytest
from conftest import make_npz
from runs import TINY

from bench.cli import main
from bench.errors import ConfigError
from bench.search import memory


@pytest.fixture
def npz(tmp_path) -> str:
    return "npz:" + str(make_npz(tmp_path / "data" / "tiny.npz", counts=(96, 32, 32)))


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--jobs", "0"], "--jobs 0: give at least 1 (the run's own process)"),
        (["--jobs", "2", "--device", "cuda"], "--device cuda was given but no CUDA device"),
    ],
    ids=["jobs-0", "jobs-cuda"],
)
def test_bad_jobs_are_one_line_exit_2(npz, tmp_path, capsys, argv, needle) -> None:
    if "cuda" in argv:
        torch = pytest.importorskip("torch")
        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    code = main(["run", "--dataset", npz, "--budget", "20s", "--out", str(tmp_path / "out"),
                 "--quiet", *TINY, *argv])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "out").exists()


SIZES = [("8G", 8 * 2**30), ("512M", 512 * 2**20), ("1.5g", int(1.5 * 2**30)), ("3GiB", 3 * 2**30)]


@pytest.mark.parametrize("text,size", SIZES)
def test_memory_sizes_parse(text, size) -> None:
    assert memory.parse_memory(text) == size


def test_memory_sizes_that_are_not(text="8 gigs") -> None:
    with pytest.raises(ConfigError, match="bad --max-memory '8 gigs'"):
        memory.parse_memory(text)


def test_saved_activations_are_counted_once_and_without_the_weights() -> None:
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 100),
                                torch.nn.ReLU(), torch.nn.Linear(100, 2))  # fmt: skip
    # saved for backward: the input of the first Linear (784 floats an image) and the ReLU's
    # output (100 floats), which the second Linear saves too; the weights are not activations
    assert memory.saved_bytes_per_image(model, in_chans=1, img_size=28) == (784 + 100) * 4
    bn = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4))
    before = bn[1].running_mean.clone()
    memory.saved_bytes_per_image(bn, in_chans=1, img_size=28)
    assert torch.equal(bn[1].running_mean, before), "the probe changed BatchNorm statistics"


def test_the_batch_cap_fits_the_limit() -> None:
    per_image, n_params, in_use = 2e6, 10**6, 500 * 2**20
    limit = 2**30
    cap = memory.batch_cap(limit, per_image=per_image, n_params=n_params, in_use=in_use)
    assert in_use + memory.step_bytes(per_image, n_params, cap) <= limit
    assert in_use + memory.step_bytes(per_image, n_params, cap + 1) > limit
    assert memory.batch_cap(in_use, per_image=per_image, n_params=n_params, in_use=in_use) == 0


@pytest.mark.parametrize(
    "mask,count,jobs,expected",
    [
        ("3,5", 2, 3, ["3", "5", "3"]),  # the run (0) and workers 1, 2 within the user's mask
        (None, 2, 3, ["0", "1", "0"]),  # no mask: every GPU in turn
        (" 7 ", 1, 2, ["7", "7"]),
        ("GPU-aa,GPU-bb,9", 2, 3, ["GPU-aa", "GPU-bb", "GPU-aa"]),  # torch sees 2 of them
    ],
    ids=["mask-3-5", "no-mask", "one-gpu", "uuids"],
)
def test_each_process_takes_the_inherited_visible_gpus_in_turn(mask, count, jobs, expected):
    from bench.run.gpus import process_devices, visible_devices

    assert process_devices(jobs, visible_devices(mask, count)) == expected


def test_processes_sharing_a_gpu_get_a_share_of_its_memory() -> None:
    from bench.run.gpus import memory_fraction, sharing

    # --jobs 3 on two GPUs: the run and worker 2 share the first, worker 1 has the second
    assert [sharing(i, 3, 2) for i in range(3)] == [2, 1, 2]
    assert [sharing(i, 4, 1) for i in range(4)] == [4, 4, 4, 4]
    total = 80 * 2**30
    assert memory_fraction(sharing=2, limit=None, total=total) == 0.5
    assert memory_fraction(sharing=4, limit=None, total=total) == 0.25
    assert memory_fraction(sharing=1, limit=None, total=total) is None  # alone: the whole GPU
    assert memory_fraction(sharing=2, limit=20 * 2**30, total=total) == 0.25  # --max-memory
    assert memory_fraction(sharing=1, limit=120 * 2**30, total=total) == 1.0


def test_a_worker_takes_the_fraction_the_run_chose(monkeypatch) -> None:
    from types import SimpleNamespace

    import torch

    from bench.run.gpus import FRACTION_ENV, own_fraction

    worker = SimpleNamespace(device=torch.device("cuda"), follow=Path("end"), jobs=1,
                             gpu_memory_limit=None)  # fmt: skip
    monkeypatch.setenv(FRACTION_ENV, "0.5")
    assert own_fraction(worker) == 0.5
    assert own_fraction(SimpleNamespace(**{**vars(worker), "device": torch.device("cpu")})) is None
    monkeypatch.setenv(FRACTION_ENV, "")
    assert own_fraction(worker) is None


def _oom_errors():
    import torch

    return [
        torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        RuntimeError("CUDA error: out of memory"),
        RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"),
        RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"),
        RuntimeError("cuDNN error: CUDNN_STATUS_NOT_ENOUGH_WORKSPACE"),
        torch.AcceleratorError("CUDA error: out of memory"),
        RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 GB"),
        MemoryError(),
    ]


def test_every_allocation_failure_is_out_of_memory() -> None:
    from bench.search.objective import is_oom

    assert [is_oom(e) for e in _oom_errors()] == [True] * 8
    others = [
        RuntimeError("mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)"),
        RuntimeError("cuDNN error: CUDNN_STATUS_BAD_PARAM"),
        ValueError("out of memory"),
    ]
    assert [is_oom(e) for e in others] == [False] * 3
