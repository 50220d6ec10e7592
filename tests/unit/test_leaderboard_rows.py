"""The leaderboard's rows over runs: every record of a key aggregated (mean, std, n), the
first generation (no test predictions) apart, intervals from the records' saved test
predictions, the ``≈`` tie marks, blocks without empty rows, the per-dataset pages. Records
are hand-made with small prediction files (200 BreastMNIST-shaped test items)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
import pytest

from bench.reference import PUBLISHED
from bench.results import leaderboard as lb
from bench.results.evidence import load_evidence, record_distributions
from bench.results.intervals import auc_columns, interval, item_correct, resampled_auc
from bench.results.markdown import column_texts
from bench.results.predictions import TestPredictions as Predictions
from bench.results.predictions import save_test_predictions
from bench.results.tables import Cell, wide_table

GOLDEN = Path(__file__).parents[1] / "golden" / "records"
TEMPLATE = json.loads((GOLDEN / "breastmnist.28.10m.20261120T091000Z.b0a1.json").read_text())
N = 200
RNG = np.random.default_rng(7)
LABELS = (RNG.random(N) < 0.4).astype(np.int64)[:, None]


def probabilities(quality: float, flips: int = 0, seed: int = 0) -> np.ndarray:
    """(N, 2) binary-class probabilities: the label's direction with strength ``quality`` plus
    noise; ``flips`` items turned to the wrong side (errors)."""
    rng = np.random.default_rng(seed)
    y = LABELS[:, 0].astype(float)
    p = np.clip(0.5 + quality * (y - 0.5) + rng.normal(0, 0.2, N), 0.01, 0.99)
    wrong = np.flatnonzero((p > 0.5) == (y == 1))[:flips]
    p[wrong] = 1.0 - p[wrong]
    return np.stack([1 - p, p], axis=1)


def figures(fits: list[np.ndarray]) -> dict[str, float]:
    """The single-fit mean of AUC and ACC over ``fits``, as a record holds them."""
    idx = np.arange(N)[None]
    aucs = [float(resampled_auc(auc_columns(LABELS, f, "binary-class"), idx)[0]) for f in fits]
    accs = [float(item_correct(LABELS, f, "binary-class").mean()) for f in fits]
    return {"test_auc_mean": float(np.mean(aucs)), "test_acc_mean": float(np.mean(accs))}


def write_record(records: Path, run_id: str, *, kind: str = "run", budget: int = 600,
                 fits: list[np.ndarray] | None = None, method: str = "Small CNN (28)",
                 values: dict | None = None) -> dict:  # fmt: skip
    """A record (and, with ``fits``, its predictions file) in a leaderboard records folder."""
    rec = {**TEMPLATE, "run_id": run_id, "kind": kind, "budget_s": budget, "method": method,
           "constraint": f"{budget // 60}m" if budget else "", "utc": f"2026-12-01T{run_id[-2:]}",
           "n_seeds": 2, "test_balanced_acc": 0.8, "test_ece": 0.05}  # fmt: skip
    if fits is not None:
        rec.update(figures(fits), test_predictions="test_predictions.npz")
        preds = Predictions("breastmnist", "binary-class", LABELS,
                            {f"seed{i}": f for i, f in enumerate(fits)},
                            tuple(f"seed{i}" for i in range(len(fits))))  # fmt: skip
        save_test_predictions(records / f"{run_id}.npz", preds)
    rec.update(values or {})
    records.mkdir(parents=True, exist_ok=True)
    (records / f"{run_id}.json").write_text(json.dumps(rec))
    return rec


GOOD = [probabilities(0.5, seed=1), probabilities(0.5, seed=2)]
WORSE = [
    probabilities(0.5, flips=20, seed=1),
    probabilities(0.5, flips=20, seed=2),
]  # GOOD, 20 errors more


@pytest.fixture
def board(tmp_path) -> Path:
    """Our best run (two runs of one key), a copy of both runs' predictions as a train row, a
    worse peer, and a first-generation record of the run's key."""
    records = tmp_path / "lb" / "records"
    second = [probabilities(0.5, seed=5), GOOD[1]]
    write_record(records, "best.a.01", fits=GOOD)
    write_record(records, "best.b.02", fits=second)
    plain = {"augment": "none"}
    write_record(records, "copy.03", kind="train", budget=0, fits=GOOD, values=plain)
    write_record(records, "copy.06", kind="train", budget=0, fits=second, values=plain)
    write_record(records, "worse.04", kind="peer", fits=WORSE, method="Worse (28)")
    write_record(records, "old.05", values={"test_auc_mean": 0.5, "test_acc_mean": 0.6})
    lb.rebuild(tmp_path / "lb")
    return tmp_path / "lb"


