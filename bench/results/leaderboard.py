"""``bench leaderboard``: gather records into ``leaderboards/records/`` (write-once) and
rebuild every table from that folder plus the published reference rows.

Outputs (each written atomically; see ``render`` for the pure part):
``results.csv`` (long, one row per record and per published number),
``medmnist2d_{img_size}.md/.csv``, ``medmnist3d.md/.csv``, ``medical_mnist.md/.csv`` and
``README.md``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench.errors import BenchError
from bench.files import atomic_write_text, write_once_json
from bench.reference import PUBLISHED, load_reference
from bench.results.records import COLUMNS, RECORD_FILE, load_record, read_record


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
_RUN_ID_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")
_STABLE_ROUNDS = 5


# ----------------------------------------------------------------------------- command


def cmd_leaderboard(args: argparse.Namespace) -> int:
    """``bench leaderboard [--runs DIR ...] [--out leaderboards]``."""
    out = Path(args.out)
    copied = gather(args.runs or [], out / "records")
    for path in copied:
        print(f"record {path}")
    for path in rebuild(out):
        print(f"wrote {path}")
    return 0


# ----------------------------------------------------------------------------- records


def find_records(source: str | Path) -> list[Path]:
    """Record files behind one ``--runs`` argument: a record ``.json``, a run folder holding
    ``record.json``, or a folder of run folders."""
    path = Path(source)
    if path.is_file() and path.suffix == ".json":
        return [path]
    if path.is_dir():
        if (path / RECORD_FILE).is_file():
            return [path / RECORD_FILE]
        found = sorted(path.glob(f"*/{RECORD_FILE}"))
        if found:
            return found
        raise BenchError(
            f"{path}: no {RECORD_FILE} in it or its subfolders; pass a finished run folder "
            "(runs/<run_id>) or a record .json file"
        )
    raise BenchError(f"{path}: no such run folder or record .json file")


def check_record(rec: dict, path: Path | str) -> None:
    """Raise BenchError naming ``path`` if ``rec`` cannot go into a table."""
    for key, kind in (("run_id", str), ("dataset", str), ("method", str), ("utc", str)):
        if not isinstance(rec.get(key), kind) or not rec[key]:
            raise BenchError(f"{path}: field {key!r} is missing or not a {kind.__name__}")
    for key in ("data_size", "img_size"):
        if not _is_int(rec.get(key)):
            raise BenchError(f"{path}: field {key!r} is missing or not an integer")
    if not _RUN_ID_RE.fullmatch(rec["run_id"]):
        raise BenchError(f"{path}: run_id {rec['run_id']!r} is not a safe file name")
    status = rec.get("status", "ok")
    if status not in ("ok", "failed"):
        raise BenchError(f"{path}: status {status!r} is neither 'ok' nor 'failed'")
    if status == "ok":
        for key in ("test_auc_mean", "test_acc_mean"):
            if not _is_number(rec.get(key)):
                raise BenchError(f"{path}: field {key!r} is missing or not a number")


def gather(sources: list[str | Path], records_dir: Path) -> list[Path]:
    """Copy the records behind ``sources`` into ``records_dir/<run_id>.json`` (write-once).

    Every source is read and checked before anything is written. A record already there
    with identical content is fine; a different one with the same run_id is a BenchError.

    Returns:
        The record files newly written.
    """
    records_dir = Path(records_dir)
    pending: dict[str, tuple[dict, Path]] = {}
    for source in sources:
        for path in find_records(source):
            rec = read_record(path)
            check_record(rec, path)
            run_id = rec["run_id"]
            if run_id in pending and _canon(pending[run_id][0]) != _canon(rec):
                raise BenchError(
                    f"{path} and {pending[run_id][1]} are different records with the same "
                    f"run_id {run_id}; pass only one of them"
                )
            pending[run_id] = (rec, path)
            _check_existing(records_dir / f"{run_id}.json", rec, path)
    written = []
    for run_id, (rec, path) in pending.items():
        dest = records_dir / f"{run_id}.json"
        if dest.exists():
            continue
        try:
            write_once_json(dest, rec)
            written.append(dest)
        except BenchError:  # another process wrote it meanwhile: fine if identical
            _check_existing(dest, rec, path)
    return written


def _check_existing(dest: Path, rec: dict, source: Path) -> None:
    if not dest.exists():
        return
    try:
        existing = json.loads(dest.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        existing = None
    if existing is None or _canon(existing) != _canon(rec):
        raise BenchError(
            f"{dest} already holds a different record with run_id {rec['run_id']} "
            f"(from {source}); records are write-once: give the new run its own run_id"
        )


def load_records(records_dir: Path) -> tuple[list[dict], list[str]]:
    """All well-formed records in ``records_dir`` (through
    :class:`~bench.results.records.Record`, so old ones get the fields they lack), and one
    warning per malformed file."""
    records, warnings = [], []
    for path in _record_files(Path(records_dir)):
        try:
            rec = read_record(path)
            check_record(rec, path)
            if rec["run_id"] != path.stem:
                raise BenchError(f"{path}: file name does not match its run_id {rec['run_id']}")
        except BenchError as exc:
            warnings.append(f"warning: {exc}; skipped")
            continue
        records.append(load_record(rec).as_dict())
    return records, warnings


def _record_files(records_dir: Path) -> list[Path]:
    if not records_dir.is_dir():
        return []
    return sorted(p for p in records_dir.glob("*.json") if not p.name.startswith("."))


def _snapshot(records_dir: Path) -> list[tuple[str, int, int]]:
    out = []
    for p in _record_files(records_dir):
        try:
            st = p.stat()
        except OSError:
            continue
        out.append((p.name, st.st_size, st.st_mtime_ns))
    return out


# ----------------------------------------------------------------------------- rebuild


def rebuild(out: Path) -> list[Path]:
    """Regenerate every table under ``out`` from ``out/records`` and the reference rows.

    Each file is replaced atomically. If the records folder changed while writing (another
    ``bench leaderboard`` added a record), the tables are rebuilt, so the last writer's
    files always cover every record.

    Returns:
        The files written.
    """
    out = Path(out)
    reference = load_reference()
    warnings: list[str] = []
    for _ in range(_STABLE_ROUNDS):
        before = _snapshot(out / "records")
        records, warnings = load_records(out / "records")
        files = render(records, reference)
        for name, text in files.items():
            atomic_write_text(out / name, text)
        if _snapshot(out / "records") == before:
            break
    for line in warnings:
        print(line, file=sys.stderr)
    return [out / name for name in files]


def render(records: list[dict], reference: list[dict]) -> dict[str, str]:
    """The text of every generated file, keyed by file name (pure: no I/O)."""
    records = sorted(records, key=lambda r: (r["utc"], r["run_id"]))
    files = {"results.csv": results_csv(reference + records)}
    ok = [r for r in records if r.get("status", "ok") == "ok"]
    sizes = sorted({28, 224} | {r["img_size"] for r in ok if r["dataset"] in DATASETS_2D})
    tables: list[Table] = []
    for size in sizes:
        tables.append(
            wide_table(
                f"medmnist2d_{size}",
                DATASETS_2D,
                [r for r in reference if r["dataset"] in DATASETS_2D and _in_2d(r, size)],
                [r for r in ok if r["dataset"] in DATASETS_2D and r["img_size"] == size],
            )
        )
    for size, name in ((28, "medmnist3d"), (64, "medmnist3d_64")):  # 28^3 and 64^3 volumes
        tables.append(
            wide_table(
                name,
                DATASETS_3D,
                [r for r in reference if r["dataset"] in DATASETS_3D],
                [r for r in ok if r["dataset"] in DATASETS_3D and r["img_size"] == size],
            )
        )
    tables.append(wide_table("medical_mnist", (MEDICAL_MNIST,), [], _of(ok, MEDICAL_MNIST)))
    for table in tables:
        files[f"{table.name}.csv"] = wide_csv(table)
        files[f"{table.name}.md"] = (
            medical_markdown(table) if table.name == "medical_mnist" else wide_markdown(table)
        )
    files["README.md"] = readme(tables, records)
    from bench.results.reproductions import markdown as reproductions

    files["reproductions.md"] = reproductions(records)
    return files


def _in_2d(ref: dict, size: int) -> bool:
    """The 28 table is the paper's table (all seven rows); other sizes get their own rows."""
    return size == 28 or ref["img_size"] == size


