"""What the uncertainty of a record costs: the seconds :func:`bench.results.uncertainty.
record_fields` takes on saved test predictions (every fit, the single-fit mean and both
ensembles, 2,000 paired resamples), and the bytes the prediction files of the committed
records take.

    python benchmarks/intervals.py [PREDICTIONS.npz ...] [--records leaderboards/records]

Without a file it times a PneumoniaMNIST-sized record (624 items, three fits, two ensembles)
of random probabilities: the cost depends on the item count and the number of prediction
sets, not on the values.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bench.results.predictions import TestPredictions, load_test_predictions
from bench.results.uncertainty import record_fields


def synthetic(n: int = 624, fits: int = 3, seed: int = 0) -> TestPredictions:
    """A binary record of ``n`` items: ``fits`` fits and their mean as both ensembles."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, (n, 1))
    sets = {}
    for i in range(fits):
        p = np.clip(0.6 * labels[:, 0] + 0.4 * rng.random(n), 0, 1)
        sets[f"seed{i}"] = np.stack([1 - p, p], axis=1).astype(np.float16)
    mean = np.mean(list(sets.values()), axis=0)
    return TestPredictions("pneumoniamnist", "binary-class", labels, sets, tuple(sets), mean, mean)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--records", type=Path, default=Path("leaderboards/records"))
    args = parser.parse_args()
    record_fields(synthetic(n=50))  # imports and first calls out of the timing
    cases = [(f, load_test_predictions(f)) for f in args.files] or [("synthetic", synthetic())]
    for name, preds in cases:
        sets = len(preds.fits) + 2
        start = time.perf_counter()
        record_fields(preds)
        took = time.perf_counter() - start
        print(f"intervals {name}: {preds.n} items, {len(preds.fits)} fits + ensembles "
              f"({sets} sets): {took:.2f} s")  # fmt: skip
    files = sorted(args.records.glob("*.npz"))
    total = sum(f.stat().st_size for f in files)
    largest = max((f.stat().st_size for f in files), default=0)
    print(f"prediction files in {args.records}: {len(files)}, {total / 1e6:.3f} MB in all, "
          f"largest {largest / 1e3:.1f} KB")  # fmt: skip


if __name__ == "__main__":
    main()
