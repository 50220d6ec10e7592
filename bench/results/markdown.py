"""The text of the leaderboard files: the long ``results.csv``, and each wide table as CSV and
as Markdown in the paper's layout (Medical MNIST with its errors per 10,000). Pure: no I/O.
"""

from __future__ import annotations

import csv
import io
import json
import math

from bench.results.intervals import METRICS, with_interval
from bench.results.records import COLUMNS
from bench.results.tables import MEDICAL_MNIST, Cell, Table, title
from bench.results.ties import DIGITS, best_value, is_best, shown, tie_marks


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


def cell_text(cell: Cell | None, *, digits: int = DIGITS) -> str:
    """``mean [lo, hi]``, with `` ± std`` over runs and ``, n=R`` for two runs or more;
    without an interval the mean (± std, n) alone; ``-`` for no value."""
    if not shown(cell):
        return "-"
    lo, hi = (cell.lo, cell.hi) if cell.lo is not None and cell.hi is not None else (None, None)
    text = with_interval(cell.mean, lo, hi, digits, std=cell.std)
    return f"{text}, n={cell.n}" if cell.n > 1 else text


def marked(text: str, *, bold: bool, tie: bool) -> str:
    """The cell text in **bold** (the column's best) and/or with `` ≈`` (a tie at 95 %)."""
    text = f"**{text}**" if bold else text
    return f"{text} ≈" if tie else text


def column_texts(cells: list[Cell | None], *, lowest: bool = False, digits: int = DIGITS,
                 ties: list[bool] | None = None) -> list[str]:  # fmt: skip
    """Every cell of one column as shown: bold best, ``≈`` ties (:func:`tie_marks`, or
    ``ties`` when given: the error column takes its ACC column's)."""
    best = best_value(cells, lowest=lowest, digits=digits)
    ties = tie_marks(cells) if ties is None else ties
    return [marked(cell_text(c, digits=digits), bold=is_best(c, best, digits), tie=t)
            for c, t in zip(cells, ties, strict=True)]  # fmt: skip


def _csv_number(value: float | None) -> str:
    return f"{value:.3f}" if value is not None and math.isfinite(value) else ""


def wide_csv(table: Table) -> str:
    """``method,source,{ds}_{m}...`` (mean over runs), then ``_std`` (over runs), ``_lo``,
    ``_hi`` (95 % interval) and ``_n`` (runs; empty for published rows) per dataset and
    metric, 3 decimals."""
    keys = [(ds, m) for ds in table.datasets for m in METRICS]
    suffixes = ("", "_std", "_lo", "_hi", "_n")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["method", "source", *(f"{d}_{m}{x}" for x in suffixes for d, m in keys)])
    for row in table.rows:
        cells = [row.cells.get(key) for key in keys]
        line = [_csv_number(c.mean if c else None) for c in cells]
        for attr in ("std", "lo", "hi"):
            line += [_csv_number(getattr(c, attr) if c else None) for c in cells]
        line += [str(c.n) if c and row.ours else "" for c in cells]
        writer.writerow([row.label, row.source, *line])
    return buf.getvalue()


def md_table(header: list[str], lines: list[list[str]], align: list[str]) -> list[str]:
    """A Markdown table's lines."""
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    out += ["| " + " | ".join(cells) + " |" for cells in lines]
    return out


def page_link(dataset: str) -> str:
    """The per-dataset page of ``dataset``, relative to the leaderboard folder."""
    return f"datasets/{dataset}.md"


def table_heading(table: Table) -> str:
    """``MedMNIST v2, 2D, model input 28 px``, ``... 3D, model input 64x64x64``,
    ``Medical MNIST``."""
    size = table.size
    if table.name == MEDICAL_MNIST:
        return "Medical MNIST"
    if table.ndim == 3:
        return f"MedMNIST v2, 3D, model input {size}x{size}x{size}"
    return f"MedMNIST v2, 2D, model input {size} px"


