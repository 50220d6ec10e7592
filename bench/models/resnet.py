"""ResNet-18 and ResNet-50 on torchvision's ResNet, with the MedMNIST stem at small sizes.

At ``img_size <= 64`` the stem is the MedMNIST v2 adaptation: a 3x3 stride-1 conv and no
max-pool (the network of the MedMNIST experiments' ``models.py``). At larger sizes it is
torchvision's standard 7x7 stride-2 conv and 3x3 max-pool. With the default arguments both
are the plain networks of the MedMNIST v2 baselines.
"""

from __future__ import annotations

from bench.models.registry import register_model

SMALL_STEM_MAX = 64  # img_size at or below this uses the 3x3 stride-1 stem and no max-pool


def build_resnet(
    arch: str,
    *,
    num_classes: int,
    in_chans: int,
    img_size: int,
    dropout: float = 0.0,
    zero_init_residual: bool = False,
):
    """Build torchvision's ``arch`` (``resnet18``/``resnet50``) adapted to the input.

    Args:
        arch: torchvision builder name.
        num_classes: number of outputs.
        in_chans: input channels.
        img_size: input height and width; picks the stem.
        dropout: dropout before the final linear layer (0: the plain ``fc``).
        zero_init_residual: zero the last BN of each residual branch (torchvision's option).

    Returns:
        The ``torchvision.models.ResNet``.
    """
    import torchvision.models as tvm
    from torch import nn

    model = getattr(tvm, arch)(
        weights=None, num_classes=num_classes, zero_init_residual=zero_init_residual
    )
    if img_size <= SMALL_STEM_MAX:
        model.conv1 = nn.Conv2d(in_chans, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    elif in_chans != 3:
        model.conv1 = nn.Conv2d(in_chans, 64, kernel_size=7, stride=2, padding=3, bias=False)
    if img_size <= SMALL_STEM_MAX or in_chans != 3:  # torchvision's init for the new conv
        nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    if dropout > 0:
        model.fc = nn.Sequential(nn.Dropout(dropout), model.fc)
    return model


@register_model(label="ResNet-18")
def resnet18(
    *,
    num_classes: int,
    in_chans: int,
    img_size: int,
    dropout: float = 0.0,
    zero_init_residual: bool = False,
):
    """ResNet-18 (BasicBlock [2, 2, 2, 2]); see ``build_resnet`` for the arguments."""
    return build_resnet(
        "resnet18",
        num_classes=num_classes,
        in_chans=in_chans,
        img_size=img_size,
        dropout=dropout,
        zero_init_residual=zero_init_residual,
    )


@register_model(label="ResNet-50")
def resnet50(
    *,
    num_classes: int,
    in_chans: int,
    img_size: int,
    dropout: float = 0.0,
    zero_init_residual: bool = False,
):
    """ResNet-50 (Bottleneck [3, 4, 6, 3]); see ``build_resnet`` for the arguments."""
    return build_resnet(
        "resnet50",
        num_classes=num_classes,
        in_chans=in_chans,
        img_size=img_size,
        dropout=dropout,
        zero_init_residual=zero_init_residual,
    )