def _rows(text: str) -> dict[tuple[str, str], list[str]]:
    """(method, source) -> its cells, over every block of a Markdown file (first wins)."""
    out = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and cells[0] not in ("Method", ":---"):
            out.setdefault((cells[0], cells[1]), cells[2:])
    return out


def breast(rows, method: str, source: str) -> tuple[str, str]:
    """The BreastMNIST AUC and ACC cells of a row of medmnist2d_28.md (the second block)."""
    cells = rows[(method, source)]
    return cells[0], cells[1]


def test_two_records_of_a_key_are_one_row_with_mean_std_n_and_interval(board):
    recs = [json.loads((board / "records" / f"{r}.json").read_text())
            for r in ("best.a.01", "best.b.02")]  # fmt: skip
    text = (board / "medmnist2d_28.md").read_text()
    rows = _rows(text.split("BreastMNIST AUC")[1])
    cells = breast(rows, "Small CNN (28)", "bench run, 10m")
    dists = [record_distributions(board / "records" / f"{r['run_id']}.npz", r) for r in recs]
    for metric, cell in zip(("auc", "acc"), cells, strict=True):
        values = [r[f"test_{metric}_mean"] for r in recs]
        assert values[0] != values[1]
        lo, hi = interval(np.mean([d[("test", metric)] for d in dists], axis=0))
        expected = f"{statistics.fmean(values):.3f} ± {statistics.stdev(values):.3f}"
        assert cell == f"**{expected} [{lo:.3f}, {hi:.3f}], n=2**"  # the best: bold, no mark
    # no row of that key shows one run: one row per source, and that one holds both
    assert [k for k in rows if k[1] == "bench run, 10m"] == [("Small CNN (28)", "bench run, 10m")]


def test_first_generation_records_get_their_own_row(board):
    rows = _rows((board / "medmnist2d_28.md").read_text().split("BreastMNIST AUC")[1])
    old_auc, old_acc = breast(rows, "Small CNN (28)", "bench run, 10m (gen 1)")
    assert (old_auc, old_acc) == ("0.500", "0.600")  # one run, no interval, far: no mark
    new_auc, _ = breast(rows, "Small CNN (28)", "bench run, 10m")
    assert "[" in new_auc and "0.500" not in new_auc


def test_ties_copy_marked_worse_not(board):
    rows = _rows((board / "medmnist2d_28.md").read_text().split("BreastMNIST AUC")[1])
    copy_auc, copy_acc = breast(rows, "Small CNN (28)", "bench train")
    assert copy_auc.endswith(", n=2** ≈")
    worse_auc, worse_acc = breast(rows, "Worse (28)", "bench peer, 10m")
    # the copy has R*'s predictions: bold (same value) and not distinguishable from it
    assert copy_auc.endswith(" ≈") and copy_acc.endswith(" ≈")
    assert copy_auc.startswith("**")
    assert not worse_auc.endswith("≈") and not worse_acc.endswith("≈")
    rec = json.loads((board / "records" / "worse.04.json").read_text())
    best = json.loads((board / "records" / "best.a.01.json").read_text())
    assert best["test_acc_mean"] - rec["test_acc_mean"] == pytest.approx(20 / N)
    assert best["test_auc_mean"] - rec["test_auc_mean"] >= 0.05


