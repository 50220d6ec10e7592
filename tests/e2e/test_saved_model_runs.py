"""``bench run --ensemble`` end to end in a subprocess: the run selects, refits and saves an
ensemble whose saved files ``bench predict`` reproduces, and whose CSV ``bench evaluate``
scores as the record did."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import make_npz
from runs import TINY
from saved_runs import assert_round_trip, bench, saved

from bench.scoring import auc


@pytest.fixture
def npz(tmp_path) -> Path:
    """Tiny binary data whose first class name holds a comma (as BreastMNIST's does): the
    ``bench predict`` CSV must quote it for ``bench evaluate`` to read it back."""
    path = make_npz(tmp_path / "data" / "tiny.npz", counts=(96, 32, 32))
    path.with_name(path.name + ".json").write_text(json.dumps(
        {"task": "binary-class", "class_names": ["normal, benign", "malignant"]}))  # fmt: skip
    return path


@pytest.mark.slow
def test_run_selects_refits_and_saves_an_ensemble(npz, tmp_path):
    out = tmp_path / "out"
    done = bench("run", "--dataset", f"npz:{npz}", "--budget", "90s", "--n-trials", "6",
                 "--seeds", "2", "--ensemble", "3", "--out", out, "--quiet", "--device", "cpu",
                 *TINY)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (record_path,) = out.glob("*/record.json")
    record, run_dir = json.loads(record_path.read_text()), record_path.parent
    members = record["ensemble_members"]
    assert members[0]["trial"] == record["best_trial"] and 1 <= len(members) <= 3
    assert sum(m["weight"] for m in members) == pytest.approx(1.0)
    assert len({m["trial"] for m in members}) == len(members)
    assert record["wall_s"] <= 90 * 1.05
    # every trial that completed left its val predictions; the selected ensemble is the
    # weighted mean of its members' seed means, as the saved file and the record say
    labels = np.load(npz)["test_labels"]
    index = {m["trial"]: i for i, m in enumerate(json.load(
        (run_dir / "models" / "ensemble.json").open())["members"])}  # fmt: skip
    assert set(index) == {m["trial"] for m in members}
    mixed = sum(m["weight"] * np.mean([saved(run_dir, f"seed{s}" if i == 0 else f"m{i}-seed{s}")
                                       for s in m["seeds"]], axis=0)
                for i, m in enumerate(members))  # fmt: skip
    np.testing.assert_allclose(saved(run_dir, "ensemble"), mixed, atol=1e-9)
    assert record["ensemble_test_auc"] == pytest.approx(auc(labels, mixed, "binary-class"))
    assert_round_trip(run_dir, npz, tmp_path)
