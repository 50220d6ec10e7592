"""The published MedMNIST v2 tables, shipped with the package, and their one loader.

``medmnist_v2_2d.csv`` has one line per dataset and ``{method}_{auc,acc}`` columns;
``medmnist_v2_3d.csv`` one line per method and ``{dataset}_{auc,acc}`` columns. Both are
copied unchanged from the paper (see README.md beside them).
"""

from __future__ import annotations

import csv
from functools import lru_cache
from importlib import resources

from bench.errors import BenchError

CITATION = "Yang et al., MedMNIST v2, Scientific Data 10:41 (2023), doi:10.1038/s41597-022-01721-8"
PUBLISHED = "MedMNIST v2"
UPSAMPLED = "28 px images upsampled to 224 px (nearest neighbour)"
FILES = ("medmnist_v2_2d.csv", "medmnist_v2_3d.csv")

# Column prefix in the 2D file -> (table label, family, model input size).
METHODS_2D = {
    "resnet18_28": ("ResNet-18 (28)", "resnet18", 28),
    "resnet18_224": ("ResNet-18 (224)", "resnet18", 224),
    "resnet50_28": ("ResNet-50 (28)", "resnet50", 28),
    "resnet50_224": ("ResNet-50 (224)", "resnet50", 224),
    "autosklearn": ("auto-sklearn", "autosklearn", 28),
    "autokeras": ("AutoKeras", "autokeras", 28),
    "google_automl_vision": ("Google AutoML Vision", "google_automl_vision", 28),
}
# Method in the 3D file -> table label.
METHODS_3D = {
    "resnet18_2.5d": "ResNet-18 + 2.5D",
    "resnet18_3d": "ResNet-18 + 3D",
    "resnet18_acs": "ResNet-18 + ACS",
    "resnet50_2.5d": "ResNet-50 + 2.5D",
    "resnet50_3d": "ResNet-50 + 3D",
    "resnet50_acs": "ResNet-50 + ACS",
    "autosklearn": "auto-sklearn",
    "autokeras": "AutoKeras",
}


def read_table(name: str) -> list[dict]:
    """The lines of one shipped reference CSV as dicts."""
    try:
        text = resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
    except OSError as exc:
        raise BenchError(f"published reference table {name} is missing ({exc})") from None
    return list(csv.DictReader(text.splitlines()))


@lru_cache(maxsize=1)
def _rows() -> tuple[dict, ...]:
    rows = []
    for line in read_table(FILES[0]):
        for prefix, (label, family, img_size) in _methods_2d(line):
            rows.append(_row(label, family, line["dataset"], img_size, line, prefix))
    for line in read_table(FILES[1]):
        method = line["method"]
        if method not in METHODS_3D:
            raise BenchError(f"{FILES[1]}: unknown published method {method!r}")
        for dataset in _datasets_3d(line):
            rows.append(_row(METHODS_3D[method], method, dataset, 28, line, dataset))
    return tuple(rows)


def load_reference() -> list[dict]:
    """Published rows (one per method and dataset) as result rows with source=reference."""
    return [dict(r) for r in _rows()]


def published_rows(dataset: str) -> list[dict]:
    """The published rows of ``dataset`` (a MedMNIST flag), in table order."""
    return [dict(r) for r in _rows() if r["dataset"] == dataset]


def _methods_2d(line: dict):
    prefixes = []
    for col in line:
        if col.endswith(("_auc", "_acc")) and col[:-4] not in prefixes:
            prefixes.append(col[:-4])
    unknown = [p for p in prefixes if p not in METHODS_2D]
    if unknown:
        raise BenchError(f"{FILES[0]}: unknown published method columns {unknown}")
    return [(p, METHODS_2D[p]) for p in prefixes]


def _datasets_3d(line: dict) -> list[str]:
    """The datasets of a 3D line, in the paper's table order."""
    return [c[: -len("_auc")] for c in line if c.endswith("_auc")]


def _row(label, family, dataset, img_size, line, prefix) -> dict:
    from bench.data.catalog import get_dataset

    try:
        auc, acc = float(line[f"{prefix}_auc"]), float(line[f"{prefix}_acc"])
    except (KeyError, TypeError, ValueError):
        raise BenchError(f"bad or missing {prefix}_auc/{prefix}_acc value") from None
    return {
        "source": "reference",
        "method": label,
        "family": family,
        "dataset": dataset,
        "task": get_dataset(dataset).task,
        "data_size": 28,
        "img_size": img_size,
        "test_auc_mean": auc,
        "test_acc_mean": acc,
        "citation": CITATION,
        "info": UPSAMPLED if img_size != 28 else "",
    }
