"""Process-level helpers every command shares: start time, writability checks, the CPU thread
policy and file-safe names."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from bench.errors import BenchError

IDLE_WINDOW_S = 0.25  # how long the CPU is watched to count idle cores (now, not last minute)
MAX_STARTUP_S = 60.0  # an older process (a notebook, a test runner) ran the command later


def process_start() -> float:
    """Monotonic time at which this process started, so a budget includes interpreter
    start-up and imports; now, where /proc is unavailable or the process is older than
    ``MAX_STARTUP_S`` (``main()`` called from a long-running process)."""
    now = time.monotonic()
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        start = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19]) / ticks
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return now
    age = uptime - start
    return now - age if 0 <= age < MAX_STARTUP_S else now


def nearest_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_output_dir(path: Path, flag: str = "--out") -> None:
    """Prove that the folder ``path`` (given as ``flag``) can be created and written, creating
    nothing: it is a folder or does not exist yet, and the nearest existing folder on its path
    is writable. One-line BenchError naming ``flag`` otherwise."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        _refuse(flag, path, "it is a file", "give a folder")
    probe = nearest_existing(path)
    if not probe.is_dir():
        _refuse(flag, path, f"{probe} is a file", "choose another folder")
    _probe_write(probe, flag, path, "choose another folder")


def check_output_file(path: Path, flag: str = "--out") -> None:
    """Prove that the file ``path`` (given as ``flag``) can be written, creating nothing: it
    is not a folder, and its folder exists and is writable. One-line BenchError naming
    ``flag`` otherwise."""
    path = Path(path).expanduser()
    if path.is_dir():
        _refuse(flag, path, "it is a folder", "give a file name inside it")
    folder = path.parent
    if not folder.exists():
        probe = nearest_existing(folder)
        reason = f"{probe} is a file" if not probe.is_dir() else f"folder {folder} does not exist"
        _refuse(flag, path, reason, "create the folder first or choose another path")
    if not folder.is_dir():
        _refuse(flag, path, f"{folder} is a file", "choose another path")
    _probe_write(folder, flag, path, "choose another path")


def _probe_write(folder: Path, flag: str, path: Path, fix: str) -> None:
    """Create and remove a temporary file in ``folder``; one line if that fails."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".bench-write-test-"):
            pass
    except OSError as exc:
        _refuse(flag, path, exc.strerror or str(exc), fix)


def _refuse(flag: str, path: Path, reason: str, fix: str):
    raise BenchError(f"{flag} {path} is not writable ({reason}); {fix}")


def safe_name(text: str) -> str:
    """``text`` with every character but letters, digits, ``_`` and ``-`` replaced by ``-``."""
    return "".join(c if c.isalnum() or c in "_-" else "-" for c in str(text))


def file_flag(spec) -> str:
    """The dataset part of run ids and prediction file names: the medmnist flag for catalog
    sets, the file or folder stem for ``npz:``/``folder:`` paths."""
    if spec.kind in ("npz", "folder") and spec.path:
        return safe_name(Path(spec.path).stem)
    return safe_name(spec.name)


def cpu_times(stat_text: str) -> tuple[int, int]:
    """(idle, total) jiffies from the aggregate ``cpu`` line of ``/proc/stat``."""
    for line in stat_text.splitlines():
        if line.startswith("cpu "):
            values = [int(v) for v in line.split()[1:]]
            idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
            return idle, sum(values[:8])  # guest time is already inside user/nice
    raise ValueError("no aggregate cpu line")


def idle_cores(before: str, after: str, *, cores: int) -> float:
    """Cores that were idle between two ``/proc/stat`` readings."""
    idle0, total0 = cpu_times(before)
    idle1, total1 = cpu_times(after)
    if total1 <= total0:
        return float(cores)
    return cores * (idle1 - idle0) / (total1 - total0)


def measure_idle_cores(window_s: float = IDLE_WINDOW_S) -> float:
    """Idle cores now, watched over ``window_s``; the 1-minute load average where /proc/stat
    is unavailable."""
    cores = os.cpu_count() or 1
    stat = Path("/proc/stat")
    try:
        before = stat.read_text()
        time.sleep(window_s)
        return idle_cores(before, stat.read_text(), cores=cores)
    except (OSError, ValueError, IndexError):
        try:
            return max(0.0, cores - os.getloadavg()[0])
        except OSError:
            return float(cores)


def threads_for(idle: float, cores: int) -> int:
    """Torch threads for ``idle`` free cores: rounded, at least 1, at most ``cores``."""
    return max(1, min(cores, int(idle + 0.5)))


def cpu_threads(device, exact: int | None = None) -> int | None:
    """On CPU, set torch's intra-op threads to the cores idle now unless ``OMP_NUM_THREADS``
    is set (on a shared machine, more threads than free cores make small models tens of
    times slower: spinning threads), or to ``exact`` when given. Returns the threads set,
    None when left alone."""
    import torch

    if getattr(device, "type", str(device)) != "cpu":
        return None
    if exact is None and os.environ.get("OMP_NUM_THREADS"):
        return None
    threads = exact or threads_for(measure_idle_cores(), os.cpu_count() or 1)
    torch.set_num_threads(threads)
    return threads
