"""The built-in datasets: every MedMNIST subset (from ``medmnist.INFO``, in its order), then
Medical MNIST. Importing this module registers them; ``catalog.DATASETS`` imports it on its
first lookup."""

from __future__ import annotations

from bench.data.catalog import register_dataset
from bench.data.folder import split_counts
from bench.data.info import MEDMNIST_CITATION, medmnist_info
from bench.data.spec import DatasetSpec

MEDICAL_MNIST_CLASSES = ("AbdomenCT", "BreastMRI", "CXR", "ChestCT", "Hand", "HeadCT")
# Files per class folder in the Kaggle release (58,954 JPEGs); split sizes are computed
# from these by bench.data.folder.split_counts, the same rule the loader applies.
MEDICAL_MNIST_COUNTS = {c: 8954 if c == "BreastMRI" else 10000 for c in MEDICAL_MNIST_CLASSES}


def medmnist_specs() -> list[DatasetSpec]:
    """One spec per ``medmnist.INFO`` entry, in its order."""
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


def medical_mnist_spec() -> DatasetSpec:
    """Medical MNIST (Kaggle): a folder dataset of six classes at 64 px."""
    return DatasetSpec(
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


def register_builtins() -> None:
    """Register the MedMNIST subsets, then Medical MNIST."""
    for spec in (*medmnist_specs(), medical_mnist_spec()):
        register_dataset(spec)


register_builtins()
