"""The wide tables of the leaderboard: which datasets they hold, one :class:`Row` per method
x source x constraint (and per ensemble variant) with its :class:`Cell` values, and the labels
rows carry. Pure: records in, tables out.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.errors import BenchError
from bench.reference import PUBLISHED
from bench.results.intervals import METRICS, interval
from bench.results.records import is_int, is_number
from bench.results.uncertainty import ENSEMBLE as ENSEMBLE_FIGURE
from bench.results.uncertainty import SEED_ENSEMBLE as SEED_FIGURE
from bench.results.uncertainty import SINGLE


def _datasets(ndim: int) -> tuple[str, ...]:
    """The 2D sets in ``medmnist.INFO`` order (the paper's), the 3D ones in the order of the
    paper's 3D table (the reference file's)."""
    from bench.data.info import medmnist_info
    from bench.reference import FILES, read_table

    if ndim == 3:
        return tuple(c[: -len("_auc")] for c in read_table(FILES[1])[0] if c.endswith("_auc"))
    return tuple(f for f in medmnist_info().INFO if not f.endswith("3d"))


DATASETS_2D = _datasets(2)
DATASETS_3D = _datasets(3)
MEDICAL_MNIST = "medical_mnist"
KIND_ORDER = {"run": 0, "train": 1, "peer": 2}
Distributions = Mapping[str, Mapping[tuple[str, str], Any]]  # run_id -> (figure, metric) -> dist


@dataclass
class Cell:
    """One AUC or ACC figure of a row for one dataset: the mean over the row's runs, the sample
    std over them (None for one run), the number of runs ``n``, and, when every run kept its
    test predictions, the element-wise mean of their bootstrap distributions (``dist``) and
    its 95 % interval (``lo``, ``hi``)."""

    mean: float
    std: float | None = None
    n: int = 1
    lo: float | None = None
    hi: float | None = None
    dist: Any = field(default=None, repr=False, compare=False)


@dataclass
class Row:
    """One method in a wide table: cells[(dataset, metric)], the records behind each dataset's
    cells, and which figure of them it shows (``figure``: a record field prefix, see
    :data:`bench.results.uncertainty.FIGURES`; None for a published row)."""

    label: str
    source: str  # MedMNIST v2 | bench run, 10m | bench train | bench peer, 10m (+ " (gen 1)")
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)
    records: dict[str, list[dict]] = field(default_factory=dict)  # dataset -> its records
    figure: str | None = None

    @property
    def ours(self) -> bool:
        return self.figure is not None


@dataclass
class Table:
    """One wide table: its file name, columns, rows, and what its rows' model input is (2D
    images of ``size`` px or ``size``^3 volumes; ``size`` None: any size, Medical MNIST)."""

    name: str
    datasets: tuple[str, ...]
    rows: list[Row]
    size: int | None = None
    ndim: int = 2


def table_name(ndim: int, size: int) -> str:
    """``medmnist2d_28``, ``medmnist2d_224``; ``medmnist3d`` (28^3), ``medmnist3d_64``."""
    from bench.config import size_flag

    return f"medmnist2d_{size}" if ndim == 2 else f"medmnist3d{size_flag(size)}"


def build_tables(ok: list[dict], reference: list[dict],
                 dists: Distributions | None = None) -> list[Table]:  # fmt: skip
    """Every wide table from the ok records (sorted by utc), the published rows and the
    records' bootstrap distributions (run_id -> (figure, metric) -> values): 2D per model
    input size (28 and 224 always), 3D per volume size (28 and 64), Medical MNIST."""
    sizes = sorted({28, 224} | {r["img_size"] for r in ok if r["dataset"] in DATASETS_2D})
    tables = []
    for size in sizes:
        refs = [r for r in reference if r["dataset"] in DATASETS_2D and _in_2d(r, size)]
        ours = [r for r in ok if r["dataset"] in DATASETS_2D and r["img_size"] == size]
        tables.append(wide_table(table_name(2, size), DATASETS_2D, refs, ours, size=size,
                                 dists=dists))  # fmt: skip
    for size in (28, 64):  # 28^3 and 64^3 volumes; the published rows in both
        refs = [r for r in reference if r["dataset"] in DATASETS_3D]
        ours = [r for r in ok if r["dataset"] in DATASETS_3D and r["img_size"] == size]
        tables.append(wide_table(table_name(3, size), DATASETS_3D, refs, ours, size=size,
                                 ndim=3, dists=dists))  # fmt: skip
    medical = [r for r in ok if r["dataset"] == MEDICAL_MNIST]
    tables.append(wide_table(MEDICAL_MNIST, (MEDICAL_MNIST,), [], medical, dists=dists))
    return tables


def _in_2d(ref: dict, size: int) -> bool:
    """The 28 table is the paper's table (all seven rows); other sizes get their own rows."""
    return size == 28 or ref["img_size"] == size


GEN1 = " (gen 1)"  # the source suffix of records without saved test predictions


def is_gen1(rec: dict) -> bool:
    """A record of the first generation: made before records kept their test predictions
    (no ``test_predictions`` field), when a re-run into the same ``--out`` could continue an
    older study; it has no interval."""
    return not rec.get("test_predictions")


