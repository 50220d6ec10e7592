"""The MedMNIST ``INFO`` table, read without importing torch; the flag a file stem names;
the MedMNIST citation. A leaf module."""

from __future__ import annotations

import sys
from pathlib import Path

from bench.errors import DataError

MEDMNIST_CITATION = (
    "Yang et al., MedMNIST v2, Scientific Data 10:41 (2023), doi:10.1038/s41597-022-01721-8"
)


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


def medmnist_flag(stem: str) -> str | None:
    """The MedMNIST flag a file stem names (``breastmnist``, ``breastmnist_64``), or None."""
    flag, _, size = stem.rpartition("_")
    if not (size.isdigit() and flag):
        flag = stem
    return flag if flag in medmnist_info().INFO else None
