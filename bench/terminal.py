"""What the listings print: one ``--format`` (a table, JSON or CSV), and tables that fit the
terminal by dropping their least important columns, never by cutting a name.

Only the standard library at import (rich inside the functions): :mod:`bench.cli` imports
:data:`FORMATS` and ``bench --help`` stays instant.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

FORMATS = ("table", "json", "csv")
"""The values of a listing's ``--format``."""

PIPE_WIDTH = 160  # a table piped without $COLUMNS: wide, not squeezed into 80 columns


@dataclass(frozen=True)
class Column:
    """One column of a listing table.

    Attributes:
        header: the column's title.
        drop: 0 for a column that is always shown (a name a user types); otherwise the order
            in which columns leave a table too wide for the terminal, highest first.
        wrap: its cells may wrap onto more lines (at spaces); otherwise never wrapped.
        right: right-aligned (counts).
    """

    header: str
    drop: int = 0
    wrap: bool = False
    right: bool = False


def console():
    """A rich Console as wide as the terminal; piped, ``$COLUMNS`` wide, else
    :data:`PIPE_WIDTH`."""
    from rich.console import Console

    out = Console()
    if not out.is_terminal and not os.environ.get("COLUMNS", "").isdigit():
        out = Console(width=PIPE_WIDTH)
    return out


def fit_table(title: str, columns: Sequence[Column], rows: Sequence[Sequence[str]], *, width: int):
    """A rich Table of ``rows`` no wider than ``width``; its caption names the columns it
    dropped to fit.

    Columns are dropped, highest :attr:`Column.drop` first, until the rest fit at ease (a
    wrapping column wraps at most a quarter of its cells), or else at least whole (it
    wraps any cell, never inside a word). The room left widens the wrapping columns: first
    each to its ease, then to its widest cell, most important (lowest ``drop``) first.
    Columns with ``drop=0`` are never dropped nor cut, so a table of only those may still be
    wider than ``width``.
    """
    order = sorted((i for i, c in enumerate(columns) if c.drop), key=lambda i: -columns[i].drop)
    choices = [sorted(set(range(len(columns))) - set(order[:k])) for k in range(len(order) + 1)]
    extents = [_extent(c, [row[i] for row in rows]) for i, c in enumerate(columns)]

    def room(shown: list[int], at: int) -> int:
        return width - _frame(len(shown)) - sum(extents[i][at] for i in shown)

    shown = next((s for s in choices if room(s, 1) >= 0), None)
    shown = shown or next((s for s in choices if room(s, 0) >= 0), choices[-1])
    widths = {i: extents[i][0] for i in shown}
    spare = room(shown, 0)
    for at in (1, 2):
        for i in sorted(shown, key=lambda i: columns[i].drop):
            grow = max(min(extents[i][at] - widths[i], spare), 0)
            widths[i], spare = widths[i] + grow, spare - grow
    table = _table(title, [columns[i] for i in shown], [[row[i] for i in shown] for row in rows],
                   [widths[i] for i in shown])  # fmt: skip
    hidden = [c.header for i, c in enumerate(columns) if i not in shown]
    if hidden:
        table.caption = f"not shown at {width} columns: {', '.join(hidden)} (--format csv has all)"
    return table


def _frame(n: int) -> int:
    """Columns a rich table of ``n`` columns spends on borders and padding (one space each
    side of a cell, a rule between cells and at each edge)."""
    return 3 * n + 1


def _extent(col: Column, values: Sequence[str]) -> tuple[int, int, int]:
    """(least, at ease, widest) width of a column holding ``values`` and its header. A column
    that does not wrap needs its widest cell; one that wraps needs its longest word, and is
    at ease when three quarters of its cells and its header fit on one line."""
    from rich.cells import cell_len

    widest = max(cell_len(t) for t in (col.header, *values))
    if not col.wrap:
        return widest, widest, widest
    least = max(cell_len(w) for t in (col.header, *values) for w in t.split() or [""])
    cells = sorted(cell_len(v) for v in values) or [0]
    ease = max(least, cell_len(col.header), cells[math.ceil(0.75 * len(cells)) - 1])
    return least, ease, widest


def _table(title: str, columns: Sequence[Column], rows: Sequence[Sequence[str]], widths):
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title)
    for col, w in zip(columns, widths, strict=True):
        table.add_column(col.header, width=w, no_wrap=not col.wrap, overflow="fold",
                         justify="right" if col.right else "left")  # fmt: skip
    for row in rows:
        table.add_row(*map(Text, row))  # as written: no rich markup in names
    return table


def print_rows(rows: Sequence[dict[str, Any]], fmt: str) -> None:
    """Print ``rows`` as JSON (a list of objects, as they are) or CSV (one header line; lists
    joined with ``;``, a dict's entries as ``key_sub`` columns, None empty)."""
    if fmt == "json":
        print(json.dumps(list(rows), indent=1))
        return
    flat = [flat_row(r) for r in rows]
    fields: dict[str, None] = {}
    for r in flat:
        fields.update(dict.fromkeys(r))
    writer = csv.DictWriter(sys.stdout, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)


def flat_row(row: dict[str, Any]) -> dict[str, str]:
    """``row`` with one text per column (see :func:`print_rows`)."""
    out: dict[str, str] = {}
    for key, value in row.items():
        if isinstance(value, dict):
            out.update(flat_row({f"{key}_{k}": v for k, v in value.items()}))
        elif isinstance(value, (list, tuple)):
            out[key] = ";".join(map(str, value))
        elif value is None:
            out[key] = ""
        elif isinstance(value, bool):
            out[key] = str(value).lower()
        else:
            out[key] = str(value)
    return out
