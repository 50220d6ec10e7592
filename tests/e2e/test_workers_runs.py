"""``bench run --jobs N`` (worker processes on one study) and ``--max-memory`` (the pruning
reason) end to end in subprocesses, on tiny data with the tiny test families."""

from __future__ import annotations

import signal
import time

import bench_tiny_plugin  # noqa: F401
import pytest
from conftest import make_npz
from optuna.trial import TrialState
from runs import TINY, bench, load_study, only_journal, records

from bench.search.storage import alive

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
    while any(alive(p) for p in pids) and time.monotonic() < give_up:
        time.sleep(0.2)
    assert not any(alive(p) for p in pids), "a worker outlived the killed run"
    again = bench(*args, "--budget", "2m", "--n-trials", "2")  # the same command's study
    _, stderr = again.communicate(timeout=180)
    assert again.returncode == 0, stderr
    study = load_study(str(only_journal(out)), only_journal(out).stem)
    after = {t.number: t.value for t in study.get_trials(states=FINISHED)}
    lost = {n for n, v in done.items() if after.get(n) != v}
    assert not lost, f"{len(done)} finished before the kill; lost {sorted(lost)}"
    assert not study.get_trials(states=(TrialState.RUNNING,))


@pytest.mark.slow
def test_a_run_over_its_memory_limit_prunes_each_trial_with_the_reason(npz, tmp_path) -> None:
    out = tmp_path / "out"
    proc = bench("run", "--dataset", npz, "--out", str(out), "--quiet", "--seeds", "1",
                 "--budget", "30s", "--n-trials", "3", "--max-memory", "64M", "--device", "cpu",
                 *TINY)  # fmt: skip
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2, stderr
    assert stderr.strip().splitlines()[-1].startswith("error: no trial completed"), stderr
    study = load_study(str(only_journal(out)), only_journal(out).stem)
    reasons = {t.user_attrs.get("fail_reason", "") for t in study.trials}
    assert len(study.trials) == 3 and all(
        r.startswith("over the memory limit: one step at batch 8 needs") and "limit 64M" in r
        for r in reasons
    ), reasons
