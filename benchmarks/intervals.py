"""What the uncertainty of a record costs: the seconds :func:`bench.results.uncertainty.
record_fields` takes on saved test predictions (every fit, the single-fit mean and both
ensembles, 2,000 paired resamples), and the bytes the prediction files of the committed
records take.

    python benchmarks/intervals.py [PREDICTIONS.npz ...] [--records leaderboards/records]
    python benchmarks/intervals.py --check RECORD.json [RECORD.json ...]

``--check`` recomputes each interval of a committed record independently (a plain loop of
2,000 resamples from another seed, scored with ``medmnist``'s getAUC/getACC on the saved
predictions) and prints both with the largest gap at either end.

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


def independent(labels, sets, task: str, n_boot: int = 2000, seed: int = 12345):
    """The 2.5 and 97.5 percentiles of getAUC and getACC (mean over ``sets``) on ``n_boot``
    resamples of the items, by a plain loop through medmnist's own functions."""
    from medmnist.evaluator import getACC, getAUC

    rng = np.random.default_rng(seed)
    aucs, accs = [], []
    for _ in range(n_boot):
        i = rng.integers(0, len(labels), len(labels))
        aucs.append(np.mean([getAUC(labels[i], s[i].astype(np.float64), task) for s in sets]))
        accs.append(np.mean([getACC(labels[i], s[i].astype(np.float64), task) for s in sets]))
    return {"auc": np.percentile(aucs, [2.5, 97.5]), "acc": np.percentile(accs, [2.5, 97.5])}


def check(record_path: Path) -> float:
    """Print the record's intervals beside the independent ones; return the largest gap."""
    from bench.results.gather import predictions_path, read_record
    from bench.results.uncertainty import figure_groups

    rec = read_record(record_path)
    preds = load_test_predictions(predictions_path(record_path, rec))
    worst = 0.0
    for group in figure_groups(preds):
        ref = independent(preds.labels, group.scores, preds.task)
        for metric in ("auc", "acc"):
            ours = (rec[f"{group.name}_{metric}_lo"], rec[f"{group.name}_{metric}_hi"])
            gap = float(np.max(np.abs(np.asarray(ours) - ref[metric])))
            worst = max(worst, gap)
            print(f"{rec['run_id']} {group.name} {metric}: record [{ours[0]:.4f}, {ours[1]:.4f}]"
                  f"  independent [{ref[metric][0]:.4f}, {ref[metric][1]:.4f}]  gap {gap:.4f}")
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--records", type=Path, default=Path("leaderboards/records"))
    parser.add_argument("--check", nargs="+", type=Path, metavar="RECORD")
    args = parser.parse_args()
    if args.check:
        worst = max(check(p) for p in args.check)
        print(f"largest gap at either end: {worst:.4f} (acceptance: under 0.01)")
        return
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
