"""The MedMNIST v2 3D baselines: ResNet-18 and ResNet-50 made 3D by converting the 2D
network's layers (2.5D, 3D or ACS; see ``bench.models.convert3d``), with the MedMNIST 3x3
stride-1 stem and no max-pool, as the MedMNIST 3D experiments build them."""

from __future__ import annotations

from bench.models.convert3d import convert_2d_to_3d
from bench.models.registry import register_model
from bench.models.resnet import build_resnet

SIZES_3D = (28, 64)  # MedMNIST 3D volumes are 28^3 or 64^3
LABELS = {"2.5d": "2.5D", "3d": "3D", "acs": "ACS"}


def build_resnet3d(arch: str, mode: str, *, num_classes: int, in_chans: int, img_size: int,
                   dropout: float = 0.0, zero_init_residual: bool = False):  # fmt: skip
    """torchvision's ``arch`` with the MedMNIST stem, converted to 3D by ``mode``."""
    model = build_resnet(arch, num_classes=num_classes, in_chans=in_chans, img_size=img_size,
                         dropout=dropout, zero_init_residual=zero_init_residual)  # fmt: skip
    return convert_2d_to_3d(model, mode)


def _register(arch: str, mode: str, label: str) -> None:
    def build(*, num_classes: int, in_chans: int, img_size: int, dropout: float = 0.0,
              zero_init_residual: bool = False):  # fmt: skip
        return build_resnet3d(arch, mode, num_classes=num_classes, in_chans=in_chans,
                              img_size=img_size, dropout=dropout,
                              zero_init_residual=zero_init_residual)  # fmt: skip

    name = f"{arch}_{mode.replace('.', '_')}"
    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"{label} + {LABELS[mode]}: {arch} with {LABELS[mode]} convolutions."
    register_model(name, sizes=SIZES_3D, label=f"{label} + {LABELS[mode]}", ndim=3)(build)


for _arch, _label in (("resnet18", "ResNet-18"), ("resnet50", "ResNet-50")):
    for _mode in LABELS:
        _register(_arch, _mode, _label)
