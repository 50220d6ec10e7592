"""Saved models: fits (safetensors + metadata) and ensembles, ``bench predict`` with its input
conversion, and ``bench export`` (ONNX)."""
