"""``bench run --jobs N`` (worker processes on one study) and ``--max-memory`` (the batch
cap and the pruning reason), on tiny data with the tiny test families."""

from __future__ import annotations

import signal
import time

import bench_tiny_plugin  # noqa: F401
import pytest
from conftest import make_npz
from optuna.trial import TrialState
from runs import TINY, bench, load_study, only_journal, records

from bench.cli import main
from bench.errors import ConfigError
from bench.search import memory
from bench.search.storage import _alive

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


@pytest.fixture
def npz(tmp_path) -> str:
    return "npz:" + str(make_npz(tmp_path / "data" / "tiny.npz", counts=(96, 32, 32)))


@pytest.mark.slow
def test_two_jobs_share_one_study_and_never_run_the_same_trial(npz, tmp_path) -> None:
    out = tmp_path / "out"
    proc = bench("run", "--dataset", npz, "--out", str(out), "--quiet", "--seeds", "1",
                 "--budget", "40s", "--jobs", "2", *TINY)  # fmt: skip
    _, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 0, stderr
    study = load_study(str(only_journal(out)), only_journal(out).stem)
    numbers = [t.number for t in study.trials]
    assert sorted(numbers) == list(range(len(numbers))), "a trial number was used twice"
    by_worker: dict[str, set] = {}
    for t in study.trials:
        by_worker.setdefault(t.user_attrs["worker"], set()).add(t.number)
    assert len(by_worker) == 2, f"trials came from {sorted(by_worker)}"
    a, b = by_worker.values()
    assert not a & b and min(len(a), len(b)) >= 3, {k: len(v) for k, v in by_worker.items()}
    assert not study.get_trials(states=(TrialState.RUNNING,))
    (record,) = records(out)
    assert record["jobs"] == 2 and record["n_trials"] == len(study.trials)
    assert " worker " in stderr, "the run's display did not show the worker's trials"


@pytest.mark.slow
def test_a_sigkill_of_the_run_stops_its_workers_and_loses_no_finished_trial(npz, tmp_path):
    out = tmp_path / "out"
    args = ["run", "--dataset", npz, "--out", str(out), "--quiet", "--seeds", "1", *TINY]
    proc = bench(*args, "--budget", "2m", "--jobs", "2")
    give_up, workers, done = time.monotonic() + 90, set(), {}
    while (len(workers) < 2 or len(done) < 4) and time.monotonic() < give_up:
        time.sleep(0.5)
        try:
            study = load_study(str(only_journal(out)), only_journal(out).stem)
        except (ValueError, KeyError):
            continue
        workers = {t.user_attrs.get("worker") for t in study.trials} - {None}
        done = {t.number: t.value for t in study.get_trials(states=FINISHED)}
    assert len(workers) == 2 and len(done) >= 4, f"workers {workers}, finished {len(done)}"
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    pids = [int(w.rsplit(":", 1)[1]) for w in workers]
    give_up = time.monotonic() + 20
    while any(_alive(p) for p in pids) and time.monotonic() < give_up:
        time.sleep(0.2)
    assert not any(_alive(p) for p in pids), "a worker outlived the killed run"
    again = bench(*args, "--budget", "40s", "--n-trials", "2")
    _, stderr = again.communicate(timeout=180)
    assert again.returncode == 0, stderr
    study = load_study(str(only_journal(out)), only_journal(out).stem)
    after = {t.number: t.value for t in study.get_trials(states=FINISHED)}
    lost = {n for n, v in done.items() if after.get(n) != v}
    assert not lost, f"{len(done)} finished before the kill; lost {sorted(lost)}"
    assert not study.get_trials(states=(TrialState.RUNNING,))


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


@pytest.mark.slow
def test_a_run_over_its_memory_limit_prunes_each_trial_with_the_reason(npz, tmp_path) -> None:
    out = tmp_path / "out"
    proc = bench("run", "--dataset", npz, "--out", str(out), "--quiet", "--seeds", "1",
                 "--budget", "30s", "--n-trials", "3", "--max-memory", "64M", *TINY)  # fmt: skip
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2, stderr
    assert stderr.strip().splitlines()[-1].startswith("error: no trial completed"), stderr
    study = load_study(str(only_journal(out)), only_journal(out).stem)
    reasons = {t.user_attrs.get("fail_reason", "") for t in study.trials}
    assert len(study.trials) == 3 and all(
        r.startswith("over the memory limit: one step at batch 8 needs") and "limit 64M" in r
        for r in reasons
    ), reasons
