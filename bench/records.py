"""Result records (one JSON per final evaluation, written once, atomically) and prediction
files in the ``medmnist`` format."""

from __future__ import annotations

import json
import os
import platform
import secrets
import subprocess
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import BenchError

RECORD_FILE = "record.json"


def utc_stamp() -> str:
    """``20250301T101500Z``: the time part of a run id."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def utc_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def make_run_id(dataset: str, data_size: int, family: str) -> str:
    """``{dataset}.{data_size}.{family}.{utcstamp}.{rand4}`` with path-safe parts."""
    safe = lambda s: "".join(c if c.isalnum() or c in "_-" else "-" for c in str(s))  # noqa: E731
    return f"{safe(dataset)}.{data_size}.{safe(family)}.{utc_stamp()}.{secrets.token_hex(2)}"


def _synced_temp(path: Path, text: str) -> str:
    """Write ``text`` to a synced temporary file beside ``path``; return its name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and ``os.replace`` (never half-written)."""
    path = Path(path)
    tmp = _synced_temp(path, text)
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_once_json(path: Path, data: dict) -> None:
    """Write ``data`` as JSON at ``path``; refuse to overwrite an existing record."""
    path = Path(path)
    if path.exists():
        raise BenchError(f"{path} already exists; records are write-once")
    text = json.dumps(data, indent=2, sort_keys=True, default=_jsonable) + "\n"
    tmp = _synced_temp(path, text)
    try:
        os.link(tmp, path)  # fails if a record appeared meanwhile: never overwritten
    except FileExistsError:
        raise BenchError(f"{path} already exists; records are write-once") from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def _jsonable(obj: Any):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def read_record(path: Path) -> dict:
    """Load one record; a malformed one is a BenchError naming the file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BenchError(f"{path}: not a readable record ({exc})") from None
    if not isinstance(data, dict) or "run_id" not in data or "dataset" not in data:
        raise BenchError(f"{path}: not a bench record (no run_id/dataset)")
    return data


def git_sha() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def provenance() -> dict:
    """Versions and code identity for a record."""
    import importlib.metadata as md

    def ver(pkg: str) -> str:
        try:
            return md.version(pkg)
        except md.PackageNotFoundError:
            return ""

    from bench import __version__

    return {
        "bench_version": __version__,
        "git_sha": git_sha(),
        "torch_version": ver("torch"),
        "optuna_version": ver("optuna"),
        "medmnist_version": ver("medmnist"),
        "python_version": platform.python_version(),
    }


def prediction_file_name(
    dataset: str, data_size: int, split: str, auc: float, acc: float, run: str
) -> str:
    """The medmnist standard name: ``{flag}{size_flag}_{split}_[AUC]0.912_[ACC]0.851@{run}.csv``."""
    size_flag = "" if data_size == 28 else f"_{data_size}"
    return f"{dataset}{size_flag}_{split}_[AUC]{auc:.3f}_[ACC]{acc:.3f}@{run}.csv"


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


# The search columns of a record made without a search (bench train, bench peer).
NO_SEARCH = {
    "n_trials": 0,
    "n_complete": 0,
    "n_pruned": 0,
    "n_failed": 0,
    "sampler": "",
    "pruner": "",
    "study_name": "",
    "storage_kind": "",
}


def augment_train_seconds(fits: list[dict]) -> float:
    """Seconds the final fits spent training augmentation models (DCGAN), from fits.json."""
    return round(sum(float(f["augment_info"].get("dcgan_train_s", 0.0)) for f in fits), 3)
