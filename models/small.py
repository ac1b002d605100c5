"""A Johnson-style stylizer sized for real time on a laptop CPU.

Same recipe as Johnson et al. 2016 (strided encoder, residual blocks with instance norm,
upsample + convolution decoder, trained with the same perceptual losses), reshaped for a CPU:

- the stem convolution has stride 2, so only the last upsample + convolution runs at full
  resolution (full-resolution layers dominate a CPU's memory traffic);
- three downsamplings put the residual blocks at 1/8 resolution, where a 64-channel block is
  cheap and the receptive field is larger than the standard net's;
- depthwise-separable convolutions in the residual blocks (MobileNet, Howard et al. 2017);
- zero padding inside the convolutions at full and half resolution: a separate reflection-pad op
  there costs a third of the run time in ONNX Runtime; the runtime's reflected margin (below)
  keeps their few pixels of edge effect outside the picture. Optionally (`reflect_deep=True`)
  the layers at 1/4 and 1/8 resolution pad by reflection, where a pad op is cheap: zero padding
  there tells the net where the picture ends tens of pixels in, and the plain net learns to
  paint a frame there (a coloured rim and a dark line 10-20 px inside the edge);
- additive skip connections from the encoder at 1/2 and 1/4 resolution (U-Net, Ronneberger et
  al. 2015): the 1/8 bottleneck holds one value per pixel, too little to rebuild the content's
  edges; the skips carry them around it for the price of two additions;
- optionally (`antialias=True`) a binomial blur before each stride-2 convolution and bilinear
  instead of nearest upsampling (Zhang 2019): the plain net's output depends on where the
  picture sits on its 8-pixel sampling grid, so a moving picture makes its texture jump; the
  anti-aliased one follows the move (docs/temporal-training.md);
- optionally a larger instance-norm epsilon (`norm_eps`, 1e-3 for the default): each norm
  divides by sqrt(variance + eps), so a feature map whose variance is below eps (as on a wall
  or a road) is damped instead of stretched to full contrast, sensor noise and all; one far
  above it is normalized as before (docs/temporal-training.md, "Instance-norm epsilon").

At 640x360 it needs ~9 k multiply-adds per pixel, about a sixteenth of the standard network.
"""

from __future__ import annotations

import torch
from torch import nn

from stylecast.models.layers import ConvBlock, ResidualBlock, fused_output, upsample_2x


class SmallTransformerNet(nn.Module):
    """RGB in [0, 1], N x 3 x H x W with H and W multiples of 8 -> stylized RGB, same shape."""

    size_multiple = 8  # three stride-2 convolutions
    # zero padding darkens and streaks the outer pixels; the runtime adds this many reflected
    # pixels on each side and crops them off, so those effects fall outside the picture
    margin = 8

    def __init__(
        self,
        width: int = 16,
        residual_blocks: int = 5,
        stem_kernel: int = 5,
        antialias: bool = False,
        norm_eps: float = 1e-5,
        reflect_deep: bool = False,
    ):
        super().__init__()
        w, aa, eps, deep = width, antialias, norm_eps, reflect_deep
        self.down1 = ConvBlock(3, w, stem_kernel, stride=2, reflect=False, antialias=aa, norm_eps=eps)
        self.down2 = ConvBlock(w, 2 * w, 3, stride=2, reflect=False, antialias=aa, norm_eps=eps)
        self.down3 = ConvBlock(2 * w, 4 * w, 3, stride=2, reflect=deep, antialias=aa, norm_eps=eps)
        blocks = [ResidualBlock(4 * w, separable=True, reflect=deep, norm_eps=eps) for _ in range(residual_blocks)]
        self.residuals = nn.Sequential(*blocks)
        self.up2 = ConvBlock(4 * w, 2 * w, 3, upsample=True, reflect=deep, antialias=aa, norm_eps=eps)
        self.up1 = ConvBlock(2 * w, w, 3, upsample=True, reflect=False, antialias=aa, norm_eps=eps)
        self.output: nn.Module = nn.Sequential(upsample_2x(aa), nn.Conv2d(w, 3, 3, padding=1))

    @staticmethod
    def output_upsampling(kwargs: dict) -> str:
        """The output layer's upsampling mode for these constructor arguments."""
        return "bilinear" if kwargs.get("antialias", False) else "nearest"

    def for_inference(self, margin: int) -> SmallTransformerNet:
        """In place, like eval(): the last upsampling and convolution computed at half resolution
        (layers.fused_output), a fifth less time in ONNX Runtime (benchmarks/fused_upsampling.py)."""
        self.output = fused_output(self.output, margin)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = self.down1(x)  # N x w x H/2 x W/2
        quarter = self.down2(half)  # N x 2w x H/4 x W/4
        eighth = self.residuals(self.down3(quarter))  # N x 4w x H/8 x W/8
        quarter = self.up2(eighth) + quarter
        half = self.up1(quarter) + half
        return self.output(half)  # N x 3 x H x W
