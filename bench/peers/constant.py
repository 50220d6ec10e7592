"""The floor: predict the train prior (class frequencies, or per-label rates for multi-label)
for every test image; AUC 0.5 by construction."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from bench.data.spec import MULTI_LABEL
from bench.peers.result import PeerResult

CONSTANT_METHOD = "Constant (train prior)"


def train_prior(labels: np.ndarray, task: str, n_classes: int) -> np.ndarray:
    """Class frequencies of the train labels (per-label positive rates for multi-label)."""
    labels = np.asarray(labels)
    if task == MULTI_LABEL:
        return labels.astype(np.float64).mean(axis=0)
    counts = np.bincount(labels.reshape(-1), minlength=n_classes).astype(np.float64)
    return counts / counts.sum()


def constant_peer(splits, run_dir: Path | None = None, options=None) -> PeerResult:
    """The train prior as the score of every test image (no run folder or option used)."""
    t = time.monotonic()
    prior = train_prior(splits.train.labels, splits.spec.task, splits.spec.n_classes)
    scores = np.tile(prior, (len(splits.test), 1))
    return PeerResult(
        method=CONSTANT_METHOD,
        family="constant",
        img_size=splits.data_size,
        params={"prior": [round(float(p), 6) for p in prior]},
        scores=scores,
        fit_s=time.monotonic() - t,
    )
