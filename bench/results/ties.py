"""Which rows of a leaderboard column (one dataset and metric) are the best, in bold, and which
cannot be told apart from the best at 95 %, marked ``≈``. Pure: cells in, flags out.

The rule (leaderboards/README.md says it in words): the reference R* is our best row of the
column that has a bootstrap distribution. A row of ours with a distribution, other than R*,
is marked when the paired-bootstrap interval of R* - row contains 0. A row without one (a
published row, a first-generation row) is marked when its value lies inside R*'s interval.
R* itself is marked when it is not bold and a bold row's value lies inside its interval. No
R*: no marks.
"""

from __future__ import annotations

import math

from bench.results.intervals import difference, inside
from bench.results.tables import Cell

DIGITS = 3  # the decimals the tables show; bold compares values at this rounding


def shown(cell: Cell | None) -> bool:
    """Whether a cell holds a value (a table shows ``-`` otherwise)."""
    return cell is not None and math.isfinite(cell.mean)


def best_value(cells: list[Cell | None], *, lowest: bool = False,
               digits: int = DIGITS) -> float | None:  # fmt: skip
    """The column's best value at the decimals shown (ties all bold); None for no value."""
    values = [round(c.mean, digits) for c in cells if shown(c)]
    if not values:
        return None
    return min(values) if lowest else max(values)


def is_best(cell: Cell | None, best: float | None, digits: int = DIGITS) -> bool:
    """Whether ``cell`` shows the column's best value (bold)."""
    return shown(cell) and best is not None and round(cell.mean, digits) == best


def reference_row(cells: list[Cell | None]) -> int | None:
    """R*: the index of the highest cell that has a bootstrap distribution (the first of
    equal ones); None when no cell has one."""
    found = [i for i, c in enumerate(cells) if shown(c) and c.dist is not None]
    return max(found, key=lambda i: cells[i].mean) if found else None


def tie_marks(cells: list[Cell | None]) -> list[bool]:
    """Per cell of one column (higher is better), whether it gets ``≈`` by the module's rule."""
    ref = reference_row(cells)
    if ref is None:
        return [False] * len(cells)
    star, best = cells[ref], best_value(cells)
    marks = []
    for i, cell in enumerate(cells):
        if not shown(cell):
            marks.append(False)
        elif i == ref:
            marks.append(not is_best(star, best) and any(
                is_best(c, best) and inside(c.mean, star.lo, star.hi)
                for j, c in enumerate(cells) if j != ref))  # fmt: skip
        elif cell.dist is not None:
            diff = difference(star.mean - cell.mean, star.dist, cell.dist)
            marks.append(not diff.excludes_zero)
        else:
            marks.append(inside(cell.mean, star.lo, star.hi))
    return marks
