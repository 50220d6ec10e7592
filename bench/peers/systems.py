"""The peer systems ``bench peer`` runs: the one list of them (the CLI's choices read it),
each with the module and function that run it. Standard library only, so ``bench --help``
stays instant; a system's module is imported only when it runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PeerOptions:
    """What ``bench peer`` hands every system's runner (a system reads the ones it uses)."""

    budget_s: int
    started: float  # time.monotonic() the budget counts from
    seed: int = 0
    python: Path | None = None  # the system's own interpreter (from its ``prepare``)
    backbone: str | None = None
    img_size: int | None = None
    pretrained: bool = False
    hyperparameters: dict | None = None


@dataclass(frozen=True)
class PeerSystem:
    """One peer system.

    Attributes:
        run: ``"module:function"``, ``(splits, run_dir, options: PeerOptions) -> PeerResult``.
        prepare: ``"module:function"``, ``(spec, *, python) -> (interpreter, built)``, called
            before any work: checks the task and finds (or builds) the system's interpreter.
        ndims: the image dimensions it takes (2: images, 3: volumes).
    """

    run: str
    prepare: str | None = None
    ndims: tuple[int, ...] = (2, 3)


PEERS: dict[str, PeerSystem] = {
    "autogluon": PeerSystem(
        run="bench.peers.autogluon:autogluon_peer",
        prepare="bench.peers.autogluon:prepare",
        ndims=(2,),
    ),
    "constant": PeerSystem(run="bench.peers.constant:constant_peer"),
}


def load(target: str) -> Callable:
    """The function behind ``"module:function"``."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)
