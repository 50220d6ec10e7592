"""Process helpers: idle cores measured now (not the 1-minute load average), the thread
count drawn from them, writability checks that create nothing, file-safe names."""

from __future__ import annotations

import os

import pytest

from bench.errors import BenchError
from bench.runtime import (
    check_output_dir,
    cpu_times,
    idle_cores,
    measure_idle_cores,
    safe_name,
    threads_for,
)

# /proc/stat aggregate lines: user nice system idle iowait irq softirq steal guest guest_nice
BEFORE = "cpu  1000 0 500 8000 100 0 50 0 0 0\ncpu0 500 0 250 4000 50 0 25 0 0 0\n"
IDLE_2 = "cpu  1000 0 500 8200 100 0 50 0 0 0\n"  # 200 jiffies passed, all idle
BUSY_1 = "cpu  1100 0 500 8100 100 0 50 0 0 0\n"  # 200 passed, half of them busy
BUSY_2 = "cpu  1190 0 510 8000 100 0 50 0 0 0\n"  # 200 passed, none idle


def test_cpu_times_parse_the_aggregate_line():
    assert cpu_times(BEFORE) == (8100, 9650)
    with pytest.raises(ValueError):
        cpu_times("intr 1 2 3\n")


def test_idle_cores_and_threads_over_a_window():
    assert idle_cores(BEFORE, IDLE_2, cores=2) == pytest.approx(2.0)
    assert idle_cores(BEFORE, BUSY_1, cores=2) == pytest.approx(1.0)
    assert idle_cores(BEFORE, BUSY_2, cores=2) == pytest.approx(0.0)
    assert idle_cores(BEFORE, BEFORE, cores=2) == 2.0  # no time passed: assume idle
    assert [threads_for(i, 2) for i in (2.0, 1.4, 1.0, 0.2, 0.0)] == [2, 1, 1, 1, 1]
    assert threads_for(1.6, 2) == 2 and threads_for(9.0, 4) == 4


def test_measured_idle_cores_are_in_range():
    idle = measure_idle_cores(0.05)
    assert 0.0 <= idle <= (os.cpu_count() or 1) + 1e-9


def test_check_output_dir_creates_nothing(tmp_path):
    target = tmp_path / "a" / "b" / "c"
    check_output_dir(target)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "f").write_text("")
    with pytest.raises(BenchError, match="is not writable .*is a file"):
        check_output_dir(tmp_path / "f" / "sub")


def test_safe_names():
    assert safe_name("npz:/x/My Set.npz") == "npz--x-My-Set-npz"
    assert safe_name("tiny_set-1") == "tiny_set-1"


def test_process_start_counts_interpreter_start_up():
    import subprocess
    import sys

    code = (
        "import time; from bench.runtime import process_start; "
        "print(time.monotonic() - process_start())"
    )
    age = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               check=True).stdout)  # fmt: skip
    assert 0.0 < age < 60.0  # the imports before the call are part of the budget
