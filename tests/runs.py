"""Helpers for tests that run ``python -m bench`` in subprocesses on tiny data with the tiny
test families, and read back their studies and records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna

from bench.search.storage import open_storage

TESTS = Path(__file__).resolve().parent
TINY = ["--plugins", "bench_tiny_plugin", "--families", "tiny_mlp", "--augment", "none"]
ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    "OMP_NUM_THREADS": "1",
}


def bench(*args: str, env: dict | None = None, **kw) -> subprocess.Popen:
    """``python -m bench ARGS`` started in the background, text pipes."""
    return subprocess.Popen([sys.executable, "-m", "bench", *args], env={**ENV, **(env or {})},
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            **kw)  # fmt: skip


def records(out: Path) -> list[dict]:
    """The record.json of every run folder in ``out``."""
    return [json.loads(p.read_text()) for p in sorted(Path(out).glob("*/record.json"))]


def only_journal(out: Path) -> Path:
    """The one journal study file of the run folder ``out``."""
    (journal,) = sorted((Path(out) / "studies").glob("*.journal"))
    return journal


def load_study(url: str, name: str):
    """The study ``name`` in storage ``url`` (through bench's storage opening)."""
    storage = open_storage(url, default_journal=Path("/nonexistent"))
    return optuna.load_study(study_name=name, storage=storage)
