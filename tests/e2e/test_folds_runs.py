"""``bench train --cv`` end to end in a subprocess: one model per fold, never a test item."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import make_npz
from runs import ENV


def test_train_cv_fits_one_model_per_fold_and_never_a_test_item(tmp_path):
    npz = make_npz(tmp_path / "tiny.npz", counts=(60, 20, 24))
    out = tmp_path / "runs"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "train", "--dataset", f"npz:{npz}", "--model",
         "tiny_mlp", "--plugins", "bench_tiny_plugin", "--epochs", "2", "--cv", "4", "--out",
         str(out), "--quiet", "--device", "cpu"],
        env=ENV, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (run_dir,) = out.iterdir()
    record = json.loads((run_dir / "record.json").read_text())
    assert record["cv"] == 4 and record["seeds"] == "0;1;2;3" and record["n_seeds"] == 4
    saved = json.loads((run_dir / "folds.json").read_text())
    assert saved["k"] == 4 and len(saved["folds"]) == 80  # train + val, no test item
    assert "4-fold CV auc on the held-out folds" in done.stdout
    vals = [p["val_score"] for p in record["per_seed"]]
    assert record["val_score"] == pytest.approx(np.mean(vals))
