"""Building blocks shared by the feed-forward stylizers.

Convolutions pad by reflection by default (Johnson et al. 2016, supplementary): zero padding
makes dark borders appear in stylized output. The small CPU network pads with zeros instead,
inside the convolution, because a separate reflection-pad op costs about a third of its run
time in ONNX Runtime. Upsampling is nearest-neighbour followed by a convolution instead of a
transposed convolution (Odena et al. 2016, "Deconvolution and Checkerboard Artifacts"), which
removes the checkerboard pattern.
"""

from __future__ import annotations

import torch
from torch import nn


class ReflectConv(nn.Sequential):
    """Reflection padding + convolution, so output size = ceil(input / stride)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__(
            nn.ReflectionPad2d(kernel // 2),
            nn.Conv2d(in_ch, out_ch, kernel, stride=stride, groups=groups),
        )


def padded_conv(
    in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1, reflect: bool = True
) -> nn.Module:
    if reflect:
        return ReflectConv(in_ch, out_ch, kernel, stride, groups)
    return nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, groups=groups)


class SeparableConv(nn.Sequential):
    """Depthwise kxk then pointwise 1x1 (MobileNet): ~k*k times fewer multiply-adds."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, reflect: bool = True):
        super().__init__(
            padded_conv(in_ch, in_ch, kernel, stride, groups=in_ch, reflect=reflect),
            nn.Conv2d(in_ch, out_ch, 1),
        )


def conv(
    in_ch: int, out_ch: int, kernel: int, stride: int = 1, separable: bool = False, reflect: bool = True
) -> nn.Module:
    if separable:
        return SeparableConv(in_ch, out_ch, kernel, stride, reflect)
    return padded_conv(in_ch, out_ch, kernel, stride, reflect=reflect)


class ConvBlock(nn.Sequential):
    """conv -> instance norm -> ReLU, optionally preceded by a 2x nearest upsample."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int,
        stride: int = 1,
        upsample: bool = False,
        separable: bool = False,
        reflect: bool = True,
    ):
        layers: list[nn.Module] = [nn.Upsample(scale_factor=2, mode="nearest")] if upsample else []
        layers += [
            conv(in_ch, out_ch, kernel, stride, separable, reflect),
            nn.InstanceNorm2d(out_ch, affine=True),
            nn.ReLU(inplace=True),
        ]
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with instance norm and an identity shortcut (He et al. 2016)."""

    def __init__(self, channels: int, separable: bool = False, reflect: bool = True):
        super().__init__()
        self.body = nn.Sequential(
            conv(channels, channels, 3, separable=separable, reflect=reflect),
            nn.InstanceNorm2d(channels, affine=True),
            nn.ReLU(inplace=True),
            conv(channels, channels, 3, separable=separable, reflect=reflect),
            nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)
