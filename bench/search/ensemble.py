"""Ensembles: the val predictions every completed trial leaves behind, greedy ensemble
selection over them (Caruana et al., ICML 2004, with replacement, as auto-sklearn and
AutoGluon build theirs) and the weighted mean of member probabilities.

Selection reads validation predictions only; the test split is scored once, later, by
:mod:`bench.run.fit`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROUNDS = 25  # greedy steps; a member's weight is its share of the steps
CANDIDATES = 20  # the best trials (by val score) that selection considers
DEFAULT_MEMBERS = 5  # distinct configurations an ensemble may hold (--ensemble)


def val_dir(out: Path, study_name: str) -> Path:
    """Where a study's trials leave their val predictions (one ``.npy`` per trial)."""
    from bench.runtime import safe_name

    return Path(out) / "studies" / f"{safe_name(study_name)}.val"


def save_val_scores(folder: Path, number: int, scores: np.ndarray) -> None:
    """Trial ``number``'s val scores, atomically (a kill never leaves half a file)."""
    from bench.files import atomic_write_text

    buf = io.BytesIO()
    np.save(buf, np.asarray(scores, dtype=np.float32))
    atomic_write_text(Path(folder) / f"trial-{number:06d}.npy", buf.getvalue())


def load_val_scores(folder: Path, numbers, n_val: int) -> dict[int, np.ndarray]:
    """The val scores of the trials in ``numbers`` that have a readable file of ``n_val``
    rows (a worker on another machine leaves none here: those trials are not candidates)."""
    out = {}
    for number in numbers:
        path = Path(folder) / f"trial-{number:06d}.npy"
        try:
            scores = np.load(path, allow_pickle=False).astype(np.float64)
        except (OSError, ValueError):
            continue
        if scores.ndim == 2 and scores.shape[0] == n_val:
            out[number] = scores
    return out


@dataclass
class Member:
    """One configuration of an ensemble: its trial and weight (a share of the rounds)."""

    trial: int
    weight: float


def weighted_mean(scores: list[np.ndarray], weights: list[float]) -> np.ndarray:
    """The weighted mean of probability arrays (weights need not sum to 1)."""
    total = float(sum(weights))
    return sum(w * s for w, s in zip(weights, scores, strict=True)) / total


def select_ensemble(candidates: dict[int, np.ndarray], labels: np.ndarray, *, task: str,
                    metric: str, max_members: int = DEFAULT_MEMBERS,
                    rounds: int = ROUNDS) -> list[Member]:  # fmt: skip
    """Greedy forward selection with replacement on the val ``metric``.

    Starts from the best single candidate; each round adds (again, possibly) the candidate
    that makes the running mean score best, among all while fewer than ``max_members``
    distinct ones are chosen, then among the chosen. Ties go to the earlier candidate in
    ``candidates``' order (callers list the best trials first).

    Returns:
        The members, heaviest first (ties: the order they were first chosen).
    """
    from bench import scoring

    score_fn = scoring.auc if metric == "auc" else scoring.acc
    order = list(candidates)
    if not order:
        return []
    total = np.zeros_like(candidates[order[0]])
    counts: dict[int, int] = {}
    for step in range(rounds):
        pool = order if len(counts) < max_members else list(counts)
        values = [score_fn(labels, (total + candidates[c]) / (step + 1), task) for c in pool]
        pick = pool[int(np.argmax(values))]
        total = total + candidates[pick]
        counts[pick] = counts.get(pick, 0) + 1
    ranked = sorted(counts, key=lambda c: -counts[c])  # stable: first chosen first
    return [Member(c, counts[c] / rounds) for c in ranked]
