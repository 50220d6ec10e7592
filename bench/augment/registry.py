"""The augmentation registry: ``register_augmentation`` decorator, ``build_augmentation`` factory.

An augmentation is built into an *Augment*: a callable
``aug(x, y, generator) -> (x, y)`` over a uint8 batch ``x`` (B, C, H, W) on the device that keeps
shape, dtype and device, draws independently per image, and takes all its randomness from
``generator`` (same generator state, same output).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from bench.errors import BenchError
from bench.registry import Registry, current_source


class Augment(Protocol):
    """A built augmentation (see the module docstring)."""

    info: dict[str, Any]

    def __call__(self, x: Any, y: Any, generator: Any) -> tuple[Any, Any]: ...


@dataclass(frozen=True)
class AugmentContext:
    """What a policy may use besides its own hyperparameters.

    Attributes:
        data: the train and validation splits (no test split); policies read ``data.train`` only.
        img_size: the model input size (batches reach the Augment at the data size).
        seed: the run seed (for anything the policy trains or draws once).
        device: the torch device batches live on.
        deadline: the run's deadline (``.remaining()`` seconds, ``.expired()``) or None.
        cache_dir: where trained artefacts are cached (None: the policy's default).
        prepared: what the policy's ``prepare`` returned (None when it has none).
    """

    data: Any
    img_size: int
    seed: int
    device: Any
    deadline: Any = None
    cache_dir: str | None = None
    prepared: Any = None


@dataclass(frozen=True)
class AugmentSpec:
    """One augmentation policy.

    Attributes:
        name: registry name, e.g. ``simple``.
        build: ``build(ctx: AugmentContext, **hp) -> Augment``.
        prepare: optional ``prepare(ctx, **hp) -> Any`` run once before ``build`` (training,
            caching); its result reaches ``build`` as ``ctx.prepared``.
        params: search parameters, ``{name: {type, low, high, ...}}`` in the search-space
            vocabulary; names are ``<policy>_<knob>`` and are keyword arguments of ``build``.
        random: False for a policy that never changes a batch (``none``).
        source: ``built-in``, ``entry-point:<dist>``, ``plugin:<module>``.
        ndims: the spatial dimensions it works on: (2,) images, (2, 3) volumes too.
    """

    name: str
    build: Callable[..., Any]
    prepare: Callable[..., Any] | None = None
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    random: bool = True
    source: str = "built-in"
    ndims: tuple[int, ...] = (2,)

    def accepted_kwargs(self) -> set[str] | None:
        """Hyperparameter names ``build``/``prepare`` accept, or None if either takes ``**kw``."""
        names: set[str] = set()
        for fn in (self.build, self.prepare):
            if fn is None:
                continue
            params = list(inspect.signature(fn).parameters.values())[1:]  # skip ctx
            if any(p.kind is p.VAR_KEYWORD for p in params):
                return None
            names |= {p.name for p in params}
        return names


# The built-in policies, registered by importing their modules on first lookup.
AUGMENTATIONS: Registry[AugmentSpec] = Registry(
    "augmentation",
    group="bench.augmentations",
    builtins=("bench.augment.autoaugment", "bench.augment.dcgan", "bench.augment.simple"),
)


def register_augmentation(
    name: str | None = None,
    *,
    prepare: Callable[..., Any] | None = None,
    params: dict[str, dict[str, Any]] | None = None,
    random: bool = True,
    ndims: tuple[int, ...] = (2,),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering ``build(ctx, **hp) -> Augment``; the function name is the default.
    ``ndims=(2, 3)`` declares that the policy also takes volumes (B, C, D, H, W)."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        key = name or fn.__name__
        spec = AugmentSpec(
            name=key,
            build=fn,
            prepare=prepare,
            params=dict(params or {}),
            random=random,
            source=current_source(fn.__module__),
            ndims=tuple(ndims),
        )
        AUGMENTATIONS.register(key, spec, origin=fn.__module__)
        return fn

    return deco


def get_augmentation(name: str) -> AugmentSpec:
    """Spec of policy ``name``; unknown names raise one line with close matches."""
    return AUGMENTATIONS.get(name)


def list_augmentations(pattern: str = "*") -> list[str]:
    """Registered policy names matching ``pattern`` (fnmatch)."""
    return AUGMENTATIONS.list(pattern)


def data_ndim(data: Any) -> int:
    """Spatial dimensions of a TrainVal's samples (2 when there is no data, as in a preview)."""
    return int(getattr(getattr(data, "spec", None), "ndim", 2))


def check_augment_ndim(name: str, ndim: int, dataset: str) -> None:
    """One-line BenchError unless policy ``name`` takes ``ndim``-D data; names those that do."""
    spec = get_augmentation(name)
    if ndim in spec.ndims:
        return
    fits = [n for n in list_augmentations() if ndim in get_augmentation(n).ndims]
    raise BenchError(
        f"augmentation {name} works on {' and '.join(f'{d}D' for d in spec.ndims)} data only "
        f"and {dataset} is {ndim}D; use one of: {', '.join(fits)}"
    )


def normalize_params(spec: AugmentSpec, hp: dict[str, Any]) -> dict[str, Any]:
    """``hp`` with None values dropped and ``ratio`` spelled ``<policy>_ratio``.

    Both ``dcgan_ratio`` and the prefix-stripped ``ratio`` are accepted, so callers may pass
    search parameters as named in the space or without the policy prefix.

    Raises:
        BenchError: a name the policy does not take.
    """
    accepted = spec.accepted_kwargs()
    out: dict[str, Any] = {}
    for key, value in hp.items():
        if value is None:
            continue
        full = f"{spec.name}_{key}"
        if accepted is not None and key not in accepted and full in accepted:
            key = full
        out[key] = value
    if accepted is not None:
        unknown = sorted(set(out) - accepted)
        if unknown:
            raise BenchError(
                f"augmentation {spec.name!r} does not accept {', '.join(unknown)}; "
                f"it takes: {', '.join(sorted(accepted)) or 'no parameters'}"
            )
    return out


def build_augmentation(
    name: str,
    *,
    data: Any,
    img_size: int,
    seed: int,
    device: Any,
    deadline: Any = None,
    cache_dir: str | None = None,
    **hp: Any,
) -> Augment:
    """Prepare (if the policy has a ``prepare``) and build policy ``name``.

    Args:
        name: registry name.
        data: a ``TrainVal``; only ``data.train`` is ever read.
        img_size: the model input size.
        seed: the run seed.
        device: the torch device of the batches.
        deadline: caps any training ``prepare`` does.
        cache_dir: where ``prepare`` caches what it trains.
        **hp: the policy's parameters (``dcgan_ratio=0.3`` or ``ratio=0.3``).

    Returns:
        The Augment; ``aug.info`` holds what the policy reports (e.g. training time).
    """
    import torch

    spec = get_augmentation(name)
    if data is not None:
        check_augment_ndim(name, data_ndim(data), data.spec.name)
    hp = normalize_params(spec, hp)
    ctx = AugmentContext(
        data=data,
        img_size=int(img_size),
        seed=int(seed),
        device=torch.device(device),
        deadline=deadline,
        cache_dir=None if cache_dir is None else str(cache_dir),
    )
    if spec.prepare is not None:
        prep_kw = _kwargs_for(spec.prepare, hp)
        ctx = AugmentContext(**{**ctx.__dict__, "prepared": spec.prepare(ctx, **prep_kw)})
    aug = spec.build(ctx, **_kwargs_for(spec.build, hp))
    if not hasattr(aug, "info"):
        try:
            aug.info = {}
        except AttributeError:
            pass
    return aug


def _kwargs_for(fn: Callable[..., Any], hp: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``hp`` that ``fn`` takes (all of them if it takes ``**kw``)."""
    params = list(inspect.signature(fn).parameters.values())[1:]
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return dict(hp)
    names = {p.name for p in params}
    return {k: v for k, v in hp.items() if k in names}


def build_augment(name: str, *, hp: dict[str, Any] | None = None, **context: Any) -> Augment | None:
    """The augmentation callable of policy ``name`` (None for ``none``): a fit's and a
    trial's way to :func:`build_augmentation`, with the policy's parameters as ``hp`` and
    the context (``data``, ``img_size``, ``seed``, ``device``, ``deadline``) as keywords."""
    if not name or name == "none":
        return None
    return build_augmentation(name, **context, **(hp or {}))
