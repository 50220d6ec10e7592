"""The exceptions the CLI turns into one-line user messages (exit 2)."""

from __future__ import annotations

from collections.abc import Iterator


class BenchError(Exception):
    """A problem with the user's input; the message names it and the fix."""


class DataError(BenchError):
    """A dataset is unknown, missing, corrupt or in the wrong format."""


class ConfigError(BenchError):
    """A flag, budget, search space or config value is invalid."""


class PluginError(BenchError):
    """A plugin failed to import or to register."""


def causes(exc: BaseException | None) -> Iterator[BaseException]:
    """``exc``, then what caused it or was being handled when it was raised, and so on."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def first_cause(exc: BaseException | None, kind: type) -> BaseException | None:
    """The first of :func:`causes` that is a ``kind``, or None."""
    return next((e for e in causes(exc) if isinstance(e, kind)), None)


def one_line(exc: BaseException, limit: int = 200) -> str:
    """``exc``'s message on one line, at most ``limit`` characters (its type if it has none),
    for the one-line error that replaces a third-party traceback."""
    return " ".join(str(exc).split())[:limit] or type(exc).__name__
