"""What a peer system hands back before bench scores it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class PeerResult:
    """A peer's test scores (or why it has none) and what its record says about it."""

    method: str
    family: str
    img_size: int
    params: dict
    scores: np.ndarray | None = None
    failure: str | None = None
    user_error: bool = False
    objective: str = "none"
    val_score: float | None = None
    augment: str = "none"
    n_params: int | None = None
    fit_s: float = 0.0  # the peer's own fit and prediction, s
    device: str = "cpu"
    citation: str = ""
    versions: dict = field(default_factory=dict)
    info: list[str] = field(default_factory=list)
    log_path: Path | None = None
