"""``bench run`` / ``bench search`` end to end in subprocesses on tiny data with the tiny test
families: the run folder and record, resume after SIGKILL, several workers on one journal file
and on PostgreSQL, a search that cannot see the test split, published rows without
``../shared``, volumes and ``--cv``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import bench_tiny_plugin  # noqa: F401
import numpy as np
import optuna
import pytest
from conftest import make_npz
from optuna.trial import TrialState
from pg import postgres_server, postgres_url  # noqa: F401  (fixtures)
from runs import ENV, TESTS, TINY, records
from runs import bench as _bench
from runs import load_study as _study

from bench.cli import main


@pytest.fixture
def npz(tmp_path) -> str:
    return "npz:" + str(make_npz(tmp_path / "data" / "tiny.npz", counts=(96, 32, 32)))


@pytest.mark.slow
def test_run_writes_the_run_folder_within_budget(npz, tmp_path) -> None:
    out = tmp_path / "out"
    proc = _bench("run", "--dataset", npz, "--budget", "30s", "--out", str(out), "--quiet",
                  "--seeds", "2", *TINY)  # fmt: skip
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    (record,) = records(out)
    run_dir = out / record["run_id"]
    assert record["kind"] == "run" and record["status"] == "ok" and record["family"] == "tiny_mlp"
    assert record["seeds"] == "0;1" and len(record["per_seed"]) == 2
    aucs = [p["test_auc"] for p in record["per_seed"]]
    assert record["test_auc_mean"] == pytest.approx(np.mean(aucs))
    assert record["test_auc_std"] == pytest.approx(np.std(aucs, ddof=1))
    assert record["budget_s"] == 30 and record["constraint"] == "30s"
    assert run_dir.name.startswith("tiny.28.30s.")  # the budget, not the family, in the id
    assert record["search_s"] + record["final_s"] <= record["wall_s"] + 1
    study = _study(str(out / "studies" / f"{record['study_name']}.journal"), record["study_name"])
    assert record["n_trials"] == len(study.trials) >= 1
    assert record["val_score"] == pytest.approx(study.best_value)
    assert record["n_complete"] == sum(t.state == TrialState.COMPLETE for t in study.trials)
    preds = sorted((run_dir / "predictions").glob("tiny_test_*@seed*.csv"))
    assert len(preds) == 2 and len(preds[0].read_text().splitlines()) == 32
    fits = json.loads((run_dir / "fits.json").read_text())
    assert [f["seed"] for f in fits] == [0, 1] and fits[0]["history"]
    assert (run_dir / "trials.csv").read_text().startswith("number,")
    assert (run_dir / "journal.log").stat().st_size > 0
    assert "bench run, 30s (this run)" in stdout


@pytest.mark.slow
def test_resume_after_sigkill_keeps_every_completed_trial(npz, tmp_path) -> None:
    out = tmp_path / "out"
    args = ["run", "--dataset", npz, "--out", str(out), "--quiet", *TINY]
    proc = _bench(*args, "--budget", "2m", start_new_session=True)
    journals = out / "studies"
    files: list[Path] = []
    done: list[int] = []
    give_up = time.monotonic() + 90
    while len(done) < 2 and time.monotonic() < give_up and proc.poll() is None:
        time.sleep(0.5)
        files = sorted(journals.glob("*.journal")) if journals.exists() else []
        try:
            study = _study(str(files[0]), files[0].stem)
        except (IndexError, KeyError):  # no journal yet, or no study in it yet
            continue
        done = [t.number for t in study.get_trials(states=(TrialState.COMPLETE,))]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert len(done) >= 2, "no trial completed before the kill"
    study = _study(str(files[0]), files[0].stem)
    before = {t.number for t in study.get_trials(states=(TrialState.COMPLETE,))}
    assert not records(out)

    again = _bench(*args, "--budget", "2m", "--n-trials", "2")  # the same command's study
    _, stderr = again.communicate(timeout=150)
    assert again.returncode == 0, stderr
    assert f"resuming study {files[0].stem}: " in stderr
    (record,) = records(out)
    study = _study(str(files[0]), files[0].stem)
    after = {t.number: t for t in study.trials}
    assert before <= {n for n, t in after.items() if t.state == TrialState.COMPLETE}
    assert record["study_name"] == files[0].stem
    assert record["n_trials"] == len(after) >= len(before) + 2, stderr
    assert record["n_complete"] >= len(before) + 1
    assert all(t.state != TrialState.RUNNING for t in after.values())  # the killed one: FAIL


def _workers(npz, tmp_path, storage: str) -> None:
    out = tmp_path / "out"
    common = ["--dataset", npz, "--out", str(out), "--quiet", "--storage", storage,
              "--study", "shared", "--budget", "90s", "--n-trials", "4", *TINY]  # fmt: skip
    procs = [_bench("search", *common, "--seed", "0"), _bench("search", *common, "--seed", "0"),
             _bench("run", *common, "--seeds", "1")]  # fmt: skip
    for p in procs:
        _, stderr = p.communicate(timeout=240)
        assert p.returncode == 0, stderr
    study = _study(storage, "shared")
    numbers = sorted(t.number for t in study.trials)
    assert numbers == list(range(12))
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials)
    workers = {t.user_attrs["worker"] for t in study.trials}
    assert len(workers) == 3
    seeds = {t.user_attrs["sampler_seed"] for t in study.trials}
    assert len(seeds) == 3  # each search worker samples with its own (recorded) seed
    (record,) = records(out)
    assert record["storage_kind"] == storage.split(":")[0] if "://" in storage else "journal"
    assert 4 <= record["n_trials"] <= 12


@pytest.mark.slow
def test_two_searches_and_a_run_share_one_journal(npz, tmp_path) -> None:
    _workers(npz, tmp_path, str(tmp_path / "shared.journal"))


@pytest.mark.slow
@pytest.mark.postgres
def test_two_searches_and_a_run_share_one_postgresql_study(npz, tmp_path, postgres_url) -> None:  # noqa: F811
    _workers(npz, tmp_path, postgres_url)
    # the same URL in a plain Optuna client (optuna-dashboard does this): SQLAlchemy's default
    # driver for postgresql:// is the one bench depends on, so no URL rewriting is needed
    plain = optuna.load_study(study_name="shared", storage=postgres_url)
    assert len(plain.trials) == 12


def _scrambled_copy(src: Path, dst: Path) -> Path:
    arrays = dict(np.load(src))
    rng = np.random.default_rng(7)
    arrays["test_labels"] = rng.integers(0, 2, size=arrays["test_labels"].shape).astype(np.uint8)
    dst.parent.mkdir(parents=True)
    np.savez(dst, **arrays)
    dst.with_name(dst.name + ".json").write_text(src.with_name(src.name + ".json").read_text())
    return dst


@pytest.mark.slow
@pytest.mark.parametrize("cv", [[], ["--cv", "3"]], ids=["val-split", "cv3"])
def test_search_never_sees_the_test_split(npz, tmp_path, capsys, cv) -> None:
    clean = Path(npz[len("npz:") :])
    scrambled = _scrambled_copy(clean, tmp_path / "scrambled" / "tiny.npz")
    found = []
    for path, out in ((clean, tmp_path / "a"), (scrambled, tmp_path / "b")):
        argv = ["run", "--dataset", f"npz:{path}", "--budget", "5m", "--n-trials", "4",
                *(cv or ["--seeds", "1"]), "--out", str(out), "--quiet", "--seed", "3",
                "--plugins", "bench_tiny_plugin", "--families", "tiny_mlp,tiny_boom",
                "--augment", "none,simple", *cv]  # fmt: skip
        assert main(argv) == 0
        (record,) = records(out)
        found.append(record)
    a, b = found
    assert a["study_name"] == b["study_name"]
    assert a["params"] == b["params"] and a["val_score"] == b["val_score"]
    assert a["best_trial"] == b["best_trial"]
    assert a["ensemble_members"] == b["ensemble_members"]  # selected on val alone
    assert a["cv"] == b["cv"] == (3 if cv else 0)
    assert a["test_auc_mean"] != b["test_auc_mean"]  # the test labels did differ


def _clone_without_shared(tmp_path: Path) -> Path:
    """The package as a fresh clone has it, in a folder with no ``../shared`` beside it."""
    import shutil

    import bench

    clone = tmp_path / "clone"
    repo = Path(bench.__file__).parents[1]
    shutil.copytree(repo / "bench", clone / "bench", ignore=shutil.ignore_patterns("__pycache__"))
    assert not (clone.parent / "shared").exists() and not (clone / "leaderboards").exists()
    return clone


@pytest.mark.slow
@pytest.mark.parametrize("how", ["npz", "data-dir"])
def test_summary_shows_published_rows_without_shared(tmp_path, how) -> None:
    """A clone with no ../shared: the closing table still has the MedMNIST v2 rows of the
    dataset, from the package's own reference tables."""
    clone = _clone_without_shared(tmp_path)
    if how == "npz":  # a small npz made here, named after the MedMNIST set it stands for
        path = make_npz(tmp_path / "data" / "breastmnist.npz", counts=(96, 32, 32))
        dataset, extra, source = f"npz:{path}", [], "MedMNIST v2 (breastmnist)"
    else:  # the official file (the package's embedded copy) in a data dir
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "breastmnist.npz").write_bytes(
            (clone / "bench" / "data" / "embedded" / "breastmnist.npz").read_bytes()
        )
        dataset, extra, source = (
            "breastmnist",
            ["--data-dir", str(tmp_path / "data")],
            "MedMNIST v2",
        )
    env = {**ENV, "PYTHONPATH": os.pathsep.join([str(clone), str(TESTS)])}
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "run", "--dataset", dataset, "--budget", "1m", *extra,
         "--out", str(tmp_path / "out"), "--quiet", "--seeds", "1", "--n-trials", "1", *TINY],
        cwd=clone, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    table = " ".join(proc.stdout.replace("│", " ").split())
    assert "ResNet-18 (28) 0.901 0.863" in table and "Google AutoML Vision 0.919 0.861" in table
    assert table.count(source) == 7  # the seven published rows
    assert "bench run, 1m (this run)" in table


