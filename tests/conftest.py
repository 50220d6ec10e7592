"""Shared fixtures: tiny synthetic datasets in MedMNIST layout, the shared data folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

TASK_LABELS = {
    "binary-class": 2,
    "multi-class": 4,
    "ordinal-regression": 5,
    "multi-label, binary-class": 3,
}

os.environ.setdefault("OMP_NUM_THREADS", "2")


def make_npz(
    path: Path,
    *,
    task: str = "binary-class",
    n_channels: int = 1,
    size: int = 28,
    counts: tuple[int, int, int] = (48, 16, 16),
    seed: int = 0,
    signal: bool = True,
    ndim: int = 2,
) -> Path:
    """Write a tiny npz in MedMNIST layout (volumes ``(N, D, H, W)`` with ``ndim=3``); with
    ``signal`` the label shifts brightness so a model can learn it. A sidecar JSON names the
    task."""
    rng = np.random.default_rng(seed)
    n_out = TASK_LABELS[task]
    arrays = {}
    for split, n in zip(("train", "val", "test"), counts, strict=True):
        if task == "multi-label, binary-class":
            labels = rng.integers(0, 2, size=(n, n_out))
            level = labels[:, 0]
        else:
            labels = (np.arange(n) % n_out)[:, None]
            rng.shuffle(labels)
            level = labels[:, 0]
        shape = (n, *(size,) * ndim) + ((n_channels,) if n_channels > 1 else ())
        images = rng.integers(0, 120, size=shape)
        if signal:
            bright = (level * (120 // max(1, n_out - 1))).reshape((n,) + (1,) * (len(shape) - 1))
            images = images + bright
        arrays[f"{split}_images"] = np.clip(images, 0, 255).astype(np.uint8)
        arrays[f"{split}_labels"] = labels.astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    path.with_name(path.name + ".json").write_text(json.dumps({"task": task}))
    return path


def make_folder(root: Path, counts: dict[str, int], *, size=(16, 16), mode="L", seed=0) -> Path:
    """Class subfolders of random JPEGs, ``counts`` images per class."""
    rng = np.random.default_rng(seed)
    for cls, n in counts.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
            pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
            Image.fromarray(pixels, mode).save(root / cls / f"img{i:03d}.jpeg", quality=95)
    return root


@pytest.fixture
def tiny_npz(tmp_path):
    """Factory: ``tiny_npz(task=..., n_channels=..., size=...)`` -> ``npz:PATH`` name."""

    def factory(**kw) -> str:
        name = f"tiny_{kw.get('task', 'binary-class').replace(', ', '_').replace('-', '_')}"
        name += f"_{kw.get('n_channels', 1)}c_{kw.get('size', 28)}_{kw.get('seed', 0)}"
        name += "_3d.npz" if kw.get("ndim", 2) == 3 else ".npz"
        return "npz:" + str(make_npz(tmp_path / name, **kw))

    return factory


@pytest.fixture
def shared_data() -> Path:
    """The real MedMNIST files in ../shared/data; skips when absent."""
    if not (SHARED_DATA / "breastmnist.npz").is_file():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


@pytest.fixture
def run_bench(tmp_path):
    """Run ``python -m bench ARGS`` in a subprocess (cache dir in tmp_path) ->
    CompletedProcess with text stdout/stderr."""
    import subprocess
    import sys

    def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        full_env = {k: v for k, v in os.environ.items() if k != "BENCH_DATA_DIR"}
        full_env.update(BENCH_CACHE_DIR=str(tmp_path / "cache"), **(env or {}))
        return subprocess.run(
            [sys.executable, "-m", "bench", *map(str, args)],
            capture_output=True,
            text=True,
            env=full_env,
            timeout=600,
        )

    return run


@pytest.fixture(scope="session")
def finished_train_run(tmp_path_factory) -> tuple[Path, Path]:
    """One finished ``bench train`` of the tiny MLP (a plugin family), 3 epochs, two seeds, on a
    tiny npz (96/32/32 images), made once a session and shared: ``(npz path, run folder)``.
    A test that changes the folder works on a copy (``shutil.copytree``)."""
    import subprocess
    import sys

    from runs import ENV

    root = tmp_path_factory.mktemp("finished_train")
    npz = make_npz(root / "data" / "tiny.npz", counts=(96, 32, 32))
    done = subprocess.run(
        [sys.executable, "-m", "bench", "train", "--dataset", f"npz:{npz}", "--model", "tiny_mlp",
         "--epochs", "3", "--seeds", "2", "--out", str(root / "runs"), "--device", "cpu",
         "--quiet", "--plugins", "bench_tiny_plugin"],
        env=ENV, text=True, capture_output=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (run_dir,) = (root / "runs").iterdir()
    return npz, run_dir


@pytest.fixture
def model_registry():
    """The model registry, restored after the test so test registrations don't leak."""
    from bench.models.registry import MODELS

    saved = MODELS.snapshot()  # built-ins and entry points loaded before the snapshot
    try:
        yield MODELS
    finally:
        MODELS.restore(saved)


@pytest.fixture
def one_thread():
    """torch on one thread for the test (model tests: steadier, and as a busy CPU runs)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


E2E = Path(__file__).resolve().parent / "e2e"


def pytest_collection_modifyitems(config, items) -> None:
    """Every test under ``tests/e2e`` (runs, faults, PostgreSQL, AutoGluon, plugin installs,
    large sizes) is marked ``slow``: ``pytest -q`` runs ``tests/unit`` alone, and
    ``pytest -q tests -m "not slow"`` deselects the end-to-end tier from a whole-suite call."""
    for item in items:
        if E2E in item.path.parents:
            item.add_marker(pytest.mark.slow)
