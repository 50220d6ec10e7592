"""``bench run``'s study per budget, seed and repeat, end to end in subprocesses on tiny data
(issue 28): a killed run resumes its own study and its record covers the killed part; the
same command once finished starts a repeat; another budget and seed never joins it;
``--repeats 2`` writes two records and the mean ± std line."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
from conftest import make_npz
from optuna.trial import TrialState
from runs import TINY, records
from runs import bench as _bench
from runs import load_study as _study

from bench.search.repeats import SEARCH, SPENT


@pytest.fixture
def npz(tmp_path) -> str:
    return "npz:" + str(make_npz(tmp_path / "data" / "tiny.npz", counts=(96, 32, 32)))


def _finished(study) -> int:
    return sum(t.state.is_finished() for t in study.get_trials(deepcopy=False))


def _kill_after_a_trial(args: list[str], studies) -> tuple[str, float, float, int]:
    """Start ``bench ARGS``, SIGKILL its process group once a trial has finished and the run
    has recorded its spent time; the study's name, spent and search seconds, finished trials."""
    proc = _bench(*args, start_new_session=True)
    give_up, study = time.monotonic() + 90, None
    while time.monotonic() < give_up and proc.poll() is None:
        time.sleep(0.5)
        try:
            (journal,) = studies.glob("*.journal")
            study = _study(str(journal), journal.stem)
        except (ValueError, KeyError):  # no journal yet, or no study in it yet
            continue
        if SPENT in study.user_attrs and _finished(study) >= 1:
            break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert study is not None and SPENT in study.user_attrs, "no trial finished before the kill"
    study = _study(str(journal), journal.stem)  # as the kill left it
    return journal.stem, study.user_attrs[SPENT], study.user_attrs[SEARCH], _finished(study)


@pytest.mark.slow
def test_a_killed_run_resumes_its_own_study_and_a_finished_one_starts_a_repeat(
    npz, tmp_path
) -> None:
    out = tmp_path / "out"
    studies = out / "studies"
    base = ["run", "--dataset", npz, "--out", str(out), "--quiet", "--seeds", "1", *TINY]
    args = [*base, "--budget", "1m"]
    name, spent, searched, finished = _kill_after_a_trial(args, studies)
    assert name.endswith(".1m.s0.r1") and not records(out)

    again = _bench(*args, "--n-trials", "1")
    _, stderr = again.communicate(timeout=120)
    assert again.returncode == 0, stderr
    assert f"resuming study {name}: {finished} finished trials, {spent:.0f} s spent" in stderr
    (first,) = records(out)
    study = _study(str(studies / f"{name}.journal"), name)
    assert first["study_name"] == name and first["repeat"] == 1 and first["search_seed"] == 0
    assert first["n_trials"] == len(study.trials) >= finished + 1
    assert first["wall_s"] >= spent and first["search_s"] >= int(searched)
    assert study.user_attrs["finished_run"] == first["run_id"]

    third = _bench(*args, "--n-trials", "1")
    _, stderr = third.communicate(timeout=120)
    assert third.returncode == 0, stderr
    repeat = name[: -len("r1")] + "r2"
    assert (f"study {name} finished (run {first['run_id']}); starting study {repeat} "
            "(a repeat)") in stderr  # fmt: skip
    assert "resuming" not in stderr
    (second,) = [r for r in records(out) if r["run_id"] != first["run_id"]]
    own = _study(str(studies / f"{repeat}.journal"), repeat)
    assert second["study_name"] == repeat and second["repeat"] == 2
    assert second["search_seed"] == 7919 and second["n_trials"] == len(own.trials) <= 2

    # another budget and seed into the same folder: its own study, none of the earlier trials
    other = _bench(*base, "--budget", "30s", "--seed", "7", "--n-trials", "1")
    _, stderr = other.communicate(timeout=120)
    assert other.returncode == 0, stderr
    assert "resuming" not in stderr and "a repeat" not in stderr
    (third_record,) = [r for r in records(out) if r["run_id"] not in
                       (first["run_id"], second["run_id"])]  # fmt: skip
    key = name[: -len(".1m.s0.r1")]
    assert third_record["study_name"] == f"{key}.30s.s7.r1"
    own = _study(str(studies / f"{key}.30s.s7.r1.journal"), third_record["study_name"])
    assert third_record["n_trials"] == len(own.trials) <= 2
    assert third_record["search_seed"] == 7 and third_record["constraint"] == "30s"
    done = [t for t in own.trials if t.state == TrialState.COMPLETE]
    assert third_record["best_trial"] in {t.number for t in done}


@pytest.mark.slow
def test_repeats_write_a_record_each_and_the_mean_line(npz, tmp_path) -> None:
    out = tmp_path / "out"
    proc = _bench("run", "--dataset", npz, "--out", str(out), "--quiet", "--budget", "30s",
                  "--seeds", "1", "--n-trials", "1", "--repeats", "2", *TINY)  # fmt: skip
    stdout, stderr = proc.communicate(timeout=150)
    assert proc.returncode == 0, stderr
    assert "2 repeats x 30s = 1m in all" in stderr
    runs = sorted(records(out), key=lambda r: r["repeat"])
    assert [r["repeat"] for r in runs] == [1, 2]
    assert [r["search_seed"] for r in runs] == [0, 7919]
    assert [r["seeds"] for r in runs] == ["0", "7919"]  # final fits from the search seed
    assert runs[0]["study_name"].endswith(".30s.s0.r1")
    assert runs[1]["study_name"] == runs[0]["study_name"][:-1] + "2"
    aucs = [r["test_auc_mean"] for r in runs]
    accs = [r["test_acc_mean"] for r in runs]
    line = (f"repeats: test AUC {np.mean(aucs):.4f} ± {np.std(aucs, ddof=1):.4f} over 2 runs, "
            f"ACC {np.mean(accs):.4f} ± {np.std(accs, ddof=1):.4f}")  # fmt: skip
    assert line in stdout
