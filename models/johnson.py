"""Johnson et al. 2016, "Perceptual Losses for Real-Time Style Transfer and Super-Resolution".

Image transformation network: a strided-convolution encoder, residual blocks at 1/4 resolution,
and an upsample + convolution decoder, with instance normalization (Ulyanov et al. 2016) in
place of batch normalization. One network per style. The defaults are the paper's: width 32,
five residual blocks, 9x9 outer kernels, reflection padding throughout.
"""

from __future__ import annotations

import torch
from torch import nn

from stylecast.models.layers import ConvBlock, ReflectConv, ResidualBlock


class TransformerNet(nn.Module):
    """RGB in [0, 1], N x 3 x H x W with H and W multiples of 4 -> stylized RGB, same shape.

    The output is not squashed; callers clamp it to [0, 1] when converting to pixels, which
    keeps gradients alive during training.
    """

    size_multiple = 4  # two stride-2 convolutions

    def __init__(self, width: int = 32, residual_blocks: int = 5, outer_kernel: int = 9):
        super().__init__()
        w = width
        self.encoder = nn.Sequential(
            ConvBlock(3, w, outer_kernel),  # N x w x H x W
            ConvBlock(w, 2 * w, 3, stride=2),  # N x 2w x H/2 x W/2
            ConvBlock(2 * w, 4 * w, 3, stride=2),  # N x 4w x H/4 x W/4
        )
        self.residuals = nn.Sequential(*[ResidualBlock(4 * w) for _ in range(residual_blocks)])
        self.decoder = nn.Sequential(
            ConvBlock(4 * w, 2 * w, 3, upsample=True),  # N x 2w x H/2 x W/2
            ConvBlock(2 * w, w, 3, upsample=True),  # N x w x H x W
            ReflectConv(w, 3, outer_kernel),  # N x 3 x H x W
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.encoder(x)
        features = self.residuals(features)
        return self.decoder(features)