def wide_markdown(table: Table) -> str:
    """The paper's layout: blocks of six datasets, AUC and ACC per dataset; a block lists the
    rows with a value in it, and links to its datasets' pages."""
    is3d, size = table.ndim == 3, table.size
    lines = [f"# {table_heading(table)}", "", *_md_intro(None if is3d else size, size), ""]
    blocks = [table.datasets[i : i + 6] for i in range(0, len(table.datasets), 6)]
    for block in blocks:
        keys = [(ds, m) for ds in block for m in METRICS]
        rows = [r for r in table.rows if any(shown(r.cells.get(k)) for k in keys)]
        header, align = ["Method", "Source"], [":---", ":---"]
        for ds in block:
            header += [f"{title(ds)} AUC", f"{title(ds)} ACC"]
            align += ["---:", "---:"]
        columns = [column_texts([r.cells.get(k) for r in table.rows]) for k in keys]
        index = {id(r): i for i, r in enumerate(table.rows)}
        body = [[r.label, r.source, *(col[index[id(r)]] for col in columns)] for r in rows]
        links = ", ".join(f"[{title(ds)}]({page_link(ds)})" for ds in block)
        lines += md_table(header, body, align) + ["", f"Per dataset: {links}.", ""]
    return "\n".join(lines)


def _md_intro(size: int | None, voxels: int = 28) -> list[str]:
    intro = [
        "Generated by `bench leaderboard` from `records/` and the published tables in "
        "`bench/reference/`; do not edit by hand.",
        "",
        "Test AUC and ACC on the official test split, computed as `medmnist.Evaluator` does. "
        "Source *MedMNIST v2*: the paper (Yang et al., Scientific Data 10:41, 2023), as "
        "printed. Source *bench ...*: our records (with their budget, e.g. *bench run, 10m*), "
        "every record of a method, source and budget aggregated: the mean over runs with its "
        "95 % bootstrap interval over test items `[lo, hi]`, `± std` over runs and `n=` runs "
        "when there are two or more. *(gen 1)*: records made before test predictions were "
        "kept (no interval). Best value per column in **bold**; ` ≈`: not distinguishable "
        "from the best at 95 % (the rule: [README.md](README.md)). A block lists the rows "
        "with a value in it; every row of a dataset, with balanced accuracy and ECE: its page "
        "under [datasets/](datasets/). Budgets, hardware and the records behind each number: "
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
        f"# {table_heading(table)}",
        "",
        "Generated by `bench leaderboard` from `records/`; do not edit by hand.",
        "",
        "Kaggle Medical MNIST (6 classes, 64x64 JPEGs) on our fixed, seeded, stratified "
        "70/15/15 split; no published row exists. Test ACC and AUC, mean over runs with its "
        "95 % bootstrap interval `[lo, hi]` (± std over runs and `n=` runs for two or more), "
        "and the error count per 10,000 test images ((1 - ACC) x 10,000). Best per column "
        "in **bold**; ` ≈`: not distinguishable from the best at 95 % (the rule: "
        "[README.md](README.md)). Per-row details: "
        f"[{page_link(MEDICAL_MNIST)}]({page_link(MEDICAL_MNIST)}). Budgets and hardware: "
        "[README.md](README.md).",
        "",
    ]
    if not table.rows:
        return "\n".join(lines + ["No records yet: run `bench run --dataset medical_mnist`.", ""])
    accs = [row.cells.get((MEDICAL_MNIST, "acc")) for row in table.rows]
    aucs = [row.cells.get((MEDICAL_MNIST, "auc")) for row in table.rows]
    acc_ties = tie_marks(accs)
    errors = [error_cell(c) if c is not None else None for c in accs]
    columns = [column_texts(accs, ties=acc_ties), column_texts(aucs),
               column_texts(errors, lowest=True, digits=1, ties=acc_ties)]  # fmt: skip
    body = [[row.label, row.source, *(col[i] for col in columns)]
            for i, row in enumerate(table.rows)]  # fmt: skip
    lines += md_table(
        ["Method", "Source", "ACC", "AUC", "Errors per 10,000"],
        body,
        [":---", ":---", "---:", "---:", "---:"],
    )
    return "\n".join(lines + [""])


ERRORS_PER = 10_000


def error_cell(acc: Cell) -> Cell:
    """An ACC cell as errors per 10,000 test images: (1 - ACC) x 10,000, its interval the
    ACC interval's ends turned around; std scaled (the distribution is not carried)."""
    lo = (1.0 - acc.hi) * ERRORS_PER if acc.hi is not None else None
    hi = (1.0 - acc.lo) * ERRORS_PER if acc.lo is not None else None
    std = acc.std * ERRORS_PER if acc.std is not None else None
    return Cell((1.0 - acc.mean) * ERRORS_PER, std, acc.n, lo, hi)
