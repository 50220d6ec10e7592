"""``monai:<network>``: any MONAI network for volumes, built with ``spatial_dims=3`` and the
data's channels and classes (MONAI imported lazily; ``pip install 'bench[monai]'``)."""

from __future__ import annotations

import functools
import inspect
from typing import Any

from bench.config import check_param_types
from bench.errors import BenchError, one_line
from bench.models.spec import MONAI_PREFIX, ModelSpec, signature_types, unknown_passthrough

IN_NAMES = ("in_channels", "n_input_channels")  # what MONAI's networks call the input channels
OUT_NAMES = ("out_channels", "num_classes")  # and the outputs


def _nets():
    try:
        import monai.networks.nets as nets
    except ImportError:
        raise BenchError(
            "monai:<network> needs MONAI, which is not installed: pip install 'bench[monai]' "
            "(or pip install monai)"
        ) from None
    return nets


def monai_spec(name: str) -> ModelSpec:
    """Spec of MONAI network ``name`` (a class or builder in ``monai.networks.nets``).

    Raises:
        BenchError: MONAI is missing, or ``name`` is not one of its networks.
    """
    nets = _nets()
    names = sorted(n for n in dir(nets) if not n.startswith("_") and callable(getattr(nets, n)))
    if name not in names:
        raise unknown_passthrough(
            "MONAI network", name, names, MONAI_PREFIX, "monai.networks.nets"
        )
    return ModelSpec(
        name=MONAI_PREFIX + name,
        build=functools.partial(build_monai, name),
        sizes=(28, 64),
        label=name,
        source="monai",
        ndim=3,
    )


def build_monai(name: str, *, num_classes: int, in_chans: int, img_size: int, **kwargs: Any):
    """``monai.networks.nets.<name>(spatial_dims=3, <in>=in_chans, <out>=num_classes)``;
    ``img_size`` goes to networks that need it (transformers); other kwargs pass through."""
    net = getattr(_nets(), name)
    params = _parameters(net)
    given: dict[str, Any] = {}
    if "spatial_dims" in params:
        given["spatial_dims"] = 3
    for names, value in ((IN_NAMES, in_chans), (OUT_NAMES, num_classes)):
        key = next((n for n in names if n in params), None)
        if key is None:
            raise BenchError(
                f"monai:{name} takes none of {', '.join(names)}; it is not a classifier bench "
                "can build (try monai:DenseNet121, monai:resnet18, monai:SEResNet50)"
            )
        given[key] = value
    if "img_size" in params:
        given["img_size"] = (img_size,) * 3
    own = inspect.signature(net).parameters.values()  # a builder fills its class's own
    missing = [p.name for p in own if p.default is p.empty and p.kind not in (
        p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in {**given, **kwargs}]  # fmt: skip
    if missing:
        raise BenchError(
            f"monai:{name} needs {', '.join(missing)}, which bench does not set (it sets "
            f"{', '.join(given)}); give them with --param NAME=VALUE, or use a classifier "
            "that needs nothing more: monai:DenseNet121, monai:resnet18 or monai:SEResNet50"
        )
    check_param_types(kwargs, *_types(net), owner=f"monai:{name}")
    try:
        return net(**given, **kwargs)
    except (TypeError, ValueError, AssertionError, RuntimeError) as exc:
        raise BenchError(f"monai:{name} cannot be built ({type(exc).__name__}: "
                         f"{one_line(exc)}); check its --param values against "
                         f"monai.networks.nets.{name}") from None


def _parameters(net) -> dict:
    """Keyword parameters of a network class or builder; a builder taking ``**kwargs``
    (``resnet18``) also gets those of the class it returns (``ResNet``)."""
    params = dict(inspect.signature(net).parameters)
    target = _returned_class(net)
    if target is not None:
        params.update(inspect.signature(target).parameters)
    return params


def _types(net) -> tuple[dict, dict]:
    """(name -> type, name -> default) of what :func:`_parameters` lists."""
    types, defaults = signature_types(net)
    target = _returned_class(net)
    if target is not None:
        more, more_defaults = signature_types(target)
        types, defaults = {**more, **types}, {**more_defaults, **defaults}
    return types, defaults


def _returned_class(net):
    """The class a builder taking ``**kwargs`` returns (its return annotation), else None."""
    sig = inspect.signature(net)
    if not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return None
    ret = sig.return_annotation
    target = getattr(_nets(), ret, None) if isinstance(ret, str) else ret
    return target if inspect.isclass(target) else None
