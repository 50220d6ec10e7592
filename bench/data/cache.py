"""Where bench keeps data derived from the user's files, and how it writes and checks it.

Each cache file is written through a temporary file and ``os.replace``
(:func:`bench.files.atomic_path`), so two processes filling the same cache at once leave one
whole copy. Each is checked when read: the unpacked arrays against their size in the zip, the
folder cache by its zip CRCs, the DCGAN generator by a sha256 stored in front of it
(:func:`write_checked`). A bad one is said in one line (:func:`say_rebuilt`) and rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import zipfile
from pathlib import Path

from bench.files import atomic_path

CACHE_ENV = "BENCH_CACHE_DIR"


def cache_root() -> Path:
    """``$BENCH_CACHE_DIR`` or ``~/.cache/bench``."""
    return Path(os.environ.get(CACHE_ENV) or "~/.cache/bench").expanduser()


def say_rebuilt(path: Path, reason: str) -> None:
    """The one line that says a cache file was bad and is being rebuilt."""
    print(f"warning: cache file {path} is {reason}; rebuilding it", file=sys.stderr)


def unpack_member(zf: zipfile.ZipFile, name: str, target: Path) -> Path:
    """Stream one zip member to ``target`` once (through a temporary file), so a (compressed)
    npz array can be memory-mapped as a plain .npy file; one of the wrong size is unpacked
    again."""
    expected = zf.getinfo(name).file_size
    if target.is_file():
        size = target.stat().st_size
        if size == expected:
            return target
        say_rebuilt(target, f"{size} bytes, not the {expected} of {name} in {zf.filename}")
    with atomic_path(target) as tmp, zf.open(name) as src, open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst, length=1 << 22)
    return target


CHECKED_MAGIC = b"BENCHSUM"  # then the payload's sha256 (32 bytes), then the payload


def write_checked(path: Path, payload: bytes) -> None:
    """``payload`` behind its sha256 at ``path`` (through a temporary file); a cache that cannot be
    written is skipped with a warning."""
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            f.write(CHECKED_MAGIC + hashlib.sha256(payload).digest() + payload)
    except OSError as exc:
        print(f"warning: could not write cache file {path}: {exc}", file=sys.stderr)


def read_checked(path: Path) -> bytes | None:
    """The payload :func:`write_checked` stored at ``path``; None (and the line that says so)
    when it is absent, truncated, altered or unreadable."""
    if not path.is_file():
        return None
    try:
        blob = path.read_bytes()
    except OSError as exc:
        say_rebuilt(path, f"unreadable ({exc.strerror or exc})")
        return None
    head = len(CHECKED_MAGIC) + 32
    if len(blob) < head or not blob.startswith(CHECKED_MAGIC):
        say_rebuilt(path, "not a checked cache file (truncated, or from an older bench)")
        return None
    payload = blob[head:]
    if hashlib.sha256(payload).digest() != blob[len(CHECKED_MAGIC) : head]:
        say_rebuilt(path, "corrupt (its sha256 does not match)")
        return None
    return payload
