"""``bench run --jobs N``: N-1 local ``bench search`` worker processes beside the run's own
search, all on one study (the run's journal or ``--storage``); the run alone does the final
phase once they have stopped.

Each worker gets its share of the CPU cores (``OMP_NUM_THREADS``) or a GPU of those the run
may use (``CUDA_VISIBLE_DEVICES``, taken from the run's in turn, and its memory fraction where
processes share one: :mod:`bench.run.gpus`). Workers search
until the run's search end; they die with the run (``PR_SET_PDEATHSIG``), and a trial one was
running is failed and retried by the next run like any dead worker's. The run's display logs
every worker's finished trials.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench.errors import ConfigError

if TYPE_CHECKING:
    from bench.run.settings import RunConfig

STOP_GRACE_S = 30.0  # how long the run waits for a worker past the search end
POLL_S = 2.0  # how often the display looks for other workers' finished trials


def check_jobs(jobs: int) -> int:
    """``--jobs``: at least one process."""
    if jobs < 1:
        raise ConfigError(f"--jobs {jobs}: give at least 1 (the run's own process)")
    return jobs


def share_threads(jobs: int) -> int:
    """CPU threads for each of ``jobs`` processes: the cores divided among them, at least 1."""
    return max(1, (os.cpu_count() or 1) // jobs)


def worker_env(index: int, jobs: int, device, *, gpu_limit: int | None = None) -> dict:
    """The environment of worker ``index`` (1..jobs-1; the run itself is 0): on CUDA its GPU
    and memory fraction (``gpu_limit``: each process's share of ``--max-memory``), else its
    CPU threads."""
    env = dict(os.environ)
    if getattr(device, "type", str(device)) == "cuda":
        import torch

        from bench.run import gpus

        visible = gpus.visible_devices(env.get("CUDA_VISIBLE_DEVICES"), torch.cuda.device_count())
        env["CUDA_VISIBLE_DEVICES"] = gpus.process_devices(jobs, visible)[index]
        fraction = gpus.gpu_fraction(index, jobs, limit=gpu_limit)
        env[gpus.FRACTION_ENV] = "" if fraction is None else repr(fraction)
    else:
        env["OMP_NUM_THREADS"] = str(share_threads(jobs))
    return env


def worker_argv(cfg: RunConfig, budget_s: int, *, follow: Path | None = None) -> list[str]:
    """``bench search`` arguments that join the run's study with its settings: each shared
    flag (:data:`bench.run.flags.SEARCH_FLAGS`) with the run's resolved value, a budget of
    ``budget_s`` seconds, quiet, and the file the worker follows for the run's search end."""
    from bench.run.flags import SEARCH_FLAGS, WORKER_FLAGS, flag_argv

    values = {f.name: getattr(cfg, f.config) for f in SEARCH_FLAGS if f.config}
    values.update({"--budget": f"{budget_s}s", "--quiet": True, "--follow": follow})
    flags = flag_argv((*SEARCH_FLAGS, *WORKER_FLAGS), values)
    return [sys.executable, "-m", "bench", "search", *flags]


def _die_with_parent() -> None:
    """In the child: SIGTERM when the run's process dies (Linux), whatever killed it."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def follow_file(cfg: RunConfig) -> Path:
    """Where the run publishes its search end for its workers."""
    return Path(cfg.out) / "workers" / f"{cfg.study_name}.search_end"


def start_workers(cfg: RunConfig, *, time_left: float) -> list[subprocess.Popen]:
    """Start ``cfg.jobs - 1`` search workers, with the ``time_left`` of the run's budget;
    each ends its search when the run's does (the run's hard end at the latest)."""
    budget_s = max(1, int(time_left))
    logs = follow_file(cfg).parent
    logs.mkdir(parents=True, exist_ok=True)
    argv = worker_argv(cfg, budget_s, follow=follow_file(cfg))
    procs = []
    for index in range(1, cfg.jobs):
        log = open(logs / f"{cfg.study_name}.worker{index}.log", "ab")  # noqa: SIM115 (child's)
        procs.append(subprocess.Popen(
            argv, env=worker_env(index, cfg.jobs, cfg.device, gpu_limit=cfg.gpu_memory_limit),
            stdout=log,
            stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
        ))  # fmt: skip
        log.close()
    return procs


def stop_workers(procs: list[subprocess.Popen], *, grace_s: float = STOP_GRACE_S) -> list[int]:
    """Wait for the workers to end their search, then SIGTERM any still running; their exit
    codes."""
    give_up = time.monotonic() + grace_s
    for p in procs:
        try:
            p.wait(timeout=max(0.1, give_up - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.terminate()
            p.wait(timeout=30)
    return [p.returncode for p in procs]


class WorkerWatch:
    """A thread that logs other workers' finished trials on the run's display."""

    def __init__(self, study, display, own_tag: str) -> None:
        self.study, self.display, self.own_tag = study, display, own_tag
        self.seen: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> WorkerWatch:
        self.seen = {t.number for t in self.study.get_trials(deepcopy=False)
                     if t.state.is_finished()}  # fmt: skip
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.poll()

    def _loop(self) -> None:
        while not self._stop.wait(POLL_S):
            self.poll()

    def poll(self) -> None:
        """Log each newly finished trial of another worker."""
        from bench.search import attrs

        try:
            trials = self.study.get_trials(deepcopy=False)
        except Exception:  # noqa: BLE001 (a display must not end the run; the next poll retries)
            return
        for t in trials:
            tag = t.user_attrs.get(attrs.WORKER, "")
            if not t.state.is_finished() or t.number in self.seen or tag == self.own_tag:
                continue
            self.seen.add(t.number)
            self.display.trial_done(self.study, t, worker=tag)
