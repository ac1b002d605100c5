"""Free training pairs made from any photo, applied identically at training and at run time:
the translator's input is computed from the frame by the same function in both places.

    edges:     Sobel gradient magnitude of the luminance, a white-on-black line drawing
    grayscale: the luminance (BT.601)

Tensors are N x 3 x H x W in [0, 1]; outputs keep three channels so every model takes RGB.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from stylecast.models.color import luminance
from stylecast.models.contract import PAIRS


def sobel_edges(rgb: torch.Tensor) -> torch.Tensor:
    gray = luminance(rgb)
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=rgb.device, dtype=rgb.dtype)
    kernels = torch.stack([kx, kx.T])[:, None]  # 2 x 1 x 3 x 3
    gradient = F.conv2d(F.pad(gray, (1, 1, 1, 1), mode="replicate"), kernels)
    magnitude = gradient.pow(2).sum(dim=1, keepdim=True).sqrt()
    return (magnitude * 2.0).clamp(0, 1)  # |grad| of a full black-white step is 4: strong edges saturate


def pair_input(kind: str, rgb: torch.Tensor) -> torch.Tensor:
    """The translator's input made from photos `rgb` (N x 3 x H x W in [0, 1])."""
    if kind == "edges":
        return sobel_edges(rgb).expand(-1, 3, -1, -1)
    if kind == "grayscale":
        return luminance(rgb).expand(-1, 3, -1, -1)
    raise ValueError(f"unknown free pair {kind!r}; choose from {PAIRS}")
