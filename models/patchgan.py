"""The PatchGAN discriminator (Isola et al. 2017): a fully convolutional net whose every output
scores one image patch as real or fake. With three stride-2 layers (the default) each output
sees a 70 x 70 patch of the input."""

from __future__ import annotations

import torch
from torch import nn

from stylecast.models.resnet_generator import norm_layer


def receptive_field(layers: int) -> int:
    """Side of the input patch one output of a PatchGAN with `layers` stride-2 layers sees."""
    size = 1
    for stride, kernel in reversed([(2, 4)] * layers + [(1, 4), (1, 4)]):
        size = (size - 1) * stride + kernel
    return size


class PatchDiscriminator(nn.Module):
    """N x C x H x W in [-1, 1] -> N x 1 x H' x W' logits (one per patch)."""

    def __init__(self, in_channels: int = 3, width: int = 64, layers: int = 3, norm: str = "batch"):
        super().__init__()
        blocks: list[nn.Module] = [
            nn.Conv2d(in_channels, width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        channels = width
        for i in range(1, layers + 1):
            out = width * min(2**i, 8)
            stride = 2 if i < layers else 1  # the last one keeps the size (the paper's C512 s1)
            blocks += [
                nn.Conv2d(channels, out, 4, stride=stride, padding=1, bias=False),
                norm_layer(norm, out),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            channels = out
        blocks.append(nn.Conv2d(channels, 1, 4, stride=1, padding=1))
        self.layers = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
