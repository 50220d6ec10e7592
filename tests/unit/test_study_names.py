"""The study a ``bench run`` searches: its name (budget, seed and repeat in it), the choice of
the lowest unfinished repeat on real journal-file storages, a resumed run's budget clock, and
``--repeats``' checks."""

from __future__ import annotations

from pathlib import Path

import bench_tiny_plugin  # noqa: F401  (the tiny_mlp family)
import optuna
import pytest
from optuna.trial import TrialState

from bench.cli import main
from bench.run.repeats import pick_study, summary_line, total_line
from bench.search import repeats as rep
from bench.search.storage import open_storage

KEY = "bench.tiny.28.abcd1234.10m.s7"
ARGV = ["run", "--dataset", "breastmnist", "--budget", "2m", "--seed", "5", "--quiet",
        "--device", "cpu", "--plugins", "bench_tiny_plugin", "--families", "tiny_mlp",
        "--augment", "none"]  # fmt: skip


def _study(url: str, name: str, *, states=(), attrs=None):
    """A study ``name`` in the journal ``url`` with one trial per state and ``attrs``."""
    storage = open_storage(url, default_journal=Path(url))
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize")
    for state in states:
        trial = study.ask()
        if state == TrialState.COMPLETE:
            study.tell(trial, 0.5)
        elif state != TrialState.RUNNING:
            study.tell(trial, state=state)
    for key, value in (attrs or {}).items():
        study.set_user_attr(key, value)
    return study


def test_the_name_holds_the_budget_the_seed_and_the_repeat() -> None:
    key = rep.run_key("bench.tiny.28.abcd1234", budget_label="10m", seed=7)
    assert key == KEY
    assert rep.repeat_name(key, 1) == KEY + ".r1" and rep.repeat_name(key, 12) == KEY + ".r12"
    assert [rep.search_seed(7, k) for k in (1, 2, 3)] == [7, 7 + 7919, 7 + 2 * 7919]


def test_an_empty_folder_gives_repeat_one_and_creates_nothing(tmp_path) -> None:
    find = rep.study_finder(None, journal_dir=tmp_path / "studies")
    choice = rep.choose_study(KEY, find)
    assert (choice.k, choice.name, choice.n_trials, choice.lines()) == (1, KEY + ".r1", 0, [])
    missing = tmp_path / "shared.journal"
    choice = rep.choose_study(KEY, rep.study_finder(str(missing), journal_dir=tmp_path))
    assert choice.k == 1 and list(tmp_path.iterdir()) == []


def test_an_unfinished_study_is_resumed_with_its_spent_time(tmp_path) -> None:
    journal = tmp_path / f"{KEY}.r1.journal"
    _study(str(journal), KEY + ".r1",
           states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING),
           attrs={rep.SPENT: 41.6, rep.SEARCH: 30.5})  # fmt: skip
    choice = rep.choose_study(KEY, rep.study_finder(None, journal_dir=tmp_path))
    assert (choice.k, choice.n_trials, choice.n_finished) == (1, 3, 2)
    assert (choice.spent_s, choice.search_s) == (41.6, 30.5)
    assert choice.lines() == [f"resuming study {KEY}.r1: 2 finished trials, 42 s spent"]


def test_finished_studies_are_passed_over_in_one_shared_journal(tmp_path) -> None:
    url = str(tmp_path / "shared.journal")
    _study(url, KEY + ".r1", states=(TrialState.COMPLETE,), attrs={rep.FINISHED: "run-a"})
    _study(url, KEY + ".r2", states=(TrialState.COMPLETE,), attrs={rep.FINISHED: "run-b"})
    _study(url, "bench.other.28.0000.10m.s7.r3", states=(TrialState.COMPLETE,))
    choice = rep.choose_study(KEY, rep.study_finder(url, journal_dir=tmp_path))
    assert (choice.k, choice.name, choice.n_trials) == (3, KEY + ".r3", 0)
    assert choice.passed == ((KEY + ".r1", "run-a"), (KEY + ".r2", "run-b"))
    assert choice.lines() == [f"study {KEY}.r2 finished (run run-b); starting study {KEY}.r3 "
                              "(a repeat)"]  # fmt: skip
    # a later repeat of one command never goes back below the one it ran
    assert rep.choose_study(KEY, rep.study_finder(url, journal_dir=tmp_path), after=4).k == 5


def _prepared(tmp_path, *extra: str):
    from bench.cli import build_parser
    from bench.run.command import prepare
    from bench.run.settings import RunFlags

    args = build_parser().parse_args([*ARGV, *extra, "--out", str(tmp_path / "out")])
    return prepare(RunFlags.of(vars(args)), finalize=True, t0=1000.0)


def test_pick_study_resumes_with_the_clock_shifted_back(tmp_path) -> None:
    cfg, state = _prepared(tmp_path)
    key = cfg.study_key
    assert key.endswith(".2m.s5") and cfg.study_name == key + ".r1" and cfg.seed == 5
    assert not (tmp_path / "out").exists()  # prepare creates nothing
    studies = tmp_path / "out" / "studies"
    studies.mkdir(parents=True)
    _study(str(studies / f"{key}.r1.journal"), key + ".r1", states=(TrialState.COMPLETE,),
           attrs={rep.FINISHED: "run-1"})  # fmt: skip
    _study(str(studies / f"{key}.r2.journal"), key + ".r2", states=(TrialState.FAIL,),
           attrs={rep.SPENT: 50.0, rep.SEARCH: 44.0})  # fmt: skip
    picked, after, lines = pick_study(cfg, state)
    assert (picked.study_name, picked.repeat, picked.seed) == (key + ".r2", 2, 5 + 7919)
    assert picked.journal_path == studies / f"{key}.r2.journal"
    assert after.budget.t0 == 1000.0 - 50.0 and after.budget.end == 1000.0 - 50.0 + 120
    assert after.search_before_s == 44.0
    assert lines == [f"study {key}.r1 finished (run run-1); starting study {key}.r2 (a repeat)",
                     f"resuming study {key}.r2: 1 finished trials, 50 s spent"]  # fmt: skip


def test_an_explicit_study_is_kept_as_given(tmp_path) -> None:
    cfg, state = _prepared(tmp_path, "--study", "lab")
    picked, after, lines = pick_study(cfg, state)
    assert (picked.study_name, picked.study_key, picked.seed) == ("lab", None, 5)
    assert after is state and lines == []


@pytest.mark.parametrize("extra,needle", [
    (["--repeats", "0"], "--repeats 0: give at least 1"),
    (["--repeats", "-2"], "--repeats -2: give at least 1"),
    (["--repeats", "2", "--study", "lab"], "--study lab with --repeats 2"),
])  # fmt: skip
def test_bad_repeats_is_one_line_and_writes_nothing(tmp_path, capsys, extra, needle) -> None:
    out = tmp_path / "out"
    assert main([*ARGV, *extra, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and needle in err[0], err
    assert not out.exists()


def test_the_repeat_lines() -> None:
    from types import SimpleNamespace as Rec

    assert total_line(3, 600) == "3 repeats x 10m = 30m in all"
    runs = [Rec(test_auc_mean=0.8, test_acc_mean=0.7), Rec(test_auc_mean=0.9, test_acc_mean=0.6)]
    assert summary_line(runs, repeats=2, failed=0) == (
        "repeats: test AUC 0.8500 ± 0.0707 over 2 runs, ACC 0.6500 ± 0.0707")
    assert summary_line(runs[:1], repeats=2, failed=1).endswith("over 1 runs, ACC 0.7000 ± "
                                                                "0.0000 (1 of 2 failed)")
