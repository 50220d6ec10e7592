"""Optuna storages from a URL: a journal file by default, SQLite or PostgreSQL (RDB with
heartbeats, so a dead worker's trial is failed and retried), and the liveness of local workers
for journals, which have no heartbeat."""

from __future__ import annotations

import functools
import os
import re
import socket
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from bench.errors import BenchError, causes
from bench.search import attrs

HEARTBEAT_S = 30  # RDB heartbeat interval; a worker silent for GRACE_S is declared dead
GRACE_S = 120
RECONNECT_ENV = "BENCH_RECONNECT_S"  # seconds a worker waits for a lost database to come back
RECONNECT_S = 300.0


def storage_kind(url: str | None) -> str:
    """``journal`` (a file path or None), ``sqlite``, ``postgresql``, or the URL's scheme."""
    if not url or "://" not in url:
        return "journal"
    scheme = url.split("://", 1)[0].split("+", 1)[0].lower()
    return "postgresql" if scheme in ("postgres", "postgresql") else scheme


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages)."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def open_storage(url: str | None, *, default_journal: Path, repair: bool = True):
    """Open (and check) the Optuna storage named by ``url``.

    Args:
        url: None (journal at ``default_journal``), a file path (journal file),
            ``sqlite:///f.db`` or ``postgresql://user:pw@host/db`` (RDB storage with heartbeats
            and a retry of trials whose worker died).
        default_journal: the journal file used when ``url`` is None.
        repair: cut a journal's damaged tail first (:mod:`bench.search.journal`); False
            when the caller has just done so.

    Raises:
        BenchError: the storage cannot be opened or reached (one line, no password).
    """
    import optuna

    kind = storage_kind(url)
    if kind == "journal":
        from optuna.storages.journal import JournalFileBackend

        from bench.search.journal import repair_and_say

        path = Path(url).expanduser() if url else Path(default_journal)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if repair:
                repair_and_say(path)
            return tagging_journal_storage()(JournalFileBackend(str(path)))
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
                return reconnecting_rdb_storage()(
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


class DatabaseGone(BenchError):
    """The database stayed unreachable for longer than a worker waits for it."""


def _lost_connection(exc: BaseException | None) -> BaseException | None:
    """The lost or refused database connection behind ``exc``, if that is what it is."""
    from sqlalchemy import exc as sa

    lost = (sa.OperationalError, sa.InterfaceError, sa.DisconnectionError,
            sa.PendingRollbackError)  # fmt: skip  (the last: a session the loss left behind)
    return next(
        (e for e in causes(exc)
         if isinstance(e, lost) or (isinstance(e, sa.DBAPIError) and e.connection_invalidated)),
        None,
    )  # fmt: skip


def _retrying(method):
    """``method`` of an RDB storage, retried with back-off while the database is away (a
    restart), for at most ``$BENCH_RECONNECT_S`` (default 300) seconds."""

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        wait_s = float(os.environ.get(RECONNECT_ENV) or RECONNECT_S)
        give_up, delay = time.monotonic() + wait_s, 0.0
        while True:
            try:
                return method(self, *args, **kwargs)
            except Exception as exc:
                if delay and _done_before(method, exc):
                    return True  # the lost attempt had committed: the trial is finished
                lost = _lost_connection(exc)
                if lost is None:
                    raise
                first = (str(lost).strip().splitlines() or [type(lost).__name__])[0][:160]
                left = give_up - time.monotonic()
                if left <= 0:
                    raise DatabaseGone(
                        f"lost the database {redact(self.url)} for {wait_s:.0f}s ({first}); "
                        "start the server and run the same command again: the study resumes"
                    ) from None
                if not delay:
                    print(f"warning: database connection lost ({first}); retrying for up to "
                          f"{wait_s:.0f}s", file=sys.stderr)  # fmt: skip
                _drop_session(self)
                delay = min(max(2 * delay, 0.5), 10.0)
                time.sleep(min(delay, left))

    return call


def _drop_session(storage) -> None:
    """Forget this thread's session (its transaction died with the connection), so that
    the retry starts a fresh one from the pool."""
    try:
        storage.scoped_session.remove()
    except Exception:  # noqa: BLE001 (closing a dead connection may raise; it is gone anyway)
        pass


def _done_before(method, exc: BaseException) -> bool:
    """A retried ``set_trial_state_values`` finding its trial already finished: the attempt
    whose connection was lost had committed before the answer was lost."""
    import optuna

    return method.__name__ == "set_trial_state_values" and isinstance(
        exc, optuna.exceptions.UpdateFinishedTrialError
    )


@functools.cache
def tagging_journal_storage():
    """Optuna's JournalStorage that writes this process's worker tag with each trial it
    starts: in the trial's own record when it creates one, right after the state change
    when it takes an enqueued one. A kill before the objective's first line (the sampler
    can take seconds) then still leaves a trial :func:`fail_dead_local_trials` can tell
    is dead."""
    from optuna.storages.journal import JournalStorage
    from optuna.trial import TrialState, create_trial

    class TaggingJournalStorage(JournalStorage):
        __doc__ = tagging_journal_storage.__doc__

        def create_new_trial(self, study_id, template_trial=None):
            if template_trial is None:
                tag = {attrs.WORKER: worker_tag()}
                template_trial = create_trial(state=TrialState.RUNNING, user_attrs=tag)
            return super().create_new_trial(study_id, template_trial)

        def set_trial_state_values(self, trial_id, state, values=None):
            taken = super().set_trial_state_values(trial_id, state, values)
            if taken and state == TrialState.RUNNING:
                self.set_trial_user_attr(trial_id, attrs.WORKER, worker_tag())
            return taken

    return TaggingJournalStorage


@functools.cache
def reconnecting_rdb_storage():
    """Optuna's RDBStorage whose every storage call survives a database restart."""
    import optuna

    base = optuna.storages.RDBStorage
    retried = {name: _retrying(getattr(base, name)) for name in _RETRIED}
    body = {"__doc__": base.__doc__, "__module__": __name__, **retried}
    return type("ReconnectingRDBStorage", (base,), body)


_RETRIED = (  # Optuna's storage API, the heartbeat, and the private calls its cache makes
    "create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr",
    "get_study_id_from_name", "get_study_name_from_id", "get_study_directions",
    "get_study_user_attrs", "get_study_system_attrs", "get_trial_user_attrs",
    "get_trial_system_attrs", "get_all_studies", "create_new_trial", "set_trial_param",
    "get_trial_param", "set_trial_state_values", "set_trial_intermediate_value",
    "set_trial_user_attr", "set_trial_system_attr", "get_trial_id_from_study_id_trial_number",
    "get_trial", "get_all_trials", "get_best_trial", "record_heartbeat", "_get_stale_trial_ids",
    "_create_new_trial", "_get_best_trial_id", "_get_trials", "_set_trial_param",
)  # fmt: skip


def _schema_race(exc: BaseException) -> bool:
    """True for the errors two workers get when they create Optuna's tables at once."""
    text = str(exc).lower()
    return any(s in text for s in ("already exists", "duplicate key", "uniqueviolation"))


def worker_tag() -> str:
    """``host:pid`` of this process, stored on each trial it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def fail_dead_local_trials(study, *, untagged: bool = False) -> list[int]:
    """Mark RUNNING trials started by a dead process on this host as FAIL (journal storages
    have no heartbeat) and enqueue each once more, as Optuna's retry callback does for a dead
    RDB worker. ``untagged``: also those with no worker tag (its record was cut from a
    repaired journal). Returns their numbers."""
    from optuna.trial import TrialState

    host = socket.gethostname()
    dead = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        tag = str(t.user_attrs.get(attrs.WORKER, ""))
        tag_host, _, pid = tag.rpartition(":")
        if not (untagged and not tag) and (
            tag_host != host or not pid.isdigit() or alive(int(pid))
        ):
            continue
        reason = "worker died" if tag else "its worker's records were cut from the study file"
        study._storage.set_trial_user_attr(t._trial_id, attrs.FAIL_REASON, reason)
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        dead.append(t.number)
        params = t.params or t.system_attrs.get("fixed_params")  # an enqueued one, unstarted
        if attrs.RETRY_OF not in t.user_attrs and params:
            study.enqueue_trial(params, user_attrs={attrs.RETRY_OF: t.number})
    return dead


def alive(pid: int) -> bool:
    """Whether process ``pid`` of this host still runs (a zombie counts as dead)."""
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