def _of(records: list[dict], dataset: str) -> list[dict]:
    return [r for r in records if r["dataset"] == dataset]


# ----------------------------------------------------------------------------- long CSV


def results_csv(rows: list[dict]) -> str:
    """The long table: one line per row, columns COLUMNS."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_csv_value(row, col) for col in COLUMNS])
    return buf.getvalue()


def _csv_value(row: dict, col: str) -> str:
    value = row.get(col)
    if col == "params" and isinstance(value, dict):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    if col == "seeds" and isinstance(value, list):
        return ";".join(str(v) for v in value)
    if col == "info" and row.get("status", "ok") != "ok":
        return f"status={row['status']}" + (f"; {value}" if value else "")
    if col == "source" and not value:
        return "bench"
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


# ----------------------------------------------------------------------------- wide tables


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
    name: str
    datasets: tuple[str, ...]
    rows: list[Row]


def row_source(rec: dict) -> str:
    """How our row was made and under which constraint: ``bench run, 3m`` (search + final
    fits), ``bench train`` (a fixed configuration), ``bench peer, 10m`` (another AutoML
    system under our budget); `, cv 5` is appended for cross-validated ones."""
    kind = rec.get("kind")
    source = f"bench {kind}" if isinstance(kind, str) and kind else "bench"
    source = f"{source}, {rec['constraint']}" if rec.get("constraint") else source
    return f"{source}, cv {rec['cv']}" if _is_int(rec.get("cv")) and rec["cv"] > 1 else source


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
    n = rec.get("n_seeds") if _is_int(rec.get("n_seeds")) else None
    single = {}
    for metric in ("auc", "acc"):
        std = rec.get(f"test_{metric}_std")
        spread = n is not None and n > 1 and _is_number(std)
        single[metric] = Cell(float(rec[f"test_{metric}_mean"]), float(std) if spread else None, n)
    label = row_label(rec)
    rows = [(label, single)]
    if _is_number(rec.get("seed_ensemble_test_auc")) and (n or 0) > 1:
        rows.append((f"{label}, {SEED_ENSEMBLE}", _ensemble_cells(rec, "seed_ensemble")))
    if rec.get("kind") == "run" and _is_number(rec.get("ensemble_test_auc")):
        rows.append((f"{label}, {SELECTED_ENSEMBLE}", _ensemble_cells(rec, "ensemble")))
    return rows


def _ensemble_cells(rec: dict, prefix: str) -> dict[str, Cell]:
    return {m: Cell(float(rec[f"{prefix}_test_{m}"])) for m in ("auc", "acc")}


def wide_table(name: str, datasets, reference: list[dict], ours: list[dict]) -> Table:
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
        budget = rec.get("budget_s") if _is_number(rec.get("budget_s")) else 0
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
    return Table(
        name, tuple(datasets),
        list(rows.values()) + [measured[k] for k in sorted(measured) if measured[k].records],
    )


def _fmt(cell: Cell | None, *, scale: float = 1.0, digits: int = 3) -> str:
    if cell is None or not math.isfinite(cell.mean):
        return "-"
    text = f"{cell.mean * scale:.{digits}f}"
    if cell.std is not None and math.isfinite(cell.std):
        text += f" ± {cell.std * scale:.{digits}f}"
    return text


def _best(table: Table, key: tuple[str, str], *, lowest: bool = False) -> float | None:
    values = [
        round(c.mean, 3)
        for row in table.rows
        if (c := row.cells.get(key)) is not None and math.isfinite(c.mean)
    ]
    if not values:
        return None
    return min(values) if lowest else max(values)


def wide_csv(table: Table) -> str:
    """``method,source,{ds}_auc,{ds}_acc,...,{ds}_auc_std,{ds}_acc_std,...`` (3 decimals)."""
    keys = [(ds, m) for ds in table.datasets for m in ("auc", "acc")]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["method", "source", *(f"{d}_{m}" for d, m in keys),
                     *(f"{d}_{m}_std" for d, m in keys)])  # fmt: skip
    for row in table.rows:
        means, stds = [], []
        for key in keys:
            cell = row.cells.get(key)
            means.append(f"{cell.mean:.3f}" if cell and math.isfinite(cell.mean) else "")
            ok_std = cell is not None and cell.std is not None and math.isfinite(cell.std)
            stds.append(f"{cell.std:.3f}" if ok_std else "")
        writer.writerow([row.label, row.source, *means, *stds])
    return buf.getvalue()


def _md_table(header: list[str], lines: list[list[str]], align: list[str]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    out += ["| " + " | ".join(cells) + " |" for cells in lines]
    return out


def _bold_if(text: str, cell: Cell | None, best: float | None) -> str:
    if cell is None or best is None or not math.isfinite(cell.mean):
        return text
    return f"**{text}**" if round(cell.mean, 3) == best else text


def wide_markdown(table: Table) -> str:
    """The paper's layout: blocks of six datasets, AUC and ACC per dataset."""
    is3d = table.name.startswith("medmnist3d")
    size = 28 if table.name == "medmnist3d" else int(table.name.rsplit("_", 1)[1])
    heading = (
        f"MedMNIST v2, 3D, model input {size}x{size}x{size}"
        if is3d
        else f"MedMNIST v2, 2D, model input {size} px"
    )
    lines = [f"# {heading}", "", *_md_intro(table.name, None if is3d else size, size), ""]
    blocks = [table.datasets[i : i + 6] for i in range(0, len(table.datasets), 6)]
    for block in blocks:
        header = ["Method", "Source"]
        align = [":---", ":---"]
        for ds in block:
            header += [f"{title(ds)} AUC", f"{title(ds)} ACC"]
            align += ["---:", "---:"]
        body = []
        for row in table.rows:
            cells = [row.label, row.source]
            for ds in block:
                for metric in ("auc", "acc"):
                    cell = row.cells.get((ds, metric))
                    cells.append(_bold_if(_fmt(cell), cell, _best(table, (ds, metric))))
            body.append(cells)
        lines += _md_table(header, body, align) + [""]
    return "\n".join(lines)


