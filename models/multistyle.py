"""Dumoulin et al. 2017, "A Learned Representation for Artistic Style": one network, N styles.

The Johnson network (and the small CPU network) with every instance norm made conditional: each
style owns a scale and a shift per channel (a few thousand numbers), everything else is shared.
The second input is the style weights, N x S with rows summing to 1: one-hot picks a style, a
mix blends them, and changing it needs no reload, so a live stream can switch styles at once.
"""

from __future__ import annotations

import torch
from torch import nn

from stylecast.models.layers import CondConvBlock, CondResidualBlock, ReflectConv, fused_output


def example_styles(batch: int, num_styles: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Example style weights (for export and checks): all equal, or a random mix per sample."""
    if generator is None:
        return {"style": torch.full((batch, num_styles), 1.0 / num_styles)}
    return {"style": torch.softmax(torch.randn(batch, num_styles, generator=generator), dim=1)}


class MultiStyleTransformerNet(nn.Module):
    """RGB in [0, 1] (N x 3 x H x W, multiples of 4) and style weights (N x S) -> stylized RGB."""

    size_multiple = 4

    def example_conditions(self, batch: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        return example_styles(batch, self.num_styles, generator)

    def __init__(self, num_styles: int, width: int = 32, residual_blocks: int = 5, outer_kernel: int = 9):
        super().__init__()
        self.num_styles = num_styles
        w, s = width, num_styles
        self.down0 = CondConvBlock(3, w, outer_kernel, s)
        self.down1 = CondConvBlock(w, 2 * w, 3, s, stride=2)
        self.down2 = CondConvBlock(2 * w, 4 * w, 3, s, stride=2)
        self.residuals = nn.ModuleList(CondResidualBlock(4 * w, s) for _ in range(residual_blocks))
        self.up1 = CondConvBlock(4 * w, 2 * w, 3, s, upsample=True)
        self.up0 = CondConvBlock(2 * w, w, 3, s, upsample=True)
        self.output = ReflectConv(w, 3, outer_kernel)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        x = self.down0(x, style)  # N x w x H x W
        x = self.down1(x, style)  # N x 2w x H/2 x W/2
        x = self.down2(x, style)  # N x 4w x H/4 x W/4
        for block in self.residuals:
            x = block(x, style)
        x = self.up1(x, style)  # N x 2w x H/2 x W/2
        x = self.up0(x, style)  # N x w x H x W
        return self.output(x)


class MultiStyleSmallNet(nn.Module):
    """The small CPU network (models/small.py) with conditional instance norm."""

    size_multiple = 8
    margin = 8  # zero padding: reflected border pixels added by the runtime, as in models/small.py

    def example_conditions(self, batch: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        return example_styles(batch, self.num_styles, generator)

    def __init__(self, num_styles: int, width: int = 16, residual_blocks: int = 5, stem_kernel: int = 5):
        super().__init__()
        self.num_styles = num_styles
        w, s = width, num_styles
        self.down1 = CondConvBlock(3, w, stem_kernel, s, stride=2, reflect=False)
        self.down2 = CondConvBlock(w, 2 * w, 3, s, stride=2, reflect=False)
        self.down3 = CondConvBlock(2 * w, 4 * w, 3, s, stride=2, reflect=False)
        self.residuals = nn.ModuleList(
            CondResidualBlock(4 * w, s, separable=True, reflect=False) for _ in range(residual_blocks)
        )
        self.up2 = CondConvBlock(4 * w, 2 * w, 3, s, upsample=True, reflect=False)
        self.up1 = CondConvBlock(2 * w, w, 3, s, upsample=True, reflect=False)
        self.output: nn.Module = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(w, 3, 3, padding=1)
        )

    @staticmethod
    def output_upsampling(kwargs: dict) -> str:
        return "nearest"

    def for_inference(self, margin: int) -> MultiStyleSmallNet:
        """In place, like eval(): the last upsampling and convolution computed at half resolution
        (layers.fused_output; nearest upsampling, so the same pixels everywhere)."""
        self.output = fused_output(self.output, margin)
        return self

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        half = self.down1(x, style)  # N x w x H/2 x W/2
        quarter = self.down2(half, style)  # N x 2w x H/4 x W/4
        eighth = self.down3(quarter, style)  # N x 4w x H/8 x W/8
        for block in self.residuals:
            eighth = block(eighth, style)
        quarter = self.up2(eighth, style) + quarter
        half = self.up1(quarter, style) + half
        return self.output(half)  # N x 3 x H x W