@pytest.mark.slow
def test_run_on_volumes_searches_the_3d_families(tmp_path) -> None:
    path = make_npz(tmp_path / "data" / "vol.npz", size=28, ndim=3, counts=(48, 16, 16))
    out = tmp_path / "out"
    # Two 3D families: probing all seven at start-up took 56 s of the budget here and left
    # too little for a trial on a loaded machine (the default space on volumes is
    # tests/unit/test_models3d.py's); three trials end the search.
    proc = _bench("run", "--dataset", f"npz:{path}", "--budget", "90s", "--out", str(out),
                  "--quiet", "--seeds", "2", "--n-trials", "3",
                  "--families", "small_cnn3d,resnet18_acs")  # fmt: skip
    _, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 0, stderr
    (record,) = records(out)
    assert record["family"] in ("small_cnn3d", *(f"resnet{d}_{m}" for d in (18, 50)
                                                 for m in ("2_5d", "3d", "acs")))  # fmt: skip
    assert record["status"] == "ok" and len(record["per_seed"]) == 2
    assert 0.0 <= record["test_auc_mean"] <= 1.0
    study = _study(str(out / "studies" / f"{record['study_name']}.journal"), record["study_name"])
    space = json.loads(study.user_attrs["space"])
    assert set(space["family"]) == {"small_cnn3d", "resnet18_acs"}
    assert set(space["common"]["params"]["augment"]["choices"]) == {"none", "simple"}
    preds = sorted((out / record["run_id"] / "predictions").glob("vol_test_*@seed*.csv"))
    assert len(preds) == 2 and len(preds[0].read_text().splitlines()) == 16


