"""``bench leaderboard``: hand-written records in tests/golden/records -> exact CSV and
Markdown (tests/golden/leaderboard); published numbers equal the reference CSVs; malformed
records are named and skipped; two processes at once leave valid, complete files.

Regenerate the golden files after an intended change with
``BENCH_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_leaderboard.py`` and review the diff.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import reference
from bench.cli import main
from bench.results import leaderboard as lb
from bench.results.gather import gather
from bench.results.records import COLUMNS
from bench.results.tables import DATASETS_2D, DATASETS_3D, title, wide_table

GOLDEN = Path(__file__).parents[1] / "golden"
RECORDS = sorted((GOLDEN / "records").glob("*.json"))
EXPECTED = GOLDEN / "leaderboard"
UPDATE = os.environ.get("BENCH_UPDATE_GOLDEN") == "1"
REPO = Path(__file__).resolve().parents[2]
SHARED_REFERENCE = REPO.parent / "shared" / "reference"
REFERENCE = Path(reference.__file__).parent  # the package data


def run_board(out: Path, *runs, capsys=None) -> tuple[int, str]:
    argv = ["leaderboard", "--out", str(out)]
    if runs:
        argv += ["--runs", *map(str, runs)]
    code = main(argv)
    err = capsys.readouterr().err if capsys is not None else ""
    return code, err


def generated(out: Path) -> dict[str, str]:
    """Every file under ``out`` by its relative path (the per-dataset pages in datasets/
    too), the gathered records/ left out."""
    return {
        p.relative_to(out).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(out.rglob("*"))
        if p.is_file() and not p.name.startswith(".") and p.relative_to(out).parts[0] != "records"
    }


PAGES = {f"datasets/{ds}.md" for ds in (*DATASETS_2D, *DATASETS_3D, "medical_mnist")}


@pytest.fixture
def board(tmp_path, capsys) -> Path:
    out = tmp_path / "leaderboards"
    code, err = run_board(out, *RECORDS, capsys=capsys)
    assert code == 0, err
    assert err == ""
    return out


def test_golden_files(board):
    files = generated(board)
    assert set(files) == {
        "README.md", "results.csv", "medmnist2d_28.md", "medmnist2d_28.csv",
        "medmnist2d_224.md", "medmnist2d_224.csv", "medmnist3d.md", "medmnist3d.csv",
        "medmnist3d_64.md", "medmnist3d_64.csv",
        "medical_mnist.md", "medical_mnist.csv", "reproductions.md",
    } | PAGES  # fmt: skip
    if UPDATE:
        shutil.rmtree(EXPECTED, ignore_errors=True)
        for name, text in files.items():
            (EXPECTED / name).parent.mkdir(parents=True, exist_ok=True)
            (EXPECTED / name).write_text(text, encoding="utf-8")
    expected = generated(EXPECTED)
    assert set(expected) == set(files)
    for name, text in files.items():
        assert text == expected[name], f"{name} differs from tests/golden/leaderboard/{name}"


def test_records_copied_write_once(board):
    copied = sorted(p.name for p in (board / "records").glob("*.json"))
    assert copied == sorted(p.name for p in RECORDS)
    for src in RECORDS:
        assert json.loads((board / "records" / src.name).read_text()) == json.loads(src.read_text())


def _md_tables(text: str) -> list[list[list[str]]]:
    """Every Markdown table as rows of cells (header first, the alignment row dropped)."""
    tables, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= set(":-") for c in cells):
                current.append(cells)
        elif current:
            tables.append(current)
            current = []
    return tables


def _md_cells(text: str) -> dict[tuple[str, str, str], str]:
    """(method, source, column header) -> cell text without bold, over every block."""
    out = {}
    for table in _md_tables(text):
        header, *rows = table
        for row in rows:
            assert len(row) == len(header)
            for col, cell in zip(header[2:], row[2:], strict=True):
                out[(row[0], row[1], col)] = cell.replace("**", "")
    return out


def _reference_2d() -> dict[tuple[str, str, str], float]:
    """(label, dataset, metric) -> value, read straight from the reference CSV."""
    out = {}
    with open(REFERENCE / "medmnist_v2_2d.csv") as f:
        for line in csv.DictReader(f):
            for prefix, (label, _, _) in reference.METHODS_2D.items():
                for metric in ("auc", "acc"):
                    out[(label, line["dataset"], metric)] = float(line[f"{prefix}_{metric}"])
    return out


def _reference_3d() -> dict[tuple[str, str, str], float]:
    out = {}
    with open(REFERENCE / "medmnist_v2_3d.csv") as f:
        for line in csv.DictReader(f):
            for ds in DATASETS_3D:
                for metric in ("auc", "acc"):
                    label = reference.METHODS_3D[line["method"]]
                    out[(label, ds, metric)] = float(line[f"{ds}_{metric}"])
    return out


def test_reference_copy_equals_shared():
    if not SHARED_REFERENCE.is_dir():
        pytest.skip("../shared/reference is not present")
    for name in reference.FILES:
        ours = (REFERENCE / name).read_text()
        assert ours == (SHARED_REFERENCE / name).read_text()


def test_published_numbers_equal_reference(board):
    ref2d, ref3d = _reference_2d(), _reference_3d()
    assert len(ref2d) == 7 * 12 * 2 and len(ref3d) == 8 * 6 * 2
    md28 = _md_cells((board / "medmnist2d_28.md").read_text())
    md224 = _md_cells((board / "medmnist2d_224.md").read_text())
    md3d = _md_cells((board / "medmnist3d.md").read_text())
    for (label, ds, metric), value in ref2d.items():
        col = f"{title(ds)} {metric.upper()}"
        assert float(md28[(label, "MedMNIST v2", col)]) == value
        if "(224)" in label:
            assert float(md224[(label, "MedMNIST v2", col)]) == value
        else:
            assert (label, "MedMNIST v2", col) not in md224
    for (label, ds, metric), value in ref3d.items():
        assert float(md3d[(label, "MedMNIST v2", f"{title(ds)} {metric.upper()}")]) == value
    # the wide CSV and the long CSV hold the same numbers
    with open(board / "medmnist2d_28.csv") as f:
        wide = {r["method"]: r for r in csv.DictReader(f) if r["source"] == "MedMNIST v2"}
    assert len(wide) == 7
    for (label, ds, metric), value in ref2d.items():
        assert float(wide[label][f"{ds}_{metric}"]) == value
    with open(board / "results.csv") as f:
        long = [r for r in csv.DictReader(f) if r["source"] == "reference"]
    assert len(long) == 7 * 12 + 8 * 6
    both = {**ref2d, **ref3d}
    for r in long:
        assert float(r["test_auc_mean"]) == both[(r["method"], r["dataset"], "auc")]
        assert float(r["test_acc_mean"]) == both[(r["method"], r["dataset"], "acc")]
        assert r["run_id"] == "" and r["citation"].startswith("Yang et al.")
        if "(224)" in r["method"]:
            assert (r["data_size"], r["img_size"]) == ("28", "224")


def test_rows_ours_aggregate_failed_and_dash(board):
    md28 = _md_cells((board / "medmnist2d_28.md").read_text())
    # a row is method x source x budget: the 2m run and the 10m runs are two rows; the two
    # 10m runs (b0a1, a1b2: records without test predictions, so gen 1) are one row, their
    # mean ± the sample std over the two runs, n=2; gen 1 has no interval and no ensemble
    # rows (neither record has a seed ensemble)
    runs = [json.loads(p.read_text()) for p in RECORDS if p.stem.endswith(("b0a1", "a1b2"))]
    for metric in ("auc", "acc"):
        values = [r[f"test_{metric}_mean"] for r in runs]
        mean, std = sum(values) / 2, abs(values[0] - values[1]) / 2**0.5
        key = ("Small CNN (28)", "bench run, 10m (gen 1)", f"BreastMNIST {metric.upper()}")
        assert md28[key] == f"{mean:.3f} ± {std:.3f}, n=2"
    assert md28[("Small CNN (28)", "bench run, 10m (gen 1)", "BreastMNIST AUC")] == (
        "0.882 ± 0.017, n=2"
    )
    assert not any("ensemble" in key[0] for key in md28)
    assert md28[("Small CNN (28)", "bench run, 2m (gen 1)", "BreastMNIST AUC")] == "0.843"
    assert md28[("Small CNN (28)", "bench run, 2m (gen 1)", "BreastMNIST ACC")] == "0.803"
    assert not any(key[1].startswith("bench run (") or key[1] == "bench run" for key in md28)
    # the failed PneumoniaMNIST run is not in the table: the 10m row has no value in the first
    # block, so that block does not list it; the single-run train record has no ±
    assert ("Small CNN (28)", "bench run, 10m (gen 1)", "PneumoniaMNIST AUC") not in md28
    assert not any(key[1].startswith("bench run, 5m") for key in md28)
    assert md28[("ResNet-18 (28)", "bench train (gen 1)", "PneumoniaMNIST AUC")] == "0.951"
    assert md28[("ResNet-18 (28)", "bench train (gen 1)", "PathMNIST ACC")] == "-"
    # best per column in bold
    text = (board / "medmnist2d_28.md").read_text()
    assert "| 0.901 | **0.863** |" in text and "0.882 ± 0.017, n=2 | 0.846 ± 0.024, n=2 |" in text
    md224 = _md_cells((board / "medmnist2d_224.md").read_text())
    key = ("ResNet-18 (224) [28 px data]", "bench train (gen 1)", "BreastMNIST AUC")
    assert md224[key] == "0.889"
    with open(board / "results.csv") as f:
        ours = {r["run_id"]: r for r in csv.DictReader(f) if r["source"] == "bench"}
    assert len(ours) == len(RECORDS)
    failed = ours["pneumoniamnist.28.run.20261120T140000Z.dead"]
    assert failed["info"].startswith("status=failed; ") and failed["test_auc_mean"] == ""
    params = ours["breastmnist.28.run.20261120T101500Z.a1b2"]["params"]
    assert params == json.dumps(json.loads(params), sort_keys=True, separators=(",", ":"))
    medical = (board / "medical_mnist.md").read_text()
    assert "| Small CNN (64) | bench run, 15m (gen 1) | 0.998 | **1.000** | 19.3 |" in medical
    # the run's seed ensemble and selected ensemble are rows of their own (one figure each)
    # the fewest errors in bold, at the decimal shown (10.0 is not 7.0, though both ACCs
    # round to 0.999)
    seeds = "| Small CNN (64), seed ensemble | bench run, 15m (gen 1) | **0.999** | 0.999 | 10.0 |"
    selected = (
        "| Small CNN (64), selected ensemble | bench run, 15m (gen 1) | **0.999** | **1.000** "
        "| **7.0** |"
    )
    assert seeds in medical and selected in medical
    readme = (board / "README.md").read_text()
    for rec in ("breastmnist.28.run.20261120T101500Z.a1b2", "medical_mnist.64.run."):
        assert f"(records/{rec}" in readme
    assert "10m00s | 7m27s / 2m21s / 9m58s | 23 (9/14/0)" in readme


def test_malformed_record_named_and_skipped(board, tmp_path, capsys):
    out = tmp_path / "with_bad"
    shutil.copytree(board / "records", out / "records")
    (out / "records" / "broken.run.json").write_text('{"run_id": "broken.run", "dat')
    missing = json.loads(RECORDS[0].read_text())
    del missing["test_auc_mean"]
    missing["run_id"] = "no_auc.28.run.20261121T000000Z.0000"
    (out / "records" / f"{missing['run_id']}.json").write_text(json.dumps(missing))
    code, err = run_board(out, capsys=capsys)
    assert code == 0
    lines = err.strip().splitlines()
    assert len(lines) == 2
    assert "broken.run.json" in lines[0] and lines[0].startswith("warning: ")
    assert "no_auc.28.run" in lines[1] and "test_auc_mean" in lines[1]
    assert generated(out) == generated(board)


def test_conflicting_record_is_one_error_line(board, tmp_path, capsys):
    changed = json.loads(RECORDS[0].read_text())
    changed["test_auc_mean"] = 0.5
    path = tmp_path / "changed.json"
    path.write_text(json.dumps(changed))
    before = generated(board / "records")
    code, err = run_board(board, path, capsys=capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and "write-once" in err
    assert generated(board / "records") == before
    # the identical record again is fine and changes nothing
    code, err = run_board(board, RECORDS[0], capsys=capsys)
    assert code == 0 and generated(board / "records") == before


def test_bad_runs_argument(tmp_path, capsys):
    code, err = run_board(tmp_path / "lb", tmp_path / "nope", capsys=capsys)
    assert code == 2 and err.count("\n") == 1 and "nope" in err
    (tmp_path / "empty").mkdir()
    code, err = run_board(tmp_path / "lb", tmp_path / "empty", capsys=capsys)
    assert code == 2 and "record.json" in err
    assert not (tmp_path / "lb").exists()


def test_run_folder_and_folder_of_runs(tmp_path, capsys):
    runs = tmp_path / "runs"
    for src in RECORDS[:2]:
        (runs / src.stem).mkdir(parents=True)
        shutil.copy(src, runs / src.stem / "record.json")
    code, _ = run_board(tmp_path / "a", runs / RECORDS[0].stem, capsys=capsys)
    assert code == 0 and [p.stem for p in (tmp_path / "a" / "records").iterdir()] == [
        RECORDS[0].stem
    ]
    code, _ = run_board(tmp_path / "b", runs, capsys=capsys)
    assert code == 0
    assert sorted(p.stem for p in (tmp_path / "b" / "records").iterdir()) == [
        r.stem for r in RECORDS[:2]
    ]


def _check_complete(out: Path, run_ids: list[str]) -> None:
    """Every output parses, tables are rectangular, and every record is in them."""
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 7 * 12 + 8 * 6 + len(run_ids)
    assert all(None not in r and len(r) == len(COLUMNS) for r in rows)
    assert {r["run_id"] for r in rows} - {""} == set(run_ids)
    for name in ("medmnist2d_28", "medmnist2d_224", "medmnist3d", "medmnist3d_64", "medical_mnist"):
        with open(out / f"{name}.csv", newline="") as f:
            wide = list(csv.reader(f))
        assert wide and all(len(r) == len(wide[0]) for r in wide)
        text = (out / f"{name}.md").read_text()
        for table in _md_tables(text):
            assert all(len(r) == len(table[0]) for r in table)
    readme = (out / "README.md").read_text()
    assert f"Records in `records/`: {len(run_ids)};" in readme
    for rid in run_ids:
        json.loads((out / "records" / f"{rid}.json").read_text())
    assert not [p for p in out.rglob(".*.tmp")]


def test_two_processes_at_once(tmp_path):
    out = tmp_path / "lb"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "bench", "leaderboard", "--out", str(out), "--runs"]
    procs = [
        subprocess.Popen(
            cmd + [str(p) for p in group],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for group in (RECORDS[:3], RECORDS[2:])
    ]
    results = [p.communicate(timeout=120) for p in procs]
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
    _check_complete(out, [p.stem for p in RECORDS])
    # and the same content as one process building everything
    single = tmp_path / "single"
    assert main(["leaderboard", "--out", str(single), "--runs", *map(str, RECORDS)]) == 0
    assert generated(out) == generated(single)


def test_rebuild_again_when_a_record_lands_meanwhile(tmp_path, monkeypatch):
    """Another process adding a record while tables are written triggers one more round,
    so the last files written cover it."""
    out = tmp_path / "lb"
    assert main(["leaderboard", "--out", str(out), "--runs", str(RECORDS[0])]) == 0
    real_render, calls = lb.render, []

    def render_while_another_process_writes(records, reference, **kwargs):
        calls.append(len(records))
        if len(calls) == 1:
            gather([RECORDS[1]], out / "records")
        return real_render(records, reference, **kwargs)

    monkeypatch.setattr(lb, "render", render_while_another_process_writes)
    lb.rebuild(out)
    assert calls == [1, 2]
    _check_complete(out, [RECORDS[0].stem, RECORDS[1].stem])


def test_3d_rows_by_volume_size(board):
    md28 = _md_cells((board / "medmnist3d.md").read_text())
    md64 = _md_cells((board / "medmnist3d_64.md").read_text())
    key = ("Small 3D CNN (28)", "bench run, 20m (gen 1)", "AdrenalMNIST3D AUC")
    assert md28[key] == "0.831"
    key = ("Small 3D CNN (64)", "bench run, 30m (gen 1)", "AdrenalMNIST3D AUC")
    assert md64[key] == "0.841"
    assert not any(k[0] == "Small 3D CNN (64)" for k in md28)
    assert not any(k[0] == "Small 3D CNN (28)" for k in md64)
    published = ("ResNet-18 + 3D", "MedMNIST v2", "AdrenalMNIST3D AUC")
    assert md28[published] == md64[published] == "0.827"  # repeated for reference
    assert "# MedMNIST v2, 3D, model input 64x64x64" in (board / "medmnist3d_64.md").read_text()


def test_reproductions_fill_from_matching_records_or_say_why_not():
    from bench.results.reproductions import lines, markdown

    base = {"status": "ok", "kind": "train", "dataset": "medical_mnist", "family": "small_cnn",
            "data_size": 28, "img_size": 28, "epochs": 10, "cv": 5, "params": {"depth": 2},
            "test_acc_mean": 0.9991, "test_acc_std": 0.0002, "n_seeds": 5, "val_score": 0.9993,
            "run_id": "medical_mnist.28.train.x.0001"}  # fmt: skip
    other = {**base, "params": {"depth": 3}, "run_id": "medical_mnist.28.train.x.0002"}
    text = markdown([base, other])
    rows = [r for r in text.splitlines() if r.startswith("| ") and "---" not in r][1:]
    assert len(rows) == len(lines())
    (cv_row,) = [r for r in rows if "its 5-fold CV" in r]
    assert "99.93 % CV mean ACC (test 99.91 ± 0.02 %)" in cv_row
    assert "(records/medical_mnist.28.train.x.0001.json)" in cv_row
    (retina,) = [r for r in rows if "no augmentation (RetinaMNIST)" in r]
    assert "| AUC 0.714 |" in retina and "- (RetinaMNIST is not on this machine" in retina
    assert sum("needs a GPU" in r for r in rows) == 1


def test_two_peers_under_one_budget_keep_their_own_rows():
    def peer(method, auc, utc):
        return {"kind": "peer", "method": method, "dataset": "breastmnist", "data_size": 28,
                "img_size": 28, "budget_s": 600, "constraint": "10m", "n_seeds": 1,
                "test_auc_mean": auc, "test_acc_mean": 0.7, "utc": utc,
                "run_id": method}  # fmt: skip

    table = wide_table("t", ("breastmnist",), [], [peer("Constant", 0.5, "1"),
                                                      peer("AutoGluon", 0.7, "2")])  # fmt: skip
    cells = {row.label: row.cells[("breastmnist", "auc")].mean for row in table.rows}
    assert cells == {"Constant": 0.5, "AutoGluon": 0.7}


def test_an_ablations_policies_keep_their_own_rows_and_a_runs_pick_does_not():
    def rec(kind, augment, auc, utc):
        return {"kind": kind, "method": "ResNet-18 (28)", "dataset": "breastmnist",
                "data_size": 28, "img_size": 28, "augment": augment, "n_seeds": 1,
                "test_auc_mean": auc, "test_acc_mean": 0.8, "utc": utc,
                "run_id": f"{kind}.{augment}"}  # fmt: skip

    trains = [rec("train", "none", 0.89, "1"), rec("train", "simple", 0.90, "2"),
              rec("train", "dcgan", 0.86, "3")]  # fmt: skip
    runs = [rec("run", "simple", 0.91, "4"), rec("run", "dcgan", 0.92, "5")]
    table = wide_table("t", ("breastmnist",), [], trains + runs)
    cells = {(row.source, row.label): round(row.cells[("breastmnist", "auc")].mean, 6)
             for row in table.rows}  # fmt: skip
    assert cells == {
        ("bench train (gen 1)", "ResNet-18 (28)"): 0.89,
        ("bench train (gen 1)", "ResNet-18 (28) + simple"): 0.90,
        ("bench train (gen 1)", "ResNet-18 (28) + dcgan"): 0.86,
        ("bench run (gen 1)", "ResNet-18 (28)"): 0.915,  # both runs: their mean
    }
    (run,) = [row for row in table.rows if row.source == "bench run (gen 1)"]
    assert run.cells[("breastmnist", "auc")].n == 2
