"""One entry point for every dataset kind: ``load_splits(name, size, data_dir)``."""

from __future__ import annotations

import os

from bench.data.catalog import get_dataset
from bench.data.spec import DatasetSpec
from bench.data.splits import Splits


def default_size(spec: DatasetSpec) -> int:
    """28 where available, else the smallest size the dataset has."""
    return 28 if 28 in spec.sizes else min(spec.sizes)


def load_splits(
    name: str | DatasetSpec, size: int | None = None, data_dir: str | os.PathLike | None = None
) -> Splits:
    """Load all three splits of dataset ``name`` at data size ``size`` as uint8 arrays."""
    spec = get_dataset(name) if isinstance(name, str) else name
    size = default_size(spec) if size is None else size
    if spec.kind == "medmnist":
        from bench.data.medmnist import load_medmnist

        return load_medmnist(spec, size, data_dir)
    if spec.kind == "folder":
        from bench.data.folder import load_folder

        return load_folder(spec, size, data_dir)
    if spec.kind == "npz":
        from bench.data.npzfile import load_npz

        return load_npz(spec, size)
    raise AssertionError(f"unknown dataset kind {spec.kind}")