def _md_intro(name: str, size: int | None, voxels: int = 28) -> list[str]:
    intro = [
        "Generated by `bench leaderboard` from `records/` and the published tables in "
        "`bench/reference/`; do not edit by hand.",
        "",
        "Test AUC and ACC on the official test split, computed as `medmnist.Evaluator` does. "
        "Source *MedMNIST v2*: the paper (Yang et al., Scientific Data 10:41, 2023), as "
        "printed. Source *bench ...*: our records (with their budget, e.g. *bench run, 10m*), "
        "mean ± std over seeds (one seed: no ±), the latest record per method, source, budget "
        "and dataset. Best value per column in **bold**; "
        "`-`: not run. Budgets, hardware and the record behind each number: "
        "[README.md](README.md).",
    ]
    if size == 28:
        intro += [
            "",
            "All seven published rows are shown here, as in the paper's table; the "
            "published (224) rows are 28 px images upsampled to 224 px. Our rows with a "
            "224 px model input are in [medmnist2d_224.md](medmnist2d_224.md).",
        ]
    elif size is not None:
        intro += [
            "",
            f"Rows whose model input is {size} px. A `[28 px data]` suffix marks a row "
            "trained on 28 px images resized to the input size, like the published (224) "
            "rows; without it the data itself is that size (MedMNIST+ files).",
        ]
    elif voxels == 28:
        intro += [
            "",
            "Published rows: 28x28x28 volumes, the paper's 3D table (ResNet-18/50 with 2.5D, "
            "3D and ACS convolutions, auto-sklearn, AutoKeras). Our rows with 64x64x64 "
            "volumes are in [medmnist3d_64.md](medmnist3d_64.md).",
        ]
    else:
        intro += [
            "",
            f"Our rows with {voxels}x{voxels}x{voxels} volumes (MedMNIST+ files). The "
            "published rows are repeated for reference: they were measured on 28x28x28 "
            "volumes.",
        ]
    return intro


