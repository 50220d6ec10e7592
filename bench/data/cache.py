"""Where bench keeps data derived from the user's files, and how it writes there."""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

CACHE_ENV = "BENCH_CACHE_DIR"


def cache_root() -> Path:
    """``$BENCH_CACHE_DIR`` or ``~/.cache/bench``."""
    return Path(os.environ.get(CACHE_ENV) or "~/.cache/bench").expanduser()


def unpack_member(zf: zipfile.ZipFile, name: str, target: Path) -> Path:
    """Stream one zip member to ``target`` once (tmp + os.replace), so a (compressed) npz
    array can be memory-mapped as a plain .npy file."""
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with zf.open(name) as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, length=1 << 22)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
