"""Write errors (a full disk, a quota, a read-only or failing device) as one line that names
the path, the device and what to do, instead of a traceback that Optuna's own assertion hides.

Every file bench writes goes through a temporary file and ``os.replace``
(:mod:`bench.files`), so a failed write leaves the previous file or none: never half a record,
model or prediction file. A journal study file cut mid-record is cut back to its last complete
record (:mod:`bench.search.journal`).
"""

from __future__ import annotations

import errno
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from bench.errors import BenchError, causes
from bench.runtime import nearest_existing

WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EFBIG})


class WriteError(BenchError):
    """A file could not be written (no space, quota, read-only or failing device)."""


def write_error(exc: BaseException) -> OSError | None:
    """The write error behind ``exc`` (itself, its cause or its context), if there is one."""
    return next(
        (e for e in causes(exc) if isinstance(e, OSError) and e.errno in WRITE_ERRNOS), None
    )


def _mount(path: Path) -> tuple[str, str, str]:
    """(mount point, filesystem type, device) holding ``path`` (from /proc/self/mounts)."""
    real = os.path.realpath(path)
    best = ("/", "?", "?")
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return best
    for line in lines:
        device, point, fstype = (line.split() + ["", "", ""])[:3]
        point = point.replace("\\040", " ")
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best[0]):
            best = (point, fstype, device)
    return best


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def describe(err: OSError, where: Path, *, resumes: bool) -> str:
    """One line: what failed, on which path and device, how much is free, what to do."""
    path = Path(err.filename) if err.filename else Path(where)
    existing = nearest_existing(path.absolute())
    point, fstype, device = _mount(existing)
    try:
        usage = shutil.disk_usage(existing)
        room = f", {_size(usage.free)} free of {_size(usage.total)}"
    except OSError:
        room = ""
    what = "writing" if err.filename else "writing under"
    fix = "free space" if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) else "fix it"
    again = "run the same command again" + (": the study resumes" if resumes else "")
    return (
        f"{os.strerror(err.errno).lower()} {what} {path} ({fstype} {device} mounted at "
        f"{point}{room}); {fix} and {again}"
    )


@contextmanager
def write_guard(where: Path, *, journal: Path | None = None, resumes: bool = False):
    """Turn a write error inside the block into one :class:`WriteError` line; cut a journal's
    incomplete last record first, so the study file stays loadable."""
    try:
        yield
    except Exception as exc:
        err = write_error(exc)
        if err is None:
            raise
        if journal is not None:
            from bench.search.journal import repair_journal

            try:
                repair_journal(journal)  # truncating needs no space
            except OSError:
                pass  # the next open repairs it
        raise WriteError(describe(err, where, resumes=resumes)) from None
