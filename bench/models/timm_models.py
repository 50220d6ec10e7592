"""``timm:<name>``: any timm model, input channels and classes adapted (timm imported lazily)."""

from __future__ import annotations

import functools
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.config import check_param_types
from bench.errors import BenchError
from bench.models.spec import TIMM_PREFIX, ModelSpec, signature_types, unknown_passthrough

NO_WEIGHTS = (None, False, "", "none", "false")
HUB = (True, "hub", "true")
HUB_PROBE_S = 3.0  # how long --pretrained hub waits to reach the Hub before going offline


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

    given = dict(kwargs)  # the --param values: checked against the model's class once built
    cfg = timm.get_pretrained_cfg(model_name)
    if cfg is not None and cfg.fixed_input_size:
        kwargs.setdefault("img_size", img_size)
    kwargs.update(model_name=model_name, num_classes=num_classes, in_chans=in_chans)
    try:
        if pretrained in NO_WEIGHTS:
            model = timm.create_model(pretrained=False, **kwargs)
        elif pretrained in HUB:
            model = _create_from_hub(kwargs)
        else:
            model = _create_from_file(Path(str(pretrained)), cfg, kwargs)
    except (TypeError, ValueError, AssertionError, RuntimeError) as exc:  # its constructor's
        raise BenchError(f"timm:{model_name} cannot be built ({type(exc).__name__}: "
                         f"{_line(exc)}); check its --param values against "
                         f"timm.create_model({model_name!r})") from None  # fmt: skip
    check_param_types(given, *signature_types(type(model)), owner=f"timm:{model_name}")
    return model


def _create_from_hub(kwargs: dict[str, Any]):
    """Create the model with timm's own pretrained weights; offline at once when the Hub
    cannot be reached (:func:`hub_offline_if_unreachable`)."""
    import timm

    with hub_offline_if_unreachable() as offline:
        try:
            return timm.create_model(pretrained=True, **kwargs)
        except (OSError, RuntimeError, ValueError) as exc:
            why = f"{offline} and they are not in the local cache" if offline else (
                f"{type(exc).__name__}: {_line(exc)}")  # fmt: skip
            raise BenchError(
                f"could not get timm's pretrained weights for {kwargs['model_name']} ({why}); "
                "pass --pretrained PATH with a local checkpoint file instead"
            ) from None


@contextmanager
def hub_offline_if_unreachable(timeout_s: float = HUB_PROBE_S):
    """Hugging Face Hub offline mode for the block when its host cannot be reached within
    ``timeout_s`` (cached weights still load; missing ones fail at once instead of after
    a minute of retries). Yields why it is offline (``huggingface.co:443 is unreachable
    (...)``), or "" when the Hub is reachable or offline mode was already on."""
    import huggingface_hub.constants as hub

    if hub.HF_HUB_OFFLINE:
        yield "HF_HUB_OFFLINE is set"
        return
    url = urlsplit(hub.ENDPOINT)
    host = url.hostname or "huggingface.co"
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as exc:
        hub.HF_HUB_OFFLINE = True
        try:
            yield f"{host}:{port} is unreachable ({exc.strerror or exc})"
        finally:
            hub.HF_HUB_OFFLINE = False
        return
    yield ""


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
