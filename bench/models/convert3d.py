"""2D networks made 3D by converting their layers, as the MedMNIST v2 3D baselines are (the
``acsconv`` package's converters, reimplemented: its 0.1.1 release fails on current torch).

Every ``Conv2d`` becomes, by ``mode``:

- ``3d``: a ``Conv3d`` with the kernel inflated to k x k x k (I3D: the 2D kernel repeated
  along depth and divided by k, so a volume constant along depth gives the 2D response);
- ``2.5d``: a ``Conv3d`` with a 1 x k x k kernel: the 2D kernel on each axial slice;
- ``acs``: an :class:`ACSConv`: the output channels split into three groups whose 2D kernels
  run in the axial (H, W), coronal (D, W) and sagittal (D, H) planes.

Stride and padding apply on all three axes (the 1-wide axis of a 2.5D/ACS kernel gets no
padding). Batch norm, pooling and dropout become their 3D versions; the weights of the 2D
network (its initialisation) are carried over.
"""

from __future__ import annotations

import functools

from bench.errors import BenchError

MODES = ("2.5d", "3d", "acs")


def acs_split(out_channels: int) -> tuple[int, int, int]:
    """Output channels of the axial, coronal and sagittal groups (``acsconv``'s split)."""
    base, rest = divmod(out_channels, 3)
    return base + (rest > 0), base + (rest > 1), base


def _triple(v) -> tuple:
    """A 2D size as 3D: ``k -> (k, k, k)``, ``(h, w) -> (h, h, w)`` (depth like height)."""
    if isinstance(v, int) or v is None:
        return (v, v, v)
    v = tuple(v)
    return (v[0], *v) if len(v) == 2 else v


@functools.lru_cache(maxsize=1)
def _acs_module():
    """The ACSConv class (built on first use, so importing this module needs no torch)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class ACSConv(nn.Module):
        """Axial-coronal-sagittal convolution of a (out, in, k, k) 2D kernel over volumes."""

        spatial_dims = 3  # for bench.device.DevicePolicy: a volume model with 2D weights

        def __init__(self, conv2d) -> None:
            super().__init__()
            if conv2d.groups != 1 or conv2d.kernel_size[0] != conv2d.kernel_size[1]:
                raise BenchError("ACS conversion needs square kernels and groups=1")
            self.weight = nn.Parameter(conv2d.weight.detach().clone())
            self.bias = None
            if conv2d.bias is not None:
                self.bias = nn.Parameter(conv2d.bias.detach().clone())
            self.stride = (conv2d.stride[0],) * 3
            self.dilation = (conv2d.dilation[0],) * 3
            self.padding = conv2d.padding[0]
            self.split = acs_split(conv2d.out_channels)

        def forward(self, x):
            a, c, _ = self.split
            w, p = self.weight, self.padding
            parts = (
                (w[:a].unsqueeze(2), (0, p, p)),  # axial: H x W kernel on each D slice
                (w[a : a + c].unsqueeze(3), (p, 0, p)),  # coronal: D x W
                (w[a + c :].unsqueeze(4), (p, p, 0)),  # sagittal: D x H
            )
            out = torch.cat(
                [
                    F.conv3d(x, k, None, self.stride, pad, self.dilation)
                    for k, pad in parts
                    if k.shape[0]
                ],
                dim=1,
            )
            return out if self.bias is None else out + self.bias.view(1, -1, 1, 1, 1)

    return ACSConv


def convert_conv(conv2d, mode: str):
    """The 3D counterpart of one ``nn.Conv2d`` (weights carried over)."""
    import torch
    from torch import nn

    if mode == "acs":
        return _acs_module()(conv2d)
    k, s, p, d = (conv2d.kernel_size, conv2d.stride, conv2d.padding, conv2d.dilation)
    if mode == "3d":
        kernel, pad, dil = (k[0], k[0], k[1]), (p[0], p[0], p[1]), (d[0], d[0], d[1])
    else:  # 2.5d
        kernel, pad, dil = (1, k[0], k[1]), (0, p[0], p[1]), (1, d[0], d[1])
    conv = nn.Conv3d(conv2d.in_channels, conv2d.out_channels, kernel, stride=(s[0], s[0], s[1]),
                     padding=pad, dilation=dil, groups=conv2d.groups,
                     bias=conv2d.bias is not None)  # fmt: skip
    w = conv2d.weight.detach()
    with torch.no_grad():
        if mode == "3d":
            conv.weight.copy_(w.unsqueeze(2).expand_as(conv.weight) / kernel[0])
        else:
            conv.weight.copy_(w.unsqueeze(2))
        if conv2d.bias is not None:
            conv.bias.copy_(conv2d.bias.detach())
    return conv


def _convert_other(child):
    """3D counterpart of a norm, pooling or dropout layer; None for layers without a
    spatial dimension (ReLU, Linear, Flatten, containers)."""
    from torch import nn

    if isinstance(child, nn.BatchNorm2d):
        bn = nn.BatchNorm3d(child.num_features, child.eps, child.momentum, child.affine,
                            child.track_running_stats)  # fmt: skip
        bn.load_state_dict(child.state_dict())
        return bn
    if isinstance(child, nn.MaxPool2d):
        return nn.MaxPool3d(_triple(child.kernel_size), _triple(child.stride),
                            _triple(child.padding), _triple(child.dilation),
                            ceil_mode=child.ceil_mode)  # fmt: skip
    if isinstance(child, nn.AvgPool2d):
        return nn.AvgPool3d(_triple(child.kernel_size), _triple(child.stride),
                            _triple(child.padding), ceil_mode=child.ceil_mode)  # fmt: skip
    if isinstance(child, nn.AdaptiveAvgPool2d):
        return nn.AdaptiveAvgPool3d(_triple(child.output_size))
    if isinstance(child, nn.AdaptiveMaxPool2d):
        return nn.AdaptiveMaxPool3d(_triple(child.output_size))
    if isinstance(child, nn.Dropout2d):
        return nn.Dropout3d(child.p)
    if "2d" in type(child).__name__.lower():
        raise BenchError(f"no 3D counterpart for {type(child).__name__}; cannot convert")
    return None


def convert_2d_to_3d(model, mode: str):
    """Convert ``model`` (in place) to take volumes ``(N, C, D, H, W)``; returns it."""
    from torch import nn

    if mode not in MODES:
        raise BenchError(f"unknown 3D conversion {mode!r}; use one of {', '.join(MODES)}")
    for name, child in model.named_children():
        if isinstance(child, nn.Conv2d):
            setattr(model, name, convert_conv(child, mode))
        elif (new := _convert_other(child)) is not None:
            setattr(model, name, new)
        else:
            convert_2d_to_3d(child, mode)
    return model
