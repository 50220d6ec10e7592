"""``bench run --jobs N`` and ``--max-memory`` in process: bad values are one line, sizes
parse, the batch cap fits the limit. The runs are in ``tests/e2e/test_workers_runs.py``."""

from __future__ import annotations

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
