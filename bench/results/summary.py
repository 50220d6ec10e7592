"""A record in words: the three test figures with their 95 % intervals (single-fit mean, seed
ensemble, selected ensemble) and the published MedMNIST v2 rows inside the selected ensemble's
interval (``bench run``'s closing table)."""

from __future__ import annotations

from bench.results.intervals import inside, with_interval
from bench.results.records import Record


def summary_rows(record: Record) -> list[tuple[str, list[str]]]:
    """(label, [AUC, ACC]) of the single-fit mean ± std, the seed ensemble and the selected
    ensemble, each with its interval."""

    def cell(prefix: str, metric: str, value: float, std: float | None = None) -> str:
        lo, hi = (getattr(record, f"{prefix}_{metric}_{end}") for end in ("lo", "hi"))
        return with_interval(value, lo, hi, std=std)

    single = [cell("test", m, getattr(record, f"test_{m}_mean"), getattr(record, f"test_{m}_std"))
              for m in ("auc", "acc")]  # fmt: skip
    rows = [(f"{record.method} (single fit, mean ± std)", single)]
    for prefix, label in (("seed_ensemble_test", "seed ensemble"),
                          ("ensemble_test", "selected ensemble (bench predict)")):  # fmt: skip
        values = {m: getattr(record, f"{prefix}_{m}") for m in ("auc", "acc")}
        if None not in values.values():
            rows.append((f"{record.method}, {label}",
                         [cell(prefix, m, v) for m, v in values.items()]))  # fmt: skip
    return rows


def published_inside(record: Record, published: list[dict]) -> str:
    """One line: the published rows whose AUC / ACC lie inside the selected ensemble's 95 %
    interval (indistinguishable from it on this test set)."""
    parts = []
    for metric in ("auc", "acc"):
        lo, hi = getattr(record, f"ensemble_test_{metric}_lo"), getattr(
            record, f"ensemble_test_{metric}_hi")  # fmt: skip
        if lo is None:
            return "no interval: the run kept no test predictions"
        names = [r["method"] for r in published if inside(r[f"test_{metric}_mean"], lo, hi)]
        parts.append(f"{metric.upper()} [{lo:.3f}, {hi:.3f}]: "
                     f"{', '.join(names) if names else 'none'}")  # fmt: skip
    return ("published rows inside the selected ensemble's 95 % interval: "
            + "; ".join(parts))  # fmt: skip