def row_source(rec: dict) -> str:
    """How our row was made and under which constraint: ``bench run, 3m`` (search + final
    fits), ``bench train`` (a fixed configuration), ``bench peer, 10m`` (another AutoML
    system under our budget); `, cv 5` is appended for cross-validated ones and
    :data:`GEN1` for first-generation records."""
    kind = rec.get("kind")
    source = f"bench {kind}" if isinstance(kind, str) and kind else "bench"
    source = f"{source}, {rec['constraint']}" if rec.get("constraint") else source
    source = f"{source}, cv {rec['cv']}" if is_int(rec.get("cv")) and rec["cv"] > 1 else source
    return source + GEN1 if is_gen1(rec) else source


def row_label(rec: dict) -> str:
    """Our table label: the record's method, plus the data size when it differs from the
    input size (``ResNet-18 (224) [28 px data]``) and, for a fixed configuration
    (``bench train``), its augmentation policy (``ResNet-18 (28) + dcgan``): an ablation's
    records are rows of their own. A run's policy is its search's pick, not its label."""
    label = rec["method"]
    if rec["data_size"] != rec["img_size"]:
        label += f" [{rec['data_size']} px data]"
    if rec.get("kind") == "train" and rec.get("augment") not in (None, "", "none"):
        label += f" + {rec['augment']}"
    return label


SEED_ENSEMBLE = "seed ensemble"  # the chosen configuration's seed fits, probabilities averaged
SELECTED_ENSEMBLE = "selected ensemble"  # greedy selection on val across configurations
VARIANT_ORDER = {SINGLE: 0, SEED_FIGURE: 1, ENSEMBLE_FIGURE: 2}


def figure_field(figure: str, metric: str) -> str:
    """The record field of a figure's value: ``test_auc_mean`` (the single-fit mean),
    ``seed_ensemble_test_auc``, ``ensemble_test_auc``."""
    return f"{figure}_{metric}_mean" if figure == SINGLE else f"{figure}_{metric}"


def row_variants(rec: dict) -> list[tuple[str, str]]:
    """A record's rows as (label, figure): the single-fit mean (the figure comparable to the
    MedMNIST v2 rows), then its seed ensemble and, for runs, its selected ensemble."""
    label = row_label(rec)
    rows = [(label, SINGLE)]
    n = rec.get("n_seeds") if is_int(rec.get("n_seeds")) else 0
    if is_number(rec.get(figure_field(SEED_FIGURE, "auc"))) and n > 1:
        rows.append((f"{label}, {SEED_ENSEMBLE}", SEED_FIGURE))
    if rec.get("kind") == "run" and is_number(rec.get(figure_field(ENSEMBLE_FIGURE, "auc"))):
        rows.append((f"{label}, {SELECTED_ENSEMBLE}", ENSEMBLE_FIGURE))
    return rows


def aggregate(recs: list[dict], figure: str, metric: str,
              dists: Distributions | None = None) -> Cell:  # fmt: skip
    """One cell from every record of a row for one dataset: the mean of their figure, its
    sample std over runs (two or more), the count, and the interval of the element-wise mean
    of their bootstrap distributions when every record has one (they share the resamples:
    one test set)."""
    import numpy as np

    values = [float(r[figure_field(figure, metric)]) for r in recs]
    std = statistics.stdev(values) if len(values) > 1 else None
    found = [(dists or {}).get(r["run_id"], {}).get((figure, metric)) for r in recs]
    if not found or any(d is None for d in found) or len({np.shape(d) for d in found}) > 1:
        return Cell(statistics.fmean(values), std, len(values))
    dist = np.mean(np.stack(found), axis=0)
    lo, hi = interval(dist)
    return Cell(statistics.fmean(values), std, len(values), lo, hi, dist)


def wide_table(
    name: str,
    datasets,
    reference: list[dict],
    ours: list[dict],
    *,
    size: int | None = None,
    ndim: int = 2,
    dists: Distributions | None = None,
) -> Table:
    """Published rows first (in reference order), then ours (runs, train, peers; then by
    budget, source and label; the three figures in order), each aggregating every record of
    its (kind, budget, source, label, figure) per dataset (:func:`aggregate`)."""
    rows: dict[str, Row] = {}
    for ref in reference:
        row = rows.setdefault(ref["method"], Row(ref["method"], PUBLISHED))
        row.cells[(ref["dataset"], "auc")] = Cell(ref["test_auc_mean"])
        row.cells[(ref["dataset"], "acc")] = Cell(ref["test_acc_mean"])
    measured: dict[tuple, Row] = {}  # (kind, budget, source, label, figure order) -> row
    for rec in ours:
        source = row_source(rec)
        budget = rec.get("budget_s") if is_number(rec.get("budget_s")) else 0
        prefix = (KIND_ORDER.get(rec.get("kind"), len(KIND_ORDER)), budget, source, row_label(rec))
        for label, figure in row_variants(rec):
            key = (*prefix, VARIANT_ORDER[figure])
            row = measured.setdefault(key, Row(label, source, figure=figure))
            row.records.setdefault(rec["dataset"], []).append(rec)
    for row in measured.values():
        for dataset, recs in row.records.items():
            for metric in METRICS:
                row.cells[(dataset, metric)] = aggregate(recs, row.figure, metric, dists)
    ordered = [measured[k] for k in sorted(measured)]
    return Table(name, tuple(datasets), list(rows.values()) + ordered, size=size, ndim=ndim)


def title(dataset: str) -> str:
    """The dataset's display name from the catalog (``medmnist.INFO``'s class name)."""
    from bench.data.catalog import get_dataset

    try:
        return get_dataset(dataset).title or dataset
    except BenchError:
        return dataset
