"""Which study a ``bench run`` without ``--study`` searches: its name (the command's key plus a
repeat index, :func:`repeat_name`), the search seed of each repeat, and the choice of the
lowest repeat whose study no run has finished (:func:`choose_study`), read from the storage
without creating anything. A run marks its study finished when its record is written
(:data:`FINISHED`); it keeps the time its parts spent in the study's user attrs
(:data:`SPENT`, :data:`SEARCH`), so a resumed run's budget and record cover every part.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

FINISHED = "finished_run"  # study user attr: the run id whose record finished the study
SPENT = "run_spent_s"  # wall seconds the run's parts spent so far (from process start)
SEARCH = "run_search_s"  # of which searching
SEED_STEP = 7919  # repeat k searches with seed + SEED_STEP * (k - 1)


def run_key(prefix: str, *, budget_label: str, seed: int) -> str:
    """``{prefix}.{budget_label}.s{seed}``: a command's studies, before the repeat index
    (``prefix`` is :func:`bench.search.study.study_name`'s)."""
    return f"{prefix}.{budget_label}.s{seed}"


def repeat_name(key: str, k: int) -> str:
    """The study of repeat ``k`` (1, 2, ...) of the command ``key``: ``{key}.r{k}``."""
    return f"{key}.r{k}"


def search_seed(seed: int, k: int) -> int:
    """The seed of repeat ``k``'s sampler, folds and final fits: ``seed`` itself for k = 1."""
    return seed + SEED_STEP * (k - 1)


@dataclass(frozen=True)
class StudyChoice:
    """The study a run searches: repeat ``k``, its name, what earlier parts left in it
    (``n_trials``, of them ``n_finished`` in a finished state; ``spent_s`` and ``search_s``
    of its earlier parts) and the earlier studies passed over as finished (name, run id)."""

    k: int
    name: str
    n_trials: int = 0
    n_finished: int = 0
    spent_s: float = 0.0
    search_s: float = 0.0
    passed: tuple[tuple[str, str], ...] = ()

    def lines(self) -> list[str]:
        """What to tell the user: the studies passed over, and a resume."""
        out = []
        if self.passed:
            name, run_id = self.passed[-1]
            out.append(f"study {name} finished (run {run_id}); starting study {self.name} "
                       "(a repeat)")  # fmt: skip
        if self.n_trials:
            out.append(f"resuming study {self.name}: {self.n_finished} finished trials, "
                       f"{self.spent_s:.0f} s spent")  # fmt: skip
        return out


@dataclass(frozen=True)
class _Found:
    """A study found in the storage: its user attrs and trial counts."""

    attrs: dict
    n_trials: int
    n_finished: int


def choose_study(key: str, find: Callable[[str], _Found | None], *, after: int = 0
                 ) -> StudyChoice:  # fmt: skip
    """The lowest repeat above ``after`` whose study is not finished.

    Args:
        key: :func:`run_key`.
        find: a study's summary by name, None when absent (:func:`study_finder`).
        after: repeats at or below it are not considered (a later repeat of one command).
    """
    passed: list[tuple[str, str]] = []
    k = after + 1
    while True:
        name = repeat_name(key, k)
        found = find(name)
        if found is None:
            return StudyChoice(k, name, passed=tuple(passed))
        if FINISHED not in found.attrs:
            return StudyChoice(
                k, name, n_trials=found.n_trials, n_finished=found.n_finished,
                spent_s=float(found.attrs.get(SPENT, 0.0)),
                search_s=float(found.attrs.get(SEARCH, 0.0)), passed=tuple(passed),
            )  # fmt: skip
        passed.append((name, str(found.attrs[FINISHED])))
        k += 1


def study_finder(url: str | None, *, journal_dir: Path) -> Callable[[str], _Found | None]:
    """:func:`choose_study`'s ``find`` on the storage ``url``, creating nothing: with no
    ``url``, each study's own journal file ``journal_dir/<name>.journal`` (read only where
    it exists); else the one storage, its study summaries read once."""
    from bench.search.storage import storage_kind

    if not url:
        def find(name: str) -> _Found | None:  # fmt: skip
            path = Path(journal_dir) / f"{name}.journal"
            return _summary(_open(str(path)), name) if path.is_file() else None

        return find
    if storage_kind(url) == "journal" and not Path(url).expanduser().is_file():
        return lambda name: None
    storage = _open(url)
    names = {s.study_name for s in storage.get_all_studies()}
    return lambda name: _summary(storage, name) if name in names else None


def _open(url: str):
    """The storage at ``url`` as it is (a damaged journal tail is skipped, not repaired)."""
    from bench.search.storage import open_storage

    return open_storage(url, default_journal=Path(url), repair=False)


def _summary(storage, name: str) -> _Found | None:
    """The user attrs and trial counts of study ``name`` in ``storage``."""
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return None
    states = [t.state for t in storage.get_all_trials(study_id, deepcopy=False)]
    return _Found(dict(storage.get_study_user_attrs(study_id)), len(states),
                  sum(s.is_finished() for s in states))  # fmt: skip
