"""What a dataset is (``DatasetSpec``) and the small facts its loaders share: the
multi-label task string, the size rule. A leaf module: the loaders (``folder``, ``medmnist``,
``npzfile``, ``splits``) import it, and the catalog sits above them."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.errors import DataError

MULTI_LABEL = "multi-label, binary-class"
FOLDER_SIZE_RANGE = (8, 1024)  # folder images are resized on load: any --size in this range


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