def medical_markdown(table: Table) -> str:
    """Medical MNIST (no published row): ACC, AUC and errors per 10,000 test images."""
    lines = [
        "# Medical MNIST",
        "",
        "Generated by `bench leaderboard` from `records/`; do not edit by hand.",
        "",
        "Kaggle Medical MNIST (6 classes, 64x64 JPEGs) on our fixed, seeded, stratified "
        "70/15/15 split; no published row exists. Test ACC and AUC, mean ± std over seeds, "
        "and the error count per 10,000 test images ((1 - ACC) x 10,000). Best per column "
        "in **bold**. Budgets and hardware: [README.md](README.md).",
        "",
    ]
    key_acc, key_auc = (MEDICAL_MNIST, "acc"), (MEDICAL_MNIST, "auc")
    if not table.rows:
        return "\n".join(lines + ["No records yet: run `bench run --dataset medical_mnist`.", ""])
    best_acc, best_auc = _best(table, key_acc), _best(table, key_auc)
    errors = [round((1.0 - row.cells[key_acc].mean) * 10_000, 1) for row in table.rows]
    body = []
    for row, errs in zip(table.rows, errors, strict=True):
        acc, auc = row.cells[key_acc], row.cells[key_auc]
        err_text = _fmt(Cell(1.0 - acc.mean, acc.std, acc.n_seeds), scale=10_000, digits=1)
        if errs == min(errors):  # the fewest errors, at the one decimal shown
            err_text = f"**{err_text}**"
        body.append([row.label, row.source, _bold_if(_fmt(acc), acc, best_acc),
                     _bold_if(_fmt(auc), auc, best_auc), err_text])  # fmt: skip
    lines += _md_table(
        ["Method", "Source", "ACC", "AUC", "Errors per 10,000"],
        body,
        [":---", ":---", "---:", "---:", "---:"],
    )
    return "\n".join(lines + [""])


