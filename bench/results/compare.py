"""``bench compare A B``: is record A better than record B on the same test set? The paired
difference A - B in test AUC and ACC of the single fits (the mean over each record's chosen
fits), the seed ensemble and the selected ensemble, with its 95 % interval and two-sided
p-value from one paired bootstrap over both records' saved test predictions
(:mod:`bench.results.intervals`). Reads only; writes nothing.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import BenchError
from bench.results.gather import find_records, predictions_path
from bench.results.intervals import (
    BOOT_SEED,
    LEVEL,
    METRICS,
    N_BOOT,
    Difference,
    Group,
    difference,
    distributions,
    interval,
)
from bench.results.predictions import TestPredictions, load_test_predictions
from bench.results.records import read_record
from bench.results.tables import row_source
from bench.results.uncertainty import ENSEMBLE, FIGURES, SEED_ENSEMBLE, SINGLE, figure_groups

FIGURE_LABELS = {
    SINGLE: "single fits",
    SEED_ENSEMBLE: "seed ensemble",
    ENSEMBLE: "selected ensemble",
}
SIDES = ("A", "B")
NOT_DISTINGUISHABLE = f"not distinguishable at {LEVEL:.0%}".replace("%", " %")


@dataclass(frozen=True)
class Side:
    """One record to compare: where it is, its fields and its saved test predictions."""

    path: Path
    record: dict
    preds: TestPredictions

    def describe(self) -> str:
        """``<run_id>  <method>  (bench run, 3m)  3 fits``."""
        rec, n = self.record, len(self.preds.chosen)
        return (f"{rec['run_id']}  {rec.get('method', '?')}  ({row_source(rec)})  "
                f"{n} fit{'s' * (n != 1)}")  # fmt: skip


def load_side(source: str | Path) -> Side:
    """The one record behind ``source`` (a run folder or a record ``.json``) with its test
    predictions; BenchError when there are several, or it kept none, or they are unreadable."""
    paths = find_records(source)
    if len(paths) > 1:
        raise BenchError(f"{source}: holds {len(paths)} records; pass one run folder "
                         "(runs/<run_id>) or one record .json")  # fmt: skip
    path = paths[0]
    rec = read_record(path)
    found = predictions_path(path, rec)
    if found is None and rec.get("test_predictions"):
        raise BenchError(f"{path}: its test predictions ({rec['test_predictions']}) are "
                         "missing; copy them back beside the record or re-run it")  # fmt: skip
    if found is None:
        raise BenchError(f"{path}: record {rec['run_id']} was made before test predictions "
                         "were kept, so it cannot be compared; re-run it")  # fmt: skip
    preds = load_test_predictions(found)
    _check_arrays(preds, found)
    return Side(path, rec, preds)


def _check_arrays(preds: TestPredictions, path: Path) -> None:
    """Every set of probabilities has one row per test item; the chosen fits are there."""
    if not preds.chosen or any(name not in preds.fits for name in preds.chosen):
        raise BenchError(f"{path}: its chosen fits {list(preds.chosen)} are not among the "
                         f"saved fits {list(preds.fits)}; re-run the record")  # fmt: skip
    sets = [*preds.fits.values(), preds.seed_ensemble, preds.ensemble]
    if any(s is not None and len(s) != preds.n for s in sets):
        raise BenchError(f"{path}: some probabilities do not have one row per test item "
                         f"({preds.n}); the file is damaged, re-run the record")  # fmt: skip


def check_same_test(a: Side, b: Side) -> None:
    """BenchError unless A and B were scored on the same test set: dataset, task, item
    count and every label."""
    pa, pb = a.preds, b.preds
    if (pa.dataset, pa.task) != (pb.dataset, pb.task):
        raise BenchError(f"{a.path} is on {pa.dataset} and {b.path} on {pb.dataset}; "
                         "compare two records of the same dataset")  # fmt: skip
    if pa.n != pb.n:
        raise BenchError(f"{pa.dataset}: {a.path} has {pa.n} test items and {b.path} "
                         f"{pb.n}; compare records scored on the same test set")  # fmt: skip
    la, lb = np.asarray(pa.labels).reshape(pa.n, -1), np.asarray(pb.labels).reshape(pb.n, -1)
    if la.shape != lb.shape or not np.array_equal(la, lb):
        differ = int(np.sum(np.any(la != lb, axis=1))) if la.shape == lb.shape else pa.n
        raise BenchError(f"{pa.dataset}: the test labels of {a.path} and {b.path} differ on "
                         f"{differ} of {pa.n} items; compare records scored on the same "
                         "test set")  # fmt: skip


def point(labels: np.ndarray, scores: tuple[np.ndarray, ...], task: str, metric: str) -> float:
    """medmnist's AUC or ACC of a group: the mean over its sets (one for an ensemble)."""
    from bench import scoring

    score = scoring.auc if metric == "auc" else scoring.acc
    return float(np.mean([score(labels, np.asarray(s, dtype=np.float64), task) for s in scores]))


