"""``bench peer`` end to end in subprocesses: the constant floor's run and record; and (needs
AutoGluon's venv, skipped without it) a real offline AutoGluon MultiModal fit, a fit past its
budget killed and recorded, an unknown backbone as a failed record."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from bench.peers.venv import AUTOGLUON_VERSION, DEFAULT_VENV, PYTHON_ENV, is_ready, venv_python
from bench.results.predictions import read_predictions


def _only_run_dir(out: Path) -> Path:
    runs = [p for p in out.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


@pytest.fixture
def ag_python() -> Path:
    """AutoGluon's interpreter ($BENCH_AUTOGLUON_PYTHON or the default venv); skips if neither."""
    given = os.environ.get(PYTHON_ENV)
    if given:
        return Path(given)
    venv = DEFAULT_VENV.expanduser()
    if not is_ready(venv):
        pytest.skip(
            f"AutoGluon's venv is not built and ${PYTHON_ENV} is unset "
            "(build it with `bash .ci/autogluon_venv.sh`)"
        )
    return venv_python(venv)


@pytest.mark.slow
def test_autogluon_fits_offline_and_writes_record(tiny_npz, tmp_path, run_bench, ag_python):
    name = tiny_npz(task="binary-class", counts=(40, 10, 10))
    r = run_bench("peer", "autogluon", "--dataset", name, "--out", tmp_path / "out",
                  "--budget", "100s", "--python", ag_python,
                  env={"HF_HUB_OFFLINE": "1"})  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    run_dir = _only_run_dir(tmp_path / "out")
    rec = json.loads((run_dir / "record.json").read_text())
    assert rec["status"] == "ok" and rec["kind"] == "peer" and rec["family"] == "autogluon"
    assert rec["method"] == "AutoGluon MultiModal (28)" and rec["img_size"] == 28
    assert isinstance(rec["test_auc_mean"], float) and 0.0 <= rec["test_auc_mean"] <= 1.0
    assert not math.isnan(rec["test_auc_mean"])
    assert rec["params"]["pretrained"] is False
    assert rec["params"]["backbone"] == "mobilenetv3_large_100"
    assert rec["params"]["preset"] == "medium_quality"
    assert rec["peer_versions"]["autogluon"] == AUTOGLUON_VERSION  # the one pinned version
    assert rec["budget_s"] == 100 and rec["constraint"] == "1m40s"
    (pred,) = (run_dir / "predictions").iterdir()
    assert read_predictions(pred).shape == (10, 2)
    config = json.loads((run_dir / "ag_export" / "backbone" / "config.json").read_text())
    assert config["architecture"] == "mobilenetv3_large_100" and config["num_features"] > 0


@pytest.mark.slow
def test_autogluon_timeout_is_killed_and_recorded(tiny_npz, tmp_path, run_bench, ag_python):
    name = tiny_npz(task="binary-class", counts=(20, 6, 6))
    r = run_bench("peer", "autogluon", "--dataset", name, "--out", tmp_path / "out",
                  "--budget", "6s", "--python", ag_python)  # fmt: skip
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: AutoGluon MultiModal (28)")
    assert "did not finish within the budget" in r.stderr
    rec = json.loads((_only_run_dir(tmp_path / "out") / "record.json").read_text())
    assert rec["status"] == "failed" and rec["test_auc_mean"] is None
    assert "killed" in rec["info"]


@pytest.mark.slow
def test_autogluon_unknown_backbone_is_a_failed_record(tiny_npz, tmp_path, run_bench, ag_python):
    name = tiny_npz(task="binary-class", counts=(20, 6, 6))
    r = run_bench("peer", "autogluon", "--dataset", name, "--out", tmp_path / "out",
                  "--budget", "2m", "--python", ag_python,
                  "--backbone", "no_such_net")  # fmt: skip
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: ")
    rec = json.loads((_only_run_dir(tmp_path / "out") / "record.json").read_text())
    assert rec["status"] == "failed"
    assert "unknown timm backbone 'no_such_net'" in rec["info"]


def test_cli_constant_peer(tiny_npz, tmp_path, run_bench):
    name = tiny_npz(task="binary-class")
    r = run_bench("peer", "constant", "--dataset", name, "--out", tmp_path / "out",
                  "--budget", "1m")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "Constant (train prior)" in r.stdout and "test AUC 0.500" in r.stdout
    rec = json.loads((_only_run_dir(tmp_path / "out") / "record.json").read_text())
    assert rec["budget_s"] == 60 and rec["test_auc_mean"] == 0.5
