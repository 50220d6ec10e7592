"""The leaderboard's evidence: each gathered record's bootstrap distributions, from its test
predictions (``records/<run_id>.npz``), for the rows' intervals and tie marks. Every record of
a test set is scored on the same resamples (:func:`bench.results.intervals.distributions`),
so the rows can average and subtract them.
"""

from __future__ import annotations

from pathlib import Path

from bench.errors import BenchError
from bench.results.gather import predictions_path
from bench.results.intervals import distributions
from bench.results.predictions import load_test_predictions
from bench.results.uncertainty import figure_groups

Dists = dict  # (figure, metric) -> bootstrap values


def record_distributions(path: Path, rec: dict) -> Dists:
    """The bootstrap distribution of each figure (single-fit mean, seed and selected
    ensemble) of the record whose test predictions are at ``path``; BenchError when the file
    is unreadable or is not this record's."""
    preds = load_test_predictions(path)
    if preds.dataset != rec["dataset"] or not preds.chosen:
        raise BenchError(f"{path}: test predictions of {preds.dataset!r} with fits "
                         f"{preds.chosen!r}, not of this {rec['dataset']!r} record")  # fmt: skip
    try:
        return distributions(preds.labels, figure_groups(preds), preds.task)
    except (ValueError, IndexError, KeyError) as exc:
        raise BenchError(f"{path}: test predictions do not fit their labels ({exc})") from None


def load_evidence(records_dir: Path, records: list[dict],
                  cache: dict[str, Dists | str]) -> tuple[dict[str, Dists], list[str]]:  # fmt: skip
    """run_id -> distributions of every ok record that kept test predictions, and one warning
    per record whose file is missing or unreadable (its rows get no interval). ``cache``
    (run_id -> distributions or the warning) keeps each file's work to one per rebuild."""
    out, warnings = {}, []
    for rec in records:
        if rec.get("status", "ok") != "ok" or not rec.get("test_predictions"):
            continue
        run_id = rec["run_id"]
        if run_id not in cache:
            cache[run_id] = _distributions_or_warning(Path(records_dir), rec)
        found = cache[run_id]
        if isinstance(found, str):
            warnings.append(found)
        else:
            out[run_id] = found
    return out, warnings


def _distributions_or_warning(records_dir: Path, rec: dict) -> Dists | str:
    record_path = records_dir / f"{rec['run_id']}.json"
    path = predictions_path(record_path, rec)
    if path is None:
        return (f"warning: {record_path.with_suffix('.npz')}: test predictions missing; "
                "its rows have no interval")  # fmt: skip
    try:
        return record_distributions(path, rec)
    except BenchError as exc:
        return f"warning: {exc}; its rows have no interval"
