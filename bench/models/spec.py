"""What a model family is (``ModelSpec``) and the ``timm:``/``monai:`` name prefixes the
registry and the passthrough sources share; a leaf module (no other bench module imported
but ``bench.errors``)."""

from __future__ import annotations

import difflib
import functools
import inspect
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from bench.errors import BenchError

TIMM_PREFIX = "timm:"
MONAI_PREFIX = "monai:"


@dataclass(frozen=True)
class ModelSpec:
    """One model family.

    Attributes:
        name: registry name (lowercase), e.g. ``resnet18``.
        build: ``build(*, num_classes, in_chans, img_size, **hp) -> nn.Module``.
        sizes: input sizes the family supports.
        search_space: path of its search-space YAML, or ``package:resource`` (None:
            ``<name>.yaml`` in the package's ``bench/search_spaces/`` or ``--spaces DIR``).
        label: table label, e.g. ``ResNet-18`` (shown as ``ResNet-18 (28)``).
        source: ``built-in``, ``entry-point:<dist>``, ``plugin:<module>``.
        ndim: spatial dimensions of its input: 2 (images) or 3 (volumes).
    """

    name: str
    build: Callable[..., Any]
    sizes: tuple[int, ...] = (28, 64, 128, 224)
    search_space: str | None = None
    label: str = ""
    source: str = "built-in"
    ndim: int = 2

    def accepted_kwargs(self) -> set[str] | None:
        """Names of the builder's hyperparameters, or None if it takes ``**kwargs``."""
        params = inspect.signature(self.build).parameters.values()
        if any(p.kind is p.VAR_KEYWORD for p in params):
            return None
        return {p.name for p in params} - {"num_classes", "in_chans", "img_size"}

    def param_types(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(name -> type, name -> default) of the builder's keyword parameters
        (:func:`signature_types`)."""
        return signature_types(self.build)


def signature_types(fn: Callable[..., Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(name -> type, name -> default) of the parameters of ``fn`` (a function, a
    ``functools.partial`` or a class: its ``__init__``): the annotation where it resolves,
    else the type of a default that is not None; parameters with neither are left out."""
    target = fn.func if isinstance(fn, functools.partial) else fn
    target = target.__init__ if inspect.isclass(target) else target
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # an annotation naming what its module does not import
        hints = {}
    types, defaults = {}, {}
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        default = None if p.default is p.empty else p.default
        hint = hints.get(p.name, type(default) if default is not None else None)
        if hint is not None:
            types[p.name], defaults[p.name] = hint, default
    return types, defaults


def unknown_passthrough(
    what: str, name: str, names: Iterable[str], prefix: str, where: str
) -> BenchError:
    """The one-line error for an unknown ``timm:``/``monai:`` name, with close matches."""
    close = difflib.get_close_matches(name, list(names), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(prefix + c for c in close)}?" if close else ""
    return BenchError(f"unknown {what} {name!r}{hint} (see {where} for the names)")
