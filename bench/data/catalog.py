"""The dataset catalog: every MedMNIST subset (from ``medmnist.INFO``), Medical MNIST,
and ``folder:PATH`` / ``npz:PATH`` user datasets."""

from __future__ import annotations

from pathlib import Path

from bench.data.spec import DatasetSpec
from bench.registry import Registry

# The built-in datasets (bench.data.builtin registers them when imported, on first lookup).
DATASETS: Registry[DatasetSpec] = Registry(
    "dataset", group="bench.datasets", builtins=("bench.data.builtin",)
)


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add a dataset spec to the catalog (plugins use this too)."""
    return DATASETS.register(spec.name, spec, origin=spec.kind)


def get_dataset(name: str) -> DatasetSpec:
    """Spec for ``name``; ``folder:PATH`` and ``npz:PATH`` are read from disk."""
    if name.startswith("folder:"):
        from bench.data.folder import folder_spec

        return folder_spec(Path(name[len("folder:") :]))
    if name.startswith("npz:"):
        from bench.data.npzfile import npz_spec

        return npz_spec(Path(name[len("npz:") :]))
    return DATASETS.get(name)


def list_datasets() -> list[DatasetSpec]:
    """Every catalog dataset, MedMNIST order first."""
    return [DATASETS.get(n) for n in DATASETS.names()]
