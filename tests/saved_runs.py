"""Helpers for the tests of saved fits (``tests/unit/test_saved_model.py`` and the run that
saves an ensemble in ``tests/e2e``): ``python -m bench`` to its end, the saved and the
predicted test probabilities, and the ``bench predict`` round trip."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from runs import ENV

from bench.results.predictions import read_predictions


def bench(*args, cwd=None) -> subprocess.CompletedProcess:
    """``python -m bench ARGS`` run to its end (tests/ on PYTHONPATH), text output."""
    return subprocess.run([sys.executable, "-m", "bench", *map(str, args)], env=ENV, text=True,
                          capture_output=True, timeout=600, cwd=cwd)  # fmt: skip


def read_csv_scores(path: Path) -> np.ndarray:
    """The probability columns of a ``bench predict`` CSV, in its row order."""
    from bench.results.predict_csv import read_table

    return read_table(path).scores


def saved(run_dir: Path, label: str) -> np.ndarray:
    """The test probabilities a run saved under ``label`` (``seed0``, ``ensemble``, ...)."""
    (path,) = (run_dir / "predictions").glob(f"*_test_*@{label}.csv")
    return read_predictions(path)


def assert_round_trip(run_dir: Path, npz: Path, tmp_path: Path) -> None:
    """``bench predict --device cpu`` on the test split reproduces every saved fit's and both
    ensembles' test probabilities to 1e-6 (the run trained on the CPU too: with CUDA present,
    ``auto`` would predict on the GPU), and ``bench evaluate`` of its CSV the record's scores."""
    models = json.loads((run_dir / "models" / "ensemble.json").read_text())
    for seed in models["members"][0]["seeds"]:
        out = tmp_path / f"seed{seed}.csv"
        done = bench("predict", run_dir, npz, "--seed", seed, "--out", out, "--quiet",
                     "--device", "cpu")  # fmt: skip
        assert done.returncode == 0, done.stderr
        np.testing.assert_allclose(read_csv_scores(out), saved(run_dir, f"seed{seed}"), atol=1e-6)
    for how, label in (("seeds", "ensemble-seeds"), ("selected", "ensemble")):
        out = tmp_path / f"{how}.csv"
        done = bench("predict", run_dir, npz, "--ensemble", how, "--out", out, "--quiet",
                     "--device", "cpu")  # fmt: skip
        assert done.returncode == 0, done.stderr
        np.testing.assert_allclose(read_csv_scores(out), saved(run_dir, label), atol=1e-6)
    assert_evaluate_reproduces(run_dir, npz, tmp_path / "selected.csv")


def assert_evaluate_reproduces(run_dir: Path, npz: Path, predicted: Path) -> None:
    """``bench evaluate`` of the ``bench predict --out`` CSV of the run's selected ensemble
    (the default) on the test split gives the record's ``ensemble_test_auc``/``acc``."""
    record = json.loads((run_dir / "record.json").read_text())
    done = bench("evaluate", "--dataset", f"npz:{npz}", "--predictions", predicted)
    assert done.returncode == 0, done.stderr
    scored = json.loads(done.stdout)
    assert scored["n"] == len(np.load(npz)["test_labels"])
    assert abs(scored["auc"] - record["ensemble_test_auc"]) <= 1e-6
    assert abs(scored["acc"] - record["ensemble_test_acc"]) <= 1e-6
