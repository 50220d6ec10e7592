"""Prediction files in the ``medmnist`` format: ``index,score...`` rows under the standard
name, so ``python -m medmnist evaluate`` and ``bench evaluate`` re-score them."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
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


# ----------------------------------------------------------------------------- test predictions

TEST_PREDICTIONS = "test_predictions.npz"  # in a run folder; records/<run_id>.npz in leaderboards
_FIT = "fit."  # key prefix of one fit's probabilities
PROB_DTYPE = np.float32  # float16 ties saturated probabilities (see save_test_predictions)


@dataclass(frozen=True)
class TestPredictions:
    """A record's test evidence: the test labels, each fit's probabilities (float32), the
    fits the single-fit mean averages (``chosen``), the seed and selected ensembles."""

    __test__ = False  # not a pytest class

    dataset: str
    task: str
    labels: np.ndarray
    fits: dict[str, np.ndarray]
    chosen: tuple[str, ...]
    seed_ensemble: np.ndarray | None = None
    ensemble: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.labels)


def save_test_predictions(path: Path, preds: TestPredictions) -> None:
    """Write ``preds`` as one compressed ``.npz``, atomically. Probabilities are kept as float32:
    float16 rounds the saturated probabilities of a confident model (0.9995 and 1.0 become
    one value), which tied items apart and lowered a PneumoniaMNIST AUC by up to 0.013."""
    from bench.files import atomic_path

    arrays = {f"{_FIT}{name}": np.asarray(s, dtype=PROB_DTYPE) for name, s in preds.fits.items()}
    for key in ("seed_ensemble", "ensemble"):
        if getattr(preds, key) is not None:
            arrays[key] = np.asarray(getattr(preds, key), dtype=PROB_DTYPE)
    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, labels=np.asarray(preds.labels, dtype=np.int16),
                            dataset=np.array(preds.dataset), task=np.array(preds.task),
                            chosen=np.array(preds.chosen, dtype=str), **arrays)  # fmt: skip


def load_test_predictions(path: Path) -> TestPredictions:
    """Read a file :func:`save_test_predictions` wrote; a bad one is one BenchError."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        fits = {k[len(_FIT):]: v for k, v in arrays.items() if k.startswith(_FIT)}
        return TestPredictions(
            dataset=str(arrays["dataset"]), task=str(arrays["task"]), labels=arrays["labels"],
            fits=fits, chosen=tuple(str(c) for c in arrays["chosen"]),
            seed_ensemble=arrays.get("seed_ensemble"), ensemble=arrays.get("ensemble"),
        )  # fmt: skip
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        reason = str(exc).split(". ")[0] or type(exc).__name__  # numpy's pickle hint dropped
        fix = "restore it or re-run the record"
        raise BenchError(f"{path}: not a bench test-predictions file ({reason}); {fix}") from None
