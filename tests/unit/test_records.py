"""The one record definition: every committed record loads through it (old ones get their
missing fields' defaults), the results.csv columns come from it, and the one builder
aggregates seeds, hashes the configuration and refuses fields it does not define."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path

import pytest

from bench.data.catalog import get_dataset
from bench.results.records import (
    COLUMNS,
    Record,
    budget_label,
    build_record,
    config_hash,
    load_record,
    make_run_id,
)

REPO = Path(__file__).resolve().parents[2]
COMMITTED = sorted((REPO / "leaderboards" / "records").glob("*.json")) + sorted(
    (REPO / "tests" / "golden" / "records").glob("*.json")
)
ENV = {"bench_version": "0", "git_sha": "", "torch_version": "t", "optuna_version": "o",
       "medmnist_version": "m", "python_version": "p", "hardware": {}}  # fmt: skip


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.stem)
def test_every_committed_record_loads(path):
    raw = json.loads(path.read_text())
    rec = load_record(raw)
    assert rec.run_id == path.stem and rec.dataset == raw["dataset"]
    again = rec.as_dict()
    for key, value in raw.items():  # nothing lost, nothing changed
        assert again[key] == value, key
    if raw.get("kind") in ("run", "peer") and "constraint" not in raw:
        assert rec.constraint == budget_label(raw["budget_s"])
    if raw.get("kind") == "train":
        assert rec.constraint == ""


def test_committed_breastmnist_runs_carry_their_budgets():
    runs = [load_record(json.loads(p.read_text())) for p in COMMITTED]
    breast = {r.constraint for r in runs if r.kind == "run" and r.dataset == "breastmnist"}
    assert {"3m", "10m"} <= breast


def test_columns_come_from_the_record():
    assert COLUMNS == tuple(f.name for f in fields(Record) if f.metadata["csv"])
    assert COLUMNS[:2] == ("run_id", "source") and "constraint" in COLUMNS
    assert {"per_seed", "hardware", "status", "extra"}.isdisjoint(COLUMNS)
    assert all(f.metadata["doc"] is not None for f in fields(Record))


def test_budget_labels():
    cases = {45: "45s", 60: "1m", 180: "3m", 600: "10m", 90: "1m30s", 5400: "1h30m",
             14400: "4h", 3661: "1h1m1s"}  # fmt: skip
    assert {s: budget_label(s) for s in cases} == cases


def test_run_id_names_the_constraint_not_the_family():
    run_id = make_run_id("breastmnist", 28, kind="run", constraint="3m")
    assert re.fullmatch(r"breastmnist\.28\.3m\.\d{8}T\d{6}Z\.[0-9a-f]{4}", run_id)
    assert make_run_id("npz:/x/a b", 28, kind="train", constraint="").startswith(
        "npz--x-a-b.28.train."
    )


def test_build_record_aggregates_and_refuses_unknown_fields():
    spec = get_dataset("breastmnist")
    per_seed = [{"seed": s, "test_auc": a, "test_acc": c, "val_score": 0.9, "best_epoch": 1}
                for s, a, c in ((0, 0.8, 0.7), (1, 0.9, 0.8))]  # fmt: skip
    common = dict(run_id="r", kind="run", spec=spec, data_size=28, method="M (28)", family="m",
                  config={"a": 1}, params={"lr": 0.1}, env=ENV)  # fmt: skip
    rec = build_record(per_seed=per_seed, budget_s=180, wall_s=179.6, info=["x", ""], **common)
    assert rec.ok and rec.constraint == "3m" and rec.wall_s == 180 and rec.info == "x"
    assert rec.test_auc_mean == pytest.approx(0.85) and rec.test_auc_std == pytest.approx(
        0.0707, abs=1e-4
    )
    assert rec.seeds == "0;1" and rec.n_seeds == 2 and rec.task == "binary-class"
    assert (
        rec.config_hash == config_hash({"a": 1}, {"lr": 0.1}) != config_hash({"a": 2}, {"lr": 0.1})
    )
    failed = build_record(per_seed=[], **common)
    assert failed.status == "failed" and failed.test_auc_mean is None and failed.n_seeds == 0
    with pytest.raises(TypeError, match="not record fields: \\['wal_s'\\]"):
        build_record(per_seed=per_seed, wal_s=3, **common)
