"""``timm:<name>``: any timm model, input channels and classes adapted (timm imported lazily)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.models.spec import TIMM_PREFIX, ModelSpec, unknown_passthrough

NO_WEIGHTS = (None, False, "", "none", "false")
HUB = (True, "hub", "true")


def timm_spec(name: str) -> ModelSpec:
    """Spec of timm model ``name`` (without the prefix); unknown names get close matches.

    Raises:
        BenchError: ``name`` is not a timm model.
    """
    import timm

    if not name or not timm.is_model(name):
        raise unknown_passthrough(
            "timm model", name, timm.list_models(), TIMM_PREFIX, "timm.list_models()"
        )
    return ModelSpec(
        name=TIMM_PREFIX + name,
        build=functools.partial(build_timm, name),
        label=name,
        source="timm",
    )


def build_timm(
    model_name: str,
    *,
    num_classes: int,
    in_chans: int,
    img_size: int,
    pretrained: str | bool | None = None,
    **kwargs: Any,
):
    """``timm.create_model`` with ``in_chans``/``num_classes`` set; other kwargs pass through.

    Args:
        model_name: timm model name.
        num_classes: number of outputs.
        in_chans: input channels.
        img_size: input size; passed on to models with a fixed input size (ViTs).
        pretrained: None/False for random init, ``"hub"`` for timm's own weights (needs a
            network), or a checkpoint file (state dict, ``.pth``/``.safetensors``); its first
            conv is adapted to ``in_chans`` and its classifier dropped if its shape differs.
        **kwargs: passed to ``timm.create_model`` (``drop_rate``, ``drop_path_rate``, ...).

    Returns:
        The timm ``nn.Module``.
    """
    import timm

    cfg = timm.get_pretrained_cfg(model_name)
    if cfg is not None and cfg.fixed_input_size:
        kwargs.setdefault("img_size", img_size)
    kwargs.update(model_name=model_name, num_classes=num_classes, in_chans=in_chans)
    if pretrained in NO_WEIGHTS:
        return timm.create_model(pretrained=False, **kwargs)
    if pretrained in HUB:
        try:
            return timm.create_model(pretrained=True, **kwargs)
        except (OSError, RuntimeError, ValueError) as exc:
            raise BenchError(
                f"could not get timm's pretrained weights for {model_name} "
                f"({type(exc).__name__}: {_line(exc)}); "
                "pass --pretrained PATH with a local checkpoint file instead"
            ) from None
    return _create_from_file(Path(str(pretrained)), cfg, kwargs)


def _create_from_file(path: Path, cfg: Any, kwargs: dict[str, Any]):
    """Create the model with weights from a local checkpoint, through timm's own loader."""
    import timm
    from timm.models import load_state_dict

    name = kwargs["model_name"]
    if not path.is_file():
        raise BenchError(
            f"--pretrained {str(path)!r} is neither 'hub' nor an existing checkpoint file"
        )
    try:
        state = load_state_dict(str(path))
    except Exception as exc:  # torch/safetensors raise many types for a bad file
        raise BenchError(
            f"cannot read checkpoint {path}: {type(exc).__name__}: {_line(exc)}; "
            "pass a state-dict file saved with torch.save or safetensors"
        ) from None
    overlay: dict[str, Any] = {"state_dict": state, "source": "", "file": None, "url": None}
    if cfg is not None:
        # Describe the checkpoint's own stem and classifier, so timm adapts exactly what differs.
        conv = _first(cfg.first_conv)
        if conv and f"{conv}.weight" in state and state[f"{conv}.weight"].ndim == 4:
            overlay["input_size"] = (state[f"{conv}.weight"].shape[1], *cfg.input_size[1:])
        head = _first(cfg.classifier)
        weight = state.get(f"{head}.weight") if head else None
        overlay["num_classes"] = int(weight.shape[0]) if weight is not None else -1
    try:
        return timm.create_model(pretrained=True, pretrained_cfg_overlay=overlay, **kwargs)
    except (RuntimeError, KeyError, ValueError, AssertionError) as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = " ".join(lines[:2]) or type(exc).__name__
        raise BenchError(
            f"checkpoint {path} does not fit timm model {name}: {detail[:300]}; "
            f"save it from timm.create_model({name!r}, ...)"
        ) from None


def _first(names: str | tuple[str, ...] | None) -> str | None:
    """The first of timm's ``first_conv``/``classifier`` names (a string or a tuple)."""
    if isinstance(names, (tuple, list)):
        return names[0] if names else None
    return names


def _line(exc: BaseException) -> str:
    """The first sentence of an exception's message, for a one-line error."""
    text = " ".join(str(exc).split())
    return text.split(". ")[0][:200]
