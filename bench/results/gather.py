"""Gather records into ``leaderboards/records/`` (write-once) and load them back: find the
record files behind a ``--runs`` argument, check that a record can go into a table, copy it
under its run_id.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from bench.errors import BenchError
from bench.files import write_once_json
from bench.results.records import (
    RECORD_FILE,
    is_int,
    is_number,
    load_record,
    read_record,
    required_fields,
)

_RUN_ID_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")


def find_records(source: str | Path) -> list[Path]:
    """Record files behind one ``--runs`` argument: a record ``.json``, a run folder holding
    ``record.json``, or a folder of run folders."""
    path = Path(source)
    if path.is_file() and path.suffix == ".json":
        return [path]
    if path.is_dir():
        if (path / RECORD_FILE).is_file():
            return [path / RECORD_FILE]
        found = sorted(path.glob(f"*/{RECORD_FILE}"))
        if found:
            return found
        raise BenchError(
            f"{path}: no {RECORD_FILE} in it or its subfolders; pass a finished run folder "
            "(runs/<run_id>) or a record .json file"
        )
    raise BenchError(f"{path}: no such run folder or record .json file")


def predictions_path(record_path: Path, rec: dict) -> Path | None:
    """The test-predictions file of the record at ``record_path``: ``test_predictions`` beside
    a run folder's ``record.json``, ``<run_id>.npz`` beside a gathered one; None when the
    record kept none (records made before they were kept) or the file is missing."""
    name = rec.get("test_predictions")
    if not isinstance(name, str) or not name:
        return None
    record_path = Path(record_path)
    path = (record_path.parent / name if record_path.name == RECORD_FILE
            else record_path.with_suffix(".npz"))  # fmt: skip
    return path if path.is_file() else None


def check_record(rec: dict, path: Path | str) -> None:
    """Raise BenchError naming ``path`` if ``rec`` cannot go into a table: a field that
    :func:`~bench.results.records.required_fields` names is missing or of the wrong type."""
    for key, kind in required_fields("always"):
        _check_field(rec, key, kind, path)
    if not _RUN_ID_RE.fullmatch(rec["run_id"]):
        raise BenchError(f"{path}: run_id {rec['run_id']!r} is not a safe file name")
    status = rec.get("status", "ok")
    if status not in ("ok", "failed"):
        raise BenchError(f"{path}: status {status!r} is neither 'ok' nor 'failed'")
    if status == "ok":
        for key, kind in required_fields("ok"):
            _check_field(rec, key, kind, path)


_NOUNS = {str: "a str", int: "an integer", float: "a number"}


def _check_field(rec: dict, key: str, kind: type, path: Path | str) -> None:
    value = rec.get(key)
    if kind is str:
        fits = isinstance(value, str) and bool(value)
    else:
        fits = is_int(value) if kind is int else is_number(value)
    if not fits:
        raise BenchError(f"{path}: field {key!r} is missing or not {_NOUNS[kind]}")


def gather(sources: list[str | Path], records_dir: Path) -> list[Path]:
    """Copy the records behind ``sources`` into ``records_dir/<run_id>.json`` (write-once).

    Every source is read and checked before anything is written. A record already there
    with identical content is fine; a different one with the same run_id is a BenchError.

    Returns:
        The record files newly written.
    """
    records_dir = Path(records_dir)
    pending: dict[str, tuple[dict, Path]] = {}
    for source in sources:
        for path in find_records(source):
            rec = read_record(path)
            check_record(rec, path)
            run_id = rec["run_id"]
            if run_id in pending and _canon(pending[run_id][0]) != _canon(rec):
                raise BenchError(
                    f"{path} and {pending[run_id][1]} are different records with the same "
                    f"run_id {run_id}; pass only one of them"
                )
            pending[run_id] = (rec, path)
            _check_existing(records_dir / f"{run_id}.json", rec, path)
    written = []
    for run_id, (rec, path) in pending.items():
        dest = records_dir / f"{run_id}.json"
        _copy_predictions(path, rec, dest.with_suffix(".npz"))
        if dest.exists():
            continue
        try:
            write_once_json(dest, rec)
            written.append(dest)
        except BenchError:  # another process wrote it meanwhile: fine if identical
            _check_existing(dest, rec, path)
    return written


def _copy_predictions(record_path: Path, rec: dict, dest: Path) -> None:
    """Copy the record's test predictions beside its gathered copy (before the record, so a
    gathered record never lacks the file it names); write-once like the record."""
    from bench.files import copy_atomic

    source = predictions_path(record_path, rec)
    if source is None or source.resolve() == dest.resolve():
        return
    if dest.exists():
        if dest.read_bytes() != source.read_bytes():
            raise BenchError(f"{dest} already holds other test predictions for run_id "
                             f"{rec['run_id']} ({source}); records are write-once")  # fmt: skip
        return
    copy_atomic(source, dest)


def _check_existing(dest: Path, rec: dict, source: Path) -> None:
    if not dest.exists():
        return
    try:
        existing = json.loads(dest.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        existing = None
    if existing is None or _canon(existing) != _canon(rec):
        raise BenchError(
            f"{dest} already holds a different record with run_id {rec['run_id']} "
            f"(from {source}); records are write-once: give the new run its own run_id"
        )


def load_records(records_dir: Path) -> tuple[list[dict], list[str]]:
    """All well-formed records in ``records_dir`` (through
    :class:`~bench.results.records.Record`, so old ones get the fields they lack), and one
    warning per malformed file."""
    records, warnings = [], []
    for path in record_files(Path(records_dir)):
        try:
            rec = read_record(path)
            check_record(rec, path)
            if rec["run_id"] != path.stem:
                raise BenchError(f"{path}: file name does not match its run_id {rec['run_id']}")
        except BenchError as exc:
            warnings.append(f"warning: {exc}; skipped")
            continue
        records.append(load_record(rec).as_dict())
    return records, warnings


def record_files(records_dir: Path) -> list[Path]:
    """The record files in ``records_dir`` (hidden temporary files left out), sorted."""
    if not records_dir.is_dir():
        return []
    return sorted(p for p in records_dir.glob("*.json") if not p.name.startswith("."))


def records_state(records_dir: Path) -> list[tuple[str, int, int]]:
    """(name, size, mtime) of each record file: a change means another process added one."""
    out = []
    for p in record_files(records_dir):
        try:
            st = p.stat()
        except OSError:
            continue
        out.append((p.name, st.st_size, st.st_mtime_ns))
    return out


def _canon(rec: dict) -> str:
    return json.dumps(rec, sort_keys=True, default=str)