def test_published_inside_the_reference_interval_marked_far_one_not(board, tmp_path):
    records = board / "records"
    recs = [json.loads((records / f"{r}.json").read_text()) for r in ("best.a.01", "best.b.02")]
    evidence, warnings = load_evidence(records, recs, {})
    assert not warnings and set(evidence) == {"best.a.01", "best.b.02"}
    star = wide_table("t", ("breastmnist",), [], recs, dists=evidence).rows[0]
    cell = star.cells[("breastmnist", "auc")]
    assert cell.lo < cell.mean < cell.hi and cell.n == 2

    def ref(method: str, auc: float) -> dict:
        return {"method": method, "dataset": "breastmnist", "test_auc_mean": auc,
                "test_acc_mean": 0.5}  # fmt: skip

    below, above = round(cell.lo + 0.002, 3), round(cell.hi - 0.002, 3)
    reference = [ref("Near", below), ref("Far", 0.5), ref("Higher", above)]
    table = wide_table("t", ("breastmnist",), reference, recs, dists=evidence)
    assert [r.source for r in table.rows] == [PUBLISHED] * 3 + ["bench run, 10m"]
    texts = column_texts([r.cells.get(("breastmnist", "auc")) for r in table.rows])
    near, far, higher, ours = texts
    assert near.endswith(" ≈") and not far.endswith("≈")
    assert above > round(cell.mean, 3)  # the bold best: a published row inside R*'s interval
    assert higher == f"**{above:.3f}** ≈" and ours.endswith(" ≈") and "**" not in ours
    # without a published row inside it, R* (bold itself) carries no mark
    alone = column_texts([Cell(0.5), table.rows[-1].cells[("breastmnist", "auc")]])
    assert alone[0] == "0.500" and alone[1].startswith("**") and not alone[1].endswith("≈")


def test_blocks_list_no_empty_row_and_link_pages(board):
    text = (board / "medmnist2d_28.md").read_text()
    for block in text.split("| Method |")[1:]:
        body = [line for line in block.splitlines()[2:] if line.startswith("| ")]
        for line in body:
            cells = [c.strip() for c in line.strip().strip("|").split("|")][2:]
            assert any(c != "-" for c in cells), line
    assert ("Small CNN (28)", "bench run, 10m") not in _rows(text.split("BreastMNIST AUC")[0])
    assert "[BreastMNIST](datasets/breastmnist.md)" in text
    with open(board / "medmnist2d_28.csv") as f:
        header = f.readline().strip().split(",")
    assert {"breastmnist_auc_lo", "breastmnist_auc_hi", "breastmnist_auc_n"} <= set(header)


def test_dataset_page_lists_every_row(board):
    page = (board / "datasets" / "breastmnist.md").read_text()
    rows = _rows(page)
    assert ("ResNet-18 (28)", PUBLISHED) in rows
    run = rows[("Small CNN (28)", "bench run, 10m")]
    assert run[:2] == ["10m", "2"] and run[4:] == ["0.800", "0.050"]
    assert rows[("Worse (28)", "bench peer, 10m")][1] == "1"
    assert rows[("Small CNN (28)", "bench run, 10m (gen 1)")][2] == "0.500"
    others = _rows((board / "datasets" / "pathmnist.md").read_text())
    assert others and {source for _, source in others} == {PUBLISHED}


def test_missing_or_corrupt_predictions_warn_and_leave_no_interval(board, capsys):
    (board / "records" / "best.a.01.npz").write_bytes(b"PK\x03\x04 not a zip")
    (board / "records" / "copy.03.npz").unlink()
    lb.rebuild(board)
    err = capsys.readouterr().err
    assert "best.a.01.npz" in err and "copy.03.npz" in err and err.count("warning:") == 2
    rows = _rows((board / "medmnist2d_28.md").read_text().split("BreastMNIST AUC")[1])
    auc, _ = breast(rows, "Small CNN (28)", "bench run, 10m")
    assert "[" not in auc and auc.strip("*").endswith(", n=2")
    assert "[" in breast(rows, "Worse (28)", "bench peer, 10m")[0]
