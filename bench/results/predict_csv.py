"""The CSV that ``bench predict --out`` writes and ``bench evaluate`` reads back: the one place
for its columns.

    index,<class name>...,predicted,split,original_size,resized_to

``index`` is the row's index in the npz split that ``split`` names, or for image files the
path relative to the input folder (``split`` empty); then one probability column per class
(both for a binary task), headed by the class name; ``predicted`` is the predicted class name
(multi-label: the names above 0.5, joined by ``;``); ``original_size`` is the input's size as
read and ``resized_to`` the size the model was given, ``HxW`` (volumes ``DxHxW``). Cells are
quoted by the csv module (a class name may hold a comma), probabilities at full precision.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import BenchError

INDEX = "index"
TRAILING = ("predicted", "split", "original_size", "resized_to")
LABEL_SEP = ";"  # between the predicted names of a multi-label row


@dataclass(frozen=True)
class PredictTable:
    """The rows of a ``bench predict`` CSV."""

    class_names: tuple[str, ...]
    index: tuple[str, ...]
    scores: np.ndarray  # (rows, classes)
    predicted: tuple[str, ...]
    split: str  # the npz split the rows index; "" for image files
    original_size: tuple[str, ...]
    resized_to: tuple[str, ...]


def size_text(shape) -> str:
    """``(28, 28)`` -> ``28x28``."""
    return "x".join(str(int(s)) for s in shape)


def to_text(table: PredictTable) -> str:
    """The CSV text of ``table``."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([INDEX, *table.class_names, *TRAILING])
    for i, row in enumerate(table.scores):
        writer.writerow([table.index[i], *(repr(float(v)) for v in row), table.predicted[i],
                         table.split, table.original_size[i], table.resized_to[i]])  # fmt: skip
    return buf.getvalue()


def is_predict_csv(path: Path) -> bool:
    """Whether ``path`` starts with this layout's header (else: a medmnist file)."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            first = next(csv.reader(fh), [])
    except (OSError, UnicodeDecodeError):
        return False  # the medmnist reader reports the problem
    return bool(first) and first[0] == INDEX and tuple(first[-len(TRAILING) :]) == TRAILING


def read_table(path: Path) -> PredictTable:
    """A CSV :func:`to_text` wrote; a malformed one is one BenchError."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise BenchError(f"{path}: not a readable bench predict CSV ({exc})") from None
    header, body = rows[0], [r for r in rows[1:] if r]
    names = tuple(header[1 : -len(TRAILING)])
    width = len(header)
    for n, row in enumerate(body, start=2):
        if len(row) != width:
            raise BenchError(f"{path}: line {n} has {len(row)} cells, the header {width}; "
                             "write the file again with bench predict --out")  # fmt: skip
    try:
        scores = np.array([[float(v) for v in r[1 : 1 + len(names)]] for r in body], np.float64)
    except ValueError as exc:
        raise BenchError(f"{path}: a probability is not a number ({exc})") from None
    splits = {r[-3] for r in body}
    if len(splits) > 1:
        raise BenchError(f"{path}: rows of several splits ({', '.join(sorted(splits))}); "
                         "give one split's predictions")  # fmt: skip
    return PredictTable(
        class_names=names, index=tuple(r[0] for r in body),
        scores=scores.reshape(len(body), len(names)), predicted=tuple(r[-4] for r in body),
        split=splits.pop() if splits else "", original_size=tuple(r[-2] for r in body),
        resized_to=tuple(r[-1] for r in body),
    )  # fmt: skip


def split_scores(table: PredictTable, *, path: Path, split: str) -> np.ndarray:
    """The scores of ``split`` ordered by index, for ``bench evaluate``: rows must index that
    split (an npz input to ``bench predict``), 0..N-1 each once. One BenchError otherwise."""
    if table.split and table.split != split:
        raise BenchError(f"{path} holds predictions for the {table.split} split; pass "
                         f"--split {table.split}")  # fmt: skip
    try:
        index = np.array([int(i) for i in table.index], dtype=np.int64)
    except ValueError:
        first = next(i for i in table.index if not i.lstrip("-").isdigit())
        raise BenchError(
            f"{path}: row {first!r} is an image file, not an index in a split; "
            "to score a split, run bench predict on its npz (--split)"
        ) from None
    order = np.argsort(index, kind="stable")
    if not np.array_equal(index[order], np.arange(len(index))):
        raise BenchError(f"{path}: the index column is not 0..{len(index) - 1}, each once; "
                         "write the file again with bench predict --out")  # fmt: skip
    return table.scores[order]


def read_for_evaluate(path: Path, *, split: str) -> tuple[np.ndarray, tuple[str, ...] | None]:
    """``(scores ordered by index, class names or None)`` of a ``bench predict`` CSV or a
    medmnist-format file (``index,score...``, no header, no class names)."""
    from bench.results.predictions import read_predictions

    path = Path(path)
    if is_predict_csv(path):
        table = read_table(path)
        return split_scores(table, path=path, split=split), table.class_names
    return read_predictions(path), None
