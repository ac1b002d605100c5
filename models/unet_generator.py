"""The pix2pix generator (Isola et al. 2017): a U-Net whose encoder halves the image `depth`
times (7 for 128 x 128 inputs, 8 for 256 x 256) and whose decoder mirrors it, each level
concatenating the encoder's features of the same size (the skip connections carry the edges
across). Dropout in the innermost decoder levels, as in the paper. Images are in [-1, 1].

The decoder doubles the size with the paper's 4x4 transposed convolutions (`upsample=
"transpose"`), or with a nearest-neighbour resize and a 3x3 convolution (`"resize"`), which
cannot lay the uneven kernel overlap of a transposed convolution over the image as a grid
(Odena et al. 2016, "Deconvolution and checkerboard artifacts")."""

from __future__ import annotations

import torch
from torch import nn

from stylecast.models.resnet_generator import check_size, norm_layer

UPSAMPLES = ("transpose", "resize")


def doubling(upsample: str, in_ch: int, out_ch: int, bias: bool) -> list[nn.Module]:
    """Layers that take N x in_ch x H x W to N x out_ch x 2H x 2W."""
    if upsample == "transpose":
        return [nn.ConvTranspose2d(in_ch, out_ch, 4, stride=2, padding=1, bias=bias)]
    return [
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=bias, padding_mode="reflect"),
    ]


class UnetGenerator(nn.Module):
    """N x C_in x H x W in [-1, 1] (H, W multiples of 2**depth) -> N x C_out x H x W in [-1, 1]."""

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        depth: int = 8,
        width: int = 64,
        norm: str = "batch",
        dropout: float = 0.5,
        upsample: str = "transpose",
    ):
        super().__init__()
        if depth < 2:
            raise ValueError("a U-Net needs depth >= 2")
        if upsample not in UPSAMPLES:
            raise ValueError(f"upsample must be one of {UPSAMPLES}, got {upsample!r}")
        self.size_multiple = 2**depth
        widths = [min(width * 2**i, width * 8) for i in range(depth)]  # 64, 128, 256, 512, 512, ...
        self.down = nn.ModuleList()
        previous = in_channels
        for i, w in enumerate(widths):
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2, inplace=False)]
            layers.append(nn.Conv2d(previous, w, 4, stride=2, padding=1, bias=i == 0 or i == depth - 1))
            if 0 < i < depth - 1:
                layers.append(norm_layer(norm, w))
            self.down.append(nn.Sequential(*layers))
            previous = w
        self.up = nn.ModuleList()
        for i in reversed(range(depth)):
            in_ch = widths[i] if i == depth - 1 else widths[i] * 2  # below the bottleneck: skip + up
            out_ch = out_channels if i == 0 else widths[i - 1]
            layers = [nn.ReLU(inplace=False), *doubling(upsample, in_ch, out_ch, bias=i == 0)]
            if i == 0:
                layers.append(nn.Tanh())
            else:
                layers.append(norm_layer(norm, out_ch))
                if depth - 4 <= i < depth - 1 and dropout > 0:  # the three innermost levels
                    layers.append(nn.Dropout(dropout))
            self.up.append(nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_size(x, self.size_multiple, "this U-Net halves the image once per level")
        skips = []
        for layer in self.down:  # each halves the size
            x = layer(x)
            skips.append(x)
        x = self.up[0](skips.pop())  # the bottleneck, back up one level
        for layer in self.up[1:]:
            x = layer(torch.cat([x, skips.pop()], dim=1))
        return x
