"""A journal study file whose tail is cut (a full disk, a crash mid-write, a truncated copy) is
repaired, not fatal: the damaged file is copied beside itself, cut back to its last complete
record, and the repair said in one line.

Optuna's journal is one JSON record per line. Its reader skips an unterminated last line, but
the next append lands after the fragment and every later read then fails, so the study is lost
for good; :func:`repair_journal` runs before the journal is opened.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CompletePrefix:
    """The longest prefix of a journal made of whole, parsable records."""

    n_bytes: int  # bytes of the prefix (the cut point)
    n_records: int
    needs_newline: bool  # the last record is whole but its newline was cut


def complete_prefix(data: bytes) -> CompletePrefix:
    """The whole records at the start of ``data``; the first bad line ends the prefix."""
    end = records = 0
    while end < len(data):
        stop = data.find(b"\n", end)
        line = data[end:] if stop < 0 else data[end : stop + 1]
        if not _parses(line):
            break
        if stop < 0:  # a whole JSON object whose newline was cut: keep it, add the newline
            return CompletePrefix(len(data), records + 1, needs_newline=True)
        end, records = stop + 1, records + 1
    return CompletePrefix(end, records, needs_newline=False)


def _parses(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        return False


def repair_journal(path: Path) -> str | None:
    """Cut ``path`` back to its last complete record; None when it is whole.

    The damaged file is first copied to ``<name>.damaged-<UTC time>`` beside it (skipped, and
    said, when even that copy cannot be written, e.g. on a full disk). The cut is made under
    Optuna's journal lock, so a worker appending at the same moment is not cut short.

    Returns:
        One line for the user: how many records were kept, how many bytes cut, the copy.
    """
    path = Path(path)
    if not path.is_file():
        return None
    with _journal_lock(path):
        data = path.read_bytes()
        prefix = complete_prefix(data)
        if prefix.n_bytes == len(data) and not prefix.needs_newline:
            return None
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        copy = path.with_name(f"{path.name}.damaged-{stamp}")
        try:
            shutil.copyfile(path, copy)
            kept_copy = f"damaged copy: {copy}"
        except OSError as exc:
            copy.unlink(missing_ok=True)
            kept_copy = f"no damaged copy ({exc.strerror or exc})"
        with open(path, "r+b") as f:
            f.truncate(prefix.n_bytes)
            if prefix.needs_newline:
                f.seek(0, 2)
                f.write(b"\n")
            f.flush()
            os.fsync(f.fileno())
    cut = len(data) - prefix.n_bytes
    what = f"cut {cut} bytes of an incomplete record" if cut else "completed its last line"
    return (
        f"repaired study file {path}: its tail was damaged; kept {prefix.n_records} complete "
        f"records, {what} ({kept_copy})"
    )


class _journal_lock:
    """Optuna's own journal file lock, taken when it can be (a full disk cannot make its
    symlink; then nobody can append either, and the repair goes on without it)."""

    def __init__(self, path: Path) -> None:
        from optuna.storages.journal import JournalFileSymlinkLock

        self.lock = JournalFileSymlinkLock(str(path))
        self.held = False

    def __enter__(self):
        try:
            self.held = self.lock.acquire()
        except OSError:
            self.held = False
        return self

    def __exit__(self, *exc) -> None:
        if self.held:
            self.lock.release()


def repair_and_say(path: Path) -> bool:
    """:func:`repair_journal`, its line on stderr; whether a repair was made."""
    said = repair_journal(path)
    if said:
        print(f"warning: {said}", file=sys.stderr)
    return said is not None
