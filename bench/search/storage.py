"""Optuna storages from a URL: a journal file by default, SQLite or PostgreSQL (RDB with
heartbeats, so a dead worker's trial is failed and retried), and the liveness of local workers
for journals, which have no heartbeat."""

from __future__ import annotations

import os
import re
import socket
import time
import warnings
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.search import attrs

HEARTBEAT_S = 30  # RDB heartbeat interval; a worker silent for GRACE_S is declared dead
GRACE_S = 120


def storage_kind(url: str | None) -> str:
    """``journal`` (a file path or None), ``sqlite``, ``postgresql``, or the URL's scheme."""
    if not url or "://" not in url:
        return "journal"
    scheme = url.split("://", 1)[0].split("+", 1)[0].lower()
    return "postgresql" if scheme in ("postgres", "postgresql") else scheme


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages)."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def open_storage(url: str | None, *, default_journal: Path):
    """Open (and check) the Optuna storage named by ``url``.

    Args:
        url: None (journal at ``default_journal``), a file path (journal file),
            ``sqlite:///f.db`` or ``postgresql://user:pw@host/db`` (RDB storage with heartbeats
            and a retry of trials whose worker died).
        default_journal: the journal file used when ``url`` is None.

    Raises:
        BenchError: the storage cannot be opened or reached (one line, no password).
    """
    import optuna

    kind = storage_kind(url)
    if kind == "journal":
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path = Path(url).expanduser() if url else Path(default_journal)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(path)))
        except OSError as exc:
            raise BenchError(
                f"cannot open journal storage {path}: {exc.strerror or exc}; "
                "pass a writable --storage path or --out folder"
            ) from None
    engine_kwargs: dict[str, Any] = {}
    if kind == "postgresql":
        engine_kwargs = {"connect_args": {"connect_timeout": 10}, "pool_pre_ping": True}
    shown = redact(url)
    for attempt in range(4):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=HEARTBEAT_S,
                    grace_period=GRACE_S,
                    heartbeat_stale_trial_callback=(
                        optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)
                    ),
                )
        except Exception as exc:  # sqlalchemy/driver errors: unreachable, bad URL, no driver
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            if attempt < 3 and _schema_race(exc):
                time.sleep(0.5 + attempt)  # another worker is creating the tables right now
                continue
            raise BenchError(
                f"cannot reach storage {shown}: {first[:200]}; check the URL and that "
                "the server is running"
            ) from None
    raise AssertionError("unreachable")


def _schema_race(exc: BaseException) -> bool:
    """True for the errors two workers get when they create Optuna's tables at once."""
    text = str(exc).lower()
    return any(s in text for s in ("already exists", "duplicate key", "uniqueviolation"))


def worker_tag() -> str:
    """``host:pid`` of this process, stored on each trial it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def fail_dead_local_trials(study) -> list[int]:
    """Mark RUNNING trials started by a dead process on this host as FAIL (journal storages
    have no heartbeat). Returns their numbers."""
    from optuna.trial import TrialState

    host = socket.gethostname()
    dead = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        tag_host, _, pid = str(t.user_attrs.get(attrs.WORKER, "")).rpartition(":")
        if tag_host != host or not pid.isdigit() or _alive(int(pid)):
            continue
        study._storage.set_trial_user_attr(t._trial_id, attrs.FAIL_REASON, "worker died")
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        dead.append(t.number)
    return dead


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    state = Path(f"/proc/{pid}/stat")
    try:  # a zombie is dead
        return state.read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True