@pytest.mark.slow
def test_cv_trials_score_the_mean_of_their_held_out_folds(npz, tmp_path) -> None:
    out = tmp_path / "out"
    proc = _bench("run", "--dataset", npz, "--budget", "60s", "--out", str(out), "--quiet",
                  "--n-trials", "3", "--cv", "3", "--seeds", "2", *TINY)  # fmt: skip
    _, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 0, stderr
    (record,) = records(out)
    assert record["cv"] == 3 and record["study_name"] != ""
    # the final fits are --seeds refits on train + val, for their epochs, the last kept
    assert record["n_seeds"] == 2 and [f["seed"] for f in record["per_seed"]] == [0, 1]
    fits = json.loads((out / record["run_id"] / "fits.json").read_text())
    for fit in fits:
        assert fit["val_score"] is None and fit["best_epoch"] == len(fit["history"])
        assert not any("val_auc" in h for h in fit["history"])
    folds = json.loads((out / record["run_id"] / "folds.json").read_text())
    assert folds["k"] == 3 and len(folds["folds"]) == 96 + 32  # train + val, never test
    study = _study(str(out / "studies" / f"{record['study_name']}.journal"), record["study_name"])
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert done
    for t in done:
        assert len(t.user_attrs["fold_scores"]) == 3
        assert t.value == pytest.approx(np.mean(t.user_attrs["fold_scores"]), abs=1e-6)
        # each fold is scored at its last epoch, as the refit it stands for
        last = t.intermediate_values[max(t.intermediate_values)]
        assert t.user_attrs["fold_scores"][0] == pytest.approx(last, abs=1e-6)
    # the out-of-fold val predictions cover the whole pool
    (val_file,) = (out / "studies").glob(f"*.val/trial-{done[0].number:06d}.npy")
    assert np.load(val_file).shape == (128, 2)
