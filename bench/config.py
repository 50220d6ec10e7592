"""Parsing of user-facing values: budgets, family lists, key=value hyperparameters."""

from __future__ import annotations

import re
import types
import typing

from bench.errors import ConfigError

_BUDGET_RE = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_budget(text: str) -> int:
    """``4h``, ``90m``, ``1h30m``, ``45s`` -> seconds; anything else is a ConfigError."""
    m = _BUDGET_RE.match(text.strip().lower()) if text else None
    if not m or not any(m.groups()):
        raise ConfigError(
            f"bad budget {text!r}: use hours/minutes/seconds like 4h, 90m, 1h30m or 45s"
        )
    h, mi, s = (int(g) if g else 0 for g in m.groups())
    seconds = h * 3600 + mi * 60 + s
    if seconds <= 0:
        raise ConfigError(f"bad budget {text!r}: it must be more than zero, e.g. 10m")
    return seconds


def format_seconds(seconds: float, *, padded: bool = True) -> str:
    """Seconds as a label, rounded to the second.

    Args:
        seconds: the duration.
        padded: ``3723 -> 1h02m03s``, ``180 -> 3m00s`` (a time shown live or in a table);
            False: the budget form, zero parts left out, which :func:`parse_budget` reads
            back (``180 -> 3m``, ``5400 -> 1h30m``, ``0 -> 0s``).
    """
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    if not padded:
        return "".join(f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (s, "s")) if v) or "0s"
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def size_flag(size: int) -> str:
    """MedMNIST's size suffix in file names: ``""`` at 28 px, ``"_64"`` at 64
    (``breastmnist_64.npz``, ``breastmnist_64_test_...csv``, ``medmnist3d_64.md``)."""
    return "" if size == 28 else f"_{size}"


def at_least(flag: str, value: int, least: int = 1) -> int:
    """``value`` of ``flag`` when it is at least ``least``; a one-line ConfigError otherwise
    (``--img-size 0`` is refused, not taken for "the default")."""
    if value < least:
        raise ConfigError(f"{flag} {value}: give at least {least}")
    return value


def parse_list(text: str | None) -> list[str]:
    """``a,b , c`` -> ``["a", "b", "c"]``; None or empty -> []."""
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def parse_value(text: str):
    """A ``--param`` value: int, float, bool, None or string, in that order."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_params(items: list[str] | None) -> dict:
    """``["depth=3", "dropout=0.1"]`` -> ``{"depth": 3, "dropout": 0.1}``."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"bad --param {item!r}: use NAME=VALUE, e.g. --param depth=3")
        out[key.strip()] = parse_value(value.strip())
    return out


def _takes(hint, value) -> bool:
    """Whether ``value`` (as :func:`parse_value` gives it) fits the type ``hint``; a hint
    this cannot judge (a class, ``Any``) lets the value through to its owner."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_takes(a, value) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if typing.get_origin(hint) in (tuple, list) or hint in (tuple, list):
        return isinstance(value, (tuple, list))
    return True


def _words(hint) -> str:
    """``int | None`` -> ``an integer or none``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_words(a) for a in typing.get_args(hint))
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a word",
             type(None): "none", tuple: "a list", list: "a list"}  # fmt: skip
    return names.get(typing.get_origin(hint) or hint, getattr(hint, "__name__", str(hint)))


def shown(value) -> str:
    """A ``--param`` value as typed: ``true``, ``none``, ``0.001``, ``abc``."""
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    return str(value)


def check_param_types(params: dict, hints: dict, defaults: dict, *, owner: str) -> None:
    """Refuse a ``--param`` value that does not fit its type, before anything is built.

    Args:
        params: name -> value (:func:`parse_params`).
        hints: name -> type hint of the names to check (others are left alone).
        defaults: name -> default value, shown as an example.
        owner: what takes them, e.g. ``model family resnet18``.

    Raises:
        ConfigError: ``--param lr=abc: lr takes a number (training hyperparameter); e.g.
            --param lr=0.001``.
    """
    for name, value in params.items():
        if name in hints and not _takes(hints[name], value):
            example = f"; e.g. --param {name}={shown(defaults[name])}" if defaults.get(
                name) is not None else ""  # fmt: skip
            raise ConfigError(f"--param {name}={shown(value)}: {name} takes "
                              f"{_words(hints[name])} ({owner}){example}")  # fmt: skip
