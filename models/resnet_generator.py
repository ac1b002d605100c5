"""The CycleGAN generator (Zhu et al. 2017, after Johnson et al. 2016): a 7x7 stem, two stride-2
convolutions, 6 or 9 residual blocks, two upsampling steps and a 7x7 output with tanh.
Images are in [-1, 1]."""

from __future__ import annotations

import torch
from torch import nn

from stylecast.models.layers import ReflectConv


def norm_layer(kind: str, channels: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    raise ValueError(f"norm must be instance or batch, got {kind!r}")


def check_size(x: torch.Tensor, multiple: int, why: str) -> None:
    """Generators keep the size only for multiples of their size multiple: refuse the rest
    clearly (the runtime pads frames to the multiple the checkpoint declares)."""
    h, w = x.shape[-2:]
    if h % multiple or w % multiple:
        raise ValueError(
            f"input {h}x{w}: height and width must be multiples of {multiple} ({why}); pad the image first"
        )


class ResnetBlock(nn.Module):
    def __init__(self, channels: int, norm: str, dropout: float = 0.0):
        super().__init__()
        self.body = nn.Sequential(
            ReflectConv(channels, channels, 3),
            norm_layer(norm, channels),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            ReflectConv(channels, channels, 3),
            norm_layer(norm, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """N x C_in x H x W in [-1, 1] (H, W multiples of 4) -> N x C_out x H x W in [-1, 1]."""

    size_multiple = 4

    def __init__(
        self, in_channels: int = 3, out_channels: int = 3, width: int = 64, blocks: int = 9, norm: str = "instance"
    ):
        super().__init__()
        w = width
        self.encoder = nn.Sequential(
            ReflectConv(in_channels, w, 7), norm_layer(norm, w), nn.ReLU(inplace=True),  # N x w x H x W
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), norm_layer(norm, 2 * w), nn.ReLU(inplace=True),  # H/2
            nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1), norm_layer(norm, 4 * w), nn.ReLU(inplace=True),  # H/4
        )  # fmt: skip
        self.blocks = nn.Sequential(*[ResnetBlock(4 * w, norm) for _ in range(blocks)])
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(4 * w, 2 * w, 3, stride=2, padding=1, output_padding=1), norm_layer(norm, 2 * w), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(2 * w, w, 3, stride=2, padding=1, output_padding=1), norm_layer(norm, w), nn.ReLU(inplace=True),
            ReflectConv(w, out_channels, 7),
            nn.Tanh(),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_size(x, self.size_multiple, "two stride-2 convolutions and two transposed ones")
        return self.decoder(self.blocks(self.encoder(x)))
