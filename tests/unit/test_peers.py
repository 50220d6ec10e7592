"""``bench peer``: the constant floor (exact values), the PNG export AutoGluon reads, the
worker's failures becoming failed records (the runs in subprocesses, and a real offline
AutoGluon MultiModal fit, which needs AutoGluon's venv: ``tests/e2e/test_peers_runs.py``)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bench.errors import BenchError
from bench.peers.autogluon import export_split, problem_type
from bench.peers.command import run_peer
from bench.peers.constant import CONSTANT_METHOD, train_prior
from bench.peers.venv import (
    READY_MARK,
    build_venv,
    is_ready,
    venv_python,
)
from bench.results.predictions import load_test_predictions, read_predictions


def _npz_path(name: str) -> Path:
    return Path(name[len("npz:") :])


def _only_run_dir(out: Path) -> Path:
    runs = [p for p in out.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def test_train_prior_values():
    labels = np.array([[0], [1], [1], [2]])
    assert train_prior(labels, "multi-class", 4).tolist() == [0.25, 0.5, 0.25, 0.0]
    ml = np.array([[1, 0, 1], [0, 0, 1]])
    assert train_prior(ml, "multi-label, binary-class", 3).tolist() == [0.5, 0.0, 1.0]


@pytest.mark.parametrize(
    "task, acc",
    [
        ("binary-class", 0.5),  # prior [0.5, 0.5]: 0.5 is not > 0.5, so class 0; half of test
        ("multi-class", 0.25),  # 4 equal classes: argmax is class 0, a quarter of test
    ],
)
def test_constant_peer_exact_values(tiny_npz, tmp_path, task, acc):
    name = tiny_npz(task=task)
    rec, run_dir, code = run_peer("constant", dataset=name, out=tmp_path / "runs",
                            started=time.monotonic())  # fmt: skip
    record = rec.as_dict()
    assert code == 0
    assert record["test_auc_mean"] == 0.5
    assert record["test_acc_mean"] == acc
    assert record["status"] == "ok" and record["kind"] == "peer"
    assert record["method"] == CONSTANT_METHOD and record["family"] == "constant"
    assert record["n_seeds"] == 1 and record["test_auc_std"] == 0.0
    assert run_dir == _only_run_dir(tmp_path / "runs")
    on_disk = json.loads((run_dir / "record.json").read_text())
    assert on_disk["run_id"] == run_dir.name and on_disk["test_acc_mean"] == acc
    (pred,) = (run_dir / "predictions").iterdir()
    assert pred.name.endswith("_test_[AUC]0.500_[ACC]" + f"{acc:.3f}@seed0.csv")
    scores = read_predictions(pred)
    n_classes = 2 if task == "binary-class" else 4
    np.testing.assert_allclose(scores, np.full((16, n_classes), 1 / n_classes))
    kept = load_test_predictions(run_dir / on_disk["test_predictions"])  # the peer's evidence
    assert kept.chosen == ("seed0",) and kept.labels.shape == (16, 1)
    np.testing.assert_allclose(kept.fits["seed0"], scores)
    assert (on_disk["test_auc_lo"], on_disk["test_auc_hi"]) == (0.5, 0.5)  # a constant's AUC
    assert on_disk["n_test"] == 16 and on_disk["test_acc_lo"] <= acc <= on_disk["test_acc_hi"]


def test_constant_peer_multilabel_per_label_rates(tiny_npz, tmp_path):
    name = tiny_npz(task="multi-label, binary-class")
    rec, run_dir, code = run_peer("constant", dataset=name, out=tmp_path, started=time.monotonic())
    record = rec.as_dict()
    assert code == 0
    npz = np.load(_npz_path(name))
    rates = npz["train_labels"].mean(axis=0)
    test = npz["test_labels"]
    expected_acc = np.mean([np.mean(test[:, i] == int(rates[i] > 0.5)) for i in range(3)])
    assert record["test_auc_mean"] == 0.5
    assert record["test_acc_mean"] == pytest.approx(expected_acc, abs=1e-12)
    np.testing.assert_allclose(record["params"]["prior"], rates, atol=1e-6)


def test_autogluon_rejects_multilabel_before_any_work(tiny_npz, tmp_path, run_bench):
    name = tiny_npz(task="multi-label, binary-class")
    r = run_bench("peer", "autogluon", "--dataset", name, "--out", tmp_path / "out",
                  "--python", sys.executable, "--budget", "1m")  # fmt: skip
    assert r.returncode == 2
    assert r.stderr.strip().startswith("error: the autogluon peer does not support multi-label")
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()  # nothing created


def test_missing_interpreter_is_one_line(tiny_npz, tmp_path, run_bench):
    r = run_bench("peer", "autogluon", "--dataset", tiny_npz(), "--out", tmp_path / "out",
                  "--python", tmp_path / "no" / "python", "--budget", "1m")  # fmt: skip
    assert r.returncode == 2
    assert r.stderr.startswith("error: --python ") and "no such interpreter" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_problem_types():
    assert problem_type("binary-class") == "binary"
    assert problem_type("multi-class") == "multiclass"
    assert problem_type("ordinal-regression") == "multiclass"
    with pytest.raises(BenchError, match="multi-label"):
        problem_type("multi-label, binary-class")


@pytest.mark.parametrize("n_channels", [1, 3])
def test_export_round_trip_and_unlabelled_test(tiny_npz, tmp_path, n_channels):
    from PIL import Image

    from bench.data.load import load_splits

    splits = load_splits(tiny_npz(n_channels=n_channels))
    export_split(splits.val, tmp_path / "val", tmp_path / "val.csv", with_labels=True)
    export_split(splits.test, tmp_path / "test", tmp_path / "test.csv", with_labels=False)
    val_rows = (tmp_path / "val.csv").read_text().splitlines()
    test_rows = (tmp_path / "test.csv").read_text().splitlines()
    assert val_rows[0] == "image,label" and len(val_rows) == 1 + len(splits.val)
    assert test_rows[0] == "image" and len(test_rows) == 1 + len(splits.test)
    assert all("," not in row for row in test_rows)  # no labels for the test split
    path, label = val_rows[3].split(",")
    assert int(label) == int(splits.val.labels[2, 0])
    np.testing.assert_array_equal(np.asarray(Image.open(path)), splits.val.images[2])
    np.testing.assert_array_equal(np.asarray(Image.open(test_rows[5])), splits.test.images[4])


def test_worker_failure_gives_failed_record(tiny_npz, tmp_path):
    """An interpreter without AutoGluon (bench's own): the worker exits non-zero, bench
    writes a failed record and returns 1, never a half-written record or a hang."""
    name = tiny_npz(task="binary-class", counts=(20, 6, 6))
    rec, run_dir, code = run_peer("autogluon", dataset=name, out=tmp_path, python=sys.executable,
                            budget="2m", started=time.monotonic())  # fmt: skip
    record = rec.as_dict()
    assert code == 1
    assert record["status"] == "failed" and record["kind"] == "peer"
    assert record["test_auc_mean"] is None and record["per_seed"] == []
    assert "worker exited with status 1" in record["info"]
    assert "No module named 'autogluon'" in record["info"]
    on_disk = json.loads((run_dir / "record.json").read_text())
    assert on_disk["status"] == "failed" and on_disk["info"] == record["info"]
    assert not (run_dir / "ag_export" / "test_probs.npy").exists()
    assert [p.name for p in run_dir.iterdir() if p.name.startswith(".")] == []


# ----------------------------------------------------------------- AutoGluon's own venv


def test_venv_build_failure_is_one_line(tmp_path):
    with pytest.raises(BenchError, match=r"could not create AutoGluon's venv.*--python PATH"):
        build_venv(tmp_path / "venv", base_python=str(tmp_path / "no-python"), log=lambda m: None)
    assert not is_ready(tmp_path / "venv")


def test_venv_build_is_idempotent(tmp_path):
    venv = tmp_path / "venv"
    venv_python(venv).parent.mkdir(parents=True)
    venv_python(venv).write_text("")
    (venv / READY_MARK).write_text("done\n")
    lines = []
    assert build_venv(venv, base_python=str(tmp_path / "no-python"), log=lines.append) == (
        venv_python(venv).resolve()
    )
    assert lines == []  # nothing was run: a complete venv is reused