# ----------------------------------------------------------------------------- README


README_HEAD = """\
# Leaderboards

Generated by `bench leaderboard`; do not edit by hand. Every number of ours comes from a
record in [records/](records/) (one JSON file per final evaluation, written once by
`bench run`, `bench train` or `bench peer`, never edited); the published rows come from
the tables shipped in the package, [bench/reference/](../bench/reference/) (MedMNIST v2,
Yang et al., Scientific Data 10:41, 2023, doi:10.1038/s41597-022-01721-8). Rebuild with:

    bench leaderboard --runs runs/<run_id> ...   # copy new records in, rebuild everything

## Files

- [results.csv](results.csv): the long table, one line per record plus one per published
  number; the columns are the CSV fields of `bench.results.records.Record` (identity, scores,
  search, provenance; `params` as compact JSON with sorted keys; `info` starts with
  `status=failed` for a failed run; reference rows have an empty `run_id`).
- [medmnist2d_28.md](medmnist2d_28.md) (and `.csv`): the MedMNIST v2 2D table with our
  rows whose model input is 28 px. `medmnist2d_224.md` and one file per other input size
  hold the rows of that input size.
- [medmnist3d.md](medmnist3d.md): the 3D table (28x28x28 volumes), and
  [medmnist3d_64.md](medmnist3d_64.md) for our 64x64x64 rows. [medical_mnist.md](medical_mnist.md):
  Kaggle Medical MNIST (no published row; errors per 10,000 test images as well).

## How to read the tables

- Columns are test AUC and ACC per dataset in MedMNIST order, in the paper's two blocks of
  six datasets, computed as `medmnist.Evaluator` does (`getAUC`, `getACC` at threshold 0.5).
- Rows with source *MedMNIST v2* are the paper's single numbers. Rows with source
  *bench run*, *bench train* or *bench peer* are ours: `mean ± std`
  over the final-fit seeds (a single seed shows the value alone), 3 decimals. The best
  value of each column is **bold** (ties all bold); `-` means we have not run it.
- A row is method x source x constraint, as automlbenchmark identifies a result: the
  source says how it was made and the constraint is its budget, so `bench run, 3m` and
  `bench run, 10m` are two rows, and `bench peer, 10m` sits beside `bench run, 10m`. When
  one such row has several records for the same dataset, the table shows the latest (by
  `utc`); `results.csv` keeps all of them. Failed runs are only in `results.csv`.
- "(28)" and "(224)" are the model *input* size. In MedMNIST v2 the "(224)" rows are the
  28 px images upsampled to 224 px, not native 224 px images, so records keep the data
  size (`data_size`, the npz file) and the input size (`img_size`) apart. Our rows whose
  data size differs from their input size carry a suffix such as `[28 px data]`.
- The paper prints one table with all seven rows, so `medmnist2d_28.md` shows all seven
  published rows (ResNet (28), ResNet (224), auto-sklearn, AutoKeras, Google AutoML
  Vision; the AutoML systems were run on the 28 px data); `medmnist2d_224.md` repeats
  only the two published ResNet (224) rows, beside our 224 px-input rows.
- The source says how a row of ours was made: *bench run* is the budgeted search plus the
  multi-seed final evaluation, labelled by the family it chose (`Small CNN (28)`);
  *bench train* is one fixed configuration, e.g. the paper's recipe (`ResNet-18 (28)`
  with `--protocol medmnist-v2`); *bench peer* is another AutoML system under the same
  budget. The same label can appear with different sources or budgets: they are different
  rows.
- A run answers with three rows. The plain row (`Small CNN (28)`) is the mean ± std of the
  single fits over the seeds, the figure comparable to the MedMNIST v2 rows. `..., seed
  ensemble` averages those fits' test probabilities (mean of probabilities) and scores the
  mean once. `..., selected ensemble` is the run's answer, the model `bench predict` applies:
  greedy forward selection with replacement (Caruana et al., ICML 2004, as auto-sklearn and
  AutoGluon build theirs) over the validation predictions of the best completed trials,
  up to `--ensemble` distinct configurations (default 5). Each selected configuration is
  refitted with the final seeds inside the budget, and the members' seed means are
  weighted by how often selection picked them. Selection reads val only, and the test
  split is scored once. A bench train row has the first two rows.
- The rows of ours in the tables, with the budget, times, hardware and record behind each
  number, are listed below.
"""


