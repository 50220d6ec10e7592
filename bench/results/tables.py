"""The wide tables of the leaderboard: which datasets they hold, one :class:`Row` per method
x source x constraint (and per ensemble variant) with its :class:`Cell` values, and the labels
rows carry. Pure: records in, tables out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.errors import BenchError
from bench.reference import PUBLISHED
from bench.results.records import is_int, is_number


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


@dataclass
class Cell:
    """One AUC or ACC value of a wide table."""

    mean: float
    std: float | None = None
    n_seeds: int | None = None


@dataclass
class Row:
    """One method in a wide table: cells[(dataset, metric)], the records behind it."""

    label: str
    source: str  # MedMNIST v2 | bench run | bench train | bench peer
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)
    records: dict[str, dict] = field(default_factory=dict)  # dataset -> record


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


def build_tables(ok: list[dict], reference: list[dict]) -> list[Table]:
    """Every wide table from the ok records (sorted by utc) and the published rows: 2D per
    model input size (28 and 224 always), 3D per volume size (28 and 64), Medical MNIST."""
    sizes = sorted({28, 224} | {r["img_size"] for r in ok if r["dataset"] in DATASETS_2D})
    tables = []
    for size in sizes:
        refs = [r for r in reference if r["dataset"] in DATASETS_2D and _in_2d(r, size)]
        ours = [r for r in ok if r["dataset"] in DATASETS_2D and r["img_size"] == size]
        tables.append(wide_table(table_name(2, size), DATASETS_2D, refs, ours, size=size))
    for size in (28, 64):  # 28^3 and 64^3 volumes; the published rows in both
        refs = [r for r in reference if r["dataset"] in DATASETS_3D]
        ours = [r for r in ok if r["dataset"] in DATASETS_3D and r["img_size"] == size]
        tables.append(wide_table(table_name(3, size), DATASETS_3D, refs, ours, size=size, ndim=3))
    medical = [r for r in ok if r["dataset"] == MEDICAL_MNIST]
    tables.append(wide_table(MEDICAL_MNIST, (MEDICAL_MNIST,), [], medical))
    return tables


def _in_2d(ref: dict, size: int) -> bool:
    """The 28 table is the paper's table (all seven rows); other sizes get their own rows."""
    return size == 28 or ref["img_size"] == size


def row_source(rec: dict) -> str:
    """How our row was made and under which constraint: ``bench run, 3m`` (search + final
    fits), ``bench train`` (a fixed configuration), ``bench peer, 10m`` (another AutoML
    system under our budget); `, cv 5` is appended for cross-validated ones."""
    kind = rec.get("kind")
    source = f"bench {kind}" if isinstance(kind, str) and kind else "bench"
    source = f"{source}, {rec['constraint']}" if rec.get("constraint") else source
    return f"{source}, cv {rec['cv']}" if is_int(rec.get("cv")) and rec["cv"] > 1 else source


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


def row_variants(rec: dict) -> list[tuple[str, dict[str, Cell]]]:
    """A record's rows: the single-fit mean ± std over seeds (the figure comparable to the
    MedMNIST v2 rows), then its seed ensemble and, for runs, its selected ensemble."""
    n = rec.get("n_seeds") if is_int(rec.get("n_seeds")) else None
    single = {}
    for metric in ("auc", "acc"):
        std = rec.get(f"test_{metric}_std")
        spread = n is not None and n > 1 and is_number(std)
        single[metric] = Cell(float(rec[f"test_{metric}_mean"]), float(std) if spread else None, n)
    label = row_label(rec)
    rows = [(label, single)]
    if is_number(rec.get("seed_ensemble_test_auc")) and (n or 0) > 1:
        rows.append((f"{label}, {SEED_ENSEMBLE}", _ensemble_cells(rec, "seed_ensemble")))
    if rec.get("kind") == "run" and is_number(rec.get("ensemble_test_auc")):
        rows.append((f"{label}, {SELECTED_ENSEMBLE}", _ensemble_cells(rec, "ensemble")))
    return rows


def _ensemble_cells(rec: dict, prefix: str) -> dict[str, Cell]:
    return {m: Cell(float(rec[f"{prefix}_test_{m}"])) for m in ("auc", "acc")}


def wide_table(
    name: str,
    datasets,
    reference: list[dict],
    ours: list[dict],
    *,
    size: int | None = None,
    ndim: int = 2,
) -> Table:
    """Published rows first (in reference order), then ours (runs, train, peers; then by
    label); for ours the latest record by utc per (source, label, dataset)."""
    rows: dict[str, Row] = {}
    for ref in reference:
        row = rows.setdefault(ref["method"], Row(ref["method"], PUBLISHED))
        row.cells[(ref["dataset"], "auc")] = Cell(ref["test_auc_mean"])
        row.cells[(ref["dataset"], "acc")] = Cell(ref["test_acc_mean"])
    measured: dict[tuple, Row] = {}  # (kind, budget, source, label, variant) -> row
    for rec in ours:  # sorted by (utc, run_id): later ones replace earlier ones
        source = row_source(rec)
        budget = rec.get("budget_s") if is_number(rec.get("budget_s")) else 0
        prefix = (KIND_ORDER.get(rec.get("kind"), len(KIND_ORDER)), budget, source, row_label(rec))
        for key, row in measured.items():  # a later record replaces all of an earlier one's
            if key[:4] == prefix:
                row.records.pop(rec["dataset"], None)
                for metric in ("auc", "acc"):
                    row.cells.pop((rec["dataset"], metric), None)
        for order, (label, cells) in enumerate(row_variants(rec)):
            row = measured.setdefault((*prefix, order), Row(label, source))
            for metric, cell in cells.items():
                row.cells[(rec["dataset"], metric)] = cell
            row.records[rec["dataset"]] = rec
    ordered = [measured[k] for k in sorted(measured) if measured[k].records]
    return Table(name, tuple(datasets), list(rows.values()) + ordered, size=size, ndim=ndim)


def title(dataset: str) -> str:
    """The dataset's display name from the catalog (``medmnist.INFO``'s class name)."""
    from bench.data.catalog import get_dataset

    try:
        return get_dataset(dataset).title or dataset
    except BenchError:
        return dataset
