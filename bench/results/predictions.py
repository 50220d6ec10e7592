"""Prediction files in the ``medmnist`` format: ``index,score...`` rows under the standard
name, so ``python -m medmnist evaluate`` and ``bench evaluate`` re-score them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.config import size_flag
from bench.errors import BenchError
from bench.files import atomic_write_text


def prediction_file_name(
    dataset: str, data_size: int, split: str, auc: float, acc: float, run: str
) -> str:
    """The medmnist standard name: ``{flag}{size_flag}_{split}_[AUC]0.912_[ACC]0.851@{run}.csv``."""
    return f"{dataset}{size_flag(data_size)}_{split}_[AUC]{auc:.3f}_[ACC]{acc:.3f}@{run}.csv"


def write_predictions(path: Path, scores: np.ndarray) -> None:
    """Rows ``index,score...`` with no header, as ``medmnist.Evaluator`` saves them."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 1:
        scores = scores[:, None]
    lines = [",".join([str(i), *(repr(float(v)) for v in row)]) for i, row in enumerate(scores)]
    atomic_write_text(Path(path), "\n".join(lines) + "\n")


def read_predictions(path: Path) -> np.ndarray:
    """Scores from a medmnist-format file, sorted by index; a bad file is one BenchError."""
    path = Path(path)
    try:
        raw = np.loadtxt(path, delimiter=",", ndmin=2, dtype=np.float64)
    except (OSError, ValueError) as exc:
        raise BenchError(
            f"{path}: not a medmnist prediction file (rows of index,score...): {exc}"
        ) from None
    if raw.shape[1] < 2:
        raise BenchError(f"{path}: each row needs an index and at least one score")
    order = np.argsort(raw[:, 0], kind="stable")
    return raw[order, 1:]
