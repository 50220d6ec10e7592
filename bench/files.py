"""Files that are never half-written: atomic replacement, write-once JSON, JSON with numpy
values, and copies through a temporary file; and write errors (a full disk, a quota, a
read-only or failing device) as one line that names the path, the device and what to do,
instead of a traceback that Optuna's own assertion hides.

Every file bench writes goes through a temporary file and ``os.replace`` (here), so a failed
write leaves the previous file or none: never half a record, model or prediction file. A
journal study file cut mid-record is cut back to its last complete record
(:mod:`bench.search.journal`).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import BenchError, causes
from bench.runtime import nearest_existing


def _synced_temp(path: Path, content: str | bytes) -> str:
    """Write ``content`` to a synced temporary file beside ``path``; return its name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    data = content.encode("utf-8") if isinstance(content, str) else content
    try:
        os.fchmod(fd, 0o666 & ~umask())  # as open() would create it, not mkstemp's 0600
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, str(path)) from exc  # name the file, not the tmp
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str | bytes) -> None:
    """Write ``text`` (or bytes) to ``path`` via a temporary file and ``os.replace`` (never
    half-written)."""
    path = Path(path)
    tmp = _synced_temp(path, text)
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_once_json(path: Path, data: dict) -> None:
    """Write ``data`` as JSON at ``path``; refuse to overwrite an existing record."""
    path = Path(path)
    if path.exists():
        raise BenchError(f"{path} already exists; records are write-once")
    text = json.dumps(data, indent=2, sort_keys=True, default=_jsonable) + "\n"
    tmp = _synced_temp(path, text)
    try:
        os.link(tmp, path)  # fails if a record appeared meanwhile: never overwritten
    except FileExistsError:
        raise BenchError(f"{path} already exists; records are write-once") from None
    finally:
        Path(tmp).unlink(missing_ok=True)


def _jsonable(obj: Any):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_json(path: Path, data) -> None:
    """``data`` as indented JSON at ``path``, atomically (numpy values allowed)."""
    atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True, default=_jsonable) + "\n")


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary file beside ``path`` for a writer that wants a file name (``savefig``,
    ``np.savez``, an ONNX export); it replaces ``path`` when the block ends, and is removed if
    the block fails, so ``path`` is never half-written. An OSError on the temporary file names
    ``path``.

    Example:
        ``with atomic_path(out) as tmp: fig.savefig(tmp, format="png")``
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~umask())  # as open() would create it, not mkstemp's 0600
    finally:
        os.close(fd)
    try:
        yield Path(name)
        os.replace(name, path)
    except OSError as exc:
        if exc.filename != name:
            raise
        raise OSError(exc.errno, exc.strerror, str(path)) from exc  # name the file, not the tmp
    finally:
        Path(name).unlink(missing_ok=True)


def copy_atomic(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` through a temporary file (removed if the copy fails); an
    OSError names ``dst``."""
    try:
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(dst)) from exc


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