def readme(tables: list[Table], records: list[dict]) -> str:
    """Static guide plus, for each measured cell, its budget, times, hardware and record."""
    lines = [README_HEAD, "## Our rows", ""]
    header = ["Table", "Method", "Dataset", "Data / input", "Budget", "Search / final / wall",
              "Trials (complete/pruned/failed)", "Device", "Hardware", "Seeds", "Epochs",
              "Record"]  # fmt: skip
    body = []
    shown = set()
    for table in tables:
        for row in table.rows:
            for ds in table.datasets:
                rec = row.records.get(ds)
                if rec is None:
                    continue
                shown.add(rec["run_id"])
                body.append(_readme_line(table.name, row.label, rec))
    if body:
        lines += _md_table(header, body, [":---"] * len(header))
    else:
        lines.append("No records yet.")
    ok = [r for r in records if r.get("status", "ok") == "ok"]
    tabled = set(DATASETS_2D) | set(DATASETS_3D) | {MEDICAL_MNIST}
    outside = sum(1 for r in ok if r["dataset"] not in tabled)
    lines += [
        "",
        f"Records in `records/`: {len(records)}; shown above: {len(shown)}; superseded by a "
        "later record of the same method, source and budget: "
        f"{len(ok) - outside - len(shown)}; other datasets (only in `results.csv`): "
        f"{outside}; failed: {len(records) - len(ok)}. All of them are in `results.csv`.",
        "",
    ]
    return "\n".join(lines)


def _readme_line(table: str, label: str, rec: dict) -> list[str]:
    from bench.config import format_seconds

    def secs(key: str, *, zero: str = "0s") -> str:
        v = rec.get(key)
        return (format_seconds(v) if v else zero) if _is_number(v) else "-"

    trials = "-"  # no search (bench train, peers)
    if _is_int(rec.get("n_trials")) and rec["n_trials"] > 0:
        counts = [rec.get(k) for k in ("n_complete", "n_pruned", "n_failed")]
        trials = f"{rec['n_trials']} ({'/'.join(str(c) if c is not None else '?' for c in counts)})"
    seeds = rec.get("seeds")
    seeds = ";".join(map(str, seeds)) if isinstance(seeds, list) else (seeds or "-")
    return [
        f"{table}.md",
        label,
        title(rec["dataset"]),
        f"{rec['data_size']} / {rec['img_size']}",
        secs("budget_s", zero="-"),
        f"{secs('search_s')} / {secs('final_s')} / {secs('wall_s')}",
        trials,
        str(rec.get("device") or "-"),
        _hardware(rec.get("hardware")),
        str(seeds),
        str(rec.get("epochs") if rec.get("epochs") is not None else "-"),
        f"[{rec['run_id']}](records/{rec['run_id']}.json)",
    ]


def _hardware(hw) -> str:
    if isinstance(hw, dict):
        parts = [str(hw.get("cpu") or "")]
        if hw.get("cores"):
            parts.append(f"{hw['cores']} cores")
        if hw.get("gpu"):
            parts.append(str(hw["gpu"]))
        text = ", ".join(p for p in parts if p)
        return text.replace("|", "/") or "-"
    return str(hw).replace("|", "/") if hw else "-"


# ----------------------------------------------------------------------------- helpers


def title(dataset: str) -> str:
    """The dataset's display name from the catalog (``medmnist.INFO``'s class name)."""
    from bench.data.catalog import get_dataset

    try:
        return get_dataset(dataset).title or dataset
    except BenchError:
        return dataset


def _canon(rec: dict) -> str:
    return json.dumps(rec, sort_keys=True, default=str)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
