"""A plain install: the wheel built from this source tree, installed into a fresh venv, runs
``bench models`` and a 30-second ``bench run`` from an empty directory. The search spaces and
BreastMNIST travel inside the wheel; nothing is read from the checkout.

The fresh venv borrows its dependencies (torch, optuna, ...) from the running interpreter
through a ``.pth`` path line: a path line adds the folder to ``sys.path`` without processing
the ``.pth`` files in it, so the running venv's editable install of ``bench`` stays out and the
wheel's copy is the one imported (checked).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import bench
from bench.models.registry import get_model_spec, list_models

REPO = Path(bench.__file__).resolve().parents[1]


def clean_env(**extra: str) -> dict:
    """A user's environment: less what would put another ``bench`` on the path (a
    ``PYTHONPATH`` entry) and the suite's ``OMP_NUM_THREADS`` (tests/conftest.py), so bench
    chooses its threads from the idle cores as it does for a user."""
    drop = ("PYTHONPATH", "BENCH_DATA_DIR", "OMP_NUM_THREADS")
    return {k: v for k, v in os.environ.items() if k not in drop} | extra


def call(*cmd, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``cmd`` (in :func:`clean_env` by default); fail the test with its output when it
    exits non-zero."""
    argv = [str(c) for c in cmd]
    done = subprocess.run(argv, cwd=cwd, env=env or clean_env(), capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, f"{argv} -> {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def builtin_families(*, img_size: int | None = None, ndim: int | None = None) -> set[str]:
    """The built-in families (of ``img_size`` and ``ndim`` when given)."""
    out = set()
    for name in list_models():
        spec = get_model_spec(name)
        if spec.source != "built-in":
            continue
        if (img_size is None or img_size in spec.sizes) and (ndim is None or spec.ndim == ndim):
            out.add(name)
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """The wheel (built offline with the running venv's setuptools, from a copy of the
    sources so the build leaves nothing in the checkout), pip-installed into a fresh venv."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    shutil.copytree(REPO / "bench", src / "bench", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    pip = ("-m", "pip", "--disable-pip-version-check")
    # cwd: root, as pip takes a bench.egg-info in its cwd for an installed bench
    call(sys.executable, *pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", root / "dist", src, cwd=root)  # fmt: skip
    (wheel,) = (root / "dist").glob("bench-*.whl")
    venv = root / "venv"
    call(sys.executable, "-m", "venv", venv, cwd=root)
    python = venv / "bin" / "python"
    call(python, *pip, "install", "--no-deps", "--no-index", "--quiet", wheel, cwd=root)
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = call(python, "-c", purelib, cwd=root).stdout.strip()
    ours = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    Path(site, "_borrowed_deps.pth").write_text("\n".join(ours) + "\n")
    env = clean_env(BENCH_CACHE_DIR=str(root / "cache"))
    empty = root / "empty"
    empty.mkdir()
    return {"wheel": wheel, "venv": venv, "env": env, "cwd": empty, "root": root}


@pytest.mark.slow
def test_the_wheel_holds_the_search_spaces(installed) -> None:
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    for family in ["common", *builtin_families()]:
        assert f"bench/search_spaces/{family}.yaml" in names, family
    assert "bench/data/embedded/breastmnist.npz" in names


@pytest.mark.slow
def test_bench_models_from_an_empty_dir_shows_every_space(installed) -> None:
    venv, cwd, env = installed["venv"], installed["cwd"], installed["env"]
    where = call(venv / "bin" / "python", "-c", "import bench; print(bench.__file__)",
                 cwd=cwd, env=env).stdout.strip()  # fmt: skip
    # the wheel's bench, not the checkout's
    assert Path(where).resolve().is_relative_to(venv.resolve()), where
    done = call(venv / "bin" / "bench", "models", "--format", "json", cwd=cwd, env=env)
    rows = {r["name"]: r for r in json.loads(done.stdout) if r["kind"] == "model"}
    assert builtin_families() <= set(rows)
    for family in builtin_families():
        space = rows[family]["search_space"]
        inside = space and Path(space).resolve().is_relative_to(venv.resolve())
        assert inside, (family, space)
    assert not any(cwd.iterdir())


@pytest.mark.slow
def test_a_30s_run_from_an_empty_dir_writes_a_record(installed) -> None:
    """The README's first command, at 30 s: the default families are searched from the
    wheel's spaces and a record is written; the cwd stays empty."""
    venv, cwd, env = installed["venv"], installed["cwd"], installed["env"]
    out = installed["root"] / "runs"
    done = subprocess.run(
        [venv / "bin" / "bench", "run", "--dataset", "breastmnist", "--budget", "30s",
         "--out", out],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = out.glob("*/record.json")
    record = json.loads(path.read_text())
    assert record["status"] == "ok" and record["n_complete"] >= 1 and record["n_seeds"] >= 1
    assert record["family"] in builtin_families(img_size=28, ndim=2)
    assert record["dataset"] == "breastmnist" and 0.0 <= record["test_auc_mean"] <= 1.0
    assert not any(cwd.iterdir())
