"""``benchmarks/gpu_check.sh --dry-run`` on a CPU: it names every wheel missing from the
folder it would install from (and how to fetch them), exits 1, and passes once each listed
distribution has a wheel that fits the GPU machine's Python; it prints the plan either way."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FITTING = [
    "optuna-5.1.0-py3-none-any.whl",
    "alembic-1.20.1-py3-none-any.whl",
    "colorlog-6.12.0-py3-none-any.whl",
    "sqlalchemy-2.1.9-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "mako-1.4.3-py3-none-any.whl",
    "medmnist-3.0.2-py3-none-any.whl",
    "fire-0.7.1-py3-none-any.whl",
    "termcolor-3.3.0-py3-none-any.whl",
    "psycopg-3.3.9-py3-none-any.whl",
    "psycopg_binary-3.3.9-cp312-cp312-manylinux_2_28_x86_64.whl",
    "monai-1.6.1-py3-none-any.whl",
]


def dry_run(wheels: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "GPU_CHECK_WHEELS": str(wheels), "GPU_CHECK_PYTHON": sys.executable}
    return subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run"],
                          capture_output=True, text=True, env=env, timeout=60)  # fmt: skip


def test_dry_run_names_what_is_missing_and_how_to_fetch_it(tmp_path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    # the wrong Python or platform does not count
    (wheels / "sqlalchemy-2.1.9-cp311-cp311-manylinux_2_17_x86_64.whl").touch()
    (wheels / "psycopg_binary-3.3.9-cp312-cp312-macosx_11_0_arm64.whl").touch()
    (wheels / "optuna-5.0.0-py3-none-any.whl").touch()  # not the pinned version
    done = dry_run(wheels)
    assert done.returncode == 1, done.stdout + done.stderr
    missing = [x for x in done.stdout.splitlines() if x.startswith("missing wheel: ")]
    assert len(missing) == len(FITTING), done.stdout
    assert any("sqlalchemy==2.1.9" in x for x in missing)
    assert "pip download --no-deps --only-binary=:all: --python-version 3.12" in done.stdout
    assert "plan (one GPU" in done.stdout and "dry run: something is missing" in done.stdout


def test_dry_run_passes_with_every_wheel(tmp_path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for name in FITTING:
        (wheels / name).touch()
    done = dry_run(wheels)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "missing" not in done.stdout.replace("something is missing", "")
    assert "4. tests    pytest -m gpu" in done.stdout
    assert "dry run: everything the check needs is here" in done.stdout
