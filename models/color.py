"""Colour maths shared by the runtime (preserve colour), Gatys' optimization and the free pairs.

Tensors are N x 3 x H x W RGB in [0, 1]; BT.601 weights, full range.
"""

from __future__ import annotations

import torch


def luminance(rgb: torch.Tensor) -> torch.Tensor:
    """N x 3 x H x W RGB -> N x 1 x H x W (BT.601)."""
    return 0.299 * rgb[:, 0:1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:3]


def rgb_to_ycbcr(x: torch.Tensor) -> torch.Tensor:
    """N x 3 x H x W RGB -> YCbCr (chroma centred on 0)."""
    y = luminance(x)
    return torch.cat([y, (x[:, 2:3] - y) / 1.772, (x[:, 0:1] - y) / 1.402], dim=1)


def ycbcr_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """The inverse of `rgb_to_ycbcr`."""
    y, cb, cr = x.unbind(1)
    r = y + 1.402 * cr
    b = y + 1.772 * cb
    g = (y - 0.299 * r - 0.114 * b) / 0.587
    return torch.stack([r, g, b], dim=1)
