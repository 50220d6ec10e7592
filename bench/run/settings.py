"""The settings of one ``bench run``/``bench search``: the flags as typed values
(:class:`RunFlags`, what the command layer reads off the command line, once), what was asked
for once every flag is checked and resolved (:class:`RunConfig`, frozen: recorded and hashed
into the record) and the little that changes while it runs (:class:`RunState`: the budget
clock, the speed cache, the path its search end is published at for its workers).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from bench.data.spec import DatasetSpec
    from bench.search.budget import RunBudget
    from bench.search.spaces import Space


@dataclass(frozen=True)
class RunFlags:
    """The flags of ``bench run``/``bench search`` as given (:mod:`bench.run.flags` defines
    them; the fields are their argparse names). The flags one command lacks keep the value
    that means "not asked for"."""

    dataset: str
    budget: str
    size: int | None
    data_dir: str | None
    plugins: str
    device: str
    out: str
    quiet: bool
    families: str
    augment: str
    storage: str | None
    study: str | None
    metric: str
    sampler: str
    pruner: str
    seed: int
    img_size: int | None
    cv: int | None
    max_memory: str | None
    n_trials: int | None
    spaces: str | None = None
    seeds: int | None = None  # bench run only
    ensemble: int = 1  # bench run only
    jobs: int = 1  # bench run only
    repeats: int = 1  # bench run only
    follow: str | None = None  # bench search only: a worker of bench run --jobs

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> RunFlags:
        """The flags among ``values`` (``vars()`` of the parsed command line)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


@dataclass(frozen=True)
class RunConfig:
    """What a ``bench run``/``bench search`` was asked for, every flag checked and resolved
    (:func:`bench.run.command.prepare`); :meth:`config` is what the record holds and hashes.
    A worker's ``bench search`` arguments are rebuilt from it
    (:func:`bench.run.workers.worker_argv`)."""

    dataset: str  # as given: catalog name, folder:PATH or npz:PATH
    spec: DatasetSpec
    data_size: int
    img_size: int
    space: Space
    study_name: str
    storage_url: str | None
    storage_kind: str
    journal_path: Path | None
    out: Path
    device: torch.device
    metric: str
    sampler: str
    pruner: str
    seed: int
    seeds: int  # final fits (0: a search worker)
    finalize: bool  # bench run (True) or bench search
    quiet: bool
    n_trials: int | None
    data_dir: str | None
    max_epochs: int
    budget_s: int
    budget_text: str  # --budget as given (the display's title)
    constraint: str  # the budget's label in run ids and tables
    families: tuple[str, ...] = ()
    augment: tuple[str, ...] = ()
    space_dir: Path | None = None  # --spaces, absolute (None: the package's search spaces)
    ensemble: int = 1  # distinct configurations the final ensemble may hold
    cv: int = 0  # folds of the trials' cross-validation (0: the official val split)
    memory_limit: int | None = None  # bytes this process may hold (CPU trials cap their batch)
    gpu_memory_limit: int | None = None  # this process's share of --max-memory when given (CUDA)
    jobs: int = 1  # local search processes (the run itself and jobs - 1 workers)
    plugins: str = ""  # --plugins as given (its workers import them too)
    follow: Path | None = None  # a worker: the file holding the run's search end
    study_key: str | None = None  # the default name before ``.r<k>`` (None: --study as given)
    repeat: int = 1  # k of the study ``{study_key}.r{k}`` (bench.search.repeats)

    @property
    def device_type(self) -> str:
        """``cpu`` or ``cuda``: the device a worker is asked for."""
        return getattr(self.device, "type", "cpu")

    @property
    def storage_arg(self) -> str | None:
        """The storage a worker joins: the URL, or the journal file."""
        return self.storage_url if self.storage_kind != "journal" else str(self.journal_path)

    def config(self) -> dict:
        """The resolved run configuration (recorded, and hashed with the params)."""
        return {
            "dataset": self.spec.name,
            "data_size": self.data_size,
            "img_size": self.img_size,
            "families": list(self.space.families),
            "augment": list(self.augment),
            "metric": self.metric,
            "sampler": self.sampler,
            "pruner": self.pruner,
            "seed": self.seed,
            "seeds": self.seeds,
            "ensemble": self.ensemble,
            "cv": self.cv,
            "jobs": self.jobs,
            "max_memory": self.memory_limit,
            "budget_s": int(self.budget_s),
            "study_name": self.study_name,
            "storage_kind": self.storage_kind,
        }

    def final_seeds(self) -> list[int]:
        """The seeds of every configuration's final fits: ``seed, seed+1, ...``, ``seeds`` of
        them."""
        return [self.seed + i for i in range(self.seeds)]


@dataclass
class RunState:
    """What changes while a run runs: its budget clock, the speeds measured here (``speed_key``
    -> train images/s; the first-trial choice fills it, the trials reuse it) and, with
    ``--jobs``, the file its search end is published to for its workers; for a resumed run, the
search time of its earlier parts (their wall time is in the budget's shifted ``t0``)."""

    budget: RunBudget
    speeds: dict[str, float] = field(default_factory=dict)
    publish: Path | None = None
    search_before_s: float = 0.0  # seconds earlier parts of a resumed run searched
