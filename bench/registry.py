"""A small generic registry: register, get (with close-match hints), list (fnmatch), built-in
modules and entry-point plugins loaded on first lookup, snapshot/restore for tests."""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from bench.errors import BenchError, PluginError

T = TypeVar("T")

NAME_RE = re.compile(r"^[a-z0-9_]+$")


@dataclass(frozen=True)
class Snapshot(Generic[T]):
    """What :meth:`Registry.snapshot` saves: the entries in order, their origins, the plugin
    errors and whether the entry-point group was read."""

    entries: tuple[tuple[str, T, str], ...]
    plugin_errors: tuple[str, ...]
    plugins_loaded: bool


class Registry(Generic[T]):
    """Name -> spec mapping for one kind of thing (models, datasets, augmentations).

    The first lookup imports the ``builtins`` modules by name (their decorators register the
    built-in entries, as timm's package imports its model modules), then every module of the
    entry-point ``group``.

    Args:
        kind: what the entries are, for messages ("model family").
        group: the entry-point group whose modules are imported on first lookup.
        builtins: dotted modules that register the built-in entries when imported, in order.
    """

    def __init__(self, kind: str, group: str | None = None, *, builtins: tuple[str, ...] = ()):
        self.kind = kind
        self.group = group
        self.builtins = tuple(builtins)
        self._entries: dict[str, T] = {}
        self._origin: dict[str, str] = {}
        self._builtins_loaded = not self.builtins
        self._plugins_loaded = group is None
        self.plugin_errors: list[str] = []

    def register(self, name: str, spec: T, *, origin: str = "") -> T:
        """Add ``spec`` under ``name``; a duplicate name is an error naming both modules."""
        if not NAME_RE.match(name):
            raise BenchError(f"{self.kind} name {name!r} must be lowercase [a-z0-9_]")
        if name in self._entries:
            raise BenchError(
                f"{self.kind} {name!r} is registered twice: by {self._origin[name]} "
                f"and by {origin or 'unknown'}; rename one of them"
            )
        self._entries[name] = spec
        self._origin[name] = origin
        return spec

    def unregister(self, name: str) -> None:
        """Remove ``name`` (used by tests that register temporary entries)."""
        self._entries.pop(name, None)
        self._origin.pop(name, None)

    def get(self, name: str) -> T:
        """Return the spec for ``name`` or raise one line with up to three close matches."""
        self.load()
        try:
            return self._entries[name]
        except KeyError:
            raise BenchError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, list(self._entries), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        return f"unknown {self.kind} {name!r}{hint} (see `bench {self._listing_cmd()}`)"

    def _listing_cmd(self) -> str:
        return "datasets" if "dataset" in self.kind else "models"

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        self.load()
        return iter(sorted(self._entries))

    def list(self, pattern: str = "*") -> list[str]:
        """Sorted names matching the fnmatch ``pattern``."""
        self.load()
        return sorted(n for n in self._entries if fnmatch.fnmatchcase(n, pattern))

    def names(self) -> list[str]:
        """Every name in registration order (built-ins first, then plugins)."""
        self.load()
        return list(self._entries)

    def load(self) -> None:
        """Register the built-ins, then the entry-point plugins (each once)."""
        self.load_builtins()
        self.load_plugins()

    def load_builtins(self) -> None:
        """Import the ``builtins`` modules once, in order; importing one registers its entries."""
        if self._builtins_loaded:
            return
        self._builtins_loaded = True
        for module in self.builtins:
            importlib.import_module(module)

    def load_plugins(self, *, again: bool = False) -> None:
        """Import every module of the entry-point group once; report and skip failures.

        Args:
            again: read the group again (as a fresh process would), e.g. after a test
                installed a distribution.
        """
        if self.group is None or (self._plugins_loaded and not again):
            return
        self._plugins_loaded = True
        from importlib.metadata import entry_points

        for ep in entry_points(group=self.group):
            dist = ep.dist.name if ep.dist is not None else "?"
            try:
                with plugin_source(f"entry-point:{dist}"):
                    importlib.import_module(ep.value.split(":")[0])
            except Exception as exc:  # a broken plugin must not break bench
                msg = f"plugin {ep.name!r} ({ep.value}) failed to load and was skipped: {exc}"
                self.plugin_errors.append(msg)
                print(f"warning: {msg}", file=sys.stderr)

    def snapshot(self) -> Snapshot[T]:
        """The registry's state after loading its built-ins and plugins, for :meth:`restore`."""
        self.load()
        entries = tuple((n, spec, self._origin[n]) for n, spec in self._entries.items())
        return Snapshot(entries, tuple(self.plugin_errors), self._plugins_loaded)

    def restore(self, snapshot: Snapshot[T]) -> None:
        """Put back the state :meth:`snapshot` saved (tests: no registration leaks out)."""
        self._entries = {name: spec for name, spec, _ in snapshot.entries}
        self._origin = {name: origin for name, _, origin in snapshot.entries}
        self.plugin_errors[:] = snapshot.plugin_errors
        self._builtins_loaded = True
        self._plugins_loaded = snapshot.plugins_loaded


_SOURCE_STACK: list[str] = []


class plugin_source:
    """Context manager: registrations inside it are recorded with this source."""

    def __init__(self, source: str) -> None:
        self.source = source

    def __enter__(self) -> None:
        _SOURCE_STACK.append(self.source)

    def __exit__(self, *exc: object) -> None:
        _SOURCE_STACK.pop()


def current_source(module: str) -> str:
    """The source label of a registration made now by ``module``."""
    if _SOURCE_STACK:
        return _SOURCE_STACK[-1]
    return "built-in" if module.startswith("bench.") else f"module:{module}"


def import_plugins(modules: list[str]) -> None:
    """Import ``--plugins`` dotted modules; a module that fails is one clear error."""
    for mod in modules:
        try:
            with plugin_source(f"plugin:{mod}"):
                importlib.import_module(mod)
        except BenchError:
            raise
        except Exception as exc:
            raise PluginError(
                f"plugin module {mod!r} failed to import: {type(exc).__name__}: {exc}"
            ) from None
