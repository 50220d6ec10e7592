"""``bench compare``: hand-made records with hand-made test predictions. Identical records
differ by exactly 0 (p = 1); a model right on 20 more of 200 items is A better in ACC and
AUC; each bad input is one ``error:`` line, exit 2, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench import scoring
from bench.cli import main
from bench.results import predictions as tp
from bench.results.compare import NOT_DISTINGUISHABLE, compare, load_side

N = 200
LABELS = np.repeat([0, 1], N // 2)[:, None]


def probs(wrong: int, labels: np.ndarray = LABELS) -> np.ndarray:
    """Binary softmax rows, wrong on the first ``wrong / 2`` items of each class and right on
    the rest (0.8 or 0.2 for the positive class, with a seeded spread so scores do not tie)."""
    y = labels[:, 0]
    rank = np.array([np.sum(y[:i] == y[i]) for i in range(len(y))])  # index within its class
    right = rank >= wrong // 2
    spread = np.random.default_rng(0).uniform(-0.05, 0.05, len(y))
    p = np.where(right == (y == 1), 0.8, 0.2) + spread
    return np.stack([1 - p, p], axis=1)


def make_run(root: Path, name: str, scores: np.ndarray, *, dataset: str = "pneumoniamnist",
             labels: np.ndarray = LABELS, ensembles: bool = True,
             predictions: bool = True) -> Path:  # fmt: skip
    """A run folder ``root/name`` with a minimal record and (optionally) its predictions."""
    run = root / name
    run.mkdir(parents=True)
    rec = {"run_id": name, "dataset": dataset, "method": f"model {name}", "kind": "run",
           "constraint": "3m", "data_size": 28, "img_size": 28, "utc": "2025-03-01T10:00:00+00:00",
           "status": "ok", "test_auc_mean": 0.9, "test_acc_mean": 0.9}  # fmt: skip
    if predictions:
        rec["test_predictions"] = "test_predictions.npz"
        ens = scores if ensembles else None
        tp.save_test_predictions(run / "test_predictions.npz", tp.TestPredictions(
            dataset=dataset, task="binary-class", labels=labels,
            fits={"seed0": scores, "seed1": scores}, chosen=("seed0", "seed1"),
            seed_ensemble=ens, ensemble=ens))  # fmt: skip
    (run / "record.json").write_text(json.dumps(rec), encoding="utf-8")
    return run


def test_identical_records_differ_by_zero(tmp_path):
    run = make_run(tmp_path, "a", probs(20))
    result = compare(load_side(run), load_side(run / "record.json"))
    assert [(r.figure, r.metric) for r in result.rows] == [
        (f, m) for f in ("test", "seed_ensemble_test", "ensemble_test") for m in ("auc", "acc")
    ]
    for r in result.rows:
        assert r.a == r.b
        assert (r.diff.value, r.diff.lo, r.diff.hi, r.diff.p) == (0.0, 0.0, 0.0, 1.0)
        assert r.verdict == NOT_DISTINGUISHABLE


def test_twenty_more_right_of_200_is_a_better(tmp_path, capsys):
    a, b = make_run(tmp_path, "a", probs(20)), make_run(tmp_path, "b", probs(40))
    result = compare(load_side(a), load_side(b))
    saved = load_side(a).preds.fits["seed0"].astype(np.float64)  # float16 on disk
    rows = {(r.figure, r.metric): r for r in result.rows}
    acc, auc = rows[("test", "acc")], rows[("test", "auc")]
    assert acc.a[0] == pytest.approx(0.90) and acc.b[0] == pytest.approx(0.80)
    assert acc.diff.value == pytest.approx(0.10)
    assert auc.a[0] == scoring.auc(LABELS, saved, "binary-class")  # medmnist's own value
    assert auc.diff.value > 0.05
    for r in result.rows:
        assert r.diff.lo > 0 and r.diff.p < 0.05 and r.verdict == "A better"

    assert main(["compare", str(a), str(b), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["dataset"], out["n_test"], out["a"]["run_id"], out["b"]["run_id"]) == (
        "pneumoniamnist", N, "a", "b")  # fmt: skip
    assert out["rows"][1]["diff"] == pytest.approx(0.10)
    assert main(["compare", str(b), str(a)]) == 0
    text = capsys.readouterr().out
    assert "test set: pneumoniamnist, 200 items" in text and "B better" in text


def test_ensemble_only_on_one_side_is_not_compared(tmp_path, capsys):
    a = make_run(tmp_path, "a", probs(20))
    b = make_run(tmp_path, "b", probs(20), ensembles=False)
    result = compare(load_side(a), load_side(b))
    assert {r.figure for r in result.rows} == {"test"}
    assert result.only == {"seed_ensemble_test": "A", "ensemble_test": "A"}


def corrupt(run: Path, data: bytes) -> Path:
    (run / "test_predictions.npz").write_bytes(data)
    return run


BAD = {
    "missing": (lambda t: t / "nope", "no such run folder"),
    "several": (lambda t: t, "holds 2 records; pass one"),
    "no predictions": (lambda t: make_run(t, "old", probs(0), predictions=False),
                       "made before test predictions were kept"),
    "other dataset": (lambda t: make_run(t, "c", probs(0), dataset="breastmnist"),
                      "compare two records of the same dataset"),
    "other item count": (lambda t: make_run(t, "c", probs(0, LABELS[:100]), labels=LABELS[:100]),
                         "has 200 test items and"),
    "other labels": (lambda t: make_run(t, "c", probs(0), labels=LABELS[::-1]),
                     "differ on 200 of 200 items"),
    "cut npz": (lambda t: corrupt(make_run(t, "c", probs(0)), b"PK\x03\x04 cut"),
                "not a bench test-predictions file"),
    "empty npz": (lambda t: corrupt(make_run(t, "c", probs(0)), b""),
                  "not a bench test-predictions file"),
    "npz of noise": (lambda t: corrupt(make_run(t, "c", probs(0)), bytes(range(256))),
                     "not a bench test-predictions file"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line(tmp_path, capsys, case):
    make_run(tmp_path, "a", probs(20))
    make_run(tmp_path, "b", probs(20))
    build, expected = BAD[case]
    other = build(tmp_path)
    before = sorted(p for p in tmp_path.rglob("*"))
    assert main(["compare", str(tmp_path / "a"), str(other)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert captured.out == ""
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_csv_has_one_line_per_row_of_the_table(tmp_path, capsys):
    import csv
    import io

    a, b = make_run(tmp_path, "a", probs(20)), make_run(tmp_path, "b", probs(40))
    result = compare(load_side(a), load_side(b))
    assert main(["compare", str(a), str(b), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["figure"], r["metric"]) for r in rows] == [(r.figure, r.metric) for r in result.rows]
    for line, row in zip(rows, result.rows, strict=True):
        assert float(line["diff"]) == pytest.approx(row.diff.value)
        assert float(line["diff_lo"]) == pytest.approx(row.diff.lo)
        assert float(line["p"]) == pytest.approx(row.diff.p)
        assert line["verdict"] == row.verdict == "A better"
