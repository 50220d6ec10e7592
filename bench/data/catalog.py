"""The dataset catalog: every MedMNIST subset (from ``medmnist.INFO``), Medical MNIST,
and ``folder:PATH`` / ``npz:PATH`` user datasets."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench.errors import DataError
from bench.registry import Registry

MEDMNIST_CITATION = (
    "Yang et al., MedMNIST v2, Scientific Data 10:41 (2023), doi:10.1038/s41597-022-01721-8"
)
MULTI_LABEL = "multi-label, binary-class"
FOLDER_SIZE_RANGE = (8, 1024)  # folder images are resized on load: any --size in this range
MEDICAL_MNIST_CLASSES = ("AbdomenCT", "BreastMRI", "CXR", "ChestCT", "Hand", "HeadCT")
# Files per class folder in the Kaggle release (58,954 JPEGs); split sizes are computed
# from these by bench.data.folder.split_counts, the same rule the loader applies.
MEDICAL_MNIST_COUNTS = {c: 8954 if c == "BreastMRI" else 10000 for c in MEDICAL_MNIST_CLASSES}


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset is, independent of whether it is on disk.

    Attributes:
        name: catalog name (MedMNIST flag, ``medical_mnist``, ``folder:...``, ``npz:...``).
        task: the ``medmnist.INFO`` task string.
        n_channels: 1 or 3.
        class_names: one per class (multi-class) or per label (multi-label).
        n_samples: split sizes {"train", "val", "test"} (empty when unknown until loaded).
        sizes: data sizes available (28/64/128/224).
        kind: ``medmnist`` | ``folder`` | ``npz``.
        ndim: 2 for images, 3 for volumes.
        path: the folder or npz file for user datasets.
        md5: expected MD5 per data size (MedMNIST only).
        title: display name (``medmnist.INFO``'s class name, ``Medical MNIST``).
        published_as: the MedMNIST flag whose published rows apply (catalog MedMNIST sets,
            and ``npz:`` files named after one, ``breastmnist.npz``/``breastmnist_64.npz``).
    """

    name: str
    task: str
    n_channels: int
    class_names: tuple[str, ...]
    n_samples: dict[str, int] = field(default_factory=dict)
    sizes: tuple[int, ...] = (28,)
    license: str = ""
    citation: str = ""
    kind: str = "medmnist"
    ndim: int = 2
    path: str | None = None
    md5: dict[int, str] = field(default_factory=dict)
    title: str = ""
    published_as: str | None = None

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def multilabel(self) -> bool:
        return self.task == MULTI_LABEL

    @property
    def n_outputs(self) -> int:
        """Width of the model head: one logit per class (per label for multi-label)."""
        return self.n_classes

    def file_name(self, size: int) -> str:
        """The medmnist file name for ``size`` (``breastmnist.npz``, ``breastmnist_64.npz``)."""
        from bench.config import size_flag

        return f"{self.name}{size_flag(size)}.npz"

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "task": self.task,
            "n_channels": self.n_channels,
            "n_classes": self.n_classes,
            "class_names": list(self.class_names),
            "n_samples": dict(self.n_samples),
            "sizes": list(self.sizes),
            "size_range": list(FOLDER_SIZE_RANGE) if self.kind == "folder" else None,
            "ndim": self.ndim,
            "kind": self.kind,
            "license": self.license,
        }


