"""``bench leaderboard``: gather records into ``leaderboards/records/`` (write-once) and
rebuild every table from that folder plus the published reference rows.

Outputs (each written atomically; see ``render`` for the pure part):
``results.csv`` (long, one row per record and per published number),
``medmnist2d_{img_size}.md/.csv``, ``medmnist3d.md/.csv``, ``medical_mnist.md/.csv``,
``datasets/<flag>.md`` (one page per dataset) and ``README.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.files import atomic_write_text
from bench.reference import load_reference
from bench.results.evidence import load_evidence
from bench.results.gather import gather, load_records, records_state
from bench.results.markdown import medical_markdown, results_csv, wide_csv, wide_markdown
from bench.results.pages import dataset_pages
from bench.results.readme import readme
from bench.results.tables import MEDICAL_MNIST, Distributions, build_tables

_STABLE_ROUNDS = 5


# ----------------------------------------------------------------------------- command


def cmd_leaderboard(args: argparse.Namespace) -> int:
    """``bench leaderboard [--runs DIR ...] [--out leaderboards]``."""
    from bench.runtime import check_output_dir

    out = Path(args.out)
    check_output_dir(out)
    copied = gather(args.runs or [], out / "records")
    for path in copied:
        print(f"record {path}")
    for path in rebuild(out):
        print(f"wrote {path}")
    return 0


# ----------------------------------------------------------------------------- rebuild


def rebuild(out: Path) -> list[Path]:
    """Regenerate every table under ``out`` from ``out/records`` and the reference rows.

    Each file is replaced atomically. If the records folder changed while writing (another
    ``bench leaderboard`` added a record), the tables are rebuilt, so the last writer's
    files always cover every record. Each record's test predictions are read and
    bootstrapped once per call (a missing or unreadable file: a warning, no interval).

    Returns:
        The files written.
    """
    out = Path(out)
    reference = load_reference()
    warnings: list[str] = []
    cache: dict = {}  # run_id -> its distributions (or the warning), across the rounds
    for _ in range(_STABLE_ROUNDS):
        before = records_state(out / "records")
        records, warnings = load_records(out / "records")
        evidence, missing = load_evidence(out / "records", records, cache)
        warnings += missing
        files = render(records, reference, evidence=evidence)
        for name, text in files.items():
            atomic_write_text(out / name, text)
        if records_state(out / "records") == before:
            break
    for line in warnings:
        print(line, file=sys.stderr)
    return [out / name for name in files]


def render(records: list[dict], reference: list[dict], *,
           evidence: Distributions | None = None) -> dict[str, str]:  # fmt: skip
    """The text of every generated file, keyed by its path under the leaderboard folder
    (``datasets/<flag>.md`` for the per-dataset pages); ``evidence``: run_id -> the record's
    bootstrap distributions (:func:`~bench.results.evidence.load_evidence`). Pure: no I/O."""
    records = sorted(records, key=lambda r: (r["utc"], r["run_id"]))
    files = {"results.csv": results_csv(reference + records)}
    ok = [r for r in records if r.get("status", "ok") == "ok"]
    tables = build_tables(ok, reference, evidence)
    for table in tables:
        files[f"{table.name}.csv"] = wide_csv(table)
        files[f"{table.name}.md"] = (
            medical_markdown(table) if table.name == MEDICAL_MNIST else wide_markdown(table)
        )
    files.update(dataset_pages(tables))
    files["README.md"] = readme(tables, records)
    from bench.results.reproductions import markdown as reproductions

    files["reproductions.md"] = reproductions(records)
    return files
