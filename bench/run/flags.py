"""The flags of ``bench run`` and ``bench search``, defined once: :mod:`bench.cli` adds them
to its parsers (the data and common ones to ``bench train``, ``evaluate`` and
``augment-preview`` too), and :func:`bench.run.workers.worker_argv` turns a
:class:`~bench.run.settings.RunConfig` back into a worker's ``bench search`` arguments from
the same table (:func:`flag_argv`). Only the standard library here: ``bench --help`` stays
instant.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Flag:
    """One command-line flag: its argparse definition and where a worker's value comes from.

    Attributes:
        name: the flag, e.g. ``--img-size`` (argparse's dest: ``img_size``).
        config: the :class:`~bench.run.settings.RunConfig` attribute a ``bench search``
            worker of the run is given (its resolved value); None: not passed on, or given
            by the caller (``--budget``, ``--quiet``, ``--follow``).
    """

    name: str
    help: str | None = None
    type: Callable[[str], Any] | None = None
    default: Any = None
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    required: bool = False
    store_true: bool = False
    config: str | None = None

    @property
    def dest(self) -> str:
        """The argparse attribute (and :class:`~bench.run.settings.RunFlags` field)."""
        return self.name.lstrip("-").replace("-", "_")

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        """``parser.add_argument`` with this definition."""
        kwargs: dict[str, Any] = {"help": self.help}
        if self.required:
            kwargs["required"] = True
        if self.store_true:
            kwargs["action"] = "store_true"
        else:
            kwargs.update(type=self.type, default=self.default, choices=self.choices,
                          metavar=self.metavar)  # fmt: skip
        parser.add_argument(self.name, **kwargs)


SPACES_HELP = ("folder of search space files (common.yaml, <family>.yaml) to use instead of "
               "the package's; bench spaces shows those, copy their folder to start")
"""``--spaces``: of ``bench run``/``search`` and of ``bench spaces``/``models``."""

DATA_FLAGS = (
    Flag("--dataset", required=True, config="dataset",
         help="catalog name (breastmnist, medical_mnist), folder:PATH or npz:PATH"),
    Flag("--size", type=int, config="data_size",
         help="data size: which file to load (28/64/128/224; default 28)"),
    Flag("--data-dir", config="data_dir",
         help="folder with the data files already on disk (or set BENCH_DATA_DIR)"),
)  # fmt: skip

COMMON_FLAGS = (
    Flag("--plugins", default="", config="plugins",
         help="comma-separated modules to import first"),
    Flag("--device", default="auto", choices=("auto", "cpu", "cuda"), config="device_type",
         help="auto: cuda when present, else cpu"),
    Flag("--out", default="runs", config="out",
         help="output folder: the run folders OUT/<run_id>/ and the study journals "
         "OUT/studies/ (default runs)"),
    Flag("--quiet", store_true=True, help="plain log lines, no live display"),
)  # fmt: skip

SEARCH_FLAGS = (
    *DATA_FLAGS,
    *COMMON_FLAGS,
    Flag("--budget", required=True, help="wall-clock budget: 4h, 90m, 1h30m, 45s"),
    Flag("--families", default="", config="families",
         help="families to search (default: all built-in)"),
    Flag("--augment", default="", config="augment",
         help="augmentation policies to search (default: those of common.yaml)"),
    Flag("--spaces", metavar="DIR", config="space_dir", help=SPACES_HELP),
    Flag("--storage", config="storage_arg",
         help="Optuna storage URL: sqlite:///f.db, postgresql://..., or a journal "
         "file path (default: the journal file OUT/studies/<study>.journal)"),
    Flag("--study", config="study_name", help="study name (default derived from the space)"),
    Flag("--metric", default="auc", choices=("auc", "acc"), config="metric",
         help="validation metric the search maximises"),
    Flag("--sampler", default="tpe", choices=("tpe", "random"), config="sampler",
         help="Optuna sampler"),
    Flag("--pruner", default="hyperband", choices=("hyperband", "median", "none"),
         config="pruner", help="Optuna pruner of unpromising trials"),
    Flag("--seed", type=int, default=0, config="seed",
         help="the first random seed: seeds the search; bench run's final fits use "
         "--seed, --seed+1, ..."),
    Flag("--img-size", type=int, config="img_size",
         help="model input size (default: the data size)"),
    Flag("--cv", type=int, metavar="K", config="cv",
         help="trials cross-validate over train+val in K stratified folds; the "
         "final fits then train on all of train+val (bench train: one per fold)"),
    Flag("--max-memory", metavar="SIZE", config="memory_limit",
         help="memory the run may use, e.g. 8G (default: 80%% of what is available; "
         "shared among --jobs): CPU trials cap their batch size to fit, or are pruned; "
         "on CUDA each process's share also caps its GPU memory"),
    Flag("--n-trials", type=int, help=argparse.SUPPRESS),  # tests
)  # fmt: skip
"""The flags ``bench run`` and ``bench search`` share, in ``--help`` order."""

RUN_FLAGS = (
    Flag("--seeds", type=int,
         help="how many seeds: each chosen configuration's final fits (default 3; with --cv, "
         "each refits on train+val)"),
    Flag("--ensemble", type=int, default=5,
         help="distinct configurations the ensemble selected on val may hold (1: none; "
         "default 5)"),
    Flag("--jobs", type=int, default=1, metavar="N",
         help="local search processes on the study (each its share of the cores, or its own "
         "GPU); this one does the final phase (default 1)"),
    Flag("--repeats", type=int, default=1, metavar="R",
         help="independent searches one after another, each with the whole budget, its own "
         "study, search seed and record (default 1)"),
)  # fmt: skip
"""``bench run``'s own flags (never passed to a worker)."""

WORKER_FLAGS = (Flag("--follow", help=argparse.SUPPRESS),)  # bench run --jobs
"""``bench search``'s own flags: a worker of ``bench run --jobs`` follows the run's search end."""


def add_flags(parser: argparse.ArgumentParser, flags: Iterable[Flag]) -> None:
    """Add ``flags`` to ``parser``, in order."""
    for flag in flags:
        flag.add_to(parser)


def flag_argv(flags: Iterable[Flag], values: Mapping[str, Any]) -> list[str]:
    """The arguments that give ``flags`` their ``values`` (by flag name), in table order: a
    switch when true, ``--flag value`` otherwise (lists and tuples comma-joined); a flag
    whose value is missing or empty (None, "", 0, False) is left out, so the parser's
    default holds."""
    argv: list[str] = []
    for flag in flags:
        value = values.get(flag.name)
        if isinstance(value, (list, tuple)):
            value = ",".join(map(str, value))
        if not value:
            continue
        argv += [flag.name] if flag.store_true else [flag.name, str(value)]
    return argv