DATASETS: Registry[DatasetSpec] = Registry("dataset", group="bench.datasets")
_BUILTINS_LOADED = False


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add a dataset spec to the catalog (plugins use this too)."""
    return DATASETS.register(spec.name, spec, origin=spec.kind)


def medmnist_info():
    """The ``medmnist.info`` module (INFO, DEFAULT_ROOT) without importing torch.

    ``import medmnist.info`` runs the package ``__init__``, which imports torch (seconds);
    ``info.py`` itself only needs ``os``, so it is loaded on its own unless medmnist is
    already imported.
    """
    import importlib.util

    if "medmnist.info" in sys.modules:
        return sys.modules["medmnist.info"]
    if "bench._medmnist_info" not in sys.modules:
        pkg = importlib.util.find_spec("medmnist")
        if pkg is None or not pkg.submodule_search_locations:
            raise DataError("the medmnist package is not installed; pip install medmnist")
        path = Path(list(pkg.submodule_search_locations)[0]) / "info.py"
        loader = importlib.util.spec_from_file_location("bench._medmnist_info", path)
        module = importlib.util.module_from_spec(loader)
        loader.loader.exec_module(module)
        sys.modules["bench._medmnist_info"] = module
    return sys.modules["bench._medmnist_info"]


def _medmnist_specs() -> list[DatasetSpec]:
    specs = []
    for flag, info in medmnist_info().INFO.items():
        is3d = flag.endswith("3d")
        sizes = tuple(s for s in (28, 64, 128, 224) if s == 28 or f"MD5_{s}" in info)
        md5 = {s: info["MD5" if s == 28 else f"MD5_{s}"] for s in sizes}
        labels = info["label"]
        specs.append(
            DatasetSpec(
                name=flag,
                task=info["task"],
                n_channels=int(info["n_channels"]),
                class_names=tuple(labels[str(i)] for i in range(len(labels))),
                n_samples=dict(info["n_samples"]),
                sizes=sizes,
                license=info.get("license", ""),
                citation=MEDMNIST_CITATION,
                kind="medmnist",
                ndim=3 if is3d else 2,
                md5=md5,
                title=info["python_class"],
                published_as=flag,
            )
        )
    return specs


def _load_builtins() -> None:
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    from bench.data.folder import split_counts

    for spec in _medmnist_specs():
        register_dataset(spec)
    register_dataset(
        DatasetSpec(
            name="medical_mnist",
            task="multi-class",
            n_channels=1,
            class_names=MEDICAL_MNIST_CLASSES,
            n_samples=split_counts(MEDICAL_MNIST_COUNTS),
            sizes=(64,),
            license="see the Kaggle dataset page (andrewmvd/medical-mnist)",
            citation="Medical MNIST, Kaggle (apolo-analytics / andrewmvd)",
            kind="folder",
            title="Medical MNIST",
        )
    )


def get_dataset(name: str) -> DatasetSpec:
    """Spec for ``name``; ``folder:PATH`` and ``npz:PATH`` are read from disk."""
    if name.startswith("folder:"):
        from bench.data.folder import folder_spec

        return folder_spec(Path(name[len("folder:") :]))
    if name.startswith("npz:"):
        from bench.data.npzfile import npz_spec

        return npz_spec(Path(name[len("npz:") :]))
    _load_builtins()
    return DATASETS.get(name)


def medmnist_flag(stem: str) -> str | None:
    """The MedMNIST flag a file stem names (``breastmnist``, ``breastmnist_64``), or None."""
    flag, _, size = stem.rpartition("_")
    if not (size.isdigit() and flag):
        flag = stem
    return flag if flag in medmnist_info().INFO else None


def list_datasets() -> list[DatasetSpec]:
    """Every catalog dataset, MedMNIST order first."""
    _load_builtins()
    DATASETS.load_plugins()
    return [DATASETS.get(n) for n in DATASETS._entries]


def check_size(spec: DatasetSpec, size: int) -> None:
    """Raise a one-line DataError if ``spec`` has no data at ``size``.

    Folder datasets are resized on load, so any size in 8..1024 is fine for them.
    """
    if spec.kind == "folder":
        low, high = FOLDER_SIZE_RANGE
        if not low <= size <= high:
            raise DataError(f"{spec.name}: size {size} is out of range; use {low} to {high}")
        return
    if size not in spec.sizes:
        avail = ", ".join(str(s) for s in spec.sizes)
        raise DataError(f"{spec.name} has no size {size}; available sizes: {avail}")
