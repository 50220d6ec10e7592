"""Registers the built-in model families by importing their modules (an explicit, short list).

``timm:<name>`` models are not registered here: ``get_model_spec`` resolves them on demand
through ``bench.models.timm_models``.
"""

from __future__ import annotations

from bench.models import hybrid, resnet, resnet3d, small_cnn  # noqa: F401  (imports register)
