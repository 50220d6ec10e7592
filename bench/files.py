"""Files that are never half-written: atomic replacement, write-once JSON, JSON with numpy
values, and copies through a temporary file."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import BenchError


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


def copy_atomic(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` through a temporary file (removed if the copy fails)."""
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, str(dst)) from exc
