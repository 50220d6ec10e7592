"""``monai:<network>``: any MONAI network for volumes, built with ``spatial_dims=3`` and the
data's channels and classes (MONAI imported lazily; ``pip install 'bench[monai]'``)."""

from __future__ import annotations

import functools
import inspect
from typing import Any

from bench.errors import BenchError
from bench.models.spec import MONAI_PREFIX, ModelSpec, unknown_passthrough

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
    return net(**given, **kwargs)


def _parameters(net) -> dict:
    """Keyword parameters of a network class or builder; a builder taking ``**kwargs``
    (``resnet18``) also gets those of the class it returns (``ResNet``)."""
    sig = inspect.signature(net)
    params = dict(sig.parameters)
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        ret = sig.return_annotation
        target = getattr(_nets(), ret, None) if isinstance(ret, str) else ret
        if inspect.isclass(target):
            params.update(inspect.signature(target).parameters)
    return params
