"""The model-family registry: ``register_model`` decorator, ``create_model`` factory."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.errors import BenchError
from bench.models.spec import MONAI_PREFIX, TIMM_PREFIX, ModelSpec
from bench.registry import Registry, current_source

# The built-in families, registered by importing their modules on first lookup. ``timm:<name>``
# and ``monai:<network>`` models are not registered: get_model_spec resolves them on demand.
MODELS: Registry[ModelSpec] = Registry(
    "model family",
    group="bench.models",
    builtins=(
        "bench.models.hybrid",
        "bench.models.resnet",
        "bench.models.resnet3d",
        "bench.models.small_cnn",
    ),
)


def register_model(
    name: str | None = None,
    *,
    sizes: tuple[int, ...] = (28, 64, 128, 224),
    search_space: str | None = None,
    label: str | None = None,
    ndim: int = 2,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering a family builder; the function name is the default name.
    ``ndim=3`` marks a family for volumes ``(N, C, D, H, W)``."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        key = name or fn.__name__
        spec = ModelSpec(
            name=key,
            build=fn,
            sizes=tuple(sizes),
            search_space=search_space,
            label=label or key,
            source=current_source(fn.__module__),
            ndim=int(ndim),
        )
        MODELS.register(key, spec, origin=fn.__module__)
        return fn

    return deco


def get_model_spec(name: str) -> ModelSpec:
    """Spec of family ``name``; ``timm:<model>`` and ``monai:<network>`` names resolve to the
    timm (2D) and MONAI (3D) passthroughs."""
    if name.startswith(TIMM_PREFIX):
        from bench.models.timm_models import timm_spec

        return timm_spec(name[len(TIMM_PREFIX) :])
    if name.startswith(MONAI_PREFIX):
        from bench.models.monai_models import monai_spec

        return monai_spec(name[len(MONAI_PREFIX) :])
    return MODELS.get(name)


def check_ndim(family: str, ndim: int, dataset: str) -> None:
    """One-line BenchError unless ``family`` takes ``ndim``-D inputs; names those that do."""
    spec = get_model_spec(family)
    if spec.ndim == ndim:
        return
    fits = [n for n in list_models() if get_model_spec(n).ndim == ndim]
    kind = "volumes (3D)" if ndim == 3 else "images (2D)"
    extra = ", or monai:<network>" if ndim == 3 else ", or timm:<model>"
    raise BenchError(
        f"model family {family} takes {spec.ndim}D inputs but {dataset} holds {kind}; "
        f"use one of: {', '.join(fits)}{extra}"
    )


def check_params(name: str, hp: dict[str, Any]) -> None:
    """Refuse, before anything is built, builder kwargs that family ``name`` does not take
    and values that do not fit the type of its builder's parameter (its annotation, else
    its default's type); None values are left out, as :func:`create_model` drops them.

    Raises:
        BenchError: one line naming the parameter and what the family takes.
    """
    from bench.config import check_param_types

    spec = get_model_spec(name)
    accepted = spec.accepted_kwargs()
    hp = {k: v for k, v in hp.items() if v is not None}
    if accepted is not None:
        unknown = sorted(set(hp) - accepted)
        if unknown:
            raise BenchError(
                f"model family {name!r} does not accept {', '.join(unknown)}; "
                f"it takes: {', '.join(sorted(accepted)) or 'no hyperparameters'}"
            )
    check_param_types(hp, *spec.param_types(), owner=f"model family {name}")


def create_model(name: str, *, num_classes: int, in_chans: int, img_size: int, **hp: Any):
    """Build family ``name``; ``hp`` go to the builder unchanged (None values dropped)."""
    spec = get_model_spec(name)
    check_params(name, hp)
    hp = {k: v for k, v in hp.items() if v is not None}
    return spec.build(num_classes=num_classes, in_chans=in_chans, img_size=img_size, **hp)


def list_models(pattern: str = "*") -> list[str]:
    """Registered family names matching ``pattern`` (fnmatch)."""
    return MODELS.list(pattern)


def model_for(data_spec, family: str, *, img_size: int, **hp: Any):
    """Build ``family`` for dataset ``data_spec``: its outputs and channels, ``img_size`` input."""
    return create_model(
        family,
        num_classes=data_spec.n_outputs,
        in_chans=data_spec.n_channels,
        img_size=img_size,
        **hp,
    )


def param_count(model) -> int:
    """Number of parameters of ``model`` (timm's ``param_count``)."""
    return int(sum(p.numel() for p in model.parameters()))


def method_label(family: str, img_size: int) -> str:
    """The table label of a family at an input size: ``ResNet-18 (28)``."""
    return f"{get_model_spec(family).label or family} ({img_size})"
