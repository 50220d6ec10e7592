"""bench: an AutoML benchmark harness for medical image classification.

Public API (imported lazily so ``bench --help`` stays instant):
``register_model``, ``create_model``, ``list_models``, ``register_augmentation``,
``register_dataset``, ``__version__``.
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "register_model": "bench.models.registry",
    "create_model": "bench.models.registry",
    "list_models": "bench.models.registry",
    "register_augmentation": "bench.augment.registry",
    "register_dataset": "bench.data.catalog",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
