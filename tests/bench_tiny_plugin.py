"""Test-only model families, registered through the public decorator (the plugin path).

Imported by the tests directly and by ``bench ... --plugins bench_tiny_plugin`` in
subprocesses (with ``tests/`` on PYTHONPATH).
"""

from __future__ import annotations

from pathlib import Path

from bench import register_model

SPACES = Path(__file__).resolve().parent / "spaces"


def _mlp(in_chans: int, img_size: int, hidden: int, num_classes: int, dropout: float = 0.0):
    from torch import nn

    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_chans * img_size * img_size, hidden),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, num_classes),
    )


@register_model(sizes=(28,), search_space=str(SPACES / "tiny_mlp.yaml"), label="Tiny MLP")
def tiny_mlp(
    *, num_classes: int, in_chans: int, img_size: int, hidden: int = 16, dropout: float = 0.0
):
    """A two-layer perceptron: trains in milliseconds."""
    return _mlp(in_chans, img_size, hidden, num_classes, dropout)


@register_model(sizes=(28,), search_space=str(SPACES / "tiny_boom.yaml"))
def tiny_boom(*, num_classes: int, in_chans: int, img_size: int, hidden: int = 8):
    """A plugin family whose builder raises: the study must go on."""
    raise RuntimeError(f"tiny_boom cannot be built (hidden={hidden})")


@register_model(sizes=(28,), search_space=str(SPACES / "tiny_nan.yaml"))
def tiny_nan(*, num_classes: int, in_chans: int, img_size: int, hidden: int = 8):
    """A family whose outputs are NaN: training diverges at once."""
    from torch import nn

    class NaNHead(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = _mlp(in_chans, img_size, hidden, num_classes)

        def forward(self, x):
            return self.body(x) * float("nan")

    return NaNHead()