@dataclass(frozen=True)
class Row:
    """One figure and metric: A and B (value and interval) and their paired difference."""

    figure: str
    metric: str
    a: tuple[float, float, float]  # value, lo, hi
    b: tuple[float, float, float]
    diff: Difference

    @property
    def verdict(self) -> str:
        if self.diff.lo > 0:
            return "A better"
        return "B better" if self.diff.hi < 0 else NOT_DISTINGUISHABLE


@dataclass(frozen=True)
class Comparison:
    """Everything ``bench compare`` prints."""

    a: Side
    b: Side
    rows: list[Row]
    only: dict[str, str]  # figure -> the side that alone has it
    n_boot: int
    seed: int


def compare(a: Side, b: Side, *, n_boot: int = N_BOOT, seed: int = BOOT_SEED) -> Comparison:
    """The paired comparison of two records on the same test set (:func:`check_same_test`
    first): one :func:`distributions` call holds both records' figures."""
    check_same_test(a, b)
    groups = {side: {g.name: g for g in figure_groups(s.preds)}
              for side, s in zip(SIDES, (a, b), strict=True)}  # fmt: skip
    shared = [f for f in FIGURES if f in groups["A"] and f in groups["B"]]
    only = {f: side for f in FIGURES for side in SIDES
            if f in groups[side] and f not in shared}  # fmt: skip
    labels, task = a.preds.labels, a.preds.task
    named = [Group(f"{side}.{f}", groups[side][f].scores) for f in shared for side in SIDES]
    dist = distributions(labels, named, task, n_boot=n_boot, seed=seed)
    rows = []
    for f in shared:
        for metric in METRICS:
            da, db = dist[(f"A.{f}", metric)], dist[(f"B.{f}", metric)]
            va = point(labels, groups["A"][f].scores, task, metric)
            vb = point(labels, groups["B"][f].scores, task, metric)
            rows.append(Row(f, metric, (va, *interval(da)), (vb, *interval(db)),
                            difference(va - vb, da, db)))  # fmt: skip
    return Comparison(a, b, rows, only, n_boot, seed)


def _aligned(lines: list[list[str]]) -> list[str]:
    """Columns padded to their widest cell, two spaces apart."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    pad = [[c.ljust(w) for c, w in zip(line, widths, strict=True)] for line in lines]
    return ["  ".join(cells).rstrip() for cells in pad]


def _value(v: tuple[float, float, float]) -> str:
    return f"{v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}]"


def render(c: Comparison) -> str:
    """The header (both records, the test set) and the table, as text."""
    p = c.a.preds
    head = [f"A: {c.a.describe()}", f"B: {c.b.describe()}",
            f"test set: {p.dataset}, {p.n} items ({p.task}); paired bootstrap, {c.n_boot} "
            f"resamples (seed {c.seed}), {LEVEL:.0%} intervals".replace("%", " %"), ""]  # fmt: skip
    lines = [["figure", "metric", "A", "B", "A - B", "p", "verdict"]]
    for r in c.rows:
        d = r.diff
        lines.append([FIGURE_LABELS[r.figure], r.metric.upper(), _value(r.a), _value(r.b),
                      f"{d.value:+.3f} [{d.lo:+.3f}, {d.hi:+.3f}]",
                      "<0.001" if d.p < 0.001 else f"{d.p:.3f}", r.verdict])  # fmt: skip
    notes = [f"{FIGURE_LABELS[f]}: only {side} has one; not compared"
             for f, side in c.only.items()]  # fmt: skip
    return "\n".join([*head, *_aligned(lines), *notes]) + "\n"


def _num(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _row_json(r: Row) -> dict:
    a, b, d = r.a, r.b, r.diff
    return {"figure": r.figure, "metric": r.metric,
            "a": _num(a[0]), "a_lo": _num(a[1]), "a_hi": _num(a[2]),
            "b": _num(b[0]), "b_lo": _num(b[1]), "b_hi": _num(b[2]),
            "diff": _num(d.value), "diff_lo": _num(d.lo), "diff_hi": _num(d.hi),
            "p": _num(d.p), "verdict": r.verdict}  # fmt: skip


def _side_json(s: Side) -> dict:
    rec = s.record
    return {"run_id": rec["run_id"], "method": rec.get("method"), "source": row_source(rec),
            "path": str(s.path), "n_fits": len(s.preds.chosen)}  # fmt: skip


def as_json(c: Comparison) -> dict:
    """The same as :func:`render`, as a JSON-ready dict (NaN as null)."""
    p = c.a.preds
    return {"a": _side_json(c.a), "b": _side_json(c.b), "dataset": p.dataset, "task": p.task,
            "n_test": p.n, "n_boot": c.n_boot, "seed": c.seed, "level": LEVEL,
            "rows": [_row_json(r) for r in c.rows], "only": c.only}  # fmt: skip


def cmd_compare(args) -> int:
    """``bench compare A B [--format table|json|csv]``: csv has one line per row of the
    table (the ``rows`` of the JSON)."""
    from bench.terminal import print_rows

    a, b = load_side(args.a), load_side(args.b)
    result = compare(a, b)
    if args.format == "csv":
        print_rows([_row_json(r) for r in result.rows], "csv")
    elif args.format == "json":
        print(json.dumps(as_json(result), indent=2))
    else:
        print(render(result).rstrip("\n"))
    return 0
